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

"""The ``bmi`` hardware type: diskless nodes booting Ceph clones over iSCSI.

Enable it in ironic.conf (see ``etc/ironic.conf.snippet``)::

    [DEFAULT]
    enabled_hardware_types = bmi
    enabled_deploy_interfaces = bmi
    enabled_storage_interfaces = bmi
    enabled_vendor_interfaces = bmi
    enabled_boot_interfaces = ipxe
    default_storage_interface = bmi   # or --storage-interface bmi per node

and give every node the ``iscsi_boot:True`` capability.
"""

from ironic.drivers import generic
from ironic.drivers.modules import fake
from ironic.drivers.modules import ipmitool
from ironic.drivers.modules import ipxe
from ironic.drivers.modules.network import flat as flat_net
from ironic.drivers.modules.network import noop as noop_net
from ironic.drivers.modules import noop
from ironic.drivers.modules.redfish import management as redfish_mgmt
from ironic.drivers.modules.redfish import power as redfish_power
from ironic.drivers.modules.storage import noop as noop_storage

from bmi_driver.deploy import diskless
from bmi_driver.deploy import vendor as bmi_vendor
from bmi_driver.network import hil
from bmi_driver.storage import rbd_iscsi


class BMIHardware(generic.GenericHardware):
    """Bare Metal Imaging: the root disk is an RBD clone, iPXE sanboots it.

    The first interface of each list is the default.
    """

    @property
    def supported_boot_interfaces(self):
        """Ironic's iPXE: it renders sanboot from the boot VolumeTarget."""
        return [ipxe.iPXEBoot]

    @property
    def supported_deploy_interfaces(self):
        return [diskless.BMIDeploy]

    @property
    def supported_storage_interfaces(self):
        # noop only because it is Ironic's default_storage_interface: a node
        # keeping it fails the bmi deploy interface's validation, clearly.
        # Set default_storage_interface = bmi when bmi is the only hardware
        # type, or create nodes with --storage-interface bmi.
        return [rbd_iscsi.BMIStorage, noop_storage.NoopStorage]

    @property
    def supported_network_interfaces(self):
        return [hil.HILNetwork, flat_net.FlatNetwork, noop_net.NoopNetwork]

    @property
    def supported_management_interfaces(self):
        return [ipmitool.IPMIManagement, redfish_mgmt.RedfishManagement,
                fake.FakeManagement]

    @property
    def supported_power_interfaces(self):
        return [ipmitool.IPMIPower, redfish_power.RedfishPower,
                fake.FakePower]

    @property
    def supported_vendor_interfaces(self):
        return [bmi_vendor.BMIVendorPassthru, noop.NoVendor]
