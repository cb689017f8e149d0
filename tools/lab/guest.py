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

"""The real guest: Debian 12 from its clone, configured by cloud-init.

``GuestScenario`` deploys one VM of the lab with the golden image
``tools/demo/build-debian.sh`` builds, through Ironic with a config drive
that Ironic builds itself from a JSON object (meta_data with the instance
uuid, hostname and an SSH key made for the run; user-data that prints a
marker), and checks what a user would:

* cloud-init found the config drive on the node's second LUN and ran the
  user-data: ``BMI-GUEST-OK uuid=<instance uuid> host=<hostname>
  ip=<address>`` on the console;
* SSH: a login with the run's key (a key made for the run, in a 0700
  directory, its public half only in the config drive) as cloud-init's
  default user, whose command reports the hostname the config drive set,
  the iSCSI disk the root is mounted from and (through sudo) the target
  of the live iSCSI session: the node's own; the guest's host key is the
  one cloud-init printed on the console;
* undeploy leaves nothing (``Scenario.check_nothing_left``).
"""

import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid

from bmi_driver.storage.ceph import library as images
from bmi_driver.storage.ceph import rbd_utils
from bmi_driver.storage.ceph.rbd_utils import rbd
from bmi_driver.storage import layout
from tools.lab import e2e

GUEST_USER = 'debian'         # cloud-init's default user on Debian 12
MARKER_RE = (r'BMI-GUEST-OK uuid=(?P<uuid>\S+) host=(?P<host>\S+) '
             r'ip=(?P<ip>[0-9.]+)')
# cloud-init's cc_keys_to_console (Debian 12, cloud-init 22.4).
HOST_KEYS_RE = (r'-----BEGIN SSH HOST KEY KEYS-----\s*(.*?)\s*'
                r'-----END SSH HOST KEY KEYS-----')

USER_DATA = """#!/bin/sh
# bmi guest test: cloud-init ran this from the config drive.
id=$(cat /run/cloud-init/.instance-id)
ip=$(ip -4 -o addr show scope global | awk '{split($4, a, "/");
     print a[1]; exit}')
echo "BMI-GUEST-OK uuid=$id host=$(hostname) ip=$ip" | tee /dev/ttyS0
"""


def copy_config_drive(node_uuid, out):
    """Write the node's config drive (LUN 2) as Ceph holds it to ``out``.

    ``out``: a binary file object. The RBD image is read in 4 MiB pieces.
    """
    pool = images.ImageLibrary().clone_pool
    with rbd_utils.ClientPool().get() as client:
        with rbd.Image(client.ioctx(pool),
                       layout.configdrive_rbd_name(node_uuid),
                       read_only=True) as img:
            size = img.size()
            chunk = 4 * 1024 ** 2
            for off in range(0, size, chunk):
                out.write(img.read(off, min(chunk, size - off)))


