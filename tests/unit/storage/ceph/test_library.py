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

"""The golden-image library against the fake cluster of fake_rbd."""

import datetime
import hashlib
import json
import os
import threading
import time
from unittest import mock

import fixtures
from oslo_concurrency import processutils
from oslo_utils import units
from oslo_utils import uuidutils

from bmi_driver.common import locks
from bmi_driver import exception
from bmi_driver.storage.ceph import rbd_utils
from bmi_driver.storage.ceph import transfer
from bmi_driver.storage import layout
from tests.unit.storage.ceph import fake_rbd
from tests.unit.storage.ceph.fake_rbd import rados
from tests.unit.storage.ceph.fake_rbd import rbd

POOL = 'bmi-images'
GLANCE = 'images'
NODE = '1be26c0b-03f2-4d2d-ae87-c02d7f33c123'
NODE2 = '4f1d2a9e-5c1b-4c44-9a59-2d9e0a3e7b10'

_real_execute = processutils.execute


def _data(size, seed):
    """``size`` bytes that differ from those of another seed."""
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


class ImagesTestCase(fake_rbd.TestCase):

    def setUp(self):
        super().setUp()
        self.config(transfer_chunk_mib=1, group='ceph')
        self.tmp = self.useFixture(fixtures.TempDir()).path
        # 1 MiB of data, 1 MiB of zeros, 64 KiB of data: 3 chunks.
        self.content = (_data(units.Mi, 'a') + bytes(units.Mi)
                        + _data(64 * units.Ki, 'b'))

    def make_file(self, data, name='disk.raw'):
        path = os.path.join(self.tmp, name)
        with open(path, 'wb') as f:
            f.write(data)
        return path

    def import_raw(self, name='ubuntu', data=None, **kwargs):
        path = self.make_file(self.content if data is None else data,
                              name + '.raw')
        return self.library.import_file(path, name, **kwargs)

    def golden_names(self):
        return [n for n in self.cluster.names(POOL)
                if n.startswith(layout.GOLDEN_PREFIX)]

    def golden(self, img):
        return self.cluster.image(POOL, img.rbd_name)

    def mock_qemu_img_info(self, **info):
        """qemu-img info answers ``info`` (JSON); nothing else may run."""
        out = json.dumps(info)
        return self.useFixture(fixtures.MockPatchObject(
            processutils, 'execute', return_value=(out, ''))).mock

    def _fake_qemu_img_convert(self):
        """qemu-img convert into the fake cluster (it cannot reach it).

        The real qemu-img converts to a raw file, whose bytes go into the
        fake image the target names; every other command runs for real.
        """
        calls = []

        def execute(*cmd, **kwargs):
            if cmd[:2] != ('qemu-img', 'convert'):
                return _real_execute(*cmd, **kwargs)
            calls.append(cmd)
            fmt = cmd[cmd.index('-f') + 1]
            raw = os.path.join(self.tmp, 'converted.raw')
            _real_execute('qemu-img', 'convert', '-f', fmt, '-O', 'raw',
                          cmd[-2], raw)
            pool, name = cmd[-1].split(':')[1].split('/')
            with open(raw, 'rb') as f:
                self.cluster.write(self.cluster.image(pool, name), 0,
                                   f.read())
            os.unlink(raw)
            return '', ''
        self.useFixture(fixtures.MockPatchObject(
            processutils, 'execute', side_effect=execute))
        return calls

    def make_qcow2(self, data):
        raw = self.make_file(data, 'src.raw')
        path = os.path.join(self.tmp, 'disk.qcow2')
        _real_execute('qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2',
                      raw, path)
        os.unlink(raw)
        return path

    def assert_untouched(self, before):
        """The fake cluster made no call at all (input refused first)."""
        self.assertEqual(before, self.cluster.calls)


class ImportFileTestCase(ImagesTestCase):

    def test_import_raw(self):
        progress = mock.Mock()
        img = self.import_raw(progress=progress)
        self.assertEqual('ubuntu', img.name)
        self.assertTrue(uuidutils.is_uuid_like(img.uuid))
        self.assertEqual('admin', img.project)
        self.assertEqual('private', img.visibility)
        self.assertEqual('file:ubuntu.raw', img.source)
        self.assertEqual('sha256:' + hashlib.sha256(self.content).hexdigest(),
                         img.checksum)
        self.assertEqual(len(self.content), img.size)
        self.assertEqual(0, img.clones)
        self.assertIsNone(img.parent)
        self.assertEqual('%s/img-%s@golden' % (POOL, img.uuid), img.spec)
        self.assertEqual(['img-' + img.uuid], self.golden_names())
        self.assertEqual(self.content, self.cluster.content(
            POOL, img.rbd_name, 'golden'))
        snap = self.golden(img).snaps['golden']
        self.assertTrue(snap.protected)
        # The all-zero MiB was skipped: the image stays sparse.
        self.assertEqual(2, self.cluster.count('write'))
        self.assertEqual(len(self.content) // fake_rbd.BLOCK - 256,
                         len(self.golden(img).blocks))
        progress.assert_called_with(len(self.content), len(self.content))
        self.assertEqual(3, progress.call_count)

    def test_import_project_and_visibility(self):
        img = self.import_raw(project='p1', visibility='public')
        self.assertEqual(('p1', 'public'), (img.project, img.visibility))
        meta = self.golden(img).metadata
        self.assertEqual('ubuntu', meta['bmi.name'])
        self.assertEqual('p1', meta['bmi.project'])
        self.assertEqual('public', meta['bmi.visibility'])
        self.assertIn('bmi.created_at', meta)

    def test_import_default_project_from_config(self):
        self.config(default_project='ops', group='bmi')
        self.assertEqual('ops', self.import_raw().project)

    def test_import_name_taken(self):
        first = self.import_raw()
        e = self.assertRaises(exception.ImageExists, self.import_raw)
        self.assertIn(first.uuid, str(e))
        self.assertEqual([first.rbd_name], self.golden_names())

    def test_bad_input_refused_before_any_call(self):
        path = self.make_file(self.content)
        cases = [
            ('bad name!', {}), ('', {}), ('x' * 64, {}), ('-lead', {}),
            (NODE, {}),  # a UUID is not a name
            ('ok', {'project': 'no spaces'}),
            ('ok', {'visibility': 'shared'}),
        ]
        execute = self.useFixture(fixtures.MockPatchObject(
            processutils, 'execute')).mock
        for name, kwargs in cases:
            self.assertRaises(exception.InvalidName, self.library.import_file,
                              path, name, **kwargs)
        self.assertEqual([], self.cluster.calls)
        execute.assert_not_called()

    def test_missing_file(self):
        e = self.assertRaises(exception.LocalFileError,
                              self.library.import_file,
                              os.path.join(self.tmp, 'nope.raw'), 'x')
        self.assertIn('no such file', str(e))
        self.assertEqual([], self.cluster.calls)

    def test_refusals_of_qemu_img_info(self):
        path = self.make_file(self.content)
        size = len(self.content)
        for info, reason in [
                ({'format': 'vmdk', 'virtual-size': size}, 'not raw or qcow2'),
                ({'format': 'qcow2', 'virtual-size': size,
                  'backing-filename': '/etc/shadow'}, 'backing or data'),
                ({'format': 'qcow2', 'virtual-size': size,
                  'format-specific': {'type': 'qcow2', 'data': {
                      'data-file': '/dev/sda'}}}, 'backing or data'),
                ({'format': 'qcow2', 'virtual-size': 1000}, 'whole number'),
                ({'format': 'qcow2', 'virtual-size': 0}, 'whole number'),
                ({'format': 'qcow2'}, 'whole number')]:
            self.useFixture(fixtures.MockPatchObject(
                processutils, 'execute', return_value=(json.dumps(info), '')))
            e = self.assertRaises(exception.ImageFormatError,
                                  self.library.import_file, path, 'x')
            self.assertIn(reason, str(e))
        self.assertEqual([], self.cluster.calls)

    def test_qemu_img_info_argv_and_limits(self):
        execute = self.mock_qemu_img_info(format='vmdk', **{
            'virtual-size': 512})
        path = self.make_file(b'x' * 512)
        self.assertRaises(exception.ImageFormatError,
                          self.library.import_file, path, 'x')
        # Issue 13: the path goes to qemu-img as file:<absolute path>.
        execute.assert_called_once_with(
            'qemu-img', 'info', '--output=json', 'file:' + path,
            prlimit=transfer.QEMU_IMG_LIMITS)

    def test_qemu_img_fails_or_babbles(self):
        path = self.make_file(self.content)
        self.useFixture(fixtures.MockPatchObject(
            processutils, 'execute', side_effect=processutils.
            ProcessExecutionError(stderr='Could not open: bad magic\n')))
        e = self.assertRaises(exception.ImageFormatError,
                              self.library.import_file, path, 'x')
        self.assertIn('bad magic', str(e))
        self.mock_qemu_img_info()
        processutils.execute.return_value = ('not json', '')
        self.assertRaises(exception.ImageFormatError,
                          self.library.import_file, path, 'x')
        self.assertEqual([], self.cluster.calls)

    def test_real_qcow2_with_backing_file_refused(self):
        base_path = self.make_file(self.content)
        top = os.path.join(self.tmp, 'top.qcow2')
        _real_execute('qemu-img', 'create', '-f', 'qcow2', '-b', base_path,
                      '-F', 'raw', top)
        e = self.assertRaises(exception.ImageFormatError,
                              self.library.import_file, top, 'x')
        self.assertIn('backing', str(e))
        self.assertEqual([], self.cluster.calls)

    def test_odd_sized_raw_file_refused(self):
        # qemu-img rounds the size of a raw file up to whole sectors.
        path = self.make_file(_data(1000, 'odd'))
        e = self.assertRaises(exception.ImageFormatError,
                              self.library.import_file, path, 'x')
        self.assertIn('(1000 bytes) is not a whole number', str(e))
        self.assertEqual([], self.cluster.calls)

    def test_import_qcow2(self):
        self.config(keyring='/etc/ceph/k:ring', conf_file='/etc/ceph/c.conf',
                    group='ceph')
        path = self.make_qcow2(self.content)
        calls = self._fake_qemu_img_convert()
        img = self.library.import_file(path, 'centos')
        self.assertEqual(self.content,
                         self.cluster.content(POOL, img.rbd_name, 'golden'))
        self.assertEqual('sha256:' + hashlib.sha256(self.content).hexdigest(),
                         img.checksum)
        self.assertEqual('file:disk.qcow2', img.source)
        self.assertEqual(1, len(calls))
        self.assertEqual(
            ('qemu-img', 'convert', '-n', '-f', 'qcow2', '-O', 'raw', '-m',
             '4', '-W', 'file:' + path,
             'rbd:%s/%s:id=bmi:conf=/etc/ceph/c.conf:keyring=/etc/ceph/k\\:'
             'ring' % (POOL, img.rbd_name)), calls[0])

    def test_qcow2_convert_failure_leaves_nothing(self):
        path = self.make_qcow2(self.content)

        def execute(*cmd, **kwargs):
            if cmd[1] == 'convert':
                raise processutils.ProcessExecutionError(
                    stderr='error while writing sector 2048\n')
            return _real_execute(*cmd, **kwargs)
        self.useFixture(fixtures.MockPatchObject(
            processutils, 'execute', side_effect=execute))
        e = self.assertRaises(exception.ImageFormatError,
                              self.library.import_file, path, 'centos')
        self.assertIn('sector 2048', str(e))
        self.assertEqual([], self.cluster.names(POOL))

    def test_failure_mid_import_leaves_nothing(self):
        for op, skip in [('write', 1), ('flush', 0), ('metadata_set', 2),
                         ('create_snap', 0), ('protect_snap', 0)]:
            self.cluster.inject(op, rbd.IOError, skip=skip)
            self.assertRaises(exception.CephError, self.import_raw)
            self.assertEqual([], self.cluster.names(POOL), op)

    def test_transient_error_mid_import_retried(self):
        self.cluster.inject('write', rbd.Timeout, skip=1)
        img = self.import_raw()
        self.assertEqual([img.rbd_name], self.golden_names())
        self.assertEqual(self.content,
                         self.cluster.content(POOL, img.rbd_name, 'golden'))
        # The client that saw the timeout was dropped for a new one.
        self.assertEqual(2, self.cluster.count('connect'))

    def test_permission_denied(self):
        self.cluster.inject('create', rbd.PermissionError)
        e = self.assertRaises(exception.CephError, self.import_raw)
        self.assertEqual('Ceph operation failed: permission denied on '
                         'ubuntu for user bmi', str(e))


