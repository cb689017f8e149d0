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

"""Virtual bare metal on the lab's switch, for the demo and the e2e test.

Two lab services (``tools.lab.services``), both inside the lab's network
namespace, started in the background with their pid recorded and stopped
by that pid:

* ``libvirtd`` with all its state under ``.state/libvirt``
  (``libvirt_ns.py``: bind mounts in ``ip netns exec``'s private mount
  namespace, no TCP/TLS, the QEMU driver set up for a container), guests
  under TCG (``<domain type='qemu'>``);
* sushy-tools' Redfish emulator on the namespace's 127.0.0.1, driving
  those domains: the BMC that Ironic's ``redfish`` power interface uses.

Guests are UEFI (OVMF 4M) machines with two nics (e1000, or virtio-net
for the Debian guest) on tap devices that are ports of the lab's Open
vSwitch (``tools.lab.labnet``): the boot
nic first (iPXE ROM, boot order 1), then the tenant nic. The DHCP answer
of the gateway on the node's project boot network hands iPXE
``http://10.78.N.1/boot.ipxe``. Each guest's
serial console goes to a file.

    python -m tools.lab start libvirtd sushy
"""

import contextlib
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from xml.sax import saxutils

from oslo_concurrency import processutils

from tools import lab
from tools.lab import libvirt_ns
from tools.lab import service

REPO = lab.REPO
VENV_BIN = lab.VENV_BIN

OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd'
OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd'
OVMF_VARS_MS = '/usr/share/OVMF/OVMF_VARS_4M.ms.fd'
# The nic models a guest may have, each with its iPXE UEFI ROM (Debian 12's
# ipxe-qemu). e1000 is what the busybox VMs have always had; virtio-net
# costs far fewer device accesses per packet under TCG (no KVM here).
NIC_ROMS = {'e1000': '/usr/lib/ipxe/qemu/efi-e1000.rom',
            'virtio': '/usr/lib/ipxe/qemu/efi-virtio.rom'}
NIC_ROM = NIC_ROMS['e1000']
# virtio-net without any checksum or segmentation offload, host or guest
# (libvirt 9.0's <driver>): the guest's frames reach the userspace Open
# vSwitch (netdev datapath, which does not complete partial checksums
# without userspace-tso-enable, OVS 3.1) with their checksums computed, as
# an e1000's are; the same pitfall as veth ports' tx offload
# (doc/network.md). The QEMU backend, not vhost-net: nothing to gain with
# TCG.
VIRTIO_DRIVER_XML = """      <driver name='qemu'>
        <host csum='off' gso='off' tso4='off' tso6='off' ecn='off' \
ufo='off' mrg_rxbuf='off'/>
        <guest csum='off' tso4='off' tso6='off' ecn='off' ufo='off'/>
      </driver>
"""
DOMAIN_PREFIX = 'bmi-lab-'

# Nics are libvirt "ethernet" interfaces on taps that the switch owns
# (managed='no': libvirt neither creates nor deletes them). Only the boot
# nic has the iPXE ROM and a boot order.
DOMAIN_XML = """<domain type='qemu'>
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
    <interface type='ethernet'>
      <mac address='%(boot_mac)s'/>
      <target dev='%(boot_tap)s' managed='no'/>
      <model type='%(nic_model)s'/>
%(nic_driver)s      <rom file='%(rom)s'/>
%(nic_boot)s    </interface>
%(tenant_nic)s%(disks)s    <serial type='file'>
      <source path='%(console)s' append='on'/>
      <target port='0'/>
    </serial>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
"""
NIC_BOOT_XML = """      <boot order='1'/>
"""
# A local disk (raw file) on the SATA bus: /dev/sd* in the guest, as the
# iSCSI LUNs are. The first one is the boot device of a guest with disks.
DISK_XML = """    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='%(path)s'/>
      <target dev='%(dev)s' bus='sata'/>
%(boot)s    </disk>
"""
TENANT_NIC_XML = """    <interface type='ethernet'>
      <mac address='%(mac)s'/>
      <target dev='%(tap)s' managed='no'/>
      <model type='%(nic_model)s'/>
%(nic_driver)s      <rom enabled='no'/>
    </interface>
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


class ConsoleTimeline(object):
    """Host time stamps of a console's lines, taken as they are written.

    A thread polls the console file every ``interval`` seconds and stamps
    each new line with ``time.monotonic()`` of the poll that first saw
    its first byte (so a stamp is at most ``interval`` late; QEMU writes
    the serial port to the file as the guest sends it). ``first()`` finds
    phases of a boot (tools/bench_guest.py).
    """

    def __init__(self, console, offset=0, interval=0.1):
        self.console = console
        self.offset = offset
        self.interval = interval
        self.entries = []           # (monotonic time, line)
        self._partial = None        # (time its first byte was seen, bytes)
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='console-timeline')
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self._poll()
        if self._partial:
            self._add(*self._partial)
            self._partial = None
        return self

    def _run(self):
        while not self._stop.wait(self.interval):
            self._poll()

    def _poll(self):
        now = time.monotonic()
        try:
            with open(self.console.path, 'rb') as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        if not data:
            return
        self.offset += len(data)
        if self._partial:
            start, head = self._partial
            data = head + data
        else:
            start = now
        *lines, rest = data.split(b'\n')
        for ln in lines:
            self._add(start, ln)
            start = now
        self._partial = (start, rest) if rest else None

    def _add(self, t, raw):
        raw = re.sub(rb'\x1b\[[0-9;?=]*[A-Za-z]', b'', raw)
        text = raw.decode('utf-8', 'replace').replace('\r', '').strip()
        if text:
            self.entries.append((t, text))

    def first(self, pattern, after=None):
        """Time of the first line matching ``pattern``, or None.

        ``after``: the first such line not stamped before it.
        """
        for t, text in list(self.entries):
            if (after is None or t >= after) and re.search(pattern, text):
                return t
        return None


class Libvirtd(service.Service):
    """libvirtd inside the lab namespace, its state in ``state_dir``."""

    name = 'libvirtd'

    @property
    def pidfile(self):
        return os.path.join(self.state_dir, 'libvirtd.pid')

    @property
    def log_path(self):
        return os.path.join(self.state_dir, 'libvirtd.out')

    @property
    def uri(self):
        return libvirt_ns.uri(self.state_dir)

    def info(self):
        return dict(super().info(), uri=self.uri)

    def start(self):
        if self.is_running():
            return
        libvirt_ns.start(self.netns, self.state_dir)
        _wait(lambda: self.check_alive() and self._virsh_ok(), 30,
              what='libvirtd')
        self.log('libvirtd in %s, %s', self.netns, self.uri)

    def _virsh_ok(self):
        try:
            processutils.execute('virsh', '-q', '-c', self.uri, 'version')
            return True
        except processutils.ProcessExecutionError:
            return False

    def stop(self):
        if self.is_running():
            lab = Lab(self.uri, None, self.state_dir)
            try:
                for name in lab.domains():
                    lab.remove_vm(name)
            finally:
                super().stop()


class Sushy(service.Service):
    """sushy-tools' Redfish emulator (libvirt driver) on 127.0.0.1."""

    name = 'sushy'

    def __init__(self, state_dir, libvirt_uri, port=None, netns=None):
        super().__init__(state_dir, netns=netns)
        self.port = int(port or os.environ.get('BMI_SUSHY_PORT', 8000))
        self.libvirt_uri = libvirt_uri

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.port

    def info(self):
        return dict(super().info(), url=self.url)

    def start(self):
        if self.is_running():
            return
        os.makedirs(self.state_dir, exist_ok=True)
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
        _wait(lambda: self.check_alive() and _http_ok(
            self.url + '/redfish/v1/'), 30,
            what='sushy-emulator on %s' % self.url)
        self.log('Redfish on %s', self.url)


