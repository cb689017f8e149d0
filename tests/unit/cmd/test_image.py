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

"""bmi-manage image ...: arguments, output formats, errors."""

import io
import json
from unittest import mock

import fixtures

from bmi_driver.cmd import manage
from bmi_driver.cmd import progress
from bmi_driver import exception
from bmi_driver.storage.ceph import library as images
from bmi_driver.storage import layout
from tests import base


def _image(**kw):
    values = dict(uuid='0b7a3a8e-6a7c-4a43-9f6b-0c1d2e3f4a5b', name='deb12',
                  project='p1', visibility='private', created_at='now',
                  source='file:deb12.raw', checksum='sha256:ab', size=1024,
                  pool='bmi-images', rbd_name='img-x', parent=None, clones=2)
    values.update(kw)
    return layout.GoldenImage(**values)


class BMIManageImageTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.lib = mock.Mock(spec=images.ImageLibrary)
        self.useFixture(fixtures.MockPatchObject(
            images, 'ImageLibrary', return_value=self.lib))
        self.stdout = self.useFixture(
            fixtures.MonkeyPatch('sys.stdout', io.StringIO())).new_value
        self.stderr = self.useFixture(
            fixtures.MonkeyPatch('sys.stderr', io.StringIO())).new_value
        # cliff also logs errors through the root logger, which Ironic's
        # test package sends to the real stderr.
        self.log = self.useFixture(fixtures.FakeLogger())

    def run_cli(self, *argv):
        return manage.main(list(argv))

    def test_list_json(self):
        self.lib.list.return_value = [_image()]
        self.assertEqual(0, self.run_cli('image', 'list', '-f', 'json',
                                         '--project', 'p1'))
        self.lib.list.assert_called_once_with(project='p1',
                                              include_public=False)
        rows = json.loads(self.stdout.getvalue())
        self.assertEqual('deb12', rows[0]['name'])
        self.assertEqual(2, rows[0]['clones'])

    def test_cache_sweep(self):
        self.lib.sweep_glance_cache.return_value = ['g1']
        self.lib.list_glance_cache.return_value = ['g2']
        self.assertEqual(0, self.run_cli('image', 'cache', 'sweep', '-f',
                                         'json'))
        self.assertEqual([{'glance_image': 'g1', 'cache': 'dropped'},
                          {'glance_image': 'g2', 'cache': 'kept'}],
                         json.loads(self.stdout.getvalue()))

    def test_publish_sweep(self):
        self.lib.sweep_published.return_value = {
            'forgotten': ['u1'], 'deleted': ['g2'], 'published': ['u3'],
            'left': ['g4']}
        self.assertEqual(0, self.run_cli('image', 'publish', 'sweep', '-f',
                                         'json'))
        self.assertEqual(
            [{'image': 'u1', 'glance_image': '', 'action': 'forgotten'},
             {'image': '', 'glance_image': 'g2', 'action': 'deleted'},
             {'image': 'u3', 'glance_image': '', 'action': 'published'},
             {'image': '', 'glance_image': 'g4', 'action': 'left'}],
            json.loads(self.stdout.getvalue()))

    def test_import_file_value(self):
        self.lib.import_file.return_value = _image()
        self.assertEqual(0, self.run_cli('image', 'import', 'deb12',
                                         '--file', '/x.qcow2', '--project',
                                         'p1', '-f', 'value', '-c', 'uuid'))
        args, kwargs = self.lib.import_file.call_args
        self.assertEqual(('/x.qcow2', 'deb12'), args)
        self.assertEqual('p1', kwargs['project'])
        self.assertEqual('private', kwargs['visibility'])
        self.assertIsInstance(kwargs['progress'], progress.ProgressBar)
        self.assertEqual(_image().uuid + '\n', self.stdout.getvalue())

    def test_import_rbd_reference(self):
        self.lib.import_rbd.return_value = _image()
        self.assertEqual(0, self.run_cli('image', 'import', 'deb12',
                                         '--rbd', 'images/u@snap',
                                         '--visibility', 'public'))
        self.lib.import_rbd.assert_called_once_with(
            'images/u@snap', 'deb12', project=None, visibility='public')

    def test_import_needs_exactly_one_source(self):
        err = self.assertRaises(SystemExit, self.run_cli,
                                'image', 'import', 'deb12')
        self.assertEqual(2, err.code)  # argparse's usage error
        self.assertFalse(self.lib.import_file.called)

    def test_rename_copy_delete_export(self):
        self.lib.rename.return_value = _image(name='new')
        self.lib.copy.return_value = _image(name='copy')
        self.lib.export.return_value = _image()
        self.assertEqual(0, self.run_cli('image', 'rename', 'deb12', 'new'))
        self.lib.rename.assert_called_once_with('deb12', 'new')
        self.assertEqual(0, self.run_cli('image', 'copy', 'deb12', 'copy'))
        self.assertEqual(('deb12', 'copy'), self.lib.copy.call_args[0])
        self.assertEqual(0, self.run_cli('image', 'export', 'deb12', '/o'))
        self.assertEqual(('deb12', '/o'), self.lib.export.call_args[0])
        self.assertEqual(0, self.run_cli('image', 'delete', 'deb12'))
        self.lib.delete.assert_called_once_with('deb12')

    def test_error_is_one_line_and_non_zero(self):
        self.lib.delete.side_effect = exception.ImageInUse(
            image='deb12', count=1, clones='bmi-images/node-x')
        self.assertEqual(1, self.run_cli('image', 'delete', 'deb12'))
        err = self.stderr.getvalue().strip()
        self.assertEqual(1, len(err.splitlines()), err)
        self.assertIn('remove them first', err)

    def test_missing_config_file(self):
        self.assertEqual(1, self.run_cli('--config-file', '/nonexistent',
                                         'image', 'list'))
        self.assertIn('/nonexistent', self.stderr.getvalue())
        self.assertFalse(self.lib.list.called)


class ProgressBarTest(base.TestCase):

    def test_quiet_when_not_a_terminal(self):
        out = io.StringIO()
        bar = progress.ProgressBar('import', stream=out)
        bar(50, 100)
        bar(100, 100)
        bar.close()
        self.assertEqual('', out.getvalue())

    def test_draws_on_a_terminal(self):
        out = io.StringIO()
        out.isatty = lambda: True
        bar = progress.ProgressBar('import', stream=out)
        bar(0, 2048)
        bar(2048, 2048)
        bar.close()
        self.assertIn('100%', out.getvalue())
        self.assertIn('2.0 KiB/2.0 KiB', out.getvalue())
        self.assertTrue(out.getvalue().endswith('\n'))
