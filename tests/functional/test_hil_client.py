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

"""The real HIL client against the HIL test server running as a process.

Each test class starts its own server
(``tools.lab.hil_emulator.start_process``,
database auth, a seed of its own) on a free port and stops it by pid; one
test also checks the server that ``python -m tools.lab start`` started for
the
other functional tests (``<hil_state>/env.json``).
"""

import json
import os
import socket
import time

from keystoneauth1 import loading as ks_loading
import requests

from bmi_driver import exception
from bmi_driver.network import hil_client
from tests.functional import base
from tools.lab import e2e
from tools.lab import hil_emulator
from tools.lab import state as lab_state

ADMIN = ('hil-admin', 'admin-pw-9f2c')
MAC = '52:54:00:00:10:%02x'


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _seed():
    def nics(i):
        return [{'label': 'eth0', 'macaddr': MAC % (2 * i),
                 'switch': 'sw-a', 'port': 'gi1/0/%d' % (2 * i)},
                {'label': 'eth1', 'macaddr': MAC % (2 * i + 1),
                 'switch': 'sw-b', 'port': 'gi1/0/%d' % (2 * i + 1)}]
    return {
        'auth': 'database',
        'users': {ADMIN[0]: {'password': ADMIN[1], 'admin': True}},
        'action_delay': 0.2,
        # sw-strict refuses a tagged VLAN without a native one (as HIL's
        # brocade and dellnos9 drivers do); n4's eth2 is cabled to it.
        'native_first_switches': ['sw-strict'],
        'projects': ['proj-a', 'proj-b'],
        'nodes': {'n1': {'project': 'proj-a', 'nics': nics(1)},
                  'n4': {'project': 'proj-a', 'nics': [
                      {'label': 'eth2', 'macaddr': MAC % 99,
                       'switch': 'sw-strict', 'port': 'te1/0/1'}]},
                  'n2': {'nics': nics(2)},
                  'n3': {'project': 'proj-b', 'nics': nics(3)}},
        'networks': {'prov': {'owner': 'admin', 'access': []},
                     'tenant-a': {'owner': 'proj-a', 'access': ['proj-a'],
                                  'net_id': '1101'},
                     'tenant-b': {'owner': 'proj-a', 'access': ['proj-a'],
                                  'net_id': '1102'}},
    }


class HILProcessTestCase(base.FunctionalTestCase):

    def setUp(self):
        super().setUp()
        state = os.path.join(self.state_dir, 'hil-state.json')
        self.port = _free_port()
        self.pid, self.url = hil_emulator.start_process(
            self.port, state, seed=_seed(),
            log_path=os.path.join(self.state_dir, 'hil.log'))
        self.addCleanup(hil_emulator.stop_process, self.pid)
        self.config(url=self.url, auth_type='http_basic',
                    action_poll_interval=0.05, action_timeout=20,
                    connect_retries=0, group='hil')
        # keystoneauth1 registers a plugin's options when it loads it.
        self.set_credentials(*ADMIN)

    def set_credentials(self, username, password):
        loader = ks_loading.get_plugin_loader('http_basic')
        self.conf_fixture.register_opts(
            ks_loading.get_auth_plugin_conf_options(loader), group='hil')
        self.config(username=username, password=password, group='hil')

    def debug(self, method, path, body=None):
        resp = requests.request(method, self.url + path, auth=ADMIN,
                                data=json.dumps(body) if body else None,
                                timeout=10)
        resp.raise_for_status()
        return resp.json() if resp.text else None

    def networks(self, node):
        nics = self.debug('GET', '/_debug/state')['nodes'][node]['nics']
        return {label: nic['networks'] for label, nic in nics.items()}


