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

"""Unit tests of the benchmarks' summary.json (tools/benchlib.py)."""

import json
import os

import fixtures

from tests import base
from tools import benchlib


class SummaryTest(base.TestCase):

    def test_each_benchmark_writes_its_part(self):
        path = os.path.join(self.state_dir, 'bench', 'summary.json')
        benchlib.write_summary('deploy', [{'n': 1, 'conductors': 1,
                                           'bmi_s': 0.5, 'fake_s': 0.4}],
                               path=path)
        benchlib.write_summary('export', {'raw_ms': 50.0,
                                          'manager_ms': 60.0}, path=path)
        benchlib.write_summary('read', {'rbd_mib_s': 500.0,
                                        'iscsi_mib_s': 450.0}, path=path)
        benchlib.write_summary('export', {'raw_ms': 40.0,
                                          'manager_ms': 44.0}, path=path)
        with open(path) as f:
            doc = json.load(f)
        self.assertEqual({'deploy', 'export', 'read'}, set(doc))
        self.assertEqual(44.0, doc['export']['manager_ms'])
        self.assertEqual(1, doc['deploy'][0]['conductors'])

    def test_default_path_is_under_the_state(self):
        self.useFixture(fixtures.EnvironmentVariable('BMI_STATE',
                                                     self.state_dir))
        self.assertEqual(os.path.join(self.state_dir, 'bench',
                                      'summary.json'),
                         benchlib.summary_path())

    def test_conductors(self):
        up = {'running': True}
        self.assertEqual(1, benchlib.conductors({'services': {
            'ironic': up, 'tgtd': up}}))
        self.assertEqual(2, benchlib.conductors({'services': {
            'ironic-api': up, 'conductor-1': up, 'conductor-2': up}}))

    def test_conductors_of_the_other_mode_do_not_count(self):
        # services.json keeps the entries of the mode that ran before.
        self.assertEqual(1, benchlib.conductors({'services': {
            'ironic': {'running': True}, 'conductor-1': {'running': False},
            'conductor-2': {}}}))

    def _env_json(self, name, url):
        d = os.path.join(self.state_dir, name)
        os.makedirs(d)
        with open(os.path.join(d, 'env.json'), 'w') as f:
            json.dump({'url': url}, f)
        return d

    def test_ironic_env_of_the_running_mode(self):
        aio = self._env_json('ironic', 'http://aio')
        multi = self._env_json('ironic-multi', 'http://multi')
        env = {'ironic_state': aio, 'services': {
            'ironic-api': {'state_dir': multi, 'running': True}}}
        self.assertEqual('http://multi', benchlib.ironic_env(env)['url'])
        env['services']['ironic-api']['running'] = False
        self.assertEqual('http://aio', benchlib.ironic_env(env)['url'])

    def test_ironic_env_says_how_to_start_it(self):
        env = {'ironic_state': os.path.join(self.state_dir, 'none'),
               'services': {}}
        self.assertRaisesRegex(RuntimeError, 'tools.lab start',
                               benchlib.ironic_env, env)


class _Node(object):
    def __init__(self, uuid, state, last_error=None):
        self.uuid = uuid
        self.provision_state = state
        self.last_error = last_error


class WaitStatesTest(base.TestCase):
    """benchlib.wait_states on a fake clock and a scripted node list."""

    def setUp(self):
        super().setUp()
        self.now = 100.0
        self.sleeps = []
        self.lists = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def ironic(self, *looks):
        looks = list(looks)
        test = self

        class NodeAPI(object):
            def list(self, fields=None, limit=None):
                test.lists.append((fields, limit))
                return looks.pop(0) if len(looks) > 1 else looks[0]

        class Client(object):
            node = NodeAPI()
        return Client()

    def wait(self, ironic, nodes, state, started, timeout=600):
        return benchlib.wait_states(ironic, nodes, state, started,
                                    timeout=timeout, clock=self.clock,
                                    sleep=self.sleep)

    def test_seconds_from_the_start_until_every_node_is_there(self):
        ironic = self.ironic(
            [_Node('a', 'deploying'), _Node('b', 'active'),
             _Node('other', 'deploying')],
            [_Node('a', 'active'), _Node('b', 'active')])
        took = self.wait(ironic, ['a', 'b'], 'active', started=99.0)
        self.assertEqual(2, len(self.lists))
        # One node list per look, all of them (limit=0).
        self.assertEqual(0, self.lists[0][1])
        self.assertAlmostEqual(1.0 + sum(self.sleeps), took)

    def test_pause_grows_with_the_elapsed_time_up_to_poll(self):
        ironic = self.ironic([_Node('a', 'deploying')])
        self.assertRaises(RuntimeError, self.wait, ironic, ['a'], 'active',
                          started=self.now, timeout=30)
        self.assertEqual(benchlib.POLL_MIN, self.sleeps[0])
        self.assertEqual(benchlib.POLL, max(self.sleeps))
        self.assertEqual(sorted(self.sleeps), self.sleeps)

    def test_failed_node_is_named(self):
        ironic = self.ironic([_Node('a', 'deploy failed', 'no image')])
        err = self.assertRaises(RuntimeError, self.wait, ironic, ['a'],
                                'active', started=self.now)
        self.assertIn('node a: deploy failed: no image', str(err))

    def test_timeout_says_how_many(self):
        ironic = self.ironic([_Node('a', 'wait call-back'),
                              _Node('b', 'deploying')])
        err = self.assertRaises(RuntimeError, self.wait, ironic, ['a', 'b'],
                                'active', started=self.now, timeout=5)
        self.assertIn('2 node(s) not active after 5s', str(err))
