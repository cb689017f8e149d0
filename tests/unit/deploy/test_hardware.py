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

"""The bmi hardware type, loaded by Ironic from its entry points."""

from ironic.common import driver_factory
from ironic.conductor import task_manager
from ironic.drivers.modules import fake
from ironic.drivers.modules import ipxe
from ironic.drivers.modules.network import noop as noop_net

from bmi_driver.deploy import diskless as bmi_deploy
from bmi_driver.deploy import hardware
from bmi_driver.deploy import vendor
from bmi_driver.network import hil
from bmi_driver.storage import rbd_iscsi as bmi_storage
from tests.unit.deploy import base


class BMIHardwareTestCase(base.BMITestCase):

    def test_entry_point(self):
        self.assertIsInstance(driver_factory.get_hardware_type('bmi'),
                              hardware.BMIHardware)

    def test_interface_entry_points(self):
        for iface, cls in (('deploy', bmi_deploy.BMIDeploy),
                           ('storage', bmi_storage.BMIStorage),
                           ('vendor', vendor.BMIVendorPassthru)):
            self.assertIsInstance(driver_factory.get_interface(
                driver_factory.get_hardware_type('bmi'), iface, 'bmi'), cls)

    def test_defaults(self):
        hw = hardware.BMIHardware()
        self.assertEqual([ipxe.iPXEBoot], hw.supported_boot_interfaces)
        self.assertEqual([bmi_deploy.BMIDeploy],
                         hw.supported_deploy_interfaces)
        self.assertEqual(bmi_storage.BMIStorage,
                         hw.supported_storage_interfaces[0])
        self.assertEqual(hil.HILNetwork, hw.supported_network_interfaces[0])
        self.assertIn(fake.FakePower, hw.supported_power_interfaces)

    def test_node_driver(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertIsInstance(task.driver.boot, ipxe.iPXEBoot)
            self.assertIsInstance(task.driver.deploy, bmi_deploy.BMIDeploy)
            self.assertIsInstance(task.driver.storage,
                                  bmi_storage.BMIStorage)
            self.assertIsInstance(task.driver.network,
                                  noop_net.NoopNetwork)
            self.assertIsInstance(task.driver.vendor,
                                  vendor.BMIVendorPassthru)
