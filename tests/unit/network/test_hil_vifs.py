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

"""VIFs (Neutron ports) carried to HIL by the ``hil`` network interface.

HIL is the in-process HIL-compatible test server, Neutron's HTTP API a
requests_mock fake (tests/unit/network/fake_neutron.py); the nodes, ports
and tasks are Ironic's own.
"""

from ironic.common import exception as ironic_exc
from ironic.common import states

from bmi_driver.network import hil
from bmi_driver.network import hil_client
from tests.unit.network import fake_neutron
from tests.unit.network import test_hil

LESSEE = test_hil.LESSEE
NET_X = '11111111-1111-1111-1111-111111111111'
NET_Y = '22222222-2222-2222-2222-222222222222'
NET_OTHER = '33333333-3333-3333-3333-333333333333'
HIL_X = 'neutron-' + NET_X
HIL_Y = 'neutron-' + NET_Y


class VIFTestCase(test_hil.HILNetworkTestCase):

    def setUp(self):
        super().setUp()
        self.neutron = self.useFixture(fake_neutron.FakeNeutron())
        self.config(auth_type='none', endpoint_override=fake_neutron.URL,
                    hil_port_active_timeout=2, group='neutron')
        self.neutron.add_network(NET_X, LESSEE, 101)
        self.neutron.add_network(NET_Y, LESSEE, 102)
        self.neutron.add_network(NET_OTHER, 'other', 103)
        self.neutron.add_port('vif-1', NET_X, LESSEE)
        self.neutron.add_port('vif-2', NET_Y, LESSEE)
        self.neutron.add_port('vif-3', NET_X, LESSEE)
        # Forged: another project's port; a port on another's network.
        self.neutron.add_port('vif-foreign', NET_X, 'other')
        self.neutron.add_port('vif-foreign-net', NET_OTHER, LESSEE)

    def hil_networks(self):
        return self.hil.snapshot()['networks']

    def set_state(self, state):
        self.node.refresh()
        self.node.provision_state = state
        self.node.save()

    def attach_two(self):
        with self.acquire() as task:
            self.interface.vif_attach(task, {'id': 'vif-1'})
            self.interface.vif_attach(task, {'id': 'vif-2'})

    def configure_fails(self, error):
        """Attach both VIFs; the tenant networks' step raises ``error``."""
        self.attach_two()
        with self.acquire() as task:
            self.interface.add_provisioning_network(task)
            return self.assertRaises(
                error, self.interface.configure_tenant_networks, task)

    def deploy(self):
        with self.acquire() as task:
            self.interface.add_provisioning_network(task)
            self.interface.configure_tenant_networks(task)
        self.set_state(states.ACTIVE)

    def assert_unbound(self, vif):
        port = self.neutron.ports[vif]
        self.assertEqual('', port['binding:host_id'])
        self.assertEqual({}, port['binding:profile'])
        self.assertEqual('DOWN', port['status'])


