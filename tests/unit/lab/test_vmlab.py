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

"""Unit tests of the VM lab and the e2e scenario (tools/lab/).

They run no VM and no daemon: files are temporary, virsh is faked.
"""

import os
from unittest import mock

import fixtures

from bmi_driver.storage.export import manager as export
from tests import base
from tools.lab import e2e
from tools.lab import vmlab


class ConsoleTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.path = os.path.join(self.state_dir, 'console.log')
        self.console = vmlab.Console(self.path)

    def write(self, data):
        with open(self.path, 'ab') as f:
            f.write(data)

    def test_missing_file_is_empty(self):
        self.assertEqual(0, self.console.size())
        self.assertEqual('', self.console.text())

    def test_text_drops_escape_sequences_and_carriage_returns(self):
        self.write(b'\x1b[=3h\x1b[2J\x1b[01;01HBdsDxe: loading\r\n'
                   b'BMI-BOOT-OK node=n1\r\n')
        self.assertEqual('BdsDxe: loading\nBMI-BOOT-OK node=n1\n',
                         self.console.text())

    def test_lines_from_an_offset(self):
        self.write(b'BMI-BOOT-OK node=old\n')
        offset = self.console.size()
        self.write(b'iPXE\nbmi-initramfs: root /dev/sda2\n'
                   b'BMI-BOOT-OK node=new\n')
        self.assertEqual(['bmi-initramfs: root /dev/sda2',
                          'BMI-BOOT-OK node=new'],
                         self.console.lines(offset))

    def test_wait_for_returns_the_match(self):
        self.write(b'noise\nBMI-BOOT-OK node=n1\n')
        m = self.console.wait_for(e2e.MARKER_RE, timeout=0)
        self.assertEqual('n1', m.group(1))

    def test_wait_for_fails_at_once_on_a_boot_failure(self):
        self.write(b'BMI-BOOT-FAIL iscsistart -b (login from iBFT)\n')
        e = self.assertRaises(vmlab.LabError, self.console.wait_for,
                              e2e.MARKER_RE, timeout=60)
        self.assertIn('iscsistart -b', str(e))

    def test_wait_for_times_out(self):
        self.useFixture(fixtures.MockPatch('time.sleep'))
        self.write(b'still booting\n')
        self.assertRaises(vmlab.LabError, self.console.wait_for,
                          e2e.MARKER_RE, timeout=0)


class ConsoleTimelineTest(base.TestCase):
    """Polled by hand (``_poll``) with a faked clock: no thread runs."""

    def setUp(self):
        super().setUp()
        self.path = os.path.join(self.state_dir, 'console.log')
        self.write(b'old line\n')
        self.now = self.useFixture(fixtures.MockPatch(
            'time.monotonic', return_value=10.0)).mock
        self.timeline = vmlab.ConsoleTimeline(vmlab.Console(self.path),
                                              offset=9)

    def write(self, data):
        with open(self.path, 'ab') as f:
            f.write(data)

    def poll(self, at, data=b''):
        self.now.return_value = at
        self.write(data)
        self.timeline._poll()

    def test_a_line_is_stamped_when_its_first_byte_is_seen(self):
        self.poll(10.0, b'\x1b[2JiPXE initialising devices...\r\nConfig')
        self.poll(11.5, b'uring (net0 52:54:00:c7:00:01)...... ok\n')
        self.poll(12.0, b'Linux version 6.1\nWelcome')
        self.timeline.stop()
        self.assertEqual([(10.0, 'iPXE initialising devices...'),
                          (10.0, 'Configuring (net0 52:54:00:c7:00:01)'
                                 '...... ok'),
                          (12.0, 'Linux version 6.1'),
                          (12.0, 'Welcome')], self.timeline.entries)

    def test_first_finds_phases_in_order(self):
        self.poll(1.0, b'Loading\nBMI-GUEST-OK uuid=u\n')
        self.poll(2.0, b'Loading\n')
        self.assertEqual(1.0, self.timeline.first('^Loading'))
        self.assertEqual(2.0, self.timeline.first('^Loading', after=1.5))
        self.assertIsNone(self.timeline.first('Welcome'))

    def test_a_missing_console_is_no_line(self):
        os.unlink(self.path)
        self.poll(1.0)
        self.assertEqual([], self.timeline.stop().entries)


class SanbootScriptTest(base.TestCase):

    def export(self, **kwargs):
        return export.NodeExport(
            node_uuid='n', target_iqn='iqn.2026-11.org.massopen.bmi:n',
            portal='10.78.0.1:3260', luns={1: 'pool/node-n'}, **kwargs)

    def test_with_chap(self):
        script = e2e.sanboot_script(
            self.export(chap_username='u1', chap_secret='s3cret'),
            'iqn.2026-11.org.massopen.bmi.initiator:node-1')
        lines = script.splitlines()
        self.assertEqual('#!ipxe', lines[0])
        self.assertIn('set username u1', lines)
        self.assertIn('set password s3cret', lines)
        self.assertIn('set initiator-iqn '
                      'iqn.2026-11.org.massopen.bmi.initiator:node-1', lines)
        self.assertIn('sanhook --drive 0x80 iscsi:10.78.0.1::3260:1:'
                      'iqn.2026-11.org.massopen.bmi:n || goto fail', lines)
        self.assertIn('sanboot --no-describe || goto fail', lines)

    def test_without_chap(self):
        script = e2e.sanboot_script(self.export(), 'iqn.2026-11.x:y')
        self.assertNotIn('username', script)
        self.assertNotIn('password', script)


class DefineVMTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.lab = vmlab.Lab('qemu+unix:///system?socket=/x',
                             'http://127.0.0.1:8000', self.state_dir)
        self.virsh = self.useFixture(fixtures.MockPatchObject(
            self.lab, 'virsh', return_value='uuid-1\n')).mock

    def test_bad_input_is_refused_before_anything_is_defined(self):
        for name, mac in (('other-vm', '52:54:00:00:00:01'),
                          (vmlab.DOMAIN_PREFIX + 'n1', '52:54:00:00:00'),
                          (vmlab.DOMAIN_PREFIX + 'n1', 'zz:54:00:00:00:01')):
            self.assertRaises(vmlab.LabError, self.lab.define_vm, name,
                              (mac, 'tb-1'))
        self.virsh.assert_not_called()

    def test_from_services_needs_libvirtd_and_sushy(self):
        env = {'services': {'libvirtd': {'running': True, 'uri': 'u'},
                            'sushy': {'running': False, 'url': 'r'}}}
        e = self.assertRaises(vmlab.LabError, vmlab.Lab.from_services, env,
                              self.state_dir)
        self.assertIn('sushy', str(e))

    def test_domain_xml(self):
        name = vmlab.DOMAIN_PREFIX + 'n1'
        console = self.lab.console(name)
        with open(console.path, 'w') as f:
            f.write('an earlier guest of that name\n')
        uuid = self.lab.define_vm(name, ('52:54:00:00:00:01', 'tb-1'),
                                  ('52:54:00:00:00:02', 'tt-1'))
        self.assertEqual('uuid-1', uuid)
        path = os.path.join(self.state_dir, name + '.xml')
        self.virsh.assert_has_calls([mock.call('define', path),
                                     mock.call('domuuid', name)])
        with open(path) as f:
            xml = f.read()
        for expected in ("<domain type='qemu'", vmlab.OVMF_CODE,
                         "<model type='e1000'/>", vmlab.NIC_ROM,
                         "<target dev='tb-1' managed='no'/>",
                         "<target dev='tt-1' managed='no'/>",
                         '<on_poweroff>destroy</on_poweroff>',
                         console.path):
            self.assertIn(expected, xml)
        # The boot nic comes first and is the only one that boots.
        self.assertLess(xml.index('tb-1'), xml.index('tt-1'))
        self.assertEqual(1, xml.count('<boot order='))
        self.assertLess(xml.index("<boot order='1'/>"), xml.index('tt-1'))
        self.assertNotIn("type='user'", xml)
        self.assertNotIn('<disk', xml)
        self.assertNotIn('<driver', xml)
        self.assertFalse(os.path.exists(console.path))

    def test_virtio_nics_have_no_offloads(self):
        # The Debian guest's nics: the userspace switch does not complete
        # partial checksums, so the guest must compute them.
        name = vmlab.DOMAIN_PREFIX + 'n1'
        self.lab.define_vm(name, ('52:54:00:00:00:01', 'tb-1'),
                           ('52:54:00:00:00:02', 'tt-1'), nic_model='virtio')
        with open(os.path.join(self.state_dir, name + '.xml')) as f:
            xml = f.read()
        self.assertEqual(2, xml.count("<model type='virtio'/>"))
        self.assertNotIn('e1000', xml)
        self.assertIn("<rom file='%s'/>" % vmlab.NIC_ROMS['virtio'], xml)
        self.assertEqual(2, xml.count("<host csum='off' gso='off'"))
        self.assertEqual(2, xml.count("<guest csum='off' tso4='off'"))

    def test_unknown_nic_model_is_refused(self):
        self.assertRaises(vmlab.LabError, self.lab.define_vm,
                          vmlab.DOMAIN_PREFIX + 'n1',
                          ('52:54:00:00:00:01', 'tb-1'), nic_model='rtl')
        self.virsh.assert_not_called()

    def test_local_disks_boot_the_guest(self):
        # bench_guest's guest booted from a local copy of its image.
        name = vmlab.DOMAIN_PREFIX + 'local'
        self.lab.define_vm(name, ('52:54:00:00:00:01', 'tb-1'),
                           disks=['/d/root.raw', '/d/config.iso'])
        with open(os.path.join(self.state_dir, name + '.xml')) as f:
            xml = f.read()
        self.assertIn("<source file='/d/root.raw'/>", xml)
        self.assertIn("<target dev='sda' bus='sata'/>", xml)
        self.assertIn("<target dev='sdb' bus='sata'/>", xml)
        # The first disk is the one boot device; the nic does not boot.
        self.assertEqual(1, xml.count('<boot order='))
        self.assertLess(xml.index('/d/root.raw'),
                        xml.index("<boot order='1'/>"))
        self.assertLess(xml.index("<boot order='1'/>"),
                        xml.index('/d/config.iso'))


class ReporterTest(base.TestCase):

    def test_steps(self):
        out = []
        report = e2e.Reporter(out=out.append)
        with report.step('first'):
            pass
        e = self.assertRaises(e2e.StepFailed, self._fail, report)
        self.assertEqual('second', e.step)
        self.assertEqual('second', report.current)
        self.assertEqual(['first'], [name for name, _t in report.steps])
        self.assertTrue(out[0].endswith('first ...'))
        self.assertIn('second FAILED', out[-1])
        self.assertIn('boom', out[-1])

    @staticmethod
    def _fail(report):
        with report.step('second'):
            raise RuntimeError('boom')
