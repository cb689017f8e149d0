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

"""The HIL test server against HIL's API page (../shared/hil-api.md)."""

import json
import os
import time

import fixtures
import requests
import testtools

from tools.lab import hil_emulator
from tools.lab.hil_emulator import server

ADMIN = ('admin', 'admin-pw')
ALICE = ('alice', 'alice-pw')


def seed(auth='null'):
    return {
        'auth': auth,
        'users': {'admin': {'password': ADMIN[1], 'admin': True},
                  'alice': {'password': ALICE[1], 'projects': ['p1']}},
        'action_delay': 0.05,
        'projects': ['p1', 'p2'],
        'nodes': {
            'node1': {'project': 'p1', 'metadata': {'rack': 4},
                      'nics': [{'label': 'eth0',
                                'macaddr': '52:54:00:00:00:01',
                                'switch': 'sw0', 'port': 'gi1/0/1'},
                               {'label': 'eth1',
                                'macaddr': '52:54:00:00:00:02',
                                'switch': 'sw1', 'port': 'gi1/0/2'}]},
            'node2': {'nics': {'eth0': {'macaddr': '52:54:00:00:00:03',
                                        'switch': 'sw0',
                                        'port': 'gi1/0/3'}}},
            'node3': {'project': 'p2',
                      'nics': [{'label': 'eth0',
                                'macaddr': '52:54:00:00:00:04'}]},
        },
        'networks': {'prov': {'owner': 'admin', 'access': []},
                     'net-a': {'owner': 'p1', 'access': ['p1'],
                               'net_id': '1001'},
                     'net-b': {'owner': 'p2', 'access': ['p2'],
                               'net_id': '1002'}},
    }


class ServerTestCase(testtools.TestCase):

    auth = 'null'

    def setUp(self):
        super().setUp()
        self.state_path = os.path.join(
            self.useFixture(fixtures.TempDir()).path, 'hil.json')
        self.server = server.HILServer(seed=seed(self.auth),
                                       state_path=self.state_path).start()
        self.addCleanup(self.server.stop)
        self.http = requests.Session()
        self.addCleanup(self.http.close)

    def call(self, method, path, body=None, auth=None, **kwargs):
        if body is not None:
            kwargs['data'] = json.dumps(body)
        return self.http.request(method, self.server.url + '/v0' + path,
                                 auth=auth, timeout=5, **kwargs)

    def assertError(self, resp, status, type_):
        self.assertEqual(status, resp.status_code, resp.text)
        body = resp.json()
        self.assertEqual(type_, body['type'])
        self.assertTrue(body['msg'])

    def wait(self, status_id, auth=None):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            action = self.call('GET', '/networking_action/' + status_id,
                               auth=auth).json()
            if action['status'] != 'PENDING':
                return action
            time.sleep(0.02)
        self.fail('action %s still pending' % status_id)

    def connect(self, node, nic, network, channel=None, auth=None):
        body = {'network': network}
        if channel:
            body['channel'] = channel
        return self.call('POST', '/node/%s/nic/%s/connect_network'
                         % (node, nic), body, auth=auth)


class TestWireFormat(ServerTestCase):

    def test_json_labelled_text_html(self):
        resp = self.call('GET', '/nodes/all')
        self.assertEqual(200, resp.status_code)
        self.assertTrue(resp.headers['Content-Type'].startswith('text/html'))
        self.assertEqual(['node1', 'node2', 'node3'], resp.json())

    def test_get_with_body(self):
        self.assertError(self.call('GET', '/nodes/all', {'x': 1}), 400,
                         'ValidationError')

    def test_form_encoded_body(self):
        resp = self.http.post(self.server.url + '/v0/project/p1/'
                              'connect_node', data={'node': 'node2'})
        self.assertError(resp, 400, 'ValidationError')

    def test_malformed_json(self):
        resp = self.http.post(self.server.url + '/v0/project/p1/'
                              'connect_node', data='{"node": ')
        self.assertError(resp, 400, 'ValidationError')

    def test_missing_and_extra_keys(self):
        self.assertError(self.call('POST', '/project/p1/connect_node', {}),
                         400, 'ValidationError')
        self.assertError(self.call('POST', '/project/p1/connect_node',
                                   {'node': 'node2', 'x': 'y'}),
                         400, 'ValidationError')

    def test_content_type_not_required(self):
        resp = self.http.post(self.server.url + '/v0/project/p1/'
                              'connect_node', data='{"node": "node2"}',
                              headers={'Content-Type': ''})
        self.assertEqual(200, resp.status_code, resp.text)


