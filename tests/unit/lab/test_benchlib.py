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
