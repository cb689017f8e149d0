"""End-to-end check of the lab network: real OVS, real HIL, pings, VM.

``python3 tools/lab/net_proto.py STATE_DIR [--vm] [--no-guard]
[--keep]`` creates the netns
``bmi-net-proto``, runs every service inside it, prints what it sees
and deletes the namespace again. It re-executes itself inside the
namespace (``--inside``) so that HIL's API on the namespace's
127.0.0.1 is reachable without anything listening outside.
"""

import json
import os
import secrets
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hil_real  # noqa: E402
import netns  # noqa: E402
import switch  # noqa: E402

NS = 'bmi-net-proto'
ENDPOINTS = {  # node -> (child netns, veth port on the switch, address)
    'a1': ('bmi-np-a1', 'vp-a1', '10.77.0.11/24'),
    'a2': ('bmi-np-a2', 'vp-a2', '10.77.0.12/24'),
    'b1': ('bmi-np-b1', 'vp-b1', '10.77.0.13/24'),
}
HIL_PORT = 7100


def log(*args):
    print('[%7.2f]' % (time.monotonic() - T0), *args, flush=True)


T0 = time.monotonic()


def secret_file(path):
    """A password in a 0600 file, made once; returns it."""
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(secrets.token_urlsafe(18))
    with open(path) as f:
        return f.read().strip()


def ping(src_ns, addr):
    r = netns.run(src_ns, ['ping', '-c', '2', '-i', '0.2', '-W', '1', addr],
                  check=False)
    return 'reachable' if r.returncode == 0 else 'blocked'


