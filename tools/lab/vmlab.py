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

"""A lab of virtual bare metal for the demo and the end-to-end test.

Runs, each bound to 127.0.0.1, each started in the background with its pid
recorded under the lab's state directory and stopped by that pid:

* ``libvirtd`` with a private socket and no TCP/TLS (there is no systemd
  here), its QEMU driver set up for a container (``qemu.conf`` settings of
  the field notes), guests under TCG (``<domain type='qemu'>``);
* sushy-tools' Redfish emulator driving those domains, the BMC that
  Ironic's ``redfish`` power interface talks to;
* a plain HTTP server for iPXE scripts (Ironic's ``[deploy] http_root``).

Guests are UEFI (OVMF 4M) machines with one e1000 nic on QEMU user
networking: the host is 10.0.2.2 inside, and the DHCP answer hands iPXE
the boot script's URL. Each guest's serial console goes to a file.

    python -m tools.lab.vmlab start|stop|status STATE_DIR

(also ``python -m tools.lab start|stop libvirtd sushy http``, in
``.state/demo/lab``).
"""

import contextlib
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from xml.sax import saxutils

from oslo_concurrency import processutils

from tools import lab
from tools.lab import service

REPO = lab.REPO
VENV_BIN = lab.VENV_BIN

OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd'
OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd'
OVMF_VARS_MS = '/usr/share/OVMF/OVMF_VARS_4M.ms.fd'
NIC_ROM = '/usr/lib/ipxe/qemu/efi-e1000.rom'
QEMU_CONF = '/etc/libvirt/qemu.conf'
# What libvirtd's QEMU driver needs in a container without systemd. Its
# first line marks the block in /etc/libvirt/qemu.conf: it keeps the module's
# old path so that a machine that has the block does not get it twice.
QEMU_CONF_BLOCK = """
# --- bmi_driver demo (tests/functional/vmlab.py): no systemd, no cgroups
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
"""
HOST_FROM_GUEST = '10.0.2.2'
DOMAIN_PREFIX = 'bmi-lab-'

DOMAIN_XML = """<domain type='qemu'
    xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>%(name)s</name>
  <memory unit='MiB'>%(memory)d</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <loader readonly='yes' type='pflash'>%(ovmf_code)s</loader>
    <nvram template='%(ovmf_vars)s'>%(nvram)s</nvram>
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <interface type='user'>
      <mac address='%(mac)s'/>
      <model type='e1000'/>
      <rom file='%(rom)s'/>
      <boot order='1'/>
    </interface>
    <serial type='file'>
      <source path='%(console)s' append='on'/>
      <target port='0'/>
    </serial>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-set'/>
    <qemu:arg value='netdev.hostnet0.bootfile=%(bootfile)s'/>
  </qemu:commandline>
  <qemu:capabilities>
    <qemu:del capability='netdev.json'/>
  </qemu:capabilities>
</domain>
"""


class LabError(service.ServiceError):
    """The lab could not do what was asked; the text says why."""


def _wait(predicate, timeout, interval=0.2, what='condition'):
    try:
        return service.wait_for(predicate, timeout, interval, what)
    except LabError:
        raise
    except service.ServiceError as e:
        raise LabError(str(e)) from None


def _http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status < 400
    except (urllib.error.URLError, OSError):
        return False


