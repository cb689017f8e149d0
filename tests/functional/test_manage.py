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

"""bmi-manage as an operator runs it, against the live cluster."""

import json
import os
import subprocess
import sys

import fixtures

from tests.functional import base
from tools.lab import config

MiB = 1024 * 1024
BMI_MANAGE = os.path.join(os.path.dirname(sys.executable), 'bmi-manage')


class BMIManageTest(base.FunctionalTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.conf = config.write(os.path.join(self.tmp, 'bmi.conf'),
                                 config.ceph_only_conf(self.env))

    def bmi(self, *args, ok=True):
        proc = subprocess.run([BMI_MANAGE, '--config-file', self.conf]
                              + list(args), capture_output=True, text=True,
                              timeout=120)
        if ok:
            self.assertEqual(0, proc.returncode, proc.stderr)
        return proc

    def test_import_list_export_delete(self):
        raw = os.path.join(self.tmp, 'disk.raw')
        with open(raw, 'wb') as f:
            f.write(os.urandom(MiB))
            f.truncate(8 * MiB)
        name = self.unique('cli')
        img = json.loads(self.bmi('image', 'import', name, '--file', raw,
                                  '--project', 'cli-p', '-f', 'json').stdout)
        self.addCleanup(self.bmi, 'image', 'delete', img['uuid'], ok=False)
        self.assertEqual((name, 8 * MiB), (img['name'], img['size']))
        listed = json.loads(self.bmi('image', 'list', '--project', 'cli-p',
                                     '-f', 'json').stdout)
        self.assertIn(img['uuid'], [i['uuid'] for i in listed])
        out = os.path.join(self.tmp, 'out.raw')
        self.bmi('image', 'export', name, out)
        with open(raw, 'rb') as a, open(out, 'rb') as b:
            self.assertEqual(a.read(), b.read())
        self.bmi('image', 'delete', name)
        gone = self.bmi('image', 'show', img['uuid'], ok=False)
        self.assertEqual(1, gone.returncode)
        self.assertIn('not found', gone.stderr)

    def test_bad_input_is_one_line_and_changes_nothing(self):
        # The attempts name a project of their own: whatever else shares
        # the cluster, that project must stay empty.
        project = self.unique('bad')
        text = os.path.join(self.tmp, 'notes.txt')
        with open(text, 'w') as f:
            f.write('not a disk\n')
        for args in (('image', 'import', 'bad name', '--file', text),
                     ('image', 'import', self.unique(), '--file', text),
                     ('image', 'import', self.unique(), '--file',
                      os.path.join(self.tmp, 'missing'))):
            proc = self.bmi(*(args + ('--project', project)), ok=False)
            self.assertEqual(1, proc.returncode)
            self.assertEqual(1, len(proc.stderr.strip().splitlines()),
                             proc.stderr)
        self.assertEqual('', self.bmi('image', 'list', '--project', project,
                                      '-f', 'value').stdout)