def inside(state, with_vm, guard=True):
    hil_dir = os.path.join(state, 'hil')
    sw = switch.Switch(NS, os.path.join(state, 'ovs'), bridge='br-lab')
    t = time.monotonic()
    sw.start()
    log('ovs started in %.2f s' % (time.monotonic() - t))
    for node, (cns, port, cidr) in ENDPOINTS.items():
        sw.add_veth(port, cns, cidr=cidr, guard=guard)
    sw.add_tap('tap-vm0', guard=guard)
    sw.add_tap('tap-vm1', guard=guard)

    t = time.monotonic()
    hil_real.install(hil_dir)
    log('hil install (cached if fast) %.1f s' % (time.monotonic() - t))
    admin_pw = secret_file(os.path.join(state, 'hil-admin.pw'))
    user_pw = secret_file(os.path.join(state, 'hil-bmi.pw'))
    hil_real.write_config(hil_dir)
    t = time.monotonic()
    hil_real.init_db(NS, hil_dir, 'admin', admin_pw)
    log('hil db create + admin user %.1f s' % (time.monotonic() - t))
    t = time.monotonic()
    url = hil_real.start(NS, hil_dir, HIL_PORT)
    log('hil api+serve-networks up in %.1f s at %s'
        % (time.monotonic() - t, url))
    admin = hil_real.Client(url, 'admin', admin_pw)
    layout = {
        'projects': ['pa', 'pb'],
        'users': {'bmi': {'password': user_pw, 'projects': ['pa', 'pb']}},
        'switch': {'name': 'sw0', 'bridge': 'br-lab'},
        'nodes': {
            'a1': {'project': 'pa',
                   'nics': {'eth0': {'mac': '52:54:00:77:00:11',
                                     'port': 'vp-a1'}}},
            'a2': {'project': 'pa',
                   'nics': {'eth0': {'mac': '52:54:00:77:00:12',
                                     'port': 'vp-a2'}}},
            'b1': {'project': 'pb',
                   'nics': {'eth0': {'mac': '52:54:00:77:00:13',
                                     'port': 'vp-b1'}}},
            'vm0': {'project': 'pa',
                    'nics': {'boot': {'mac': '52:54:00:77:01:00',
                                      'port': 'tap-vm0'},
                             'tenant': {'mac': '52:54:00:77:01:01',
                                        'port': 'tap-vm1'}}},
        },
        'networks': {
            'net-a': {'owner': 'pa', 'access': 'pa'},
            'net-b': {'owner': 'pb', 'access': 'pb'},
            'boot-pa': {'owner': 'pa', 'access': 'pa'},
            'net-a2': {'owner': 'pa', 'access': 'pa'},
        },
    }
    t = time.monotonic()
    hil_real.setup_lab(admin, layout)
    log('admin setup %.1f s' % (time.monotonic() - t))

    user = hil_real.Client(url, 'bmi', user_pw)
    # (a) the non-admin user moves ports onto VLANs
    vlan_of = {}
    for net in ('net-a', 'net-b', 'boot-pa', 'net-a2'):
        ch = admin.call('GET', 'network/' + net)['channels']
        vlan_of[net] = int([c for c in ch if c != 'vlan/native'][0][5:])
    log('HIL VLANs', vlan_of)
    before = {p: sw.port_vlans(p) for _, p, _ in ENDPOINTS.values()}
    log('ports before connect (tag, trunks):', before)
    for node, net in (('a1', 'net-a'), ('a2', 'net-a'), ('b1', 'net-b')):
        t = time.monotonic()
        sid = user.connect_network(node, 'eth0', net)
        took = user.wait_action(sid)
        port = ENDPOINTS[node][1]
        seen = sw.tenant_vlans(port)
        log('connect_network %s/eth0 -> %s by bmi: DONE in %.2f s '
            '(request %.2f s); switch %s tag=%s trunks=%s'
            % (node, net, took, time.monotonic() - t - took, port,
               seen[0], seen[1]))
        assert seen[0] == vlan_of[net], (seen, vlan_of[net])
    # (b) pings
    results = {}
    for src, dst in (('a1', 'a2'), ('a2', 'a1'), ('a1', 'b1'),
                     ('b1', 'a2')):
        addr = ENDPOINTS[dst][2].split('/')[0]
        results[(src, dst)] = ping(ENDPOINTS[src][0], addr)
        log('PROBE %s -> %s tenant-net: seen %s' % (src, dst,
                                                    results[(src, dst)]))
    assert results[('a1', 'a2')] == 'reachable'
    assert results[('a2', 'a1')] == 'reachable'
    assert results[('a1', 'b1')] == 'blocked'
    assert results[('b1', 'a2')] == 'blocked'
    heard, injected = leak_checks(vlan_of['net-b'])
    if not guard:
        # --no-guard shows HIL's ovs driver as it is: empty trunks.
        log('without guard VLANs: heard=%s injected=%s' % (heard, injected))
        return
    assert not heard and not injected
    # a tagged channel goes into trunks beside the guard VLAN
    v2 = vlan_of['net-a2']
    user.wait_action(user.connect_network('a1', 'eth0', 'net-a2',
                                          'vlan/%d' % v2))
    with_trunk = sw.port_vlans('vp-a1')
    user.wait_action(user.detach_network('a1', 'eth0', 'net-a2'))
    after = sw.port_vlans('vp-a1')
    log('a1 tagged vlan/%d: switch %s; after detach %s'
        % (v2, with_trunk, after))
    assert with_trunk == (vlan_of['net-a'], sorted([3800, v2]))
    assert after == (vlan_of['net-a'], [3800])
    # detach clears the tag
    t = time.monotonic()
    sid = user.detach_network('b1', 'eth0', 'net-b')
    took = user.wait_action(sid)
    log('detach_network b1/eth0 by bmi: DONE in %.2f s; switch %s'
        % (took, sw.port_vlans('vp-b1')))
    assert sw.tenant_vlans('vp-b1') == (None, [])
    log('PROBE b1(free) -> a1: seen %s'
        % ping(ENDPOINTS['b1'][0], '10.77.0.11'))

    if with_vm:
        import vm_boot
        sid = user.connect_network('vm0', 'boot', 'boot-pa')
        user.wait_action(sid)
        sid = user.connect_network('vm0', 'tenant', 'net-a')
        user.wait_action(sid)
        log('vm0 ports', sw.port_vlans('tap-vm0'), sw.port_vlans('tap-vm1'))
        for launcher in ('qemu', 'libvirt'):
            vm_boot.run(NS, sw, os.path.join(state, 'vm'),
                        vlan_of['boot-pa'], log, launcher)
    # No password in any process's argv (hil-admin read it from stdin,
    # the user's came in a request body).
    leaks = []
    for pid in os.listdir('/proc'):
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                argv = f.read()
        except OSError:
            continue
        if admin_pw.encode() in argv or user_pw.encode() in argv:
            leaks.append(pid)
    log('passwords on command lines: %s' % (leaks or 'none'))
    assert not leaks
    json.dump({'ok': True}, open(os.path.join(state, 'result.json'), 'w'))


