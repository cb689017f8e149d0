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
