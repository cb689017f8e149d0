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

"""The ``hil`` network interface on Ironic's test database.

HIL is the in-process HIL-compatible test server (the outside world); the
nodes, ports and tasks are Ironic's own.
"""

import inspect
from unittest import mock

import fixtures

from ironic.common import exception as ironic_exc
from ironic.common import states
from ironic.conductor import periodics
from ironic.conductor import task_manager
from ironic import objects
from ironic.tests.unit.db import base as db_base
from ironic.tests.unit.objects import utils as obj_utils
from oslo_utils import uuidutils
from stevedore import driver as stevedore_driver

from bmi_driver import exception
from bmi_driver.network import hil
from bmi_driver.network import hil_client
from tests import base as test_base
from tools.lab.hil_emulator import server

MAC0 = '52:54:00:00:00:01'
MAC1 = '52:54:00:00:00:02'
LESSEE = 'tenant-a'


MACS = {'node-1': (MAC0, MAC1),
        'node-free': ('52:54:00:00:01:01', '52:54:00:00:01:02'),
        'node-other': ('52:54:00:00:02:01', '52:54:00:00:02:02'),
        'node-9': ('52:54:00:00:03:01', '52:54:00:00:03:02')}


def seed():
    def nics(hil_node):
        other = hil_node == 'node-other'
        return [{'label': 'eth0', 'macaddr': MACS[hil_node][0],
                 'switch': 'sw0', 'port': 'gi1/0/1',
                 'networks': ({'vlan/native': 'prov', 'vlan/1003': 'net-c'}
                              if other else {})},
                {'label': 'eth1', 'macaddr': MACS[hil_node][1],
                 'switch': 'sw1', 'port': 'gi1/0/2'}]
    return {
        'action_delay': 0.01,
        'projects': [LESSEE, 'owner-b', 'other'],
        'nodes': {'node-1': {'project': LESSEE, 'nics': nics('node-1')},
                  'node-free': {'nics': nics('node-free')},
                  'node-other': {'project': 'other',
                                 'nics': nics('node-other')}},
        # node-other is deployed by someone else: on prov, with net-c.
        'networks': {'prov': {'owner': 'admin', 'access': []},
                     'net-a': {'owner': LESSEE, 'access': [LESSEE],
                               'net_id': '1001'},
                     'net-b': {'owner': LESSEE, 'access': [LESSEE],
                               'net_id': '1002'},
                     'net-c': {'owner': 'other', 'access': ['other'],
                               'net_id': '1003'}},
    }


class HILNetworkTestCase(db_base.DbTestCase):

    def setUp(self):
        super().setUp()
        test_base.enable_loggers()
        self.hil = server.HILServer(seed=seed()).start()
        self.addCleanup(self.hil.stop)
        self.config(url=self.hil.url, provisioning_network='prov',
                    action_poll_interval=0.01, action_timeout=10,
                    connect_retries=0, group='hil')
        self.interface = hil.HILNetwork()
        self.node = self.make_node('node-1', name='node-1')

    def make_node(self, hil_node, ports=True, instance_info=None, **kwargs):
        """An Ironic node mapped to a HIL node, with a port per HIL nic.

        Without a name, driver_info/hil_node does the mapping.
        """
        kwargs.setdefault('lessee', LESSEE)
        if not kwargs.get('name'):
            kwargs.setdefault('driver_info', {})['hil_node'] = hil_node
        node = obj_utils.create_test_node(
            self.context, uuid=uuidutils.generate_uuid(),
            driver='fake-hardware', instance_info=instance_info or {},
            **kwargs)
        if ports:
            for address, pxe in zip(MACS[hil_node], (True, False)):
                self.make_port(node, address, pxe_enabled=pxe)
        return node

    def make_port(self, node, address, **kwargs):
        return obj_utils.create_test_port(
            self.context, node_id=node.id, address=address,
            uuid=uuidutils.generate_uuid(), **kwargs)

    def drop_default_node(self):
        """Free HIL node-1 and its MACs for another Ironic node.

        The default node is deleted: the hil interface refuses a HIL node
        that two Ironic nodes map to.
        """
        for port in objects.Port.list_by_node_id(self.context,
                                                 self.node.id):
            port.destroy()
        self.node.destroy()

    def acquire(self, node=None):
        return task_manager.acquire(self.context, (node or self.node).uuid)

    def networks(self, hil_node='node-1'):
        nics = self.hil.snapshot()['nodes'][hil_node]['nics']
        return {label: nic['networks'] for label, nic in nics.items()}

    def set_tenant_networks(self, value, node=None):
        node = node or self.node
        info = dict(node.instance_info)
        info['hil_networks'] = value
        node.instance_info = info
        node.save()

    def asking(self):
        """Count the HIL requests of node and network lookups."""
        calls = []
        for name in ('get_node', 'get_network'):
            real = getattr(hil_client.HILClient, name)

            def counted(client, what, _real=real, _name=name):
                calls.append((_name, what))
                return _real(client, what)
            patcher = mock.patch.object(hil_client.HILClient, name,
                                        counted)
            patcher.start()
            self.addCleanup(patcher.stop)
        return calls

    def deploy_on_net_b(self):
        """node-1 on the boot network and on net-b (eth0, tagged)."""
        self.set_tenant_networks([{'network': 'net-b', 'nic': 'eth0'}])
        with self.acquire() as task:
            self.interface.add_provisioning_network(task)
            self.interface.configure_tenant_networks(task)