class TestNodesAndProjects(ServerTestCase):

    def test_free_nodes(self):
        self.assertEqual(['node2'], self.call('GET', '/nodes/free').json())

    def test_show_node(self):
        node = self.call('GET', '/node/node1').json()
        self.assertEqual('p1', node['project'])
        self.assertEqual({'rack': '4'}, node['metadata'])
        self.assertEqual(['eth0', 'eth1'], [n['label'] for n in node['nics']])
        self.assertEqual({'label': 'eth0', 'macaddr': '52:54:00:00:00:01',
                          'networks': {}, 'port': 'gi1/0/1',
                          'switch': 'sw0'}, node['nics'][0])

    def test_unknown_node(self):
        self.assertError(self.call('GET', '/node/nope'), 404,
                         'NotFoundError')

    def test_projects(self):
        self.assertEqual(200, self.call('PUT', '/project/p3').status_code)
        self.assertError(self.call('PUT', '/project/p3'), 409,
                         'DuplicateError')
        self.assertEqual(['p1', 'p2', 'p3'],
                         self.call('GET', '/projects').json())
        self.assertEqual(['node1'],
                         self.call('GET', '/project/p1/nodes').json())
        self.assertEqual(['net-a'],
                         self.call('GET', '/project/p1/networks').json())
        self.assertError(self.call('DELETE', '/project/p1'), 409,
                         'BlockedError')
        self.assertEqual(200, self.call('DELETE', '/project/p3').status_code)

    def test_connect_and_detach_node(self):
        self.assertEqual(200, self.call('POST', '/project/p1/connect_node',
                                        {'node': 'node2'}).status_code)
        self.assertEqual('p1', self.call('GET', '/node/node2').json()[
            'project'])
        self.assertError(self.call('POST', '/project/p2/connect_node',
                                   {'node': 'node2'}), 409, 'BlockedError')
        self.assertEqual(200, self.call('POST', '/project/p1/detach_node',
                                        {'node': 'node2'}).status_code)
        self.assertError(self.call('POST', '/project/p1/detach_node',
                                   {'node': 'node2'}), 404, 'NotFoundError')

    def test_connect_node_unknown(self):
        self.assertError(self.call('POST', '/project/p9/connect_node',
                                   {'node': 'node2'}), 404, 'NotFoundError')
        self.assertError(self.call('POST', '/project/p1/connect_node',
                                   {'node': 'node9'}), 404, 'NotFoundError')

    def test_detach_node_with_attachment(self):
        status_id = self.connect('node1', 'eth0', 'prov').json()['status_id']
        self.assertError(self.call('POST', '/project/p1/detach_node',
                                   {'node': 'node1'}), 409, 'BlockedError')
        self.wait(status_id)
        self.assertError(self.call('POST', '/project/p1/detach_node',
                                   {'node': 'node1'}), 409, 'BlockedError')