class ImportRbdTestCase(ImagesTestCase):

    def setUp(self):
        super().setUp()
        self.glance_id = uuidutils.generate_uuid()
        self.glance = self.cluster.add_image(
            GLANCE, self.glance_id, self.content, snap='snap',
            metadata={'bmi.name': 'stale', 'other': 'x'})

    def test_glance_image_by_reference(self):
        ref = '%s/%s@snap' % (GLANCE, self.glance_id)
        img = self.library.import_rbd(ref, 'from-glance', project='p1')
        self.assertEqual(ref, img.parent)
        self.assertEqual('rbd:' + ref, img.source)
        self.assertEqual(('from-glance', 'p1'), (img.name, img.project))
        self.assertEqual('', img.checksum)
        model = self.golden(img)
        self.assertEqual({}, model.blocks)  # nothing copied
        self.assertEqual(self.content,
                         self.cluster.content(POOL, img.rbd_name, 'golden'))
        self.assertTrue(model.snaps['golden'].protected)
        self.assertNotIn(layout.META_REF_SNAP, model.metadata)
        self.assertEqual(['snap'], list(self.glance.snaps))
        self.assertEqual(0, self.cluster.count('write'))

    def test_image_without_snapshot_gets_a_protected_one(self):
        ref = '%s/%s' % (GLANCE, self.glance_id)
        img = self.library.import_rbd(ref, 'ref')
        snap = 'bmi-ref-' + img.uuid
        self.assertEqual('%s@%s' % (ref, snap), img.parent)
        self.assertTrue(self.glance.snaps[snap].protected)
        self.assertEqual(snap, self.golden(img).metadata['bmi.ref_snapshot'])
        # Deleting the golden image drops the snapshot it made.
        self.library.delete('ref')
        self.assertEqual(['snap'], list(self.glance.snaps))
        self.assertEqual([], self.cluster.names(POOL))

    def test_missing_source(self):
        for ref, error in [
                ('%s/%s@nope' % (GLANCE, self.glance_id),
                 exception.ImageNotFound),
                ('%s/%s' % (GLANCE, uuidutils.generate_uuid()),
                 exception.ImageNotFound),
                ('nopool/x@snap', exception.CephPoolNotFound)]:
            self.assertRaises(error, self.library.import_rbd, ref, 'x')
        self.assertEqual([], self.cluster.names(POOL))
        self.assertEqual(['snap'], list(self.glance.snaps))

    def test_bad_references_refused_before_any_call(self):
        for ref in ('images', 'images/', '/x', 'a/b/c', 'a/b@', 'a/b@c@d',
                    'a b/c', None):
            self.assertRaises(exception.InvalidName, self.library.import_rbd,
                              ref, 'x')
        self.assertRaises(exception.InvalidName, self.library.import_rbd,
                          'images/x@snap', 'bad name')
        self.assertEqual([], self.cluster.calls)

    def test_a_nodes_disk_is_refused_before_any_call(self):
        node = uuidutils.generate_uuid()
        for name in (layout.node_rbd_name(node),
                     layout.ephemeral_rbd_name(node) + '@s'):
            e = self.assertRaises(exception.InvalidName,
                                  self.library.import_rbd,
                                  '%s/%s' % (POOL, name), 'x')
            self.assertIn('snapshot passthru', str(e))
        self.assertEqual([], self.cluster.calls)

    def test_failures_leave_nothing(self):
        for with_snap in (True, False):
            ref = '%s/%s%s' % (GLANCE, self.glance_id,
                               '@snap' if with_snap else '')
            for op, skip in [('clone', 0), ('metadata_set', 0),
                             ('protect_snap', 0 if with_snap else 1)]:
                self.cluster.inject(op, rbd.IOError, skip=skip)
                self.assertRaises(exception.CephError,
                                  self.library.import_rbd, ref, 'x')
                self.assertEqual([], self.cluster.names(POOL), op)
                self.assertEqual(['snap'], list(self.glance.snaps), op)

    def test_failure_protecting_the_reference_snapshot(self):
        """The snapshot made on the source goes when protecting it fails."""
        self.cluster.inject('protect_snap', rbd.IOError)
        self.assertRaises(exception.CephError, self.library.import_rbd,
                          '%s/%s' % (GLANCE, self.glance_id), 'x')
        self.assertEqual([], self.cluster.names(POOL))
        self.assertEqual(['snap'], list(self.glance.snaps))


class QueryTestCase(ImagesTestCase):

    def test_get_by_name_and_uuid(self):
        img = self.import_raw()
        self.assertEqual(img, self.library.get('ubuntu'))
        self.assertEqual(img, self.library.get(img.uuid))
        self.assertEqual(img, self.library.get(img.uuid.upper()))
        self.assertRaises(exception.ImageNotFound, self.library.get, 'other')
        self.assertRaises(exception.ImageNotFound, self.library.get,
                          uuidutils.generate_uuid())
        self.assertRaises(exception.InvalidName, self.library.get, 'a b')

    def test_list_filters_and_counts(self):
        a = self.import_raw('a', project='p1')
        b = self.import_raw('b', project='p2', visibility='public')
        c = self.import_raw('c', project='p2')
        self.library.clone_for_node(NODE, 'a')
        self.library.clone_for_node(NODE2, 'a')
        listed = self.library.list()
        self.assertEqual(sorted([a.uuid, b.uuid, c.uuid]),
                         [i.uuid for i in listed])
        by_uuid = {i.uuid: i for i in listed}
        self.assertEqual(2, by_uuid[a.uuid].clones)
        self.assertEqual(0, by_uuid[b.uuid].clones)
        self.assertEqual(['a'], [i.name for i in self.library.list('p1')])
        self.assertEqual(['a', 'b'], sorted(
            i.name for i in self.library.list('p1', include_public=True)))
        self.assertEqual(['b', 'c'], sorted(
            i.name for i in self.library.list('p2')))
        self.assertEqual([], self.library.list('p3'))
        # Node disks in the same pool are not golden images.
        self.assertEqual(5, len(self.cluster.names(POOL)))

    def test_list_bad_project_refused_before_any_call(self):
        self.assertRaises(exception.InvalidName, self.library.list, 'a/b')
        self.assertEqual([], self.cluster.calls)

    def test_check(self):
        self.library.check()
        self.config(clone_pool='nope', group='ceph')
        e = self.assertRaises(exception.CephPoolNotFound, self.library.check)
        self.assertIn('nope', str(e))

    def test_unreachable_cluster(self):
        self.cluster.reachable = False
        e = self.assertRaises(exception.CephConnectionError,
                              self.library.list)
        self.assertEqual('Cannot connect to the Ceph cluster (conf '
                         '/etc/ceph/ceph.conf, user bmi): timed out '
                         '(monitors unreachable?)', str(e))
        self.assertEqual([], self.cluster.connections)

    def test_unknown_user(self):
        self.config(user='nobody', group='ceph')
        e = self.assertRaises(exception.CephConnectionError,
                              self.library.list)
        self.assertIn('user nobody): cephx authentication refused', str(e))

    def test_transient_errors_retried_then_reported(self):
        self.import_raw()
        self.cluster.inject('list', rados.ConnectionShutdown, times=2)
        self.assertEqual(['ubuntu'], [i.name for i in self.library.list()])
        self.cluster.inject('list', rbd.Timeout, times=10)
        e = self.assertRaises(exception.CephError, self.library.list)
        self.assertIn('list failed after 4 attempts', str(e))

    def test_one_connection_reused(self):
        self.import_raw()
        for _ in range(3):
            self.library.list()
        self.assertEqual(1, self.cluster.count('connect'))


class CloneTestCase(ImagesTestCase):

    def setUp(self):
        super().setUp()
        self.img = self.import_raw(project='p1')

    def test_clone_for_node(self):
        disk = self.library.clone_for_node(NODE.upper(), 'ubuntu')
        self.assertEqual(NODE, disk.node_uuid)
        self.assertEqual('node-' + NODE, disk.rbd_name)
        self.assertEqual('%s/node-%s' % (POOL, NODE), disk.spec)
        self.assertEqual(self.img.spec, disk.parent)
        self.assertEqual(len(self.content), disk.size)
        self.assertIsNone(disk.configdrive)
        # What it returns is what reading the disk gives.
        self.assertEqual(self.library.get_node_disk(NODE), disk)
        self.assertEqual(self.content,
                         self.cluster.content(POOL, disk.rbd_name))
        clone = self.cluster.image(POOL, disk.rbd_name)
        self.assertEqual({}, clone.blocks)  # copy-on-write
        self.assertTrue(clone.features & rbd.RBD_FEATURE_LAYERING)
        self.assertEqual(1, self.library.get('ubuntu').clones)

    def test_writes_to_the_clone_leave_the_golden_image(self):
        self.library.clone_for_node(NODE, self.img.uuid)
        self.cluster.write(self.cluster.image(POOL, 'node-' + NODE), 0,
                           b'written')
        self.assertEqual(self.content,
                         self.cluster.content(POOL, self.img.rbd_name,
                                              'golden'))

    def test_clone_twice_and_grow(self):
        first = self.library.clone_for_node(NODE, 'ubuntu')
        self.assertEqual(first, self.library.clone_for_node(NODE, 'ubuntu'))
        self.assertEqual([self.img.rbd_name, first.rbd_name],
                         self.cluster.names(POOL))
        grown = self.library.clone_for_node(NODE, 'ubuntu',
                                            size=10 * units.Mi)
        self.assertEqual(10 * units.Mi, grown.size)
        # Never shrunk.
        again = self.library.clone_for_node(NODE, 'ubuntu', size=units.Mi)
        self.assertEqual(10 * units.Mi, again.size)
        self.assertEqual(first.metadata, again.metadata)
        self.assertEqual(1, self.library.get('ubuntu').clones)

    def test_clone_with_size(self):
        disk = self.library.clone_for_node(NODE, 'ubuntu', size=8 * units.Mi)
        self.assertEqual(8 * units.Mi, disk.size)

    def test_clone_of_another_source_refused(self):
        self.import_raw('other', data=_data(units.Mi, 'o'), project='p1')
        self.library.clone_for_node(NODE, 'ubuntu')
        e = self.assertRaises(exception.BmiException,
                              self.library.clone_for_node, NODE, 'other')
        self.assertIn('remove it first', str(e))
        disk = self.library.get_node_disk(NODE)
        self.assertEqual(self.img.spec, disk.parent)

    def test_bad_input_refused_before_any_call(self):
        calls = list(self.cluster.calls)
        for node, size in [('not-a-uuid', None), (NODE, -1), (NODE, 1.5),
                           (NODE, '10G')]:
            self.assertRaises(exception.InvalidInput,
                              self.library.clone_for_node, node, 'ubuntu',
                              size=size)
        self.assertEqual(calls, self.cluster.calls)

    def test_failure_after_clone_removes_it(self):
        for op in ('open', 'resize'):
            self.cluster.inject(op, rbd.IOError, image='node-' + NODE)
            self.assertRaises(exception.CephError,
                              self.library.clone_for_node, NODE, 'ubuntu',
                              size=8 * units.Mi)
            self.assertNotIn('node-' + NODE, self.cluster.names(POOL), op)
        self.assertEqual(0, self.library.get('ubuntu').clones)

    def test_failure_on_existing_clone_keeps_it(self):
        self.library.clone_for_node(NODE, 'ubuntu')
        self.cluster.inject('resize', rbd.IOError)
        self.assertRaises(exception.CephError, self.library.clone_for_node,
                          NODE, 'ubuntu', size=8 * units.Mi)
        self.assertIn('node-' + NODE, self.cluster.names(POOL))

    def test_clone_requires_visibility(self):
        self.assertRaises(exception.ImageNotVisible,
                          self.library.clone_for_node, NODE, self.img.uuid,
                          project='p2')
        self.assertRaises(exception.ImageNotFound,
                          self.library.clone_for_node, NODE, 'ubuntu',
                          project='p2')
        self.assertNotIn('node-' + NODE, self.cluster.names(POOL))
        self.library.clone_for_node(NODE, 'ubuntu', project='p1')

    def test_clone_of_a_glance_image(self):
        glance_id = uuidutils.generate_uuid()
        self.cluster.add_image(GLANCE, glance_id, _data(units.Mi, 'g'),
                               snap='snap')
        self.glance_api.add(glance_id, visibility='public')
        disk = self.library.clone_for_node(NODE, glance_id.upper())
        self.assertEqual('%s/%s@snap' % (GLANCE, glance_id), disk.parent)
        self.assertEqual(self.library.get_node_disk(NODE), disk)
        self.assertEqual(_data(units.Mi, 'g'),
                         self.cluster.content(POOL, disk.rbd_name))

    def test_clone_from_resolved_source(self):
        source = self.library.resolve_source('ubuntu')
        calls = len(self.cluster.calls)
        disk = self.library.clone_for_node(NODE, source)
        self.assertEqual(self.img.spec, disk.parent)
        self.assertNotIn(('list', POOL), self.cluster.calls[calls:])


class ResolveSourceTestCase(ImagesTestCase):

    def test_golden_image(self):
        img = self.import_raw(project='p1')
        for ref in ('ubuntu', img.uuid):
            src = self.library.resolve_source(ref, project='p1')
            self.assertEqual(('golden', img.uuid, img.spec, img.size),
                             (src.kind, src.uuid, src.spec, src.size))
        self.assertEqual(src, self.library.resolve_source(src))

    def test_visibility(self):
        private = self.import_raw('private', project='p1')
        self.import_raw('public', project='p1', visibility='public')
        e = self.assertRaises(exception.ImageNotVisible,
                              self.library.resolve_source, private.uuid,
                              'p2')
        self.assertIn('not visible to project p2', str(e))
        # Issue 13: the error does not name the owner.
        self.assertNotIn('p1', str(e))
        self.library.resolve_source('private', 'p1')
        self.library.resolve_source('private')  # an admin: no project
        self.library.resolve_source('private', layout.ANY_PROJECT)
        # A node of no project (issue 11): public images only.
        e = self.assertRaises(exception.ImageNotVisible,
                              self.library.resolve_source, private.uuid,
                              None)
        self.assertIn('public images only', str(e))
        self.library.resolve_source('public', None)
        self.assertRaises(exception.ImageNotVisible,
                          self.library.clone_for_node, NODE, private.uuid,
                          project=None)
        # By its name: as if not found, never its UUID.
        for project in ('p2', None):
            e = self.assertRaises(exception.ImageNotFound,
                                  self.library.resolve_source, 'private',
                                  project)
            self.assertNotIn(private.uuid, str(e))
            e = self.assertRaises(exception.ImageNotFound,
                                  self.library.clone_for_node, NODE,
                                  'private', project=project)
            self.assertNotIn(private.uuid, str(e))
        self.assertEqual('public',
                         self.library.resolve_source('public', 'p2').project
                         and 'public')

    def test_glance_image(self):
        glance_id = uuidutils.generate_uuid()
        self.cluster.add_image(GLANCE, glance_id, self.content, snap='snap')
        self.glance_api.add(glance_id, owner='p2')
        src = self.library.resolve_source(glance_id, project='p2')
        self.assertEqual('glance', src.kind)
        self.assertEqual('%s/%s@snap' % (GLANCE, glance_id), src.spec)
        self.assertEqual(len(self.content), src.size)

    def test_glance_image_without_snap_unusable(self):
        glance_id = uuidutils.generate_uuid()
        self.cluster.add_image(GLANCE, glance_id, self.content)
        self.glance_api.add(glance_id)
        e = self.assertRaises(exception.GlanceImageUnusable,
                              self.library.resolve_source, glance_id)
        self.assertIn('which Ceph does not have', str(e))

    def test_glance_pool_alone_is_not_an_image_source(self):
        # Issue 13: bytes in Glance's pool that Glance does not know.
        glance_id = uuidutils.generate_uuid()
        self.cluster.add_image(GLANCE, glance_id, self.content, snap='snap')
        self.assertRaises(exception.ImageNotFound,
                          self.library.resolve_source, glance_id)

    def test_not_found(self):
        for ref in ('nothing', uuidutils.generate_uuid(), 'bad name',
                    'x' * 100):
            self.assertRaises(exception.ImageNotFound,
                              self.library.resolve_source, ref)

    def test_glance_location_of_another_image_unusable(self):
        # A location a user added, naming another Glance image's snapshot
        # in Glance's pool: never cloned as this image.
        victim = uuidutils.generate_uuid()
        self.cluster.add_image(GLANCE, victim, self.content, snap='snap')
        glance_id = uuidutils.generate_uuid()
        self.glance_api.add(glance_id, owner='p2', direct_url=(
            'rbd://fsid/%s/%s/snap' % (GLANCE, victim)))
        e = self.assertRaises(exception.GlanceImageUnusable,
                              self.library.resolve_source, glance_id, 'p2')
        self.assertIn('names another image than its own', str(e))
        self.assertNotIn(victim, str(e))

    def test_no_glance_pool(self):
        self.config(glance_pool='nope', group='ceph')
        glance_id = uuidutils.generate_uuid()
        self.glance_api.add(glance_id)
        e = self.assertRaises(exception.GlanceImageUnusable,
                              self.library.resolve_source, glance_id)
        self.assertIn('not in a snapshot of [ceph] glance_pool nope', str(e))


