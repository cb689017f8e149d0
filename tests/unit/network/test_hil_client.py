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

"""The HIL client against recorded HIL answers (requests-mock)."""

import base64
import logging
import time

import fixtures
from keystoneauth1 import fixture as ks_fixture
from keystoneauth1 import loading as ks_loading
import requests
from requests_mock.contrib import fixture as rm_fixture

from bmi_driver import exception
from bmi_driver.network import hil_api
from bmi_driver.network import hil_client
from tests import base

HIL = 'http://hil.test:7000'
V0 = HIL + '/v0'
NODE_URL = V0 + '/node/node1'
CONNECT_URL = NODE_URL + '/nic/eth0/connect_network'
DETACH_URL = NODE_URL + '/nic/eth0/detach_network'
STATUS_ID = '8d0c7f84-3f6b-4d5e-9a3f-2a4c6f1b2e10'
ACTION_URL = V0 + '/networking_action/' + STATUS_ID
KEYSTONE = 'http://keystone.test/identity/v3'


def node(networks=None, project='p1'):
    return {'name': 'node1', 'project': project, 'metadata': {},
            'nics': [{'label': 'eth0', 'macaddr': '52:54:00:00:00:01',
                      'networks': networks or {}}]}


def status(state, network='net-a', channel='vlan/native'):
    return {'json': {'status': state, 'node': 'node1', 'nic': 'eth0',
                     'type': 'modify_port', 'channel': channel,
                     'new_network': network}}


def error(status_code, type_, msg):
    return {'status_code': status_code, 'json': {'type': type_, 'msg': msg}}


def pending():
    """HIL's answer while another networking action is pending on the nic.

    The one BlockedError worth waiting for (HIL 8c6de221's wording).
    """
    return error(409, 'BlockedError', 'A networking operation is already '
                 'active on the nic.')


class ClientTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.config(url=HIL, action_poll_interval=0.01, connect_retries=0,
                    group='hil')
        self.rm = self.useFixture(rm_fixture.Fixture())

    def client(self, timeout=None):
        client = hil_client.get_client()
        if timeout is not None:
            client.action_timeout = timeout
        return client

    def requests_to(self, method, url):
        return [r for r in self.rm.request_history
                if r.method == method and r.url == url]

    def accept(self, nic, action):
        """HIL takes ``action`` on node1's ``nic``: its status URL."""
        sid = 'status-%s' % nic
        self.rm.post(NODE_URL + '/nic/%s/%s' % (nic, action),
                     status_code=202, json={'status_id': sid})
        return V0 + '/networking_action/' + sid


class TestConfiguration(ClientTestCase):

    def test_no_url(self):
        self.config(url=None, group='hil')
        self.assertRaisesRegex(exception.HILError, r'\[hil\] url',
                               hil_client.get_client)

    def test_endpoint_override_wins(self):
        self.config(endpoint_override='http://other.test:7001', group='hil')
        self.rm.get('http://other.test:7001/v0/nodes/all', json=['node1'])
        self.assertEqual(['node1'], self.client().list_nodes())

    def test_url_with_trailing_slash(self):
        self.config(url=HIL + '/', group='hil')
        self.rm.get(V0 + '/nodes/free', json=[])
        self.assertEqual([], self.client().list_nodes('free'))

    def test_unknown_auth_type(self):
        self.config(auth_type='no-such-plugin', group='hil')
        self.assertRaisesRegex(exception.HILError, 'authentication',
                               hil_client.get_client)


