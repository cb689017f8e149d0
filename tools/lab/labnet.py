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
* ``gateway``: internal switch port ``gw-prov`` with 10.78.0.1/24 on the
  provisioning network's VLAN (read from HIL) and dnsmasq on it (DHCP
  only, the boot file ``http://10.78.0.1/boot.ipxe``);
* ``http``: nginx on 10.78.0.1:80 serving Ironic's ``[deploy]
  http_root``, no directory listings.

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
# The projects of the lab's tenants (demo, e2e and their two tenants).
HIL_PROJECTS = ('demo', 'e2e', 'tenant-a', 'tenant-b')
PROVISIONING_NETWORK = 'bmi-provisioning'
GW_PORT = 'gw-prov'
GW_ADDRESS = '10.78.0.1'
GW_CIDR = GW_ADDRESS + '/24'
DHCP_RANGE = ('10.78.0.100', '10.78.0.199')
BOOT_URL = 'http://%s/boot.ipxe' % GW_ADDRESS
HTTP_URL = 'http://%s' % GW_ADDRESS
TGTD_PORTAL = GW_ADDRESS + ':3260'
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

    def __init__(self, state_dir, port=HIL_PORT):
        super().__init__(state_dir)
        self.port = int(port)

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
            # Admin-owned and public (empty access): every project's
            # boot nics may join it.
            'networks': {PROVISIONING_NETWORK: {'owner': 'admin',
                                                'access': ''}},
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
    """gw-prov on the provisioning VLAN, and dnsmasq on it."""

    name = 'gateway'

    def __init__(self, state_dir, ovs_dir, hil_dir):
        super().__init__(state_dir)
        self.ovs_dir = ovs_dir
        self.hil_dir = hil_dir

    @property
    def pidfile(self):
        return os.path.join(self.state_dir, 'dnsmasq.pid')

    def info(self):
        return dict(super().info(), address=GW_ADDRESS, port=GW_PORT,
                    boot_url=BOOT_URL)

    def start(self):
        if self.is_running():
            return
        vlan = network_vlan(HIL(self.hil_dir).admin(), PROVISIONING_NETWORK)
        sw = switch.Switch(NETNS, self.ovs_dir, bridge=BRIDGE)
        sw.add_internal(GW_PORT, vlan, GW_CIDR)
        gw.start_dnsmasq(NETNS, self.state_dir, GW_PORT, DHCP_RANGE[0],
                         DHCP_RANGE[1], BOOT_URL)
        with open(os.path.join(self.state_dir, 'vlan'), 'w') as f:
            f.write('%d\n' % vlan)
        self.log('%s %s on VLAN %d (HIL network %s), DHCP %s-%s',
                 GW_PORT, GW_CIDR, vlan, PROVISIONING_NETWORK, *DHCP_RANGE)

    def stop(self):
        super().stop()
        # The internal port goes with the switch.


class HttpBoot(service.Service):
    """nginx on the gateway address: Ironic's http_root, no listings."""

    name = 'http'

    def __init__(self, state_dir, root):
        super().__init__(state_dir)
        self.root = root

    @property
    def pidfile(self):
        return os.path.join(self.state_dir, 'nginx.pid')

    def info(self):
        return dict(super().info(), url=HTTP_URL, root=self.root)

    def start(self):
        if self.is_running():
            return
        os.makedirs(self.root, exist_ok=True)
        boot = os.path.join(self.root, 'boot.ipxe')
        if not os.path.exists(boot):
            with open(boot, 'w') as f:
                f.write(BOOT_IPXE)
        gw.start_nginx(NETNS, self.state_dir, GW_ADDRESS + ':80', self.root)
        netns.wait_tcp(NETNS, GW_ADDRESS, 80, timeout=15)
        self.log('nginx on %s serving %s', HTTP_URL, self.root)
