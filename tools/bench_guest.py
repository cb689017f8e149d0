#!/usr/bin/env python3
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

"""Benchmark the real guest: power-on to SSH login, bmi vs a local disk.

One run, side by side, the Debian guest of tools/demo/build-debian.sh:

* bmi: ``tools.lab.guest.GuestScenario`` (deploy through Ironic with a
  config drive Ironic builds; iPXE sanboot of the node's clone over
  iSCSI, open-iscsi's login from the iBFT), power-on (the VM seen
  running) to cloud-init's marker and to the first SSH login that
  succeeds;
* local: the same VM shape (1 vCPU, the same memory, UEFI, the same two
  nics (``GuestScenario.nic_model``), its boot nic on the same project
  boot network, so the same DHCP), its disks local raw files: a copy
  of bmi-debian.raw (sda) and the bmi node's own config drive copied
  from Ceph (sdb: the same cloud-init inputs, instance uuid, hostname,
  SSH key, user-data), booted from sda; power-on (Redfish On, the VM
  seen running) to the marker and to the SSH login.

The image boots both ways as it is: without an iBFT, open-iscsi's
initramfs script (Debian 12, open-iscsi 2.1.8, ``iscsi_auto``) still
brings the network up by DHCP (``configure_networking``), its
``iscsistart -b`` fails and the root is found by its label on the local
disk. Under TCG each boot takes about a minute and a half, and one boot
of each was seen from 0.94x to 1.25x: ``--boots N`` (default 3) first
boots of each, alternating (a fresh deploy, a fresh copy of the image).
Prints each pair's figures, the medians and their ratio (target <=
1.2x), the timeline of the median pair, and writes them to
``.state/bench/summary.json`` (``guest``). No pass/fail.

    .venv/bin/python tools/bench_guest.py [--boots N]

Needs the all-in-one lab with the VMs (libvirtd, sushy; tools/bench runs
it inside the namespace) and the image built (tools/demo/build-debian.sh
.state/demo, outside the namespace: it needs Debian's mirror).
"""

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import time

from oslo_concurrency import processutils

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from bmi_driver.conf import CONF  # noqa: E402
from tools import benchlib  # noqa: E402
from tools.lab import e2e  # noqa: E402
from tools.lab import guest  # noqa: E402
from tools.lab import state as lab_state  # noqa: E402
from tools.lab import vmlab  # noqa: E402

PROJECT = 'e2e'

# The phases of a boot, as the serial console shows them (OVMF 2022.11,
# iPXE 1.0.0+git-20190125 of Debian 12's ipxe-qemu, Linux 6.1, open-iscsi
# 2.1.8, systemd 252, cloud-init 22.4): (label, pattern of the line that
# starts the phase). A phase the console does not show (the local boot
# has no iPXE) is left out of that boot's column.
PHASES = (
    ('UEFI boots the disk', r'^BdsDxe: starting'),
    ('iPXE starts', r'^iPXE \d'),
    ('iPXE DHCP (+ IPv6)', r'^Configuring \(net\d'),
    ('boot script over HTTP', r'^http://\S+boot\.ipxe\.\.\.'),
    ('node script, sanhook', r'^pxelinux\.cfg/|/config\.\.\.'),
    ('sanboot: kernel + initrd', r'^Booting from SAN device'),
    ('kernel starts', r'Linux version'),
    ('initramfs unpacked', r'Freeing initrd memory'),
    ('initramfs /init', r'^Loading, please wait'),
    ('initramfs network', r'^IP-Config:'),
    ('root mounted', r'EXT4-fs \(sd[a-z]\d\): mounted'),
    ('systemd', r'Welcome to'),
    ('cloud-init init-local', r"running 'init-local'"),
    ('cloud-init init', r"running 'init'"),
    ('cloud-init config', r"running 'modules:config'"),
    ('cloud-init final', r"running 'modules:final'"),
    ('marker (user-data)', guest.MARKER_RE),
    ('host keys printed', r'-----END SSH HOST KEY KEYS-----'),
)