class TestAuth(ClientTestCase):

    def test_none_sends_no_credentials(self):
        self.rm.get(NODE_URL, json=node())
        self.client().get_node('node1')
        headers = self.rm.last_request.headers
        self.assertNotIn('Authorization', headers)
        # keystoneauth1's noauth plugin sends a dummy token; HIL ignores it.
        self.assertEqual('notused', headers.get('X-Auth-Token', 'notused'))

    def test_http_basic(self):
        self._plugin_opts('http_basic')
        self.config(auth_type='http_basic', group='hil')
        self.config(username='bmi', password='s3cret!', group='hil')
        self.rm.get(NODE_URL, json=node())
        self.client().get_node('node1')
        expected = 'Basic ' + base64.b64encode(b'bmi:s3cret!').decode()
        self.assertEqual(expected,
                         self.rm.last_request.headers['Authorization'])

    def test_http_basic_password_not_logged(self):
        # oslo.log's defaults quiet keystoneauth: listen to it directly.
        logger = self.useFixture(fixtures.FakeLogger(name='keystoneauth',
                                                     level=logging.DEBUG))
        self._plugin_opts('http_basic')
        self.config(auth_type='http_basic', group='hil')
        self.config(username='bmi', password='s3cret!', group='hil')
        self.rm.get(NODE_URL, json=node())
        self.client().get_node('node1')
        self.assertIn('/v0/node/node1', logger.output)
        self.assertNotIn('s3cret!', logger.output)
        self.assertNotIn(base64.b64encode(b'bmi:s3cret!').decode(),
                         logger.output)

    def test_http_basic_wrong_password(self):
        self._plugin_opts('http_basic')
        self.config(auth_type='http_basic', group='hil')
        self.config(username='bmi', password='s3cret!', group='hil')
        self.rm.get(NODE_URL, **error(401, 'AuthorizationError',
                                      "Invalid password for user 'bmi'"))
        e = self.assertRaises(exception.HILAuthError,
                              self.client().get_node, 'node1')
        self.assertEqual(401, e.status)
        self.assertIn('Invalid password', str(e))
        self.assertNotIn('s3cret!', str(e))

    def test_http_basic_unknown_user_is_404(self):
        self._plugin_opts('http_basic')
        self.config(auth_type='http_basic', group='hil')
        self.config(username='nobody', password='x', group='hil')
        self.rm.get(NODE_URL, **error(404, 'NotFoundError',
                                      "user 'nobody' does not exist"))
        e = self.assertRaises(exception.HILNotFound,
                              self.client().get_node, 'node1')
        self.assertIn('nobody', str(e))

    def _plugin_opts(self, name):
        # keystoneauth1 registers them when it loads the plugin; register
        # them first (through the fixture, which unregisters them after the
        # test: the password plugin's required auth_url must not outlive it).
        loader = ks_loading.get_plugin_loader(name)
        self.conf_fixture.register_opts(
            ks_loading.get_auth_plugin_conf_options(loader), group='hil')

    def _keystone(self):
        self._plugin_opts('password')
        self.config(auth_type='password', group='hil')
        self.config(auth_url=KEYSTONE, username='bmi', password='s3cret!',
                    user_domain_name='Default', project_name='service',
                    project_domain_name='Default', group='hil')
        self.rm.get(KEYSTONE, json=ks_fixture.V3Discovery(KEYSTONE))
        token = ks_fixture.V3Token()
        token.set_project_scope()
        self.rm.post(KEYSTONE + '/auth/tokens', json=token,
                     headers={'X-Subject-Token': 'tok-123'})

    def test_keystone_token(self):
        self._keystone()
        self.rm.get(NODE_URL, json=node())
        self.client().get_node('node1')
        self.assertEqual('tok-123',
                         self.rm.last_request.headers['X-Auth-Token'])

    def test_keystone_refuses(self):
        self._keystone()
        self.rm.post(KEYSTONE + '/auth/tokens', status_code=401,
                     json={'error': {'message': 'The request you have made '
                                     'requires authentication.',
                                     'code': 401}})
        e = self.assertRaises(exception.HILAuthError,
                              self.client().get_node, 'node1')
        self.assertIn('Keystone', str(e))
        self.assertNotIn('s3cret!', str(e))

    def test_keystone_unreachable(self):
        self._keystone()
        self.rm.get(KEYSTONE, exc=requests.exceptions.ConnectionError)
        self.rm.post(KEYSTONE + '/auth/tokens',
                     exc=requests.exceptions.ConnectionError)
        e = self.assertRaises(exception.HILAuthError,
                              self.client().get_node, 'node1')
        self.assertIn('Keystone', str(e))


