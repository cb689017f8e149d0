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


"""The ``hil`` network interface: validate before a deploy, HIL's state at
undeploy (unknown nodes, other projects, actions that landed late)."""

import time

import fixtures
from ironic.common import exception as ironic_exc
from ironic.common import states
from keystoneauth1 import loading as ks_loading
import requests
from requests_mock.contrib import fixture as rm_fixture

from bmi_driver.network import hil
from tests.unit.network import test_hil
from tests.unit.network.test_hil import LESSEE
from tests.unit.network.test_hil import MACS
from tools.lab.hil_emulator import server


class Base(test_hil.HILNetworkTestCase):

    def put_hil_node(self, name, nics, project=LESSEE):
        """Create a node in the HIL emulator (through its debug route)."""
        resp = requests.put('%s/_debug/node/%s' % (self.hil.url, name),
                            json={'project': project, 'nics': nics},
                            timeout=10)
        resp.raise_for_status()

    def set_action_delay(self, seconds):
        resp = requests.put(self.hil.url + '/_debug/action_delay',
                            json={'seconds': seconds}, timeout=10)
        resp.raise_for_status()

    def set_state(self, node, state):
        node.provision_state = state
        node.save()


class TestValidate(Base):

    def test_free_node(self):
        node = self.make_node('node-free')
        with self.acquire(node) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self.interface.validate, task)
            self.assertIn('allow_connect_free_node', str(e))
            self.config(allow_connect_free_node=True, group='hil')
            self.interface.validate(task)
        self.assertIsNone(self.hil.snapshot()['nodes']['node-free'][
            'project'])

    def test_other_project(self):
        log = self.useFixture(fixtures.FakeLogger(level='WARNING'))
        node = self.make_node('node-other')
        with self.acquire(node) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self.interface.validate, task)
        self.assertIn('Deploy refused: HIL node node-other is not '
                      'available to project tenant-a', str(e))
        # Which project holds it is the operator's to see, in the log.
        self.assertNotIn('project other', str(e))
        self.assertIn('HIL has node node-other in project other',
                      log.output)

    def test_deploying_is_checked(self):
        # prepare() calls validate in DEPLOYING, before the clone exists.
        node = self.make_node('node-9')
        self.set_state(node, states.DEPLOYING)
        with self.acquire(node) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self.interface.validate, task)
        self.assertIn('HIL does not know node node-9', str(e))

    def test_other_states_do_not_ask_hil(self):
        # Cleaning after an undeploy, vif_detach, port updates: a node HIL
        # lost must not fail there.
        node = self.make_node('node-9')
        for state in (states.CLEANING, states.ACTIVE, states.MANAGEABLE,
                      states.DELETING, states.DEPLOYFAIL):
            self.set_state(node, state)
            with self.acquire(node) as task:
                self.interface.validate(task)

    def test_uncabled_nic(self):
        self.drop_default_node()
        self.put_hil_node('node-1', [
            {'label': 'eth0', 'macaddr': MACS['node-1'][0], 'switch': 'sw0',
             'port': 'gi1/0/1'},
            {'label': 'eth1', 'macaddr': MACS['node-1'][1]}])
        node = self.make_node('node-1')
        with self.acquire(node) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self.interface.validate, task)
        self.assertIn('nic(s) eth1 are not cabled to a switch port', str(e))

    def test_bad_names_refused_before_any_request(self):
        # Nothing listens there: a request would say "unreachable".
        self.config(url='http://127.0.0.1:9', group='hil')
        self.drop_default_node()
        cases = [
            ({'driver_info': {'hil_node': 'x/../other'}}, 'node'),
            ({'driver_info': {'hil_node': '?x'}}, 'node'),
            ({'driver_info': {'hil_node': '#x'}}, 'node'),
            ({'lessee': 'p/../admin'}, 'project'),
            ({'instance_info': {'hil_networks': [
                {'network': '../net-b', 'nic': 'eth1'}]}}, 'network'),
            ({'instance_info': {'hil_networks': [
                {'network': 'net-a', 'nic': 'eth1?x'}]}}, 'nic'),
        ]
        for i, (kwargs, kind) in enumerate(cases):
            node = self.make_node('node-1', name='n-%d' % i, ports=False,
                                  **kwargs)
            with self.acquire(node) as task:
                e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                      self.interface.validate, task)
            self.assertIn('Invalid HIL %s name' % kind, str(e))
            self.assertNotIn('unreachable', str(e))