class NodeDiskTestCase(ImagesTestCase):

    def setUp(self):
        super().setUp()
        self.img = self.import_raw()
        self.library.clone_for_node(NODE, 'ubuntu')

    def test_get_and_list(self):
        self.library.write_node_configdrive(NODE, b'iso' * 300)
        self.library.clone_for_node(NODE2, 'ubuntu')
        self.cluster.add_image(POOL, 'node-not-a-uuid', b'x' * 512)
        disk = self.library.get_node_disk(NODE)
        self.assertEqual('node-%s-config' % NODE, disk.configdrive.rbd_name)
        self.assertEqual(1024, disk.configdrive.size)
        self.assertEqual([NODE, NODE2], sorted(
            d.node_uuid for d in self.library.list_node_disks()))
        self.assertRaises(exception.CloneNotFound,
                          self.library.get_node_disk,
                          uuidutils.generate_uuid())
        self.assertRaises(exception.InvalidName, self.library.get_node_disk,
                          'node')

    def test_remove_twice(self):
        self.library.write_node_configdrive(NODE, b'cd')
        self.library.remove_node_disk(NODE)
        self.assertEqual([self.img.rbd_name], self.cluster.names(POOL))
        self.library.remove_node_disk(NODE)
        self.assertEqual(0, self.library.get('ubuntu').clones)

    def test_remove_with_leftover_snapshot(self):
        with rbd.Image(self.cluster_ioctx(), 'node-' + NODE) as image:
            image.create_snap('bmi-snap-x')
            image.protect_snap('bmi-snap-x')
        self.library.remove_node_disk(NODE)
        self.assertEqual([self.img.rbd_name], self.cluster.names(POOL))

    def cluster_ioctx(self):
        client = rados.Rados(rados_id='bmi')
        client.connect()
        self.addCleanup(client.shutdown)
        return client.open_ioctx(POOL)

    def test_remove_while_exported_refused(self):
        self.cluster.watch(POOL, 'node-' + NODE)
        e = self.assertRaises(exception.ImageBusy,
                              self.library.remove_node_disk, NODE)
        self.assertIn('node-' + NODE, str(e))
        self.assertIn('node-' + NODE, self.cluster.names(POOL))

    def test_node_metadata(self):
        self.library.set_node_metadata(NODE, {'bmi.export.iqn': 'iqn.x',
                                              'bmi.export.initiator': '',
                                              'bmi.export.chap_user': 'u'})
        model = self.cluster.image(POOL, 'node-' + NODE)
        self.assertNotIn('', model.metadata.values())
        meta = self.library.get_node_disk(NODE).metadata
        self.assertEqual('iqn.x', meta['bmi.export.iqn'])
        self.assertEqual('u', meta['bmi.export.chap_user'])
        self.assertNotIn('bmi.export.initiator', meta)
        # An empty value removes a key that was set.
        self.library.set_node_metadata(NODE, {'bmi.export.iqn': None})
        self.assertNotIn('bmi.export.iqn',
                         self.library.get_node_disk(NODE).metadata)
        self.library.remove_node_metadata(NODE, ['bmi.export.chap_user',
                                                 'never-set'])
        self.assertNotIn('bmi.export.chap_user', model.metadata)
        for call in (self.library.set_node_metadata,
                     self.library.remove_node_metadata):
            self.assertRaises(exception.CloneNotFound, call,
                              uuidutils.generate_uuid(), {})

    def test_metadata_list_survives_the_empty_value_bug(self):
        """The fake's metadata_list shifts values after an empty one."""
        self.cluster.add_image(POOL, 'other', b'x' * 512, metadata={
            'a': '1', 'b': '', 'c': '3'})
        with rbd.Image(self.cluster_ioctx(), 'other') as image:
            self.assertEqual([('a', '1'), ('b', '3'), ('c', '')],
                             list(image.metadata_list()))
        # The library never stores an empty value, so it never meets it.
        model = self.cluster.image(POOL, 'node-' + NODE)
        model.metadata['a'] = '1'
        self.library.set_node_metadata(NODE, {'b': '', 'c': '3', 'd': '4'})
        meta = self.library.get_node_disk(NODE).metadata
        self.assertEqual(('1', '3', '4'), (meta['a'], meta['c'], meta['d']))

    def test_configdrive(self):
        data = b'config drive' * 100
        cd = self.library.write_node_configdrive(NODE, data)
        self.assertEqual(1536, cd.size)
        self.assertEqual(data.ljust(1536, b'\0'), self.cluster.content(
            POOL, cd.rbd_name))
        # Same content: left alone.
        self.library.write_node_configdrive(NODE, data)
        self.assertEqual(1, self.cluster.count('create') - 1)
        # Other content: replaced.
        self.library.write_node_configdrive(NODE, b'new')
        self.assertEqual(b'new'.ljust(512, b'\0'), self.cluster.content(
            POOL, cd.rbd_name))
        self.library.remove_node_configdrive(NODE)
        self.library.remove_node_configdrive(NODE)
        self.assertNotIn(cd.rbd_name, self.cluster.names(POOL))

    def test_configdrive_bad_input_and_failure(self):
        calls = list(self.cluster.calls)
        for data in (b'', 'text', None):
            self.assertRaises(exception.InvalidInput,
                              self.library.write_node_configdrive, NODE, data)
        self.assertEqual(calls, self.cluster.calls)
        self.cluster.inject('write', rbd.IOError)
        self.assertRaises(exception.CephError,
                          self.library.write_node_configdrive, NODE, b'cd')
        self.assertNotIn('node-%s-config' % NODE, self.cluster.names(POOL))


class SnapshotNodeTestCase(ImagesTestCase):

    def setUp(self):
        super().setUp()
        self.img = self.import_raw()
        self.library.clone_for_node(NODE, 'ubuntu')
        self.disk = self.cluster.image(POOL, 'node-' + NODE)
        self.cluster.write(self.disk, units.Mi + 10, b'node wrote this')
        self.disk.metadata['bmi.export.chap_secret'] = 'secret'
        self.expected = bytearray(self.content)
        self.expected[units.Mi + 10:units.Mi + 25] = b'node wrote this'

    def test_snapshot(self):
        progress = mock.Mock()
        new = self.library.snapshot_node(NODE, 'saved', project='p1',
                                         progress=progress)
        self.assertEqual(('saved', 'p1', 'private'),
                         (new.name, new.project, new.visibility))
        self.assertEqual('snapshot:node ' + NODE, new.source)
        self.assertIsNone(new.parent)  # flattened: depends on nothing
        self.assertEqual(bytes(self.expected), self.cluster.content(
            POOL, new.rbd_name, 'golden'))
        meta = self.golden(new).metadata
        self.assertEqual({'bmi.name', 'bmi.project', 'bmi.visibility',
                          'bmi.created_at', 'bmi.source'}, set(meta))
        self.assertEqual({}, self.disk.snaps)  # temporary snapshot gone
        progress.assert_called_with(new.size, new.size)
        # The saved image outlives the node's disk and its golden image.
        self.library.remove_node_disk(NODE)
        self.library.delete('ubuntu')
        self.assertEqual(bytes(self.expected), self.cluster.content(
            POOL, new.rbd_name, 'golden'))

    def test_refusals(self):
        self.assertRaises(exception.ImageExists, self.library.snapshot_node,
                          NODE, 'ubuntu')
        self.assertRaises(exception.CloneNotFound, self.library.snapshot_node,
                          NODE2, 'saved')
        calls = list(self.cluster.calls)
        for node, name, vis in [('x', 'saved', 'private'),
                                (NODE, 'bad name', 'private'),
                                (NODE, 'saved', 'everyone')]:
            self.assertRaises(exception.InvalidName,
                              self.library.snapshot_node, node, name,
                              visibility=vis)
        self.assertEqual(calls, self.cluster.calls)
        self.assertEqual({}, self.disk.snaps)
        self.assertEqual(1, len(self.golden_names()))

    def test_failure_mid_snapshot_leaves_nothing(self):
        for op, skip in [('clone', 0), ('flatten', 0), ('create_snap', 1),
                         ('protect_snap', 1), ('metadata_set', 0)]:
            self.cluster.inject(op, rbd.IOError, skip=skip)
            self.assertRaises(exception.CephError,
                              self.library.snapshot_node, NODE, 'saved')
            self.assertEqual([self.img.rbd_name], self.golden_names(), op)
            self.assertEqual({}, self.disk.snaps, op)

    def test_failure_protecting_the_temporary_snapshot(self):
        self.cluster.inject('protect_snap', rbd.IOError)
        self.assertRaises(exception.CephError, self.library.snapshot_node,
                          NODE, 'saved')
        self.assertEqual({}, self.disk.snaps)


class DeleteTestCase(ImagesTestCase):

    def setUp(self):
        super().setUp()
        self.img = self.import_raw()

    def snap(self):
        return self.golden(self.img).snaps.get('golden')

    def test_delete(self):
        self.library.delete('ubuntu')
        self.assertEqual([], self.cluster.names(POOL))
        self.assertRaises(exception.ImageNotFound, self.library.delete,
                          'ubuntu')
        self.assertRaises(exception.ImageNotFound, self.library.delete,
                          self.img.uuid)

    def test_refused_while_cloned(self):
        self.library.clone_for_node(NODE, 'ubuntu')
        self.library.clone_for_node(NODE2, 'ubuntu')
        e = self.assertRaises(exception.ImageInUse, self.library.delete,
                              self.img.uuid)
        self.assertEqual('Image ubuntu has 2 clone(s) (%s/node-%s, '
                         '%s/node-%s); remove them first.'
                         % (POOL, NODE, POOL, NODE2), str(e))
        self.assertTrue(self.snap().protected)
        self.library.remove_node_disk(NODE)
        self.library.remove_node_disk(NODE2)
        self.library.delete('ubuntu')
        self.assertEqual([], self.cluster.names(POOL))

    def test_unprotect_busy_with_clone_format_1(self):
        self.cluster.clone_format = 1
        self.cluster.inject('unprotect_snap', rbd.ImageBusy)
        self.assertRaises(exception.ImageBusy, self.library.delete, 'ubuntu')
        self.assertTrue(self.snap().protected)

    def test_remove_failure_reprotects(self):
        self.cluster.watch(POOL, self.img.rbd_name)  # open elsewhere
        e = self.assertRaises(exception.ImageBusy, self.library.delete,
                              'ubuntu')
        self.assertIn('ubuntu', str(e))
        self.assertTrue(self.snap().protected)
        self.assertEqual(self.img, self.library.get('ubuntu'))

    def test_other_snapshot_refuses_and_reprotects(self):
        self.library.import_rbd('%s/%s' % (POOL, self.img.rbd_name), 'ref')
        e = self.assertRaises(exception.ImageBusy, self.library.delete,
                              'ubuntu')
        self.assertIn('still has snapshots', str(e))
        self.assertTrue(self.snap().protected)

    def test_transient_failure_retried(self):
        self.cluster.inject('remove', rbd.Timeout)
        self.library.delete('ubuntu')
        self.assertEqual([], self.cluster.names(POOL))

    def test_carries_on_after_an_interrupted_delete(self):
        self.snap().protected = False
        self.library.delete('ubuntu')
        img = self.import_raw()
        del self.golden(img).snaps['golden']
        self.library.delete(img.uuid)
        self.assertEqual([], self.cluster.names(POOL))

    def test_remove_snap_failure_reprotects(self):
        self.cluster.inject('remove_snap', rbd.IOError)
        self.assertRaises(exception.CephError, self.library.delete, 'ubuntu')
        self.assertTrue(self.snap().protected)