class Lab(object):
    """The VMs of the lab: libvirt domains, their consoles, Redfish.

    ``libvirt_uri`` and ``redfish_url`` are those of the lab's libvirtd
    and sushy services (``from_services``); ``state_dir`` keeps the
    domains' XML, NVRAM and consoles.
    """

    def __init__(self, libvirt_uri, redfish_url, state_dir):
        self.uri = libvirt_uri
        self.redfish_url = redfish_url
        self.state_dir = os.path.abspath(state_dir)
        for d in ('nvram', 'console'):
            os.makedirs(os.path.join(self.state_dir, d), exist_ok=True)

    @classmethod
    def from_services(cls, env, state_dir):
        """The Lab of services.json's running libvirtd and sushy.

        :raises: LabError naming the service that does not run.
        """
        svcs = env.get('services', {})
        for name in ('libvirtd', 'sushy'):
            if not svcs.get(name, {}).get('running'):
                raise LabError('the lab service %s is not running: start '
                               'it with `python -m tools.lab start`' % name)
        return cls(svcs['libvirtd']['uri'], svcs['sushy']['url'], state_dir)

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

    def define_vm(self, name, boot_nic, tenant_nic=None, memory_mib=384,
                  disks=(), nic_model='e1000'):
        """Define (not start) a guest; return its libvirt UUID.

        ``boot_nic``, ``tenant_nic``: (MAC, tap device) pairs; the taps
        are switch ports already (``labnet``). ``disks``: paths of raw
        files, local disks sda, sdb, ...; a guest with disks boots from
        the first one (its boot nic is then no boot device), else from
        the network. ``nic_model``: both nics' (``NIC_ROMS``).
        """
        if not name.startswith(DOMAIN_PREFIX):
            raise LabError('guest names start with %s' % DOMAIN_PREFIX)
        for nic in (boot_nic, tenant_nic):
            if nic is not None and not re.match(
                    r'^[0-9a-f]{2}(:[0-9a-f]{2}){5}$', nic[0]):
                raise LabError('bad MAC address %r' % (nic[0],))
        if nic_model not in NIC_ROMS:
            raise LabError('nic model %r is none of %s'
                           % (nic_model, sorted(NIC_ROMS)))
        driver = VIRTIO_DRIVER_XML if nic_model == 'virtio' else ''
        esc = saxutils.escape
        tenant = ''
        if tenant_nic:
            tenant = TENANT_NIC_XML % {'mac': tenant_nic[0],
                                       'tap': esc(tenant_nic[1]),
                                       'nic_model': nic_model,
                                       'nic_driver': driver}
        local = ''.join(DISK_XML % {
            'path': esc(os.path.abspath(path)), 'dev': 'sd' + chr(97 + i),
            'boot': "      <boot order='1'/>\n" if i == 0 else ''}
            for i, path in enumerate(disks))
        xml = DOMAIN_XML % {
            'name': esc(name), 'memory': memory_mib,
            'boot_mac': boot_nic[0], 'boot_tap': esc(boot_nic[1]),
            'nic_boot': '' if disks else NIC_BOOT_XML,
            'tenant_nic': tenant, 'disks': local,
            'ovmf_code': OVMF_CODE, 'ovmf_vars': OVMF_VARS,
            'nvram': os.path.join(self.state_dir, 'nvram',
                                  '%s_VARS.fd' % name),
            'nic_model': nic_model, 'nic_driver': driver,
            'rom': NIC_ROMS[nic_model], 'console': self.console(name).path}
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