class TestAttach(VIFTestCase):

    def test_attach_list_detach(self):
        with self.acquire() as task:
            self.interface.vif_attach(task, {'id': 'vif-1'})
            self.assertEqual([{'id': 'vif-1'}],
                             self.interface.vif_list(task))
            # The PXE port is preferred.
            pxe_port = [p for p in task.ports if p.pxe_enabled][0]
            self.assertEqual('vif-1', self.interface.get_current_vif(
                task, pxe_port))
            self.assertEqual('vif-1', pxe_port.internal_info[
                'tenant_vif_port_id'])
            self.assertRaises(ironic_exc.VifAlreadyAttached,
                              self.interface.vif_attach, task,
                              {'id': 'vif-1'})
            self.interface.vif_attach(task, {'id': 'vif-2'})
            self.assertRaises(ironic_exc.NoFreePhysicalPorts,
                              self.interface.vif_attach, task,
                              {'id': 'vif-3'})
            self.assertEqual(['vif-1', 'vif-2'], sorted(
                v['id'] for v in self.interface.vif_list(task)))
            self.interface.vif_detach(task, 'vif-1')
            self.assertEqual([{'id': 'vif-2'}],
                             self.interface.vif_list(task))
            self.assertRaises(ironic_exc.VifNotAttached,
                              self.interface.vif_detach, task, 'vif-1')
        # Nothing reached HIL before a deploy.
        self.assertNotIn(HIL_X, self.hil_networks())

    def test_attach_to_given_port(self):
        with self.acquire() as task:
            port = [p for p in task.ports if not p.pxe_enabled][0]
            self.interface.vif_attach(task, {'id': 'vif-1',
                                             'port_uuid': port.uuid})
            self.assertEqual('vif-1', self.interface.get_current_vif(
                task, port))

    def test_port_of_another_project_refused(self):
        with self.acquire() as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self.interface.vif_attach, task,
                                  {'id': 'vif-foreign'})
            self.assertIn('Neutron port of another project', str(e))
            self.assertNotIn('project other', str(e))
            self.assertEqual([], self.interface.vif_list(task))

    def test_network_of_another_project_refused(self):
        with self.acquire() as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self.interface.vif_attach, task,
                                  {'id': 'vif-foreign-net'})
            self.assertIn('Neutron network %s of another project'
                          % NET_OTHER, str(e))
            self.assertNotIn('project other', str(e))
            self.assertEqual([], self.interface.vif_list(task))

    def test_unknown_port_refused(self):
        with self.acquire() as task:
            self.assertRaises(ironic_exc.NetworkError,
                              self.interface.vif_attach, task,
                              {'id': 'vif-nowhere'})
            self.assertEqual([], self.interface.vif_list(task))

    def test_flat_network_refused(self):
        self.neutron.add_network('flat-net', LESSEE, None, net_type='flat')
        self.neutron.add_port('vif-flat', 'flat-net', LESSEE)
        with self.acquire() as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self.interface.vif_attach, task,
                                  {'id': 'vif-flat'})
            self.assertIn('HIL carries VLAN networks only', str(e))