class TestEntryPoint(HILNetworkTestCase):

    def test_loads(self):
        mgr = stevedore_driver.DriverManager(
            'ironic.hardware.interfaces.network', 'hil')
        self.assertIs(hil.HILNetwork, mgr.driver)

    def test_properties(self):
        self.assertIn('hil_node', self.interface.get_properties())


class TestValidate(HILNetworkTestCase):

    def test_ok(self):
        with self.acquire() as task:
            self.interface.validate(task)

    def test_hil_node_from_driver_info(self):
        self.drop_default_node()
        node = self.make_node('node-1', name='ironic-name')
        node.driver_info = {'hil_node': 'node-1'}
        node.save()
        with self.acquire(node) as task:
            self.interface.validate(task)

    def test_no_name(self):
        node = self.make_node('node-9', ports=False)
        node.driver_info = {}
        node.save()
        with self.acquire(node) as task:
            self.assertRaises(ironic_exc.MissingParameterValue,
                              self.interface.validate, task)

    def test_unknown_node(self):
        node = self.make_node('node-9')
        with self.acquire(node) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self.interface.validate, task)
        self.assertIn('HIL does not know node node-9', str(e))

    def test_unreachable(self):
        self.config(url='http://127.0.0.1:9', group='hil')
        with self.acquire() as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self.interface.validate, task)
        self.assertIn('unreachable', str(e))

    def test_unknown_mac(self):
        log = self.useFixture(fixtures.FakeLogger(level='WARNING'))
        self.make_port(self.node, '52:54:00:00:00:99')
        with self.acquire() as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self.interface.validate, task)
        self.assertIn('52:54:00:00:00:99', str(e))
        # HIL's nics (the HIL node may be another project's) are the
        # operator's to see, in the log.
        self.assertNotIn(MAC1, str(e))
        self.assertNotIn('eth1', str(e))
        self.assertIn('eth1=%s' % MAC1, log.output)

    def test_nic_label_on_port(self):
        self.drop_default_node()
        node = self.make_node('node-1', ports=False)
        self.make_port(node, '52:54:00:00:00:77', extra={'hil_nic': 'eth1'},
                       pxe_enabled=True)
        with self.acquire(node) as task:
            self.interface.validate(task)
            self.interface.add_provisioning_network(task)
        self.assertEqual({'vlan/native': 'prov'}, self.networks()['eth1'])

    def test_no_pxe_port(self):
        self.drop_default_node()
        node = self.make_node('node-1', ports=False)
        self.make_port(node, MAC0, pxe_enabled=False)
        with self.acquire(node) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self.interface.validate, task)
        self.assertIn('pxe_enabled', str(e))

    def test_bad_tenant_networks(self):
        for bad in ('not json', {'network': 'net-a'}, [{'network': 'net-a'}],
                    [{'network': 'net-a', 'nic': 'eth1',
                      'channel': 'vlan/x'}],
                    [{'network': 'net-a', 'nic': 'eth1', 'vlan': 3}]):
            self.set_tenant_networks(bad)
            with self.acquire() as task:
                self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self.interface.validate, task)

    def test_tenant_networks_as_json_string(self):
        self.set_tenant_networks('[{"network": "net-a", "nic": "eth1"}]')
        with self.acquire() as task:
            self.interface.validate(task)

    def test_hil_asked_once_per_task(self):
        # Ironic's validate, the deploy interface's and prepare() ask
        # within one task: HIL answers the first.
        calls = self.asking()
        with self.acquire() as task:
            for _ in range(3):
                self.interface.validate(task)
        self.assertEqual([('get_node', 'node-1')], calls)
        # The next task asks again, and sees what HIL has now.
        hil_client.HILClient().detach_node(LESSEE, 'node-1')
        before = len(calls)
        with self.acquire() as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self.interface.validate, task)
        self.assertIn('it is free', str(e))
        self.assertEqual([('get_node', 'node-1')], calls[before:])

    def test_hil_asked_again_for_other_facts(self):
        calls = self.asking()
        with self.acquire() as task:
            self.interface.validate(task)
            # Another project within the task: HIL is asked for it.
            task.node.lessee = 'other'
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self.interface.validate, task)
        self.assertIn('not available to project other', str(e))
        self.assertNotIn(LESSEE, str(e))
        self.assertEqual(2, len(calls))


