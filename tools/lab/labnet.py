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

"""The lab's network: its namespace, the switch, the real HIL, the gateway.

Every lab service runs inside the network namespace ``bmi-lab``
(``NETNS``); nothing with a private address exists outside it
(doc/network.md has the picture). The services of this module:

* ``netns``: the namespace itself, created and deleted from the root
  mount namespace (``ip netns exec`` makes mounts private: a namespace
  added from inside one is an empty file for everyone else);
* ``ovs``: Open vSwitch 3.1, userspace datapath, bridge ``br-lab``, on
  the default rundir because HIL's ovs driver runs ``sudo ovs-vsctl``
  without ``--db`` (``switch.py``);
* ``hil``: the real HIL (8c6de221) under gunicorn + ``serve-networks``,
  database auth, on the namespace's 127.0.0.1 (``hil_real.py``); at
  start its admin registers the switch, the lab's projects, the
  plugin's non-admin user and the public provisioning network;
* ``gateway``: per-project boot networks (issue 11): for each project of
  ``BOOT_PROJECTS`` an internal switch port ``gw-<project>`` with
  10.78.N.1/24 on the VLAN HIL gave that project's network ``boot-<p>``,
  and a dnsmasq on it (DHCP only, boot file
  ``http://10.78.N.1/boot.ipxe``); strict reverse-path filtering and no
  forwarding inside the namespace;
* ``http``: nginx, one ``server`` per project on 10.78.N.1:80 serving
  that project's HTTP root only (``allow`` its network, no listings).
  Nothing serves Ironic's ``[deploy] http_root``: it holds every node's
  CHAP secret (the plugin publishes each node's files into its
  project's root).

Passwords live in 0600 files under the HIL state dir only.
"""

import json
import os
import secrets
import subprocess

from tools.lab import gateway as gw
from tools.lab import hil_real
from tools.lab import netns
from tools.lab import service
from tools.lab import switch

NETNS = 'bmi-lab'
BRIDGE = 'br-lab'
HIL_SWITCH = 'br-lab'
HIL_PORT = 7000
HIL_ADMIN = 'lab-admin'
HIL_USER = 'bmi'
# The lab's projects: the operator's own ("admin": the nodes of the
# functional tests and the bench, and [hil] default_project for a node of
# no project), the demo's, the e2e test's and the two tenants. Each has a
# boot network of its own (``boot_networks``: 10.78.1.0/24 tenant-a,
# .2 tenant-b, .3 admin, .4 demo, .5 e2e).
HIL_PROJECTS = ('tenant-a', 'tenant-b', 'admin', 'demo', 'e2e')
BOOT_PROJECTS = HIL_PROJECTS
# [hil] provisioning_network stays a HIL network of its own (public), but
# in per-project mode no node boots on it and the gateway has no address
# there: it can no longer be a project's boot network.
PROVISIONING_NETWORK = 'bmi-provisioning'
# Ironic's [deploy] http_url. Nothing listens there (no gateway address
# on the provisioning network): Ironic's boot.ipxe chains relative paths,
# which each project's own server answers.
HTTP_URL = 'http://10.78.0.1'
# tgtd's portal for the lab's own initiators (functional tests, the
# plugin's shared-mode default): loopback inside the namespace, which no
# VM can reach (Linux drops 127/8 arriving on a non-loopback interface).
# The nodes' portals are the boot networks' gateway addresses.
TGTD_PORTAL = '127.0.0.1:3260'
# nginx's workers run as this user; the published boot files (0640) are
# of its group ([bmi] boot_file_group).
HTTP_USER = 'www-data'


