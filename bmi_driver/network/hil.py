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
  nic labelled ``extra/hil_nic``. A HIL node that another Ironic node maps
  to is refused; the teardown acts on the HIL node recorded at deploy
  (driver_internal_info/hil_node): the node's owner may change driver_info
  and the name of an ACTIVE node (Ironic 39.0.0's policy).
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
  VLANs, and so do the VIFs (Neutron ports, what Nova attaches): one HIL
  network per Neutron network, made on demand, on the nic of the Ironic
  port the VIF is recorded on (:mod:`bmi_driver.network.hil_vifs`); each
  Neutron port is then bound as Ironic's own ``neutron`` interface binds
  it. ``unconfigure_tenant_networks`` detaches them all, unbinds the ports
  and deletes the HIL networks no nic uses any more.
* ``remove_provisioning_network`` detaches the boot network last,
  once the deploy interface has unexported the disk.
* Undeploy and rollback work from HIL's state of the nics, not only from
  driver_internal_info: every detach is sent to HIL, which waits out an
  action still pending from an earlier call that gave up (see
  :mod:`bmi_driver.network.hil_client`). A node that HIL does not know, or
  holds for a project this HIL user cannot see, never blocks an undeploy:
  a warning, and nothing to detach.

This module is the Ironic glue (task, ports, driver_internal_info, Ironic's
exceptions); what needs no Ironic (HIL's view of the node, the plans of
what to connect and detach) is :mod:`bmi_driver.network.hil_node`.

VIFs are recorded on ports as Ironic's own interfaces do
(``internal_info/tenant_vif_port_id``), so that Nova's ironic driver can
attach, detach and list them; a VIF of another project is refused at
``vif_attach``; attached or detached while the node is active, it joins or
leaves HIL at once.
"""

import weakref

from ironic.common import exception as ironic_exc
from ironic.common import states
from ironic.conductor import periodics
from ironic.conductor import utils as manager_utils
from ironic.db import api as db_api
from ironic.drivers import base
from ironic.drivers.modules.network import common
from oslo_log import log

from bmi_driver.common import ironic_errors
from bmi_driver.common import node_facts
from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.network import hil_client
from bmi_driver.network import hil_node
from bmi_driver.network import hil_vifs
from bmi_driver.network import neutron_client

LOG = log.getLogger(__name__)

# driver_internal_info keys.
CONNECTED_PROJECT = 'hil_connected_project'
DEPLOYED_PROJECT = 'hil_project'
TENANT_ATTACHMENTS = 'hil_tenant_networks'
BOOT_NETWORK = 'hil_boot_network'
# The HIL node the deployment acts on, recorded before its first change in
# HIL and used by its teardown: Ironic 39.0.0's API lets a member of the
# owner project change driver_info and the name of an ACTIVE node, not
# driver_internal_info.
DEPLOYED_HIL_NODE = 'hil_node'
# {vif id: {'nic', 'network' (HIL), 'neutron_network'}}: the VIFs joined.
VIF_NETWORKS = 'hil_vif_networks'
# Where Ironic 39.0.0's VIFPortIDMixin records a port's tenant VIF.
TENANT_VIF_KEY = 'tenant_vif_port_id'

# States in which validate() asks HIL whether the node can be deployed:
# before a deploy (Nova's vif_attach, "baremetal node validate") and in
# prepare() (DEPLOYING), before anything is cloned or exported. Ironic
# 39.0 also calls network.validate for vif_list/vif_detach, for cleaning
# (also the automated cleaning that follows an undeploy) and for port
# updates: there, a HIL that lost the node must not fail the node, and
# BMI's cleaning needs no network, so only the node's own fields are
# checked.
_HIL_CHECK_STATES = frozenset([states.AVAILABLE, states.DEPLOYING])

# {task: what its HIL checks passed for}. One task (one lock on the node)
# runs validate() up to three times: Ironic 39's own validate of the
# network interface, the deploy interface's validate, which calls it, and
# prepare(). HIL is asked once per task and node facts: each of its
# requests costs HIL a password hash with database auth (about 0.35 s at
# HIL 8c6de221), and what is decided (connecting a nic, the project) reads
# HIL afresh right before it changes anything.
_CHECKED = weakref.WeakKeyDictionary()

# Nodes whose HIL attachments a failed teardown may have left: not being
# deployed nor in use, so every attachment they still record is stale
# (Ironic 39.0 states). The periodic retry detaches them.
_LEFTOVER_STATES = [states.ERROR, states.DEPLOYFAIL, states.CLEANFAIL,
                    states.AVAILABLE, states.MANAGEABLE]
_LEFTOVER_KEYS = (TENANT_ATTACHMENTS, BOOT_NETWORK, CONNECTED_PROJECT,
                  VIF_NETWORKS)
# driver_internal_info: HIL was seen (or left) with no network on the node
# since it came to rest: the at-rest check asks HIL no more. Set by a
# teardown that detached everything, dropped when a deploy connects.
AT_REST_CHECKED = 'hil_at_rest_checked'
# At rest: the node has no network in HIL. One deleted while ACTIVE
# (Ironic 39.0.0's delete calls no interface) and enrolled again, with its
# UUID or another, records nothing of the networks it had.
_AT_REST_STATES = [states.AVAILABLE, states.MANAGEABLE]
# Where a VIF joins HIL at once (Nova's interface attach/detach on an
# active instance); elsewhere it joins at deploy.
_LIVE_VIF_STATES = frozenset([states.ACTIVE])


def _has_hil_leftovers(node):
    """periodics.node_periodic's predicate: the node records attachments."""
    info = node.driver_internal_info or {}
    return any(info.get(key) for key in _LEFTOVER_KEYS)


def _needs_rest_check(node):
    """periodics.node_periodic's predicate: HIL not yet seen clean."""
    info = node.driver_internal_info or {}
    return not info.get(AT_REST_CHECKED) and not _has_hil_leftovers(node)


PROPERTIES = {
    'hil_node': 'Name of the node in HIL. Optional; default: the Ironic '
                'node name.',
    'hil_project': 'HIL project of the node, when [hil] project_source is '
                   '"driver_info". Optional.',
}

# The library's errors as Ironic's, the message word for word.
_as_ironic = ironic_errors.as_ironic


def hil_node_name(node):
    """The HIL node an Ironic node maps to.

    :raises: MissingParameterValue
    """
    with _as_ironic():
        return node_facts.hil_node_name(node)


def hil_node_users(hil_name, but=None, dbapi=None):
    """UUIDs of the Ironic nodes (``but`` aside) that map to ``hil_name``.

    By ``driver_info/hil_node``, else the node's name, or by the HIL node
    their deployment recorded (``driver_internal_info/hil_node``: the one
    their teardown acts on, whatever the mapping now). Ironic node names
    are unique, so a HIL node that another Ironic node maps to is that
    node's: Ironic 39.0.0's default policy lets a member of a node's owner
    project set its driver_info, name and lessee (also on an ACTIVE node),
    and this plugin acts on HIL with its own credentials, for every
    project.

    One query of every node's uuid, name, driver_info and
    driver_internal_info (hil_node lies inside JSON columns, which SQL
    cannot select on portably): one row per node, no object built.

    :param dbapi: Ironic's database API (default: this process's).
    """
    dbapi = dbapi or db_api.get_instance()
    return sorted(
        node_uuid for node_uuid, name, driver_info, internal in
        dbapi.get_nodeinfo_list(columns=['uuid', 'name', 'driver_info',
                                         'driver_internal_info'])
        if node_uuid != but
        and hil_name in (node_facts.hil_node_name_of(driver_info, name),
                         (internal or {}).get(DEPLOYED_HIL_NODE)))


def hil_project(node):
    """The HIL project a node is deployed for, per [hil] project_source.

    :raises: MissingParameterValue
    """
    with _as_ironic():
        return hil_node.hil_project(node)


def tenant_networks(node):
    """The tenant networks requested in instance_info, checked.

    :returns: a list of {'network', 'nic', 'channel' (or None)}.
    :raises: InvalidParameterValue when the value is malformed.
    """
    with _as_ironic():
        return node_facts.tenant_networks(node)


def boot_network(node):
    """The HIL network of the node's boot nics.

    Per-project mode ([bmi] boot_networks_file): the node's project's own
    boot network; shared mode: [hil] provisioning_network.

    :raises: InvalidParameterValue, MissingParameterValue
    """
    with _as_ironic():
        return hil_node.boot_network(node)


def release_deleted_node(record):
    """Undo in HIL the deployment of a node Ironic no longer has.

    Ironic 39.0.0's node delete (also of an ACTIVE node in maintenance)
    calls no interface, and the node's driver_internal_info goes with it:
    its HIL node would stay on the boot and tenant networks of that
    deployment, and in the project when the plugin had connected it.  The
    deploy interface keeps :meth:`HILNetwork.deletion_record` with the
    node's clone; its sweep of deleted nodes hands it here, once no Ironic
    node maps to that HIL node any more.

    Only a node HIL holds for the recorded project is touched: every
    network of it is detached (tagged VLANs before the native one), the
    VIF networks left unused are deleted, and the node is freed if the
    plugin had connected it.  Idempotent: a node already off its networks,
    free, in another project, or unknown to HIL needs nothing.

    :param record: {'node', 'project', 'connected'}.
    :returns: ([(nic, network) detached], whether the node was freed).
    :raises: HILError (the caller keeps the record and tries again).
    """
    name, project = record['node'], record['project']
    client = hil_client.get_client()
    try:
        info = client.get_node(name)
    except (exception.HILNodeNotFound, exception.HILNodeNotVisible,
            exception.HILInvalidName) as e:
        # Nothing this plugin could undo there: not a reason to keep the
        # clone for ever (an invalid name cannot have been deployed).
        LOG.warning('HIL node %(hil)s of a deleted Ironic node: %(err)s; '
                    'nothing to undo', {'hil': name, 'err': e})
        return [], False
    if info.get('project') != project:
        return [], False
    pairs = hil_node.attachments(info)
    errors = hil_node.detach_each(client, name, pairs)
    if errors:
        raise exception.HILError(msg='HIL node %s of a deleted Ironic node '
                                     'is still attached: %s'
                                     % (name, '; '.join(errors)))
    hil_vifs.delete_unused(client, [net for _nic, net in pairs])
    freed = bool(record.get('connected')) and client.detach_node(project,
                                                                 name)
    return pairs, bool(freed)


class HILNetwork(common.VIFPortIDMixin, base.NetworkInterface):
    """Network isolation through HIL (the Hardware Isolation Layer)."""

    def get_properties(self):
        return PROPERTIES

    # --- helpers ---

    @staticmethod
    def _client():
        return hil_client.get_client()

    @staticmethod
    def _deploy_name(task, error=ironic_exc.NetworkError):
        """The node's HIL node, unless another Ironic node maps to it.

        Checked (one database query, :func:`hil_node_users`) before every
        change in HIL a deploy or an attach makes, and in validate: a
        member of the owner project could otherwise point the node at
        another node's HIL node and have this plugin move that node's
        nics. A HIL node that no Ironic node maps to is not protected.
        Refused too while the node's deployment recorded another HIL node
        (the mapping changed on a deployed node): its teardown acts on
        the recorded one.

        :raises: ``error``, MissingParameterValue, InvalidParameterValue
        """
        name = hil_node_name(task.node)
        recorded = task.node.driver_internal_info.get(DEPLOYED_HIL_NODE)
        if recorded and recorded != name:
            LOG.warning('Node %(node)s is deployed on HIL node %(rec)s and '
                        'now maps to %(hil)s: refused',
                        {'node': task.node.uuid, 'rec': recorded,
                         'hil': name})
            raise error('Refused: node %(node)s is deployed on HIL node '
                        '%(rec)s, and its driver_info/hil_node (else its '
                        'name) now gives %(hil)s. Restore the mapping, or '
                        'undeploy the node first.'
                        % {'node': task.node.uuid, 'rec': recorded,
                           'hil': name})
        others = hil_node_users(name, but=task.node.uuid)
        if others:
            LOG.warning('Node %(node)s maps to HIL node %(hil)s, as Ironic '
                        'node(s) %(others)s do: refused',
                        {'node': task.node.uuid, 'hil': name,
                         'others': ', '.join(others)})
            raise error('Deploy refused: HIL node %(hil)s is not available '
                        'to node %(node)s: another Ironic node maps to it '
                        '(driver_info/hil_node, else the node name).'
                        % {'hil': name, 'node': task.node.uuid})
        return name

    @staticmethod
    def _teardown_name(task):
        """The HIL node a teardown acts on, or None: leave HIL alone.

        The one the deployment recorded (driver_internal_info, which the
        API cannot write); without a record (a deployment made before
        this record existed, or a deploy refused before it), the mapping
        now, unless another Ironic node maps to it (one database query):
        then nothing in HIL is touched, with a warning.

        :raises: MissingParameterValue, InvalidParameterValue
        """
        recorded = task.node.driver_internal_info.get(DEPLOYED_HIL_NODE)
        if recorded:
            return recorded
        name = hil_node_name(task.node)
        others = hil_node_users(name, but=task.node.uuid)
        if others:
            LOG.warning('Node %(node)s records no HIL node and maps to HIL '
                        'node %(hil)s, as Ironic node(s) %(others)s do: '
                        'its networks are left alone',
                        {'node': task.node.uuid, 'hil': name,
                         'others': ', '.join(others)})
            return None
        return name

    def _hil_view(self, task, client, name):
        """(HIL node name, HIL's node record, {port uuid: nic label}).

        :param name: the HIL node, from :meth:`_deploy_name`.
        """
        info = client.get_node(name)
        with _as_ironic():
            labels = hil_node.nic_labels(task.node, name, info, task.ports)
        return name, info, labels

    def _ensure_project(self, task, client, name, info):
        """Check (or make) HIL's allocation of the node to its project.

        :returns: True if the node was connected to the project now.
        """
        project = hil_project(task.node)
        holder = info.get('project')
        refusal = hil_node.refusal(task.node, name, holder, project)
        if refusal:
            raise ironic_exc.NetworkError(refusal)
        node = task.node
        if holder == project:
            if node.driver_internal_info.get(DEPLOYED_PROJECT) != project:
                node.set_driver_internal_info(DEPLOYED_PROJECT, project)
                node.save()
            return False
        # Recorded before the connect, as the boot network is: HIL may
        # apply it and its answer be lost (a read timeout, a proxy's 500),
        # and a node connected but not recorded would stay in the project
        # after the undeploy, held for it in HIL while Ironic has it
        # available. detach_node frees only a node HIL has in ``project``.
        earlier = node.driver_internal_info.get(CONNECTED_PROJECT)
        node.set_driver_internal_info(CONNECTED_PROJECT, project)
        node.set_driver_internal_info(DEPLOYED_PROJECT, project)
        node.save()
        connected = client.connect_node(project, name)
        if not connected and earlier != project:
            # Someone else put it in the project meanwhile: theirs to free.
            node.del_driver_internal_info(CONNECTED_PROJECT)
            node.save()
        return connected

    @staticmethod
    def _is_ours(task, name, info):
        """Whether HIL has the node in the project it is deployed for."""
        with _as_ironic():
            return hil_node.is_ours(
                task.node, name, info,
                task.node.driver_internal_info.get(DEPLOYED_PROJECT))

    def validate_project(self, task):
        """Check, changing nothing, that HIL lets the node be deployed.

        For a deploy interface's ``validate``: it refuses at once what
        ``add_provisioning_network`` would refuse later.

        :raises: InvalidParameterValue, MissingParameterValue
        """
        project = hil_project(task.node)
        name = self._deploy_name(task, ironic_exc.InvalidParameterValue)
        try:
            holder = self._client().get_node(name).get('project')
        except exception.HILError as e:
            raise ironic_exc.InvalidParameterValue(
                hil_node.lookup_refusal(task.node, name, e))
        refusal = hil_node.refusal(task.node, name, holder, project)
        if refusal:
            raise ironic_exc.InvalidParameterValue(refusal)

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

    def deletion_record(self, task):
        """What undoes this deployment in HIL if the node is deleted.

        The deploy interface keeps it with the node's clone in Ceph
        (before the boot network is joined, and again once the node is
        connected to its project); see :func:`release_deleted_node`.

        :returns: {'node': HIL node, 'project': the project deployed for,
            'connected': whether the plugin connected the node to it}.
        :raises: MissingParameterValue, InvalidParameterValue
        """
        info = task.node.driver_internal_info
        connected = info.get(CONNECTED_PROJECT)
        return {'node': (info.get(DEPLOYED_HIL_NODE)
                         or hil_node_name(task.node)),
                'project': (connected or info.get(DEPLOYED_PROJECT)
                            or hil_project(task.node)),
                'connected': bool(connected)}

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
        # The boot network follows from the project (and the
        # configuration); the nics from the ports.
        checked = (name, project, tuple(sorted(
            (p.uuid, p.address, p.pxe_enabled, p.extra.get('hil_nic'))
            for p in task.ports)))
        if _CHECKED.get(task) == checked:
            return
        self._deploy_name(task, ironic_exc.InvalidParameterValue)
        try:
            client = self._client()
            name, info, labels = self._hil_view(task, client, name)
        except exception.HILError as e:
            raise ironic_exc.InvalidParameterValue(
                hil_node.lookup_refusal(task.node, name, e))
        refusal = hil_node.refusal(task.node, name, info.get('project'),
                                   project)
        if refusal:
            raise ironic_exc.InvalidParameterValue(refusal)
        with _as_ironic():
            if task.ports:
                hil_node.boot_nics(task.node, task.ports, labels)
            hil_node.check_cabling(task.node, name, info, labels)
            hil_node.check_boot_network(client, task.node, project)
        _CHECKED[task] = checked

    # --- provisioning network ---

    def add_provisioning_network(self, task):
        """Put the boot nics on the boot network (native VLAN).

        The project's own boot network in per-project mode, else [hil]
        provisioning_network; the network joined is recorded for the
        teardown (driver_internal_info/hil_boot_network).

        :raises: NetworkError, InvalidParameterValue
        """
        network = boot_network(task.node)
        name = self._deploy_name(task)
        client = self._client_or_error(task)
        try:
            name, info, labels = self._hil_view(task, client, name)
        except exception.HILError as e:
            raise self._network_error(task, 'find the node', e)
        with _as_ironic():
            boot = hil_node.boot_nics(task.node, task.ports, labels)
        done = []
        allocated = False
        recorded = task.node.driver_internal_info
        if (recorded.get(BOOT_NETWORK) != network
                or recorded.get(DEPLOYED_HIL_NODE) != name
                or AT_REST_CHECKED in recorded):
            # Before the connect: a connect that gives up may still land.
            task.node.set_driver_internal_info(BOOT_NETWORK, network)
            task.node.set_driver_internal_info(DEPLOYED_HIL_NODE, name)
            if AT_REST_CHECKED in recorded:
                task.node.del_driver_internal_info(AT_REST_CHECKED)
            task.node.save()
        try:
            allocated = self._ensure_project(task, client, name, info)
            client.connect_networks(
                name, [(label, network, hil_client.NATIVE)
                       for label in boot], done)
        except exception.HILError as e:
            if isinstance(e, exception.HILTimeout):
                # Still queued in HIL: the undeploy that follows the failed
                # deploy detaches every nic, waiting for it to land first.
                LOG.warning('Node %(node)s: a HIL action is still pending '
                            'on HIL node %(hil)s; the next operation on its '
                            'nics reconciles it', {'node': task.node.uuid,
                                                   'hil': name})
            self._rollback(task, client, name, network,
                           [label for label, _ in done], allocated)
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
            # Also when the connect failed: it may have landed (see
            # _ensure_project); _release_project acts on the record.
            if allocated or task.node.driver_internal_info.get(
                    CONNECTED_PROJECT):
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
        with _as_ironic():
            networks = hil_node.boot_networks_to_leave(
                task.node, task.node.driver_internal_info.get(BOOT_NETWORK))
        network = ', '.join(networks)
        name = self._teardown_name(task)
        try:
            client = self._client()
            info, known = (hil_node.lookup_at_undeploy(client, task.node,
                                                       name)
                           if name else (None, False))
            if info is not None:
                if self._is_ours(task, name, info):
                    hil_node.detach_boot_networks(client, name, info,
                                                  networks)
                self._release_project(task, client, name)
        except exception.HILError as e:
            raise self._network_error(
                task, 'detach the node from %s' % network, e)
        changed = self._forget(task, DEPLOYED_PROJECT, CONNECTED_PROJECT,
                               BOOT_NETWORK, DEPLOYED_HIL_NODE, save=False)
        if (known and not _has_hil_leftovers(task.node)
                and AT_REST_CHECKED not in task.node.driver_internal_info):
            # Nothing of this node left in HIL: no at-rest check needed.
            # Not when HIL did not know the HIL node (or it was left
            # alone): the node's real one may still be on the networks,
            # for the at-rest check to find once the mapping is fixed.
            task.node.set_driver_internal_info(AT_REST_CHECKED, True)
            changed = True
        if changed:
            task.node.save()
        LOG.info('Node %(node)s (HIL %(hil)s) is off boot network(s) '
                 '%(net)s', {'node': task.node.uuid, 'hil': name,
                             'net': network})

    @staticmethod
    def _forget(task, *keys, save=True):
        """Drop ``keys`` from driver_internal_info; whether any was there."""
        present = [k for k in keys if k in task.node.driver_internal_info]
        for key in present:
            task.node.del_driver_internal_info(key)
        if present and save:
            task.node.save()
        return bool(present)

    # --- tenant networks ---

    def _join(self, task, client, name, info, labels, vifs, entries, done,
              created):
        """Make the VIFs' HIL networks, connect ``entries``; the plan.

        Appends to ``created`` (networks made now) and ``done`` (nic,
        network connected now) as it goes, for the caller's undo.
        """
        self._ensure_project(task, client, name, info)
        created.extend(hil_vifs.ensure_networks(
            client, hil_project(task.node), vifs))
        plan = hil_node.tenant_plan(client, task.node, name, info,
                                    task.ports, labels, entries)
        # The nics side by side: one HIL sweep for all of them.
        client.connect_networks(name, plan, done)
        return plan

    def configure_tenant_networks(self, task):
        """Join instance_info's tenant networks and the VIFs' (tagged).

        The VIFs' HIL networks are made on demand; their Neutron ports are
        bound once HIL has the nics on them. On failure, the attachments
        and networks made by this call are undone.

        :raises: NetworkError, InvalidParameterValue
        """
        done = []
        created = []
        with _as_ironic():
            if not (tenant_networks(task.node) or self._vif_ports(task)):
                # Nothing to join: HIL is not asked (each request costs
                # HIL a password hash with database auth, HIL 8c6de221).
                return
        # Before the try: its undo needs both.
        name = self._deploy_name(task)
        client = self._client_or_error(task)
        # Outside the try: HIL's errors are the try's, the library's other
        # errors (HILNodeUnfit, node facts) become Ironic's.
        with _as_ironic():
            try:
                name, info, labels = self._hil_view(task, client, name)
                vifs = self._resolve_vifs(task, labels)
                entries = hil_vifs.merge(task.node, tenant_networks(
                    task.node), vifs)
                if not entries:
                    return
                plan = self._join(task, client, name, info, labels, vifs,
                                  entries, done, created)
            except exception.HILError as e:
                self._undo_tenant(task, client, name, done, created)
                raise self._network_error(task, 'join the tenant networks',
                                          e)
        task.node.set_driver_internal_info(
            TENANT_ATTACHMENTS,
            [{'nic': label, 'network': network, 'channel': channel}
             for label, network, channel in plan])
        self._record_vifs(task, vifs)
        task.node.save()
        self._bind_vifs(task, vifs)
        LOG.info('Node %(node)s (HIL %(hil)s) joined tenant networks '
                 '%(nets)s', {'node': task.node.uuid, 'hil': name,
                              'nets': ', '.join(
                                  '%s:%s(%s)' % p for p in plan)})

    def _undo_tenant(self, task, client, name, done, created):
        """Undo the attachments and networks of a failed configure."""
        for label, network, undo_error in client.detach_networks(
                name, list(reversed(done))):
            LOG.warning('Node %(node)s: could not detach %(net)s from '
                        '%(nic)s after a failure: %(err)s',
                        {'node': task.node.uuid, 'net': network,
                         'nic': label, 'err': undo_error})
        hil_vifs.delete_unused(client, created)

    def unconfigure_tenant_networks(self, task):
        """Detach the tenant networks (recorded and requested ones).

        :raises: NetworkError after trying every detachment.
        """
        recorded = task.node.driver_internal_info.get(TENANT_ATTACHMENTS)
        name = self._teardown_name(task)
        try:
            client = self._client()
            info = (hil_node.node_at_undeploy(client, task.node, name)
                    if name else None)
        except exception.HILError as e:
            raise self._network_error(task, 'detach the tenant networks', e)
        if info is None:
            self._unbind_vifs(task)
            self._forget(task, TENANT_ATTACHMENTS, VIF_NETWORKS)
            return
        ours = self._is_ours(task, name, info)
        with _as_ironic():
            wanted = hil_node.tenant_attachments(task.node, name, info,
                                                 recorded, ours)
            order = hil_node.detach_order(
                task.node, info, wanted,
                task.node.driver_internal_info.get(BOOT_NETWORK))
        errors = hil_node.detach_each(client, name, order)
        if errors:
            raise self._network_error(task, 'detach the tenant networks',
                                      '; '.join(errors))
        self._unbind_vifs(task)
        # Not the networks only instance_info requests: the tenant writes
        # it (Ironic 39.0.0: owner members, lessee admins, also on an
        # ACTIVE node) and could name another project's VIF network, which
        # the plugin's HIL user, a member of that project too, would
        # delete while unused (between its creation and its first connect
        # in that project's deploy).
        mine = hil_node.own_networks(info, recorded, task.node.
                                     driver_internal_info.get(VIF_NETWORKS))
        hil_vifs.delete_unused(client, [network for _nic, network in order
                                        if network in mine])
        if recorded is not None:
            task.node.del_driver_internal_info(TENANT_ATTACHMENTS)
            task.node.save()
        self._forget(task, VIF_NETWORKS)
        if wanted:
            LOG.info('Node %(node)s (HIL %(hil)s) left its tenant networks',
                     {'node': task.node.uuid, 'hil': name})

    # --- the retry of a failed teardown ---

    @periodics.node_periodic(
        purpose='detaching HIL networks a failed teardown left',
        spacing=lambda: CONF.hil.cleanup_interval,
        filters={'provision_state_in': _LEFTOVER_STATES, 'reserved': False},
        predicate=_has_hil_leftovers,
        predicate_extra_fields=['driver_internal_info'])
    def detach_leftovers(self, task, manager, context):
        """Retry the HIL detachments of a failed undeploy, rollback, clean.

        A HIL that was down or answered errors during a teardown leaves
        the node in error (or deploy/clean failed) with its attachments
        recorded in driver_internal_info; once HIL answers again this
        detaches them, as the teardown would have, without an operator.
        The node's state is left as it is.
        """
        node = task.node
        if (node.provision_state not in _LEFTOVER_STATES
                or not _has_hil_leftovers(node)):
            return False
        task.upgrade_lock(purpose='detaching HIL leftovers')
        try:
            self.unconfigure_tenant_networks(task)
            self.remove_provisioning_network(task)
        except (ironic_exc.NetworkError, ironic_exc.InvalidParameterValue,
                ironic_exc.MissingParameterValue) as e:
            LOG.warning('Node %(node)s: HIL leftovers of a failed teardown '
                        'still attached, next try in %(sec)d s: %(err)s',
                        {'node': node.uuid,
                         'sec': CONF.hil.cleanup_interval, 'err': e})
            return
        LOG.info('Node %(node)s: detached the HIL networks a failed '
                 'teardown had left', {'node': node.uuid})
        # In the node's history, not as an error: last_error keeps what
        # made the teardown fail.
        manager_utils.node_history_record(
            node, event='HIL networks left by a failed teardown detached',
            event_type='hil-cleanup')
        node.save()

    @periodics.node_periodic(
        purpose='checking HIL for networks of an earlier deployment',
        spacing=lambda: CONF.hil.cleanup_interval,
        filters={'provision_state_in': _AT_REST_STATES, 'reserved': False},
        predicate=_needs_rest_check,
        predicate_extra_fields=['driver_internal_info'])
    def detach_earlier_deployments(self, task, manager, context):
        """Detach the HIL networks a node at rest has, once per rest.

        An available or manageable node has no network in HIL. One that
        was deleted while ACTIVE and enrolled again (same name, so same
        HIL node) records nothing of the networks it had: its HIL node
        stays on the boot and tenant networks of its last deployment.
        HIL is asked once (a request costs HIL a password hash with
        database auth); the node is then marked checked until its next
        deploy. Networks are detached only when HIL holds the node for
        the node's own project; another project's are left alone.
        """
        node = task.node
        if (node.provision_state not in _AT_REST_STATES
                or not _needs_rest_check(node)):
            return False
        task.upgrade_lock(purpose='detaching HIL networks of an earlier '
                                  'deployment')
        node = task.node
        if (node.provision_state not in _AT_REST_STATES
                or not _needs_rest_check(node)):
            return
        try:
            name = hil_node_name(node)
            others = hil_node_users(name, but=node.uuid)
            if others:
                # Theirs to use: not ours to detach (not marked: once the
                # mapping is fixed, the check runs).
                LOG.warning('Node %(node)s maps to HIL node %(hil)s, as '
                            'Ironic node(s) %(others)s do: not checked '
                            'for networks of an earlier deployment',
                            {'node': node.uuid, 'hil': name,
                             'others': ', '.join(others)})
                return
            client = self._client()
            info, known = hil_node.lookup_at_undeploy(client, node, name)
            pairs = hil_node.attachments(info) if info else []
            ours = bool(pairs) and self._is_ours(task, name, info)
        except exception.HILError as e:
            LOG.warning('Node %(node)s: cannot check HIL for networks of an '
                        'earlier deployment, next try in %(sec)d s: '
                        '%(err)s', {'node': node.uuid, 'err': e,
                                    'sec': CONF.hil.cleanup_interval})
            return
        except (ironic_exc.InvalidParameterValue,
                ironic_exc.MissingParameterValue) as e:
            LOG.warning('Node %(node)s: cannot check HIL for networks of an '
                        'earlier deployment: %(err)s',
                        {'node': node.uuid, 'err': e})
            return
        if not known:
            # Not marked: asked again every [hil] cleanup_interval (a HIL
            # request each) until the mapping names a node HIL knows.
            return
        if ours:
            errors = hil_node.detach_each(client, name, pairs)
            if errors:
                LOG.warning('Node %(node)s: HIL networks of an earlier '
                            'deployment still attached, next try in '
                            '%(sec)d s: %(err)s',
                            {'node': node.uuid, 'err': '; '.join(errors),
                             'sec': CONF.hil.cleanup_interval})
                return
            hil_vifs.delete_unused(client, [net for _nic, net in pairs])
            event = ('HIL node %s was %s still attached to %s of an earlier '
                     'deployment (the node was deleted and enrolled '
                     'again?): detached' % (
                         name, node.provision_state,
                         ', '.join('%s/%s' % p for p in pairs)))
            LOG.warning('Node %(node)s: %(event)s',
                        {'node': node.uuid, 'event': event})
            manager_utils.node_history_record(node, event=event,
                                              event_type='hil-cleanup')
        node.set_driver_internal_info(AT_REST_CHECKED, True)
        node.save()

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

    # --- VIFs: Neutron ports carried to HIL ---

    @staticmethod
    def _neutron():
        try:
            return neutron_client.get_client()
        except exception.NeutronError as e:
            raise ironic_exc.NetworkError(str(e))

    @staticmethod
    def _vif_ports(task):
        """[(Ironic port, VIF id)] of the ports that record a VIF.

        :raises: VifRefused for a VIF on a port group (HIL knows nics
            only).
        """
        for pg in task.portgroups:
            vif = pg.internal_info.get(TENANT_VIF_KEY)
            if vif:
                raise exception.VifRefused(
                    'Node %(node)s: VIF %(vif)s is on port group %(pg)s; '
                    'the hil network interface carries VIFs of ports '
                    '(HIL nics) only' % {'node': task.node.uuid,
                                         'vif': vif, 'pg': pg.uuid})
        return [(p, p.internal_info[TENANT_VIF_KEY])
                for p in task.ports
                if p.internal_info.get(TENANT_VIF_KEY)]

    def _resolve_vifs(self, task, labels, only=None):
        """The node's VIFs, checked, with their nic and HIL network.

        :param only: resolve this VIF id only.
        :returns: [{'vif', 'nic', 'port', 'network', 'neutron_network',
            'segmentation_id', 'local_link'}]
        :raises: VifRefused, NeutronError (the library's)
        """
        pairs = [(p, v) for p, v in self._vif_ports(task)
                 if only is None or v == only]
        if not pairs:
            return []
        project = hil_node.hil_project(task.node)
        result = []
        with neutron_client.get_client() as neutron:
            for port, vif in pairs:
                entry = hil_vifs.resolve(neutron, task.node, project, vif)
                entry.update(nic=labels[port.uuid], port=port.uuid,
                             local_link=port.local_link_connection or {})
                result.append(entry)
        return result

    @staticmethod
    def _record_vifs(task, vifs):
        record = dict(task.node.driver_internal_info.get(VIF_NETWORKS)
                      or {})
        for v in vifs:
            record[v['vif']] = {'nic': v['nic'], 'network': v['network'],
                                'neutron_network': v['neutron_network']}
        task.node.set_driver_internal_info(VIF_NETWORKS, record)

    def _bind_vifs(self, task, vifs):
        """Bind each VIF's Neutron port to the node; wait for ACTIVE.

        Called once HIL has the nics on the VIFs' networks, so that an
        ACTIVE port (bmi_driver's ML2 driver bmi_hil sets it at once) is
        true. As Ironic 39.0.0's neutron interface (add_ports_to_network,
        wait_for_port_status): a port that no mechanism driver binds, or
        that is not ACTIVE within [neutron] hil_port_active_timeout, fails
        the deploy when [neutron] fail_on_port_binding_failure (Ironic's
        option) is set, else is a warning.

        :raises: NetworkError
        """
        if not vifs:
            return
        fatal = getattr(CONF.neutron, 'fail_on_port_binding_failure', True)
        errors = []
        # Every VIF is bound, also after one failed (when not fatal).
        with neutron_client.get_client() as neutron:
            for v in vifs:
                try:
                    self._bind_one(task, neutron, v)
                except exception.NeutronError as e:
                    errors.append(str(e))
                    if fatal:
                        break
        if errors:
            msg = ('Node %(node)s: binding its VIFs in Neutron failed: '
                   '%(err)s' % {'node': task.node.uuid,
                                'err': '; '.join(errors)})
            if fatal:
                LOG.error(msg)
                raise ironic_exc.NetworkError(msg)
            LOG.warning(msg)

    @staticmethod
    def _bind_one(task, neutron, v):
        neutron_client.check_bound(neutron.bind(
            v['vif'], task.node.uuid, v['local_link'],
            device_id=task.node.instance_uuid))
        timeout = CONF.neutron.hil_port_active_timeout
        if not timeout:
            return
        port = neutron.wait_active(v['vif'], timeout)
        if port.get('status') != neutron_client.ACTIVE:
            raise exception.NeutronError(
                msg='port %s is %s (binding:vif_type %s) after %d s, not '
                    'ACTIVE' % (v['vif'], port.get('status'),
                                port.get('binding_vif_type'), timeout))

    def _unbind_vifs(self, task, only=None):
        """Unbind the Neutron ports of the node's VIFs (recorded or not).

        :raises: NetworkError
        """
        vifs = set((task.node.driver_internal_info.get(VIF_NETWORKS)
                    or {}))
        vifs.update(p.internal_info.get(TENANT_VIF_KEY)
                    for p in task.ports)
        vifs.discard(None)
        if only is not None:
            vifs &= {only}
        if not vifs:
            return
        try:
            with neutron_client.get_client() as neutron:
                for vif in sorted(vifs):
                    neutron.unbind(vif)
        except exception.NeutronError as e:
            raise self._network_error(task, 'unbind the VIFs in Neutron',
                                      e)

    def vif_attach(self, task, vif_info):
        """Record a VIF (a Neutron port of the node's project) on a port.

        A port or network of another project is refused. On an active
        node the VIF joins HIL at once (Nova's interface attach).

        :raises: VifAlreadyAttached, NoFreePhysicalPorts,
            InvalidParameterValue (a refused VIF), NetworkError
        """
        vif_id = vif_info['id']
        with _as_ironic(), neutron_client.get_client() as neutron:
            hil_vifs.resolve(neutron, task.node, hil_project(task.node),
                             vif_id)
        port_like_obj = common.get_free_port_like_object(
            task, vif_id, set(), vif_info)
        self._save_vif_to_port_like_obj(port_like_obj, vif_id)
        LOG.debug('VIF %(vif)s recorded on %(obj)s of node %(node)s',
                  {'vif': vif_id, 'obj': port_like_obj.uuid,
                   'node': task.node.uuid})
        if task.node.provision_state in _LIVE_VIF_STATES:
            try:
                self._plug_vif(task, vif_id)
            except Exception:
                self._clear_vif_from_port_like_obj(port_like_obj)
                raise

    def _plug_vif(self, task, vif_id):
        """Join one VIF's network in HIL now, then bind its port."""
        name = self._deploy_name(task)
        client = self._client_or_error(task)
        created = []
        done = []
        with _as_ironic():
            try:
                name, info, labels = self._hil_view(task, client, name)
                vifs = self._resolve_vifs(task, labels, only=vif_id)
                entries = [{'network': v['network'], 'nic': v['nic'],
                            'channel': None} for v in vifs]
                plan = self._join(task, client, name, info, labels, vifs,
                                  entries, done, created)
            except exception.HILError as e:
                self._undo_tenant(task, client, name, done, created)
                raise self._network_error(task, 'join the VIF\'s network',
                                          e)
        before = {key: task.node.driver_internal_info.get(key)
                  for key in (TENANT_ATTACHMENTS, VIF_NETWORKS)}
        recorded = list(before[TENANT_ATTACHMENTS] or [])
        recorded.extend({'nic': label, 'network': network,
                         'channel': channel}
                        for label, network, channel in plan)
        task.node.set_driver_internal_info(TENANT_ATTACHMENTS, recorded)
        self._record_vifs(task, vifs)
        task.node.save()
        try:
            self._bind_vifs(task, vifs)
        except ironic_exc.NetworkError:
            # The port is not bound ACTIVE: the attach fails (vif_attach
            # forgets the VIF), so HIL must not carry its network either.
            self._undo_plug(task, client, name, vif_id, before, done,
                            created)
            raise

    def _undo_plug(self, task, client, name, vif_id, before, done,
                   created):
        """Undo a live attach whose Neutron port was not bound.

        Best effort, as :meth:`_undo_tenant`: what HIL refuses to detach
        now is still found on the nics by the undeploy.
        """
        try:
            self._unbind_vifs(task, only=vif_id)
        except ironic_exc.NetworkError as e:
            LOG.warning('Node %(node)s: could not unbind VIF %(vif)s after '
                        'a failed attach: %(err)s',
                        {'node': task.node.uuid, 'vif': vif_id, 'err': e})
        self._undo_tenant(task, client, name, done, created)
        for key, value in before.items():
            if value is None:
                task.node.del_driver_internal_info(key)
            else:
                task.node.set_driver_internal_info(key, value)
        task.node.save()

    def vif_detach(self, task, vif_id):
        """Forget a VIF; undo what it joined in HIL and Neutron.

        The HIL attachment it made (recorded at deploy or attach) is
        detached, its Neutron port unbound, its HIL network deleted when
        no nic uses it any more. Idempotent.

        :raises: VifNotAttached, NetworkError
        """
        port_like_obj = self._get_port_like_obj_by_vif_id(task, vif_id)
        record = dict(task.node.driver_internal_info.get(VIF_NETWORKS)
                      or {})
        joined = record.get(vif_id)
        if joined:
            name = self._teardown_name(task)
            client = self._client_or_error(task)
            try:
                info = (hil_node.node_at_undeploy(client, task.node, name)
                        if name else None)
                if info is not None and self._is_ours(task, name, info):
                    client.detach_network(name, joined['nic'],
                                          joined['network'])
            except exception.HILError as e:
                raise self._network_error(
                    task, 'detach VIF %s\'s network' % vif_id, e)
            hil_vifs.delete_unused(client, [joined['network']])
            attachments = [
                a for a in task.node.driver_internal_info.get(
                    TENANT_ATTACHMENTS) or []
                if (a['nic'], a['network']) != (joined['nic'],
                                                joined['network'])]
            task.node.set_driver_internal_info(TENANT_ATTACHMENTS,
                                               attachments)
        self._unbind_vifs(task, only=vif_id)
        if joined:
            del record[vif_id]
            task.node.set_driver_internal_info(VIF_NETWORKS, record)
            task.node.save()
        self._clear_vif_from_port_like_obj(port_like_obj)