class Console(object):
    """A guest's serial console log file."""

    def __init__(self, path):
        self.path = path

    def size(self):
        try:
            return os.path.getsize(self.path)
        except FileNotFoundError:
            return 0

    def text(self, offset=0):
        try:
            with open(self.path, 'rb') as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return ''
        # UEFI consoles emit escape sequences: keep the lines readable.
        data = re.sub(rb'\x1b\[[0-9;?=]*[A-Za-z]', b'', data)
        return data.decode('utf-8', 'replace').replace('\r', '')

    def lines(self, offset=0, pattern=r'^(BMI-|bmi-initramfs)'):
        return [ln for ln in self.text(offset).splitlines()
                if re.search(pattern, ln)]

    def wait_for(self, pattern, offset=0, timeout=120, fail=r'BMI-BOOT-FAIL'):
        """Wait until a line matches ``pattern``; return its match.

        Raises LabError as soon as a line matches ``fail`` (the image's
        initramfs prints why it gave up), or on timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            text = self.text(offset)
            m = re.search(pattern, text, re.M)
            if m:
                return m
            bad = re.search('^.*(%s).*$' % fail, text, re.M) if fail else None
            if bad:
                raise LabError('guest failed: %s' % bad.group(0).strip())
            if time.monotonic() > deadline:
                raise LabError('no %r on %s within %ss'
                               % (pattern, self.path, timeout))
            time.sleep(0.5)


class _LabService(service.Service):
    """A daemon of the VM lab: pid in the lab directory, log in log/."""

    def __init__(self, state_dir, log_dir):
        super().__init__(state_dir)
        self.log_dir = log_dir

    @property
    def log_path(self):
        return os.path.join(self.log_dir, '%s.log' % self.name)

    def _alive_and(self, check, *args):
        if not self.is_running():
            raise LabError('%s exited: see %s' % (self.name, self.log_path))
        return check(*args)


class Libvirtd(_LabService):
    """libvirtd with a private socket and no TCP/TLS (no systemd here)."""

    name = 'libvirtd'

    def __init__(self, state_dir, log_dir, run_dir, virsh):
        super().__init__(state_dir, log_dir)
        self.run_dir = run_dir
        self.virsh = virsh

    def start(self):
        if self.is_running():
            return
        _ensure_qemu_conf()
        os.makedirs(self.run_dir, exist_ok=True)
        conf = os.path.join(self.state_dir, 'libvirtd.conf')
        with open(conf, 'w') as f:
            f.write('unix_sock_dir = "%s"\n'
                    'unix_sock_rw_perms = "0700"\n'
                    'auth_unix_ro = "none"\n'
                    'auth_unix_rw = "none"\n'
                    'log_outputs = "3:file:%s"\n'
                    % (self.run_dir,
                       os.path.join(self.log_dir, 'libvirtd-daemon.log')))
        # No --listen: libvirtd serves its unix sockets only (no TCP/TLS).
        self.spawn(['libvirtd', '-f', conf, '-p',
                    os.path.join(self.run_dir, 'libvirtd.pid')])
        _wait(lambda: self._alive_and(self._virsh_ok), 30, what='libvirtd')

    def _virsh_ok(self):
        try:
            self.virsh('version')
            return True
        except processutils.ProcessExecutionError:
            return False


class Sushy(_LabService):
    """sushy-tools' Redfish emulator (libvirt driver) on 127.0.0.1."""

    name = 'sushy'

    def __init__(self, state_dir, log_dir, port, libvirt_uri):
        super().__init__(state_dir, log_dir)
        self.port = port
        self.libvirt_uri = libvirt_uri

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.port

    def start(self):
        if self.is_running():
            return
        conf = os.path.join(self.state_dir, 'sushy.conf')
        with open(conf, 'w') as f:
            f.write('SUSHY_EMULATOR_LISTEN_IP = %r\n'
                    'SUSHY_EMULATOR_LISTEN_PORT = %d\n'
                    'SUSHY_EMULATOR_LIBVIRT_URI = %r\n'
                    'SUSHY_EMULATOR_BOOT_LOADER_MAP = %r\n'
                    'SUSHY_EMULATOR_SECURE_BOOT_DISABLED_NVRAM = %r\n'
                    'SUSHY_EMULATOR_SECURE_BOOT_ENABLED_NVRAM = %r\n'
                    'SUSHY_EMULATOR_IGNORE_BOOT_DEVICE = False\n'
                    % ('127.0.0.1', self.port, self.libvirt_uri,
                       {'UEFI': {'x86_64': OVMF_CODE},
                        'Legacy': {'x86_64': None}},
                       OVMF_VARS, OVMF_VARS_MS))
        self.spawn([os.path.join(VENV_BIN, 'sushy-emulator'),
                    '--config', conf])
        _wait(lambda: self._alive_and(_http_ok, self.url + '/redfish/v1/'),
              30, what='sushy-emulator on %s' % self.url)