class TestProvisioningNetwork(HILNetworkTestCase):

    def test_add_and_remove(self):
        with self.acquire() as task:
            self.interface.add_provisioning_network(task)
            self.assertEqual({'eth0': {'vlan/native': 'prov'}, 'eth1': {}},
                             self.networks())
            # Idempotent.
            self.interface.add_provisioning_network(task)
            self.interface.remove_provisioning_network(task)
            self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())
            self.interface.remove_provisioning_network(task)
        # The node stays in its project: the plugin did not put it there.
        self.assertEqual(LESSEE,
                         self.hil.snapshot()['nodes']['node-1']['project'])

    def test_remove_saves_the_node_once(self):
        with self.acquire() as task:
            self.interface.add_provisioning_network(task)
        with self.acquire() as task:
            with mock.patch.object(task.node, 'save',
                                   wraps=task.node.save) as save:
                self.interface.remove_provisioning_network(task)
            self.assertEqual(1, save.call_count)
            info = task.node.driver_internal_info
            self.assertNotIn(hil.BOOT_NETWORK, info)
            self.assertIs(True, info[hil.AT_REST_CHECKED])
            # Again: nothing changes, nothing is saved.
            with mock.patch.object(task.node, 'save') as save:
                self.interface.remove_provisioning_network(task)
            save.assert_not_called()

    def test_other_project_refused(self):
        before = self.networks('node-other')
        node = self.make_node('node-other', instance_info={
            'hil_networks': [{'network': 'net-c', 'nic': 'eth0'}]})
        with self.acquire(node) as task:
            e = self.assertRaises(ironic_exc.NetworkError,
                                  self.interface.add_provisioning_network,
                                  task)
            self.assertIn('Deploy refused: HIL node node-other is not '
                          'available to project tenant-a', str(e))
            self.assertNotIn('project other', str(e))
            # Ironic cleans up after the failed deploy: the other project's
            # networks are left alone.
            self.interface.unconfigure_tenant_networks(task)
            self.interface.remove_provisioning_network(task)
        self.assertEqual({'vlan/native': 'prov', 'vlan/1003': 'net-c'},
                         before['eth0'])
        self.assertEqual(before, self.networks('node-other'))

    def test_free_node_refused(self):
        node = self.make_node('node-free')
        with self.acquire(node) as task:
            e = self.assertRaises(ironic_exc.NetworkError,
                                  self.interface.add_provisioning_network,
                                  task)
        self.assertIn('allow_connect_free_node', str(e))
        self.assertIsNone(self.hil.snapshot()['nodes']['node-free'][
            'project'])

    def test_free_node_connected_and_released(self):
        self.config(allow_connect_free_node=True, group='hil')
        node = self.make_node('node-free')
        with self.acquire(node) as task:
            self.interface.add_provisioning_network(task)
            self.assertEqual(LESSEE, self.hil.snapshot()['nodes'][
                'node-free']['project'])
            self.assertEqual(LESSEE, task.node.driver_internal_info[
                hil.CONNECTED_PROJECT])
            self.interface.remove_provisioning_network(task)
            self.assertNotIn(hil.CONNECTED_PROJECT,
                             task.node.driver_internal_info)
        self.assertIsNone(self.hil.snapshot()['nodes']['node-free'][
            'project'])

    def test_switch_error_leaves_nothing(self):
        self.config(allow_connect_free_node=True, group='hil')
        self.hil.fail_switch('sw0')
        node = self.make_node('node-free')
        with self.acquire(node) as task:
            e = self.assertRaises(ironic_exc.NetworkError,
                                  self.interface.add_provisioning_network,
                                  task)
            self.assertNotIn(hil.CONNECTED_PROJECT,
                             task.node.driver_internal_info)
        self.assertIn('ended in ERROR', str(e))
        state = self.hil.snapshot()['nodes']['node-free']
        self.assertIsNone(state['project'])
        self.assertEqual({}, state['nics']['eth0']['networks'])

    @staticmethod
    def _connect_answer_lost():
        """HIL applies connect_node, and its answer is lost."""
        real = hil_client.HILClient.connect_node

        def lost(client, project, node):
            real(client, project, node)
            raise exception.HILUnreachable(url=client.url,
                                           reason='read timed out')
        return mock.patch.object(hil_client.HILClient, 'connect_node', lost)

    def test_connect_whose_answer_is_lost_is_released(self):
        # HIL connects the free node, but its answer never arrives (a read
        # timeout, a proxy's 500). Before, the node was not recorded as
        # connected and stayed in the project after the undeploy: held
        # for it in HIL while Ironic had it available.
        self.config(allow_connect_free_node=True, group='hil')
        node = self.make_node('node-free')
        with self._connect_answer_lost():
            with self.acquire(node) as task:
                self.assertRaises(ironic_exc.NetworkError,
                                  self.interface.add_provisioning_network,
                                  task)
        # The rollback freed it.
        self.assertIsNone(self.hil.snapshot()['nodes']['node-free'][
            'project'])
        node.refresh()
        self.assertNotIn(hil.CONNECTED_PROJECT, node.driver_internal_info)

    def test_lost_connect_freed_by_teardown_when_rollback_fails(self):
        # HIL answers nothing more after the connect it applied: the
        # record stays, and the teardown frees the node once HIL answers.
        self.config(allow_connect_free_node=True, group='hil')
        node = self.make_node('node-free')
        down = exception.HILUnreachable(url='x', reason='down')
        with self._connect_answer_lost(), mock.patch.object(
                hil_client.HILClient, 'detach_node', side_effect=down):
            with self.acquire(node) as task:
                self.assertRaises(ironic_exc.NetworkError,
                                  self.interface.add_provisioning_network,
                                  task)
        node.refresh()
        self.assertEqual(LESSEE,
                         node.driver_internal_info[hil.CONNECTED_PROJECT])
        with self.acquire(node) as task:
            self.interface.unconfigure_tenant_networks(task)
            self.interface.remove_provisioning_network(task)
        self.assertIsNone(self.hil.snapshot()['nodes']['node-free'][
            'project'])

    def test_node_connected_by_someone_else_is_not_freed(self):
        # HIL has the node in the project by the time the plugin connects
        # it (someone else did): not the plugin's to free at undeploy.
        self.config(allow_connect_free_node=True, group='hil')
        node = self.make_node('node-free')

        def other_connects(client, project, hil_node):
            hil_client.HILClient._request(
                client, 'POST', '/project/%s/connect_node' % project,
                {'node': hil_node})
            return False
        with mock.patch.object(hil_client.HILClient, 'connect_node',
                               other_connects):
            with self.acquire(node) as task:
                self.interface.add_provisioning_network(task)
                self.assertNotIn(hil.CONNECTED_PROJECT,
                                 task.node.driver_internal_info)
                self.interface.remove_provisioning_network(task)
        self.assertEqual(LESSEE, self.hil.snapshot()['nodes']['node-free'][
            'project'])

    def test_validate_project(self):
        with self.acquire() as task:
            self.interface.validate_project(task)
        node = self.make_node('node-other')
        with self.acquire(node) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self.interface.validate_project, task)
            self.assertIn('not available to project tenant-a', str(e))
            self.assertNotIn('project other', str(e))
        node = self.make_node('node-free')
        with self.acquire(node) as task:
            self.assertRaises(ironic_exc.InvalidParameterValue,
                              self.interface.validate_project, task)
            self.config(allow_connect_free_node=True, group='hil')
            self.interface.validate_project(task)
        # Nothing changed in HIL.
        self.assertIsNone(self.hil.snapshot()['nodes']['node-free'][
            'project'])

    def test_project_mapping(self):
        self.config(project_source='owner', group='hil')
        node = self.make_node('node-other', owner='other')
        with self.acquire(node) as task:
            self.interface.add_provisioning_network(task)
            self.assertEqual('other', task.node.driver_internal_info[
                hil.DEPLOYED_PROJECT])
            # The project used at deploy is the one cleaned up, even if the
            # mapping changed since.
            self.config(project_source='lessee', group='hil')
            self.interface.remove_provisioning_network(task)
            self.assertNotIn(hil.DEPLOYED_PROJECT,
                             task.node.driver_internal_info)
        self.assertEqual({'vlan/1003': 'net-c'},
                         self.networks('node-other')['eth0'])
        self.config(project_source='driver_info', group='hil')
        self.drop_default_node()
        node = self.make_node('node-1', lessee=None,
                              driver_info={'hil_project': 'other'})
        with self.acquire(node) as task:
            self.assertRaises(ironic_exc.NetworkError,
                              self.interface.add_provisioning_network, task)

    def test_no_project(self):
        self.drop_default_node()
        node = self.make_node('node-1', lessee=None, owner=None)
        with self.acquire(node) as task:
            self.assertRaises(ironic_exc.MissingParameterValue,
                              self.interface.add_provisioning_network, task)
        self.config(default_project=LESSEE, group='hil')
        with self.acquire(node) as task:
            self.interface.add_provisioning_network(task)

    def test_unreachable(self):
        self.config(url='http://127.0.0.1:9', group='hil')
        with self.acquire() as task:
            e = self.assertRaises(ironic_exc.NetworkError,
                                  self.interface.add_provisioning_network,
                                  task)
        self.assertIn('unreachable', str(e))


