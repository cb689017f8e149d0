# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""The ``hil`` network interface: HIL isolates a BMI node's networks.

Network model (doc/network.md has the whole story):

* The Ironic node is HIL node ``driver_info/hil_node`` (default: the node
  name); each Ironic port is the HIL nic with the port's MAC address, or the
  nic labelled ``extra/hil_nic``.
* The node's HIL project is its lessee or owner (``[hil] project_source``).
  A node that HIL holds for another project is refused; a free node is
  connected to the project only when ``[hil] allow_connect_free_node``.
* ``add_provisioning_network``: every boot nic (port with ``pxe_enabled``)
  joins the node's boot network on its native VLAN, before power-on: its
  project's own in per-project mode ([bmi] boot_networks_file, checked in
  ``validate``: HIL knows it, only that project may use it), else ``[hil]
  provisioning_network``.
  It stays there while the node is active: the node's disk is remote.
* ``configure_tenant_networks``: the networks listed in
  ``instance_info[<tenant_networks_field>]`` join their nics as tagged
  VLANs; ``unconfigure_tenant_networks`` detaches them.
* ``remove_provisioning_network`` detaches the boot network last,
  once the deploy interface has unexported the disk.
* Undeploy and rollback work from HIL's state of the nics, not only from
  driver_internal_info: every detach is sent to HIL, which waits out an
  action still pending from an earlier call that gave up (see
  :mod:`bmi_driver.network.hil_client`). A node that HIL does not know, or
  holds for a project this HIL user cannot see, never blocks an undeploy:
  a warning, and nothing to detach.

