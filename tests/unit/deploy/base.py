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

"""Unit test base for the Ironic interfaces: Ironic's own DB test case.

A node of the ``bmi`` hardware type in Ironic's in-memory database; the
image library and the export manager (Ceph and tgtd) are replaced by
autospecced mocks, so the interfaces run unchanged against Ironic and fake
only the outside world.
"""

import json
import os
from unittest import mock

import fixtures

from ironic.common import states
from ironic.drivers import base as drivers_base
from ironic.tests.unit.db import base as db_base
from ironic.tests.unit.objects import utils as obj_utils

# Imported here, not when a test loads the driver: importing Ironic's
# driver modules runs subprocesses (zeroconf's ctypes lookups), which
# Ironic's TestCase forbids once a test runs.
from bmi_driver.deploy import hardware  # noqa: F401
from bmi_driver import exception
from bmi_driver.network import boot_networks
from bmi_driver.storage.ceph import library as images
from bmi_driver.storage.export import manager as export
from bmi_driver.storage import layout
from tests import base as test_base

IMAGE_UUID = '5f0e4e3a-6a2e-4f7e-9a51-3c4f6f2b9d10'
LESSEE = 'tenant-a'
IQN = 'iqn.2026-11.org.massopen.bmi:%s'
CHAP_USER = 'bmi-user'
CHAP_SECRET = 'not-a-real-secret-123'

_INTERFACES = {
    'boot': ['ipxe'],
    'deploy': ['bmi'],
    'storage': ['bmi'],
    'network': ['noop', 'flat'],
    'power': ['fake'],
    'management': ['fake'],
    'vendor': ['bmi', 'no-vendor'],
}


class BMITestCase(db_base.DbTestCase):

    def setUp(self):
        super().setUp()
        test_base.enable_loggers()
        self.config_temp_dir('http_root', group='deploy')
        self.config_temp_dir('tftp_root', group='pxe')
        self.config_temp_dir('images_path', group='pxe')
        self.config(http_url='http://192.0.2.1:8080', group='deploy')
        self.config(enabled_hardware_types=['bmi'])
        for iface in drivers_base.ALL_INTERFACES:
            values = _INTERFACES.get(iface)
            if values:
                self.config(**{'enabled_%s_interfaces' % iface: values,
                               'default_%s_interface' % iface: values[0]})
        self.node = obj_utils.create_test_node(
            self.context, driver='bmi', boot_interface='ipxe',
            deploy_interface='bmi', storage_interface='bmi',
            network_interface='noop', power_interface='fake',
            management_interface='fake', vendor_interface='bmi',
            lessee=LESSEE,
            properties={'capabilities': 'iscsi_boot:True'},
            instance_info={'image_source': IMAGE_UUID, 'root_gb': 10},
            driver_internal_info={})
        self.port = obj_utils.create_test_port(self.context,
                                               node_id=self.node.id)

        self.lib = self._patch(images, 'ImageLibrary').return_value
        self.mgr = self._patch(export, 'ExportManager').return_value
        self.mgr.iqn_prefix.return_value = IQN.split(':')[0]
        # The process's one manager is made from the mocked class.
        export.reset_manager()
        self.addCleanup(export.reset_manager)
        self.disk = layout.NodeDisk(
            node_uuid=self.node.uuid, pool='bmi-images',
            rbd_name='node-%s' % self.node.uuid, size=10 * 1024 ** 3,
            parent='bmi-images/img-%s@golden' % IMAGE_UUID)
        # Ceph as the fakes see it: a node being deployed has no clone
        # until it is cloned, an ACTIVE one (set_state) has one.
        self.disk_exists = False

        def clone(*args, **kwargs):
            self.disk_exists = True
            return self.disk

        def get_disk(node_uuid):
            if not self.disk_exists:
                raise exception.CloneNotFound(node=node_uuid,
                                              clone=self.disk.rbd_name)
            return self.disk

        def remove_disk(node_uuid, stale_watch=False, keep_ephemeral=False):
            self.disk_exists = False

        def set_metadata(node_uuid, metadata):
            self.disk.metadata.update(metadata)

        self.lib.clone_for_node.side_effect = clone
        self.lib.get_node_disk.side_effect = get_disk
        self.lib.remove_node_disk.side_effect = remove_disk
        self.lib.set_node_metadata.side_effect = set_metadata
        self.lib.resolve_source.return_value = layout.ImageSource(
            uuid=IMAGE_UUID, kind='golden', pool='bmi-images',
            rbd_name='img-%s' % IMAGE_UUID, snapshot='golden',
            size=1024 ** 3, project=LESSEE, visibility='private')
        self.export = export.NodeExport(
            node_uuid=self.node.uuid, target_iqn=IQN % self.node.uuid,
            portal='192.0.2.10:3260', luns={1: self.disk.spec},
            chap_username=CHAP_USER, chap_secret=CHAP_SECRET)
        self.mgr.export_node.return_value = self.export

    def boot_networks(self, registry):
        """Per-project mode with ``registry`` as [bmi] boot_networks_file.

        :returns: the path of the file.
        """
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'boot-networks.json')
        with open(path, 'w') as f:
            json.dump(registry, f)
        self.config(boot_networks_file=path, group='bmi')
        boot_networks.reset_cache()
        self.addCleanup(boot_networks.reset_cache)
        return path

    def _patch(self, obj, attr):
        patcher = mock.patch.object(obj, attr, autospec=True)
        self.addCleanup(patcher.stop)
        return patcher.start()

    def set_state(self, state):
        self.node.provision_state = state
        self.node.save()
        if state == states.ACTIVE:
            self.disk_exists = True