class TestUnknownNode(Base):
    """HIL does not know the node: undeploy still ends."""

    def test_undeploy(self):
        node = self.make_node('node-9', instance_info={
            'hil_networks': [{'network': 'net-a', 'nic': 'eth1'}]})
        node.driver_internal_info = {
            hil.DEPLOYED_PROJECT: LESSEE, hil.CONNECTED_PROJECT: LESSEE,
            hil.TENANT_ATTACHMENTS: [{'nic': 'eth1', 'network': 'net-a',
                                      'channel': 'vlan/1001'}]}
        node.save()
        with self.acquire(node) as task:
            self.interface.unconfigure_tenant_networks(task)
            self.interface.remove_provisioning_network(task)
            for key in (hil.DEPLOYED_PROJECT, hil.CONNECTED_PROJECT,
                        hil.TENANT_ATTACHMENTS):
                self.assertNotIn(key, task.node.driver_internal_info)

    def test_failed_deploy_cleans_up(self):
        node = self.make_node('node-9')
        with self.acquire(node) as task:
            e = self.assertRaises(ironic_exc.NetworkError,
                                  self.interface.add_provisioning_network,
                                  task)
            self.assertIn('HIL does not know node node-9', str(e))
            # What the deploy interface's _release does next.
            self.interface.unconfigure_tenant_networks(task)
            self.interface.remove_provisioning_network(task)

    def test_unreachable_still_fails_undeploy(self):
        # Not knowing is not the same as not being able to ask.
        self.config(url='http://127.0.0.1:9', group='hil')
        with self.acquire() as task:
            self.assertRaises(ironic_exc.NetworkError,
                              self.interface.remove_provisioning_network,
                              task)


class TestLateActions(Base):
    """Actions that land after the client gave up."""

    def setUp(self):
        super().setUp()
        # action_timeout's minimum is 1 s: HIL's daemon takes 1.5 s.
        self.config(action_timeout=1, group='hil')
        self.set_action_delay(1.5)

    def test_connect_that_timed_out_is_detached_at_undeploy(self):
        with self.acquire() as task:
            e = self.assertRaises(ironic_exc.NetworkError,
                                  self.interface.add_provisioning_network,
                                  task)
            self.assertIn('did not finish within 1 seconds', str(e))
            # HIL still has it queued; nothing shows on the nic yet.
            self.assertEqual({}, self.networks()['eth0'])
            self.config(action_timeout=10, group='hil')
            self.set_action_delay(0.05)
            self.interface.unconfigure_tenant_networks(task)
            self.interface.remove_provisioning_network(task)
        # The late connect landed, then the detach undid it.
        self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())
        time.sleep(0.2)
        self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())

    def test_tenant_connect_that_timed_out_is_detached_at_undeploy(self):
        self.set_action_delay(0.01)
        self.set_tenant_networks([{'network': 'net-a', 'nic': 'eth1',
                                   'channel': 'vlan/1001'}])
        with self.acquire() as task:
            self.interface.add_provisioning_network(task)
            self.set_action_delay(1.5)
            self.assertRaises(ironic_exc.NetworkError,
                              self.interface.configure_tenant_networks, task)
            self.assertNotIn(hil.TENANT_ATTACHMENTS,
                             task.node.driver_internal_info)
            # Undeploy, with instance_info already cleared by Ironic: HIL's
            # own state (a pending action) is what is left to go by...
            info = dict(task.node.instance_info)
            del info['hil_networks']
            task.node.instance_info = info
            self.config(action_timeout=10, group='hil')
            self.set_action_delay(0.05)
            time.sleep(1.6)
            # ...and once it has landed, the nic shows it.
            self.assertEqual({'vlan/1001': 'net-a'}, self.networks()['eth1'])
            self.interface.unconfigure_tenant_networks(task)
            self.interface.remove_provisioning_network(task)
        self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())

    def test_detach_that_timed_out_is_finished_by_the_retry(self):
        with self.acquire() as task:
            self.config(action_timeout=10, group='hil')
            self.set_action_delay(0.01)
            self.interface.add_provisioning_network(task)
            self.config(action_timeout=1, group='hil')
            self.set_action_delay(1.5)
            self.assertRaises(ironic_exc.NetworkError,
                              self.interface.remove_provisioning_network,
                              task)
            self.config(action_timeout=10, group='hil')
            self.interface.remove_provisioning_network(task)
            self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())
            # A deploy after it waits, then connects again.
            self.set_action_delay(0.01)
            self.interface.add_provisioning_network(task)
        self.assertEqual({'vlan/native': 'prov'}, self.networks()['eth0'])