VIFs are recorded on ports and port groups as Ironic's own interfaces do
(``internal_info/tenant_vif_port_id``), so that Nova's ironic driver can
attach, detach and list them.
"""

import re

from ironic.common import exception as ironic_exc
from ironic.common import states
from ironic.drivers import base
from ironic.drivers.modules.network import common
from oslo_log import log

from bmi_driver.common import ironic_errors
from bmi_driver.common import node_facts
from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.network import hil_client

LOG = log.getLogger(__name__)

# driver_internal_info keys.
CONNECTED_PROJECT = 'hil_connected_project'
DEPLOYED_PROJECT = 'hil_project'
TENANT_ATTACHMENTS = 'hil_tenant_networks'
BOOT_NETWORK = 'hil_boot_network'

_MAC_RE = re.compile(r'^([0-9a-f]{2}:){5}[0-9a-f]{2}$')

# States in which validate() asks HIL whether the node can be deployed:
# before a deploy (Nova's vif_attach, "baremetal node validate") and in
# prepare() (DEPLOYING), before anything is cloned or exported. Ironic
# 39.0 also calls network.validate for vif_list/vif_detach, for cleaning
# (also the automated cleaning that follows an undeploy) and for port
# updates: there, a HIL that lost the node must not fail the node, and
# BMI's cleaning needs no network, so only the node's own fields are
# checked.
_HIL_CHECK_STATES = frozenset([states.AVAILABLE, states.DEPLOYING])

PROPERTIES = {
    'hil_node': 'Name of the node in HIL. Optional; default: the Ironic '
                'node name.',
    'hil_project': 'HIL project of the node, when [hil] project_source is '
                   '"driver_info". Optional.',
}


def hil_node_name(node):
    """The HIL node an Ironic node maps to.

    :raises: MissingParameterValue
    """
    with ironic_errors.as_ironic():
        return node_facts.hil_node_name(node)


def hil_project(node):
    """The HIL project a node is deployed for, per [hil] project_source.

    :raises: MissingParameterValue
    """
    with ironic_errors.as_ironic():
        project = node_facts.hil_project(node)
        try:
            return hil_client.check_name('project', project)
        except exception.HILInvalidName as e:
            raise exception.NodeFactInvalid('Node %s: %s' % (node.uuid, e))


def tenant_networks(node):
    """The tenant networks requested in instance_info, checked.

    :returns: a list of {'network', 'nic', 'channel' (or None)}.
    :raises: InvalidParameterValue when the value is malformed.
    """
    with ironic_errors.as_ironic():
        return node_facts.tenant_networks(node)


def boot_network(node):
    """The HIL network of the node's boot nics.

    Per-project mode ([bmi] boot_networks_file): the node's project's own
    boot network; shared mode: [hil] provisioning_network.

    :raises: InvalidParameterValue, MissingParameterValue
    """
    with ironic_errors.as_ironic():
        net = node_facts.boot_network(node)
    return net.hil_network if net else CONF.hil.provisioning_network


def _nic_label(hil_info, port):
    """The label of the HIL nic an Ironic port is, or None."""
    label = port.extra.get('hil_nic')
    nics = hil_info.get('nics') or []
    if label:
        return label if any(n['label'] == label for n in nics) else None
    address = (port.address or '').lower()
    for nic in nics:
        if (nic.get('macaddr') or '').lower() == address:
            return nic['label']
    return None


class HILNetwork(common.VIFPortIDMixin, base.NetworkInterface):
    """Network isolation through HIL (the Hardware Isolation Layer)."""

    def get_properties(self):
        return PROPERTIES

    # --- helpers ---

    @staticmethod
    def _client():
        return hil_client.get_client()

    def _hil_view(self, task, client):
        """(HIL node name, HIL's node record, {port uuid: nic label})."""
        name = hil_node_name(task.node)
        info = client.get_node(name)
        labels = {}
        missing = []
        for port in task.ports:
            label = _nic_label(info, port)
            if label is None:
                missing.append(port.extra.get('hil_nic') or port.address)
            labels[port.uuid] = label
        if missing:
            raise ironic_exc.InvalidParameterValue(
                'HIL node %(hil)s has no nic for port(s) %(ports)s of node '
                '%(node)s (HIL nics: %(nics)s)' % {
                    'hil': name, 'ports': ', '.join(missing),
                    'node': task.node.uuid,
                    'nics': ', '.join('%s=%s' % (n['label'], n['macaddr'])
                                      for n in info.get('nics') or [])})
        return name, info, labels

    @staticmethod
    def _boot_nics(task, labels):
        boot = sorted({labels[p.uuid] for p in task.ports if p.pxe_enabled})
        if not boot:
            raise ironic_exc.InvalidParameterValue(
                'Node %s has no port with pxe_enabled: the hil network '
                'interface cannot tell which nic carries the disk.'
                % task.node.uuid)
        return boot

    @staticmethod
    def _resolve_nic(info, nic, node):
        """A nic named by HIL label or MAC address, as its label."""
        for n in info.get('nics') or []:
            if n['label'] == nic:
                return nic
        if _MAC_RE.match(nic.lower()):
            for n in info.get('nics') or []:
                if (n.get('macaddr') or '').lower() == nic.lower():
                    return n['label']
        raise ironic_exc.InvalidParameterValue(
            'Tenant network nic %(nic)s is not a nic (label or MAC) of HIL '
            'node %(hil)s' % {'nic': nic, 'hil': node})

    def _tenant_plan(self, task, client, name, info, labels):
        """The tenant attachments to make: [(label, network, channel)]."""
        boot = set(self._boot_nics(task, labels))
        plan = []
        for entry in tenant_networks(task.node):
            label = self._resolve_nic(info, entry['nic'], name)
            channel = entry['channel']
            if channel is None:
                channels = client.get_network(entry['network'])['channels']
                tagged = [c for c in channels if c != hil_client.NATIVE]
                if not tagged:
                    raise ironic_exc.InvalidParameterValue(
                        'HIL network %s has no tagged VLAN channel'
                        % entry['network'])
                channel = tagged[0]
            if label in boot and channel == hil_client.NATIVE:
                raise ironic_exc.InvalidParameterValue(
                    'Tenant network %(net)s cannot use the native VLAN of '
                    'boot nic %(nic)s: it carries %(prov)s' % {
                        'net': entry['network'], 'nic': label,
                        'prov': boot_network(task.node)})
            plan.append((label, entry['network'], channel))
        return plan

    def _ensure_project(self, task, client, name, info):
        """Check (or make) HIL's allocation of the node to its project.

        :returns: True if the node was connected to the project now.
        """
        project = hil_project(task.node)
        holder = info.get('project')
        refusal = self._refusal(task, name, holder, project)
        if refusal:
            raise ironic_exc.NetworkError(refusal)
        connected = holder != project and client.connect_node(project, name)
        node = task.node
        if connected:
            node.set_driver_internal_info(CONNECTED_PROJECT, project)
        if connected or node.driver_internal_info.get(
                DEPLOYED_PROJECT) != project:
            node.set_driver_internal_info(DEPLOYED_PROJECT, project)
            node.save()
        return connected

    @staticmethod
    def _is_ours(task, name, info):
        """Whether HIL has the node in the project it is deployed for.

        Networks of a node that HIL holds for another project are never
        touched, also when Ironic cleans up after a refused deploy.
        """
        project = task.node.driver_internal_info.get(DEPLOYED_PROJECT)
        if not project:
            try:
                project = hil_project(task.node)
            except ironic_exc.MissingParameterValue:
                project = None
        holder = info.get('project')
        if holder is not None and holder != project:
            LOG.warning('Node %(node)s: HIL has node %(hil)s in project '
                        '%(holder)s, not %(project)s: its networks are left '
                        'alone', {'node': task.node.uuid, 'hil': name,
                                  'holder': holder, 'project': project})
        # A free node has no network attachments in HIL.
        return holder is not None and holder == project

    @staticmethod
    def _refusal(task, name, holder, project):
        """Why the node cannot be deployed for project, or None."""
        if holder == project:
            return None
        if holder is not None:
            return ('Deploy refused: HIL has node %(hil)s in project '
                    '%(holder)s, but Ironic node %(node)s is for project '
                    '%(project)s.' % {'hil': name, 'holder': holder,
                                      'node': task.node.uuid,
                                      'project': project})
        if not CONF.hil.allow_connect_free_node:
            return ('Deploy refused: HIL node %(hil)s is not allocated to '
                    'project %(project)s (it is free). Connect it in HIL, '
                    'or set [hil] allow_connect_free_node.'
                    % {'hil': name, 'project': project})
        return None

    def validate_project(self, task):
        """Check, changing nothing, that HIL lets the node be deployed.

        For a deploy interface's ``validate``: it refuses at once what
        ``add_provisioning_network`` would refuse later.

        :raises: InvalidParameterValue, MissingParameterValue
        """
        project = hil_project(task.node)
        name = hil_node_name(task.node)
        try:
            holder = self._client().get_node(name).get('project')
        except exception.HILError as e:
            raise ironic_exc.InvalidParameterValue(
                self._lookup_refusal(task, name, e))
        refusal = self._refusal(task, name, holder, project)
        if refusal:
            raise ironic_exc.InvalidParameterValue(refusal)

    @staticmethod
    def _lookup_refusal(task, name, error):
        """Why HIL's record of the node could not be read, as a sentence."""
        if isinstance(error, exception.HILNodeNotFound):
            return ('HIL does not know node %(hil)s of node %(node)s: '
                    '%(err)s' % {'hil': name, 'node': task.node.uuid,
                                 'err': error})
        if isinstance(error, exception.HILNodeNotVisible):
            return ('Deploy refused: HIL node %(hil)s of node %(node)s is '
                    'held by another project (it is not visible to this '
                    'HIL user).' % {'hil': name, 'node': task.node.uuid})
        return ('Cannot validate node %(node)s with HIL: %(err)s'
                % {'node': task.node.uuid, 'err': error})

    def _release_project(self, task, client, name):
        """Detach the node from the project the plugin connected it to."""
        project = task.node.driver_internal_info.get(CONNECTED_PROJECT)
        if not project:
            return
        client.detach_node(project, name)
        task.node.del_driver_internal_info(CONNECTED_PROJECT)
        task.node.save()

    def _client_or_error(self, task):
        try:
            return self._client()
        except exception.HILError as e:
            raise self._network_error(task, 'be reached', e)

    @staticmethod
    def _network_error(task, what, error):
        msg = ('HIL could not %(what)s for node %(node)s: %(err)s'
               % {'what': what, 'node': task.node.uuid, 'err': error})
        LOG.error(msg)
        return ironic_exc.NetworkError(msg)

    # --- validation ---

    def validate(self, task):
        """Check the node's HIL names; before a deploy, HIL itself.

        Always: the HIL node name and the tenant networks of instance_info
        are well-formed names (no request). In AVAILABLE and DEPLOYING
        (prepare() calls this before the disk is cloned or exported): HIL
        is reachable and knows the node; the node is in its project, or
        free and [hil] allow_connect_free_node is set; every Ironic port
        is a HIL nic, one is a boot nic; and, when the HIL user sees
        cabling (HIL shows port and switch to admins only), every nic is
        cabled to a switch port.

        :raises: InvalidParameterValue (also when HIL is unreachable or
            refuses the credentials), MissingParameterValue.
        """
        name = hil_node_name(task.node)
        tenant_networks(task.node)
        if task.node.provision_state not in _HIL_CHECK_STATES:
            return
        project = hil_project(task.node)
        try:
            client = self._client()
            name, info, labels = self._hil_view(task, client)
        except exception.HILError as e:
            raise ironic_exc.InvalidParameterValue(
                self._lookup_refusal(task, name, e))
        refusal = self._refusal(task, name, info.get('project'), project)
        if refusal:
            raise ironic_exc.InvalidParameterValue(refusal)
        if task.ports:
            self._boot_nics(task, labels)
        self._check_cabling(task, name, info, labels)
        self._check_boot_network(task, client, project)

    @staticmethod
    def _check_boot_network(task, client, project):
        """In per-project mode: the project's boot network is its own.

        HIL knows the network; the project may use it; no other project
        may (a public network, or one open to others, would put their
        nodes on this project's boot network).
        """
        with ironic_errors.as_ironic():
            net = node_facts.boot_network(task.node)
        if net is None:
            return
        try:
            info = client.get_network(net.hil_network)
        except exception.HILError as e:
            raise ironic_exc.InvalidParameterValue(
                'Boot network %(net)s of project %(project)s (node '
                '%(node)s) cannot be used: %(err)s' % {
                    'net': net.hil_network, 'project': project,
                    'node': task.node.uuid, 'err': e})
        access = info.get('access')
        others = sorted(set(access or []) - {project})
        why = None
        if access is None:
            why = 'it is public in HIL (every project may use it)'
        elif others:
            why = ('HIL gives also project(s) %s access to it'
                   % ', '.join(others))
        elif project not in access and info.get('owner') != project:
            why = 'HIL does not give project %s access to it' % project
        if why:
            raise ironic_exc.InvalidParameterValue(
                'Boot network %(net)s of project %(project)s (node '
                '%(node)s) is not the project\'s own: %(why)s' % {
                    'net': net.hil_network, 'project': project,
                    'node': task.node.uuid, 'why': why})

    @staticmethod
    def _check_cabling(task, name, info, labels):
        """Refuse nics of the node that HIL shows without a switch port.

        HIL 8c6de221 shows a nic's ``port`` and ``switch`` to admins only;
        for other users it has no way to ask without changing something
        (connect_network answers "No port is connected to given nic." only
        when it is tried), and the deploy then fails at that connect.
        """
        nics = {n['label']: n for n in info.get('nics') or []}
        uncabled = sorted(
            label for label in set(labels.values())
            if 'port' in nics.get(label, {})
            and not nics[label].get('port'))
        if uncabled:
            raise ironic_exc.InvalidParameterValue(
                'HIL node %(hil)s of node %(node)s: nic(s) %(nics)s are not '
                'cabled to a switch port in HIL' % {
                    'hil': name, 'node': task.node.uuid,
                    'nics': ', '.join(uncabled)})
        if any('port' not in nics.get(label, {})
               for label in labels.values()):
            LOG.debug('Node %(node)s: this HIL user does not see the '
                      'cabling of HIL node %(hil)s; not checked',
                      {'node': task.node.uuid, 'hil': name})

    # --- provisioning network ---

    def add_provisioning_network(self, task):
        """Put the boot nics on the boot network (native VLAN).

        The project's own boot network in per-project mode, else [hil]
        provisioning_network; the network joined is recorded for the
        teardown (driver_internal_info/hil_boot_network).

        :raises: NetworkError, InvalidParameterValue
        """
        network = boot_network(task.node)
        client = self._client_or_error(task)
        try:
            name, info, labels = self._hil_view(task, client)
        except exception.HILError as e:
            raise self._network_error(task, 'find the node', e)
        boot = self._boot_nics(task, labels)
        connected = []
        allocated = False
        if task.node.driver_internal_info.get(BOOT_NETWORK) != network:
            # Before the connect: a connect that gives up may still land.
            task.node.set_driver_internal_info(BOOT_NETWORK, network)
            task.node.save()
        try:
            allocated = self._ensure_project(task, client, name, info)
            for label in boot:
                if client.connect_network(name, label, network,
                                          hil_client.NATIVE):
                    connected.append(label)
        except exception.HILError as e:
            if isinstance(e, exception.HILTimeout):
                # Still queued in HIL: the undeploy that follows the failed
                # deploy detaches every nic, waiting for it to land first.
                LOG.warning('Node %(node)s: a HIL action is still pending '
                            'on HIL node %(hil)s; the next operation on its '
                            'nics reconciles it', {'node': task.node.uuid,
                                                   'hil': name})
            self._rollback(task, client, name, network, connected, allocated)
            raise self._network_error(
                task, 'connect the boot nic to %s' % network, e)
        LOG.info('Node %(node)s (HIL %(hil)s): nic(s) %(nics)s on '
                 'provisioning network %(net)s',
                 {'node': task.node.uuid, 'hil': name,
                  'nics': ', '.join(boot), 'net': network})

    def _rollback(self, task, client, name, network, labels, allocated):
        """Undo what a failed add_provisioning_network did."""
        try:
            for label in reversed(labels):
                client.detach_network(name, label, network)
            if allocated:
                self._release_project(task, client, name)
        except exception.HILError as e:
            LOG.warning('Node %(node)s: could not undo HIL changes after a '
                        'failure: %(err)s', {'node': task.node.uuid,
                                             'err': e})

    def remove_provisioning_network(self, task):
        """Take every nic of the node off its boot network.

        The boot network recorded at deploy and the one the node would use
        now (the registry may have changed meanwhile). Then free the node
        in HIL if the plugin connected it to the project.

        :raises: NetworkError
        """
        networks = self._boot_networks_to_leave(task)
        network = ', '.join(networks)
        name = hil_node_name(task.node)
        try:
            client = self._client()
            info = self._node_at_undeploy(task, client, name)
            if info is not None:
                if self._is_ours(task, name, info):
                    # Every nic is asked, also one that does not show the
                    # network: a connect that gave up may still be pending
                    # there (HIL then makes the detach wait for it).
                    errors = []
                    for nic in info.get('nics') or []:
                        for net in networks:
                            try:
                                client.detach_network(name, nic['label'],
                                                      net)
                            except exception.HILError as e:
                                errors.append('%s/%s: %s'
                                              % (nic['label'], net, e))
                    if errors:
                        raise exception.HILError(msg='; '.join(errors))
                self._release_project(task, client, name)
        except exception.HILError as e:
            raise self._network_error(
                task, 'detach the node from %s' % network, e)
        self._forget(task, DEPLOYED_PROJECT, CONNECTED_PROJECT, BOOT_NETWORK)
        LOG.info('Node %(node)s (HIL %(hil)s) is off boot network(s) '
                 '%(net)s', {'node': task.node.uuid, 'hil': name,
                             'net': network})

    @staticmethod
    def _boot_networks_to_leave(task):
        """The recorded boot network and the current one, recorded first."""
        networks = []
        recorded = task.node.driver_internal_info.get(BOOT_NETWORK)
        if recorded:
            networks.append(recorded)
        try:
            current = boot_network(task.node)
        except (ironic_exc.InvalidParameterValue,
                ironic_exc.MissingParameterValue) as e:
            if not recorded:
                raise
            LOG.warning('Node %(node)s: leaving its recorded boot network '
                        '%(net)s only: %(err)s', {'node': task.node.uuid,
                                                  'net': recorded, 'err': e})
            current = recorded
        if current not in networks:
            networks.append(current)
        return networks

    @staticmethod
    def _forget(task, *keys):
        present = [k for k in keys if k in task.node.driver_internal_info]
        for key in present:
            task.node.del_driver_internal_info(key)
        if present:
            task.node.save()

    @staticmethod
    def _node_at_undeploy(task, client, name):
        """HIL's record of the node, or None when there is none to undo.

        A node HIL does not know (404 "Node ... does not exist."), or holds
        for a project this HIL user has no access to (401), has no network
        attachment this plugin could remove: a warning, not an error, so
        that an undeploy (and Ironic's cleanup after a failed deploy) ends.
        """
        try:
            return client.get_node(name)
        except exception.HILNodeNotFound as e:
            LOG.warning('Node %(node)s: HIL does not know node %(hil)s '
                        '(%(err)s): no HIL networks to remove',
                        {'node': task.node.uuid, 'hil': name, 'err': e})
        except exception.HILNodeNotVisible as e:
            LOG.warning('Node %(node)s: HIL holds node %(hil)s for a project '
                        'this HIL user has no access to (%(err)s): its '
                        'networks are left alone',
                        {'node': task.node.uuid, 'hil': name, 'err': e})
        return None

    # --- tenant networks ---

    def configure_tenant_networks(self, task):
        """Join the tenant networks of instance_info as tagged VLANs.

        On failure, the attachments made by this call are undone.

        :raises: NetworkError, InvalidParameterValue
        """
        done = []
        try:
            client = self._client()
            name, info, labels = self._hil_view(task, client)
            plan = self._tenant_plan(task, client, name, info, labels)
            if not plan:
                return
            self._ensure_project(task, client, name, info)
            for label, network, channel in plan:
                if client.connect_network(name, label, network, channel):
                    done.append((label, network))
        except exception.HILError as e:
            for label, network in reversed(done):
                try:
                    client.detach_network(name, label, network)
                except exception.HILError as undo_error:
                    LOG.warning('Node %(node)s: could not detach %(net)s '
                                'from %(nic)s after a failure: %(err)s',
                                {'node': task.node.uuid, 'net': network,
                                 'nic': label, 'err': undo_error})
            raise self._network_error(task, 'join the tenant networks', e)
        task.node.set_driver_internal_info(
            TENANT_ATTACHMENTS,
            [{'nic': label, 'network': network, 'channel': channel}
             for label, network, channel in plan])
        task.node.save()
        LOG.info('Node %(node)s (HIL %(hil)s) joined tenant networks '
                 '%(nets)s', {'node': task.node.uuid, 'hil': name,
                              'nets': ', '.join(
                                  '%s:%s(%s)' % p for p in plan)})

    def unconfigure_tenant_networks(self, task):
        """Detach the tenant networks (recorded and requested ones).

        :raises: NetworkError after trying every detachment.
        """
        recorded = task.node.driver_internal_info.get(TENANT_ATTACHMENTS)
        wanted = {(a['nic'], a['network']) for a in recorded or []}
        name = hil_node_name(task.node)
        try:
            client = self._client()
            info = self._node_at_undeploy(task, client, name)
        except exception.HILError as e:
            raise self._network_error(task, 'detach the tenant networks', e)
        if info is None:
            self._forget(task, TENANT_ATTACHMENTS)
            return
        if not self._is_ours(task, name, info):
            wanted = set()
        else:
            # What HIL has on the nics now counts too: an attachment of
            # this deploy that landed after its connect gave up, or that
            # the record lost. (The provisioning network is left for
            # remove_provisioning_network.)
            for nic in info.get('nics') or []:
                for network in (nic.get('networks') or {}).values():
                    wanted.add((nic['label'], network))
            try:
                for entry in tenant_networks(task.node):
                    wanted.add((self._resolve_nic(info, entry['nic'], name),
                                entry['network']))
            except ironic_exc.InvalidParameterValue as e:
                LOG.warning('Node %(node)s: ignoring the tenant networks of '
                            'instance_info: %(err)s',
                            {'node': task.node.uuid, 'err': e})
        # Tagged VLANs before a native one on the same nic: switches with
        # HIL's native rule refuse the native VLAN's removal first.
        natives = {(n['label'], (n.get('networks') or {}).get(
            hil_client.NATIVE)) for n in info.get('nics') or []}
        errors = []
        boot = {CONF.hil.provisioning_network,
                task.node.driver_internal_info.get(BOOT_NETWORK)}
        try:
            boot.add(boot_network(task.node))
        except (ironic_exc.InvalidParameterValue,
                ironic_exc.MissingParameterValue):
            pass
        for label, network in sorted(
                wanted, key=lambda w: (w in natives, w)):
            if network in boot:
                continue
            try:
                client.detach_network(name, label, network)
            except exception.HILError as e:
                errors.append('%s/%s: %s' % (label, network, e))
        if errors:
            raise self._network_error(task, 'detach the tenant networks',
                                      '; '.join(errors))
        if recorded is not None:
            task.node.del_driver_internal_info(TENANT_ATTACHMENTS)
            task.node.save()
        if wanted:
            LOG.info('Node %(node)s (HIL %(hil)s) left its tenant networks',
                     {'node': task.node.uuid, 'hil': name})

    # --- cleaning: BMI nodes are diskless, there is nothing to clean ---

    def add_cleaning_network(self, task):
        return {}

    def remove_cleaning_network(self, task):
        pass

    # --- ports and VIFs ---

    def port_changed(self, task, port_obj):
        """Nothing to do: HIL nics are looked up at each operation."""

    def portgroup_changed(self, task, portgroup_obj):
        """Nothing to do: HIL nics are looked up at each operation."""

    def vif_attach(self, task, vif_info):
        """Record a VIF on a free port or port group of the node.

        :raises: VifAlreadyAttached, NoFreePhysicalPorts
        """
        vif_id = vif_info['id']
        port_like_obj = common.get_free_port_like_object(
            task, vif_id, set(), vif_info)
        self._save_vif_to_port_like_obj(port_like_obj, vif_id)
        LOG.debug('VIF %(vif)s recorded on %(obj)s of node %(node)s',
                  {'vif': vif_id, 'obj': port_like_obj.uuid,
                   'node': task.node.uuid})

    def vif_detach(self, task, vif_id):
        """Forget a VIF. :raises: VifNotAttached"""
        port_like_obj = self._get_port_like_obj_by_vif_id(task, vif_id)
        self._clear_vif_from_port_like_obj(port_like_obj)