class RenameCopyExportTestCase(ImagesTestCase):

    def setUp(self):
        super().setUp()
        self.img = self.import_raw(project='p1')

    def test_rename(self):
        renamed = self.library.rename('ubuntu', 'jammy')
        self.assertEqual(('jammy', self.img.uuid),
                         (renamed.name, renamed.uuid))
        self.assertRaises(exception.ImageNotFound, self.library.get,
                          'ubuntu')
        writes = self.cluster.count('metadata_set')
        self.assertEqual(renamed, self.library.rename(self.img.uuid, 'jammy'))
        self.assertEqual(writes, self.cluster.count('metadata_set'))

    def test_rename_refusals(self):
        self.import_raw('other')
        self.assertRaises(exception.ImageExists, self.library.rename,
                          'ubuntu', 'other')
        self.assertRaises(exception.ImageNotFound, self.library.rename,
                          'nope', 'new')
        calls = list(self.cluster.calls)
        for name in ('a b', '', NODE):
            self.assertRaises(exception.InvalidName, self.library.rename,
                              'ubuntu', name)
        self.assertEqual(calls, self.cluster.calls)
        self.assertEqual('ubuntu', self.library.get(self.img.uuid).name)

    def test_copy(self):
        progress = mock.Mock()
        copy = self.library.copy('ubuntu', 'copied', project='p2',
                                 progress=progress)
        self.assertNotEqual(self.img.uuid, copy.uuid)
        self.assertEqual(('copied', 'p2', 'private', 'copy:' + self.img.uuid,
                          self.img.checksum, None),
                         (copy.name, copy.project, copy.visibility,
                          copy.source, copy.checksum, copy.parent))
        progress.assert_called_with(copy.size, copy.size)
        self.library.delete('ubuntu')  # the copy is independent
        self.assertEqual(self.content, self.cluster.content(
            POOL, copy.rbd_name, 'golden'))
        self.assertEqual(['copied'], [i.name for i in self.library.list()])

    def test_copy_keeps_project_and_visibility_by_default(self):
        self.library.rename('ubuntu', 'pub')
        copy = self.library.copy('pub', 'copied')
        self.assertEqual(('p1', 'private'), (copy.project, copy.visibility))

    def test_copy_refusals_and_failures(self):
        self.assertRaises(exception.ImageExists, self.library.copy,
                          'ubuntu', 'ubuntu')
        calls = list(self.cluster.calls)
        self.assertRaises(exception.InvalidName, self.library.copy,
                          'ubuntu', 'x', project='a b')
        self.assertRaises(exception.InvalidName, self.library.copy,
                          'ubuntu', 'x', visibility='all')
        self.assertEqual(calls, self.cluster.calls)
        for op in ('flatten', 'protect_snap'):
            self.cluster.inject(op, rbd.IOError)
            self.assertRaises(exception.CephError, self.library.copy,
                              'ubuntu', 'copied')
            self.assertEqual([self.img.rbd_name], self.golden_names())
            self.assertEqual(0, self.library.get('ubuntu').clones)

    def test_export(self):
        path = os.path.join(self.tmp, 'out.raw')
        progress = mock.Mock()
        self.assertEqual(self.img, self.library.export('ubuntu', path,
                                                       progress=progress))
        with open(path, 'rb') as f:
            self.assertEqual(self.content, f.read())
        progress.assert_called_with(len(self.content), len(self.content))
        self.assertEqual(['out.raw', 'ubuntu.raw'], sorted(os.listdir(
            self.tmp)))

    def test_export_refusals(self):
        path = self.make_file(b'keep')
        calls = list(self.cluster.calls)
        e = self.assertRaises(exception.LocalFileError, self.library.export,
                              'ubuntu', path)
        self.assertIn('already exists', str(e))
        self.assertRaises(exception.LocalFileError, self.library.export,
                          'ubuntu', os.path.join(self.tmp, 'no', 'x.raw'))
        self.assertEqual(calls, self.cluster.calls)
        with open(path, 'rb') as f:
            self.assertEqual(b'keep', f.read())

    def test_export_failures_leave_no_file(self):
        path = os.path.join(self.tmp, 'out.raw')
        self.cluster.inject('read', rbd.IOError, skip=1)
        self.assertRaises(exception.CephError, self.library.export,
                          'ubuntu', path)
        self.assertEqual(['ubuntu.raw'], os.listdir(self.tmp))
        # Content that does not match the recorded checksum.
        snap = self.golden(self.img).snaps['golden']
        snap.blocks[0] = b'\1' * fake_rbd.BLOCK
        e = self.assertRaises(exception.CephError, self.library.export,
                              'ubuntu', path)
        self.assertIn('recorded ' + self.img.checksum, str(e))
        self.assertEqual(['ubuntu.raw'], os.listdir(self.tmp))


class ConfigdriveLeftoverTestCase(ImagesTestCase):

    def test_configdrive_without_checksum_replaced(self):
        """A config drive left by a crash mid-write is replaced."""
        self.import_raw()
        self.library.clone_for_node(NODE, 'ubuntu')
        self.cluster.add_image(POOL, 'node-%s-config' % NODE, b'half',
                               size=512)
        self.library.write_node_configdrive(NODE, b'cd')
        self.assertEqual(b'cd'.ljust(512, b'\0'), self.cluster.content(
            POOL, 'node-%s-config' % NODE))


