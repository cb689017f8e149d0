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

"""Formatting scratch disks on a sparse file (real mkfs, no Ceph)."""

import os

import fixtures

from bmi_driver import exception
from bmi_driver.storage.ceph import scratch
from tests import base

MiB = 1024 ** 2


class _Image:
    """What copy_extents needs of an rbd.Image: writes, kept sparse."""

    def __init__(self):
        self.writes = {}
        self.flushed = False

    def write(self, data, offset):
        self.writes[offset] = data

    def flush(self):
        self.flushed = True


class ScratchTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.config(state_path=self.tmp, group='bmi')

    def test_only_data_extents_are_copied(self):
        path = os.path.join(self.tmp, 'sparse')
        with open(path, 'wb') as f:
            f.truncate(64 * MiB)
            f.seek(0)
            f.write(b'a' * 4096)
            f.seek(32 * MiB)
            f.write(b'b' * 4096)
        image = _Image()
        written = scratch.copy_extents(path, image)
        self.assertTrue(image.flushed)
        # Filesystems allocate in blocks of at least 4 KiB.
        self.assertLess(written, 2 * MiB)
        self.assertEqual(b'a' * 4096, image.writes[0][:4096])
        self.assertIn(b'b' * 4096, b''.join(
            d for off, d in image.writes.items() if off >= 31 * MiB))

    def test_formatted_file_is_private_and_goes_away(self):
        with scratch.formatted_file(16 * MiB, 'ext4', 'ephemeral0') as path:
            self.assertEqual(0o600, os.stat(path).st_mode & 0o777)
            self.assertEqual(16 * MiB, os.path.getsize(path))
            self.assertTrue(path.startswith(self.tmp))
        self.assertFalse(os.path.exists(path))
        self.assertEqual([], os.listdir(self.tmp))

    def test_a_killed_formattings_directory_goes_at_the_next(self):
        dead = os.path.join(self.tmp, 'bmi-scratch-dead')
        recent = os.path.join(self.tmp, 'bmi-scratch-recent')
        for d in (dead, recent):
            os.mkdir(d, 0o700)
            with open(os.path.join(d, 'disk'), 'wb') as f:
                f.truncate(MiB)
        os.symlink(os.path.join(self.tmp, 'other'),
                   os.path.join(dead, 'link'))
        other = os.path.join(self.tmp, 'other')
        os.mkdir(other)
        old = os.stat(dead).st_mtime - 2 * 3600
        os.utime(dead, (old, old))
        with scratch.formatted_file(16 * MiB, 'ext4', 'ephemeral0'):
            pass
        # The dead one only: one in use (recent) and what links point at
        # stay.
        self.assertEqual(['bmi-scratch-recent', 'other'],
                         sorted(os.listdir(self.tmp)))

    def test_unknown_format(self):
        self.assertRaises(exception.InvalidInput,
                          scratch.formatted_file(1 * MiB, 'ntfs',
                                                 'x').__enter__)

    def test_tool_failure(self):
        # 1 MiB is too small for xfs (mkfs.xfs refuses it).
        e = self.assertRaises(exception.ScratchFormatError,
                              scratch.formatted_file(1 * MiB, 'xfs',
                                                     'ephemeral0').__enter__)
        self.assertIn('xfs', str(e))
        self.assertEqual([], os.listdir(self.tmp))
