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

"""End to end: real VMs boot from COW clones of a golden image.

Nothing is faked but the hardware: TCG virtual machines (libvirt), powered
through sushy-tools' Redfish emulator, network-boot with iPXE over QEMU
user networking, sanboot their clone exported by the shared tgtd, and run
the demo image's OS (tools/demo/build-image.sh) from it. The OS prints
``BMI-BOOT-OK node=<name>`` and ``BMI-FOUND <name>`` for files earlier
nodes wrote on its disk. A failing test carries the VM consoles.

* ``SanbootTest``: the storage path alone: library clone -> tgt export
  (CHAP, initiator ACL) -> iPXE ``sanhook``/``sanboot`` as Ironic's template
  does it; then ``snapshot_node`` and a second node from the snapshot.
* ``IronicBootTest``: the demo's scenario through Ironic (e2e.Scenario).

The VM lab, the scenario and the services are ``tools.lab``'s.
"""

import os
import subprocess
import uuid

from testtools import content

from bmi_driver.storage.ceph import library as images
from bmi_driver.storage.export import manager as export
from tests.functional import base
from tools.lab import e2e
from tools.lab import hil_emulator
from tools.lab import ironic as lab_ironic
from tools.lab import state as lab_state
from tools.lab import vmlab

BOOT_TIMEOUT = 240
PROJECT = 'e2e'


def demo_image():
    """Build (or reuse) the demo's golden image; return its path."""
    out_dir = lab_state.State().demo_dir
    subprocess.run([os.path.join(vmlab.REPO, 'tools', 'demo',
                                 'build-image.sh'), out_dir],
                   check=True, stdout=subprocess.DEVNULL)
    return os.path.join(out_dir, 'bmi-demo.raw')


class LabTestCase(base.FunctionalTestCase):
    """Runs the VM lab for the test's class; attaches consoles on failure."""

    http_root = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.image_path = demo_image()
        env = base.load_env()
        cls.lab = vmlab.Lab(os.path.join(env['state_dir'], 'e2e-lab'),
                            http_root=cls.lab_http_root(env))
        try:
            cls.lab.start()
        except Exception:
            cls.lab.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.lab.stop()
        super().tearDownClass()

    @classmethod
    def lab_http_root(cls, env):
        return None

    def setUp(self):
        super().setUp()
        self.vms = []
        self.addOnException(self._attach_consoles)

    def _attach_consoles(self, exc_info):
        for vm in self.vms:
            console = self.lab.console(vm)
            self.addDetail('console %s' % vm, content.text_content(
                '\n'.join(console.text().splitlines()[-60:])))
        for name in ('libvirtd-daemon', 'sushy'):
            path = os.path.join(self.lab.log_dir, '%s.log' % name)
            if os.path.exists(path):
                self.addDetail('%s.log' % name, content.text_content(
                    _tail(path, 30)))


def _tail(path, lines):
    with open(path, errors='replace') as f:
        return ''.join(f.readlines()[-lines:])


class SanbootTest(LabTestCase):
    """Library + tgt export + iPXE, without Ironic."""

    def setUp(self):
        super().setUp()
        self.config(tgt_ceph_user=self.env['ceph_tgt_user'],
                    tgt_ceph_conf=self.env['ceph_conf'], group='iscsi')
        host, port = self.env['tgtd_portal'].rsplit(':', 1)
        self.config(portal_address=host, portal_port=int(port),
                    group='iscsi')
        self.lib = images.ImageLibrary()
        self.mgr = export.ExportManager(library=self.lib)
        self.mgr.check()
        self.tag = uuid.uuid4().hex[:8]

    def boot(self, name, image_uuid, mac):
        """Clone, export and sanboot ``image_uuid`` as node ``name``."""
        node_uuid = str(uuid.uuid4())
        initiator = '%s:%s' % (e2e.INITIATOR_PREFIX, name)
        self.lib.clone_for_node(node_uuid, image_uuid, project=PROJECT)
        self.addCleanup(self.lib.remove_node_disk, node_uuid)
        node_export = self.mgr.export_node(node_uuid, initiator_iqn=initiator)
        self.addCleanup(self.mgr.unexport_node, node_uuid)
        self.assertIsNotNone(node_export.chap_secret)

        vm = vmlab.DOMAIN_PREFIX + name
        script = e2e.sanboot_script(node_export, initiator)
        script_path = os.path.join(self.lab.http_root, '%s.ipxe' % vm)
        with open(script_path, 'w') as f:
            f.write(script)
        self.addCleanup(os.unlink, script_path)
        vm_uuid = self.lab.define_vm(vm, mac, self.lab.url('%s.ipxe' % vm))
        self.vms.append(vm)
        self.addCleanup(self.lab.remove_vm, vm)
        console = self.lab.console(vm)
        offset = console.size()
        self.lab.set_boot(vm_uuid, 'Pxe', 'UEFI')
        self.lab.power(vm_uuid, 'On')
        marker = console.wait_for(e2e.MARKER_RE, offset, BOOT_TIMEOUT)
        self.assertEqual(name, marker.group(1))
        vmlab._wait(lambda: self.lab.vm_state(vm) == 'shut off', 60,
                    what='%s to power itself off' % vm)
        return node_uuid, console.lines(offset)

    def test_clone_boots_and_its_snapshot_keeps_the_file(self):
        golden = self.lib.import_file(self.image_path,
                                      'e2e-golden-%s' % self.tag,
                                      project=PROJECT)
        self.addCleanup(self.lib.delete, golden.uuid)
        first = 'e2e-san-%s-1' % self.tag
        node1, lines1 = self.boot(first, golden.uuid, '52:54:00:b3:03:01')
        self.assertEqual([], [ln for ln in lines1
                              if ln.startswith('BMI-FOUND')])

        snap = self.lib.snapshot_node(node1, 'e2e-snap-%s' % self.tag,
                                      project=PROJECT)
        self.addCleanup(self.lib.delete, snap.uuid)
        second = 'e2e-san-%s-2' % self.tag
        _node2, lines2 = self.boot(second, snap.uuid, '52:54:00:b3:03:02')
        self.assertIn('BMI-FOUND %s' % first, lines2)