class HttpBoot(_LabService):
    """A plain HTTP server for iPXE files (Ironic's [deploy] http_root)."""

    name = 'http'

    def __init__(self, state_dir, log_dir, port, root):
        super().__init__(state_dir, log_dir)
        self.port = port
        self.root = root

    def start(self):
        if self.is_running():
            return
        os.makedirs(self.root, exist_ok=True)
        self.spawn([sys.executable, '-m', 'http.server',
                    '--bind', '127.0.0.1', '--directory', self.root,
                    str(self.port)])
        _wait(lambda: self._alive_and(
            _http_ok, 'http://127.0.0.1:%d/' % self.port),
            15, what='HTTP server on port %d' % self.port)


class Lab(object):
    """libvirtd + sushy-emulator + an HTTP server, in ``state_dir``."""

    def __init__(self, state_dir, sushy_port=None, http_port=None,
                 http_root=None):
        self.state_dir = os.path.abspath(state_dir)
        self.sushy_port = int(sushy_port or
                              os.environ.get('BMI_SUSHY_PORT', 8000))
        self.http_port = int(http_port or
                             os.environ.get('BMI_DEMO_HTTP_PORT', 8089))
        self.http_root = http_root or os.path.join(self.state_dir, 'http')
        self.run_dir = os.path.join(self.state_dir, 'libvirt')
        self.log_dir = os.path.join(self.state_dir, 'log')
        self.socket = os.path.join(self.run_dir, 'libvirt-sock')
        self.uri = 'qemu:///system?socket=%s' % self.socket
        # In start order; stopped in reverse.
        self.services = [
            Libvirtd(self.state_dir, self.log_dir, self.run_dir,
                     lambda *a: self.virsh(*a)),
            Sushy(self.state_dir, self.log_dir, self.sushy_port, self.uri),
            HttpBoot(self.state_dir, self.log_dir, self.http_port,
                     self.http_root),
        ]

    def service(self, name):
        return {s.name: s for s in self.services}[name]

    def _pid(self, name):
        return self.service(name).pid()

    def url(self, path=''):
        """URL of the HTTP server as guests see it."""
        return 'http://%s:%d/%s' % (HOST_FROM_GUEST, self.http_port, path)

    @property
    def redfish_url(self):
        return 'http://127.0.0.1:%d' % self.sushy_port

    # -- start / stop ----------------------------------------------------
    def start(self, names=None):
        """Start the lab's daemons (or those ``names``)."""
        for d in (self.state_dir, self.run_dir, self.log_dir, self.http_root,
                  os.path.join(self.state_dir, 'nvram'),
                  os.path.join(self.state_dir, 'console')):
            os.makedirs(d, exist_ok=True)
        for svc in self.services:
            if names is None or svc.name in names:
                svc.start()
        self._write_env()

    def stop(self, names=None):
        """Stop what the lab started (or those ``names``).

        Safe to call twice. Stopping libvirtd first removes the lab's
        guests.
        """
        errors = []
        names = names or [s.name for s in self.services]
        if 'libvirtd' in names and self._pid('libvirtd') is not None:
            try:
                for name in self.domains():
                    self.remove_vm(name)
            except Exception as e:  # still stop the daemons
                errors.append('removing domains: %s' % e)
        for svc in reversed(self.services):
            if svc.name in names:
                svc.stop()
        if not any(s.is_running() for s in self.services):
            try:
                os.unlink(os.path.join(self.state_dir, 'env.json'))
            except FileNotFoundError:
                pass
        if errors:
            raise LabError('; '.join(errors))

    def _write_env(self):
        with open(os.path.join(self.state_dir, 'env.json'), 'w') as f:
            json.dump({'libvirt_uri': self.uri,
                       'redfish_url': self.redfish_url,
                       'http_root': self.http_root,
                       'http_url': self.url().rstrip('/')}, f, indent=2)

    # -- guests ----------------------------------------------------------
    def virsh(self, *args):
        out, _err = processutils.execute('virsh', '-q', '-c', self.uri,
                                         *args)
        return out

    def domains(self):
        out = self.virsh('list', '--all', '--name')
        return [n.strip() for n in out.splitlines()
                if n.strip().startswith(DOMAIN_PREFIX)]

    def console(self, name):
        return Console(os.path.join(self.state_dir, 'console',
                                    '%s.log' % name))

    def define_vm(self, name, mac, bootfile, memory_mib=384):
        """Define (not start) a guest; return its libvirt UUID.

        ``bootfile``: the URL the DHCP answer hands iPXE.
        """
        if not name.startswith(DOMAIN_PREFIX):
            raise LabError('guest names start with %s' % DOMAIN_PREFIX)
        if not re.match(r'^[0-9a-f]{2}(:[0-9a-f]{2}){5}$', mac):
            raise LabError('bad MAC address %r' % mac)
        esc = saxutils.escape
        xml = DOMAIN_XML % {
            'name': esc(name), 'memory': memory_mib, 'mac': mac,
            'ovmf_code': OVMF_CODE, 'ovmf_vars': OVMF_VARS,
            'nvram': os.path.join(self.state_dir, 'nvram',
                                  '%s_VARS.fd' % name),
            'rom': NIC_ROM, 'console': self.console(name).path,
            'bootfile': esc(bootfile, {"'": '&apos;'})}
        path = os.path.join(self.state_dir, '%s.xml' % name)
        with open(path, 'w') as f:
            f.write(xml)
        # A new guest, a new console log.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.console(name).path)
        self.virsh('define', path)
        return self.virsh('domuuid', name).strip()

    def remove_vm(self, name):
        """Destroy and undefine a guest (and its NVRAM); missing is fine."""
        if name not in self.domains():
            return
        try:
            self.virsh('destroy', name)
        except processutils.ProcessExecutionError:
            pass  # not running
        self.virsh('undefine', '--nvram', name)

    def vm_state(self, name):
        return self.virsh('domstate', name).strip()

    # -- Redfish ---------------------------------------------------------
    def redfish(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.redfish_url + path, data=data,
                                     method=method)
        if data is not None:
            req.add_header('Content-Type', 'application/json')
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
        return json.loads(text) if text else None

    def power(self, uuid, reset_type):
        self.redfish('POST', '/redfish/v1/Systems/%s/Actions/'
                     'ComputerSystem.Reset' % uuid,
                     {'ResetType': reset_type})

    def set_boot(self, uuid, target='Pxe', mode='UEFI'):
        self.redfish('PATCH', '/redfish/v1/Systems/%s' % uuid,
                     {'Boot': {'BootSourceOverrideTarget': target,
                               'BootSourceOverrideEnabled': 'Continuous',
                               'BootSourceOverrideMode': mode}})


def _ensure_qemu_conf():
    with open(QEMU_CONF) as f:
        if QEMU_CONF_BLOCK.strip().splitlines()[0] in f.read():
            return
    with open(QEMU_CONF, 'a') as f:
        f.write(QEMU_CONF_BLOCK)


def main(argv):
    if len(argv) != 3 or argv[1] not in ('start', 'stop', 'status'):
        print('usage: python -m tools.lab.vmlab start|stop|status '
              'STATE_DIR', file=sys.stderr)
        return 2
    lab = Lab(argv[2])
    if argv[1] == 'start':
        lab.start()
        print(json.dumps({'libvirt_uri': lab.uri,
                          'redfish_url': lab.redfish_url,
                          'http_root': lab.http_root,
                          'http_url': lab.url()}))
    elif argv[1] == 'stop':
        lab.stop()
    else:
        for name in ('libvirtd', 'sushy', 'http'):
            print('%s: %s' % (name, lab._pid(name) or 'stopped'))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