class TestErrors(ClientTestCase):

    def check(self, answer, exc, status_code, type_):
        self.rm.get(NODE_URL, **answer)
        e = self.assertRaises(exc, self.client().get_node, 'node1')
        self.assertEqual(status_code, e.status)
        self.assertEqual(type_, e.type)
        return e

    def test_validation_error(self):
        e = self.check(error(400, 'ValidationError', 'bad body'),
                       exception.HILBadRequest, 400, 'ValidationError')
        self.assertEqual('HIL: bad body (ValidationError, HTTP 400)', str(e))

    def test_bad_argument(self):
        self.check(error(400, 'BadArgumentError', 'illegal channel'),
                   exception.HILBadRequest, 400, 'BadArgumentError')

    def test_authorization_error(self):
        e = self.check(error(401, 'AuthorizationError',
                             'This operation is administrator-only.'),
                       exception.HILAuthError, 401, 'AuthorizationError')
        self.assertIn('administrator-only', str(e))

    def test_not_found(self):
        e = self.check(error(404, 'NotFoundError', 'Node "node1" does not '
                             'exist.'), exception.HILNotFound, 404,
                       'NotFoundError')
        self.assertIn('does not exist', str(e))

    def test_duplicate(self):
        self.check(error(409, 'DuplicateError', 'exists'),
                   exception.HILConflict, 409, 'DuplicateError')

    def test_blocked(self):
        self.check(error(409, 'BlockedError', 'pending'),
                   exception.HILConflict, 409, 'BlockedError')

    def test_project_mismatch(self):
        self.check(error(409, 'ProjectMismatchError', 'no access'),
                   exception.HILConflict, 409, 'ProjectMismatchError')

    def test_illegal_state(self):
        self.check(error(409, 'IllegalStateError', 'still attached'),
                   exception.HILConflict, 409, 'IllegalStateError')

    def test_server_error_not_json(self):
        e = self.check({'status_code': 500, 'text': 'Internal Server Error: '
                        'switch session failed'}, exception.HILError, 500,
                       None)
        self.assertIn('switch session failed', str(e))
        self.assertIn('HTTP 500', str(e))

    def test_server_error_html_page_is_read_as_words(self):
        # werkzeug's page for an unhandled error in HIL's API.
        page = ('<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n'
                '<title>500 Internal Server Error</title>\n'
                '<h1>Internal Server Error</h1>\n<p>The server encountered '
                'an internal error.</p>\n')
        e = self.check({'status_code': 500, 'text': page},
                       exception.HILError, 500, None)
        self.assertEqual('HIL error: 500 Internal Server Error Internal '
                         'Server Error The server encountered an internal '
                         'error. (HTTP 500)', str(e))

    def test_server_error_json(self):
        self.check(error(500, 'SwitchError', 'switch said no'),
                   exception.HILError, 500, 'SwitchError')

    def test_answer_not_json(self):
        self.rm.get(NODE_URL, text='<html>oops</html>')
        e = self.assertRaises(exception.HILError,
                              self.client().get_node, 'node1')
        self.assertIn('not JSON', str(e))

    def test_text_html_content_type_is_fine(self):
        self.rm.get(NODE_URL, text='{"name": "node1", "project": null}',
                    headers={'Content-Type': 'text/html; charset=utf-8'})
        self.assertEqual('node1', self.client().get_node('node1')['name'])

    def test_unreachable(self):
        self.rm.get(NODE_URL, exc=requests.exceptions.ConnectionError(
            'Connection refused'))
        e = self.assertRaises(exception.HILUnreachable,
                              self.client().get_node, 'node1')
        self.assertIn(HIL, str(e))
        self.assertIsNone(e.status)

    def test_timeout(self):
        self.rm.get(NODE_URL, exc=requests.exceptions.ReadTimeout)
        e = self.assertRaises(exception.HILUnreachable,
                              self.client().get_node, 'node1')
        self.assertIn('timed out', str(e))

    def test_connect_retries(self):
        self.config(connect_retries=2, connect_retry_delay=0.01,
                    group='hil')
        self.rm.get(NODE_URL, [
            {'exc': requests.exceptions.ConnectionError},
            {'exc': requests.exceptions.ConnectTimeout},
            {'json': node()}])
        self.assertEqual('node1', self.client().get_node('node1')['name'])
        self.assertEqual(3, self.rm.call_count)

    def test_connect_retries_exhausted(self):
        self.config(connect_retries=1, connect_retry_delay=0.01,
                    group='hil')
        self.rm.get(NODE_URL, exc=requests.exceptions.ConnectionError)
        self.assertRaises(exception.HILUnreachable,
                          self.client().get_node, 'node1')
        self.assertEqual(2, self.rm.call_count)

    def test_no_body_on_get(self):
        self.rm.get(NODE_URL, json=node())
        self.client().get_node('node1')
        self.assertIsNone(self.rm.last_request.body)


