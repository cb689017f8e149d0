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

"""HIL's view of one BMI node, and what to ask HIL for it (no Ironic).

The logic below the ``hil`` network interface
(:mod:`bmi_driver.network.hil`), as ``ironic/common/neutron.py`` is below
Ironic's neutron network interface: which HIL nic each Ironic port is,
whether HIL lets the node be deployed for its project, which nics join
which networks, and what to detach at teardown, read from HIL's actual
state of the nics. The network model is in the interface's docstring and
doc/network.md.

The node and its ports are duck-typed (``node.uuid`` and what
:mod:`bmi_driver.common.node_facts` reads; ``port.uuid``, ``address``,
``extra``, ``pxe_enabled``); what the interface records in
driver_internal_info is passed in as values. Errors are bmi_driver's:
:class:`~bmi_driver.exception.HILNodeUnfit` when HIL's view of the node
rules out what is asked, node-fact errors, and the client's ``HIL*``
errors; the interface translates them.
"""

import re

from oslo_log import log

from bmi_driver.common import node_facts
from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.network import hil_client

LOG = log.getLogger(__name__)

_MAC_RE = re.compile(r'^([0-9a-f]{2}:){5}[0-9a-f]{2}$')

# What node_facts.boot_network raises for a node whose boot network cannot
# be told now (no project, none in the registry, a broken registry).
_NO_BOOT_NETWORK = (exception.InvalidInput, exception.NodeFactMissing)


# --- what Ironic's node says, as HIL needs it ------------------------------

def hil_project(node):
    """The HIL project a node is deployed for, per [hil] project_source.

    :raises: NodeFactMissing, NodeFactInvalid (not a HIL name).
    """
    project = node_facts.hil_project(node)
    try:
        return hil_client.check_name('project', project)
    except exception.HILInvalidName as e:
        raise exception.NodeFactInvalid('Node %s: %s' % (node.uuid, e))


def boot_network(node):
    """The HIL network of the node's boot nics.

    Per-project mode ([bmi] boot_networks_file): the node's project's own
    boot network; shared mode: [hil] provisioning_network.

    :raises: NodeFactMissing, BootNetworkMissing, BootNetworkConfigError
    """
    net = node_facts.boot_network(node)
    return net.hil_network if net else CONF.hil.provisioning_network


# --- nics -------------------------------------------------------------------

def nic_label(hil_info, port):
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


def nic_labels(node, name, info, ports):
    """{port uuid: nic label} of every port of the node.

    :param name: the HIL node; ``info`` is HIL's record of it.
    :raises: HILNodeUnfit when a port is no nic of the HIL node.
    """
    labels = {}
    missing = []
    for port in ports:
        label = nic_label(info, port)
        if label is None:
            missing.append(port.extra.get('hil_nic') or port.address)
        labels[port.uuid] = label
    if missing:
        # HIL's nics for the operator only: the API user sees the text
        # (validate, last_error), and the HIL node may be another
        # project's.
        LOG.warning('Node %(node)s: HIL node %(hil)s has no nic for '
                    'port(s) %(ports)s; its nics: %(nics)s',
                    {'node': node.uuid, 'hil': name,
                     'ports': ', '.join(missing),
                     'nics': ', '.join('%s=%s' % (n['label'], n['macaddr'])
                                       for n in info.get('nics') or [])})
        raise exception.HILNodeUnfit(
            'HIL node %(hil)s has no nic for port(s) %(ports)s of node '
            '%(node)s' % {'hil': name, 'ports': ', '.join(missing),
                          'node': node.uuid})
    return labels


def boot_nics(node, ports, labels):
    """The sorted labels of the boot nics (ports with pxe_enabled).

    :raises: HILNodeUnfit when there is none.
    """
    boot = sorted({labels[p.uuid] for p in ports if p.pxe_enabled})
    if not boot:
        raise exception.HILNodeUnfit(
            'Node %s has no port with pxe_enabled: the hil network '
            'interface cannot tell which nic carries the disk.' % node.uuid)
    return boot


def resolve_nic(info, nic, name):
    """A nic named by HIL label or MAC address, as its label.

    :raises: HILNodeUnfit when HIL node ``name`` has no such nic.
    """
    for n in info.get('nics') or []:
        if n['label'] == nic:
            return nic
    if _MAC_RE.match(nic.lower()):
        for n in info.get('nics') or []:
            if (n.get('macaddr') or '').lower() == nic.lower():
                return n['label']
    raise exception.HILNodeUnfit(
        'Tenant network nic %(nic)s is not a nic (label or MAC) of HIL '
        'node %(hil)s' % {'nic': nic, 'hil': name})