class TestDeploy(VIFTestCase):

    def test_two_vifs_join_hil_and_are_bound(self):
        self.attach_two()
        self.deploy()
        nets = self.hil_networks()
        for name in (HIL_X, HIL_Y):
            self.assertEqual(LESSEE, nets[name]['owner'])
            self.assertEqual([LESSEE], nets[name]['access'])
        on_nics = self.networks()
        # vif-1 went to the PXE port (eth0), vif-2 to eth1; tagged VLANs.
        self.assertIn(HIL_X, on_nics['eth0'].values())
        self.assertEqual('prov', on_nics['eth0']['vlan/native'])
        self.assertEqual({'vlan/%s' % nets[HIL_Y]['net_id']: HIL_Y},
                         on_nics['eth1'])
        for vif in ('vif-1', 'vif-2'):
            port = self.neutron.ports[vif]
            self.assertEqual(self.node.uuid, port['binding:host_id'])
            self.assertEqual('baremetal', port['binding:vnic_type'])
            self.assertEqual('baremetal:none', port['device_owner'])
            self.assertEqual(1, len(
                port['binding:profile']['local_link_information']))
            self.assertEqual('ACTIVE', port['status'])
        self.node.refresh()
        recorded = self.node.driver_internal_info[hil.VIF_NETWORKS]
        self.assertEqual({'vif-1', 'vif-2'}, set(recorded))
        self.assertEqual(HIL_Y, recorded['vif-2']['network'])

    def test_network_name_taken_by_another_project(self):
        # HIL names are global: a project with HIL credentials of its own
        # took neutron-<id> first. The deploy fails without naming it.
        hil_client.get_client().ensure_network(HIL_X, 'other')
        with self.acquire() as task:
            self.interface.vif_attach(task, {'id': 'vif-1'})
            self.interface.add_provisioning_network(task)
            e = self.assertRaises(ironic_exc.NetworkError,
                                  self.interface.configure_tenant_networks,
                                  task)
        self.assertIn('is not project %s\'s own' % LESSEE, str(e))
        self.assertNotIn('other', str(e))
        self.assertEqual('other', self.hil_networks()[HIL_X]['owner'])

    def test_undeploy_deletes_no_network_instance_info_names(self):
        # instance_info is the tenant's to write, also on an ACTIVE node:
        # naming another project's VIF network there must not make the
        # undeploy delete it (the plugin's HIL user is a member of that
        # project too, and it is unused between its creation and its
        # first connect in that project's deploy).
        theirs = 'neutron-' + NET_OTHER
        hil_client.get_client().ensure_network(theirs, 'other')
        with self.acquire() as task:
            self.interface.vif_attach(task, {'id': 'vif-1'})
        self.deploy()
        self.set_tenant_networks([{'network': theirs, 'nic': 'eth1',
                                   'channel': 'vlan/%s' % self.hil_networks()[
                                       theirs]['net_id']}])
        self.set_state(states.DELETING)
        with self.acquire() as task:
            self.interface.unconfigure_tenant_networks(task)
        self.assertIn(theirs, self.hil_networks())
        # The node's own VIF network went, as before.
        self.assertNotIn(HIL_X, self.hil_networks())

    def test_undeploy_leaves_nothing(self):
        self.attach_two()
        self.deploy()
        self.set_state(states.DELETING)
        with self.acquire() as task:
            self.interface.unconfigure_tenant_networks(task)
            self.interface.remove_provisioning_network(task)
            # Idempotent.
            self.interface.unconfigure_tenant_networks(task)
        self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())
        self.assertNotIn(HIL_X, self.hil_networks())
        self.assertNotIn(HIL_Y, self.hil_networks())
        for vif in ('vif-1', 'vif-2'):
            self.assert_unbound(vif)
        self.node.refresh()
        self.assertNotIn(hil.VIF_NETWORKS, self.node.driver_internal_info)

    def test_network_kept_while_another_node_uses_it(self):
        self.attach_two()
        self.deploy()
        # Another nic of the project on HIL_X: the network must stay.
        other = self.make_node('node-free', name='node-free')
        self.config(allow_connect_free_node=True, group='hil')
        self.neutron.add_port('vif-o', NET_X, LESSEE)
        with self.acquire(other) as task:
            self.interface.vif_attach(task, {'id': 'vif-o'})
            self.interface.add_provisioning_network(task)
            self.interface.configure_tenant_networks(task)
        self.set_state(states.DELETING)
        with self.acquire() as task:
            self.interface.unconfigure_tenant_networks(task)
        self.assertIn(HIL_X, self.hil_networks())
        self.assertNotIn(HIL_Y, self.hil_networks())

    def test_direct_and_vif_networks_both_join(self):
        self.set_tenant_networks([{'network': 'net-a', 'nic': 'eth1'}])
        with self.acquire() as task:
            self.interface.vif_attach(task, {'id': 'vif-2'})
        self.deploy()
        on_nics = self.networks()
        self.assertIn(HIL_Y, on_nics['eth0'].values())
        self.assertEqual({'vlan/1001': 'net-a'}, on_nics['eth1'])

    def test_direct_entry_naming_a_vif_network_refused(self):
        self.set_tenant_networks([{'network': HIL_X, 'nic': 'eth1'}])
        e = self.configure_fails(ironic_exc.InvalidParameterValue)
        self.assertIn('attach a VIF', str(e))
        self.assertNotIn(HIL_X, self.hil_networks())

    def test_binding_failure_fails_the_deploy(self):
        self.neutron.binds = False
        e = self.configure_fails(ironic_exc.NetworkError)
        self.assertIn('binding_failed', str(e))

    def test_binding_failure_seen_without_waiting(self):
        # hil_port_active_timeout 0: no wait, but the update's answer
        # (ML2 binds within it) still says binding_failed.
        self.config(hil_port_active_timeout=0, group='neutron')
        self.neutron.binds = False
        e = self.configure_fails(ironic_exc.NetworkError)
        self.assertIn('binding_failed', str(e))
        self.assertIn('vif-1', str(e))

    def test_binding_failure_tolerated_when_configured(self):
        self.config(fail_on_port_binding_failure=False, group='neutron')
        self.neutron.binds = False
        self.attach_two()
        self.deploy()
        self.assertIn(HIL_Y, self.networks()['eth1'].values())
        # Both ports are bound (host, profile), one failure does not stop
        # the next.
        for vif in ('vif-1', 'vif-2'):
            self.assertEqual(self.node.uuid,
                             self.neutron.ports[vif]['binding:host_id'])

    def test_port_not_active_in_time_fails_the_deploy(self):
        # Bound, but still DOWN after hil_port_active_timeout: as Ironic's
        # wait_for_port_status, not a success.
        self.config(hil_port_active_timeout=1, group='neutron')
        self.neutron.activates = False
        e = self.configure_fails(ironic_exc.NetworkError)
        self.assertIn('not ACTIVE', str(e))

    def test_port_not_active_tolerated_when_configured(self):
        self.config(hil_port_active_timeout=1, group='neutron')
        self.config(fail_on_port_binding_failure=False, group='neutron')
        self.neutron.activates = False
        self.attach_two()
        self.deploy()
        self.assertIn(HIL_Y, self.networks()['eth1'].values())
        self.assertEqual('DOWN', self.neutron.ports['vif-2']['status'])

    def test_port_made_foreign_after_attach_refused_at_deploy(self):
        self.attach_two()
        self.neutron.ports['vif-2']['project_id'] = 'other'
        with self.acquire() as task:
            self.interface.add_provisioning_network(task)
            self.assertRaises(ironic_exc.InvalidParameterValue,
                              self.interface.configure_tenant_networks,
                              task)
        self.assertEqual({}, self.networks()['eth1'])