class TestConnectNetwork(ClientTestCase):

    def test_polls_to_done(self):
        self.rm.get(NODE_URL, json=node())
        self.rm.post(CONNECT_URL, status_code=202,
                     json={'status_id': STATUS_ID})
        self.rm.get(ACTION_URL, [status('PENDING'), status('PENDING'),
                                 status('DONE')])
        self.assertTrue(self.client().connect_network('node1', 'eth0',
                                                      'net-a'))
        post = self.requests_to('POST', CONNECT_URL)
        self.assertEqual(1, len(post))
        self.assertEqual({'network': 'net-a', 'channel': 'vlan/native'},
                         post[0].json())
        self.assertEqual(3, len(self.requests_to('GET', ACTION_URL)))

    def test_tagged_channel(self):
        self.rm.get(NODE_URL, json=node({'vlan/native': 'prov'}))
        self.rm.post(CONNECT_URL, status_code=202,
                     json={'status_id': STATUS_ID})
        self.rm.get(ACTION_URL, **status('DONE', channel='vlan/1001'))
        self.assertTrue(self.client().connect_network(
            'node1', 'eth0', 'net-a', 'vlan/1001'))
        self.assertEqual({'network': 'net-a', 'channel': 'vlan/1001'},
                         self.requests_to('POST', CONNECT_URL)[0].json())

    def test_error(self):
        self.rm.get(NODE_URL, json=node())
        self.rm.post(CONNECT_URL, status_code=202,
                     json={'status_id': STATUS_ID})
        self.rm.get(ACTION_URL, [status('PENDING'), status('ERROR')])
        e = self.assertRaises(exception.HILActionFailed,
                              self.client().connect_network,
                              'node1', 'eth0', 'net-a')
        self.assertIn('node1/eth0', str(e))
        self.assertIn('ERROR', str(e))

    def test_timeout(self):
        self.rm.get(NODE_URL, json=node())
        self.rm.post(CONNECT_URL, status_code=202,
                     json={'status_id': STATUS_ID})
        self.rm.get(ACTION_URL, **status('PENDING'))
        e = self.assertRaises(exception.HILTimeout,
                              self.client(timeout=0.1).connect_network,
                              'node1', 'eth0', 'net-a')
        self.assertIn('did not finish within 0.1 seconds', str(e))

    def test_already_connected_is_success(self):
        # HIL is asked (it checks for a pending action first) and its
        # "already attached" is read against the nic's state.
        self.rm.get(NODE_URL, json=node({'vlan/native': 'net-a'}))
        self.rm.post(CONNECT_URL, **error(
            409, 'BlockedError', 'The network is already attached to the '
            'nic.'))
        self.assertFalse(self.client().connect_network('node1', 'eth0',
                                                       'net-a'))
        self.assertEqual(1, len(self.requests_to('POST', CONNECT_URL)))

    def test_other_channel_is_conflict(self):
        self.rm.get(NODE_URL, json=node({'vlan/1001': 'net-a'}))
        self.rm.post(CONNECT_URL, **error(
            409, 'BlockedError', 'The network is already attached to the '
            'nic.'))
        e = self.assertRaises(exception.HILConflict,
                              self.client().connect_network,
                              'node1', 'eth0', 'net-a')
        self.assertIn('vlan/1001', str(e))
        self.assertEqual(1, len(self.requests_to('POST', CONNECT_URL)))

    def test_channel_taken_is_conflict(self):
        self.rm.get(NODE_URL, json=node({'vlan/native': 'net-b'}))
        self.rm.post(CONNECT_URL, **error(
            409, 'BlockedError', 'The channel is already in use on the '
            'nic.'))
        e = self.assertRaises(exception.HILConflict,
                              self.client().connect_network,
                              'node1', 'eth0', 'net-a')
        self.assertIn('net-b', str(e))
        self.assertEqual(1, len(self.requests_to('POST', CONNECT_URL)))

    def test_blocked_waits_and_retries(self):
        self.rm.get(NODE_URL, json=node())
        self.rm.post(CONNECT_URL, [
            pending(),
            {'status_code': 202, 'json': {'status_id': STATUS_ID}}])
        self.rm.get(ACTION_URL, **status('DONE'))
        self.assertTrue(self.client().connect_network('node1', 'eth0',
                                                      'net-a'))
        self.assertEqual(2, len(self.requests_to('POST', CONNECT_URL)))

    def test_blocked_then_found_connected(self):
        # An earlier connect of the same network was pending: waited out,
        # then HIL says it is attached.
        self.rm.get(NODE_URL, json=node({'vlan/native': 'net-a'}))
        self.rm.post(CONNECT_URL, [
            pending(),
            error(409, 'BlockedError', 'The network is already attached '
                  'to the nic.')])
        self.assertFalse(self.client().connect_network('node1', 'eth0',
                                                       'net-a'))
        self.assertEqual(2, len(self.requests_to('POST', CONNECT_URL)))

    def test_blocked_forever(self):
        self.rm.get(NODE_URL, json=node())
        self.rm.post(CONNECT_URL, **error(409, 'BlockedError', 'pending'))
        self.assertRaises(exception.HILTimeout,
                          self.client(timeout=0.1).connect_network,
                          'node1', 'eth0', 'net-a')

    def test_project_mismatch_is_not_retried(self):
        self.rm.get(NODE_URL, json=node())
        self.rm.post(CONNECT_URL, **error(
            409, 'ProjectMismatchError',
            'Project does not have access to given network.'))
        e = self.assertRaises(exception.HILConflict,
                              self.client().connect_network,
                              'node1', 'eth0', 'net-a')
        self.assertEqual('ProjectMismatchError', e.type)
        self.assertEqual(1, len(self.requests_to('POST', CONNECT_URL)))

    def test_unknown_nic(self):
        self.rm.post(NODE_URL + '/nic/eth9/connect_network', **error(
            404, 'NotFoundError', 'Nic eth9 on Node node1 does not exist.'))
        e = self.assertRaises(exception.HILNotFound,
                              self.client().connect_network,
                              'node1', 'eth9', 'net-a')
        self.assertNotIsInstance(e, exception.HILNodeNotFound)

    def test_status_record_dropped_but_state_reached(self):
        self.rm.get(NODE_URL, json=node({'vlan/native': 'net-a'}))
        self.rm.post(CONNECT_URL, status_code=202,
                     json={'status_id': STATUS_ID})
        self.rm.get(ACTION_URL, **error(404, 'NotFoundError', 'gone'))
        self.assertTrue(self.client().connect_network('node1', 'eth0',
                                                      'net-a'))

    def test_status_record_dropped_and_state_not_reached(self):
        self.rm.get(NODE_URL, json=node())
        self.rm.post(CONNECT_URL, status_code=202,
                     json={'status_id': STATUS_ID})
        self.rm.get(ACTION_URL, **error(404, 'NotFoundError', 'gone'))
        self.assertRaises(exception.HILActionFailed,
                          self.client().connect_network,
                          'node1', 'eth0', 'net-a')