# --- may the node be deployed for its project? ------------------------------

def refusal(node, name, holder, project):
    """Why the node cannot be deployed for project, or None.

    The sentence reaches the API user (validate, last_error): it does not
    name the project that holds the node, which the log says.

    :param holder: the HIL project that has the node now (None: free).
    """
    if holder == project:
        return None
    if holder is not None:
        LOG.warning('Node %(node)s is for project %(project)s, but HIL has '
                    'node %(hil)s in project %(holder)s: refused',
                    {'node': node.uuid, 'project': project, 'hil': name,
                     'holder': holder})
        return ('Deploy refused: HIL node %(hil)s is not available to '
                'project %(project)s of node %(node)s.'
                % {'hil': name, 'node': node.uuid, 'project': project})
    if not CONF.hil.allow_connect_free_node:
        return ('Deploy refused: HIL node %(hil)s is not allocated to '
                'project %(project)s (it is free). Connect it in HIL, '
                'or set [hil] allow_connect_free_node.'
                % {'hil': name, 'project': project})
    return None


def lookup_refusal(node, name, error):
    """Why HIL's record of the node could not be read, as a sentence."""
    if isinstance(error, exception.HILNodeNotFound):
        return ('HIL does not know node %(hil)s of node %(node)s: '
                '%(err)s' % {'hil': name, 'node': node.uuid, 'err': error})
    if isinstance(error, exception.HILNodeNotVisible):
        return ('Deploy refused: HIL node %(hil)s of node %(node)s is '
                'held by another project (it is not visible to this '
                'HIL user).' % {'hil': name, 'node': node.uuid})
    return ('Cannot validate node %(node)s with HIL: %(err)s'
            % {'node': node.uuid, 'err': error})


def is_ours(node, name, info, deployed_project):
    """Whether HIL has the node in the project it is deployed for.

    Networks of a node that HIL holds for another project are never
    touched, also when Ironic cleans up after a refused deploy.

    :param deployed_project: the project recorded at deploy, or None (then
        the node's project now, if it has one).
    :raises: NodeFactInvalid
    """
    project = deployed_project
    if not project:
        try:
            project = hil_project(node)
        except exception.NodeFactMissing:
            project = None
    holder = info.get('project')
    if holder is not None and holder != project:
        LOG.warning('Node %(node)s: HIL has node %(hil)s in project '
                    '%(holder)s, not %(project)s: its networks are left '
                    'alone', {'node': node.uuid, 'hil': name,
                              'holder': holder, 'project': project})
    # A free node has no network attachments in HIL.
    return holder is not None and holder == project


def check_cabling(node, name, info, labels):
    """Refuse nics of the node that HIL shows without a switch port.

    HIL 8c6de221 shows a nic's ``port`` and ``switch`` to admins only;
    for other users it has no way to ask without changing something
    (connect_network answers "No port is connected to given nic." only
    when it is tried), and the deploy then fails at that connect.

    :raises: HILNodeUnfit
    """
    nics = {n['label']: n for n in info.get('nics') or []}
    uncabled = sorted(
        label for label in set(labels.values())
        if 'port' in nics.get(label, {})
        and not nics[label].get('port'))
    if uncabled:
        raise exception.HILNodeUnfit(
            'HIL node %(hil)s of node %(node)s: nic(s) %(nics)s are not '
            'cabled to a switch port in HIL' % {
                'hil': name, 'node': node.uuid,
                'nics': ', '.join(uncabled)})
    if any('port' not in nics.get(label, {})
           for label in labels.values()):
        LOG.debug('Node %(node)s: this HIL user does not see the '
                  'cabling of HIL node %(hil)s; not checked',
                  {'node': node.uuid, 'hil': name})


