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

"""Golden images published to the lab's real Glance (issue 13, item 3).

``[glance] publish_images``: a node snapshot appears in Glance as its
owner project sees it (invisible to another project while private), its
Glance id deploys as a clone of the golden snapshot, and deleting on
either side keeps bmi and Glance consistent.  Users act through the
lab's users endpoint (openstacksdk); what is asserted is read from Ceph
and from Glance's API.
"""

import time

from openstack import exceptions as sdk_exc
import rbd

from bmi_driver import exception
from tests.functional import base
from tests.functional import glance_api

MiB = 1024 * 1024


class PublishTest(base.CephImagesTestCase):

    RAW_SIZE = 16 * MiB

    def setUp(self):
        super().setUp()
        self.project_a = self.unique('pa')
        self.project_b = self.unique('pb')

    def make_library(self):
        return glance_api.image_library(self, publish_images=True)

    def golden(self, name, path):
        img = self.lib.import_file(path, name, project=self.project_a)
        self.addCleanup(self.delete_quietly, img.uuid)
        return img

    def test_published_snapshot_listed_and_deploys_by_glance_id(self):
        raw = self.make_raw()
        base_img = self.golden(self.unique('base'), raw)
        first = self.node()
        self.lib.clone_for_node(first, base_img.uuid)
        saved = self.lib.snapshot_node(first, self.unique('saved'),
                                       project=self.project_a)
        self.addCleanup(self.delete_quietly, saved.uuid)
        self.assertTrue(saved.glance_id)
        # Glance, as the owner project sees it.
        conn_a = glance_api.connect(self.env, self.project_a)
        listed = {i.id: i for i in conn_a.image.images()}
        self.assertIn(saved.glance_id, listed)
        rec = conn_a.image.get_image(saved.glance_id)
        self.assertEqual((self.project_a, 'private', 'raw', 'active',
                          saved.name),
                         (rec.owner, rec.visibility, rec.disk_format,
                          rec.status, rec.name))
        self.assertEqual(saved.uuid, rec.properties.get('bmi_image_id'))
        # Another project neither lists nor reads it.
        conn_b = glance_api.connect(self.env, self.project_b)
        self.assertNotIn(saved.glance_id,
                         {i.id for i in conn_b.image.images()})
        self.assertIsNone(conn_b.image.find_image(saved.glance_id))
        # Glance serves its bytes (read-only access to bmi's pool), read
        # from the golden snapshot: no copy exists in Glance's pool.
        with open(raw, 'rb') as f:
            want = f.read()
        self.assertEqual(want, conn_a.image.download_image(rec).content)
        ioctx = self.admin.open_ioctx(self.env['glance_pool'])
        try:
            self.assertNotIn(saved.glance_id, rbd.RBD().list(ioctx))
        finally:
            ioctx.close()
        # Deploys through its Glance id: a clone of the golden snapshot.
        second = self.node()
        start = time.monotonic()
        disk = self.lib.clone_for_node(second, saved.glance_id,
                                       project=self.project_a)
        took = time.monotonic() - start
        self.assertEqual(saved.spec, self.rbd_parent(disk.pool,
                                                     disk.rbd_name))
        self.assertLess(took, 1.0, took)
        self.assertRaises(exception.ImageNotVisible,
                          self.lib.resolve_source, saved.glance_id,
                          self.project_b)

    def test_deleting_on_either_side_keeps_them_consistent(self):
        img = self.golden(self.unique('pub'), self.make_raw())
        conn_a = glance_api.connect(self.env, self.project_a)
        # A user's delete in Glance: Glance would delete the location's
        # RBD image in bmi's pool; its cephx user may only read there, so
        # the delete fails and both sides keep the image.
        self.assertRaises(sdk_exc.HttpException, conn_a.image.delete_image,
                          img.glance_id)
        self.assertEqual('active', conn_a.image.get_image(
            img.glance_id).status)
        self.assertIn(img.rbd_name, self.rbd_names())
        self.assertEqual(img.glance_id, self.lib.get(img.uuid).glance_id)
        self.assertEqual({'forgotten': [], 'deleted': [], 'published': [],
                          'left': []},
                         _only(self.lib.sweep_published(), img))
        # bmi's delete: the bytes go, then the record.
        self.lib.delete(img.uuid)
        self.assertNotIn(img.rbd_name, self.rbd_names())
        self.assertIsNone(conn_a.image.find_image(img.glance_id))


def _only(result, img):
    """A sweep's result restricted to ``img`` (other tests' images)."""
    return {k: [v for v in vs if v in (img.uuid, img.glance_id)]
            for k, vs in result.items()}
