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

"""The golden-image library against the live Ceph cluster."""

import datetime
import hashlib
import os
import subprocess

from oslo_utils import uuidutils
import rbd

from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.storage.ceph import library as images
from bmi_driver.storage.ceph import rbd_utils
from bmi_driver.storage import layout
from tests.functional import base

MiB = 1024 * 1024


class ImageLibraryTest(base.CephImagesTestCase):

    def make_library(self):
        return images.ImageLibrary(clients=rbd_utils.ClientPool())

    # -- helpers ---------------------------------------------------------

    def imported(self, path, **kwargs):
        img = self.lib.import_file(path, self.unique('img'), **kwargs)
        self.addCleanup(self.delete_quietly, img.uuid)
        return img

    def cloned(self, source, **kwargs):
        node = uuidutils.generate_uuid()
        disk = self.lib.clone_for_node(node, source, **kwargs)
        self.addCleanup(self.lib.remove_node_disk, disk.node_uuid)
        return disk

    # -- import and export -----------------------------------------------

    def test_import_raw_and_qcow2_export_identical_bytes(self):
        raw = self.make_raw()
        qcow2 = os.path.join(self.tmp, 'disk.qcow2')
        subprocess.check_call(['qemu-img', 'convert', '-f', 'raw', '-O',
                               'qcow2', raw, qcow2])
        with open(raw, 'rb') as f:
            expected = f.read()
        digest = 'sha256:' + hashlib.sha256(expected).hexdigest()
        for path in (raw, qcow2):
            img = self.imported(path)
            self.assertEqual(len(expected), img.size)
            self.assertEqual(digest, img.checksum)
            out = os.path.join(self.tmp, img.name + '.out')
            self.lib.export(img.uuid, out)
            with open(out, 'rb') as f:
                self.assertEqual(expected, f.read())

    def test_record_lives_in_rbd_metadata(self):
        img = self.imported(self.make_raw(), project='tenant-a',
                            visibility='public')
        ioctx = self.admin.open_ioctx(self.env['image_pool'])
        self.addCleanup(ioctx.close)
        with rbd.Image(ioctx, img.rbd_name, read_only=True) as image:
            meta = dict(image.metadata_list())
            snaps = {s['name'] for s in image.list_snaps()}
            self.assertTrue(image.is_protected_snap('golden'))
        self.assertEqual(img.name, meta['bmi.name'])
        self.assertEqual('tenant-a', meta['bmi.project'])
        self.assertEqual('public', meta['bmi.visibility'])
        self.assertEqual(img.checksum, meta['bmi.checksum'])
        self.assertIn('bmi.created_at', meta)
        self.assertEqual({'golden'}, snaps)
        # and a fresh library (another process) sees the same record
        again = images.ImageLibrary(clients=rbd_utils.ClientPool())
        self.assertEqual(img, again.get(img.name))

    # -- clones ----------------------------------------------------------

    def test_clone_reads_identical_and_writes_stay_in_the_clone(self):
        img = self.imported(self.make_raw())
        golden = self.read_rbd(img.pool, img.rbd_name, 'golden')
        disk = self.cloned(img.uuid)
        self.assertEqual(img.spec, disk.parent)
        self.assertEqual(golden, self.read_rbd(disk.pool, disk.rbd_name))
        self.write_rbd(disk.pool, disk.rbd_name, b'written by node', 4096)
        self.assertEqual(golden, self.read_rbd(img.pool, img.rbd_name,
                                               'golden'))
        self.assertEqual(golden, self.read_rbd(img.pool, img.rbd_name))
        self.assertEqual(1, self.lib.get(img.uuid).clones)

    def test_clone_is_idempotent_and_grows(self):
        img = self.imported(self.make_raw())
        disk = self.cloned(img.uuid, size=64 * MiB)
        again = self.lib.clone_for_node(disk.node_uuid, img.uuid)
        self.assertEqual(disk.rbd_name, again.rbd_name)
        self.assertEqual(64 * MiB, again.size)
        self.lib.remove_node_disk(disk.node_uuid)
        self.lib.remove_node_disk(disk.node_uuid)  # missing is fine
        self.assertRaises(exception.CloneNotFound, self.lib.get_node_disk,
                          disk.node_uuid)

    def test_snapshot_of_written_clone_is_independent(self):
        img = self.imported(self.make_raw())
        disk = self.cloned(img.uuid)
        self.write_rbd(disk.pool, disk.rbd_name, b'node was here', 8192)
        snap = self.lib.snapshot_node(disk.node_uuid, self.unique('snap'))
        self.addCleanup(self.delete_quietly, snap.uuid)
        self.assertIsNone(snap.parent)  # flattened
        expected = self.read_rbd(disk.pool, disk.rbd_name)
        # the temporary snapshot is gone from the node's disk
        ioctx = self.admin.open_ioctx(disk.pool)
        self.addCleanup(ioctx.close)
        with rbd.Image(ioctx, disk.rbd_name, read_only=True) as image:
            self.assertEqual([], list(image.list_snaps()))
        self.lib.remove_node_disk(disk.node_uuid)
        self.lib.delete(img.uuid)  # the old golden image may go now
        data = self.read_rbd(snap.pool, snap.rbd_name, 'golden')
        self.assertEqual(expected, data)
        self.assertEqual(b'node was here', data[8192:8192 + 13])

    def test_killed_node_snapshot_is_swept_then_its_disk(self):
        # What snapshot_node leaves when its process dies in the flatten
        # (made by hand: librbd's calls cannot be interrupted from here):
        # a protected temporary snapshot of the node's disk and, in the
        # image pool, its clone holding the new name, never sealed.
        img = self.imported(self.make_raw())
        disk = self.cloned(img.uuid)
        name = self.unique('half')
        nodes = self._ioctx(disk.pool)
        goldens = self._ioctx(self.env['image_pool'])
        temp = layout.TEMP_SNAP_PREFIX + uuidutils.generate_uuid()
        with rbd.Image(nodes, disk.rbd_name) as image:
            image.create_snap(temp)
            image.protect_snap(temp)
        half = uuidutils.generate_uuid()
        rbd.RBD().clone(nodes, disk.rbd_name, temp, goldens,
                        layout.golden_rbd_name(half),
                        features=rbd_utils.features())
        self.addCleanup(rbd_utils.destroy, goldens,
                        layout.golden_rbd_name(half))
        with rbd.Image(goldens, layout.golden_rbd_name(half)) as image:
            image.metadata_set(layout.META_NAME, name)
        self.assertRaises(exception.ImageExists, self.import_file_named,
                          name)
        # Undeploy: librbd refuses the disk (a clone uses its snapshot),
        # so it waits in the RBD trash, kept by the sweep.
        self.config(trash_delay=0, group='ceph')
        self.assertEqual([disk.rbd_name], self.lib.remove_node_disk(
            disk.node_uuid, stale_watch=True))
        self.assertEqual(([], [disk.rbd_name]),
                         self.lib.sweep_removed_disks())
        # The unsealed image goes after the grace only, then the disk.
        self.assertEqual([], self.lib.sweep_unsealed())
        later = rbd_utils.utcnow() + datetime.timedelta(
            seconds=CONF.ceph.unsealed_grace + 1)
        self.assertEqual([half], self.lib.sweep_unsealed(now=later))
        self.assertEqual(([disk.rbd_name], []),
                         self.lib.sweep_removed_disks())
        self.assertNotIn(disk.rbd_name, [
            e['name'] for e in rbd.RBD().trash_list(nodes)])
        # The name is free again; the sealed image was never touched.
        self.import_file_named(name)
        self.assertEqual([], self.lib.sweep_unsealed(now=later))
        self.assertEqual(img.uuid, self.lib.get(img.uuid).uuid)

    def import_file_named(self, name):
        made = self.lib.import_file(self.make_raw(), name)
        self.addCleanup(self.delete_quietly, made.uuid)
        return made

    def test_delete_refused_while_clones_exist(self):
        img = self.imported(self.make_raw())
        disk = self.cloned(img.uuid)
        before = self.rbd_names(img.pool)
        err = self.assertRaises(exception.ImageInUse, self.lib.delete,
                                img.uuid)
        self.assertIn(disk.rbd_name, str(err))
        self.assertEqual(before, self.rbd_names(img.pool))
        self.assertEqual(img.uuid, self.lib.get(img.uuid).uuid)
        self.lib.remove_node_disk(disk.node_uuid)
        self.lib.delete(img.uuid)
        self.assertRaises(exception.ImageNotFound, self.lib.get, img.uuid)
        self.assertNotIn(img.rbd_name, self.rbd_names(img.pool))

    def test_project_filter_and_visibility(self):
        path = self.make_raw(size=MiB)
        a = self.imported(path, project=self.unique('pa'))
        b = self.imported(path, project=self.unique('pb'),
                          visibility='public')
        self.assertEqual([a.uuid],
                         [i.uuid for i in self.lib.list(project=a.project)])
        self.assertEqual(
            {a.uuid, b.uuid},
            {i.uuid for i in self.lib.list(project=a.project,
                                           include_public=True)})
        self.assertRaises(exception.ImageNotVisible, self.lib.clone_for_node,
                          uuidutils.generate_uuid(), a.uuid,
                          project=b.project)
        self.assertEqual(b.uuid, self.lib.resolve_source(
            b.uuid, project=a.project).uuid)

    def test_copy_and_rename(self):
        img = self.imported(self.make_raw())
        copy = self.lib.copy(img.uuid, self.unique('copy'))
        self.addCleanup(self.delete_quietly, copy.uuid)
        self.assertIsNone(copy.parent)
        self.assertEqual(img.checksum, copy.checksum)
        self.assertEqual(self.read_rbd(img.pool, img.rbd_name, 'golden'),
                         self.read_rbd(copy.pool, copy.rbd_name, 'golden'))
        self.lib.delete(img.uuid)  # the copy does not depend on it
        new_name = self.unique('renamed')
        renamed = self.lib.rename(copy.name, new_name)
        self.assertEqual((copy.uuid, new_name), (renamed.uuid, renamed.name))
        self.assertEqual(copy.uuid, self.lib.get(new_name).uuid)
        self.assertRaises(exception.ImageNotFound, self.lib.get, copy.name)

    # -- references ------------------------------------------------------

    def test_glance_style_reference_import(self):
        glance_pool = self.env['glance_pool']
        glance_id = uuidutils.generate_uuid()
        content = os.urandom(MiB) + bytes(3 * MiB)
        ioctx = self.admin.open_ioctx(glance_pool)
        self.addCleanup(ioctx.close)
        rbd.RBD().create(ioctx, glance_id, len(content),
                         features=rbd.RBD_FEATURE_LAYERING)
        with rbd.Image(ioctx, glance_id) as image:
            image.write(content, 0)
            image.create_snap('snap')
            image.protect_snap('snap')

        def remove_glance_image():
            with rbd.Image(ioctx, glance_id) as image:
                image.unprotect_snap('snap')
                image.remove_snap('snap')
            rbd.RBD().remove(ioctx, glance_id)
        self.addCleanup(remove_glance_image)

        # by reference: a golden image that is a clone, no data copied
        img = self.lib.import_rbd('%s/%s@snap' % (glance_pool, glance_id),
                                  self.unique('glance'))
        self.addCleanup(self.delete_quietly, img.uuid)
        self.assertEqual('%s/%s@snap' % (glance_pool, glance_id), img.parent)
        disk = self.cloned(img.uuid)
        self.assertEqual(content, self.read_rbd(disk.pool, disk.rbd_name))
        # (A Glance UUID as a node's image source is asked of the real
        # Glance: tests/functional/test_glance.py. Bytes written into its
        # pool by hand are no image: issue 13.)

    # -- config drives ---------------------------------------------------

    def test_configdrive_written_replaced_and_removed(self):
        img = self.imported(self.make_raw(size=MiB))
        disk = self.cloned(img.uuid)
        cd = self.lib.write_node_configdrive(disk.node_uuid, b'iso' * 1000)
        self.assertEqual(b'iso' * 1000,
                         self.read_rbd(cd.pool, cd.rbd_name)[:3000])
        self.assertEqual(cd.rbd_name, self.lib.get_node_disk(
            disk.node_uuid).configdrive.rbd_name)
        self.lib.write_node_configdrive(disk.node_uuid, b'new')
        self.assertEqual(b'new', self.read_rbd(cd.pool, cd.rbd_name)[:3])
        self.lib.remove_node_disk(disk.node_uuid)
        self.assertNotIn(cd.rbd_name, self.rbd_names(cd.pool))

    # -- bad input -------------------------------------------------------

    def test_bad_input_rejected_with_nothing_changed(self):
        path = self.make_raw(size=MiB)
        text = os.path.join(self.tmp, 'notes.txt')
        with open(text, 'w') as f:
            f.write('this is not a disk image\n')
        existing = self.imported(path)
        before = self.rbd_names(self.env['image_pool'])
        for name in ('', 'a/b', '-leading', 'x' * 64, 'with space',
                     '8c1e0d5e-5a56-4a6c-9d0e-3a8a2ad0a3f1'):
            self.assertRaises(exception.InvalidName, self.lib.import_file,
                              path, name)
        self.assertRaises(exception.InvalidName, self.lib.import_file, path,
                          self.unique(), project='bad/project')
        self.assertRaises(exception.InvalidName, self.lib.import_file, path,
                          self.unique(), visibility='shared')
        self.assertRaises(exception.LocalFileError, self.lib.import_file,
                          os.path.join(self.tmp, 'missing.raw'),
                          self.unique())
        self.assertRaises(exception.ImageFormatError, self.lib.import_file,
                          text, self.unique())
        self.assertRaises(exception.ImageExists, self.lib.import_file, path,
                          existing.name)
        self.assertRaises(exception.InvalidName, self.lib.import_rbd,
                          'no-pool-part', self.unique())
        self.assertRaises(exception.ImageNotFound, self.lib.import_rbd,
                          '%s/missing@snap' % self.env['glance_pool'],
                          self.unique())
        self.assertRaises(exception.InvalidName, self.lib.clone_for_node,
                          'not-a-uuid', existing.uuid)
        self.assertEqual(before, self.rbd_names(self.env['image_pool']))

    def test_unreachable_cluster_is_a_clear_error(self):
        conf = os.path.join(self.tmp, 'nowhere.conf')
        with open(conf, 'w') as f:
            f.write('[global]\nmon host = 127.0.0.1:1\n')
        self.config(conf_file=conf, connect_timeout=2, connect_retries=0,
                    group='ceph')
        lib = images.ImageLibrary(clients=rbd_utils.ClientPool())
        err = self.assertRaises(exception.CephConnectionError, lib.list)
        self.assertIn('nowhere.conf', str(err))