class TestNetworks(ServerTestCase):

    def test_create_allocates_vlan(self):
        resp = self.call('PUT', '/network/net-c',
                         {'owner': 'p1', 'access': 'p1', 'net_id': ''})
        self.assertEqual(200, resp.status_code, resp.text)
        net = self.call('GET', '/network/net-c').json()
        self.assertEqual('net-c', net['name'])
        self.assertEqual(['p1'], net['access'])
        self.assertEqual('p1', net['owner'])
        self.assertEqual(2, len(net['channels']))
        self.assertEqual('vlan/native', net['channels'][0])
        self.assertRegex(net['channels'][1], r'^vlan/1[0-9]{3}$')
        self.assertNotIn(net['channels'][1], ('vlan/1001', 'vlan/1002'))
        self.assertError(self.call('PUT', '/network/net-c', {
            'owner': 'p1', 'access': 'p1', 'net_id': ''}), 409,
            'DuplicateError')

    def test_create_requires_all_fields(self):
        self.assertError(self.call('PUT', '/network/net-c', {'owner': 'p1'}),
                         400, 'ValidationError')

    def test_public_network(self):
        net = self.call('GET', '/network/prov').json()
        self.assertIsNone(net['access'])
        self.assertEqual('admin', net['owner'])
        self.assertEqual({}, net['connected-nodes'])

    def test_list_and_delete(self):
        nets = self.call('GET', '/networks').json()
        self.assertEqual(['net-a', 'net-b', 'prov'], sorted(nets))
        self.assertIsNone(nets['prov']['projects'])
        self.assertEqual(200, self.call('DELETE', '/network/net-b')
                         .status_code)
        self.assertError(self.call('GET', '/network/net-b'), 404,
                         'NotFoundError')


class TestNetworkingActions(ServerTestCase):

    def test_connect_is_asynchronous(self):
        resp = self.connect('node1', 'eth0', 'prov')
        self.assertEqual(202, resp.status_code)
        status_id = resp.json()['status_id']
        action = self.call('GET', '/networking_action/' + status_id).json()
        self.assertEqual({'status': 'PENDING', 'node': 'node1',
                          'nic': 'eth0', 'type': 'modify_port',
                          'channel': 'vlan/native', 'new_network': 'prov'},
                         action)
        self.assertEqual('DONE', self.wait(status_id)['status'])
        nic = self.call('GET', '/node/node1').json()['nics'][0]
        self.assertEqual({'vlan/native': 'prov'}, nic['networks'])
        net = self.call('GET', '/network/prov').json()
        self.assertEqual({'node1': ['eth0']}, net['connected-nodes'])
        attachments = self.call('GET', '/network/prov/attachments').json()
        self.assertEqual({'node1': {'project': 'p1', 'nics': ['eth0']}},
                         attachments)

    def test_one_pending_action_per_nic(self):
        self.connect('node1', 'eth0', 'prov')
        self.assertError(self.connect('node1', 'eth0', 'net-a', 'vlan/1001'),
                         409, 'BlockedError')
        # Another nic is independent.
        self.assertEqual(202, self.connect('node1', 'eth1', 'prov')
                         .status_code)

    def test_tagged_and_detach(self):
        self.wait(self.connect('node1', 'eth0', 'prov').json()['status_id'])
        status_id = self.connect('node1', 'eth0', 'net-a', 'vlan/1001').json()[
            'status_id']
        self.wait(status_id)
        nic = self.call('GET', '/node/node1').json()['nics'][0]
        self.assertEqual({'vlan/native': 'prov', 'vlan/1001': 'net-a'},
                         nic['networks'])
        resp = self.call('POST', '/node/node1/nic/eth0/detach_network',
                         {'network': 'net-a'})
        self.assertEqual(202, resp.status_code)
        action = self.wait(resp.json()['status_id'])
        self.assertEqual('DONE', action['status'])
        self.assertIsNone(action['new_network'])
        nic = self.call('GET', '/node/node1').json()['nics'][0]
        self.assertEqual({'vlan/native': 'prov'}, nic['networks'])

    def test_reattach_is_409(self):
        self.wait(self.connect('node1', 'eth0', 'prov').json()['status_id'])
        self.assertError(self.connect('node1', 'eth0', 'prov'), 409,
                         'BlockedError')

    def test_channel_in_use_is_409(self):
        self.wait(self.connect('node1', 'eth0', 'prov').json()['status_id'])
        self.assertError(self.connect('node1', 'eth0', 'net-a'), 409,
                         'BlockedError')

    def test_detach_not_attached_is_400(self):
        self.assertError(self.call('POST', '/node/node1/nic/eth0/'
                                   'detach_network', {'network': 'prov'}),
                         400, 'BadArgumentError')

    def test_illegal_channel(self):
        self.assertError(self.connect('node1', 'eth0', 'net-a', 'vlan/9999'),
                         400, 'BadArgumentError')

    def test_project_without_access(self):
        self.assertError(self.connect('node1', 'eth0', 'net-b', 'vlan/1002'),
                         409, 'ProjectMismatchError')

    def test_free_node(self):
        self.assertError(self.connect('node2', 'eth0', 'prov'), 409,
                         'ProjectMismatchError')

    def test_uncabled_nic(self):
        self.assertError(self.connect('node3', 'eth0', 'net-b'), 404,
                         'NotFoundError')

    def test_unknown_nic_network(self):
        self.assertError(self.connect('node1', 'eth9', 'prov'), 404,
                         'NotFoundError')
        self.assertError(self.connect('node1', 'eth0', 'nope'), 404,
                         'NotFoundError')

    def test_status_dropped_by_next_action(self):
        first = self.connect('node1', 'eth0', 'prov').json()['status_id']
        self.wait(first)
        self.call('POST', '/node/node1/nic/eth0/detach_network',
                  {'network': 'prov'})
        self.assertError(self.call('GET', '/networking_action/' + first),
                         404, 'NotFoundError')

    def test_switch_failure(self):
        self.server.fail_switch('sw0')
        action = self.wait(self.connect('node1', 'eth0', 'prov').json()[
            'status_id'])
        self.assertEqual('ERROR', action['status'])
        nic = self.call('GET', '/node/node1').json()['nics'][0]
        self.assertEqual({}, nic['networks'])
        # The nic is free for the next action; sw1 still works.
        self.assertEqual('DONE', self.wait(self.connect(
            'node1', 'eth1', 'prov').json()['status_id'])['status'])
        self.server.fail_switch('sw0', False)
        self.assertEqual('DONE', self.wait(self.connect(
            'node1', 'eth0', 'prov').json()['status_id'])['status'])