class InputHardeningTestCase(ImagesTestCase):
    """Issue 13: bad input refused before anything is written."""

    def test_empty_project_refused_not_defaulted(self):
        path = self.make_file(self.content)
        self.import_raw()
        before = list(self.cluster.calls)
        for call in (
                lambda: self.library.import_file(path, 'x', project=''),
                lambda: self.library.import_rbd(GLANCE + '/a@snap', 'x',
                                                project=''),
                lambda: self.library.snapshot_node(NODE, 'x', project=''),
                lambda: self.library.copy('ubuntu', 'x', project='')):
            e = self.assertRaises(exception.InvalidName, call)
            self.assertIn('project', str(e))
        self.assertEqual(before, self.cluster.calls)

    def test_directory_device_and_fifo_said_as_such(self):
        fifo = os.path.join(self.tmp, 'pipe')
        os.mkfifo(fifo)
        for path, reason in ((self.tmp, 'is a directory'),
                             ('/dev/null', 'is a device'),
                             (fifo, 'not a regular file'),
                             (os.path.join(self.tmp, 'nope'),
                              'no such file')):
            e = self.assertRaises(exception.LocalFileError,
                                  self.library.import_file, path, 'x')
            self.assertIn(reason, str(e))
        self.assertEqual([], self.cluster.calls)

    def test_truncated_qcow2_refused_by_qemu_img_check(self):
        good = self.make_qcow2(_data(4 * units.Mi, 'q'))
        truncated = os.path.join(self.tmp, 'truncated.qcow2')
        with open(good, 'rb') as src, open(truncated, 'wb') as out:
            out.write(src.read(100 * units.Ki))
        e = self.assertRaises(exception.ImageFormatError,
                              self.library.import_file, truncated, 'x')
        self.assertIn('qemu-img check found', str(e))
        self.assertEqual([], self.cluster.calls)

    def test_qemu_img_check_argv_and_leaks(self):
        path = self.make_file(b'q' * 512, 'disk.qcow2')
        answers = [(json.dumps({'format': 'qcow2', 'virtual-size': 512}),
                    ''),
                   (json.dumps({'check-errors': 0, 'leaks': 2}), '')]
        execute = self.useFixture(fixtures.MockPatchObject(
            processutils, 'execute', side_effect=answers)).mock
        self.assertEqual(('qcow2', 512), transfer.inspect_file(path))
        execute.assert_called_with(
            'qemu-img', 'check', '--output=json', '-f', 'qcow2',
            'file:' + path, prlimit=transfer.QEMU_IMG_LIMITS,
            check_exit_code=[0, 2, 3])
        execute.side_effect = [
            answers[0], processutils.ProcessExecutionError(
                exit_code=1, stderr='check could not complete\n')]
        e = self.assertRaises(exception.ImageFormatError,
                              transfer.inspect_file, path)
        self.assertIn('could not complete', str(e))

    def _in_tmp(self):
        cwd = os.getcwd()
        os.chdir(self.tmp)
        self.addCleanup(os.chdir, cwd)

    def test_name_with_a_colon_is_a_file(self):
        self._in_tmp()
        data = _data(2 * units.Mi, 'colon')
        os.rename(self.make_qcow2(data), os.path.join(self.tmp, 'a:b.qcow2'))
        self._fake_qemu_img_convert()
        img = self.library.import_file('a:b.qcow2', 'colon')
        self.assertEqual(data, self.cluster.content(POOL, img.rbd_name,
                                                    'golden'))

    def test_json_pseudo_protocol_is_just_a_file_name(self):
        # Before issue 13, qemu-img read the file the JSON named (here
        # other.raw) while the library had checked this one.
        self._in_tmp()
        self.make_file(_data(2 * units.Mi, 'other'), 'other.raw')
        name = 'json:{"file.driver":"file","file.filename":"other.raw"}'
        data = _data(2 * units.Mi, 'mine')
        os.rename(self.make_qcow2(data), os.path.join(self.tmp, name))
        self._fake_qemu_img_convert()
        img = self.library.import_file(name, 'plain')
        self.assertEqual(data, self.cluster.content(POOL, img.rbd_name,
                                                    'golden'))

    def _racing(self, calls):
        """Run ``calls`` at once, each check of a name held open a while.

        Without the names lock every call passes the check before any
        claims the name.
        """
        from bmi_driver.storage.ceph import golden
        real = golden.GoldenImages._check_name_free

        def slow(self_, *args, **kwargs):
            result = real(self_, *args, **kwargs)
            time.sleep(0.05)
            return result
        self.useFixture(fixtures.MockPatchObject(
            golden.GoldenImages, '_check_name_free', slow))
        results = [None] * len(calls)

        def run(i):
            try:
                results[i] = calls[i]()
            except Exception as e:
                results[i] = e
        threads = [threading.Thread(target=run, args=(i,))
                   for i in range(len(calls))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    def _named(self, name):
        return [n for n in self.golden_names()
                if self.cluster.image(POOL, n).metadata.get('bmi.name')
                == name]

    def test_parallel_imports_to_one_name_give_one_image(self):
        paths = [self.make_file(self.content, 'd%d.raw' % i)
                 for i in range(4)]
        results = self._racing([
            (lambda p=p: self.library.import_file(p, 'same'))
            for p in paths])
        made = [r for r in results if isinstance(r, layout.GoldenImage)]
        refused = [r for r in results
                   if isinstance(r, exception.ImageExists)]
        self.assertEqual((1, 3), (len(made), len(refused)), results)
        self.assertEqual([made[0].rbd_name], self._named('same'))
        self.assertEqual(made[0].uuid, self.library.get('same').uuid)

    def test_parallel_renames_to_one_name_give_one_image(self):
        imgs = [self.import_raw('r%d' % i) for i in range(4)]
        results = self._racing([
            (lambda i=i: self.library.rename(i.uuid, 'same')) for i in imgs])
        self.assertEqual(1, len([r for r in results
                                 if isinstance(r, layout.GoldenImage)]),
                         results)
        self.assertEqual(1, len(self._named('same')))

    def test_parallel_copy_and_import_to_one_name(self):
        self.import_raw('src')
        path = self.make_file(self.content, 'other.raw')
        results = self._racing([
            lambda: self.library.copy('src', 'same'),
            lambda: self.library.import_file(path, 'same')])
        self.assertEqual(1, len([r for r in results
                                 if isinstance(r, layout.GoldenImage)]),
                         results)
        self.assertEqual(1, len(self._named('same')))

    def test_taken_name_of_another_project_not_named(self):
        theirs = self.import_raw('taken', project='p1')
        self.library.clone_for_node(NODE, 'taken')
        for asker in ('p2', 'p1'):
            e = self.assertRaises(exception.ImageExists,
                                  self.library.check_new_name, 'taken',
                                  asker=asker)
            self.assertEqual(asker == 'p1', theirs.uuid in str(e))
        e = self.assertRaises(exception.ImageExists,
                              self.library.snapshot_node, NODE, 'taken',
                              project='p2')
        self.assertNotIn(theirs.uuid, str(e))
        self.assertNotIn('p1', str(e))
        # An admin (bmi-manage) is told which image holds it.
        e = self.assertRaises(exception.ImageExists,
                              self.library.check_new_name, 'taken')
        self.assertIn(theirs.uuid, str(e))
        self.library.check_new_name('free', asker='p2')
        self.assertRaises(exception.InvalidName, self.library.check_new_name,
                          'bad name')


class GlanceSourceTestCase(ImagesTestCase):
    """Issue 13: Glance images, as Glance's API describes them."""

    def add_glance(self, data=None, snap='snap', **fields):
        glance_id = uuidutils.generate_uuid()
        self.cluster.add_image(GLANCE, glance_id,
                               self.content if data is None else data,
                               snap=snap)
        self.glance_api.add(glance_id, **fields)
        return glance_id

    def test_visibility_against_the_node_project(self):
        cases = [
            ({'visibility': 'public'}, {'p1': True, 'p2': True, None: True}),
            ({'visibility': 'community'},
             {'p1': True, 'p2': True, None: True}),
            ({'visibility': 'private'},
             {'p1': True, 'p2': False, None: False}),
            ({'visibility': 'shared'},
             {'p1': True, 'p2': True, 'p3': False, 'p4': False,
              None: False})]
        for fields, expect in cases:
            glance_id = self.add_glance(**fields)
            self.glance_api.members[glance_id] = {'p2': 'accepted',
                                                  'p3': 'pending',
                                                  'p4': 'rejected'}
            for project, ok in expect.items():
                if ok:
                    src = self.library.resolve_source(glance_id, project)
                    self.assertEqual('glance', src.kind)
                    continue
                e = self.assertRaises(exception.ImageNotVisible,
                                      self.library.resolve_source,
                                      glance_id, project)
                self.assertNotIn('p1', str(e))  # the owner is not named
            self.library.resolve_source(glance_id, layout.ANY_PROJECT)

    def test_unusable_images_refused_naming_why(self):
        for fields, reason in [
                ({'status': 'queued'}, 'status is queued'),
                ({'disk_format': 'iso'}, 'disk format is iso'),
                ({'disk_format': 'ploop'}, 'disk format is ploop'),
                ({'container_format': 'ovf'}, 'container format is ovf'),
                ({'direct_url': None}, 'not in Ceph'),
                ({'direct_url': 'file:///var/lib/glance/x'}, 'not in Ceph'),
                ({'direct_url': 'rbd://f/other/x/snap'}, 'other/x@snap')]:
            glance_id = self.add_glance(**fields)
            e = self.assertRaises(exception.GlanceImageUnusable,
                                  self.library.resolve_source, glance_id)
            self.assertIn(reason, str(e))
            self.assertRaises(exception.GlanceImageUnusable,
                              self.library.clone_for_node, NODE, glance_id)
        self.assertNotIn('node-' + NODE, self.cluster.names(POOL))

    def test_glance_unreachable_is_a_glance_error(self):
        glance_id = self.add_glance()
        self.glance_api.down = True
        e = self.assertRaises(exception.GlanceError,
                              self.library.resolve_source, glance_id)
        self.assertIn('Glance is down', str(e))

    def test_a_reply_that_is_no_image_is_an_error_not_not_found(self):
        glance_id = self.add_glance(disk_format='vmdk')
        self._fake_qemu_img(_data(units.Mi, 'garbled'))
        self.library.clone_for_node(NODE, glance_id)
        self.library.remove_node_disk(NODE)
        self.config(publish_images=True, group='glance')
        img = self.import_raw()
        self.glance_api.garbled = True
        for ref in (glance_id, img.glance_id):
            e = self.assertRaises(exception.GlanceError,
                                  self.library.resolve_source, ref)
            self.assertIn('HTTP 200 without an image', str(e))
        self.assertRaises(exception.GlanceError,
                          self.library.sweep_glance_cache)
        # Nothing dropped, nothing unpublished.
        self.assertEqual([glance_id], self.library.list_glance_cache())
        self.assertEqual(img.glance_id, self.library.get('ubuntu').glance_id)

    def test_raw_is_cloned_from_glance_snapshot(self):
        glance_id = self.add_glance(visibility='public')
        disk = self.library.clone_for_node(NODE, glance_id, project='p9')
        self.assertEqual('%s/%s@snap' % (GLANCE, glance_id), disk.parent)
        self.assertEqual(0, self.cluster.count('write'))

    def _fake_qemu_img(self, raw):
        """qemu-img on the fake cluster.

        info and check describe a qcow2 of ``raw``'s size; convert writes
        ``raw`` into the target.
        """
        calls = []

        def execute(*cmd, **kwargs):
            calls.append(cmd)
            if cmd[1] == 'info':
                return json.dumps({'format': 'qcow2',
                                   'virtual-size': len(raw)}), ''
            if cmd[1] == 'check':
                return json.dumps({'check-errors': 0}), ''
            assert cmd[1] == 'convert', cmd
            pool, name = cmd[-1].split(':')[1].split('/')
            self.cluster.write(self.cluster.image(pool, name), 0, raw)
            return '', ''
        self.useFixture(fixtures.MockPatchObject(
            processutils, 'execute', side_effect=execute))
        return calls

    def qcow2_bytes(self, raw, *options):
        """A real qcow2 (qemu-img) of ``raw``.

        With ``options``: ``qemu-img create``'s, of ``raw``'s size, no data.
        """
        if options:
            path = os.path.join(self.tmp, 'made.qcow2')
            _real_execute('qemu-img', 'create', '-q', '-f', 'qcow2',
                          *options, path, str(len(raw)),
                          cwd=self.tmp)
        else:
            path = self.make_qcow2(raw)
        with open(path, 'rb') as f:
            data = f.read()
        os.unlink(path)
        return data

    def test_qcow2_converted_once_then_cloned_from_the_cache(self):
        raw = _data(3 * units.Mi, 'raw')
        glance_id = self.add_glance(data=self.qcow2_bytes(raw),
                                    disk_format='qcow2',
                                    visibility='public')
        calls = self._fake_qemu_img(raw)
        src = self.library.resolve_source(glance_id, 'p2')
        self.assertEqual('glance-convert', src.kind)
        self.assertEqual([], calls)  # validate converts nothing
        reads = self.cluster.count('read')
        disk = self.library.clone_for_node(NODE, glance_id, project='p2')
        cache = 'glance-cache-' + glance_id
        self.assertEqual('%s/%s@golden' % (POOL, cache), disk.parent)
        self.assertEqual(len(raw), disk.size)
        self.assertEqual(raw, self.cluster.content(POOL, disk.rbd_name))
        # The qcow2 header was read through the library's own connection
        # (no qemu-img info); check beside convert (either may start
        # first); convert into the fresh image, zeros not written.
        self.assertEqual(reads + 1, self.cluster.count('read'))
        self.assertEqual(['check', 'convert'],
                         sorted(c[1] for c in calls))
        convert = next(c for c in calls if c[1] == 'convert')
        self.assertIn('rbd:%s/%s@snap:id=bmi' % (GLANCE, glance_id),
                      convert[-2])
        meta = self.cluster.image(POOL, cache).metadata
        self.assertEqual((glance_id, 'sha512:' + 'ab' * 64, 'qcow2'),
                         (meta['bmi.glance.id'], meta['bmi.glance.key'],
                          meta['bmi.glance.format']))
        # The second deploy clones the cache: no qemu-img at all.
        self.assertEqual('glance-cache',
                         self.library.resolve_source(glance_id).kind)
        disk2 = self.library.clone_for_node(NODE2, glance_id)
        self.assertEqual(disk.parent, disk2.parent)
        self.assertEqual(2, len(calls))
        # Not a golden image: not listed.
        self.assertEqual([], self.library.list())
        self.assertEqual([glance_id], self.library.list_glance_cache())

    def test_copy_is_usable_only_once_sealed_key_last(self):
        raw = _data(units.Mi, 'seal')
        glance_id = self.add_glance(data=self.qcow2_bytes(raw),
                                    disk_format='qcow2')
        cache = 'glance-cache-' + glance_id
        self._fake_qemu_img(raw)
        self.library.clone_for_node(NODE, glance_id)
        # Written under its final name (no rename); then sealed: the
        # protected snapshot, then the metadata, the key last.
        ops = [op for op, name in self.cluster.calls
               if name == cache and op in ('create_snap', 'protect_snap',
                                           'metadata_set', 'rename')]
        self.assertEqual(['create_snap', 'protect_snap'] + [
            'metadata_set'] * 3, ops)
        self.assertEqual(0, self.cluster.count('rename'))
        self.assertEqual('bmi.glance.key', list(
            self.cluster.image(POOL, cache).metadata)[-1])

    def test_leftovers_are_never_cloned_and_are_converted_again(self):
        raw = _data(units.Mi, 'left')
        glance_id = self.add_glance(data=self.qcow2_bytes(raw),
                                    disk_format='qcow2')
        cache = 'glance-cache-' + glance_id
        key = 'sha512:' + 'ab' * 64
        # An interrupted conversion (no snapshot, no key), one that was
        # snapshotted but not keyed, one of an older hash.
        for snap, meta in [(None, {}), ('golden', {}),
                           ('golden', {'bmi.glance.key': 'sha512:old'}),
                           (None, {'bmi.glance.key': key})]:
            self.cluster.add_image(POOL, cache, b'partial', size=units.Mi,
                                   snap=snap, metadata=meta)
            self.assertEqual('glance-convert', self.library.resolve_source(
                glance_id).kind)
            calls = self._fake_qemu_img(raw)
            disk = self.library.clone_for_node(NODE, glance_id)
            self.assertEqual('%s/%s@golden' % (POOL, cache), disk.parent)
            self.assertEqual(raw, self.cluster.content(POOL, disk.rbd_name))
            self.assertIn('convert', [c[1] for c in calls])
            self.library.remove_node_disk(NODE)
            del self.cluster.pools[POOL][cache]

    def test_copy_held_open_until_sealed(self):
        """Another remover cannot swap the copy while qemu-img fills it."""
        raw = _data(units.Mi, 'held')
        glance_id = self.add_glance(data=self.qcow2_bytes(raw),
                                    disk_format='qcow2')
        cache = 'glance-cache-' + glance_id
        calls = self._fake_qemu_img(raw)
        fake = processutils.execute.side_effect
        refused = []

        def execute(*cmd, **kwargs):
            out = fake(*cmd, **kwargs)
            if cmd[1] == 'convert':
                # Another conductor, whose lock view differs, removes the
                # copy and makes an empty one of its name.
                other = rados.Rados(rados_id='bmi')
                other.connect()
                try:
                    ioctx = other.open_ioctx(POOL)
                    rbd.RBD().remove(ioctx, cache)
                    rbd.RBD().create(ioctx, cache, len(raw))
                except rbd.ImageBusy:
                    refused.append(cache)
                finally:
                    other.shutdown()
            return out
        processutils.execute.side_effect = execute
        disk = self.library.clone_for_node(NODE, glance_id)
        self.assertEqual([cache], refused)
        self.assertIn('convert', [c[1] for c in calls])
        self.assertEqual(raw, self.cluster.content(POOL, disk.rbd_name))
        self.assertEqual(raw, self.cluster.content(POOL, cache, 'golden'))

    def test_copy_not_dropped_under_a_conversion(self):
        raw = _data(units.Mi, 'drop')
        glance_id = self.add_glance(disk_format='vmdk')
        self._fake_qemu_img(raw)
        self.library.clone_for_node(NODE, glance_id)
        self.library.remove_node_disk(NODE)
        del self.glance_api.images[glance_id]
        # A conversion of that id holds its lock (another deploy).
        with locks.lock('glance-cache-' + glance_id):
            self.assertRaises(exception.ImageNotFound,
                              self.library.resolve_source, glance_id)
            self.assertEqual([], self.library.sweep_glance_cache())
            self.assertEqual([glance_id], self.library.list_glance_cache())
        self.assertEqual([glance_id], self.library.sweep_glance_cache())

    def test_failed_sealing_leaves_nothing(self):
        raw = _data(units.Mi, 'fail')
        glance_id = self.add_glance(data=self.qcow2_bytes(raw),
                                    disk_format='qcow2')
        for op, skip in [('create_snap', 0), ('protect_snap', 0),
                         ('metadata_set', 0), ('metadata_set', 2)]:
            self._fake_qemu_img(raw)
            self.cluster.inject(op, rbd.IOError, skip=skip,
                                image='glance-cache-' + glance_id)
            self.assertRaises(exception.CephError,
                              self.library.clone_for_node, NODE, glance_id)
            self.assertEqual([], [n for n in self.cluster.names(POOL)
                                  if n.startswith('glance-cache')
                                  or n.startswith('node-')], op)

    def test_unsafe_qcow2_refused_before_qemu_img_runs(self):
        base = os.path.join(self.tmp, 'base.qcow2')
        _real_execute('qemu-img', 'create', '-q', '-f', 'qcow2', base, '1M')
        raw = bytes(units.Mi)
        good = self.qcow2_bytes(raw)
        for data, reason in [
                (self.qcow2_bytes(raw, '-b', base, '-F', 'qcow2'),
                 'backing or data file'),
                (self.qcow2_bytes(raw, '-o', 'data_file=data.raw'),
                 'backing or data file'),
                # An incompatible feature the inspector does not know.
                (self.qcow2_bytes(raw, '-o', 'extended_l2=on'),
                 'its header is unsafe'),
                (good[:100], 'not a qcow2 image'),
                (_data(units.Mi, 'raw'), 'not a qcow2 image')]:
            glance_id = self.add_glance(data=data, disk_format='qcow2')
            execute = self.useFixture(fixtures.MockPatchObject(
                processutils, 'execute')).mock
            e = self.assertRaises(exception.ImageFormatError,
                                  self.library.clone_for_node, NODE,
                                  glance_id)
            self.assertIn(reason, str(e))
            self.assertIn('%s/%s@snap' % (GLANCE, glance_id), str(e))
            self.assertEqual([], execute.call_args_list)
            self.assertEqual([], [n for n in self.cluster.names(POOL)
                                  if n.startswith('glance-cache')
                                  or n.startswith('node-')])

    def test_other_formats_ask_qemu_img_info_first(self):
        for info in [
                {'format': 'vmdk', 'virtual-size': units.Mi,
                 'backing-filename': '/etc/shadow'},
                # A descriptor whose extent is a file of this host.
                {'format': 'vmdk', 'virtual-size': units.Mi,
                 'format-specific': {'type': 'vmdk', 'data': {
                     'create-type': 'monolithicFlat', 'extents': [
                         {'filename': '/etc/shadow', 'format': 'FLAT'}]}}}]:
            glance_id = self.add_glance(disk_format='vmdk')
            execute = self.useFixture(fixtures.MockPatchObject(
                processutils, 'execute',
                return_value=(json.dumps(info), ''))).mock
            e = self.assertRaises(exception.ImageFormatError,
                                  self.library.clone_for_node, NODE,
                                  glance_id)
            self.assertIn('backing or data file', str(e))
            self.assertEqual(1, execute.call_count)
            self.assertEqual(
                ('qemu-img', 'info', '--output=json', '-f', 'vmdk'),
                execute.call_args[0][:5])
            self.assertEqual([], [n for n in self.cluster.names(POOL)
                                  if n.startswith('glance-cache')
                                  or n.startswith('node-')])

    def test_qcow2_failing_check_beside_convert_leaves_no_cache(self):
        raw = _data(units.Mi, 'bad')
        glance_id = self.add_glance(data=self.qcow2_bytes(raw),
                                    disk_format='qcow2')
        calls = self._fake_qemu_img(raw)
        fake = processutils.execute.side_effect

        def execute(*cmd, **kwargs):
            if cmd[1] == 'check':
                calls.append(cmd)
                return json.dumps({'corruptions': 2}), ''
            return fake(*cmd, **kwargs)
        processutils.execute.side_effect = execute
        e = self.assertRaises(exception.ImageFormatError,
                              self.library.clone_for_node, NODE, glance_id)
        self.assertIn('qemu-img check found 2 error(s)', str(e))
        self.assertIn('convert', [c[1] for c in calls])
        self.assertEqual([], [n for n in self.cluster.names(POOL)
                              if n.startswith('glance-cache')
                              or n.startswith('node-')])

    def test_cache_dropped_when_glance_deletes_the_image(self):
        raw = _data(units.Mi, 'gone')
        glance_id = self.add_glance(disk_format='vmdk')
        self._fake_qemu_img(raw)
        self.library.clone_for_node(NODE, glance_id)
        del self.glance_api.images[glance_id]
        # Still cloned by NODE: kept, at lookup and by the sweep.
        self.assertRaises(exception.ImageNotFound,
                          self.library.resolve_source, glance_id)
        self.assertEqual([], self.library.sweep_glance_cache())
        self.assertEqual([glance_id], self.library.list_glance_cache())
        self.library.remove_node_disk(NODE)
        self.assertEqual([glance_id], self.library.sweep_glance_cache())
        self.assertEqual([], self.library.list_glance_cache())
        # And at lookup, when nothing clones it.
        glance_id = self.add_glance(disk_format='vdi')
        self.library.clone_for_node(NODE, glance_id)
        self.library.remove_node_disk(NODE)
        del self.glance_api.images[glance_id]
        self.assertRaises(exception.ImageNotFound,
                          self.library.clone_for_node, NODE, glance_id)
        self.assertEqual([], self.library.list_glance_cache())


class _NodeDiskTestCase(ImagesTestCase):
    """A golden image 'ubuntu' and NODE's clone of it (self.clone)."""

    def setUp(self):
        super().setUp()
        self.img = self.import_raw()
        self.library.clone_for_node(NODE, 'ubuntu')
        self.clone = 'node-' + NODE


class FaultsTestCase(_NodeDiskTestCase):
    """Issue 12: stale watches, the RBD trash, full pools."""

    def test_stale_watcher_is_blocklisted_and_the_disk_removed(self):
        self.cluster.stale_watch(POOL, self.clone, '127.0.0.1:0/42')
        self.config(blocklist_expiry=900, group='ceph')
        trashed = self.library.remove_node_disk(NODE, stale_watch=True)
        self.assertEqual([], trashed)
        self.assertEqual({'127.0.0.1:0/42': 900.0}, self.cluster.blocklist)
        self.assertEqual([self.img.rbd_name], self.cluster.names(POOL))

    def test_stale_watcher_without_stale_watch_is_busy(self):
        self.cluster.stale_watch(POOL, self.clone)
        self.assertRaises(exception.ImageBusy,
                          self.library.remove_node_disk, NODE)
        self.assertEqual({}, self.cluster.blocklist)

    def test_still_busy_goes_to_the_trash_then_the_sweep(self):
        self.cluster.watch(POOL, self.clone)
        self.cluster.inject('mon_command', rados.Error, times=2)
        trashed = self.library.remove_node_disk(NODE, stale_watch=True)
        self.assertEqual([self.clone], trashed)
        # The name is free: a new deploy gets a fresh clone.
        self.assertNotIn(self.clone, self.cluster.names(POOL))
        self.assertEqual(1, len(self.cluster.trash[POOL]))
        # Still open: the sweep blocklists (fails: injected) and leaves it.
        removed, left = self.library.sweep_removed_disks()
        self.assertEqual(([], [self.clone]), (removed, left))
        # The watcher is gone now.
        self.cluster.trash[POOL][next(iter(self.cluster.trash[POOL]))] \
            .watchers = 0
        self.assertEqual(([self.clone], []),
                         self.library.sweep_removed_disks())
        self.assertEqual({}, self.cluster.trash[POOL])
        self.assertEqual(0, self.library.get('ubuntu').clones)

    def test_sweep_blocklists_stale_watchers_of_trashed_disks(self):
        self.config(blocklist_stale_watchers=False, group='ceph')
        self.cluster.stale_watch(POOL, self.clone, '127.0.0.1:0/7')
        self.assertEqual([self.clone], self.library.remove_node_disk(
            NODE, stale_watch=True))
        self.assertEqual(([], [self.clone]),
                         self.library.sweep_removed_disks())
        self.config(blocklist_stale_watchers=True, group='ceph')
        self.assertEqual(([self.clone], []),
                         self.library.sweep_removed_disks())
        self.assertIn('127.0.0.1:0/7', self.cluster.blocklist)

    def test_sweep_leaves_foreign_and_deferred_entries(self):
        self.cluster.add_image(POOL, 'someone-else', b'x' * 512)
        client = rados.Rados(rados_id='bmi')
        client.connect()
        self.addCleanup(client.shutdown)
        ioctx = client.open_ioctx(POOL)
        rbd.RBD().trash_move(ioctx, 'someone-else')
        rbd.RBD().trash_move(ioctx, self.clone, delay=3600)
        self.assertEqual(([], []), self.library.sweep_removed_disks())
        self.assertEqual(2, len(self.cluster.trash[POOL]))

    def test_capacity_ok(self):
        self.library.check_capacity()

    def test_capacity_quota_near_full(self):
        self.config(pool_full_ratio=0.9, group='ceph')
        self.cluster.quotas[POOL] = {'quota_max_bytes': 1000,
                                     'current_num_bytes': 899}
        self.library.check_capacity()
        self.cluster.quotas[POOL]['current_num_bytes'] = 900
        e = self.assertRaises(exception.CephPoolFull,
                              self.library.check_capacity)
        self.assertIn('Ceph pool %s is full (quota' % POOL, str(e))
        self.assertIn('900 of its quota of 1000 bytes', str(e))

    def test_capacity_quota_objects(self):
        self.cluster.quotas[POOL] = {'quota_max_objects': 2,
                                     'current_num_objects': 5}
        e = self.assertRaises(exception.CephPoolFull,
                              self.library.check_capacity)
        self.assertIn('quota of 2 objects', str(e))

    def test_capacity_pool_flags(self):
        for flag in ('full_quota', 'full', 'nearfull'):
            self.cluster.pool_flags[POOL] = {flag}
            e = self.assertRaises(exception.CephPoolFull,
                                  self.library.check_capacity)
            self.assertIn('flags it %s' % flag, str(e))

    def test_capacity_no_space(self):
        self.cluster.max_avail[POOL] = 0
        self.assertRaises(exception.CephPoolFull,
                          self.library.check_capacity)

    def test_capacity_health_err(self):
        self.cluster.health = {'status': 'HEALTH_ERR', 'checks': {
            'OSD_FULL': {'severity': 'HEALTH_ERR',
                         'summary': {'message': '1 full osd(s)'}},
            'MON_DISK_LOW': {'severity': 'HEALTH_WARN',
                             'summary': {'message': 'low'}}}}
        e = self.assertRaises(exception.CephUnhealthy,
                              self.library.check_capacity)
        self.assertEqual('The Ceph cluster is HEALTH_ERR: OSD_FULL: 1 full '
                         'osd(s)', str(e))

    def test_health_warn_is_fine(self):
        self.cluster.health = {'status': 'HEALTH_WARN', 'checks': {}}
        self.library.check_capacity()

    def test_quota_errors_say_quota(self):
        self.cluster.inject('clone', rbd.DiskQuotaExceeded)
        e = self.assertRaises(exception.CephPoolFull,
                              self.library.clone_for_node, NODE2, 'ubuntu')
        self.assertIn('quota', str(e))
        self.cluster.inject('clone', rbd.NoSpace)
        self.assertRaises(exception.CephPoolFull,
                          self.library.clone_for_node, NODE2, 'ubuntu')

    def test_timeout_in_a_full_pool_is_not_retried(self):
        self.config(connect_retries=3, group='ceph')
        self.cluster.pool_flags[POOL] = {'full_quota'}
        self.cluster.inject('clone', rbd.Timeout, times=4)
        before = self.cluster.count('clone')
        e = self.assertRaises(exception.CephPoolFull,
                              self.library.clone_for_node, NODE2, 'ubuntu')
        self.assertIn('full_quota', str(e))
        self.assertEqual(before + 1, self.cluster.count('clone'))

    def test_timeout_elsewhere_is_retried(self):
        self.cluster.inject('clone', rbd.Timeout, times=1)
        before = self.cluster.count('clone')
        self.library.clone_for_node(NODE2, 'ubuntu')
        self.assertEqual(before + 2, self.cluster.count('clone'))


class Killed(BaseException):
    """The process dies here: no except clause and no finally runs."""


class UnsealedTestCase(_NodeDiskTestCase):
    """A conductor or bmi-manage killed in an import, copy or snapshot."""

    def setUp(self):
        super().setUp()
        self.disk = self.cluster.image(POOL, self.clone)

    def later(self, seconds=3600):
        return rbd_utils.utcnow() + datetime.timedelta(seconds=seconds)

    def killed_snapshot(self):
        """snapshot_node killed during the flatten: its leftovers."""
        # (A dead process runs no finally either: its cleanup fails.)
        self.cluster.inject('unprotect_snap', rbd.IOError)
        with mock.patch.object(rbd_utils, 'undo'), \
                mock.patch.object(rbd.Image, 'flatten', side_effect=Killed):
            self.assertRaises(Killed, self.library.snapshot_node, NODE,
                              'saved')
        half = self.library.get('saved')
        self.assertEqual((False, [half.rbd_name]), (
            'golden' in self.golden(half).snaps,
            [c.name for s in self.disk.snaps.values() for c in s.children]))
        return half

    def test_node_snapshot_swept_after_the_grace_only(self):
        half = self.killed_snapshot()
        self.assertRaises(exception.ImageExists, self.library.snapshot_node,
                          NODE, 'saved')
        self.assertEqual([], self.library.sweep_unsealed())
        self.assertEqual([], self.library.sweep_unsealed(self.later(3590)))
        self.assertIn(half.rbd_name, self.golden_names())
        self.config(unsealed_grace=600, group='ceph')
        self.assertEqual([half.uuid],
                         self.library.sweep_unsealed(self.later(610)))
        self.assertEqual([self.img.rbd_name], self.golden_names())
        # The node's temporary snapshot went with it, and the name is free.
        self.assertEqual({}, self.disk.snaps)
        new = self.library.snapshot_node(NODE, 'saved')
        self.assertIn('golden', self.golden(new).snaps)
        self.library.remove_node_disk(NODE)
        self.assertEqual([], self.library.sweep_unsealed(self.later(10**6)))

    def test_a_dead_snapshots_temporary_snapshot_goes_at_the_next(self):
        # Killed before its clone (or after its flatten): no unsealed
        # image, so sweep_unsealed never finds its temporary snapshot.
        self.cluster.inject('unprotect_snap', rbd.IOError)
        with mock.patch.object(rbd.RBD, 'clone', side_effect=Killed):
            self.assertRaises(Killed, self.library.snapshot_node, NODE,
                              'saved')
        [left] = self.disk.snaps
        self.assertTrue(left.startswith('bmi-snap-'))
        self.assertEqual([], self.library.sweep_unsealed(self.later()))
        self.assertEqual([left], list(self.disk.snaps))
        self.library.snapshot_node(NODE, 'saved')
        self.assertEqual({}, self.disk.snaps)

    def test_a_temporary_snapshot_under_an_unsealed_image_stays(self):
        half = self.killed_snapshot()
        [left] = self.disk.snaps
        self.library.snapshot_node(NODE, 'other')
        self.assertEqual([left], list(self.disk.snaps))
        self.assertEqual([half.uuid],
                         self.library.sweep_unsealed(self.later()))
        self.assertEqual({}, self.disk.snaps)

    def test_not_while_watched(self):
        half = self.killed_snapshot()
        self.cluster.watch(POOL, half.rbd_name)  # alive, or dead < 30 s
        self.assertEqual([], self.library.sweep_unsealed(self.later()))
        self.golden(half).watchers = 0
        self.assertEqual([half.uuid],
                         self.library.sweep_unsealed(self.later()))

    def test_sealed_meanwhile_is_checked_again_under_the_lock(self):
        half = self.killed_snapshot()
        real = self.library._unsealed
        seen = []

        def unsealed(ioctx, rbd_name, now):
            found = real(ioctx, rbd_name, now)
            if rbd_name == half.rbd_name and not seen:
                seen.append(found)
                model = self.golden(half)
                model.snaps['golden'] = fake_rbd._Snap(model)
                model.snaps['golden'].protected = True
            return found
        with mock.patch.object(self.library, '_unsealed', unsealed):
            self.assertEqual([], self.library.sweep_unsealed(self.later()))
        self.assertTrue(seen[0])
        self.assertTrue(self.golden(half).snaps['golden'].protected)

    def test_sealed_images_never_touched(self):
        saved = self.library.snapshot_node(NODE, 'saved')
        copy = self.library.copy('ubuntu', 'copied')
        self.cluster.add_image(POOL, 'glance-cache-x', b'x' * 512)
        self.cluster.add_image(POOL, 'someone-elses', b'x' * 512)
        before = self.cluster.names(POOL)
        self.assertEqual([], self.library.sweep_unsealed(self.later(10**8)))
        self.assertEqual(before, self.cluster.names(POOL))
        for img in (self.img, saved, copy):
            self.assertTrue(self.golden(img).snaps['golden'].protected)

    def test_live_copy_and_import_are_not_taken_for_dead(self):
        """Held open until sealed: only the watch says they are alive."""
        self.config(unsealed_grace=60, group='ceph')
        swept = []

        def progress(done, total):
            swept.extend(self.library.sweep_unsealed(self.later(10**6)))
        self.library.copy('ubuntu', 'copied', progress=progress)
        self.library.snapshot_node(NODE, 'saved', progress=progress)
        # A qcow2's checksum reads the converted image read-only.
        self._fake_qemu_img_convert()
        self.library.import_file(self.make_qcow2(self.content), 'centos',
                                 progress=progress)
        self.assertEqual([], swept)
        for name in ('copied', 'saved', 'centos'):
            self.assertIn('golden', self.golden(self.library.get(name)).snaps)

    def test_killed_imports(self):
        with mock.patch.object(rbd_utils, 'undo'), mock.patch.object(
                transfer, 'write_raw', side_effect=Killed):
            self.assertRaises(Killed, self.import_raw, 'file')
        glance_id = uuidutils.generate_uuid()
        source = self.cluster.add_image(GLANCE, glance_id, self.content)
        with mock.patch.object(rbd_utils, 'undo'), mock.patch.object(
                self.library, '_seal', side_effect=Killed), \
                mock.patch.object(self.library, '_drop_ref_snapshot'):
            self.assertRaises(Killed, self.library.import_rbd,
                              '%s/%s' % (GLANCE, glance_id), 'ref')
        ref_snap = [s for s in source.snaps if s.startswith('bmi-ref-')]
        self.assertEqual(1, len(ref_snap))
        halves = [self.library.get(n) for n in ('file', 'ref')]
        self.assertEqual(sorted(i.uuid for i in halves), sorted(
            self.library.sweep_unsealed(self.later())))
        self.assertEqual([self.img.rbd_name], self.golden_names())
        self.assertEqual({}, source.snaps)  # its reference snapshot too
        self.import_raw('file')

    def test_unprotected_or_missing_snapshot_is_not_cloned(self):
        """Killed between create_snap and protect_snap (or in a delete)."""
        half = self.import_raw('half')
        model = self.golden(half)
        for state in ('unprotected', 'missing'):
            if state == 'missing':
                del model.snaps['golden']
            else:
                model.snaps['golden'].protected = False
            for ref in ('half', half.uuid):
                e = self.assertRaises(exception.ImageUnsealed,
                                      self.library.resolve_source, ref)
                self.assertIn('not protected', str(e))
                self.assertRaises(exception.ImageUnsealed,
                                  self.library.clone_for_node, NODE2, ref)
            self.assertNotIn('node-' + NODE2, self.cluster.names(POOL))
            self.assertFalse(self.library.get('half').sealed)
            if state == 'unprotected':
                # The sweep removes it, its snapshot first.
                self.assertEqual([half.uuid],
                                 self.library.sweep_unsealed(self.later()))
                self.assertNotIn(half.rbd_name, self.golden_names())
                half = self.import_raw('half')
                model = self.golden(half)
        self.assertEqual([half.uuid],
                         self.library.sweep_unsealed(self.later()))
        self.assertTrue(self.library.get('ubuntu').sealed)

    def test_unprotected_snapshot_a_clone_uses_is_kept(self):
        half = self.import_raw('half')
        self.golden(half).snaps['golden'].protected = False
        # Cloned in the window, before this fix refused it (clone v2).
        rbd.RBD().clone(self.cluster.clients[0].open_ioctx(POOL),
                        half.rbd_name, 'golden',
                        self.cluster.clients[0].open_ioctx(POOL),
                        'node-' + NODE2)
        self.assertEqual([], self.library.sweep_unsealed(self.later()))
        self.assertIn(half.rbd_name, self.golden_names())

    def test_failure_to_remove_is_retried(self):
        half = self.killed_snapshot()
        self.cluster.inject('remove', rbd.IOError, image=half.rbd_name)
        self.assertEqual([], self.library.sweep_unsealed(self.later()))
        self.assertEqual([half.uuid],
                         self.library.sweep_unsealed(self.later()))

    def test_undeploy_before_the_sweep(self):
        """The node's disk waits in the trash for the unsealed image."""
        for clone_format in (1, 2):
            self.cluster.clone_format = clone_format
            half = self.killed_snapshot()
            temp = next(iter(self.disk.snaps))
            # Without stale_watch (no teardown): refused, nothing lost.
            self.assertRaises(exception.ImageBusy,
                              self.library.remove_node_disk, NODE)
            self.assertTrue(self.disk.snaps[temp].protected)
            self.assertEqual([self.clone], self.library.remove_node_disk(
                NODE, stale_watch=True))
            with mock.patch.object(rbd_utils.LOG, 'warning') as warning:
                self.assertEqual(([], [self.clone]),
                                 self.library.sweep_removed_disks())
            self.assertIn('snapshot %s is still used by %s/%s'
                          % (temp, POOL, half.rbd_name),
                          warning.call_args[0][0] % warning.call_args[0][1])
            # A new deploy of the node gets a fresh clone meanwhile.
            self.library.clone_for_node(NODE, 'ubuntu')
            self.assertEqual([half.uuid],
                             self.library.sweep_unsealed(self.later()))
            self.assertEqual(([self.clone], []),
                             self.library.sweep_removed_disks())
            self.assertEqual({}, self.cluster.trash[POOL])
            # The new clone is the golden image's only one.
            self.assertEqual(1, self.library.get('ubuntu').clones)
            self.disk = self.cluster.image(POOL, self.clone)


class TrashWithSnapshotsTestCase(_NodeDiskTestCase):
    """librbd refuses to remove a trashed image that has snapshots."""

    def setUp(self):
        super().setUp()
        client = rados.Rados(rados_id='bmi')
        client.connect()
        self.addCleanup(client.shutdown)
        self.ioctx = client.open_ioctx(POOL)

    def trash_with(self, snaps, protect=True, child=None):
        with rbd.Image(self.ioctx, self.clone) as image:
            for snap in snaps:
                image.create_snap(snap)
                if protect:
                    image.protect_snap(snap)
        if child:
            rbd.RBD().clone(self.ioctx, self.clone, snaps[0], self.ioctx,
                            child, features=rbd_utils.features())
        rbd.RBD().trash_move(self.ioctx, self.clone)
        return next(iter(self.cluster.trash[POOL].values()))

    def test_fake_refuses_as_librbd(self):
        model = self.trash_with(['s'], protect=False)
        self.assertRaises(rbd.ImageHasSnapshots, rbd.RBD().trash_remove,
                          self.ioctx, model.trash_id)

    def test_snapshots_purged_then_removed(self):
        self.trash_with(['a', 'b'], protect=True)
        self.assertEqual(([self.clone], []),
                         self.library.sweep_removed_disks())
        self.assertEqual({}, self.cluster.trash[POOL])
        self.assertEqual(0, self.library.get('ubuntu').clones)

    def test_kept_while_a_clone_uses_a_snapshot(self):
        model = self.trash_with(['bmi-snap-x'], child='child')
        for _ in range(2):
            self.assertEqual(([], [self.clone]),
                             self.library.sweep_removed_disks())
        self.assertTrue(model.snaps['bmi-snap-x'].protected)
        self.assertEqual(self.content, self.cluster.content(POOL, 'child'))
        rbd.RBD().remove(self.ioctx, 'child')
        self.assertEqual(([self.clone], []),
                         self.library.sweep_removed_disks())
        self.assertEqual({}, self.cluster.trash[POOL])

    def test_only_ours(self):
        self.cluster.add_image(POOL, 'foreign', b'x' * 512, snap='s')
        rbd.RBD().trash_move(self.ioctx, 'foreign')
        self.assertEqual(([], []), self.library.sweep_removed_disks())
        self.assertEqual(0, self.cluster.count('trash_remove'))
        self.assertIn('s', next(iter(self.cluster.trash[POOL].values()))
                      .snaps)

    def test_snapshot_trash_is_not_ours_to_name(self):
        """Clone v2: a removed snapshot a clone uses is listed, by UUID."""
        with rbd.Image(self.ioctx, self.clone) as image:
            image.create_snap('s')
        rbd.RBD().clone(self.ioctx, self.clone, 's', self.ioctx, 'child',
                        features=rbd_utils.features())
        with rbd.Image(self.ioctx, self.clone) as image:
            image.remove_snap('s')
            listed = list(image.list_snaps())
            self.assertEqual([rbd.RBD_SNAP_NAMESPACE_TYPE_TRASH],
                             [s['namespace'] for s in listed])
            self.assertEqual([], rbd_utils.snap_names(image))
        # The image waits in the trash until the clone goes, which takes
        # the trashed snapshot with it.
        self.assertEqual([self.clone], self.library.remove_node_disk(
            NODE, stale_watch=True))
        self.assertEqual(([], [self.clone]),
                         self.library.sweep_removed_disks())
        rbd.RBD().remove(self.ioctx, 'child')
        self.assertEqual(([self.clone], []),
                         self.library.sweep_removed_disks())


class PublishTestCase(ImagesTestCase):
    """Issue 13 item 3: golden images published to Glance, no copy."""

    def setUp(self):
        super().setUp()
        self.config(publish_images=True, group='glance')

    def record(self, img):
        return self.glance_api.images[img.glance_id]

    def test_import_published_at_its_snapshot(self):
        img = self.import_raw(project='p1', visibility='public')
        self.assertTrue(img.glance_id)
        rec = self.record(img)
        self.assertEqual(
            ('ubuntu', 'p1', 'public', 'raw', 'bare', 'active', img.uuid),
            (rec['name'], rec['owner'], rec['visibility'],
             rec['disk_format'], rec['container_format'], rec['status'],
             rec['bmi_image_id']))
        self.assertEqual('rbd://%s/%s/%s/golden' % (
            self.cluster.fsid, POOL, img.rbd_name), rec['direct_url'])
        self.assertEqual(img.glance_id, self.golden(img).metadata[
            'bmi.glance.published'])
        # The location was added by JSON patch, nothing uploaded.
        self.assertEqual(['POST', 'PATCH'], [
            c[0] for c in self.glance_api.calls if isinstance(c, tuple)])

    def test_off_by_default(self):
        self.config(publish_images=False, group='glance')
        img = self.import_raw()
        self.assertEqual('', img.glance_id)
        self.assertEqual({}, self.glance_api.images)

    def test_node_snapshot_and_copy_published(self):
        self.import_raw(project='p1')
        self.library.clone_for_node(NODE, 'ubuntu')
        snap = self.library.snapshot_node(NODE, 'saved', project='p2')
        copied = self.library.copy('ubuntu', 'copied')
        self.assertEqual(('saved', 'p2', 'private'), (
            self.record(snap)['name'], self.record(snap)['owner'],
            self.record(snap)['visibility']))
        self.assertEqual('copied', self.record(copied)['name'])
        self.assertEqual(3, len(self.glance_api.images))

    def test_deploys_through_its_glance_id(self):
        img = self.import_raw(project='p1')
        src = self.library.resolve_source(img.glance_id, project='p1')
        self.assertEqual(('golden', img.uuid, img.spec),
                         (src.kind, src.uuid, src.spec))
        disk = self.library.clone_for_node(NODE, img.glance_id,
                                           project='p1')
        self.assertEqual(img.spec, disk.parent)
        self.assertEqual({}, self.cluster.image(POOL, disk.rbd_name).blocks)
        # Glance's visibility rules: private to p1.
        self.assertRaises(exception.ImageNotVisible,
                          self.library.resolve_source, img.glance_id, 'p2')
        # Shared in Glance with p2, accepted: p2 may boot it.
        self.glance_api.images[img.glance_id]['visibility'] = 'shared'
        self.glance_api.members[img.glance_id] = {'p2': 'accepted'}
        self.assertEqual(img.uuid, self.library.resolve_source(
            img.glance_id, 'p2').uuid)

    def test_a_glance_image_pointing_into_the_pool_is_not_trusted(self):
        img = self.import_raw(project='p1', visibility='public')
        forged = uuidutils.generate_uuid()
        self.glance_api.add(forged, owner='p2', visibility='public',
                            direct_url=self.record(img)['direct_url'])
        e = self.assertRaises(exception.GlanceImageUnusable,
                              self.library.resolve_source, forged, 'p2')
        self.assertIn('not in a snapshot of [ceph] glance_pool', str(e))

    def test_delete_removes_bytes_then_record(self):
        img = self.import_raw()
        self.library.delete('ubuntu')
        self.assertEqual([], self.golden_names())
        self.assertEqual({}, self.glance_api.images)
        self.assertEqual(('DELETE', '/v2/images/%s' % img.glance_id),
                         self.glance_api.calls[-1])

    def test_delete_takes_a_publication_made_meanwhile_with_it(self):
        # delete read the image (unpublished), then the sweep published it
        # before the image went: its Glance record was left, named by no
        # golden image nor note, pointing at bytes gone.
        self.config(publish_images=False, group='glance')
        img = self.import_raw()
        found = self.library._find

        def find(client, ref, count_clones=True):
            seen = found(client, ref, count_clones)
            self.library._publish(client, seen)
            return seen
        self.useFixture(fixtures.MockPatchObject(
            self.library, '_find', side_effect=find))
        self.library.delete(img.uuid)
        self.assertEqual([], self.golden_names())
        self.assertEqual({}, self.glance_api.images)

    def test_delete_refused_while_cloned_keeps_the_record(self):
        img = self.import_raw()
        self.library.clone_for_node(NODE, 'ubuntu')
        self.assertRaises(exception.ImageInUse, self.library.delete,
                          'ubuntu')
        self.assertIn(img.glance_id, self.glance_api.images)

    def test_delete_when_glance_refuses_is_swept_later(self):
        img = self.import_raw()
        self.glance_api.refuse_delete = True
        self.library.delete('ubuntu')  # the golden image is gone
        self.assertEqual([], self.golden_names())
        self.assertIn(img.glance_id, self.glance_api.images)
        self.glance_api.refuse_delete = False
        self.assertEqual({'forgotten': [], 'deleted': [img.glance_id],
                          'published': [], 'left': []},
                         self.library.sweep_published())
        self.assertEqual({}, self.glance_api.images)
        self.assertEqual({}, self.cluster.pool_meta(POOL))  # the note too

    def test_records_bmi_did_not_write_are_never_deleted(self):
        """A Nova snapshot inherits bmi_image_id: it is the user's."""
        img = self.import_raw(project='p1')
        snap = uuidutils.generate_uuid()
        self.glance_api.add(snap, owner='p1', bmi_image_id=img.uuid)
        forged = self.forged(img)
        self.assertEqual(([], sorted([snap, forged])), (
            self.library.sweep_published()['deleted'],
            self.library.sweep_published()['left']))
        # Nor once the golden image is gone; bmi's own record goes.
        self.library.delete('ubuntu')
        result = self.library.sweep_published()
        self.assertEqual(([], sorted([snap, forged])),
                         (result['deleted'], result['left']))
        self.assertEqual(sorted([snap, forged]),
                         sorted(self.glance_api.images))

    def test_killed_delete_swept_with_its_record(self):
        """Killed between unprotect and remove_snap: the unsealed sweep."""
        img = self.import_raw()
        self.golden(img).snaps['golden'].protected = False
        self.assertRaises(exception.ImageUnsealed,
                          self.library.resolve_source, img.glance_id)
        self.glance_api.refuse_delete = True
        later = rbd_utils.utcnow() + datetime.timedelta(seconds=3600)
        self.assertEqual([img.uuid], self.library.sweep_unsealed(later))
        self.assertEqual([], self.golden_names())
        self.assertIn(img.glance_id, self.glance_api.images)
        self.glance_api.refuse_delete = False
        self.assertEqual([img.glance_id],
                         self.library.sweep_published()['deleted'])
        self.assertEqual(({}, {}), (self.glance_api.images,
                                    self.cluster.pool_meta(POOL)))

    def test_deleted_in_glance_forgotten_at_lookup(self):
        img = self.import_raw()
        del self.glance_api.images[img.glance_id]
        self.assertRaises(exception.ImageNotFound,
                          self.library.resolve_source, img.glance_id)
        again = self.library.get('ubuntu')
        self.assertEqual('', again.glance_id)  # the bytes stay bmi's
        self.assertEqual(self.content, self.cluster.content(
            POOL, img.rbd_name, 'golden'))

    def test_sweep_forgets_and_publishes_again(self):
        img = self.import_raw()
        del self.glance_api.images[img.glance_id]
        self.config(publish_images=False, group='glance')
        self.assertEqual({'forgotten': [img.uuid], 'deleted': [],
                          'published': [], 'left': []},
                         self.library.sweep_published())
        self.assertEqual('', self.library.get('ubuntu').glance_id)
        self.assertEqual(self.content, self.cluster.content(
            POOL, img.rbd_name, 'golden'))
        self.config(publish_images=True, group='glance')
        result = self.library.sweep_published()
        self.assertEqual([img.uuid], result['published'])
        self.assertEqual(img.uuid, self.record(
            self.library.get('ubuntu'))['bmi_image_id'])

    def test_sweep_does_not_publish_twice_what_was_published_meanwhile(self):
        # The sweep lists the golden images, then publishes those it saw
        # unpublished; a publication of one of them (a new image's, a
        # second sweep's) in between made a second Glance record, which
        # the image did not name: left in Glance for good.
        self.config(publish_images=False, group='glance')
        img = self.import_raw()
        self.config(publish_images=True, group='glance')
        listed = self.library._all_golden

        def all_golden(client, count_clones=True):
            found = listed(client, count_clones)
            self.library._publish(client, self.library.get(img.uuid))
            return found
        self.useFixture(fixtures.MockPatchObject(
            self.library, '_all_golden', side_effect=all_golden))
        self.library.sweep_published()
        own = self.library.get('ubuntu').glance_id
        self.assertEqual([own], list(self.glance_api.images))

    def test_the_id_is_bmi_s_and_recorded_before_glance_has_it(self):
        seen = []
        request = self.glance_api.request

        def spy(path, method, **kwargs):
            if method == 'POST':
                seen.append((kwargs['json']['id'], dict(
                    self.cluster.image(POOL, self.golden_names()[0])
                    .metadata).get('bmi.glance.published')))
            return request(path, method, **kwargs)
        self.glance_api.request = spy
        img = self.import_raw()
        self.assertEqual([(img.glance_id, img.glance_id)], seen)
        self.assertIn(img.glance_id, self.glance_api.images)

    def forged(self, img, owner='p2'):
        """A Glance user's own image that claims to publish ``img``."""
        forged = uuidutils.generate_uuid()
        self.glance_api.add(forged, owner=owner, visibility='private',
                            bmi_image_id=img.uuid,
                            direct_url='rbd://%s/%s/%s/golden' % (
                                self.cluster.fsid, POOL, img.rbd_name))
        return forged

    def test_sweep_never_adopts_a_record_it_did_not_make(self):
        """p2's own image naming p1's private golden image boots nothing."""
        self.config(publish_images=False, group='glance')
        img = self.import_raw(project='p1')
        forged = self.forged(img)
        result = self.library.sweep_published()
        for project in ('p2', layout.ANY_PROJECT):
            self.assertRaises(exception.GlanceImageUnusable,
                              self.library.resolve_source, forged, project)
            self.assertRaises(exception.GlanceImageUnusable,
                              self.library.clone_for_node, NODE, forged,
                              project=project)
        self.assertEqual('', self.library.get('ubuntu').glance_id)
        self.assertEqual([forged], result['left'])
        self.assertIn(forged, self.glance_api.images)  # not ours to delete
        # Published: bmi makes its own record; the forged one stays out.
        self.config(publish_images=True, group='glance')
        result = self.library.sweep_published()
        self.assertEqual(([img.uuid], [forged]),
                         (result['published'], result['left']))
        own = self.library.get('ubuntu').glance_id
        self.assertNotIn(own, (forged, ''))
        self.assertRaises(exception.GlanceImageUnusable,
                          self.library.resolve_source, forged, 'p2')

    def test_glance_owner_and_visibility_do_not_decide(self):
        img = self.import_raw(project='p1')
        rec = self.record(img)
        for fields in ({'visibility': 'community'},
                       {'visibility': 'public'},
                       {'owner': 'p2'},
                       {'owner': 'p2', 'visibility': 'shared'}):
            rec.update({'owner': 'p1', 'visibility': 'private'}, **fields)
            self.glance_api.members[img.glance_id] = {'p3': 'accepted'}
            for project in ('p2', 'p3', None):
                self.assertRaises(exception.ImageNotVisible,
                                  self.library.resolve_source,
                                  img.glance_id, project)
        # bmi's record decides: public golden, every project.
        rec.update(owner='p1', visibility='private')
        model = self.golden(img)
        model.metadata['bmi.visibility'] = 'public'
        self.assertEqual(img.uuid, self.library.resolve_source(
            img.glance_id, 'p2').uuid)

    def test_publication_failure_keeps_the_image(self):
        self.glance_api.refuse_location = True
        img = self.import_raw()
        self.assertEqual('', img.glance_id)
        self.assertEqual([img.rbd_name], self.golden_names())
        # The half-made record was removed.
        self.assertEqual({}, self.glance_api.images)

    def test_a_record_glance_kept_after_a_failure_is_swept_as_bmi_s(self):
        self.glance_api.refuse_location = True
        self.glance_api.refuse_delete = True
        img = self.import_raw()
        # Glance kept the queued record: the golden image keeps its id.
        self.assertEqual('queued', self.record(img)['status'])
        self.glance_api.refuse_location = False
        self.glance_api.refuse_delete = False
        result = self.library.sweep_published()
        self.assertEqual(([img.glance_id], [img.uuid], []), (
            result['deleted'], result['published'], result['left']))
        again = self.library.get('ubuntu')
        self.assertEqual(['active'], [
            r['status'] for r in self.glance_api.images.values()])
        self.assertEqual(again.uuid, self.record(again)['bmi_image_id'])

    def test_rename_renames_the_record(self):
        img = self.import_raw()
        self.library.rename('ubuntu', 'focal')
        self.assertEqual('focal', self.record(img)['name'])


def _blkid(test, data, name='scratch'):
    """blkid's {TYPE, LABEL} of ``data``, written to a file."""
    path = os.path.join(test.tmp, name)
    with open(path, 'wb') as f:
        f.write(data)
    out, _err = _real_execute('blkid', '-o', 'export', '-p', path)
    return dict(line.split('=', 1) for line in out.splitlines()
                if '=' in line)


class ScratchDiskTestCase(ImagesTestCase):
    """Ephemeral and swap disks: real mkfs/mkswap, the fake cluster."""

    META = {'bmi.deployment': 'dep-1', 'bmi.export.iqn': 'iqn.x:' + NODE}

    def setUp(self):
        super().setUp()
        self.config(state_path=self.tmp, group='bmi')
        self.img = self.import_raw()
        self.library.clone_for_node(NODE, 'ubuntu')

    def test_ephemeral_ext4_and_swap(self):
        eph, kept = self.library.ensure_node_scratch(
            NODE, 'ephemeral', 16 * units.Mi, 'ext4', self.META)
        self.assertFalse(kept)
        self.assertEqual('node-%s-ephemeral' % NODE, eph.rbd_name)
        swap, kept = self.library.ensure_node_scratch(
            NODE, 'swap', 8 * units.Mi, 'swap', self.META)
        self.assertFalse(kept)
        got = _blkid(self, self.cluster.content(POOL, eph.rbd_name))
        self.assertEqual(('ext4', 'ephemeral0'),
                         (got['TYPE'], got['LABEL']))
        got = _blkid(self, self.cluster.content(POOL, swap.rbd_name))
        self.assertEqual(('swap', 'swap1'), (got['TYPE'], got['LABEL']))
        model = self.cluster.image(POOL, eph.rbd_name)
        self.assertEqual(16 * units.Mi, model.size)
        self.assertEqual('ext4', model.metadata['bmi.format'])
        self.assertEqual('dep-1', model.metadata['bmi.deployment'])
        self.assertEqual('iqn.x:' + NODE, model.metadata['bmi.export.iqn'])
        disk = self.library.get_node_disk(NODE)
        self.assertEqual(eph.rbd_name, disk.ephemeral.rbd_name)
        self.assertEqual(swap.rbd_name, disk.swap.rbd_name)
        self.assertEqual({1: disk.spec, 3: disk.ephemeral.spec,
                          4: disk.swap.spec}, layout.target_luns(disk))
        # No temporary file is left behind.
        self.assertEqual([], [n for n in os.listdir(self.tmp)
                              if n.startswith('bmi-scratch-')])

    def test_vfat(self):
        eph, _kept = self.library.ensure_node_scratch(
            NODE, 'ephemeral', 16 * units.Mi, 'vfat', self.META)
        got = _blkid(self, self.cluster.content(POOL, eph.rbd_name))
        self.assertEqual('vfat', got['TYPE'])

    def _mark(self, rbd_name, data=b'marker'):
        with rbd.Image(self.cluster_ioctx(), rbd_name) as image:
            image.write(data, 8 * units.Mi)

    def cluster_ioctx(self):
        client = rados.Rados(rados_id='bmi')
        client.connect()
        self.addCleanup(client.shutdown)
        return client.open_ioctx(POOL)

    def _content_at(self, rbd_name, offset, length):
        return self.cluster.content(POOL, rbd_name)[offset:offset + length]

    def test_claimed_disk_is_kept_and_restamped(self):
        eph, _kept = self.library.ensure_node_scratch(
            NODE, 'ephemeral', 16 * units.Mi, 'ext4', self.META)
        self._mark(eph.rbd_name)
        new_meta = dict(self.META, **{'bmi.deployment': 'dep-2'})
        again, kept = self.library.ensure_node_scratch(
            NODE, 'ephemeral', 16 * units.Mi, 'ext4', new_meta,
            claim={'dep-2', 'dep-1'})
        self.assertTrue(kept)
        self.assertEqual(b'marker',
                         self._content_at(eph.rbd_name, 8 * units.Mi, 6))
        self.assertEqual('dep-2', self.cluster.image(
            POOL, eph.rbd_name).metadata['bmi.deployment'])

    def test_unclaimed_disk_is_replaced_blank(self):
        eph, _kept = self.library.ensure_node_scratch(
            NODE, 'ephemeral', 16 * units.Mi, 'ext4', self.META)
        self._mark(eph.rbd_name)
        new_meta = dict(self.META, **{'bmi.deployment': 'dep-2'})
        _again, kept = self.library.ensure_node_scratch(
            NODE, 'ephemeral', 16 * units.Mi, 'ext4', new_meta,
            claim={'dep-2'})
        self.assertFalse(kept)
        self.assertEqual(bytes(6),
                         self._content_at(eph.rbd_name, 8 * units.Mi, 6))
        self.assertEqual('ext4', _blkid(self, self.cluster.content(
            POOL, eph.rbd_name))['TYPE'])

    def test_keep_any_keeps_whatever_is_there(self):
        eph, _kept = self.library.ensure_node_scratch(
            NODE, 'ephemeral', 16 * units.Mi, 'ext4', {})
        self._mark(eph.rbd_name)
        _again, kept = self.library.ensure_node_scratch(
            NODE, 'ephemeral', 32 * units.Mi, 'xfs', self.META,
            keep_any=True)
        self.assertTrue(kept)
        self.assertEqual(b'marker',
                         self._content_at(eph.rbd_name, 8 * units.Mi, 6))

    def test_claimed_disk_of_another_size_is_refused_not_lost(self):
        eph, _kept = self.library.ensure_node_scratch(
            NODE, 'ephemeral', 16 * units.Mi, 'ext4', self.META)
        self._mark(eph.rbd_name)
        e = self.assertRaises(
            exception.ScratchDiskMismatch, self.library.ensure_node_scratch,
            NODE, 'ephemeral', 32 * units.Mi, 'ext4', self.META,
            claim={'dep-1'})
        self.assertIn('16 MiB of ext4, not 32 MiB of ext4', str(e))
        self.assertEqual(b'marker',
                         self._content_at(eph.rbd_name, 8 * units.Mi, 6))

    def test_failed_format_leaves_nothing(self):
        def fail(*argv, **kwargs):
            raise processutils.ProcessExecutionError(stderr='no space')
        self.useFixture(fixtures.MockPatchObject(processutils, 'execute',
                                                 side_effect=fail))
        e = self.assertRaises(
            exception.ScratchFormatError, self.library.ensure_node_scratch,
            NODE, 'ephemeral', 16 * units.Mi, 'ext4', self.META)
        self.assertIn('no space', str(e))
        self.assertNotIn('node-%s-ephemeral' % NODE,
                         self.cluster.names(POOL))

    def test_bad_input(self):
        for kind, size, fmt in (('ephemeral', 16 * units.Mi, 'ntfs'),
                                ('other', 16 * units.Mi, 'ext4'),
                                ('swap', 1000, 'swap'),
                                ('swap', 0, 'swap')):
            self.assertRaises(exception.InvalidInput,
                              self.library.ensure_node_scratch,
                              NODE, kind, size, fmt, self.META)
        self.assertEqual(sorted(['node-' + NODE, self.img.rbd_name]),
                         sorted(self.cluster.names(POOL)))

    def test_remove_node_disk_keeps_the_ephemeral_when_asked(self):
        eph, _ = self.library.ensure_node_scratch(
            NODE, 'ephemeral', 16 * units.Mi, 'ext4', self.META)
        swap, _ = self.library.ensure_node_scratch(
            NODE, 'swap', 8 * units.Mi, 'swap', self.META)
        self.library.remove_node_disk(NODE, keep_ephemeral=True)
        self.assertEqual(sorted([eph.rbd_name, self.img.rbd_name]),
                         sorted(self.cluster.names(POOL)))
        self.library.remove_node_disk(NODE)
        self.assertEqual([self.img.rbd_name], self.cluster.names(POOL))
        self.library.remove_node_scratch(NODE, 'swap')

    def test_list_cloneless_scratch(self):
        self.library.ensure_node_scratch(
            NODE, 'ephemeral', 16 * units.Mi, 'ext4', self.META)
        self.assertEqual({}, self.library.list_cloneless_scratch())
        self.library.remove_node_disk(NODE, keep_ephemeral=True)
        found = self.library.list_cloneless_scratch()
        self.assertEqual([NODE], list(found))
        self.assertEqual('iqn.x:' + NODE, found[NODE]['bmi.export.iqn'])
        self.assertEqual([], self.library.list_node_disks())
        self.library.remove_node_disk(NODE)
        self.assertEqual({}, self.library.list_cloneless_scratch())

    def test_remove_scratch(self):
        eph, _ = self.library.ensure_node_scratch(
            NODE, 'ephemeral', 16 * units.Mi, 'ext4', self.META)
        self.library.remove_node_scratch(NODE, 'ephemeral')
        self.library.remove_node_scratch(NODE, 'ephemeral')
        self.assertNotIn(eph.rbd_name, self.cluster.names(POOL))
