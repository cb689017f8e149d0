"""A QEMU (TCG) VM with two nics on switch taps: iPXE DHCP + HTTP.

Used by net_proto.py: ``run(ns, sw, state, boot_vlan, log)`` puts a
gateway port on the boot VLAN, starts dnsmasq and nginx there, boots a
VM whose first nic (tap-vm0) is on that VLAN, waits until iPXE has
fetched both HTTP files, and stops everything it started.
"""

import os
import sys
import time
import urllib.request  # noqa: F401  (documentation: fetch via netns)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway  # noqa: E402
import netns  # noqa: E402

GW_PORT, GW_ADDR = 'gw-boot', '10.78.0.1'
VM_MAC0, VM_MAC1 = '52:54:00:77:01:00', '52:54:00:77:01:01'
ROM = '/usr/lib/ipxe/qemu/pxe-e1000.rom'


DOMAIN = """<domain type='qemu'>
  <name>bmi-net-proto-vm</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <bios useserial='yes'/></os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='ethernet'>
      <mac address='%(mac0)s'/><target dev='tap-vm0' managed='no'/>
      <model type='e1000'/><rom file='%(rom)s'/><boot order='1'/>
    </interface>
    <interface type='ethernet'>
      <mac address='%(mac1)s'/><target dev='tap-vm1' managed='no'/>
      <model type='e1000'/><rom file='%(rom)s'/>
    </interface>
    <serial type='file'><source path='%(console)s'/>
      <target port='0'/></serial>
  </devices>
</domain>
"""


def _qemu(ns, state, console):
    pidf = os.path.join(state, 'qemu.pid')
    netns.spawn(ns, [
        'qemu-system-x86_64', '-machine', 'pc', '-accel', 'tcg', '-m', '256',
        '-nographic', '-no-reboot',
        '-netdev', 'tap,id=n0,ifname=tap-vm0,script=no,downscript=no',
        '-device', 'e1000,netdev=n0,mac=%s,romfile=%s,bootindex=1'
        % (VM_MAC0, ROM),
        '-netdev', 'tap,id=n1,ifname=tap-vm1,script=no,downscript=no',
        '-device', 'e1000,netdev=n1,mac=%s,romfile=%s' % (VM_MAC1, ROM)],
        pidf, console)
    return (lambda: bool(netns.read_pid(pidf))), \
        (lambda: netns.stop_pid(pidf))


def _libvirt(ns, state, console):
    import libvirt_ns
    lv = os.path.join(state, 'libvirt')
    t0 = time.monotonic()
    libvirt_ns.start(ns, lv)
    xml = os.path.join(state, 'domain.xml')
    with open(xml, 'w') as f:
        f.write(DOMAIN % {'mac0': VM_MAC0, 'mac1': VM_MAC1, 'rom': ROM,
                          'console': console})
    libvirt_ns.virsh(lv, 'create', xml)
    print('libvirtd up + domain created in %.1f s'
          % (time.monotonic() - t0), flush=True)

    def alive():
        return 'running' in libvirt_ns.virsh(lv, 'domstate',
                                             'bmi-net-proto-vm')

    def stop():
        try:
            libvirt_ns.virsh(lv, 'destroy', 'bmi-net-proto-vm')
        finally:
            libvirt_ns.stop(lv)
    return alive, stop


def run(ns, sw, state, boot_vlan, log, launcher='qemu'):
    os.makedirs(state, exist_ok=True)
    www = os.path.join(state, 'www')
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, 'boot.ipxe'), 'w') as f:
        f.write('#!ipxe\necho BMI-PROTO boot.ipxe fetched as ${net0/ip}\n'
                'imgfetch http://%s/hello.txt\nimgstat\n'
                'echo BMI-PROTO second file fetched\n' % GW_ADDR)
    with open(os.path.join(www, 'hello.txt'), 'w') as f:
        f.write('hello from the gateway\n')
    sw.add_internal(GW_PORT, boot_vlan, GW_ADDR + '/24')
    gateway.start_dnsmasq(ns, state, GW_PORT, '10.78.0.50', '10.78.0.99',
                          'http://%s/boot.ipxe' % GW_ADDR,
                          hosts=[(VM_MAC0, '10.78.0.50')])
    gateway.start_nginx(ns, state, GW_ADDR + ':80', www)
    netns.wait_tcp(ns, GW_ADDR, 80)
    listing = netns.run(ns, ['python3', '-c', (
        'import urllib.request,urllib.error,sys\n'
        'try: urllib.request.urlopen(sys.argv[1])\n'
        'except urllib.error.HTTPError as e: print(e.code)'),
        'http://%s/' % GW_ADDR]).stdout.strip()
    log('GET http://%s/ (directory) -> %s' % (GW_ADDR, listing))
    console = os.path.join(state, 'console-%s.log' % launcher)
    if os.path.exists(console):
        os.unlink(console)
    t0 = time.monotonic()
    alive, stop_vm = {'qemu': _qemu, 'libvirt': _libvirt}[launcher](
        ns, state, console)
    try:
        deadline = time.monotonic() + 180
        while True:
            text = ''
            if os.path.exists(console):
                with open(console, errors='replace') as f:
                    text = f.read()
            if 'BMI-PROTO second file fetched' in text:
                break
            if time.monotonic() > deadline or not alive():
                raise RuntimeError('VM did not fetch its files:\n' +
                                   text[-2000:])
            time.sleep(0.5)
        log('VM (%s): iPXE DHCP + 2 HTTP fetches in %.1f s after start'
            % (launcher, time.monotonic() - t0))
    finally:
        stop_vm()
        gateway.stop(state, 'nginx')
        gateway.stop(state, 'dnsmasq')
        sw.del_port(GW_PORT)
    for name in ('dnsmasq.log', 'nginx-access.log'):
        with open(os.path.join(state, name)) as f:
            for line in f:
                if 'DHCPACK' in line or 'GET' in line or \
                        'DHCPDISCOVER' in line:
                    log(name + ': ' + line.strip())
    for line in text.splitlines():
        if 'BMI-PROTO' in line or 'ok' in line[-4:] or 'net0' in line:
            log('console: ' + line.strip()[-150:])
