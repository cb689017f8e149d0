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

"""Functional tests: against the live services `make test` starts.

They read what the services are from services.json (the lab's,
``tools.lab.state``; $BMI_TEST_ENV names another). A missing service fails
the test loudly: it is never skipped.
"""

import os
import uuid

import fixtures
from oslo_utils import uuidutils
import rados
import rbd

from bmi_driver import exception
from tests import base
from tools.lab import state as lab_state

MiB = 1024 * 1024

load_env = lab_state.load_services


class FunctionalTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.env = load_env()
        self.config(group='ceph', **lab_state.ceph_options(self.env))

    def unique(self, prefix='t'):
        """A name no other test (or earlier run) uses."""
        return '%s-%s' % (prefix, uuid.uuid4().hex[:10])


class CephImagesTestCase(FunctionalTestCase):
    """Tests of the image library: its files, and Ceph read as admin.

    ``self.lib`` is what ``make_library()`` returns; everything asserted
    is read straight from Ceph with the admin client, never through the
    library under test.
    """

    RAW_SIZE = 24 * MiB

    def setUp(self):
        super().setUp()
        self.lib = self.make_library()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.admin = rados.Rados(conffile=self.env['ceph_conf'])
        self.admin.connect(timeout=10)
        self.addCleanup(self.admin.shutdown)

    def make_library(self):
        raise NotImplementedError

    def make_raw(self, size=None, name='disk.raw'):
        """A sparse raw file with random data at a few places."""
        size = size or self.RAW_SIZE
        path = os.path.join(self.tmp, name)
        with open(path, 'wb') as f:
            for offset in (0, size // 2, size - MiB):
                f.seek(offset)
                f.write(os.urandom(MiB // 2))
            f.truncate(size)
        return path

    def node(self):
        """A fresh node UUID whose disk is removed at cleanup."""
        node = uuidutils.generate_uuid()
        self.addCleanup(self.lib.remove_node_disk, node)
        return node

    def delete_quietly(self, ref):
        try:
            self.lib.delete(ref)
        except exception.ImageNotFound:
            pass

    def _ioctx(self, pool):
        return self.admin.open_ioctx(pool or self.env['image_pool'])

    def read_rbd(self, pool, name, snapshot=None):
        ioctx = self._ioctx(pool)
        try:
            with rbd.Image(ioctx, name, snapshot=snapshot,
                           read_only=True) as image:
                return image.read(0, image.size())
        finally:
            ioctx.close()

    def write_rbd(self, pool, name, data, offset):
        ioctx = self._ioctx(pool)
        try:
            with rbd.Image(ioctx, name) as image:
                image.write(data, offset)
        finally:
            ioctx.close()

    def rbd_names(self, pool=None):
        """The RBD images of ``pool`` (default: the node/image pool)."""
        ioctx = self._ioctx(pool)
        try:
            return set(rbd.RBD().list(ioctx))
        finally:
            ioctx.close()

    def rbd_parent(self, pool, name):
        """``pool/image@snap`` of the image's parent, read from Ceph."""
        ioctx = self._ioctx(pool)
        try:
            with rbd.Image(ioctx, name, read_only=True) as image:
                p = image.get_parent_image_spec()
                return '%s/%s@%s' % (p['pool_name'], p['image_name'],
                                     p['snap_name'])
        finally:
            ioctx.close()