class TestRegistration(ServerTestCase):

    def test_register_node_and_nic(self):
        obmd = {'uri': 'http://obmd/node/node4', 'admin_token': 't'}
        self.assertEqual(200, self.call('PUT', '/node/node4', {
            'obmd': obmd, 'metadata': {'k': [1]}}).status_code)
        self.assertError(self.call('PUT', '/node/node4', {
            'obmd': obmd}), 409, 'DuplicateError')
        # The old "obm" form is refused, as the real server does.
        self.assertError(self.call('PUT', '/node/node6', {
            'obm': {'type': 'ipmi'}}), 400, 'ValidationError')
        self.assertError(self.call('PUT', '/node/node5', {}), 400,
                         'ValidationError')
        self.assertEqual(200, self.call('PUT', '/node/node4/nic/eth0', {
            'macaddr': '52:54:00:00:00:09'}).status_code)
        node = self.call('GET', '/node/node4').json()
        self.assertEqual({'k': '[1]'}, node['metadata'])
        self.assertEqual('52:54:00:00:00:09', node['nics'][0]['macaddr'])
        self.assertError(self.call('DELETE', '/node/node4'), 409,
                         'BlockedError')
        self.assertEqual(200, self.call('DELETE', '/node/node4/nic/eth0')
                         .status_code)
        self.assertEqual(200, self.call('DELETE', '/node/node4').status_code)

    def test_admin_helper(self):
        admin = hil_emulator.Admin(self.server.url)
        admin.put_project('p3')
        admin.put_project('p3')
        admin.put_network('net-p3', owner='p3', access='p3')
        admin.put_node('node9', {'project': 'p3', 'nics': [
            {'label': 'eth0', 'macaddr': '52:54:00:00:00:99',
             'switch': 'sw9', 'port': 'gi9'}]})
        self.assertEqual('p3', admin.project('node9'))
        self.wait(self.connect('node9', 'eth0', 'net-p3').json()[
            'status_id'])
        self.assertEqual({'eth0': {'vlan/native': 'net-p3'}},
                         admin.networks('node9'))
        admin.fail_switch('sw9')
        admin.set_action_delay(0.01)
        state = admin.state()
        self.assertEqual(['sw9'], state['failing_switches'])
        self.assertEqual(0.01, state['action_delay'])
        self.assertRaises(RuntimeError, admin.put_node, 'node10',
                          {'project': 'nope'})