class BenchGuestScenario(guest.GuestScenario):
    """The guest through bmi, then the same guest from local disks."""

    def __init__(self, *args, boots=1, **kwargs):
        kwargs.setdefault('prefix', 'gbench')
        super().__init__(*args, **kwargs)
        self.boots = boots
        self.local = e2e.Node('%s-local-1' % self.prefix, self.project, 2,
                              kwargs.get('mac_byte', 0xc7))
        self.local_dir = os.path.join(self.lab.state_dir, 'bench-guest-'
                                      + self.tag)
        # The local boot's disks: a copy of the image, and the config drive
        # of the bmi deploy before it.
        self.local_root = os.path.join(self.local_dir, 'root.raw')
        self.local_drive = os.path.join(self.local_dir, 'config-2.raw')
        self.local_defined = False
        self.local_uuid = None
        # One entry per boot pair: {'bmi': figures, 'local': figures}, and
        # their timelines alike.
        self.figures = []
        self.timelines = []

    def run(self):
        r = self.report
        node = self.nodes[0]
        with r.step('import the Debian golden image with bmi-manage'):
            self.golden = self._import_image()
        with r.step('define a VM on the switch and enroll it in HIL and '
                    'Ironic'):
            self.enroll_all()
        os.makedirs(self.local_dir, mode=0o700, exist_ok=True)
        # Alternate, so that load elsewhere on the machine hits both.
        for boot in range(1, self.boots + 1):
            figures, timelines = {}, {}
            figures['bmi'], timelines['bmi'] = self._bmi_boot(node, boot)
            figures['local'], timelines['local'] = self._local_boot(boot)
            self.figures.append(figures)
            self.timelines.append(timelines)

    def _bmi_boot(self, node, boot):
        """Deploy, first boot to the SSH login, undeploy: the figures."""
        r = self.report
        with r.step('bmi boot %d: deploy %s with a config drive Ironic '
                    'builds' % (boot, node.name)):
            self._deploy_guest(node)
            self._wait_active(node)
            # This deploy's own config drive: the local boot that follows
            # reads the same cloud-init inputs.
            self._copy_config_drive(node, self.local_drive)
        timeline = vmlab.ConsoleTimeline(self.lab.console(node.vm),
                                         node.console_offset).start()
        try:
            with r.step('bmi boot %d: power-on to cloud-init\'s marker'
                        % boot):
                self._wait_guest(node)
            with r.step('bmi boot %d: SSH login' % boot):
                self._ssh_login(node)
        finally:
            timeline.stop()
        figures = {'to_active_s': node.to_active,
                   'to_marker_s': node.to_marker,
                   'to_login_s': self.to_login}
        timeline = self._timeline(node, timeline)
        with r.step('bmi boot %d: undeploy %s' % (boot, node.name)):
            self.undeploy_all()
            self.check_nothing_left()
        return figures, timeline

    def _local_boot(self, boot):
        """A first boot from a fresh local copy of the image: the figures.

        The VM is powered off after its login; the next boot gets a new
        copy of the image (cloud-init's first boot again) and the config
        drive of the bmi deploy just before it.
        """
        r = self.report
        local = self.local
        with r.step('local boot %d: the same VM shape from a fresh copy of '
                    'the image and the same config drive' % boot):
            # Sparse: the 3 GiB image holds well under 1 GiB.
            processutils.execute('cp', '--sparse=always', self.image_path,
                                 self.local_root)
            if not self.local_defined:
                self.local_uuid = self._define_local()
        with r.step('local boot %d: power-on to cloud-init\'s marker'
                    % boot):
            local.console_offset = self.lab.console(local.vm).size()
            local.deploy_started = time.monotonic()
            local.powered_on = None
            local.to_marker = None
            timeline = vmlab.ConsoleTimeline(self.lab.console(local.vm),
                                             local.console_offset).start()
            try:
                self.lab.power(self.local_uuid, 'On')
                self._wait_guest(local)
                with r.step('local boot %d: SSH login' % boot):
                    self._ssh_login(local, iscsi=False)
            finally:
                timeline.stop()
        # Off before the next bmi boot: no load beside it, and its disks
        # are rewritten while it is off.
        self._power_off_local()
        return ({'to_marker_s': local.to_marker,
                 'to_login_s': self.to_login},
                self._timeline(local, timeline))

    def _power_off_local(self, timeout=60):
        self.lab.power(self.local_uuid, 'ForceOff')
        deadline = time.monotonic() + timeout
        while self.lab.vm_state(self.local.vm) == 'running':
            if time.monotonic() > deadline:
                raise RuntimeError('%s still running %ss after ForceOff'
                                   % (self.local.vm, timeout))
            time.sleep(0.5)

    def _timeline(self, node, timeline):
        """Seconds after power-on of each phase, the SSH tries, the lines."""
        t0 = node.powered_on or node.deploy_started
        phases = {}
        after = None
        for label, pattern in PHASES:
            t = timeline.first(pattern, after)
            if t is not None:
                phases[label] = round(t - t0, 1)
                after = t
        phases['SSH login'] = round(self.to_login, 1)
        tries = [(round(a - t0, 1), round(b - a, 1), rc, err)
                 for a, b, rc, err in self.ssh_attempts]
        lines = ['%8.2f %s' % (t - t0, text) for t, text in timeline.entries]
        return {'phases': phases, 'ssh_tries': tries, 'console': lines}

    def _copy_config_drive(self, node, path):
        """The node's config drive as Ceph holds it (LUN 2), to a file."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'wb') as f:
            guest.copy_config_drive(node.uuid, f)

    def _define_local(self):
        local = self.local
        disks = [self.local_root, self.local_drive]
        self.lab.remove_vm(local.vm)
        self.net.add_ports(local)
        # The boot nic on the project's boot network (its VLAN, native),
        # as HIL puts a node's: the same DHCP server and address range.
        boot = self.net.boot_networks[self.project]
        self.net.switch.set_tag(local.boot_port,
                                self.net.vlan(boot.hil_network))
        vm_uuid = self.lab.define_vm(
            local.vm, (local.mac, local.boot_port),
            (local.tenant_mac, local.tenant_port),
            memory_mib=self.vm_memory_mib, disks=disks,
            nic_model=self.nic_model)
        self.local_defined = True
        self.report.detail('%s: VM %s, disks %s, boot nic %s on port %s '
                           '(VLAN %d, boot network of %s)' % (
                               local.name, local.vm, disks,
                               local.mac, local.boot_port,
                               self.net.vlan(boot.hil_network),
                               self.project))
        return vm_uuid

    def cleanup(self):
        errors = []
        if self.local_defined:
            try:
                self.lab.remove_vm(self.local.vm)
            except Exception as e:
                errors.append('%s: %s' % (self.local.vm, e))
            for port in self.local.ports.values():
                try:
                    self.net.switch.del_port(port)
                except Exception as e:
                    errors.append('switch port %s: %s' % (port, e))
            self.local_defined = False
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.local_dir)
        return errors + super().cleanup()


def print_timelines(timelines, pair):
    """Print both boots of pair ``pair`` side by side, and their SSH tries.

    Seconds after power-on, each phase's own length in brackets (the
    stamped consoles themselves: :func:`write_consoles`).
    """
    local, bmi = timelines['local'], timelines['bmi']
    labels = [label for label, _p in PHASES] + ['SSH login']
    print('\nTimeline of boot pair %d (s after power-on, from the serial '
          'console stamped every 0.1 s; [length of the phase up to the '
          'next row seen])' % pair)
    print('  %-26s %-16s %-16s' % ('phase starts', 'local', 'bmi'))

    def cell(phases, label):
        if label not in phases:
            return '-'
        seen = [lb for lb in labels if lb in phases]
        i = seen.index(label)
        if i + 1 < len(seen):
            return '%6.1f [%5.1f]' % (phases[label],
                                      phases[seen[i + 1]] - phases[label])
        return '%6.1f' % phases[label]
    for label in labels:
        if label in local['phases'] or label in bmi['phases']:
            print('  %-26s %-16s %-16s' % (label, cell(local['phases'],
                                                       label),
                                           cell(bmi['phases'], label)))
    for boot, tl in sorted(timelines.items()):
        print('  %s SSH tries (start s, took s, rc, last stderr line): %s'
              % (boot, tl['ssh_tries']))


def write_consoles(all_timelines):
    """Each boot's stamped console, ``guest-console-<boot>-<n>.txt``."""
    out = os.path.dirname(benchlib.summary_path())
    os.makedirs(out, exist_ok=True)
    paths = []
    for n, timelines in enumerate(all_timelines, 1):
        for boot, tl in sorted(timelines.items()):
            path = os.path.join(out, 'guest-console-%s-%d.txt' % (boot, n))
            with open(path, 'w') as f:
                f.write('\n'.join(tl['console']) + '\n')
            paths.append(path)
    print('  stamped consoles: %s' % ', '.join(paths))