class TestTenantNetworks(HILNetworkTestCase):

    def setUp(self):
        super().setUp()
        self.set_tenant_networks([
            {'network': 'net-a', 'nic': MAC1, 'channel': 'vlan/1001'},
            {'network': 'net-b', 'nic': 'eth0'}])
        with self.acquire() as task:
            self.interface.add_provisioning_network(task)

    def test_configure_and_unconfigure(self):
        with self.acquire() as task:
            self.interface.configure_tenant_networks(task)
            self.assertEqual(
                {'eth0': {'vlan/native': 'prov', 'vlan/1002': 'net-b'},
                 'eth1': {'vlan/1001': 'net-a'}}, self.networks())
            self.assertEqual(
                [{'nic': 'eth1', 'network': 'net-a', 'channel': 'vlan/1001'},
                 {'nic': 'eth0', 'network': 'net-b', 'channel': 'vlan/1002'}],
                task.node.driver_internal_info[hil.TENANT_ATTACHMENTS])
            # Idempotent.
            self.interface.configure_tenant_networks(task)
            self.interface.unconfigure_tenant_networks(task)
            self.assertEqual({'eth0': {'vlan/native': 'prov'}, 'eth1': {}},
                             self.networks())
            self.assertNotIn(hil.TENANT_ATTACHMENTS,
                             task.node.driver_internal_info)
            self.interface.unconfigure_tenant_networks(task)
            self.interface.remove_provisioning_network(task)
        self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())

    def test_unconfigure_uses_the_record(self):
        with self.acquire() as task:
            self.interface.configure_tenant_networks(task)
            info = dict(task.node.instance_info)
            del info['hil_networks']
            task.node.instance_info = info
            self.interface.unconfigure_tenant_networks(task)
        self.assertEqual({'eth0': {'vlan/native': 'prov'}, 'eth1': {}},
                         self.networks())

    def test_switch_error_rolls_back(self):
        self.hil.fail_switch('sw0')
        with self.acquire() as task:
            e = self.assertRaises(ironic_exc.NetworkError,
                                  self.interface.configure_tenant_networks,
                                  task)
            self.assertNotIn(hil.TENANT_ATTACHMENTS,
                             task.node.driver_internal_info)
        self.assertIn('node-1/eth0 ended in ERROR', str(e))
        # net-a (on eth1, sw1) was attached, then detached again.
        self.assertEqual({'eth0': {'vlan/native': 'prov'}, 'eth1': {}},
                         self.networks())

    def test_unreachable_hil_is_a_network_error(self):
        self.config(url='http://127.0.0.1:9', group='hil')
        with self.acquire() as task:
            e = self.assertRaises(ironic_exc.NetworkError,
                                  self.interface.configure_tenant_networks,
                                  task)
        self.assertIn('unreachable', str(e))
        with self.acquire() as task:
            e = self.assertRaises(ironic_exc.NetworkError,
                                  self.interface._plug_vif, task, 'vif-1')
        self.assertIn('unreachable', str(e))

    def test_native_vlan_of_boot_nic_refused(self):
        self.set_tenant_networks([{'network': 'net-a', 'nic': 'eth0',
                                   'channel': 'vlan/native'}])
        with self.acquire() as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self.interface.configure_tenant_networks,
                                  task)
        self.assertIn('native VLAN of boot nic eth0', str(e))

    def test_unknown_nic(self):
        self.set_tenant_networks([{'network': 'net-a', 'nic': 'eth7'}])
        with self.acquire() as task:
            self.assertRaises(ironic_exc.InvalidParameterValue,
                              self.interface.configure_tenant_networks, task)

    def test_illegal_channel(self):
        self.set_tenant_networks([{'network': 'net-a', 'nic': 'eth1',
                                   'channel': 'vlan/1002'}])
        with self.acquire() as task:
            e = self.assertRaises(ironic_exc.NetworkError,
                                  self.interface.configure_tenant_networks,
                                  task)
        self.assertIn('not legal for this network', str(e))

    def test_nothing_requested(self):
        self.set_tenant_networks([])
        calls = self.asking()
        with self.acquire() as task:
            self.interface.configure_tenant_networks(task)
            # No tenant network, no VIF: the join cost HIL no request.
            self.assertEqual([], calls)
            self.interface.unconfigure_tenant_networks(task)
        self.assertEqual({'eth0': {'vlan/native': 'prov'}, 'eth1': {}},
                         self.networks())