class IronicBootTest(LabTestCase):
    """The demo's scenario through Ironic.

    The test runs an Ironic all-in-one (tools.lab.ironic, with
    tools/demo/ironic-demo.conf) and a HIL test server seeded with the
    e2e nodes (tools.lab.hil_emulator, tools/demo/hil-seed.json) of its own,
    on ports of their own, next to the shared Ceph and tgtd; both are
    stopped by pid when the class is done.
    """

    EXTRA_CONF = os.path.join(vmlab.REPO, 'tools', 'demo',
                              'ironic-demo.conf')
    HIL_SEED = os.path.join(vmlab.REPO, 'tools', 'demo', 'hil-seed.json')
    IRONIC_PORT = os.environ.get('BMI_E2E_IRONIC_PORT', '6395')
    HIL_PORT = os.environ.get('BMI_E2E_HIL_PORT', '7095')
    MACS = ('52:54:00:b3:02:01', '52:54:00:b3:02:02')

    @classmethod
    def setUpClass(cls):
        env = base.load_env()
        cls.ironic_dir = os.path.join(env['state_dir'], 'e2e-ironic')
        cls.hil_dir = os.path.join(env['state_dir'], 'e2e-hil')
        cls.hil = hil_emulator.HILEmulator(cls.hil_dir, port=cls.HIL_PORT,
                                           seed=cls.HIL_SEED)
        cls.aio = lab_ironic.IronicAIO(
            cls.ironic_dir,
            services_json=os.path.join(env['state_dir'], 'services.json'),
            port=cls.IRONIC_PORT, hil_url=cls.hil.url,
            extra_conf=[cls.EXTRA_CONF])
        try:
            cls.hil.start()
            cls.aio.start()
            cls.ironic_env = lab_state.read_env(cls.ironic_dir, 'Ironic')
            cls.hil_env = lab_state.read_env(cls.hil_dir, 'HIL')
            super().setUpClass()
        except Exception:
            cls._stop_services()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls._stop_services()

    @classmethod
    def _stop_services(cls):
        try:
            cls.aio.stop()
        finally:
            cls.hil.stop()

    @classmethod
    def lab_http_root(cls, env):
        return cls.ironic_env['http_root']

    def setUp(self):
        super().setUp()
        self.bmi_conf = os.path.join(self.ironic_dir, 'bmi.conf')
        self.progress = []
        self.addDetail('progress', content.Content(
            content.UTF8_TEXT,
            lambda: ['\n'.join(self.progress).encode('utf-8')]))
        self.addOnException(self._attach_ironic_log)

    def _attach_ironic_log(self, exc_info):
        self.addDetail('ironic.log', content.text_content(
            _tail(self.ironic_env['log'], 60)))

    def test_deploy_snapshot_deploy_from_snapshot_undeploy(self):
        scenario = e2e.Scenario(
            self.lab, self.ironic_env['url'], self.bmi_conf,
            self.hil_env['url'], self.image_path, prefix='e2e',
            macs=self.MACS, project=PROJECT,
            reporter=e2e.Reporter(out=self.progress.append),
            boot_timeout=BOOT_TIMEOUT)
        self.vms = [n.vm for n in scenario.nodes]
        self.addCleanup(self._cleanup, scenario)
        scenario.run()
        first, second = scenario.nodes
        self.assertIsNotNone(first.to_marker)
        self.assertIn('BMI-FOUND %s' % first.name, second.lines)
        self.progress.extend(scenario.summary())

    def _cleanup(self, scenario):
        errors = scenario.cleanup()
        if errors:
            self.fail('cleanup failed: %s' % '; '.join(errors))
