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

"""What transfer.py refuses before qemu-img reads an image's data.

Real images made by the real qemu-img (a local tool, not the outside
world); what is inspected is their bytes or qemu-img info's answer.
"""

import json
import os

import fixtures
from oslo_concurrency import processutils

from bmi_driver import exception
from bmi_driver.storage.ceph import transfer
from tests import base

MiB = 1024 * 1024


class InspectHeaderTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.reads = []

    def qcow2(self, *options, size=MiB):
        path = os.path.join(self.tmp, 'x.qcow2')
        processutils.execute('qemu-img', 'create', '-q', '-f', 'qcow2',
                             *options, path, str(size), cwd=self.tmp)
        with open(path, 'rb') as f:
            data = f.read()
        os.unlink(path)
        return data

    def inspect(self, data, fmt='qcow2'):
        def read(offset, length):
            self.reads.append((offset, length))
            return data[offset:offset + length]
        return transfer.inspect_header(read, fmt, 'images/x@snap')

    def test_virtual_size_from_one_read_of_the_header(self):
        self.assertEqual(3 * MiB, self.inspect(self.qcow2(size=3 * MiB)))
        self.assertEqual([(0, 64 * 1024)], self.reads)
        # qcow2 version 2 (compat=0.10) too.
        self.assertEqual(MiB, self.inspect(self.qcow2('-o', 'compat=0.10')))

    def test_refusals(self):
        base_path = os.path.join(self.tmp, 'base.qcow2')
        processutils.execute('qemu-img', 'create', '-q', '-f', 'qcow2',
                             base_path, '1M')
        good = self.qcow2()
        for data, reason in [
                (self.qcow2('-b', base_path, '-F', 'qcow2'),
                 'refers to a backing or data file (backing_file'),
                (self.qcow2('-o', 'data_file=d.raw'),
                 'refers to a backing or data file (data_file'),
                (self.qcow2('-o', 'extended_l2=on'),
                 'its header is unsafe (unknown_features'),
                (good[:100], 'not a qcow2 image'),
                (b'', 'not a qcow2 image'),
                (b'\0' * MiB, 'not a qcow2 image'),
                # The header's size field (offset 24), not whole sectors.
                (good[:24] + (MiB + 100).to_bytes(8, 'big') + good[32:],
                 'whole number of 512-byte')]:
            e = self.assertRaises(exception.ImageFormatError, self.inspect,
                                  data)
            self.assertIn(reason, str(e))
            self.assertIn('images/x@snap', str(e))

    def test_reads_a_bounded_amount(self):
        # A header the inspector never completes: at most 1 MiB is read.
        class Never(transfer.format_inspector.QcowInspector):
            complete = False
        self.useFixture(fixtures.MockPatchObject(
            transfer.format_inspector, 'get_inspector',
            return_value=Never))
        self.assertRaises(exception.ImageFormatError, self.inspect,
                          bytes(4 * MiB))
        self.assertEqual(MiB, sum(n for _o, n in self.reads))

    def test_only_header_inspected_formats(self):
        e = self.assertRaises(exception.ImageFormatError, self.inspect,
                              bytes(MiB), 'vmdk')
        self.assertIn('not vmdk', str(e))
        self.assertEqual([], self.reads)


class ExternalFilesTestCase(base.TestCase):
    """qemu-img info's answers for images that read other files."""

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def info(self, fmt, *options):
        path = os.path.join(self.tmp, 'x.' + fmt)
        processutils.execute('qemu-img', 'create', '-q', '-f', fmt,
                             *options, path, '1M', cwd=self.tmp)
        out, _err = processutils.execute(
            'qemu-img', 'info', '--output=json', '-f', fmt,
            transfer.qemu_file(path))
        return json.loads(out)

    def test_self_contained_images_pass(self):
        for fmt, options in [('qcow2', ()), ('vmdk', ()),
                             ('vmdk', ('-o', 'subformat=streamOptimized')),
                             ('vdi', ()), ('vhdx', ())]:
            transfer.refuse_external_files(self.info(fmt, *options), 'x')

    def test_images_reading_other_files_refused(self):
        base_path = os.path.join(self.tmp, 'base.qcow2')
        processutils.execute('qemu-img', 'create', '-q', '-f', 'qcow2',
                             base_path, '1M')
        for fmt, options in [
                ('qcow2', ('-b', base_path, '-F', 'qcow2')),
                ('qcow2', ('-o', 'data_file=d.raw')),
                # A descriptor naming its extent files: qemu-img info
                # opened them already (what convert would copy).
                ('vmdk', ('-o', 'subformat=monolithicFlat')),
                ('vmdk', ('-o', 'subformat=twoGbMaxExtentSparse'))]:
            info = self.info(fmt, *options)
            e = self.assertRaises(exception.ImageFormatError,
                                  transfer.refuse_external_files, info,
                                  'images/x@snap')
            self.assertIn('refers to a backing or data file', str(e))