class TestConnectNetworks(ClientTestCase):
    """Several nics side by side: one HIL sweep for all of them."""

    def nic_urls(self, nic):
        return self.accept(nic, 'connect_network')

    def test_every_nic_posted_before_any_wait(self):
        for nic in ('eth0', 'eth1'):
            self.rm.get(self.nic_urls(nic), [status('PENDING'),
                                             status('DONE')])
        done = []
        self.client().connect_networks(
            'node1', [('eth0', 'net-a', 'vlan/1001'),
                      ('eth1', 'net-b', None)], done)
        self.assertEqual([('eth0', 'net-a'), ('eth1', 'net-b')], done)
        history = [(r.method, r.url.rsplit('/', 2)[-2])
                   for r in self.rm.request_history]
        self.assertEqual([('POST', 'eth0'), ('POST', 'eth1')], history[:2])
        self.assertEqual({'network': 'net-b', 'channel': 'vlan/native'},
                         self.rm.request_history[1].json())
        self.assertEqual(['GET'] * 4, [m for m, _ in history[2:]])

    def test_first_look_one_interval_after_the_post(self):
        # serve-networks never applies an action within its POST: looking
        # at once would only cost HIL a request. Two nics posted together
        # wait once.
        self.config(action_poll_interval=1.0, group='hil')
        stamps = []

        def done(request, context):
            stamps.append((request.method, time.monotonic()))
            return status('DONE')['json']
        for nic in ('eth0', 'eth1'):
            self.rm.get(self.accept(nic, 'connect_network'), json=done)
        t0 = time.monotonic()
        self.client().connect_networks(
            'node1', [('eth0', 'net-a', None), ('eth1', 'net-b', None)], [])
        [(_, first), (_, second)] = stamps
        self.assertGreaterEqual(first - t0, 1.0)
        self.assertLess(second - first, 0.5)

    def test_one_nic_in_order(self):
        # HIL takes one action per nic: the second waits for the first.
        url = self.nic_urls('eth0')
        self.rm.get(url, [status('DONE'), status('DONE')])
        done = []
        self.client().connect_networks(
            'node1', [('eth0', 'net-a', 'vlan/native'),
                      ('eth0', 'net-b', 'vlan/1001')], done)
        self.assertEqual([('eth0', 'net-a'), ('eth0', 'net-b')], done)
        self.assertEqual(['POST', 'GET', 'POST', 'GET'],
                         [r.method for r in self.rm.request_history])

    def test_a_failure_waits_for_the_others(self):
        self.rm.get(self.nic_urls('eth0'), [status('PENDING'),
                                            status('ERROR')])
        self.rm.get(self.nic_urls('eth1'), [status('PENDING'),
                                            status('DONE')])
        # Not posted: the first round failed.
        later = self.rm.post(NODE_URL + '/nic/eth2/connect_network',
                             status_code=202, json={'status_id': 'x'})
        done = []
        self.assertRaises(exception.HILActionFailed,
                          self.client().connect_networks, 'node1',
                          [('eth0', 'net-a', None), ('eth1', 'net-b', None),
                           ('eth1', 'net-c', 'vlan/1001')], done)
        # eth1 landed: the caller undoes it.
        self.assertEqual([('eth1', 'net-b')], done)
        self.assertFalse(later.called)
        self.assertEqual(1, len(self.requests_to(
            'POST', NODE_URL + '/nic/eth1/connect_network')))

    def test_a_refused_post_stops_the_round(self):
        self.rm.post(NODE_URL + '/nic/eth0/connect_network',
                     **error(404, 'NotFoundError', 'network net-a does not '
                             'exist'))
        later = self.rm.post(NODE_URL + '/nic/eth1/connect_network',
                             status_code=202, json={'status_id': 'x'})
        done = []
        self.assertRaises(exception.HILError,
                          self.client().connect_networks, 'node1',
                          [('eth0', 'net-a', None), ('eth1', 'net-b', None)],
                          done)
        self.assertEqual([], done)
        self.assertFalse(later.called)


class TestDetachNetworks(ClientTestCase):
    """Several detaches side by side; every one is tried."""

    def nic_urls(self, nic):
        return self.accept(nic, 'detach_network')

    def test_side_by_side_in_order(self):
        self.rm.get(self.nic_urls('eth0'), [status('DONE'),
                                            status('DONE')])
        self.rm.get(self.nic_urls('eth1'), **status('DONE'))
        failed = self.client().detach_networks(
            'node1', [('eth0', 'net-t'), ('eth0', 'net-n'),
                      ('eth1', 'net-b')])
        self.assertEqual([], failed)
        steps = [(r.method, r.url.rsplit('/', 2)[-2]
                  if r.method == 'POST' else 'status')
                 for r in self.rm.request_history]
        # eth0's tagged and eth1's first, eth0's native once its tagged
        # is done.
        self.assertEqual([('POST', 'eth0'), ('POST', 'eth1'),
                          ('GET', 'status'), ('GET', 'status'),
                          ('POST', 'eth0'), ('GET', 'status')], steps)
        self.assertEqual({'network': 'net-n'},
                         self.rm.request_history[4].json())

    def test_every_detach_tried(self):
        self.rm.get(self.nic_urls('eth0'), **status('ERROR'))
        self.rm.get(self.nic_urls('eth1'), **status('DONE'))
        failed = self.client().detach_networks(
            'node1', [('eth0', 'net-a'), ('eth1', 'net-b'),
                      ('eth1', 'net-c')])
        self.assertEqual([('eth0', 'net-a')],
                         [(nic, net) for nic, net, _ in failed])
        self.assertIsInstance(failed[0][2], exception.HILActionFailed)
        self.assertEqual(2, len(self.requests_to(
            'POST', NODE_URL + '/nic/eth1/detach_network')))


