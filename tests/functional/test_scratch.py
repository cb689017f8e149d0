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

"""Ephemeral and swap LUNs, and boot-from-volume refusal (issue 14).

Through the lab's Ironic all-in-one with the live Ceph and tgtd, fake
power: a real initiator (qemu-img/qemu-io over iSCSI with the node's CHAP
credentials) reads the node's LUNs 3 and 4 and blkid says what is on
them.  Small sizes (ephemeral_gb 1, swap_mb 64) keep it fast.
"""

import subprocess
import time

from ironicclient.common.apiclient import exceptions as ir_exc

from bmi_driver.storage.ceph.rbd_utils import rbd
from bmi_driver.storage import layout
from tests.functional import iscsi
from tests.functional import test_ironic

MiB = 1024 ** 2
GiB = 1024 ** 3
MARK_OFFSET = 512 * MiB
SWAP_MARK_OFFSET = 32 * MiB
MARK = b'\x5a' * 4096


def blkid(path):
    """blkid's low-level probe of a raw copy: {TYPE, LABEL, ...}."""
    out = subprocess.run(['blkid', '-o', 'export', '-p', path],
                         capture_output=True, text=True, timeout=60)
    return dict(line.split('=', 1) for line in out.stdout.splitlines()
                if '=' in line)


class ScratchDisksTestCase(test_ironic.IronicHelpers):

    def setUp(self):
        super().setUp()
        self.use_ironic(self.env.get('ironic_state'))

    def node_images(self, node_uuid):
        """The node's RBD images in the clone pool (and its trash)."""
        with self.lib._clients.get() as client:
            ioctx = client.ioctx(self.lib.clone_pool)
            names = set(rbd.RBD().list(ioctx))
            names |= {e['name'] for e in rbd.RBD().trash_list(ioctx)}
        return sorted(n for n in names if node_uuid in n)

    def read(self, node_uuid, lun):
        return self.read_lun(node_uuid, lun=lun)

    def marker_at(self, path, offset=MARK_OFFSET):
        with open(path, 'rb') as f:
            f.seek(offset)
            return f.read(len(MARK)) == MARK

    def write_mark(self, node_uuid, lun, offset=MARK_OFFSET):
        exp = self.node_export(node_uuid)
        test_ironic.write_lun(exp.portal, exp.target_iqn, lun,
                              exp.chap_username, exp.chap_secret,
                              offset, MARK)

    def test_deploy_rebuild_preserving_and_undeploy(self):
        image, digest = self.golden()
        node = self.create_node()
        start = time.monotonic()
        # Strings, as Nova 34.0.0's ironic driver writes them.
        self.deploy(node.uuid, image.uuid, ephemeral_gb='1', swap_mb='64')
        deploy_s = time.monotonic() - start
        props = self.boot_target(node.uuid).properties
        self.assertEqual((3, 4), (props['ephemeral_lun'],
                                  props['swap_lun']))
        served = self.exports.backend.get_target(
            self.exports.target_iqn(node.uuid))
        self.assertEqual([1, 3, 4], sorted(served.luns))
        self.assertEqual(
            ['node-%s' % node.uuid, 'node-%s-ephemeral' % node.uuid,
             'node-%s-swap' % node.uuid], self.node_images(node.uuid))

        exp = self.node_export(node.uuid)
        self.assertEqual(GiB, iscsi.lun_size(
            exp.portal, exp.target_iqn, 3, exp.chap_username,
            exp.chap_secret))
        self.assertEqual(64 * MiB, iscsi.lun_size(
            exp.portal, exp.target_iqn, 4, exp.chap_username,
            exp.chap_secret))
        eph = blkid(self.read(node.uuid, 3))
        self.assertEqual(('ext4', 'ephemeral0'),
                         (eph.get('TYPE'), eph.get('LABEL')), eph)
        swap = blkid(self.read(node.uuid, 4))
        self.assertEqual(('swap', 'swap1'),
                         (swap.get('TYPE'), swap.get('LABEL')), swap)

        # Rebuild keeping the ephemeral disk (Nova: rebuild
        # --preserve-ephemeral writes instance_info/preserve_ephemeral).
        self.write_mark(node.uuid, 3)
        self.write_mark(node.uuid, 4, SWAP_MARK_OFFSET)
        self.assertTrue(self.marker_at(self.read(node.uuid, 4),
                                       SWAP_MARK_OFFSET))
        self.ironic.node.update(node.uuid, [
            {'op': 'add', 'path': '/instance_info/preserve_ephemeral',
             'value': 'True'}])
        self.ironic.node.set_provision_state(node.uuid, 'rebuild')
        self.wait(node.uuid, 'active')
        self.assertTrue(self.marker_at(self.read(node.uuid, 3)))
        path = self.read(node.uuid, 4)
        self.assertFalse(self.marker_at(path, SWAP_MARK_OFFSET))
        self.assertEqual('swap', blkid(path).get('TYPE'))
        self.assertEqual(digest, test_ironic._sha256_prefix(
            self.read(node.uuid, 1), test_ironic.IMAGE_SIZE))

        # Without preserve_ephemeral: a blank ephemeral disk again.
        self.ironic.node.update(node.uuid, [
            {'op': 'add', 'path': '/instance_info/preserve_ephemeral',
             'value': 'False'}])
        self.ironic.node.set_provision_state(node.uuid, 'rebuild')
        self.wait(node.uuid, 'active')
        path = self.read(node.uuid, 3)
        self.assertFalse(self.marker_at(path))
        self.assertEqual('ext4', blkid(path).get('TYPE'))

        self.ironic.node.set_provision_state(node.uuid, 'deleted')
        self.wait(node.uuid, 'available')
        self.assert_released(node.uuid)
        self.assertEqual([], self.node_images(node.uuid))
        print('deploy with ephemeral 1 GiB + swap 64 MiB: %.2f s'
              % deploy_s)

    def test_preserving_rebuild_for_another_project_gets_a_blank_disk(self):
        # Ironic 39.0.0's default policy lets a member of the owner
        # project lease an ACTIVE node on (baremetal:node:update:lessee)
        # and rebuild it with preserve_ephemeral: the ephemeral disk holds
        # the data of the project it was deployed for, and the new one
        # must get a blank disk, not that data.
        path = self.tmp + '/public.raw'
        with open(path, 'wb') as f:
            f.write(b'\xa5' * test_ironic.IMAGE_SIZE)
        image = self.lib.import_file(path, self.unique('public'),
                                     visibility='public')
        self.addCleanup(self._delete_image, image.uuid)
        node = self.create_node(lessee='tenant-a')
        self.deploy(node.uuid, image.uuid, ephemeral_gb='1')
        self.write_mark(node.uuid, 3)
        self.assertTrue(self.marker_at(self.read(node.uuid, 3)))
        self.ironic.node.update(node.uuid, [
            {'op': 'replace', 'path': '/lessee', 'value': 'tenant-b'},
            {'op': 'add', 'path': '/instance_info/preserve_ephemeral',
             'value': 'True'}])
        self.ironic.node.set_provision_state(node.uuid, 'rebuild')
        self.wait(node.uuid, 'active')
        path = self.read(node.uuid, 3)
        self.assertFalse(self.marker_at(path))
        self.assertEqual(('ext4', 'ephemeral0'),
                         (blkid(path).get('TYPE'), blkid(path).get('LABEL')))
        self.ironic.node.set_provision_state(node.uuid, 'deleted')
        self.wait(node.uuid, 'available')
        self.assert_released(node.uuid)
        self.assertEqual([], self.node_images(node.uuid))

    def test_unknown_ephemeral_format_is_refused(self):
        image, _digest = self.golden()
        node = self.create_node()
        # Refused by Ironic's API before DEPLOYING: nothing is made.
        self.ironic.node.update(node.uuid, [
            {'op': 'add', 'path': '/instance_info/image_source',
             'value': image.uuid},
            {'op': 'add', 'path': '/instance_info/ephemeral_gb',
             'value': '1'},
            {'op': 'add', 'path': '/instance_info/ephemeral_format',
             'value': 'ntfs'}])
        e = self.assertRaises(ir_exc.BadRequest,
                              self.ironic.node.set_provision_state,
                              node.uuid, 'active')
        self.assertIn("ephemeral_format 'ntfs'", str(e))
        self.assertEqual([], self.node_images(node.uuid))

    def test_boot_from_a_cinder_volume_is_refused(self):
        node = self.create_node()
        # What Nova 34.0.0 writes for a boot from volume: a VolumeTarget
        # of the Cinder volume, boot_index 0, and no image_source.
        target = self.ironic.volume_target.create(
            node_uuid=node.uuid, volume_type='iscsi', boot_index=0,
            volume_id='0e2a4b7c-cinder-volume',
            properties={'target_iqn': 'iqn.2010-10.org.openstack:v',
                        'target_portal': '192.0.2.5:3260',
                        'target_lun': 0})
        e = self.assertRaises(ir_exc.BadRequest,
                              self.ironic.node.set_provision_state,
                              node.uuid, 'active')
        self.assertIn('bmi did not create', str(e))
        self.assertIn('0e2a4b7c-cinder-volume', str(e))
        self.assertNotIn('no instance_info/image_source', str(e))
        node = self.ironic.node.get(node.uuid)
        self.assertEqual('available', node.provision_state)
        # Left alone.
        [left] = self.ironic.volume_target.list(node=node.uuid)
        self.assertEqual(target.uuid, left.uuid)
        self.assertEqual([], self.node_images(node.uuid))


