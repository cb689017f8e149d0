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

"""The ``hil`` interface acts only on the HIL node that is the node's own.

Ironic 39.0.0's default policy lets a member of a node's owner project set
its driver_info, name and lessee, also on an ACTIVE node; the plugin acts
on HIL with its own credentials. Against the HIL test server, as
test_hil.py.
"""

import inspect
from unittest import mock

from ironic.common import exception as ironic_exc
from ironic.common import states
from ironic.conductor import task_manager

from bmi_driver.network import hil
from tests.unit.network import test_hil
from tests.unit.network.test_hil import LESSEE

DEPLOYED = {'eth0': {'vlan/native': 'prov', 'vlan/1002': 'net-b'},
            'eth1': {}}


class Base(test_hil.HILNetworkTestCase):

    def setUp(self):
        super().setUp()
        # The victim: Ironic node node-1 of tenant-a, deployed.
        self.deploy_on_net_b()
        self.node.refresh()
        self.node.provision_state = states.ACTIVE
        self.node.save()
        self.assertEqual(DEPLOYED, self.networks())

    def attacker(self, **kwargs):
        """Owner owner-b's node X, pointed at the victim's HIL node.

        Its lessee is the victim's project (so HIL's project check
        passes), its ports name node-1's nics by extra/hil_nic.
        """
        kwargs.setdefault('driver_info', {'hil_node': 'node-1'})
        kwargs.setdefault('instance_info', {'hil_networks': [
            {'network': 'net-a', 'nic': 'eth1'}]})
        node = self.make_node('node-1', name='x', owner='owner-b',
                              ports=False, **kwargs)
        self.make_port(node, '52:54:00:00:aa:01', pxe_enabled=True,
                       extra={'hil_nic': 'eth0'})
        self.make_port(node, '52:54:00:00:aa:02', pxe_enabled=False,
                       extra={'hil_nic': 'eth1'})
        return node


class TestSharedHILNode(Base):
    """1(a): a HIL node another Ironic node maps to is refused."""

    def test_validate_refuses_before_asking_hil(self):
        node = self.attacker()
        calls = self.asking()
        with self.acquire(node) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self.interface.validate, task)
            self.assertIn('HIL node node-1 is not available', str(e))
            self.assertRaises(ironic_exc.InvalidParameterValue,
                              self.interface.validate_project, task)
        self.assertEqual([], calls)

    def test_deploy_and_attach_change_nothing_in_hil(self):
        node = self.attacker()
        with self.acquire(node) as task:
            self.assertRaises(ironic_exc.NetworkError,
                              self.interface.add_provisioning_network, task)
            self.assertRaises(ironic_exc.NetworkError,
                              self.interface.configure_tenant_networks, task)
            self.assertNotIn(hil.BOOT_NETWORK,
                             task.node.driver_internal_info)
        self.assertEqual(DEPLOYED, self.networks())

    def test_by_name_too(self):
        # The victim maps by driver_info, the attacker by its name.
        self.node.name = 'victim'
        self.node.driver_info = {'hil_node': 'node-1'}
        self.node.save()
        node = self.attacker(driver_info={})
        node.name = 'node-1'
        node.save()
        with self.acquire(node) as task:
            self.assertRaises(ironic_exc.NetworkError,
                              self.interface.add_provisioning_network, task)
        self.assertEqual(DEPLOYED, self.networks())

    def test_at_rest_check_leaves_it_alone(self):
        node = self.attacker(provision_state=states.AVAILABLE)
        with task_manager.acquire(self.context, node.uuid,
                                  shared=True) as task:
            inspect.unwrap(hil.HILNetwork.detach_earlier_deployments)(
                self.interface, task, mock.Mock(), self.context)
        node.refresh()
        self.assertEqual(DEPLOYED, self.networks())
        # Not marked: checked once the mapping is fixed.
        self.assertTrue(hil._needs_rest_check(node))

    def test_users(self):
        node = self.attacker()
        self.assertEqual(sorted([self.node.uuid, node.uuid]),
                         hil.hil_node_users('node-1'))
        self.assertEqual([node.uuid],
                         hil.hil_node_users('node-1', but=self.node.uuid))
        self.assertEqual([], hil.hil_node_users('node-free'))

    def test_sole_user_still_deploys(self):
        node = self.make_node('node-free', owner='owner-b')
        self.config(allow_connect_free_node=True, group='hil')
        with self.acquire(node) as task:
            self.interface.validate(task)
            self.interface.add_provisioning_network(task)
        self.assertEqual({'vlan/native': 'prov'},
                         self.networks('node-free')['eth0'])
        self.assertEqual(LESSEE,
                         self.hil.snapshot()['nodes']['node-free'][
                             'project'])