class TestDetachNetwork(ClientTestCase):

    def test_polls_to_done(self):
        self.rm.get(NODE_URL, json=node({'vlan/1001': 'net-a'}))
        self.rm.post(DETACH_URL, status_code=202,
                     json={'status_id': STATUS_ID})
        self.rm.get(ACTION_URL, [status('PENDING', None, 'vlan/1001'),
                                 status('DONE', None, 'vlan/1001')])
        self.assertTrue(self.client().detach_network('node1', 'eth0',
                                                     'net-a'))
        self.assertEqual({'network': 'net-a'},
                         self.requests_to('POST', DETACH_URL)[0].json())

    def test_not_attached_is_success(self):
        # Always asked: HIL would refuse while a connect is pending.
        self.rm.post(DETACH_URL, **error(400, 'BadArgumentError', 'The '
                                         'network is not attached to the '
                                         'nic.'))
        self.assertFalse(self.client().detach_network('node1', 'eth0',
                                                      'net-a'))
        self.assertEqual(1, len(self.requests_to('POST', DETACH_URL)))

    def test_other_bad_argument_is_an_error(self):
        self.rm.post(DETACH_URL, **error(400, 'ValidationError', 'bad'))
        self.assertRaises(exception.HILBadRequest,
                          self.client().detach_network,
                          'node1', 'eth0', 'net-a')

    def test_free_node_has_nothing_attached(self):
        self.rm.post(DETACH_URL, **error(409, 'ProjectMismatchError',
                                         'Node not in project'))
        self.assertFalse(self.client().detach_network('node1', 'eth0',
                                                      'net-a'))

    def test_error(self):
        self.rm.get(NODE_URL, json=node({'vlan/native': 'net-a'}))
        self.rm.post(DETACH_URL, status_code=202,
                     json={'status_id': STATUS_ID})
        self.rm.get(ACTION_URL, **status('ERROR', None))
        self.assertRaises(exception.HILActionFailed,
                          self.client().detach_network,
                          'node1', 'eth0', 'net-a')

    def test_blocked_waits(self):
        self.rm.get(NODE_URL, json=node({'vlan/native': 'net-a'}))
        self.rm.post(DETACH_URL, [
            error(409, 'BlockedError', 'pending'),
            error(409, 'BlockedError', 'pending'),
            {'status_code': 202, 'json': {'status_id': STATUS_ID}}])
        self.rm.get(ACTION_URL, **status('DONE', None))
        self.assertTrue(self.client().detach_network('node1', 'eth0',
                                                     'net-a'))


class TestNodes(ClientTestCase):

    CONNECT_NODE = V0 + '/project/p1/connect_node'
    DETACH_NODE = V0 + '/project/p1/detach_node'

    def test_connect_free_node(self):
        self.rm.get(NODE_URL, json=node(project=None))
        self.rm.post(self.CONNECT_NODE, text='')
        self.assertTrue(self.client().connect_node('p1', 'node1'))
        self.assertEqual({'node': 'node1'}, self.rm.last_request.json())

    def test_connect_node_already_in_project(self):
        self.rm.get(NODE_URL, json=node(project='p1'))
        self.assertFalse(self.client().connect_node('p1', 'node1'))
        self.assertEqual([], self.requests_to('POST', self.CONNECT_NODE))

    def test_connect_node_of_another_project(self):
        self.rm.get(NODE_URL, json=node(project='p2'))
        e = self.assertRaises(exception.HILConflict,
                              self.client().connect_node, 'p1', 'node1')
        # The holder is another project's name: the log's, not the text's
        # (it reaches the API user in last_error).
        self.assertNotIn('p2', str(e))
        self.assertIn('another HIL project', str(e))

    def test_connect_node_race_lost(self):
        self.rm.get(NODE_URL, [{'json': node(project=None)},
                               {'json': node(project='p2')}])
        self.rm.post(self.CONNECT_NODE, **error(
            409, 'BlockedError', 'Node is already owned by a project.'))
        self.assertRaises(exception.HILConflict,
                          self.client().connect_node, 'p1', 'node1')

    def test_connect_node_unknown_project(self):
        self.rm.get(NODE_URL, json=node(project=None))
        self.rm.post(self.CONNECT_NODE, **error(
            404, 'NotFoundError', 'Project "p1" does not exist.'))
        self.assertRaises(exception.HILNotFound,
                          self.client().connect_node, 'p1', 'node1')

    def test_detach_node(self):
        self.rm.get(NODE_URL, json=node(project='p1'))
        self.rm.post(self.DETACH_NODE, text='')
        self.assertTrue(self.client().detach_node('p1', 'node1'))

    def test_detach_node_not_in_project(self):
        self.rm.get(NODE_URL, json=node(project=None))
        self.assertFalse(self.client().detach_node('p1', 'node1'))
        self.assertEqual([], self.requests_to('POST', self.DETACH_NODE))

    def test_detach_node_with_attachments(self):
        self.rm.get(NODE_URL, json=node({'vlan/native': 'prov'}, 'p1'))
        e = self.assertRaises(exception.HILConflict,
                              self.client().detach_node, 'p1', 'node1')
        self.assertIn('eth0:prov', str(e))

    def test_detach_node_waits_for_pending_action(self):
        self.rm.get(NODE_URL, json=node(project='p1'))
        self.rm.post(self.DETACH_NODE, [
            error(409, 'BlockedError', 'Node has pending network actions'),
            {'text': ''}])
        self.assertTrue(self.client().detach_node('p1', 'node1'))