class ScratchDisksOffTestCase(test_ironic.IronicHelpers):
    """[bmi] scratch_disks = false: a flavor with either is refused."""

    def test_refused_at_validate(self):
        self.start_ironic('[bmi]\nscratch_disks = false\n')
        image, _digest = self.golden()
        node = self.create_node()
        for field, value in (('swap_mb', '64'), ('ephemeral_gb', '1')):
            self.ironic.node.update(node.uuid, [
                {'op': 'add', 'path': '/instance_info/image_source',
                 'value': image.uuid},
                {'op': 'add', 'path': '/instance_info/%s' % field,
                 'value': value}])
            e = self.assertRaises(ir_exc.BadRequest,
                                  self.ironic.node.set_provision_state,
                                  node.uuid, 'active')
            self.assertIn('[bmi] scratch_disks is off', str(e))
            self.ironic.node.update(node.uuid, [
                {'op': 'remove', 'path': '/instance_info/%s' % field}])
        self.assertEqual('available',
                         self.ironic.node.get(node.uuid).provision_state)
        # Nova's '0' for a flavor without swap is fine.
        self.deploy(node.uuid, image.uuid, swap_mb='0')
        self.assertNotIn(layout.EPHEMERAL_LUN, self.exports.backend.get_target(
            self.exports.target_iqn(node.uuid)).luns)
