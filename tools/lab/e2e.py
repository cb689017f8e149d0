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

"""The end-to-end path: VMs boot from cloned golden images through Ironic.

Shared by ``make demo`` (``python -m tools.lab.e2e``, driven by
tools/demo.sh) and ``tests/functional/test_e2e_boot.py``:

1. import the demo's golden image with ``bmi-manage image import``;
2. define two VMs in the lab (``vmlab``) and enroll them as Ironic nodes:
   ``bmi`` hardware type, ``redfish`` power through sushy-tools, the
   ``iscsi_boot`` capability, a port with the VM's MAC, an ``iqn`` volume
   connector whose name ends with the node name (the OS reads it from the
   iBFT);
3. ``baremetal node deploy`` node 1, wait for ACTIVE and for the OS's
   ``BMI-BOOT-OK`` marker on the VM's serial console;
4. snapshot node 1's disk (vendor passthru ``snapshot``) into a new golden
   image and deploy node 2 from it: its OS prints ``BMI-FOUND <node 1>``,
   the file node 1 wrote;
5. undeploy both and check that no clone, iSCSI target, HIL attachment or
   VolumeTarget is left;
6. remove what it created (nodes, images, VMs), also when a step failed.

Over 500 lines because it is one story told in order (the steps, their
checks, the clean-up, the summary and the demo's entry point): split, a
reader would have to jump between files to follow one deploy.
"""

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import time
import urllib.request
import uuid

from ironicclient import client as ironic_client
from ironicclient import exc as ironic_exc
from oslo_concurrency import processutils

from bmi_driver.conf import CONF
from bmi_driver.storage.ceph import library as images
from tools.lab import state as lab_state
from tools.lab import vmlab

REPO = vmlab.REPO
BAREMETAL = os.path.join(vmlab.VENV_BIN, 'baremetal')
BMI_MANAGE = os.path.join(vmlab.VENV_BIN, 'bmi-manage')
INITIATOR_PREFIX = 'iqn.2026-11.org.massopen.bmi.initiator'
PROVISIONING_NETWORK = 'bmi-provisioning'
MARKER_RE = r'^BMI-BOOT-OK node=(\S+)\s*$'
FOUND_RE = r'^BMI-FOUND (\S+)\s*$'


def sanboot_script(node_export, initiator_iqn):
    """The iPXE script Ironic's template renders for an iSCSI boot volume.

    The guest reaches the portal's port on the host as 10.0.2.2.
    """
    port = node_export.portal.rsplit(':', 1)[1]
    lines = ['#!ipxe']
    if node_export.chap_username:
        lines += ['set username %s' % node_export.chap_username,
                  'set password %s' % node_export.chap_secret]
    lines += ['set initiator-iqn %s' % initiator_iqn,
              'sanhook --drive 0x80 iscsi:%s::%s:1:%s || goto fail'
              % (vmlab.HOST_FROM_GUEST, port, node_export.target_iqn),
              'sanboot --no-describe || goto fail',
              ':fail',
              'echo BMI-BOOT-FAIL iPXE could not sanboot %s'
              % node_export.target_iqn,
              'sleep 600']
    return '\n'.join(lines) + '\n'


def _run(what, *argv):
    """Run a command; on failure, raise with its last error lines."""
    try:
        out, _err = processutils.execute(
            *argv, env_variables=dict(os.environ, PYTHONWARNINGS='ignore'))
    except processutils.ProcessExecutionError as e:
        lines = (e.stderr or e.stdout or '').strip().splitlines()[-3:]
        raise RuntimeError('%s failed (exit code %s): %s' % (
            what, e.exit_code, ' / '.join(lines))) from None
    return out


class StepFailed(Exception):
    def __init__(self, step, error):
        self.step = step
        self.error = error
        super().__init__('step "%s" failed: %s' % (step, error))


class Reporter(object):
    """One line per step, with the elapsed time since the start."""

    def __init__(self, out=None, started_at=None):
        """``started_at``: wall-clock start (time.time()) to count from."""
        self.out = out or (lambda line: print(line, flush=True))
        self.t0 = time.monotonic()
        self.current = None
        if started_at:
            self.t0 -= max(0.0, time.time() - started_at)
        self.steps = []

    def elapsed(self):
        return time.monotonic() - self.t0

    def say(self, text):
        self.out('[%6.1fs] %s' % (self.elapsed(), text))

    def detail(self, text):
        self.out('           %s' % text)

    @contextlib.contextmanager
    def step(self, name):
        start = time.monotonic()
        self.current = name
        self.say('%s ...' % name)
        try:
            yield
        except Exception as e:
            self.say('%s FAILED after %.1fs: %s'
                     % (name, time.monotonic() - start, e))
            raise StepFailed(name, e) from e
        took = time.monotonic() - start
        self.steps.append((name, took))
        self.say('%s: ok (%.1fs)' % (name, took))