class TestState(ServerTestCase):

    def test_state_file_follows_changes(self):
        self.call('POST', '/project/p1/connect_node', {'node': 'node2'})
        with open(self.state_path) as f:
            self.assertEqual('p1', json.load(f)['nodes']['node2']['project'])

    def test_restart_from_state_file(self):
        self.wait(self.connect('node1', 'eth0', 'prov').json()['status_id'])
        self.server.stop()
        again = server.HILServer(state_path=self.state_path).start()
        self.addCleanup(again.stop)
        node = requests.get(again.url + '/v0/node/node1', timeout=5).json()
        self.assertEqual({'vlan/native': 'prov'}, node['nics'][0]['networks'])

    def test_debug_routes(self):
        resp = self.http.put(self.server.url + '/_debug/switch/sw0',
                             data=json.dumps({'fail': True}))
        self.assertEqual(200, resp.status_code)
        resp = self.http.put(self.server.url + '/_debug/action_delay',
                             data=json.dumps({'seconds': 0.01}))
        self.assertEqual(200, resp.status_code)
        state = self.http.get(self.server.url + '/_debug/state').json()
        self.assertEqual(['sw0'], state['failing_switches'])
        self.assertEqual(0.01, state['action_delay'])
        self.assertEqual(['sw0'], self.server.snapshot()['failing_switches'])


class TestDatabaseAuth(ServerTestCase):

    auth = 'database'

    def test_no_credentials(self):
        resp = self.call('GET', '/nodes/all')
        self.assertError(resp, 401, 'AuthorizationError')

    def test_unknown_user_is_404(self):
        self.assertError(self.call('GET', '/nodes/all', auth=('bob', 'x')),
                         404, 'NotFoundError')

    def test_wrong_password_is_401(self):
        resp = self.call('GET', '/nodes/all', auth=(ADMIN[0], 'wrong'))
        self.assertError(resp, 401, 'AuthorizationError')
        self.assertNotIn('wrong', resp.text)

    def test_admin_only(self):
        self.assertError(self.call('GET', '/projects', auth=ALICE), 401,
                         'AuthorizationError')
        self.assertEqual(200, self.call('GET', '/projects', auth=ADMIN)
                         .status_code)

    def test_project_member(self):
        node = self.call('GET', '/node/node1', auth=ALICE).json()
        self.assertNotIn('switch', node['nics'][0])
        self.assertNotIn('port', node['nics'][0])
        # A free node is readable by anyone; another project's is not.
        self.assertEqual(200, self.call('GET', '/node/node2', auth=ALICE)
                         .status_code)
        self.assertError(self.call('GET', '/node/node3', auth=ALICE), 401,
                         'AuthorizationError')
        resp = self.connect('node1', 'eth0', 'net-a', 'vlan/1001',
                            auth=ALICE)
        self.assertEqual(202, resp.status_code)
        self.assertEqual('DONE', self.wait(resp.json()['status_id'],
                                           auth=ALICE)['status'])

    def test_debug_is_admin_only(self):
        resp = self.http.get(self.server.url + '/_debug/state', auth=ALICE)
        self.assertEqual(401, resp.status_code)
        resp = self.http.get(self.server.url + '/_debug/state', auth=ADMIN)
        self.assertEqual(200, resp.status_code)