class TestLeftoverRetry(HILNetworkTestCase):
    """Issue 12: a teardown that met HIL errors is finished later."""

    def setUp(self):
        super().setUp()
        self.deploy_on_net_b()
        self.url = self.hil.url

    def _teardown_fails(self):
        self.config(url='http://127.0.0.1:9', group='hil')
        with self.acquire() as task:
            self.assertRaises(ironic_exc.NetworkError,
                              self.interface.unconfigure_tenant_networks,
                              task)
        self.node.refresh()
        self.node.provision_state = states.ERROR
        self.node.save()

    def _retry(self):
        with task_manager.acquire(self.context, self.node.uuid,
                                  shared=True) as task:
            # The method itself, below node_periodic's loop over nodes.
            return inspect.unwrap(hil.HILNetwork.detach_leftovers)(
                self.interface, task, mock.Mock(), self.context)

    def test_leftovers_detached_when_hil_answers_again(self):
        self._teardown_fails()
        self.assertTrue(hil._has_hil_leftovers(self.node))
        # HIL still down: nothing changes, no exception.
        self._retry()
        self.assertEqual({'eth0': {'vlan/native': 'prov',
                                   'vlan/1002': 'net-b'}, 'eth1': {}},
                         self.networks())
        self.config(url=self.url, group='hil')
        self._retry()
        self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())
        self.node.refresh()
        self.assertFalse(hil._has_hil_leftovers(self.node))
        self.assertEqual(states.ERROR, self.node.provision_state)
        self.assertIn('hil-cleanup', [h.event_type for h in
                                      objects.NodeHistory.list_by_node_id(
                                          self.context, self.node.id)])

    def test_active_nodes_are_left_alone(self):
        self.node.provision_state = states.ACTIVE
        self.node.save()
        self.assertIs(False, self._retry())
        self.assertEqual({'eth0': {'vlan/native': 'prov',
                                   'vlan/1002': 'net-b'}, 'eth1': {}},
                         self.networks())

    def test_periodic_filters_and_spacing(self):
        method = hil.HILNetwork.detach_leftovers
        self.config(cleanup_interval=11, group='hil')
        periodics.refresh_periodic_attributes(method)
        self.assertEqual(11, method._periodic_spacing)
        self.assertTrue(method._is_periodic)
        self.config(cleanup_interval=0, group='hil')
        periodics.refresh_periodic_attributes(method)
        self.assertFalse(method._is_periodic)
        for state in (states.ACTIVE, states.DEPLOYING, states.DEPLOYWAIT):
            self.assertNotIn(state, hil._LEFTOVER_STATES)