class TestRefusals(ClientTestCase):
    """HIL 8c6de221's permanent BlockedErrors fail at once."""

    # (text as HIL 8c6de221 words it, where it comes from)
    PERMANENT = [
        'Please attach a native network first',
        'Please remove all trunked Vlans before removing the native vlan',
        'Node attached to a network',
        "Node's obm is enabled.",
        'Node is already owned by a project.',
        'OBM is not enabled',
    ]

    def test_classification(self):
        for text in self.PERMANENT:
            self.assertTrue(hil_client.blocked_is_permanent(text), text)
            # Robust to case, spacing and punctuation.
            self.assertTrue(hil_client.blocked_is_permanent(
                '  ' + text.upper().replace(' ', '  ') + '!'), text)
        for text in ('A networking operation is already active on the nic.',
                     'Node has pending network actions',
                     'There are pending actions on this network'):
            self.assertFalse(hil_client.blocked_is_permanent(text), text)

    def test_unknown_text_is_waited_out_and_quoted(self):
        warning = self.useFixture(fixtures.MockPatchObject(
            hil_api.LOG, 'warning')).mock
        self.rm.post(CONNECT_URL, **error(409, 'BlockedError',
                                          'Switch is busy, come back'))
        start = time.monotonic()
        e = self.assertRaises(exception.HILTimeout,
                              self.client(timeout=0.2).connect_network,
                              'node1', 'eth0', 'net-a')
        self.assertGreaterEqual(time.monotonic() - start, 0.2)
        self.assertIn('Switch is busy, come back', str(e))
        self.assertIn('does not know', warning.call_args_list[0][0][0])
        self.assertGreater(len(self.requests_to('POST', CONNECT_URL)), 1)

    def test_native_first_fails_at_once(self):
        self.rm.get(NODE_URL, json=node())
        self.rm.post(CONNECT_URL, **error(
            409, 'BlockedError', 'Please attach a native network first'))
        start = time.monotonic()
        e = self.assertRaises(exception.HILRefused,
                              self.client(timeout=30).connect_network,
                              'node1', 'eth0', 'net-a', 'vlan/1001')
        self.assertLess(time.monotonic() - start, 5)
        self.assertEqual('HIL refused connect_network on node1/eth0: Please '
                         'attach a native network first', str(e))
        self.assertEqual(409, e.status)
        self.assertEqual(1, len(self.requests_to('POST', CONNECT_URL)))

    def test_trunked_before_native_fails_at_once(self):
        self.rm.post(DETACH_URL, **error(
            409, 'BlockedError', 'Please remove all trunked Vlans before '
            'removing the native vlan'))
        e = self.assertRaises(exception.HILRefused,
                              self.client(timeout=30).detach_network,
                              'node1', 'eth0', 'prov')
        self.assertIn('Please remove all trunked Vlans', str(e))
        self.assertEqual(1, len(self.requests_to('POST', DETACH_URL)))

    def test_detach_node_refusals_fail_at_once(self):
        url = V0 + '/project/p1/detach_node'
        for text in ('Node attached to a network', "Node's obm is enabled."):
            self.rm.get(NODE_URL, json=node(project='p1'))
            self.rm.post(url, **error(409, 'BlockedError', text))
            e = self.assertRaises(exception.HILRefused,
                                  self.client(timeout=30).detach_node,
                                  'p1', 'node1')
            self.assertIn(text, str(e))
        self.assertEqual(2, len(self.requests_to('POST', url)))

    def test_other_409s_are_not_retried(self):
        self.rm.post(CONNECT_URL, **error(409, 'IllegalStateError', 'no'))
        e = self.assertRaises(exception.HILConflict,
                              self.client(timeout=30).connect_network,
                              'node1', 'eth0', 'net-a')
        self.assertNotIsInstance(e, exception.HILRefused)
        self.assertEqual(1, len(self.requests_to('POST', CONNECT_URL)))