class BootNetwork(object):
    """Project ``project``'s boot network, the N-th of the lab."""

    def __init__(self, project, index, state_root):
        self.project = project
        self.index = index
        self.hil_network = 'boot-' + project
        self.address = '10.78.%d.1' % index
        self.cidr = '10.78.%d.0/24' % index
        self.prefix = self.address + '/24'
        # A unique local IPv6 prefix (kept in the namespace): the gateway
        # advertises it so that iPXE's IPv6 autoconfiguration ends at once
        # (Gateway.start).
        self.ipv6_prefix = 'fd00:78:%d::' % index
        self.dhcp_range = ('10.78.%d.100' % index, '10.78.%d.199' % index)
        # IFNAMSIZ: at most 15 characters.
        self.port = ('gw-' + project)[:15]
        self.portal = self.address + ':3260'
        self.boot_url = 'http://%s/boot.ipxe' % self.address
        self.url = 'http://%s' % self.address
        self.http_root = os.path.join(state_root, 'boot', project)

    def gateway_address(self, k):
        """Gateway ``k``'s address on this network.

        The multi-conductor lab has one gateway per conductor, 10.78.N.K;
        gateway 1 is ``address``.
        """
        return '10.78.%d.%d' % (self.index, k)

    def gateway_portal(self, k):
        return self.gateway_address(k) + ':3260'

    def entry(self, hosts=()):
        """Its entry in [bmi] boot_networks_file.

        ``hosts``: the conductors' names, the K-th one's gateway being
        gateway K ("portals"); none: one gateway for all.
        """
        entry = {'hil_network': self.hil_network, 'portal': self.portal,
                 'cidr': self.cidr, 'http_root': self.http_root}
        if hosts:
            entry['portals'] = {h: self.gateway_portal(k)
                                for k, h in enumerate(hosts, 1)}
        return entry


def boot_networks(state_root):
    """{project: BootNetwork} of the lab, 10.78.1.0/24 and up."""
    return {p: BootNetwork(p, i, os.path.abspath(state_root))
            for i, p in enumerate(BOOT_PROJECTS, 1)}


def write_registry(path, state_root, hosts=()):
    """Write the plugin's [bmi] boot_networks_file (atomically).

    ``hosts``: the conductors, each with its own gateway (``entry``).
    """
    doc = {p: n.entry(hosts) for p, n in boot_networks(state_root).items()}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + '.tmp', 'w') as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write('\n')
    os.replace(path + '.tmp', path)
    return path


# What a node's boot.ipxe does before Ironic has written its own (a
# SanbootTest, say): the same convention as Ironic 39's boot.ipxe, a
# per-MAC file under pxelinux.cfg/.
BOOT_IPXE = '''#!ipxe
chain pxelinux.cfg/${mac:hexhyp} || goto fail
:fail
echo BMI-BOOT-FAIL no boot file for ${mac:hexhyp}
sleep 600
'''


def inside():
    """True when this process runs in the lab's namespace."""
    out = subprocess.run(['ip', 'netns', 'identify', str(os.getpid())],
                         capture_output=True, text=True).stdout
    return out.strip() == NETNS