def check_boot_network(client, node, project):
    """In per-project mode: the project's boot network is its own.

    HIL knows the network; the project may use it; no other project
    may (a public network, or one open to others, would put their
    nodes on this project's boot network).

    :raises: HILNodeUnfit (also when HIL cannot show the network),
        NodeFactMissing, BootNetworkMissing, BootNetworkConfigError
    """
    net = node_facts.boot_network(node)
    if net is None:
        return
    try:
        info = client.get_network(net.hil_network)
    except exception.HILError as e:
        raise exception.HILNodeUnfit(
            'Boot network %(net)s of project %(project)s (node '
            '%(node)s) cannot be used: %(err)s' % {
                'net': net.hil_network, 'project': project,
                'node': node.uuid, 'err': e})
    access = info.get('access')
    others = sorted(set(access or []) - {project})
    why = None
    if access is None:
        why = 'it is public in HIL (every project may use it)'
    elif others:
        # Which ones to the log only: the text reaches the API user.
        LOG.warning('Boot network %(net)s of project %(project)s: HIL '
                    'gives also project(s) %(others)s access to it',
                    {'net': net.hil_network, 'project': project,
                     'others': ', '.join(others)})
        why = ('HIL gives other projects access to it too (the '
               'conductor\'s log says which)')
    elif project not in access and info.get('owner') != project:
        why = 'HIL does not give project %s access to it' % project
    if why:
        raise exception.HILNodeUnfit(
            'Boot network %(net)s of project %(project)s (node '
            '%(node)s) is not the project\'s own: %(why)s' % {
                'net': net.hil_network, 'project': project,
                'node': node.uuid, 'why': why})


# --- tenant networks ---------------------------------------------------------

def tenant_plan(client, node, name, info, ports, labels, entries=None):
    """The tenant attachments to make: [(label, network, channel)].

    A request without a channel takes the network's first tagged VLAN; a
    boot nic's native VLAN carries the boot network and is refused.

    :param entries: the request ({'network', 'nic', 'channel'} each);
        default: instance_info's (node_facts.tenant_networks).
    :raises: HILNodeUnfit, NodeFactInvalid, HILError (from HIL).
    """
    boot = set(boot_nics(node, ports, labels))
    plan = []
    if entries is None:
        entries = node_facts.tenant_networks(node)
    for entry in entries:
        label = resolve_nic(info, entry['nic'], name)
        channel = entry['channel']
        if channel is None:
            channels = client.get_network(entry['network'])['channels']
            tagged = [c for c in channels if c != hil_client.NATIVE]
            if not tagged:
                raise exception.HILNodeUnfit(
                    'HIL network %s has no tagged VLAN channel'
                    % entry['network'])
            channel = tagged[0]
        if label in boot and channel == hil_client.NATIVE:
            raise exception.HILNodeUnfit(
                'Tenant network %(net)s cannot use the native VLAN of '
                'boot nic %(nic)s: it carries %(prov)s' % {
                    'net': entry['network'], 'nic': label,
                    'prov': boot_network(node)})
        plan.append((label, entry['network'], channel))
    return plan


def tenant_attachments(node, name, info, recorded, ours):
    """The (nic label, network) pairs to detach at teardown, unordered.

    The recorded attachments; when HIL has the node in its project (``ours``)
    also what HIL has on the nics now (an attachment of this deploy that
    landed after its connect gave up, or that the record lost) and what
    instance_info requests; nothing when HIL holds the node for another
    project. The boot network is among them; see :func:`detach_order`.

    :param recorded: the attachments recorded at deploy (list of dicts with
        'nic' and 'network') or None.
    :raises: NodeFactMissing
    """
    wanted = {(a['nic'], a['network']) for a in recorded or []}
    if not ours:
        return set()
    for nic in info.get('nics') or []:
        for network in (nic.get('networks') or {}).values():
            wanted.add((nic['label'], network))
    try:
        for entry in node_facts.tenant_networks(node):
            wanted.add((resolve_nic(info, entry['nic'], name),
                        entry['network']))
    except exception.InvalidInput as e:
        LOG.warning('Node %(node)s: ignoring the tenant networks of '
                    'instance_info: %(err)s', {'node': node.uuid, 'err': e})
    return wanted


def own_networks(info, recorded, vif_networks):
    """The networks a teardown may delete when unused: the node's own.

    Those the deployment recorded (attachments, VIFs) and those HIL has on
    the node's nics (HIL joins a nic only to a network its project may
    use); not the ones instance_info merely requests.

    :param recorded: the attachments recorded at deploy, or None.
    :param vif_networks: driver_internal_info's VIF record, or None.
    """
    names = {a['network'] for a in recorded or []}
    names.update(v['network'] for v in (vif_networks or {}).values())
    for nic in info.get('nics') or []:
        names.update((nic.get('networks') or {}).values())
    return names