class TestLateActions(ClientTestCase):
    """An action that lands after the client gave up is reconciled."""

    def test_connect_that_timed_out_is_undone_by_the_next_detach(self):
        # The connect timed out; the nic shows nothing yet. The detach is
        # sent anyway: HIL says the connect is still pending, then it
        # lands, then the detach undoes it.
        self.rm.get(NODE_URL, json=node())
        self.rm.post(DETACH_URL, [
            pending(),
            {'status_code': 202, 'json': {'status_id': STATUS_ID}}])
        self.rm.get(ACTION_URL, **status('DONE', None))
        self.assertTrue(self.client().detach_network('node1', 'eth0',
                                                     'net-a'))
        self.assertEqual(2, len(self.requests_to('POST', DETACH_URL)))

    def test_detach_that_timed_out_then_connect(self):
        # A detach is pending while the nic still shows the network: the
        # connect waits for it and connects again, rather than taking the
        # stale "already there" for success.
        self.rm.get(NODE_URL, json=node({'vlan/native': 'net-a'}))
        self.rm.post(CONNECT_URL, [
            pending(),
            {'status_code': 202, 'json': {'status_id': STATUS_ID}}])
        self.rm.get(ACTION_URL, **status('DONE'))
        self.assertTrue(self.client().connect_network('node1', 'eth0',
                                                      'net-a'))


class TestNames(ClientTestCase):

    def test_refused_before_any_request(self):
        client = self.client()
        for bad in ('x/../other', '?x', '#x', '..', 'a b', 'a\tb', 'a%2Fb',
                    'a\x00b', 'é', '', 'n' * 256, None):
            for call in (lambda: client.get_node(bad),
                         lambda: client.get_network(bad),
                         lambda: client.connect_node(bad, 'node1'),
                         lambda: client.detach_node(bad, 'node1'),
                         lambda: client.connect_network(bad, 'eth0', 'n'),
                         lambda: client.connect_network('node1', bad, 'n'),
                         lambda: client.connect_network('node1', 'eth0',
                                                        bad),
                         lambda: client.detach_network(bad, 'eth0', 'n'),
                         lambda: client.detach_network('node1', bad, 'n'),
                         lambda: client.detach_network('node1', 'eth0',
                                                       bad)):
                e = self.assertRaises(exception.HILInvalidName, call)
                self.assertIsInstance(e, exception.InvalidInput)
                self.assertIn('Invalid HIL', str(e))
        self.assertEqual([], self.rm.request_history)

    def test_dot_dot_message(self):
        e = self.assertRaises(exception.HILInvalidName,
                              hil_client.check_name, 'node', 'x/../other')
        self.assertIn("'/'", str(e))
        e = self.assertRaises(exception.HILInvalidName,
                              hil_client.check_name, 'node', 'x..y')
        self.assertIn("'..'", str(e))

    def test_hil_names_pass(self):
        for good in ('node1', 'Node-1_a.b', "a$+!*'(),-", '0' * 255):
            self.assertEqual(good, hil_client.check_name('node', good))

    def test_percent_encoded_in_paths(self):
        self.rm.get(V0 + "/node/a%24b%2Bc%21%27%28%29%2C", json=node())
        self.client().get_node("a$b+c!'(),")
        self.assertEqual(1, self.rm.call_count)
        self.rm.post(V0 + '/node/n%2A1/nic/e%2B0/connect_network',
                     status_code=202, json={'status_id': 'x y'})
        self.rm.get(V0 + '/networking_action/x%20y', **status('DONE'))
        self.assertTrue(self.client().connect_network('n*1', 'e+0',
                                                      'net-a'))


class TestUnknownAndForeignNodes(ClientTestCase):

    def test_unknown_node(self):
        self.rm.get(NODE_URL, **error(404, 'NotFoundError',
                                      'Node node1 does not exist.'))
        e = self.assertRaises(exception.HILNodeNotFound,
                              self.client().get_node, 'node1')
        self.assertIn('HIL does not know node node1', str(e))

    def test_unknown_user_is_not_an_unknown_node(self):
        self.rm.get(NODE_URL, **error(404, 'NotFoundError',
                                      'User bmi does not exist.'))
        e = self.assertRaises(exception.HILNotFound,
                              self.client().get_node, 'node1')
        self.assertNotIsInstance(e, exception.HILNodeNotFound)

    def test_node_of_another_project(self):
        # HIL 8c6de221, database auth: GET of another project's node.
        self.rm.get(NODE_URL, **error(
            401, 'AuthorizationError',
            'You do not have access to the required project.'))
        e = self.assertRaises(exception.HILNodeNotVisible,
                              self.client().get_node, 'node1')
        self.assertIsInstance(e, exception.HILAuthError)
        self.assertIn('HIL node node1 is not visible to this HIL user',
                      str(e))
        self.assertIn('another project', str(e))

    def test_wrong_password_is_not_another_project(self):
        self.rm.get(NODE_URL, **error(
            401, 'AuthorizationError', 'Authentication failed. '
            'Authentication is required to use this service.'))
        e = self.assertRaises(exception.HILAuthError,
                              self.client().get_node, 'node1')
        self.assertNotIsInstance(e, exception.HILNodeNotVisible)

    def test_connect_node_of_an_invisible_project(self):
        self.rm.get(NODE_URL, **error(
            401, 'AuthorizationError',
            'You do not have access to the required project.'))
        self.assertRaises(exception.HILNodeNotVisible,
                          self.client().connect_node, 'p1', 'node1')