class TestClient(HILProcessTestCase):

    def test_provisioning_and_tenant_networks(self):
        client = hil_client.get_client()
        t0 = time.monotonic()
        self.assertTrue(client.connect_network('n1', 'eth0', 'prov'))
        t1 = time.monotonic()
        self.assertTrue(client.connect_network('n1', 'eth0', 'tenant-a',
                                               'vlan/1101'))
        self.assertTrue(client.connect_network('n1', 'eth1', 'tenant-b',
                                               'vlan/1102'))
        print('HIL connect_network, 0.2 s action delay: %.2f s'
              % (t1 - t0))
        self.assertEqual({'eth0': {'vlan/native': 'prov',
                                   'vlan/1101': 'tenant-a'},
                          'eth1': {'vlan/1102': 'tenant-b'}},
                         self.networks('n1'))
        # Repeats are no-ops.
        self.assertFalse(client.connect_network('n1', 'eth0', 'prov'))
        for nic, net in (('eth1', 'tenant-b'), ('eth0', 'tenant-a'),
                         ('eth0', 'prov')):
            self.assertTrue(client.detach_network('n1', nic, net))
            self.assertFalse(client.detach_network('n1', nic, net))
        self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks('n1'))

    def test_waits_for_pending_action(self):
        # Another client's action is pending on the nic: ours waits.
        resp = requests.post(self.url + '/v0/node/n1/nic/eth0/'
                             'connect_network', auth=ADMIN,
                             data=json.dumps({'network': 'prov'}),
                             timeout=10)
        self.assertEqual(202, resp.status_code)
        client = hil_client.get_client()
        self.assertTrue(client.connect_network('n1', 'eth0', 'tenant-a',
                                               'vlan/1101'))
        self.assertEqual({'vlan/native': 'prov', 'vlan/1101': 'tenant-a'},
                         self.networks('n1')['eth0'])

    def test_switch_failure(self):
        self.debug('PUT', '/_debug/switch/sw-a', {'fail': True})
        client = hil_client.get_client()
        e = self.assertRaises(exception.HILActionFailed,
                              client.connect_network, 'n1', 'eth0', 'prov')
        self.assertIn('n1/eth0 ended in ERROR', str(e))
        self.assertEqual({}, self.networks('n1')['eth0'])
        # The other switch still works.
        self.assertTrue(client.connect_network('n1', 'eth1', 'prov'))

    def test_permanent_blocked_errors_fail_fast_with_hils_message(self):
        client = hil_client.get_client()
        self.config(action_timeout=60, group='hil')
        t0 = time.monotonic()
        e = self.assertRaises(exception.HILConflict, client.connect_network,
                              'n4', 'eth2', 'tenant-a', 'vlan/1101')
        self.assertIn('Please attach a native network first', str(e))
        # At once, not after [hil] action_timeout of polling.
        self.assertLess(time.monotonic() - t0, 10)
        client.connect_network('n4', 'eth2', 'tenant-b')
        client.connect_network('n4', 'eth2', 'tenant-a', 'vlan/1101')
        t0 = time.monotonic()
        e = self.assertRaises(exception.HILConflict, client.detach_network,
                              'n4', 'eth2', 'tenant-b')
        self.assertIn('Please remove all trunked Vlans before removing the '
                      'native vlan', str(e))
        self.assertLess(time.monotonic() - t0, 10)
        client.detach_network('n4', 'eth2', 'tenant-a')
        client.detach_network('n4', 'eth2', 'tenant-b')

    def test_nodes_and_projects(self):
        client = hil_client.get_client()
        self.assertEqual(['n1', 'n2', 'n3', 'n4'], client.list_nodes())
        self.assertEqual(['n2'], client.list_nodes('free'))
        self.assertTrue(client.connect_node('proj-a', 'n2'))
        self.assertFalse(client.connect_node('proj-a', 'n2'))
        e = self.assertRaises(exception.HILConflict, client.connect_node,
                              'proj-a', 'n3')
        # Whose it is goes to the log only: the text reaches API users.
        self.assertIn('another HIL project', str(e))
        self.assertNotIn('proj-b', str(e))
        self.assertTrue(client.detach_node('proj-a', 'n2'))
        self.assertFalse(client.detach_node('proj-a', 'n2'))

    def test_errors(self):
        client = hil_client.get_client()
        e = self.assertRaises(exception.HILNotFound, client.get_node, 'n9')
        self.assertEqual('NotFoundError', e.type)
        e = self.assertRaises(exception.HILBadRequest,
                              client.connect_network, 'n1', 'eth0',
                              'tenant-a', 'vlan/9999')
        self.assertEqual('BadArgumentError', e.type)
        e = self.assertRaises(exception.HILConflict, client.connect_network,
                              'n3', 'eth0', 'tenant-a', 'vlan/1101')
        self.assertEqual('ProjectMismatchError', e.type)

    def test_wrong_password(self):
        self.set_credentials(ADMIN[0], 'not-the-password')
        e = self.assertRaises(exception.HILAuthError,
                              hil_client.get_client().get_node, 'n1')
        self.assertEqual(401, e.status)
        self.assertIn('Invalid password', str(e))
        self.assertNotIn('not-the-password', str(e))

    def test_unknown_user(self):
        self.set_credentials('nobody', 'x')
        e = self.assertRaises(exception.HILNotFound,
                              hil_client.get_client().get_node, 'n1')
        self.assertIn('nobody', str(e))

    def test_stopped_server_is_unreachable(self):
        hil_emulator.stop_process(self.pid)
        e = self.assertRaises(exception.HILUnreachable,
                              hil_client.get_client().get_node, 'n1')
        self.assertIn(self.url, str(e))

    def test_state_survives_restart(self):
        client = hil_client.get_client()
        client.connect_network('n1', 'eth0', 'prov')
        hil_emulator.stop_process(self.pid)
        state = os.path.join(self.state_dir, 'hil-state.json')
        self.pid, _ = hil_emulator.start_process(self.port, state)
        self.addCleanup(hil_emulator.stop_process, self.pid)
        self.assertEqual({'vlan/native': 'prov'},
                         client.get_node('n1')['nics'][0]['networks'])