class GuestScenario(e2e.Scenario):
    """Deploy the Debian guest, wait for cloud-init, log in over SSH."""

    # systemd, cloud-init (Python) and sshd under TCG.
    vm_memory_mib = 1024
    # Far cheaper than e1000 under TCG, for iPXE's sanboot reads and the
    # guest's root disk alike (tools/bench_guest.py: issue 14); the image's
    # initramfs has virtio_net (tools/demo/build-debian.sh).
    nic_model = 'virtio'

    def __init__(self, *args, ssh_timeout=120, **kwargs):
        # Power-on to cloud-init's user-data: about 130 s under TCG here.
        kwargs.setdefault('boot_timeout', 900)
        # Its own node names beside the demo's other scenarios.
        kwargs.setdefault('prefix', 'guest')
        super().__init__(*args, **kwargs)
        self.ssh_timeout = ssh_timeout
        self.key_dir = None
        self.instance_uuid = str(uuid.uuid4())
        self.hostname = '%s-%s' % (self.prefix, self.tag)
        self.guest = None           # the marker's fields
        self.login = None           # what the SSH command printed
        self.to_login = None
        # (start, end, returncode, first line of stderr) of each try.
        self.ssh_attempts = []

    def make_nodes(self, mac_byte):
        return [e2e.Node('%s-node-1' % self.prefix, self.project, 1,
                         mac_byte)]

    def run(self):
        r = self.report
        node = self.nodes[0]
        with r.step('import the Debian golden image with bmi-manage'):
            self.golden = self._import_image()
        with r.step('define a VM on the switch and enroll it in HIL and '
                    'Ironic'):
            self.enroll_all()
        with r.step('deploy %s with a config drive Ironic builds'
                    % node.name):
            self._deploy_guest(node)
            self._wait_active(node)
        with r.step('cloud-init on %s applies the config drive'
                    % node.name):
            self._wait_guest(node)
        with r.step('log in to %s over SSH' % node.name):
            self._ssh_login(node)
        with r.step('undeploy %s' % node.name):
            self.undeploy_all()
        with r.step('check that nothing is left'):
            self.check_nothing_left()

    def cleanup(self):
        errors = super().cleanup()
        if self.key_dir:
            shutil.rmtree(self.key_dir, ignore_errors=True)
            self.key_dir = None
        return errors

    # -- steps -----------------------------------------------------------
    def _make_key(self):
        # A key per deploy; a scenario that deploys again (the guest bench's
        # boots) drops the last one's.
        if self.key_dir:
            shutil.rmtree(self.key_dir, ignore_errors=True)
        self.key_dir = tempfile.mkdtemp(prefix='bmi-guest-')
        os.chmod(self.key_dir, 0o700)
        key = os.path.join(self.key_dir, 'id_ed25519')
        subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '',
                        '-C', 'bmi-guest-test', '-f', key], check=True)
        with open(key + '.pub') as f:
            return key, f.read().strip()

    def _deploy_guest(self, node):
        self.key, public = self._make_key()
        drive = {
            'meta_data': {
                'uuid': self.instance_uuid,
                'hostname': self.hostname,
                'name': self.hostname,
                'public_keys': {'bmi-guest-test': public},
            },
            'user_data': USER_DATA,
        }
        node.console_offset = self.lab.console(node.vm).size()
        self.ironic.node.update(node.uuid, [
            {'op': 'add', 'path': '/instance_info/image_source',
             'value': self.golden}])
        self.report.detail('$ baremetal node deploy %s --config-drive '
                           '\'{"meta_data": {...}, "user_data": ...}\''
                           % node.uuid)
        node.deploy_started = time.monotonic()
        node.powered_on = None
        node.to_marker = None
        self.ironic.node.set_provision_state(node.uuid, 'active',
                                             configdrive=drive)

    def _wait_guest(self, node):
        deadline = time.monotonic() + self.boot_timeout
        console = self.lab.console(node.vm)
        shown = 0
        while True:
            self._note_power_on(node)
            lines = console.lines(node.console_offset)
            for ln in lines[shown:]:
                self.report.detail('console %s | %s' % (node.name, ln))
            shown = len(lines)
            text = console.text(node.console_offset)
            m = re.search(MARKER_RE, text)
            if m:
                break
            if time.monotonic() > deadline:
                raise RuntimeError('%s: no BMI-GUEST-OK within %ss '
                                   '(console: %s)' % (
                                       node.name, self.boot_timeout,
                                       console.path))
            time.sleep(2)
        node.to_marker = time.monotonic() - (node.powered_on
                                             or node.deploy_started)
        self.guest = m.groupdict()
        if self.guest['uuid'] != self.instance_uuid:
            raise RuntimeError('%s: cloud-init ran instance %s, not %s'
                               % (node.name, self.guest['uuid'],
                                  self.instance_uuid))
        if self.guest['host'] != self.hostname:
            raise RuntimeError('%s: hostname %s, not %s' % (
                node.name, self.guest['host'], self.hostname))
        self.report.detail('%s: cloud-init ran the user-data %.1fs after '
                           'power-on (%s)' % (node.name, node.to_marker,
                                              m.group(0)))

    def _host_keys(self, node):
        """The host keys cloud-init prints on the console.

        After the user-data (cloud-init's final stage runs keys-to-console
        after scripts-user): waited for, up to ``ssh_timeout``.
        """
        deadline = time.monotonic() + self.ssh_timeout
        while True:
            text = self.lab.console(node.vm).text(node.console_offset)
            m = re.search(HOST_KEYS_RE, text, re.S)
            if m:
                break
            if time.monotonic() > deadline:
                raise RuntimeError('%s: cloud-init printed no host keys '
                                   'within %ss' % (node.name,
                                                   self.ssh_timeout))
            time.sleep(2)
        # Lines may carry cloud-init's "ec2: " prefix.
        lines = [re.sub(r'^(ec2:\s*)', '', ln.strip())
                 for ln in m.group(1).splitlines()]
        keys = [ln for ln in lines if ln.startswith(('ssh-', 'ecdsa-'))]
        if not keys:
            raise RuntimeError('%s: no host key in cloud-init\'s output'
                               % node.name)
        return keys

    def _ssh_login(self, node, iscsi=True):
        """Log in with the run's key; check hostname, root (and target).

        ``iscsi=False``: a guest booted from a local disk
        (tools/bench_guest.py), which has no iSCSI session to show.
        """
        ip = self.guest['ip']
        with open(self._known_hosts(), 'w') as f:
            for key in self._host_keys(node):
                f.write('%s %s\n' % (ip, key))
        argv = self._ssh_argv(
            # The live iSCSI session (its sysfs entry, through the sudo
            # rule cloud-init gave the default user).
            # A guest from a local disk runs sudo too: the same work.
            'hostname; findmnt -n -o SOURCE /; sudo -n ' + (
                'cat /sys/class/iscsi_session/session*/targetname'
                if iscsi else 'true'))
        self.report.detail('$ ssh %s@%s hostname; findmnt ...'
                           % (GUEST_USER, ip))
        deadline = time.monotonic() + self.ssh_timeout
        self.ssh_attempts = []
        while True:
            started = time.monotonic()
            proc = subprocess.run(argv, capture_output=True, text=True,
                                  timeout=60)
            self.ssh_attempts.append((started, time.monotonic(),
                                      proc.returncode,
                                      (proc.stderr.strip().splitlines()
                                       or [''])[-1]))
            if proc.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError('%s: SSH login to %s failed: %s' % (
                    node.name, ip, proc.stderr.strip()))
            time.sleep(3)
        self.to_login = time.monotonic() - (node.powered_on
                                            or node.deploy_started)
        out = proc.stdout.split()
        self.login = out
        if len(out) < (3 if iscsi else 2) or out[0] != self.hostname:
            raise RuntimeError('%s: the SSH command printed %r' % (
                node.name, proc.stdout))
        if not out[1].startswith('/dev/sd'):
            raise RuntimeError('%s: root is on %s, not the iSCSI LUN'
                               % (node.name, out[1]))
        if iscsi and not out[2].endswith(':' + node.uuid):
            raise RuntimeError('%s: booted from target %s, not its own'
                               % (node.name, out[2]))
        for ln in proc.stdout.splitlines():
            self.report.detail('ssh %s | %s' % (node.name, ln))
        self.report.detail('%s: SSH login %.1fs after power-on'
                           % (node.name, self.to_login))

    def _known_hosts(self):
        return os.path.join(self.key_dir, 'known_hosts')

    def _ssh_argv(self, command):
        """ssh to the guest with the run's key and its checked host keys."""
        return ['ssh', '-i', self.key, '-o', 'BatchMode=yes',
                '-o', 'StrictHostKeyChecking=yes',
                '-o', 'UserKnownHostsFile=' + self._known_hosts(),
                '-o', 'ConnectTimeout=5',
                '%s@%s' % (GUEST_USER, self.guest['ip']), command]

    def run_on_guest(self, node, command):
        """One command over SSH, after ``_ssh_login``; its stdout.

        :raises: RuntimeError when it fails.
        """
        proc = subprocess.run(self._ssh_argv(command), capture_output=True,
                              text=True, timeout=60)
        for ln in proc.stdout.splitlines():
            self.report.detail('ssh %s | %s' % (node.name, ln))
        if proc.returncode != 0:
            raise RuntimeError('%s: %r failed (%d): %s' % (
                node.name, command, proc.returncode, proc.stderr.strip()))
        return proc.stdout

    def summary(self):
        node = self.nodes[0]
        return ['', 'Summary (Debian guest)',
                '  time to ACTIVE            %.1f s' % (node.to_active or 0),
                '  power-on to cloud-init    %.1f s' % (node.to_marker or 0),
                '  power-on to SSH login     %.1f s' % (self.to_login or 0)]