INJECT = (
    # A tagged (802.1Q) ARP request for argv[3], sent raw from eth0 as
    # a tenant would: can a port reach another VLAN by tagging?
    'import socket,struct,sys\n'
    's=socket.socket(socket.AF_PACKET,socket.SOCK_RAW);s.bind(("eth0",0))\n'
    'm=bytes.fromhex(open("/sys/class/net/eth0/address").read().strip()'
    '.replace(":",""))\n'
    'a=struct.pack("!HHBBH6s4s6s4s",1,0x800,6,4,1,m,'
    'socket.inet_aton(sys.argv[2]),bytes(6),socket.inet_aton(sys.argv[3]))\n'
    'f=bytes(6*[255])+m+struct.pack("!HHH",0x8100,int(sys.argv[1]),0x806)+a'
    '\n'
    'for _ in range(5): s.send(f)\n')


def capture(cns, seconds, filt, during):
    """tcpdump -e in ``cns`` while ``during()`` runs; returns lines."""
    proc = subprocess.Popen(netns.cmd(cns, [
        'timeout', str(seconds), 'tcpdump', '-l', '-e', '-n', '-i', 'eth0']
        + filt), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True)
    time.sleep(1.0)   # tcpdump attaches
    during()
    out = proc.communicate()[0]
    return [line for line in out.splitlines() if line.strip()]


def leak_checks(vlan_b):
    """A1 (net-a) must neither hear net-b's broadcasts nor inject into
    net-b by tagging its frames with net-b's VLAN."""
    a1, b1 = ENDPOINTS['a1'][0], ENDPOINTS['b1'][0]
    # No tcpdump filter: "arp" would not match 802.1Q-tagged ARP.
    heard = capture(a1, 3, [], lambda: netns.run(
        b1, ['ping', '-c', '3', '-i', '0.3', '-W', '1', '10.77.0.99'],
        check=False))
    heard = [h for h in heard if '10.77.0.99' in h]
    log('PROBE b1 broadcasts heard on a1 (sniff): %s %s'
        % ('reachable' if heard else 'blocked', heard[:1]))
    got = capture(b1, 3, [], lambda: netns.run(
        a1, ['python3', '-c', INJECT, str(vlan_b), '10.77.0.11',
             '10.77.0.13']))
    got = [g for g in got if 'tell 10.77.0.11' in g]
    log('PROBE a1 -> b1 tagged-inject vlan %d: %s %s'
        % (vlan_b, 'reachable' if got else 'blocked', got[:1]))
    return bool(heard), bool(got)


def teardown(state):
    hil_real.stop(os.path.join(state, 'hil'))
    sw = switch.Switch(NS, os.path.join(state, 'ovs'), bridge='br-lab')
    sw.purge()
    for cns, _, _ in ENDPOINTS.values():
        netns.delete(cns)
    netns.delete(NS)


def main():
    state = os.path.abspath(sys.argv[1])
    os.makedirs(state, exist_ok=True)
    if '--inside' in sys.argv:
        return inside(state, '--vm' in sys.argv,
                      guard='--no-guard' not in sys.argv)
    # A fresh HIL database each run: the proto checks the first attach.
    hil_real.stop(os.path.join(state, 'hil'))
    hil_real.drop_db(os.path.join(state, 'hil'))
    netns.create(NS)
    for cns, _, _ in ENDPOINTS.values():
        netns.create(cns)
    try:
        argv = [sys.executable, os.path.abspath(__file__)] + sys.argv[1:]
        rc = subprocess.run(netns.cmd(NS, argv + ['--inside'])).returncode
    finally:
        if '--keep' not in sys.argv:
            teardown(state)
    sys.exit(rc)


if __name__ == '__main__':
    main()