class TestPermanentRefusal(Base):

    def test_native_first_fails_at_once(self):
        # The emulator has no native-first switch rule: HTTP faked here.
        self.config(url='http://hil.test:7000', action_timeout=60,
                    group='hil')
        rm = self.useFixture(rm_fixture.Fixture())
        node_url = 'http://hil.test:7000/v0/node/node-1'
        rm.get(node_url, json={
            'name': 'node-1', 'project': LESSEE, 'metadata': {},
            'nics': [{'label': 'eth0', 'macaddr': MACS['node-1'][0],
                      'networks': {'vlan/native': 'prov'}},
                     {'label': 'eth1', 'macaddr': MACS['node-1'][1],
                      'networks': {}}]})
        rm.post(node_url + '/nic/eth1/connect_network', status_code=409,
                json={'type': 'BlockedError',
                      'msg': 'Please attach a native network first'})
        self.set_tenant_networks([{'network': 'net-a', 'nic': 'eth1',
                                   'channel': 'vlan/1001'}])
        start = time.monotonic()
        with self.acquire() as task:
            e = self.assertRaises(ironic_exc.NetworkError,
                                  self.interface.configure_tenant_networks,
                                  task)
        self.assertLess(time.monotonic() - start, 10)
        self.assertIn('HIL refused connect_network on node-1/eth1: Please '
                      'attach a native network first', str(e))


class TestOtherProjectDatabaseAuth(Base):
    """HIL with database auth: another project's node answers 401."""

    def setUp(self):
        super().setUp()
        seed = test_hil.seed()
        seed['auth'] = 'database'
        seed['users'] = {'bmi': {'password': 'pw', 'projects': [LESSEE]}}
        self.hil = server.HILServer(seed=seed).start()
        self.addCleanup(self.hil.stop)
        loader = ks_loading.get_plugin_loader('http_basic')
        self.cfg_fixture.register_opts(
            ks_loading.get_auth_plugin_conf_options(loader), group='hil')
        self.config(url=self.hil.url, auth_type='http_basic', username='bmi',
                    password='pw', group='hil')

    def test_validate_says_so(self):
        node = self.make_node('node-other')
        with self.acquire(node) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self.interface.validate, task)
        self.assertIn('Deploy refused: HIL node node-other of node %s is '
                      'held by another project (it is not visible to this '
                      'HIL user)' % node.uuid, str(e))
        self.assertNotIn('project other', str(e))

    def test_deploy_says_so(self):
        node = self.make_node('node-other')
        with self.acquire(node) as task:
            e = self.assertRaises(ironic_exc.NetworkError,
                                  self.interface.add_provisioning_network,
                                  task)
        self.assertIn('HIL node node-other is not visible to this HIL user',
                      str(e))

    def test_undeploy_leaves_it_alone(self):
        before = self.hil.snapshot()['nodes']['node-other']
        node = self.make_node('node-other')
        with self.acquire(node) as task:
            self.interface.unconfigure_tenant_networks(task)
            self.interface.remove_provisioning_network(task)
        self.assertEqual(before, self.hil.snapshot()['nodes']['node-other'])

    def test_own_node_still_works(self):
        with self.acquire() as task:
            self.interface.validate(task)
            self.interface.add_provisioning_network(task)
            self.interface.remove_provisioning_network(task)
        self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())