class TestRecordedHILNode(Base):
    """1(b): the teardown acts on the HIL node recorded at deploy."""

    def remap(self, hil_node, node=None):
        node = node or self.node
        node.refresh()
        node.driver_info = {'hil_node': hil_node}
        node.save()

    def teardown(self, node=None):
        with self.acquire(node) as task:
            self.interface.unconfigure_tenant_networks(task)
            self.interface.remove_provisioning_network(task)

    def test_recorded_at_deploy(self):
        self.node.refresh()
        self.assertEqual('node-1', self.node.driver_internal_info[
            hil.DEPLOYED_HIL_NODE])

    def test_refused_deploy_cleanup_leaves_the_victim_alone(self):
        # The whole attack: X's deploy is refused, then Ironic cleans up
        # after it (and an undeploy does the same).
        node = self.attacker()
        with self.acquire(node) as task:
            self.assertRaises(ironic_exc.NetworkError,
                              self.interface.add_provisioning_network, task)
        self.teardown(node)
        self.assertEqual(DEPLOYED, self.networks())
        node.refresh()
        self.assertNotIn(hil.AT_REST_CHECKED, node.driver_internal_info)

    def test_a_remap_on_an_active_node_does_not_redirect_teardown(self):
        for hil_node in ('node-9', 'node-free'):
            self.remap(hil_node)
            self.teardown()
            self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())
            self.assertEqual({'eth0': {}, 'eth1': {}},
                             self.networks('node-free'))
            self.remap('node-1')
            self.deploy_on_net_b()

    def test_a_rename_neither(self):
        self.node.refresh()
        self.node.name = 'node-free'
        self.node.save()
        self.teardown()
        self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())
        self.node.refresh()
        self.assertNotIn(hil.DEPLOYED_HIL_NODE,
                         self.node.driver_internal_info)

    def test_vif_detach_uses_the_record(self):
        self.remap('node-9')
        info = dict(self.node.driver_internal_info)
        info[hil.VIF_NETWORKS] = {'vif-1': {
            'nic': 'eth0', 'network': 'net-b', 'neutron_network': 'n'}}
        self.node.driver_internal_info = info
        self.node.save()
        with self.acquire() as task:
            port = task.ports[0]
            port.internal_info = {hil.TENANT_VIF_KEY: 'vif-1'}
            port.save()
        with mock.patch.object(self.interface, '_unbind_vifs'), \
                self.acquire() as task:
            self.interface.vif_detach(task, 'vif-1')
        self.assertEqual({'vlan/native': 'prov'}, self.networks()['eth0'])

    def test_deploy_and_attach_refused_while_the_mapping_differs(self):
        self.config(allow_connect_free_node=True, group='hil')
        self.remap('node-free')
        with self.acquire() as task:
            e = self.assertRaises(ironic_exc.NetworkError,
                                  self.interface.configure_tenant_networks,
                                  task)
            self.assertIn('is deployed on HIL node node-1', str(e))
            self.assertRaises(ironic_exc.NetworkError,
                              self.interface.add_provisioning_network, task)
            task.node.provision_state = states.DEPLOYING
            self.assertRaises(ironic_exc.InvalidParameterValue,
                              self.interface.validate, task)
        self.assertEqual({'eth0': {}, 'eth1': {}},
                         self.networks('node-free'))
        self.assertIsNone(self.hil.snapshot()['nodes']['node-free'][
            'project'])

    def test_the_record_keeps_the_hil_node_taken(self):
        # The victim's owner remaps it: its deployment still holds node-1.
        self.remap('node-9')
        node = self.attacker()
        with self.acquire(node) as task:
            self.assertRaises(ironic_exc.NetworkError,
                              self.interface.add_provisioning_network, task)
        self.assertEqual(DEPLOYED, self.networks())

    def test_deletion_record_names_the_recorded_node(self):
        self.remap('node-9')
        with self.acquire() as task:
            self.assertEqual('node-1',
                             self.interface.deletion_record(task)['node'])


class TestUnknownAtTeardown(Base):
    """2: a HIL node not found at teardown is not one seen clean."""

    def rest_check(self):
        with task_manager.acquire(self.context, self.node.uuid,
                                  shared=True) as task:
            inspect.unwrap(hil.HILNetwork.detach_earlier_deployments)(
                self.interface, task, mock.Mock(), self.context)
        self.node.refresh()

    def test_remapped_deployment_without_record(self):
        # A deployment older than the record, remapped while ACTIVE to a
        # name HIL does not know.
        self.node.refresh()
        self.node.del_driver_internal_info(hil.DEPLOYED_HIL_NODE)
        self.node.driver_info = {'hil_node': 'node-9'}
        self.node.save()
        with self.acquire() as task:
            self.interface.unconfigure_tenant_networks(task)
            self.interface.remove_provisioning_network(task)
        self.node.refresh()
        # Nothing to detach there, undeploy ends, records forgotten...
        self.assertFalse(hil._has_hil_leftovers(self.node))
        self.assertEqual(DEPLOYED, self.networks())
        # ... but not marked checked: the at-rest check finds node-1 once
        # the mapping is fixed.
        self.assertTrue(hil._needs_rest_check(self.node))
        self.node.provision_state = states.AVAILABLE
        self.node.save()
        self.rest_check()
        self.assertEqual(DEPLOYED, self.networks())
        self.assertTrue(hil._needs_rest_check(self.node))
        self.node.driver_info = {}
        self.node.save()
        self.rest_check()
        self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())
        self.assertFalse(hil._needs_rest_check(self.node))

    def test_recorded_node_gone_from_hil(self):
        self.node.refresh()
        info = dict(self.node.driver_internal_info)
        info[hil.DEPLOYED_HIL_NODE] = 'node-9'
        self.node.driver_internal_info = info
        self.node.save()
        with self.acquire() as task:
            self.interface.unconfigure_tenant_networks(task)
            self.interface.remove_provisioning_network(task)
        self.node.refresh()
        self.assertNotIn(hil.DEPLOYED_HIL_NODE,
                         self.node.driver_internal_info)
        self.assertTrue(hil._needs_rest_check(self.node))