class TestAtRestCheck(HILNetworkTestCase):
    """Issue 12: a node deleted while ACTIVE leaves HIL as it was.

    Ironic 39.0.0's delete calls no interface; the node enrolled again
    (same name, so same HIL node) records none of those networks.
    """

    def setUp(self):
        super().setUp()
        self.deploy_on_net_b()
        self.deployed = {'eth0': {'vlan/native': 'prov',
                                  'vlan/1002': 'net-b'}, 'eth1': {}}
        self.assertEqual(self.deployed, self.networks())

    def enroll_again(self, **kwargs):
        self.drop_default_node()
        kwargs.setdefault('provision_state', states.AVAILABLE)
        self.node = self.make_node('node-1', name='node-1', **kwargs)

    def check(self):
        with task_manager.acquire(self.context, self.node.uuid,
                                  shared=True) as task:
            # The method itself, below node_periodic's loop over nodes.
            result = inspect.unwrap(
                hil.HILNetwork.detach_earlier_deployments)(
                    self.interface, task, mock.Mock(), self.context)
        self.node.refresh()
        return result

    def history(self):
        return [h for h in objects.NodeHistory.list_by_node_id(
            self.context, self.node.id) if h.event_type == 'hil-cleanup']

    def test_networks_of_the_deleted_node_are_detached_once(self):
        self.enroll_again()
        self.assertTrue(hil._needs_rest_check(self.node))
        self.check()
        self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())
        [event] = self.history()
        self.assertIn('eth0/net-b', event.event)
        self.assertIn('eth0/prov', event.event)
        self.assertFalse(hil._needs_rest_check(self.node))
        # Checked: the periodic's predicate skips it from now on.
        self.assertIs(False, self.check())

    def test_the_same_for_a_manageable_node(self):
        self.enroll_again(provision_state=states.MANAGEABLE)
        self.check()
        self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())

    def test_hil_down_changes_nothing_until_it_answers(self):
        self.enroll_again()
        url = self.hil.url
        self.config(url='http://127.0.0.1:9', group='hil')
        self.check()
        self.assertEqual(self.deployed, self.networks())
        self.assertTrue(hil._needs_rest_check(self.node))
        self.config(url=url, group='hil')
        self.check()
        self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())

    def test_another_projects_node_is_left_alone(self):
        self.enroll_again(lessee='owner-b')
        self.check()
        self.assertEqual(self.deployed, self.networks())
        self.assertEqual([], self.history())
        # Not ours to detach; not asked again.
        self.assertFalse(hil._needs_rest_check(self.node))

    def test_a_node_that_is_not_at_rest_is_left_alone(self):
        for state in (states.ACTIVE, states.DEPLOYING, states.CLEANING):
            self.node.provision_state = state
            self.node.save()
            self.assertIs(False, self.check())
        self.assertEqual(self.deployed, self.networks())

    def test_teardown_marks_it_checked_and_a_deploy_drops_the_mark(self):
        with self.acquire() as task:
            self.interface.unconfigure_tenant_networks(task)
            self.interface.remove_provisioning_network(task)
        self.node.refresh()
        self.assertFalse(hil._needs_rest_check(self.node))
        with self.acquire() as task:
            self.interface.add_provisioning_network(task)
        self.node.refresh()
        self.assertNotIn(hil.AT_REST_CHECKED,
                         self.node.driver_internal_info)

    def test_periodic_filters_and_spacing(self):
        method = hil.HILNetwork.detach_earlier_deployments
        self.config(cleanup_interval=13, group='hil')
        periodics.refresh_periodic_attributes(method)
        self.assertEqual(13, method._periodic_spacing)
        self.assertEqual({states.AVAILABLE, states.MANAGEABLE},
                         set(hil._AT_REST_STATES))


