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

"""Unit tests of the guest bench's medians (tools/bench_guest.py)."""

import json
import os
from unittest import mock

import fixtures

from tests import base
from tools import bench_guest


def pair(local, bmi):
    return {'local': {'to_login_s': local}, 'bmi': {'to_login_s': bmi}}


class MediansTest(base.TestCase):

    def test_medians_of_each_side_apart(self):
        figures = [pair(90.0, 120.0), pair(100.0, 95.0), pair(80.0, 99.0)]
        self.assertEqual(90.0, bench_guest.medians(figures, 'local',
                                                   'to_login_s'))
        self.assertEqual(99.0, bench_guest.medians(figures, 'bmi',
                                                   'to_login_s'))

    def test_median_pair_is_the_median_bmi_boot(self):
        figures = [pair(90.0, 120.0), pair(100.0, 95.0), pair(80.0, 99.0)]
        self.assertEqual(2, bench_guest.median_pair(figures))

    def test_median_pair_of_an_even_count_is_the_lower(self):
        figures = [pair(1.0, 4.0), pair(1.0, 3.0)]
        self.assertEqual(1, bench_guest.median_pair(figures))

    def test_one_boot(self):
        self.assertEqual(0, bench_guest.median_pair([pair(1.0, 2.0)]))


def boot(login, marker, active=None):
    figures = {'to_login_s': login, 'to_marker_s': marker}
    if active is not None:
        figures['to_active_s'] = active
    return figures


def timeline(name):
    return {'phases': {'SSH login': 1.0}, 'ssh_tries': [],
            'console': ['%s line' % name]}


class ReportTest(base.TestCase):

    def test_summary_holds_the_medians_and_every_pair(self):
        self.useFixture(fixtures.EnvironmentVariable('BMI_STATE',
                                                     self.state_dir))
        figures = [{'local': boot(90.0, 85.0), 'bmi': boot(120.0, 110.0, 9)},
                   {'local': boot(100.0, 95.0), 'bmi': boot(95.0, 90.0, 8)},
                   {'local': boot(80.0, 75.0), 'bmi': boot(99.0, 93.0, 10)}]
        timelines = [{'local': timeline('l%d' % i), 'bmi': timeline(
            'b%d' % i)} for i in (1, 2, 3)]
        out = self.useFixture(fixtures.StringStream('stdout')).stream
        with mock.patch('sys.stdout', out):
            bench_guest.report(figures, timelines, 1024)
        out.seek(0)
        text = out.read()
        self.assertIn('power-on to SSH login, median', text)
        self.assertIn('1.10x  (target <= 1.2x)', text)   # 99 / 90
        self.assertIn('Timeline of boot pair 3', text)
        with open(os.path.join(self.state_dir, 'bench',
                               'summary.json')) as f:
            guest = json.load(f)['guest']
        self.assertEqual(3, guest['boots'])
        self.assertEqual(90.0, guest['local_to_login_s'])
        self.assertEqual(99.0, guest['bmi_to_login_s'])
        self.assertEqual(1.1, guest['ratio_to_login'])
        self.assertEqual([1.33, 0.95, 1.24], guest['ratios_to_login'])
        self.assertEqual(85.0, guest['local_to_marker_s'])
        self.assertEqual(93.0, guest['bmi_to_marker_s'])
        self.assertEqual(9, guest['bmi_to_active_s'])
        with open(os.path.join(self.state_dir, 'bench',
                               'guest-console-bmi-2.txt')) as f:
            self.assertEqual('b2 line\n', f.read())
