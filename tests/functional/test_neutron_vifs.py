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

"""Nova's path for networks: VIFs (Neutron ports) through the hil interface.

The lab's real Neutron (tools/lab/neutron.py), HIL (the plugin's non-admin
user), Open vSwitch and Ironic all-in-one; fake power, so no VM boots (the
switch ports are taps). Two Neutron networks of the node's project, a port
on each, attached with Ironic's VIF API as Nova's ironic driver does; a
deploy puts the nics on one HIL network per Neutron network and the switch
ports on their VLANs, and each Neutron port is bound ACTIVE by
bmi_driver's ML2 driver ``bmi_hil`` (the lab's only mechanism driver,
Ironic's ``fail_on_port_binding_failure`` at its default); a detach on the
active node removes one; the undeploy leaves no HIL attachment, no HIL
network and no Neutron binding.
"""

import os
import uuid

from ironicclient.common.apiclient import exceptions as ir_exc
import requests
from testtools import content

from tests.functional import test_ironic
from tests.functional import test_isolation
from tools.lab import e2e
from tools.lab import hil_real
from tools.lab import nova

PROJECT = 'e2e'


class NeutronVIFTestCase(test_isolation.HILNodeTestCase):

    def setUp(self):
        super().setUp()
        neutron = self.env['services']['neutron']
        # A missing Neutron fails loudly (never skips).
        self.assertTrue(neutron.get('running'), 'the lab\'s Neutron is not '
                        'running: python -m tools.lab start neutron')
        self.neutron = neutron['url'] + '/v2.0'

    # --- Neutron (noauth: a request with no project is an admin's) ---

    def _neutron(self, method, path, body=None):
        resp = requests.request(method, self.neutron + path, json=body,
                                timeout=30)
        self.assertLess(resp.status_code, 300, resp.text)
        return resp.json() if resp.text else None

    def network(self, project=PROJECT):
        net = self._neutron('POST', '/networks', {'network': {
            'name': self.unique('net'), 'project_id': project,
            'provider:network_type': 'vlan',
            'provider:physical_network': self.env['services']['neutron'][
                'physnet']}})['network']
        self.addCleanup(self._neutron, 'DELETE', '/networks/' + net['id'])
        return net

    def subnet(self, net, cidr, project=PROJECT):
        return self._neutron('POST', '/subnets', {'subnet': {
            'network_id': net['id'], 'project_id': project, 'cidr': cidr,
            'ip_version': 4}})['subnet']

    def port(self, net, project=PROJECT):
        port = self._neutron('POST', '/ports', {'port': {
            'network_id': net['id'], 'project_id': project}})['port']
        self.addCleanup(self._delete_port, port['id'])
        return port

    def _delete_port(self, port_id):
        requests.delete(self.neutron + '/ports/' + port_id, timeout=30)

    def neutron_port(self, port_id):
        return self._neutron('GET', '/ports/' + port_id)['port']

    def hil_network_exists(self, name):
        try:
            self.net.admin.call('GET', 'network/' + name)
            return True
        except hil_real.HILError as e:
            if e.status == 404:
                return False
            raise

    # --- the node ---

    def _ironic_node(self, hil):
        # What Ironic's neutron interface sends as local_link_information.
        return super()._ironic_node(hil, port_fields={
            mac: {'local_link_connection': {
                'switch_id': '00:00:00:00:00:01', 'switch_info': 'br-lab',
                'port_id': tap}}
            for mac, tap in ((hil.mac, hil.boot_port),
                             (hil.tenant_mac, hil.tenant_port))})

    def assert_bound(self, port_id, node_uuid, tap=None):
        """Bound as Ironic's neutron interface leaves a port: ACTIVE."""
        port = self.neutron_port(port_id)
        self.assertEqual(
            ('ACTIVE', node_uuid, 'baremetal', 'other', 'baremetal:none'),
            (port['status'], port['binding:host_id'],
             port['binding:vnic_type'], port['binding:vif_type'],
             port['device_owner']), port)
        if tap is not None:
            self.assertEqual(
                [tap], [link['port_id'] for link in
                        port['binding:profile']['local_link_information']])

    def assert_unbound(self, port_id):
        port = self.neutron_port(port_id)
        self.assertEqual(('', {}, 'unbound', 'DOWN'),
                         (port['binding:host_id'] or '',
                          port['binding:profile'], port['binding:vif_type'],
                          port['status']), port)

    def assert_nothing_left(self, hil, node_uuid, hil_networks, vifs):
        """No HIL attachment nor VIF network, no binding, node released."""
        self.assertEqual({e2e.BOOT_NIC: {}, e2e.TENANT_NIC: {}},
                         self.net.node_networks(hil))
        for name in hil_networks:
            self.assertFalse(self.hil_network_exists(name), name)
        for vif in vifs:
            self.assert_unbound(vif)
        self.assert_released(node_uuid)
        self.assertFalse(self.ironic.node.get(node_uuid).last_error)

    def assert_on_hil(self, hil, boot_vif_net, tenant_vif_net):
        """Each nic on its VIF's HIL network; the switch agrees with HIL.

        The boot nic: the boot network native, the first VIF's tagged;
        the tenant nic: the second VIF's.
        """
        nets = self.net.node_networks(hil)
        boot_net = self.net.boot_networks[PROJECT].hil_network
        self.assertEqual(boot_net, nets[e2e.BOOT_NIC]['vlan/native'])
        self.assertEqual({'vlan/%d' % self.net.vlan(boot_vif_net)},
                         {c for c, n in nets[e2e.BOOT_NIC].items()
                          if n == boot_vif_net})
        self.assertEqual({'vlan/%d' % self.net.vlan(tenant_vif_net):
                          tenant_vif_net}, nets[e2e.TENANT_NIC])
        vlans = self.net.check_switch_agrees(hil)
        self.assertEqual((None, [self.net.vlan(tenant_vif_net)]),
                         vlans[e2e.TENANT_NIC])
        self.assertIn(self.net.vlan(boot_vif_net), vlans[e2e.BOOT_NIC][1])

    def test_bmi_hil_binds_only_baremetal_ports(self):
        # bmi_hil is ML2's only driver in the lab: a port it leaves (not
        # vnic_type baremetal) is bound by nobody; a baremetal one on the
        # lab's physnet is ACTIVE at once; clearing the host unbinds it.
        net = self.network()
        host = str(uuid.uuid4())
        normal, bm = self.port(net)['id'], self.port(net)['id']
        self._neutron('PUT', '/ports/' + normal, {'port': {
            'binding:host_id': host}})
        port = self.neutron_port(normal)
        self.assertEqual(('binding_failed', 'DOWN'),
                         (port['binding:vif_type'], port['status']), port)
        self._neutron('PUT', '/ports/' + bm, {'port': {
            'binding:host_id': host, 'binding:vnic_type': 'baremetal'}})
        port = self.neutron_port(bm)
        # ML2 (Neutron 29.0.0) records which driver bound each level.
        self.assertEqual(('other', 'ACTIVE', {'0': 'bmi_hil'}),
                         (port['binding:vif_type'], port['status'],
                          port['binding:vif_details'].get('bound_drivers')),
                         port)
        self._neutron('PUT', '/ports/' + bm, {'port': {
            'binding:host_id': ''}})
        self.assert_unbound(bm)

    def test_two_vifs_deploy_detach_undeploy(self):
        image = self.project_image(PROJECT)
        hil = self._hil_node(5)
        node = self._ironic_node(hil)
        net1, net2 = self.network(), self.network()
        vif1, vif2 = self.port(net1)['id'], self.port(net2)['id']
        hil1, hil2 = 'neutron-' + net1['id'], 'neutron-' + net2['id']
        # As Nova's ironic driver does: the VIF API, before the deploy.
        self.ironic.node.vif_attach(node.uuid, vif1)
        self.ironic.node.vif_attach(node.uuid, vif2)
        self.assertEqual({vif1, vif2}, {
            v.id for v in self.ironic.node.vif_list(node.uuid)})
        # A forged VIF (a port of another project) is refused.
        foreign = self.port(net1, project='tenant-b')['id']
        self.assertRaises(ir_exc.BadRequest, self.ironic.node.vif_attach,
                          node.uuid, foreign)
        self.deploy(node.uuid, image.uuid)

        # HIL: one network per Neutron network, the project's own.
        for name in (hil1, hil2):
            info = self.net.admin.call('GET', 'network/' + name)
            self.assertEqual(PROJECT, info['owner'])
            self.assertEqual([PROJECT], info['access'])
        # The first VIF took the PXE port (Ironic's preference), tagged
        # beside the boot network; the second the tenant nic.
        self.assert_on_hil(hil, hil1, hil2)
        # Neutron: bound as Ironic's neutron interface binds, and ACTIVE
        # (bmi_hil: HIL had the nics on the networks first).
        for vif, tap in ((vif1, hil.boot_port), (vif2, hil.tenant_port)):
            self.assert_bound(vif, node.uuid, tap)

        # Nova's interface detach on the active node.
        self.ironic.node.vif_detach(node.uuid, vif2)
        nets = self.net.node_networks(hil)
        self.assertEqual({}, nets[e2e.TENANT_NIC])
        self.assertIn(hil1, nets[e2e.BOOT_NIC].values())
        vlans = self.net.check_switch_agrees(hil)
        self.assertEqual((None, []), vlans[e2e.TENANT_NIC])
        self.assertFalse(self.hil_network_exists(hil2))
        self.assert_unbound(vif2)
        self.assert_bound(vif1, node.uuid, hil.boot_port)

        # Undeploy: nothing left in HIL nor in Neutron's bindings.
        self.ironic.node.set_provision_state(node.uuid, 'deleted')
        self.wait(node.uuid, 'available')
        self.assert_nothing_left(hil, node.uuid, (hil1, hil2), (vif1, vif2))

    def test_nova_spawn_two_networks_detach_destroy(self):
        # Nova 34.0.0's own driver (tools/lab/nova.py's harness) with the
        # Neutron ports as its network_info, as nova-compute would have.
        path = os.path.join(self.tmp, 'nova.raw')
        with open(path, 'wb') as f:
            f.write(os.urandom(test_ironic.IMAGE_SIZE))
        images, image = nova.upload_image(self.env, PROJECT, path,
                                          self.unique('nova'))
        self.addCleanup(images.delete_image, image, ignore_missing=True)
        hil = self._hil_node(6)
        node = self._ironic_node(hil)
        nova.prepare_node(self.ironic, node.uuid)
        net1, net2 = self.network(), self.network()
        self.subnet(net1, '10.81.1.0/24')
        self.subnet(net2, '10.81.2.0/24')
        vif1, vif2 = self.port(net1)['id'], self.port(net2)['id']
        hil1, hil2 = 'neutron-' + net1['id'], 'neutron-' + net2['id']
        harness = nova.from_services(
            self.env, neutron_url=self.env['services']['neutron']['url'])
        harness.start()
        self.addCleanup(harness.stop)
        self.addOnException(lambda exc_info: self.addDetail(
            'nova-harness.log', content.text_content(harness.log_tail(60))))

        spawned = harness.call(
            'spawn', node=node.uuid, image=image,
            flavor=nova.flavor(root_gb=1), project_id=PROJECT,
            name='vm-neutron',
            network={'source': 'neutron', 'ports': [vif1, vif2]})
        inst = spawned['instance']
        n = self.ironic.node.get(node.uuid)
        self.assertEqual(('active', inst), (n.provision_state,
                                            n.instance_uuid))
        # Nova attached the Neutron ports as VIFs; HIL and the switch
        # put each nic on its network's HIL network.
        self.assertEqual({vif1, vif2}, {
            v.id for v in self.ironic.node.vif_list(node.uuid)})
        self.assert_on_hil(hil, hil1, hil2)
        for vif, tap in ((vif1, hil.boot_port), (vif2, hil.tenant_port)):
            self.assert_bound(vif, node.uuid, tap)

        # Nova's interface detach of the second network.
        harness.call('detach_interface', instance=inst, port=vif2)
        self.assertEqual({}, self.net.node_networks(hil)[e2e.TENANT_NIC])
        self.assertFalse(self.hil_network_exists(hil2))
        self.assert_unbound(vif2)
        self.assert_bound(vif1, node.uuid, hil.boot_port)

        # destroy: nothing left in HIL, Neutron's bindings or bmi's state.
        harness.call('destroy', instance=inst)
        self.wait(node.uuid, 'available')
        self.assert_nothing_left(hil, node.uuid, (hil1, hil2), (vif1, vif2))
        self.assertEqual([], self.ironic.node.vif_list(node.uuid))
