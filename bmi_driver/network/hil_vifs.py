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

"""What a VIF (a Neutron port id) means in HIL (no Ironic).

Nova's ironic driver attaches Neutron ports to a node (``vif_attach``);
the ``hil`` network interface carries them to HIL by one rule:

* one HIL network per Neutron network, ``[neutron] hil_network_prefix`` +
  the Neutron network id, created on demand as a network of the node's
  HIL project (owner and only project with access) and deleted when no
  nic uses it any more;
* its nic is the HIL nic of the Ironic port the VIF is recorded on, joined
  on a tagged VLAN (the HIL network's own);
* the Neutron port must be of the node's project, and so must its network
  (a forged VIF, another project's port or network, is refused); the
  network must be a ``vlan`` (or untyped) network: HIL carries VLANs.

HIL 8c6de221 does not let a project-owned network choose its VLAN (it
refuses a ``net_id``: "Project-owned networks must use network ID
allocation"), so the VLAN on the switch is the one HIL allocates from its
pool, not the Neutron segmentation id; the segmentation id is recorded for
the operator's eyes only.

The node and ports are duck-typed as in :mod:`hil_node`; the clients are
:class:`~bmi_driver.network.neutron_client.NeutronClient` and
:class:`~bmi_driver.network.hil_client.HILClient`.
"""

from oslo_log import log

from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.network import hil_client

LOG = log.getLogger(__name__)

# Neutron network types a HIL network can stand for.  None: a caller that
# may not read provider attributes (not an admin) sees no type.
_VLAN_TYPES = (None, 'vlan')


def hil_network_name(network_id):
    """The HIL network of Neutron network ``network_id``.

    :raises: HILInvalidName
    """
    return hil_client.check_name(
        'network', CONF.neutron.hil_network_prefix + network_id)


def is_vif_network(name):
    """Whether HIL network ``name`` is one this interface makes."""
    prefix = CONF.neutron.hil_network_prefix
    return bool(prefix) and name.startswith(prefix)


def resolve(neutron, node, project, vif_id):
    """Check a VIF against the node's project; what it maps to.

    A refusal never names the other project (the caller learns nothing
    about whose port or network the id is).

    :returns: {'vif', 'neutron_network', 'segmentation_id', 'network'
        (the HIL network)}.
    :raises: VifRefused (a port or network of another project, a network
        type HIL cannot carry), NeutronError.
    """
    port = neutron.get_port(vif_id)
    if port.get('project_id') != project:
        raise exception.VifRefused(
            'Node %(node)s (project %(project)s): VIF %(vif)s is a Neutron '
            'port of another project; only ports of the node\'s own '
            'project are attached' % {
                'node': node.uuid, 'project': project, 'vif': vif_id})
    net = neutron.get_network(port['network_id'])
    if net.get('project_id') != project:
        raise exception.VifRefused(
            'Node %(node)s (project %(project)s): VIF %(vif)s is on Neutron '
            'network %(net)s of another project; only networks of the '
            'node\'s own project are carried to HIL' % {
                'node': node.uuid, 'project': project, 'vif': vif_id,
                'net': port['network_id']})
    net_type = net.get('provider_network_type')
    if net_type not in _VLAN_TYPES:
        raise exception.VifRefused(
            'Node %(node)s: VIF %(vif)s is on Neutron network %(net)s of '
            'type %(type)s; HIL carries VLAN networks only' % {
                'node': node.uuid, 'vif': vif_id, 'net': net['id'],
                'type': net_type})
    return {'vif': vif_id, 'neutron_network': net['id'],
            'segmentation_id': net.get('provider_segmentation_id'),
            'network': hil_network_name(net['id'])}


def check_direct(node, entries):
    """Refuse instance_info tenant networks that are the VIFs' own.

    HIL networks named with ``[neutron] hil_network_prefix`` belong to
    Neutron networks and are joined through VIFs only: listing one in
    instance_info could put a nic on a network whose Neutron port was
    never bound (or of a project the VIF check would refuse).

    :raises: VifRefused
    """
    for entry in entries:
        if is_vif_network(entry['network']):
            raise exception.VifRefused(
                'Node %(node)s: instance_info/%(field)s names HIL network '
                '%(net)s, which stands for a Neutron network: attach a VIF '
                '(a Neutron port) of that network instead' % {
                    'node': node.uuid, 'net': entry['network'],
                    'field': CONF.hil.tenant_networks_field})


def merge(node, direct, vifs):
    """instance_info's tenant networks and the VIFs', as one request.

    Neither wins: both are joined. A VIF network named in instance_info is
    refused (:func:`check_direct`); two VIFs of one Neutron network on one
    nic are refused; the rest (a channel two networks want) is HIL's to
    refuse at the connect.

    :param direct: node_facts.tenant_networks(node).
    :param vifs: [{'nic': label, 'network': HIL network, 'vif': id}].
    :returns: [{'network', 'nic', 'channel'}].
    :raises: VifRefused
    """
    check_direct(node, direct)
    result = list(direct)
    seen = {}
    for v in vifs:
        key = (v['nic'], v['network'])
        if key in seen:
            raise exception.VifRefused(
                'Node %(node)s: VIFs %(a)s and %(b)s are both on Neutron '
                'network %(net)s and on nic %(nic)s' % {
                    'node': node.uuid, 'a': seen[key], 'b': v['vif'],
                    'net': v['network'], 'nic': v['nic']})
        seen[key] = v['vif']
        result.append({'network': v['network'], 'nic': v['nic'],
                       'channel': None})
    return result


def ensure_networks(client, project, vifs):
    """Create the HIL networks of ``vifs`` that do not exist yet.

    :returns: the networks created now.
    :raises: HILError (HILConflict when one exists as another project's).
    """
    created = []
    for name in sorted({v['network'] for v in vifs}):
        if client.ensure_network(name, project):
            created.append(name)
    return created


def delete_unused(client, networks):
    """Delete each VIF network that no nic uses any more; never fails.

    :returns: the networks deleted.
    """
    deleted = []
    for name in sorted(set(networks)):
        if not is_vif_network(name):
            continue
        try:
            if client.delete_network_if_unused(name):
                deleted.append(name)
        except exception.HILError as e:
            LOG.warning('Could not delete HIL network %(net)s: %(err)s',
                        {'net': name, 'err': e})
    return deleted