class Node(object):
    def __init__(self, name, mac):
        self.name = name
        self.mac = mac
        self.vm = vmlab.DOMAIN_PREFIX + name
        self.initiator = '%s:%s' % (INITIATOR_PREFIX, name)
        self.vm_uuid = None
        self.uuid = None
        self.to_active = None
        self.to_marker = None
        self.console_offset = 0
        self.deploy_started = None
        self.powered_on = None
        self.lines = []


class Scenario(object):
    """The demo's path; ``run()`` then always ``cleanup()``."""

    def __init__(self, lab, ironic_url, bmi_conf, hil_url, image_path,
                 prefix='demo', macs=('52:54:00:b3:01:01',
                                      '52:54:00:b3:01:02'),
                 project='demo', reporter=None, boot_timeout=240,
                 state_timeout=240):
        self.lab = lab
        self.ironic_url = ironic_url
        self.ironic = ironic_client.get_client(
            '1', endpoint=ironic_url, os_ironic_api_version='latest')
        self.bmi_conf = bmi_conf
        self.hil_url = hil_url.rstrip('/')
        self.image_path = image_path
        self.prefix = prefix
        self.project = project
        self.tag = uuid.uuid4().hex[:8]
        self.nodes = [Node('%s-node-%d' % (prefix, i + 1), mac)
                      for i, mac in enumerate(macs)]
        self.report = reporter or Reporter()
        self.boot_timeout = boot_timeout
        self.state_timeout = state_timeout
        self.images = []          # golden images created, newest last
        self.golden = None
        self.snapshot = None

    # -- helpers ---------------------------------------------------------
    def baremetal(self, *args):
        """Run the ``baremetal`` CLI, as a user would; show the command."""
        self.report.detail('$ baremetal %s' % ' '.join(args))
        return _run('baremetal %s' % ' '.join(args[:2]), BAREMETAL,
                    '--os-endpoint', self.ironic_url, '--os-auth-type',
                    'none', *args)

    def bmi_manage(self, *args, show=True):
        if show:
            self.report.detail('$ bmi-manage %s' % ' '.join(args))
        return _run('bmi-manage %s' % ' '.join(args[:2]), BMI_MANAGE,
                    '--config-file', self.bmi_conf, *args)

    def _node(self, node):
        return self.ironic.node.get(node.uuid)

    def wait_state(self, node, target, timeout=None):
        timeout = timeout or self.state_timeout
        deadline = time.monotonic() + timeout
        while True:
            n = self._node(node)
            if n.provision_state == target and not n.target_provision_state:
                return n
            if n.provision_state in ('deploy failed', 'clean failed',
                                     'error', 'inspect failed') or (
                    not n.target_provision_state and n.last_error):
                raise RuntimeError('%s is %s: %s' % (
                    node.name, n.provision_state, n.last_error))
            if time.monotonic() > deadline:
                raise RuntimeError('%s still %s (target %s) after %ss: %s' % (
                    node.name, n.provision_state, n.target_provision_state,
                    timeout, n.last_error))
            time.sleep(1)

    def hil(self, path):
        with urllib.request.urlopen(self.hil_url + path, timeout=10) as r:
            return json.loads(r.read())

    # -- steps -----------------------------------------------------------
    def run(self):
        r = self.report
        with r.step('import the golden image with bmi-manage'):
            self.golden = self._import_image()
        with r.step('define two VMs and enroll them as Ironic nodes'):
            for node in self.nodes:
                self._remove_node(node)
                self._enroll(node)
        first, second = self.nodes
        with r.step('deploy %s from the golden image' % first.name):
            self._deploy(first, self.golden)
        with r.step('%s boots from its clone' % first.name):
            self._wait_boot(first)
        with r.step('snapshot %s into a new golden image' % first.name):
            self.snapshot = self._snapshot(first)
        with r.step('deploy %s from the snapshot' % second.name):
            self._deploy(second, self.snapshot)
        with r.step('%s boots and finds the file %s wrote'
                    % (second.name, first.name)):
            self._wait_boot(second)
            found = [m for ln in second.lines
                     for m in re.findall(FOUND_RE, ln)]
            if first.name not in found:
                raise RuntimeError('%s did not report %s\'s file (found: %s)'
                                   % (second.name, first.name, found))
        with r.step('undeploy both nodes'):
            for node in self.nodes:
                self.baremetal('node', 'undeploy', node.uuid)
            for node in self.nodes:
                self.wait_state(node, 'available')
        with r.step('check that nothing is left'):
            self.check_nothing_left()

    def _import_image(self):
        name = '%s-golden-%s' % (self.prefix, self.tag)
        out = self.bmi_manage('image', 'import', name, '--file',
                              self.image_path, '--project', self.project,
                              '-f', 'json')
        image = json.loads(out)
        self.images.append(image['uuid'])
        self.report.detail('golden image %s (%s)' % (name, image['uuid']))
        return image['uuid']

    def _enroll(self, node):
        node.vm_uuid = self.lab.define_vm(node.vm, node.mac,
                                          self.lab.url('boot.ipxe'))
        ic = self.ironic
        n = ic.node.create(
            name=node.name, driver='bmi',
            driver_info={
                'redfish_address': self.lab.redfish_url,
                'redfish_system_id': '/redfish/v1/Systems/%s'
                                     % node.vm_uuid,
                # The emulator speaks plain HTTP.
                'redfish_verify_ca': False},
            boot_interface='ipxe', deploy_interface='bmi',
            storage_interface='bmi', network_interface='hil',
            power_interface='redfish', management_interface='redfish',
            vendor_interface='bmi',
            properties={'capabilities': 'iscsi_boot:True,boot_mode:uefi'})
        node.uuid = n.uuid
        # noauth: a node cannot be created with an owner, but may get one.
        ic.node.update(n.uuid, [{'op': 'add', 'path': '/owner',
                                 'value': self.project}])
        ic.port.create(node_uuid=n.uuid, address=node.mac, pxe_enabled=True)
        ic.volume_connector.create(node_uuid=n.uuid, type='iqn',
                                   connector_id=node.initiator)
        ic.node.set_provision_state(n.uuid, 'manage')
        self.wait_state(node, 'manageable')
        ic.node.set_provision_state(n.uuid, 'provide')
        self.wait_state(node, 'available')
        self.report.detail('%s: node %s, VM %s (MAC %s), initiator %s'
                           % (node.name, n.uuid, node.vm, node.mac,
                              node.initiator))

    def _deploy(self, node, image_id):
        node.console_offset = self.lab.console(node.vm).size()
        self.ironic.node.update(node.uuid, [{
            'op': 'add', 'path': '/instance_info/image_source',
            'value': image_id}])
        start = time.monotonic()
        self.baremetal('node', 'deploy', node.uuid)
        node.deploy_started = start
        node.powered_on = None
        deadline = start + self.state_timeout
        while True:
            self._note_power_on(node)
            n = self._node(node)
            if n.provision_state == 'active' and not n.target_provision_state:
                break
            if n.provision_state in ('deploy failed', 'error'):
                raise RuntimeError('%s: %s' % (n.provision_state,
                                               n.last_error))
            if time.monotonic() > deadline:
                raise RuntimeError('not ACTIVE after %ss (%s)'
                                   % (self.state_timeout, n.provision_state))
            time.sleep(0.5)
        node.to_active = time.monotonic() - start
        self.report.detail('%s is ACTIVE after %.1fs' % (node.name,
                                                         node.to_active))
        self._show_attachments(node)

    def _show_attachments(self, node):
        """Show (and check) the node's boot volume and HIL networks."""
        targets = self.ironic.volume_target.list(node=node.uuid,
                                                 detail=True)
        if not targets:
            raise RuntimeError('%s is ACTIVE without a boot VolumeTarget'
                               % node.name)
        for t in targets:
            self.report.detail('%s boots from %s LUN %s (%s)' % (
                node.name, t.properties.get('target_iqn'),
                t.properties.get('target_lun'), t.volume_id))
        nets = {}
        for nic in self.hil('/v0/node/%s' % node.name).get('nics') or []:
            for channel, net in (nic.get('networks') or {}).items():
                nets.setdefault(net, []).append('%s %s' % (nic['label'],
                                                           channel))
        if PROVISIONING_NETWORK not in nets:
            raise RuntimeError('%s is not on the HIL network %s (HIL: %s)'
                               % (node.name, PROVISIONING_NETWORK, nets))
        for net, where in sorted(nets.items()):
            self.report.detail('%s: HIL network %s on %s'
                               % (node.name, net, ', '.join(where)))

    def _note_power_on(self, node):
        if node.powered_on is None and self.lab.vm_state(node.vm) == 'running':
            node.powered_on = time.monotonic()

    def _wait_boot(self, node):
        console = self.lab.console(node.vm)
        deadline = time.monotonic() + self.boot_timeout
        shown = 0
        while True:
            self._note_power_on(node)
            lines = console.lines(node.console_offset)
            for ln in lines[shown:]:
                self.report.detail('console %s | %s' % (node.name, ln))
            shown = len(lines)
            text = console.text(node.console_offset)
            m = re.search(MARKER_RE, text, re.M)
            if m and node.to_marker is None:
                if m.group(1) != node.name:
                    raise RuntimeError('%s booted as %r' % (node.name,
                                                            m.group(1)))
                node.to_marker = time.monotonic() - (
                    node.powered_on or node.deploy_started)
            fail = re.search(r'^BMI-BOOT-FAIL.*$', text, re.M)
            if fail:
                raise RuntimeError('%s: %s (console: %s)'
                                   % (node.name, fail.group(0), console.path))
            if (node.to_marker is not None
                    and self.lab.vm_state(node.vm) == 'shut off'):
                node.lines = console.lines(node.console_offset)
                return
            if time.monotonic() > deadline:
                raise RuntimeError('%s: no %s within %ss (console: %s)'
                                   % (node.name,
                                      'power-off' if node.to_marker
                                      else 'BMI-BOOT-OK marker',
                                      self.boot_timeout, console.path))
            time.sleep(0.5)

    def _snapshot(self, node):
        name = '%s-snap-%s' % (self.prefix, self.tag)
        self.baremetal('node', 'passthru', 'call', '--http-method', 'POST',
                       node.uuid, 'snapshot', '--arg', 'name=%s' % name)
        # A flatten takes about 2.4 s per GiB here; an error inside the
        # (asynchronous) passthru is only in Ironic's log.
        timeout = 120
        deadline = time.monotonic() + timeout
        while True:
            n = self._node(node)
            result = (n.driver_internal_info or {}).get('bmi_snapshot') or {}
            if result.get('name') == name and result.get('status') == 'done':
                self.images.append(result['image'])
                self.report.detail('snapshot image %s (%s)'
                                   % (name, result['image']))
                return result['image']
            if result.get('name') == name and result.get('status') == 'error':
                raise RuntimeError(result.get('error'))
            if time.monotonic() > deadline:
                raise RuntimeError('no snapshot result after %ss: see '
                                   'Ironic\'s log' % timeout)
            time.sleep(0.5)

    def check_nothing_left(self):
        """Check that the nodes left nothing behind.

        :raises: RuntimeError naming each clone, target, HIL attachment or
            VolumeTarget left for one of the nodes.
        """
        left = []
        uuids = [n.uuid for n in self.nodes if n.uuid]
        disks = self._rbd_names()
        for u in uuids:
            if any(u in d for d in disks):
                left.append('RBD clone of %s' % u)
        targets, _err = processutils.execute('tgtadm', '--lld', 'iscsi',
                                             '--mode', 'target', '--op',
                                             'show')
        for u in uuids:
            if u in targets:
                left.append('iSCSI target of %s' % u)
        for node in self.nodes:
            info = self.hil('/v0/node/%s' % node.name)
            for nic in info.get('nics') or []:
                if nic.get('networks'):
                    left.append('HIL attachment %s/%s: %s'
                                % (node.name, nic.get('label'),
                                   nic['networks']))
            if node.uuid and self.ironic.volume_target.list(node=node.uuid):
                left.append('VolumeTarget of %s' % node.name)
        if left:
            raise RuntimeError('left behind: %s' % '; '.join(left))
        self.report.detail('no clone, no iSCSI target, no HIL attachment, '
                           'no VolumeTarget left for %s'
                           % ', '.join(n.name for n in self.nodes))

    def _rbd_names(self):
        """Names of the RBD images in the clone pool."""
        return [d.rbd_name for d in images.ImageLibrary().list_node_disks()]

    # -- cleanup ---------------------------------------------------------
    def _remove_node(self, node):
        """Remove an Ironic node of this name (a leftover) and its VM."""
        try:
            n = self.ironic.node.get(node.name)
        except ironic_exc.NotFound:
            n = None
        if n is not None:
            if n.provision_state not in ('available', 'manageable',
                                         'enroll'):
                with contextlib.suppress(Exception):
                    self.ironic.node.set_provision_state(n.uuid, 'deleted')
                node.uuid = n.uuid
                with contextlib.suppress(Exception):
                    self.wait_state(node, 'available', timeout=120)
            with contextlib.suppress(ironic_exc.NotFound):
                self.ironic.node.set_maintenance(n.uuid, True)
                self.ironic.node.delete(n.uuid)
        self.lab.remove_vm(node.vm)

    def cleanup(self):
        """Remove nodes, VMs and images this run created; report errors."""
        errors = []
        for node in self.nodes:
            try:
                self._remove_node(node)
            except Exception as e:
                errors.append('%s: %s' % (node.name, e))
        for image in reversed(self.images):
            try:
                self.bmi_manage('image', 'delete', image, show=False)
            except Exception as e:
                errors.append('image %s: %s' % (image, e))
        self.images = []
        return errors

    def summary(self):
        header = ('node', 'time to ACTIVE', 'power-on to marker',
                  'console log')
        lines = ['', 'Summary', '  %-14s %-16s %-22s %s' % header]
        for n in self.nodes:
            lines.append('  %-14s %-16s %-22s %s' % (
                n.name,
                '%.1f s' % n.to_active if n.to_active else '-',
                '%.1f s' % n.to_marker if n.to_marker else '-',
                self.lab.console(n.vm).path))
        return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--services',
                        help='services.json (default: the lab state\'s)')
    parser.add_argument('--lab-dir', required=True)
    parser.add_argument('--image', required=True, help='raw golden image')
    args = parser.parse_args(argv)

    def _terminate(signum, frame):
        raise SystemExit('interrupted by signal %d' % signum)
    signal.signal(signal.SIGTERM, _terminate)

    env = lab_state.load_services(args.services)
    ironic_env = lab_state.read_env(env['ironic_state'], 'Ironic')
    hil_env = lab_state.read_env(env['hil_state'], 'The HIL test server')
    bmi_conf = os.path.join(env['ironic_state'], 'bmi.conf')
    CONF(args=[], project='bmi', default_config_files=[bmi_conf])

    # tools/demo.sh passes its start time: one clock for all the steps.
    report = Reporter(started_at=float(os.environ.get('BMI_DEMO_T0') or 0))
    lab = vmlab.Lab(args.lab_dir, http_root=ironic_env['http_root'])
    rc = 0
    scenario = None
    try:
        with report.step('start libvirtd, sushy-emulator and the HTTP '
                         'server'):
            lab.start()
            report.detail('Redfish %s, iPXE files %s from %s'
                          % (lab.redfish_url, lab.url(), lab.http_root))
        scenario = Scenario(lab, ironic_env['url'], bmi_conf,
                            hil_env['url'], args.image, reporter=report)
        scenario.run()
    except StepFailed as e:
        rc = 1
        failed = e
    except (Exception, SystemExit, KeyboardInterrupt) as e:
        rc = 1
        failed = StepFailed(report.current or 'setup',
                            e if str(e) else 'interrupted')
    finally:
        if scenario is not None:
            for err in scenario.cleanup():
                report.say('cleanup: %s' % err)
            for line in scenario.summary():
                print(line)
        print('  logs: VM consoles %s, lab %s, Ironic %s'
              % (os.path.join(lab.state_dir, 'console'), lab.log_dir,
                 os.path.join(env['ironic_state'], 'ironic.log')))
        lab.stop()
    if rc:
        print('\nDEMO FAILED at step "%s": %s' % (failed.step, failed.error))
        if scenario is not None:
            for node in scenario.nodes:
                if node.vm_uuid is None:
                    continue
                tail = lab.console(node.vm).text(
                    node.console_offset).splitlines()[-15:]
                if tail:
                    print('--- last console lines of %s' % node.vm)
                    print('\n'.join(tail))
    else:
        print('\nDEMO OK in %.1fs' % report.elapsed())
    return rc


if __name__ == '__main__':
    sys.exit(main())
