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
        # The lock files of the names lock (issue 13) in a state path
        # that the test's bmi-manage processes share.
        self.conf = config.write(
            os.path.join(self.tmp, 'bmi.conf'),
            config.ceph_only_conf(self.env)
            + [('bmi', [('state_path', os.path.join(self.tmp, 'state'))])])

    def bmi_parallel(self, *argvs):
        """Run bmi-manage commands at once: their finished processes."""
        procs = [subprocess.Popen([BMI_MANAGE, '--config-file', self.conf]
                                  + list(argv), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for argv in argvs]
        for proc in procs:
            proc.out, proc.err = proc.communicate(timeout=120)
        return procs

    def raw_file(self, name='disk.raw', size=8 * MiB):
        path = os.path.join(self.tmp, name)
        with open(path, 'wb') as f:
            f.write(os.urandom(MiB))
            f.truncate(size)
        return path

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

    # -- issue 13: bad input refused before anything is written ----------

    def test_parallel_imports_and_renames_to_one_name_give_one_image(self):
        project = self.unique('race')
        raw = self.raw_file()
        name = self.unique('same')
        procs = self.bmi_parallel(*[
            ('image', 'import', name, '--file', raw, '--project', project,
             '-f', 'value', '-c', 'uuid') for _ in range(4)])
        made = [p.out.strip() for p in procs if p.returncode == 0]
        for uuid in made:
            self.addCleanup(self.bmi, 'image', 'delete', uuid, ok=False)
        self.assertEqual(1, len(made), [p.err for p in procs])
        self.assertEqual(3, len([p for p in procs if p.returncode == 1
                                 and 'already exists' in p.err]))
        others = []
        for i in range(4):
            uuid = self.bmi('image', 'import', self.unique('r'), '--file',
                            raw, '--project', project, '-f', 'value', '-c',
                            'uuid').stdout.strip()
            self.addCleanup(self.bmi, 'image', 'delete', uuid, ok=False)
            others.append(uuid)
        target = self.unique('renamed')
        procs = self.bmi_parallel(*[('image', 'rename', uuid, target)
                                    for uuid in others])
        self.assertEqual(1, len([p for p in procs if p.returncode == 0]),
                         [p.err for p in procs])
        listed = json.loads(self.bmi('image', 'list', '--project', project,
                                     '-f', 'json').stdout)
        self.assertEqual(1, [i['name'] for i in listed].count(name))
        self.assertEqual(1, [i['name'] for i in listed].count(target))

    def test_issue13_bad_inputs_refused_with_nothing_written(self):
        project = self.unique('bad13')
        good = os.path.join(self.tmp, 'good.qcow2')
        subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2',
                        self.raw_file(), good], check=True)
        truncated = os.path.join(self.tmp, 'truncated.qcow2')
        with open(good, 'rb') as src, open(truncated, 'wb') as out:
            out.write(src.read(100 * 1024))
        tried = []
        for args, reason in (
                (('--file', truncated, '--project', project),
                 'qemu-img check found'),
                (('--file', self.tmp, '--project', project),
                 'is a directory'),
                (('--file', '/dev/null', '--project', project),
                 'is a device'),
                # Once stored as project admin.
                (('--file', good, '--project', ''), 'Invalid project')):
            tried.append(self.unique())
            proc = self.bmi('image', 'import', tried[-1], *args, ok=False)
            self.assertEqual(1, proc.returncode, proc.stderr)
            self.assertIn(reason, proc.stderr)
            self.assertEqual(1, len(proc.stderr.strip().splitlines()))
        self.assertEqual('', self.bmi('image', 'list', '--project', project,
                                      '-f', 'value').stdout)
        for name in tried:
            self.assertIn('not found', self.bmi('image', 'show', name,
                                                ok=False).stderr)

    def test_file_names_are_files_not_qemu_protocols(self):
        # json:{...} once made qemu-img read other.raw; a:b.qcow2 could
        # not be opened at all.
        project = self.unique('names13')
        mine = self.raw_file('mine.raw')
        other = self.raw_file('other.raw')
        odd = 'json:{"file.driver":"file","file.filename":"other.raw"}'
        for name in (odd, 'a:b.qcow2'):
            subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O',
                            'qcow2', mine, os.path.join(self.tmp, name)],
                           check=True)
            proc = subprocess.run(
                [BMI_MANAGE, '--config-file', self.conf, 'image', 'import',
                 self.unique(), '--file', name, '--project', project, '-f',
                 'json'], capture_output=True, text=True, timeout=120,
                cwd=self.tmp)
            self.assertEqual(0, proc.returncode, proc.stderr)
            img = json.loads(proc.stdout)
            self.addCleanup(self.bmi, 'image', 'delete', img['uuid'],
                            ok=False)
            out = os.path.join(self.tmp, img['uuid'] + '.raw')
            self.bmi('image', 'export', img['uuid'], out)
            with open(mine, 'rb') as a, open(out, 'rb') as b:
                self.assertEqual(a.read(), b.read())
        with open(other, 'rb') as a, open(mine, 'rb') as b:
            self.assertNotEqual(a.read(), b.read())