class TestActiveNode(VIFTestCase):
    """Nova's interface attach and detach on an active instance."""

    def test_detach_one(self):
        self.attach_two()
        self.deploy()
        with self.acquire() as task:
            self.interface.vif_detach(task, 'vif-2')
        self.assertEqual({}, self.networks()['eth1'])
        self.assertIn(HIL_X, self.networks()['eth0'].values())
        self.assertNotIn(HIL_Y, self.hil_networks())
        self.assert_unbound('vif-2')
        self.assertEqual('ACTIVE', self.neutron.ports['vif-1']['status'])
        self.node.refresh()
        self.assertEqual(
            ['eth0'], [a['nic'] for a in self.node.driver_internal_info[
                hil.TENANT_ATTACHMENTS] if a['network'] != 'prov'])

    def test_attach_whose_port_is_not_bound_is_undone(self):
        # HIL joined, then no mechanism driver bound the port: the attach
        # fails and leaves neither a HIL attachment nor a network, nor a
        # binding, nor a record (ACTIVE means HIL carries the port, and
        # HIL carries only what is attached).
        with self.acquire() as task:
            self.interface.vif_attach(task, {'id': 'vif-1'})
        self.deploy()
        self.neutron.binds = False
        with self.acquire() as task:
            self.assertRaises(ironic_exc.NetworkError,
                              self.interface.vif_attach, task,
                              {'id': 'vif-2'})
        self.assertEqual({}, self.networks()['eth1'])
        self.assertNotIn(HIL_Y, self.hil_networks())
        self.assert_unbound('vif-2')
        self.node.refresh()
        info = self.node.driver_internal_info
        self.assertEqual(['vif-1'], list(info[hil.VIF_NETWORKS]))
        self.assertNotIn(HIL_Y, [a['network'] for a in
                                 info[hil.TENANT_ATTACHMENTS]])
        with self.acquire() as task:
            self.assertEqual(['vif-1'], [
                v['id'] for v in self.interface.vif_list(task)])
        # vif-1 is untouched.
        self.assertIn(HIL_X, self.networks()['eth0'].values())
        self.assertEqual('ACTIVE', self.neutron.ports['vif-1']['status'])

    def test_attach_joins_at_once(self):
        with self.acquire() as task:
            self.interface.vif_attach(task, {'id': 'vif-1'})
        self.deploy()
        with self.acquire() as task:
            self.interface.vif_attach(task, {'id': 'vif-2'})
        self.assertIn(HIL_Y, self.networks()['eth1'].values())
        self.assertEqual('ACTIVE', self.neutron.ports['vif-2']['status'])
        self.set_state(states.DELETING)
        with self.acquire() as task:
            self.interface.unconfigure_tenant_networks(task)
        self.assertEqual({}, self.networks()['eth1'])
        self.assertNotIn(HIL_Y, self.hil_networks())
