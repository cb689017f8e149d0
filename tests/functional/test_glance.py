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

"""Glance images as node sources, against the lab's real Glance (issue 13).

Images are made as users make them: openstacksdk's upload to Glance's API
(the lab's users endpoint, where the caller's project and roles come from
headers: tools/lab/glance.py); the plugin reads Glance through its
service endpoint, and what the tests assert is read from Ceph.
"""

import os
import subprocess
import time

from oslo_utils import uuidutils

from bmi_driver import exception
from bmi_driver.storage.export import manager as export
from bmi_driver.storage import layout
from tests.functional import base
from tests.functional import glance_api
from tests.functional import iscsi

MiB = 1024 * 1024


class GlanceImagesTest(base.CephImagesTestCase):

    RAW_SIZE = 32 * MiB

    def setUp(self):
        super().setUp()
        self.project_a = self.unique('pa')
        self.project_b = self.unique('pb')

    def make_library(self):
        return glance_api.image_library(self)

    # -- helpers ---------------------------------------------------------

    def as_project(self, project):
        return glance_api.connect(self.env, project)

    def upload(self, path, disk_format, project, visibility='private'):
        conn, img = glance_api.upload(self.env, project, path, disk_format,
                                      self.unique('g'), visibility)
        self.addCleanup(self._delete_image, conn, img.id)
        return conn, img

    @staticmethod
    def _delete_image(conn, image_id):
        try:
            conn.image.delete_image(image_id, ignore_missing=True)
        except Exception:
            pass

    # -- tests -----------------------------------------------------------

    def test_raw_image_cloned_from_glances_snapshot_without_a_copy(self):
        raw = self.make_raw()
        _conn, img = self.upload(raw, 'raw', self.project_a)
        node = self.node()
        start = time.monotonic()
        disk = self.lib.clone_for_node(node, img.id, project=self.project_a)
        took = time.monotonic() - start
        glance_spec = '%s/%s@snap' % (self.env['glance_pool'], img.id)
        # From Ceph: the node's disk is a clone of Glance's own snapshot.
        self.assertEqual(glance_spec,
                         self.rbd_parent(disk.pool, disk.rbd_name))
        with open(raw, 'rb') as f:
            self.assertEqual(f.read(), self.read_rbd(disk.pool,
                                                     disk.rbd_name))
        # Milliseconds (Glance's GET and a clone), not a copy.
        self.assertLess(took, 1.0, took)

    def test_visibility_private_shared_public(self):
        raw = self.make_raw(4 * MiB)
        conn_a, private = self.upload(raw, 'raw', self.project_a)
        e = self.assertRaises(exception.ImageNotVisible,
                              self.lib.resolve_source, private.id,
                              self.project_b)
        self.assertNotIn(self.project_a, str(e))
        self.assertRaises(exception.ImageNotVisible,
                          self.lib.clone_for_node, self.node(), private.id,
                          project=self.project_b)
        self.lib.resolve_source(private.id, self.project_a)
        # Shared: a member only once it accepted.
        _c, shared = self.upload(raw, 'raw', self.project_a,
                                 visibility='shared')
        conn_a.image.add_member(shared.id, member=self.project_b)
        self.assertRaises(exception.ImageNotVisible,
                          self.lib.resolve_source, shared.id,
                          self.project_b)
        conn_b = self.as_project(self.project_b)
        conn_b.image.update_member(self.project_b, shared.id,
                                   status='accepted')
        node = self.node()
        disk = self.lib.clone_for_node(node, shared.id,
                                       project=self.project_b)
        self.assertEqual('%s/%s@snap' % (self.env['glance_pool'],
                                         shared.id), disk.parent)
        self.assertRaises(exception.ImageNotVisible,
                          self.lib.resolve_source, shared.id,
                          self.unique('pc'))
        # Public: everyone, a node of no project too.
        _c, public = self.upload(raw, 'raw', self.project_a,
                                 visibility='public')
        self.lib.resolve_source(public.id, self.project_b)
        self.lib.resolve_source(public.id, None)

    def test_qcow2_converted_once_then_the_cache_is_cloned(self):
        raw = self.make_raw(32 * MiB)
        qcow2 = os.path.join(self.tmp, 'disk.qcow2')
        subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2',
                        raw, qcow2], check=True)
        conn, img = self.upload(qcow2, 'qcow2', self.project_a)
        before = self.rbd_names()
        src = self.lib.resolve_source(img.id, self.project_a)
        self.assertEqual('glance-convert', src.kind)
        self.assertEqual(before, self.rbd_names())  # validate writes none
        first = self.lib.clone_for_node(self.node(), img.id,
                                        project=self.project_a)
        cache = layout.cache_rbd_name(img.id)
        cache_spec = '%s/%s@golden' % (self.env['image_pool'], cache)
        self.assertEqual(cache_spec,
                         self.rbd_parent(first.pool, first.rbd_name))
        with open(raw, 'rb') as f:
            raw_bytes = f.read()
        self.assertEqual(raw_bytes, self.read_rbd(first.pool,
                                                  first.rbd_name))
        # What the node reads: LUN 1 through the initiator (tgtd) is the
        # source's raw bytes, not qcow2 (the bug of issue 13).
        host, port = self.env['tgtd_portal'].rsplit(':', 1)
        self.config(portal_address=host, portal_port=int(port),
                    tgt_ceph_user=self.env['ceph_tgt_user'],
                    tgt_ceph_conf=self.env['ceph_conf'], group='iscsi')
        mgr = export.ExportManager(library=self.lib)
        exp = mgr.export_node(first.node_uuid)
        try:
            lun = iscsi.read_lun(
                exp.portal, exp.target_iqn, 1, chap_user=exp.chap_username,
                chap_secret=exp.chap_secret,
                initiator_iqn=exp.initiator_iqn or iscsi.DEFAULT_INITIATOR,
                dest=self.tmp)
        finally:
            mgr.unexport_node(first.node_uuid)
        with open(lun, 'rb') as f:
            self.assertEqual(raw_bytes, f.read())
        # The second deploy clones the cache: no conversion.
        start = time.monotonic()
        second = self.lib.clone_for_node(self.node(), img.id,
                                         project=self.project_a)
        self.assertLess(time.monotonic() - start, 1.0)
        self.assertEqual(cache_spec,
                         self.rbd_parent(second.pool, second.rbd_name))
        # Glance deletes the image: the copy goes once no node clones it.
        conn.image.delete_image(img.id)
        self.assertEqual([], self.lib.sweep_glance_cache())
        self.lib.remove_node_disk(first.node_uuid)
        self.lib.remove_node_disk(second.node_uuid)
        self.assertIn(img.id, self.lib.sweep_glance_cache())
        self.assertNotIn(cache, self.rbd_names())

    def test_other_formats_refused_naming_the_format(self):
        path = os.path.join(self.tmp, 'kernel')
        with open(path, 'wb') as f:
            f.write(os.urandom(MiB))
        _conn, img = self.upload(path, 'aki', self.project_a)
        before = self.rbd_names()
        e = self.assertRaises(exception.GlanceImageUnusable,
                              self.lib.clone_for_node, self.node(), img.id,
                              project=self.project_a)
        self.assertIn('disk format is aki', str(e))
        self.assertEqual(before, self.rbd_names())
        self.assertRaises(exception.ImageNotFound, self.lib.resolve_source,
                          uuidutils.generate_uuid(), self.project_a)