class TestRealHIL(base.FunctionalTestCase):
    """The plugin's client against the real HIL and the lab's switch.

    As the lab's non-admin HIL user; HIL 8c6de221's ovs driver.
    """

    def setUp(self):
        super().setUp()
        hil = lab_state.read_env(self.env['hil_state'], 'HIL')
        with open(hil['user_password_file']) as f:
            password = f.read().strip()
        self.config(url=hil['url'], auth_type='http_basic',
                    connect_retries=0, group='hil')
        loader = ks_loading.get_plugin_loader('http_basic')
        self.conf_fixture.register_opts(
            ks_loading.get_auth_plugin_conf_options(loader), group='hil')
        self.config(username=hil['user'], password=password, group='hil')
        self.net = e2e.LabNet(self.env)
        self.node = e2e.Node(self.unique('hilc'), 'tenant-a', 1, 0xb8)
        self.net.add_ports(self.node)
        self.net.register(self.node)
        self.addCleanup(self._unregister)
        self.network = self.unique('hilc-net')
        self.vlan = self.net.create_network(self.network, 'tenant-a')
        self.addCleanup(self.net.delete_network, self.network)

    def _unregister(self):
        self.assertEqual([], self.net.unregister(self.node))

    def test_connect_moves_the_switch_port_and_detach_frees_it(self):
        client = hil_client.get_client()
        port = self.node.tenant_port
        self.assertEqual((None, []), self.net.switch.tenant_vlans(port))
        client.connect_network(self.node.name, 'tenant', self.network)
        self.assertEqual({'vlan/native': self.network},
                         self.net.node_networks(self.node)['tenant'])
        self.assertEqual((self.vlan, []),
                         self.net.switch.tenant_vlans(port))
        # Connecting again is a no-op, as the client promises.
        client.connect_network(self.node.name, 'tenant', self.network)
        client.detach_network(self.node.name, 'tenant', self.network)
        self.assertEqual({}, self.net.node_networks(self.node)['tenant'])
        self.assertEqual((None, []), self.net.switch.tenant_vlans(port))
        # The guard VLAN stays: the port never trunks all VLANs.
        _tag, trunks = self.net.switch.port_vlans(port)
        self.assertEqual(1, len(trunks))