class TestDeletedNodeRelease(HILNetworkTestCase):
    """A node deleted while ACTIVE: its clone's record undoes HIL."""

    def record(self, node=None):
        with self.acquire(node) as task:
            return self.interface.deletion_record(task)

    def test_record_before_and_after_the_connect(self):
        self.config(allow_connect_free_node=True, group='hil')
        node = self.make_node('node-free')
        self.assertEqual({'node': 'node-free', 'project': LESSEE,
                          'connected': False}, self.record(node))
        with self.acquire(node) as task:
            self.interface.add_provisioning_network(task)
            self.assertEqual({'node': 'node-free', 'project': LESSEE,
                              'connected': True},
                             self.interface.deletion_record(task))

    def test_every_network_detached_and_a_connected_node_freed(self):
        self.config(allow_connect_free_node=True, group='hil')
        node = self.make_node('node-free')
        with self.acquire(node) as task:
            self.interface.add_provisioning_network(task)
            record = self.interface.deletion_record(task)
        pairs, freed = hil.release_deleted_node(record)
        self.assertEqual([('eth0', 'prov')], pairs)
        self.assertTrue(freed)
        self.assertIsNone(self.hil.snapshot()['nodes']['node-free'][
            'project'])
        self.assertEqual({}, self.networks('node-free')['eth0'])
        # Idempotent: nothing left to do, nothing asked of HIL but a look.
        self.assertEqual(([], False), hil.release_deleted_node(record))

    def test_a_node_the_admin_allocated_stays_in_its_project(self):
        self.deploy_on_net_b()
        pairs, freed = hil.release_deleted_node(self.record())
        self.assertEqual([('eth0', 'net-b'), ('eth0', 'prov')], pairs)
        self.assertFalse(freed)
        self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())
        self.assertEqual(LESSEE,
                         self.hil.snapshot()['nodes']['node-1']['project'])

    def test_another_projects_node_is_left_alone(self):
        self.deploy_on_net_b()
        before = self.networks()
        record = dict(self.record(), project='owner-b', connected=True)
        self.assertEqual(([], False), hil.release_deleted_node(record))
        self.assertEqual(before, self.networks())

    def test_hil_failure_is_raised_for_the_next_run(self):
        self.deploy_on_net_b()
        record = self.record()
        self.config(url='http://127.0.0.1:9', group='hil')
        self.assertRaises(exception.HILError, hil.release_deleted_node,
                          record)

    def test_unknown_or_invalid_hil_node_needs_nothing(self):
        for name in ('no-such-node', 'bad name/..'):
            self.assertEqual(([], False), hil.release_deleted_node(
                {'node': name, 'project': LESSEE, 'connected': True}))