def median_pair(figures):
    """The index of the pair whose bmi login is the median (low median)."""
    order = sorted(range(len(figures)),
                   key=lambda i: figures[i]['bmi']['to_login_s'])
    return order[(len(order) - 1) // 2]


def medians(figures, boot, key):
    return statistics.median(f[boot][key] for f in figures)


def report(figures, timelines, memory_mib):
    """Print the figures of every pair, their medians and ratios.

    Then the median pair's timeline; writes every stamped console and
    summary.json's ``guest``.
    """
    n = len(figures)
    # The medians of each side, each computed once: (boot, key) -> s.
    med = {(boot, key): medians(figures, boot, key)
           for boot in ('local', 'bmi')
           for key in ('to_marker_s', 'to_login_s')}
    print('\nThe Debian guest (1 vCPU under TCG, %d MiB), %d first boot%s '
          'each, alternating: bmi (iSCSI sanboot of its clone) vs a local '
          'copy of its image' % (memory_mib, n, '' if n == 1 else 's'))
    print('  %-32s %-10s %-10s %s' % ('', 'local', 'bmi', 'ratio'))
    for label, key in (('power-on to cloud-init', 'to_marker_s'),
                       ('power-on to SSH login', 'to_login_s')):
        for i, f in enumerate(figures, 1):
            print('  %-32s %-10s %-10s %.2fx' % (
                '%s, boot %d' % (label, i), '%.1f s' % f['local'][key],
                '%.1f s' % f['bmi'][key],
                f['bmi'][key] / f['local'][key]))
        if n > 1:
            print('  %-32s %-10s %-10s %.2fx  (target <= 1.2x)' % (
                '%s, median' % label, '%.1f s' % med['local', key],
                '%.1f s' % med['bmi', key],
                med['bmi', key] / med['local', key]))
    print('  bmi deploy to ACTIVE: %s s' % ', '.join(
        '%.1f' % f['bmi']['to_active_s'] for f in figures))
    pair = median_pair(figures)
    print_timelines(timelines[pair], pair + 1)
    write_consoles(timelines)
    benchlib.write_summary('guest', {
        'boots': n,
        'local_to_marker_s': round(med['local', 'to_marker_s'], 1),
        'bmi_to_marker_s': round(med['bmi', 'to_marker_s'], 1),
        'local_to_login_s': round(med['local', 'to_login_s'], 1),
        'bmi_to_login_s': round(med['bmi', 'to_login_s'], 1),
        'ratio_to_login': round(med['bmi', 'to_login_s']
                                / med['local', 'to_login_s'], 2),
        'ratios_to_login': [round(f['bmi']['to_login_s']
                                  / f['local']['to_login_s'], 2)
                            for f in figures],
        'bmi_to_active_s': round(medians(figures, 'bmi', 'to_active_s'), 1),
        'local_phases_s': timelines[pair]['local']['phases'],
        'bmi_phases_s': timelines[pair]['bmi']['phases']})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--image', help='the Debian guest\'s raw image '
                        '(default: .state/demo/bmi-debian.raw)')
    parser.add_argument('--boots', type=int, default=3,
                        help='first boots of each, alternating (default 3: '
                        'one boot of each is too noisy under TCG)')
    args = parser.parse_args()
    if args.boots < 1:
        parser.error('--boots must be at least 1')
    image = args.image or os.path.join(lab_state.State().demo_dir,
                                       'bmi-debian.raw')
    if not os.path.exists(image):
        sys.exit('%s is missing: run tools/demo/build-debian.sh %s (outside '
                 'the lab\'s namespace)' % (image, os.path.dirname(image)))
    env = benchlib.load_env()
    ironic_env = lab_state.read_env(env['ironic_state'], 'Ironic')
    bmi_conf = os.path.join(env['ironic_state'], 'bmi.conf')
    CONF(args=[], project='bmi', default_config_files=[bmi_conf])
    lab = vmlab.Lab.from_services(env, os.path.join(env['state_dir'],
                                                    'e2e-lab'))
    report = e2e.Reporter()
    scenario = BenchGuestScenario(
        lab, ironic_env['url'], bmi_conf, e2e.LabNet(env), image,
        project=PROJECT, mac_byte=0xc7, reporter=report, boots=args.boots)
    try:
        scenario.run()
    finally:
        for err in scenario.cleanup():
            print('cleanup: %s' % err, file=sys.stderr)
    report(scenario.figures, scenario.timelines, scenario.vm_memory_mib)
    return 0


if __name__ == '__main__':
    sys.exit(main())