def detach_order(node, info, wanted, recorded_boot_network):
    """The pairs of ``wanted`` to detach, in the order to detach them.

    Tagged VLANs before a native one on the same nic: switches with HIL's
    native rule refuse the native VLAN's removal first. The boot networks
    ([hil] provisioning_network, the recorded one, the node's one now) are
    left for the removal of the provisioning network.
    """
    natives = {(n['label'], (n.get('networks') or {}).get(
        hil_client.NATIVE)) for n in info.get('nics') or []}
    boot = {CONF.hil.provisioning_network, recorded_boot_network}
    try:
        boot.add(boot_network(node))
    except _NO_BOOT_NETWORK:
        pass
    return [w for w in sorted(wanted, key=lambda w: (w in natives, w))
            if w[1] not in boot]


def attachments(info):
    """Every (nic label, network) HIL has on the node, in detach order.

    Tagged VLANs before the native one on each nic (see
    :func:`detach_order`), for a node that should have none at all.
    """
    pairs = []
    for nic in info.get('nics') or []:
        networks = nic.get('networks') or {}
        for _channel, network in sorted(
                networks.items(), key=lambda c: (c[0] == hil_client.NATIVE,
                                                 c[0])):
            pairs.append((nic['label'], network))
    return pairs


def detach_each(client, name, pairs):
    """Detach every (nic label, network) pair, trying all of them.

    The nics side by side, each nic's pairs in their order
    (``HILClient.detach_networks``).

    :returns: the failures, one 'nic/network: error' text each.
    """
    return ['%s/%s: %s' % (label, network, e)
            for label, network, e in client.detach_networks(name, pairs)]


# --- the boot network at teardown --------------------------------------------

def boot_networks_to_leave(node, recorded):
    """The recorded boot network and the current one, recorded first.

    :param recorded: the boot network recorded at deploy, or None.
    :raises: what :func:`boot_network` raises, when nothing is recorded.
    """
    networks = []
    if recorded:
        networks.append(recorded)
    try:
        current = boot_network(node)
    except _NO_BOOT_NETWORK as e:
        if not recorded:
            raise
        LOG.warning('Node %(node)s: leaving its recorded boot network '
                    '%(net)s only: %(err)s', {'node': node.uuid,
                                              'net': recorded, 'err': e})
        current = recorded
    if current not in networks:
        networks.append(current)
    return networks


def detach_boot_networks(client, name, info, networks):
    """Ask HIL to detach every nic of the node from each of ``networks``.

    Every nic is asked, also one that does not show the network: a
    connect that gave up may still be pending there (HIL then makes the
    detach wait for it).

    In per-project mode also the provisioning network, from the nics
    that show it: a tenant could request it as a tenant network until
    node_facts.tenant_networks refused boot networks, and the tenant
    detach leaves it (:func:`detach_order`). First: it is tagged there,
    and the boot network native.

    :raises: HILError after trying every detachment.
    """
    nics = info.get('nics') or []
    prov = CONF.hil.provisioning_network
    pairs = [] if prov in networks else [
        (nic['label'], prov) for nic in nics
        if prov in (nic.get('networks') or {}).values()]
    pairs.extend((nic['label'], net) for nic in nics for net in networks)
    errors = detach_each(client, name, pairs)
    if errors:
        raise exception.HILError(msg='; '.join(errors))


def node_at_undeploy(client, node, name):
    """HIL's record of the node, or None when there is none to undo.

    :func:`lookup_at_undeploy` without telling why there is none.

    :raises: HILError (other errors of HIL).
    """
    return lookup_at_undeploy(client, node, name)[0]


def lookup_at_undeploy(client, node, name):
    """(HIL's record of the node or None, whether HIL knows the node).

    A node HIL does not know (404 "Node ... does not exist."), or holds
    for a project this HIL user has no access to (401), has no network
    attachment this plugin could remove: a warning, not an error, so
    that an undeploy (and Ironic's cleanup after a failed deploy) ends.
    An unknown node is not one seen clean: the node's HIL node may be
    another name by the next look (a mapping fixed).

    :raises: HILError (other errors of HIL).
    """
    try:
        return client.get_node(name), True
    except exception.HILNodeNotFound as e:
        LOG.warning('Node %(node)s: HIL does not know node %(hil)s '
                    '(%(err)s): no HIL networks to remove',
                    {'node': node.uuid, 'hil': name, 'err': e})
        return None, False
    except exception.HILNodeNotVisible as e:
        LOG.warning('Node %(node)s: HIL holds node %(hil)s for a project '
                    'this HIL user has no access to (%(err)s): its '
                    'networks are left alone',
                    {'node': node.uuid, 'hil': name, 'err': e})
    return None, True
