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

"""The real guest: Debian 12 booted through Ironic from its clone.

tools/demo/build-debian.sh builds the image from Debian's packages
(cached); ``tools.lab.guest.GuestScenario`` deploys it with a config drive
Ironic builds from a JSON object, waits for cloud-init's marker and logs
in over SSH from the lab's network namespace (see its docstring).
"""

from tests.functional import test_e2e_boot
from tools.lab import guest

GUEST_BOOT_TIMEOUT = 900


class DebianGuestTest(test_e2e_boot.IronicLabTestCase):
    """cloud-init applies Ironic's config drive; SSH login works."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.image_path = test_e2e_boot.built_image(
            'build-debian.sh', 'bmi-debian.raw')

    def test_debian_guest_cloud_init_and_ssh(self):
        scenario = self.scenario(guest.GuestScenario, 'deb', 0xc4,
                                 project=test_e2e_boot.PROJECT)
        scenario.boot_timeout = GUEST_BOOT_TIMEOUT
        scenario.run()
        node = scenario.nodes[0]
        self.assertEqual(scenario.instance_uuid, scenario.guest['uuid'])
        self.assertEqual(scenario.hostname, scenario.login[0])
        self.assertTrue(scenario.login[1].startswith('/dev/sd'))
        self.assertTrue(scenario.login[2].endswith(':' + node.uuid))
        self.progress.extend(scenario.summary())