def secret_file(path):
    """A password in a 0600 file, made once; returns it."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(secrets.token_urlsafe(18))
    with open(path) as f:
        return f.read().strip()


class Netns(service.Service):
    """The network namespace every other lab service runs in."""

    name = 'netns'

    def pid(self):
        return None

    def is_running(self):
        return netns.exists(NETNS)

    def info(self):
        return {'running': self.is_running(), 'name': NETNS}

    def start(self):
        netns.create(NETNS)
        self.log('network namespace %s', NETNS)

    def stop(self):
        if not netns.exists(NETNS):
            return
        if not netns.in_root_mount_ns():
            # ip netns delete unmounts /run/netns/NAME: from a private
            # mount namespace that would not be seen by anyone else.
            self.log('left %s: delete it from outside the namespace', NETNS)
            return
        netns.delete(NETNS)
        self.log('deleted network namespace %s', NETNS)


class OVS(service.Service):
    """Open vSwitch (ovsdb-server + ovs-vswitchd) and bridge br-lab."""

    name = 'ovs'

    def __init__(self, state_dir):
        super().__init__(state_dir)
        self.switch = switch.Switch(NETNS, state_dir, bridge=BRIDGE)

    def pid(self):
        return netns.read_pid(self.switch.vsd_pid)

    def is_running(self):
        return self.switch.running()

    def info(self):
        return dict(super().info(), bridge=BRIDGE)

    def start(self):
        self.switch.start()
        self.log('bridge %s (userspace datapath)', BRIDGE)

    def stop(self):
        if os.path.exists(self.switch.db) or self.is_running():
            # A fresh switch every run: HIL's database goes too.
            self.switch.purge()
            self.log('stopped')


class HIL(service.Service):
    """The real HIL: gunicorn on hil.wsgi + serve-networks."""

    name = 'hil'

    def __init__(self, state_dir, port=HIL_PORT, state_root=None):
        super().__init__(state_dir)
        self.port = int(port)
        self.state_root = state_root or os.path.dirname(
            os.path.abspath(state_dir))

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.port

    @property
    def admin_password_file(self):
        return os.path.join(self.state_dir, 'admin.password')

    @property
    def user_password_file(self):
        return os.path.join(self.state_dir, 'user.password')

    @property
    def env_path(self):
        return os.path.join(self.state_dir, 'env.json')

    def pid(self):
        return netns.read_pid(os.path.join(self.state_dir, 'hil-api.pid'))

    def is_running(self):
        return all(netns.read_pid(p) for p in hil_real._pidfiles(
            self.state_dir))

    def info(self):
        return dict(super().info(), url=self.url)

    def admin(self):
        return hil_real.Client(self.url, HIL_ADMIN,
                               secret_file(self.admin_password_file))

    def start(self):
        if self.is_running():
            return
        os.makedirs(self.state_dir, exist_ok=True)
        hil_real.install(self.state_dir)
        hil_real.write_config(self.state_dir)
        hil_real.init_db(NETNS, self.state_dir, HIL_ADMIN,
                         secret_file(self.admin_password_file))
        hil_real.start(NETNS, self.state_dir, self.port)
        user_pw = secret_file(self.user_password_file)
        hil_real.setup_lab(self.admin(), {
            'projects': list(HIL_PROJECTS),
            'users': {HIL_USER: {'password': user_pw,
                                 'projects': list(HIL_PROJECTS)}},
            'switch': {'name': HIL_SWITCH, 'bridge': BRIDGE},
            # The shared provisioning network: admin-owned and public
            # (empty access); no node of the lab boots on it. Each
            # project's boot network: admin-owned (a tenant cannot delete
            # or open it), access = that project alone (the plugin's
            # validate refuses anything else).
            'networks': dict(
                {PROVISIONING_NETWORK: {'owner': 'admin', 'access': ''}},
                **{n.hil_network: {'owner': 'admin', 'access': p}
                   for p, n in boot_networks(self.state_root).items()}),
        })
        with open(self.env_path, 'w') as f:
            json.dump({'url': self.url, 'switch': HIL_SWITCH,
                       'admin_user': HIL_ADMIN,
                       'admin_password_file': self.admin_password_file,
                       'user': HIL_USER,
                       'user_password_file': self.user_password_file,
                       'provisioning_network': PROVISIONING_NETWORK,
                       'projects': list(HIL_PROJECTS)}, f, indent=2)
        self.log('HIL on %s (gunicorn + serve-networks, database auth)',
                 self.url)

    def stop(self):
        hil_real.stop(self.state_dir)
        # A fresh HIL every run, as the switch is.
        hil_real.drop_db(self.state_dir)
        for path in (self.env_path,):
            if os.path.exists(path):
                os.unlink(path)


def network_vlan(client, network):
    """The VLAN id HIL allocated to ``network`` (its tagged channel)."""
    channels = client.call('GET', 'network/' + network)['channels']
    vlans = [int(c.split('/', 1)[1]) for c in channels
             if c != 'vlan/native']
    if len(vlans) != 1:
        raise service.ServiceError('HIL network %s has channels %s'
                                   % (network, channels))
    return vlans[0]


class Gateway(service.Service):
    """A gateway port and a dnsmasq per project boot network.

    Inside the lab's namespace the gateway is one host with an address on
    every boot network. Linux takes a packet for any of its addresses on
    any interface (the weak host model), so what keeps project A's nodes
    from project B's services is: strict reverse-path filtering (a forged
    source address of B's network arriving on A's port is dropped), no
    forwarding between the ports, and services that accept only their
    own network (tgtd's per-target ACL, nginx's ``allow``).
    """

    name = 'gateway'

    def __init__(self, state_dir, ovs_dir, hil_dir, state_root,
                 gateways=1):
        super().__init__(state_dir)
        self.ovs_dir = ovs_dir
        self.hil_dir = hil_dir
        self.networks = boot_networks(state_root)
        # The multi-conductor lab: the gateway of conductor K has
        # 10.78.N.K on every boot network. They share the lab's one port
        # per network (and its dnsmasq); tgtd-K listens on its own.
        self.gateways = int(gateways)

    def _dnsmasq(self, net):
        return 'dnsmasq-' + net.project

    @property
    def pidfile(self):
        # The first project's dnsmasq stands for the service.
        first = sorted(self.networks.values(), key=lambda n: n.index)[0]
        return os.path.join(self.state_dir, self._dnsmasq(first) + '.pid')

    def is_running(self):
        return all(netns.read_pid(os.path.join(
            self.state_dir, self._dnsmasq(n) + '.pid'))
            for n in self.networks.values())

    def info(self):
        return dict(super().info(), networks={
            p: {'address': n.address, 'port': n.port, 'cidr': n.cidr,
                'boot_url': n.boot_url, 'hil_network': n.hil_network,
                'vlan': self.vlan_of(n)}
            for p, n in self.networks.items()})

    def vlan_of(self, net):
        try:
            with open(os.path.join(self.state_dir,
                                   'vlan-' + net.project)) as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    def start(self):
        if self.is_running():
            return
        os.makedirs(self.state_dir, exist_ok=True)
        # Before the ports exist: new interfaces take "default".
        netns.run(NETNS, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=0',
                          'net.ipv4.conf.all.rp_filter=1',
                          'net.ipv4.conf.default.rp_filter=1'])
        admin = HIL(self.hil_dir).admin()
        sw = switch.Switch(NETNS, self.ovs_dir, bridge=BRIDGE)
        for net in sorted(self.networks.values(), key=lambda n: n.index):
            vlan = network_vlan(admin, net.hil_network)
            sw.add_internal(net.port, vlan, net.prefix)
            for k in range(2, self.gateways + 1):
                netns.run(NETNS, ['ip', 'addr', 'replace',
                                  net.gateway_address(k) + '/24', 'dev',
                                  net.port])
            netns.run(NETNS, ['sysctl', '-q', '-w',
                              'net.ipv4.conf.%s.rp_filter=1' % net.port])
            # iPXE (Debian 12's ipxe-qemu, 1.0.0+git-20190125) ends
            # "Configuring (net0 ...)" only when IPv6 autoconfiguration
            # ends too: without a router advertisement it waits about 12 s
            # more than DHCP takes, on every network boot (measured: 22.9
            # s without, 10.7 s with, QEMU start to boot.ipxe). The
            # gateway's dnsmasq answers router solicitations with the
            # network's prefix and a router lifetime of 0 (not a default
            # router; forwarding stays off). nodad: no tentative address
            # when dnsmasq starts.
            netns.run(NETNS, ['ip', '-6', 'addr', 'replace',
                              net.ipv6_prefix + '1/64', 'dev', net.port,
                              'nodad'])
            gw.start_dnsmasq(NETNS, self.state_dir, net.port,
                             net.dhcp_range[0], net.dhcp_range[1],
                             net.boot_url, name=self._dnsmasq(net),
                             ra_prefix=net.ipv6_prefix)
            with open(os.path.join(self.state_dir,
                                   'vlan-' + net.project), 'w') as f:
                f.write('%d\n' % vlan)
            self.log('%s %s on VLAN %d (HIL network %s of %s), DHCP %s-%s',
                     net.port, net.prefix, vlan, net.hil_network,
                     net.project, *net.dhcp_range)

    def stop(self):
        for net in self.networks.values():
            gw.stop(self.state_dir, self._dnsmasq(net))
        self._forget()
        # The internal ports go with the switch.


class HttpBoot(service.Service):
    """nginx: one server per project boot network, its HTTP root only."""

    name = 'http'

    def __init__(self, state_dir, state_root, gateways=1):
        super().__init__(state_dir)
        self.networks = boot_networks(state_root)
        # Each gateway's address serves the project's boot files.
        self.gateways = int(gateways)

    @property
    def pidfile(self):
        return os.path.join(self.state_dir, 'nginx.pid')

    def info(self):
        return dict(super().info(), servers={
            p: {'url': n.url, 'root': n.http_root}
            for p, n in self.networks.items()})

    def start(self):
        if self.is_running():
            return
        servers = []
        for net in sorted(self.networks.values(), key=lambda n: n.index):
            os.makedirs(net.http_root, mode=0o755, exist_ok=True)
            boot = os.path.join(net.http_root, 'boot.ipxe')
            if not os.path.exists(boot):
                with open(boot, 'w') as f:
                    f.write(BOOT_IPXE)
            for k in range(1, self.gateways + 1):
                servers.append((net.gateway_address(k) + ':80',
                                net.http_root, net.cidr))
        gw.start_nginx(NETNS, self.state_dir, servers, user=HTTP_USER)
        for net in self.networks.values():
            for k in range(1, self.gateways + 1):
                netns.wait_tcp(NETNS, net.gateway_address(k), 80,
                               timeout=15)
        self.log('nginx: %s', ', '.join(
            '%s -> %s' % (n.url, n.http_root)
            for n in sorted(self.networks.values(), key=lambda n: n.index)))
