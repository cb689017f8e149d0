"""Open vSwitch with the userspace datapath, inside a lab namespace.

Standard library only, importable on its own; ``python3 switch.py``
runs a self-test in a throwaway namespace. Checked against Debian 12's
openvswitch-switch 3.1.0 (no kernel module: ``datapath_type=netdev``).

ovsdb-server and ovs-vswitchd both run inside the namespace (the
vswitchd opens the namespace's tap and veth devices by name, and its
internal ports appear there). They run in the foreground, started by
``netns.spawn`` with pid files under the state dir, stopped by pid.

Where the database socket lives: HIL's ``ovs`` driver (8c6de221) runs
``sudo ovs-vsctl ...`` with no ``--db``; sudo's env_reset drops
``OVS_RUNDIR``, so that call only ever reaches the compiled-in default
``/var/run/openvswitch/db.sock``. The lab therefore uses the default
rundir (one lab per machine; ``start`` refuses if a live ovsdb-server
that is not ours answers there). Other users (self-tests) may pass
their own ``rundir``; then HIL cannot drive that switch.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402

DEFAULT_RUNDIR = '/var/run/openvswitch'
# Guard VLANs (outside HIL's pool): each node port gets one of its own
# in ``trunks``. OVS reads an EMPTY trunks column as "all VLANs", and
# HIL's ovs driver leaves trunks empty and sets vlan_mode=
# native-untagged: measured here, a port HIL put on VLAN 1001 received
# VLAN 1002's broadcasts with their 802.1Q tag and could inject tagged
# frames into 1002 (the other project's node answered), and two free
# ports talked untagged. With a private guard VLAN in trunks neither
# happens, and HIL's driver keeps it (it appends to / removes from
# trunks one VLAN at a time). HIL's "port revert" re-adds the port
# without it: call guard_port() again after one.
GUARD_VLANS = range(3800, 4095)
SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema'


class Switch(object):
    """One OVS bridge in namespace ``ns``; state under ``state_dir``."""

    def __init__(self, ns, state_dir, bridge='br-lab',
                 rundir=DEFAULT_RUNDIR):
        self.ns = ns
        self.state = os.path.abspath(state_dir)
        self.bridge = bridge
        self.rundir = rundir
        self.sock = os.path.join(rundir, 'db.sock')
        self.db = os.path.join(self.state, 'conf.db')
        self.db_pid = os.path.join(self.state, 'ovsdb-server.pid')
        self.vsd_pid = os.path.join(self.state, 'ovs-vswitchd.pid')

    # -- processes -----------------------------------------------------
    def _env(self):
        return dict(os.environ, OVS_RUNDIR=self.rundir,
                    OVS_DBDIR=self.state, OVS_LOGDIR=self.state)

    def vsctl(self, *args, wait=True):
        """Run ``ovs-vsctl`` on this switch's database; returns stdout."""
        argv = ['ovs-vsctl', '--timeout=20', '--db=unix:' + self.sock]
        if not wait:
            argv.append('--no-wait')
        return netns.run(self.ns, argv + list(args),
                         env=self._env()).stdout

    def running(self):
        return bool(netns.read_pid(self.db_pid) and
                    netns.read_pid(self.vsd_pid))

    def start(self):
        """Start ovsdb-server, ovs-vswitchd and the bridge; idempotent."""
        os.makedirs(self.state, exist_ok=True)
        os.makedirs(self.rundir, exist_ok=True)
        if not netns.read_pid(self.db_pid):
            if os.path.exists(self.sock):
                if subprocess.run(
                        ['ovs-vsctl', '--timeout=2', '--db=unix:' + self.sock,
                         'show'], capture_output=True).returncode == 0:
                    raise RuntimeError('another ovsdb-server answers on %s'
                                       % self.sock)
                # A socket left by a server that died: nobody answers,
                # and its presence would end the wait below at once.
                os.unlink(self.sock)
            if not os.path.exists(self.db):
                subprocess.run(['ovsdb-tool', 'create', self.db, SCHEMA],
                               check=True)
            netns.spawn(self.ns, [
                'ovsdb-server', self.db, '--remote=punix:' + self.sock,
                '--unixctl=' + os.path.join(self.state, 'ovsdb.ctl'),
                '--log-file=' + os.path.join(self.state, 'ovsdb.log')],
                self.db_pid, os.path.join(self.state, 'ovsdb.out'),
                env=self._env())
            netns.wait_unix(self.sock, 10, 'ovsdb-server')
            self.vsctl('init', wait=False)
        if not netns.read_pid(self.vsd_pid):
            # --disable-system: no kernel datapath module on this host.
            netns.spawn(self.ns, [
                'ovs-vswitchd', 'unix:' + self.sock, '--disable-system',
                '--unixctl=' + os.path.join(self.state, 'vswitchd.ctl'),
                '--log-file=' + os.path.join(self.state, 'vswitchd.log')],
                self.vsd_pid, os.path.join(self.state, 'vswitchd.out'),
                env=self._env())
        self.vsctl('--may-exist', 'add-br', self.bridge, '--', 'set',
                   'bridge', self.bridge, 'datapath_type=netdev')
        # With the bridge already in a reused conf.db, add-br changes
        # nothing and returns before the new ovs-vswitchd has made the
        # bridge's tap device (met here: "Cannot find device br-lab").
        deadline = time.monotonic() + 20
        while netns.run(self.ns, ['ip', 'link', 'show', 'dev', self.bridge],
                        check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise TimeoutError('ovs-vswitchd made no device '
                                   + self.bridge)
            time.sleep(0.1)
        netns.run(self.ns, ['ip', 'link', 'set', self.bridge, 'up'])

    def stop(self):
        """Stop ovs-vswitchd then ovsdb-server (by pid); idempotent.

        The database file stays (``start`` reuses it); ``purge`` also
        removes it. The vswitchd removes its internal ports on exit.
        """
        netns.stop_pid(self.vsd_pid)
        netns.stop_pid(self.db_pid)

    def purge(self):
        self.stop()
        for path in (self.db, self.sock):
            if os.path.exists(path):
                os.unlink(path)

    # -- ports ---------------------------------------------------------
    def _tx_off(self, dev, ns=None):
        # Userspace datapath pitfall: with transmit checksum offload on,
        # the kernel leaves TCP/UDP checksums for the "hardware", which
        # never computes them: TCP (and DHCP) fails while ping works.
        netns.run(ns or self.ns, ['ethtool', '-K', dev, 'tx', 'off'])

    def _port_args(self, name, tag, trunks):
        args = ['--', 'set', 'port', name, 'vlan_mode=native-untagged']
        if tag:
            args.append('tag=%d' % tag)
        if trunks:
            args.append('trunks=' + ','.join(str(t) for t in trunks))
        return args

    def _guard(self, name):
        """The guard VLAN of port ``name``: its own, or a free one."""
        used = set()
        out = self.vsctl('--format=json', '--columns=name,trunks', 'list',
                         'port')
        for pname, cell in json.loads(out)['data']:
            for v in _ovs_set(cell):
                if v in GUARD_VLANS:
                    if pname == name:
                        return v
                    used.add(v)
        for v in GUARD_VLANS:
            if v not in used:
                return v
        raise RuntimeError('no free guard VLAN')

    def guard_port(self, name):
        """Give port ``name`` its private guard VLAN in ``trunks``."""
        g = self._guard(name)
        tag, trunks = self.port_vlans(name)
        if g not in trunks:
            self.vsctl('add', 'port', name, 'trunks', str(g))
        return g

    def add_tap(self, name, tag=None, trunks=None, guard=True):
        """A tap device ``name`` (for QEMU/libvirt) as a switch port."""
        if netns.run(self.ns, ['ip', 'link', 'show', name],
                     check=False).returncode != 0:
            netns.run(self.ns, ['ip', 'tuntap', 'add', 'dev', name,
                                'mode', 'tap'])
        netns.run(self.ns, ['ip', 'link', 'set', name, 'up'])
        self._tx_off(name)
        self.vsctl('--may-exist', 'add-port', self.bridge, name,
                   *self._port_args(name, tag, trunks))
        if guard:
            self.guard_port(name)

    def add_veth(self, name, peer_ns, peer_name='eth0', cidr=None,
                 tag=None, guard=True):
        """A veth pair: ``name`` on the switch, the peer in ``peer_ns``.

        ``peer_name`` inside the (existing) namespace ``peer_ns``, with
        address ``cidr``.
        """
        if netns.run(self.ns, ['ip', 'link', 'show', name],
                     check=False).returncode != 0:
            tmp = name + 'p'
            netns.run(self.ns, ['ip', 'link', 'add', name, 'type', 'veth',
                                'peer', 'name', tmp])
            netns.run(self.ns, ['ip', 'link', 'set', tmp, 'netns', peer_ns])
            netns.run(peer_ns, ['ip', 'link', 'set', tmp, 'name',
                                peer_name])
        if cidr:
            netns.run(peer_ns, ['ip', 'addr', 'replace', cidr, 'dev',
                                peer_name])
        for n, d in ((self.ns, name), (peer_ns, peer_name)):
            netns.run(n, ['ip', 'link', 'set', d, 'up'])
            self._tx_off(d, n)
        self.vsctl('--may-exist', 'add-port', self.bridge, name,
                   *self._port_args(name, tag, None))
        if guard:
            self.guard_port(name)

    def add_internal(self, name, tag, cidr):
        """A gateway address: internal port ``name`` on VLAN ``tag``.

        With address ``cidr`` (e.g. 10.10.0.1/24) inside the namespace.
        """
        self.vsctl('--may-exist', 'add-port', self.bridge, name, '--',
                   'set', 'interface', name, 'type=internal',
                   '--', 'set', 'port', name, 'tag=%d' % tag)
        netns.run(self.ns, ['ip', 'addr', 'replace', cidr, 'dev', name])
        netns.run(self.ns, ['ip', 'link', 'set', name, 'up'])
        self._tx_off(name)

    def del_port(self, name):
        self.vsctl('--if-exists', 'del-port', self.bridge, name)
        if netns.run(self.ns, ['ip', 'link', 'show', name],
                     check=False).returncode == 0:
            netns.run(self.ns, ['ip', 'link', 'del', name], check=False)

    def port_vlans(self, name):
        """(tag or None, [trunks]) of port ``name``, as the switch says.

        Guard VLANs included; see tenant_vlans.
        """
        out = self.vsctl('--format=json', '--columns=tag,trunks', 'list',
                         'port', name)
        row = json.loads(out)['data'][0]
        tags = _ovs_set(row[0])
        return (tags[0] if tags else None), sorted(_ovs_set(row[1]))

    def tenant_vlans(self, name):
        """(tag or None, [trunks without the guard VLAN])."""
        tag, trunks = self.port_vlans(name)
        return tag, [t for t in trunks if t not in GUARD_VLANS]

    def set_tag(self, name, tag):
        if tag is None:
            self.vsctl('clear', 'port', name, 'tag')
        else:
            self.vsctl('set', 'port', name, 'tag=%d' % tag)


def _ovs_set(cell):
    """Values of an OVSDB JSON cell: a scalar or ["set", [...]]."""
    if isinstance(cell, list) and cell and cell[0] == 'set':
        return cell[1]
    return [cell]


def _selftest():
    import tempfile
    ns, peers = 'bmi-ovs-selftest', ['bmi-ovs-st-a', 'bmi-ovs-st-b']
    state = tempfile.mkdtemp(prefix='ovs-selftest-')
    # Own rundir: the self-test must not take the lab's default socket.
    sw = Switch(ns, state, bridge='br-st',
                rundir=os.path.join(state, 'run'))
    for n in [ns] + peers:
        netns.create(n)
    t0 = time.monotonic()
    try:
        sw.start()
        sw.start()   # idempotent
        t1 = time.monotonic()
        sw.add_internal('gw10', 10, '10.10.0.1/24')
        sw.add_veth('vp-a', peers[0], cidr='10.10.0.11/24', tag=10)
        sw.add_veth('vp-b', peers[1], cidr='10.10.0.12/24', tag=20)
        assert sw.tenant_vlans('vp-a') == (10, []), sw.port_vlans('vp-a')
        assert sw.port_vlans('vp-a') == (10, [3800])
        assert sw.port_vlans('vp-b') == (20, [3801])
        # -c 3: the first echo after a retag can be lost while the
        # neighbour entry left FAILED by the blocked attempt recovers.
        ping = ['ping', '-c', '3', '-i', '0.3', '-W', '1', '10.10.0.1']
        assert netns.run(peers[0], ping, check=False).returncode == 0
        assert netns.run(peers[1], ping, check=False).returncode != 0
        sw.set_tag('vp-b', 10)
        assert netns.run(peers[1], ping, check=False).returncode == 0
        print('ovs selftest OK: start %.2f s; tag 10 reaches gw, tag 20 '
              'blocked, retag 10 reaches' % (t1 - t0))
    finally:
        sw.purge()
        for n in peers + [ns]:
            netns.delete(n)


if __name__ == '__main__':
    _selftest()
