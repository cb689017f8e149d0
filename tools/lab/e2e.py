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

"""The end-to-end path: VMs on the lab's switch boot through Ironic.

Shared by ``make demo`` (``python -m tools.lab.e2e``, driven by
tools/demo.sh, inside the lab's namespace) and
``tests/functional/test_e2e_boot.py``. Two scenarios:

``TenantScenario`` (issues 10 and 11): two HIL projects, two VMs each,
deployed through Ironic with the ``hil`` network interface; each node's
boot nic is on its project's own boot network, its second nic joins its
project's tenant network (``vlan/native``), all four on the same subnet
so that only the VLANs separate them. Each node's config drive is a probe
plan (doc/probes.md): it pings its peer (expected reachable) and both
nodes of the other project (expected blocked), fetches its own boot file
(reachable) and writes its own disk (reachable). Project B deploys first;
then each node of project A gets, in its plan, one B node's CHAP user,
secret and target IQN as Ceph records them, and tries B's boot files and
B's target with them, at B's gateway address and at A's (all blocked).
The scenario prints ``PROBE <from> -> <to> <kind>: expected X, seen Y``
per probe, checks that the switch agrees with HIL (each port's tag and
trunks, minus its guard VLAN, are the VLANs of the HIL networks on that
nic), undeploys, and checks that every port is on no VLAN and HIL shows
no attachment.

``Scenario`` (the snapshot path): node 1 deploys from the golden image
and writes a file; its disk is snapshotted (vendor passthru) into a new
golden image; node 2 deploys from it and finds the file; both undeploy
and nothing is left (clone, iSCSI target, HIL attachment, VolumeTarget).

Both enroll their VMs the same way: each VM has a boot nic and a tenant
nic, taps that are switch ports with their guard VLAN; HIL's admin
registers the node, its two nics and their cabling to those ports and
allocates the node to its project; Ironic gets the node (``bmi``
hardware, ``redfish`` power through sushy-tools, lessee and owner = the
project) with a port per MAC (only the boot one ``pxe_enabled``) and an
``iqn`` volume connector. Everything created is removed at the end, also
when a step failed.

Over 500 lines because it is one story told in order (the steps, their
checks, the clean-up, the summary and the demo's entry point): split, a
reader would have to jump between files to follow one deploy.
"""

import argparse
import base64
import contextlib
import gzip
import json
import os
import re
import signal
import sys
import time
import uuid

from ironicclient import client as ironic_client
from ironicclient import exc as ironic_exc
from oslo_concurrency import processutils

from bmi_driver.conf import CONF
from bmi_driver.storage.ceph import library as images
from bmi_driver.storage.ceph import rbd_utils
from bmi_driver.storage.ceph.rbd_utils import rbd
from bmi_driver.storage.export import manager as export_manager
from tools.lab import hil_real
from tools.lab import labnet
from tools.lab import soak_census
from tools.lab import state as lab_state
from tools.lab import switch
from tools.lab import vmlab

REPO = vmlab.REPO
BAREMETAL = os.path.join(vmlab.VENV_BIN, 'baremetal')
BMI_MANAGE = os.path.join(vmlab.VENV_BIN, 'bmi-manage')
INITIATOR_PREFIX = 'iqn.2026-11.org.massopen.bmi.initiator'
BOOT_NIC, TENANT_NIC = 'boot', 'tenant'
MARKER_RE = r'^BMI-BOOT-OK node=(\S+)\s*$'
FOUND_RE = r'^BMI-FOUND (\S+)\s*$'
PROBE_RE = (r'^BMI-PROBE (\S+) -> (\S+) (\S+) (reachable|blocked)\s*$')
PROBES_DONE_RE = r'^BMI-PROBES-DONE node=(\S+)\s*$'
TENANT_SUBNET = '10.79.0.%d/24'
# Per probe, in the guest: long enough for the slowest peer to boot
# (four TCG guests on two cores), since a reachable probe waits for it.
PROBE_TIMEOUT = 120


def sanboot_script(node_export, initiator_iqn):
    """The iPXE script Ironic's template renders for an iSCSI boot volume.

    The guest reaches the portal on the gateway (its boot network's).
    """
    host, port = node_export.portal.rsplit(':', 1)
    lines = ['#!ipxe']
    if node_export.chap_username:
        lines += ['set username %s' % node_export.chap_username,
                  'set password %s' % node_export.chap_secret]
    lines += ['set initiator-iqn %s' % initiator_iqn,
              'sanhook --drive 0x80 iscsi:%s::%s:1:%s || goto fail'
              % (host, port, node_export.target_iqn),
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

    def line(self, text):
        """A line as is (the PROBE lines the test and the demo assert)."""
        self.out(text)

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


def _mac(prefix_byte, index, nic):
    return '52:54:00:%02x:%02x:%02x' % (prefix_byte, index, nic)


class Node(object):
    """A VM: two nics on switch ports, a HIL node, an Ironic node."""

    def __init__(self, name, project, index, mac_byte, tenant_ip=None):
        self.name = name
        self.project = project
        self.mac = _mac(mac_byte, index, 1)          # boot nic
        self.tenant_mac = _mac(mac_byte, index, 2)
        # Tap names: at most 15 characters (IFNAMSIZ).
        short = '%02x%02x' % (mac_byte, index)
        self.boot_port = 'tb-' + short
        self.tenant_port = 'tt-' + short
        self.tenant_ip = tenant_ip
        self.vm = vmlab.DOMAIN_PREFIX + name
        self.initiator = '%s:%s' % (INITIATOR_PREFIX, name)
        self.vm_uuid = None
        self.uuid = None
        self.to_active = None
        self.to_marker = None
        self.to_probes = None
        self.console_offset = 0
        self.deploy_started = None
        self.powered_on = None
        self.lines = []
        self.probes = []             # (to, kind, seen)

    @property
    def ports(self):
        return {BOOT_NIC: self.boot_port, TENANT_NIC: self.tenant_port}


class LabNet(object):
    """The lab network as the scenarios use it: HIL's admin, the switch."""

    def __init__(self, env):
        svcs = env['services']
        hil_env = lab_state.read_env(env['hil_state'], 'HIL')
        with open(hil_env['admin_password_file']) as f:
            self.admin = hil_real.Client(hil_env['url'],
                                         hil_env['admin_user'],
                                         f.read().strip())
        self.hil_switch = hil_env['switch']
        # Each project's boot network (its gateway address, HTTP root).
        self.boot_networks = labnet.boot_networks(env['state_dir'])
        self.http_access_log = os.path.join(svcs['http']['state_dir'],
                                            'nginx-access.log')
        self.switch = switch.Switch(labnet.NETNS,
                                    svcs['ovs']['state_dir'],
                                    bridge=labnet.BRIDGE)
        self._vlans = {}

    def vlan(self, network):
        """The VLAN HIL allocated to ``network`` (HIL's network info)."""
        if network not in self._vlans:
            self._vlans[network] = labnet.network_vlan(self.admin, network)
        return self._vlans[network]

    def add_ports(self, node):
        for port in node.ports.values():
            self.switch.add_tap(port)

    def register(self, node):
        """HIL admin: the node, its nics cabled to its ports, project."""
        hil_real.setup_lab(self.admin, {
            'switch': {'name': self.hil_switch, 'bridge': labnet.BRIDGE},
            'nodes': {node.name: {
                'project': node.project,
                'nics': {BOOT_NIC: {'mac': node.mac,
                                    'port': node.boot_port},
                         TENANT_NIC: {'mac': node.tenant_mac,
                                      'port': node.tenant_port}}}}})

    def create_network(self, name, project):
        hil_real.setup_lab(self.admin, {
            'switch': {'name': self.hil_switch, 'bridge': labnet.BRIDGE},
            'networks': {name: {'owner': project, 'access': project}}})
        return self.vlan(name)

    def node_networks(self, node):
        """{nic label: {channel: network}} as HIL says."""
        info = self.admin.call('GET', 'node/' + node.name)
        return {nic['label']: nic.get('networks') or {}
                for nic in info.get('nics') or []}

    def check_switch_agrees(self, node):
        """Check that the switch agrees with HIL; return {nic: vlans}.

        Each port's (tag, trunks minus its guard VLAN) must be the VLANs
        of the HIL networks on that nic (ids from HIL's network info).

        :raises: RuntimeError naming the port that disagrees.
        """
        seen = {}
        for label, networks in self.node_networks(node).items():
            want_tag, want_trunks = None, []
            for channel, net in networks.items():
                if channel == 'vlan/native':
                    want_tag = self.vlan(net)
                else:
                    want_trunks.append(int(channel.split('/', 1)[1]))
            port = node.ports[label]
            got = self.switch.tenant_vlans(port)
            if got != (want_tag, sorted(want_trunks)):
                raise RuntimeError(
                    'switch port %s of %s/%s is (tag, trunks) %s, HIL says '
                    '%s (%s)' % (port, node.name, label, got,
                                 (want_tag, sorted(want_trunks)), networks))
            _tag, trunks = self.switch.port_vlans(port)
            if not any(t in switch.GUARD_VLANS for t in trunks):
                raise RuntimeError('switch port %s lost its guard VLAN '
                                   '(trunks %s)' % (port, trunks))
            seen[label] = got
        return seen

    def unregister(self, node):
        """Undo ``register`` and ``add_ports`` (best effort, admin)."""
        errors = []
        calls = [('POST', 'project/%s/detach_node' % node.project,
                  {'node': node.name})]
        for label, port in node.ports.items():
            calls += [('POST', 'switch/%s/port/%s/detach_nic'
                       % (self.hil_switch, port), None),
                      ('DELETE', 'node/%s/nic/%s' % (node.name, label),
                       None),
                      ('DELETE', 'switch/%s/port/%s'
                       % (self.hil_switch, port), None)]
        calls.append(('DELETE', 'node/' + node.name, None))
        for method, path, body in calls:
            try:
                self.admin.call(method, path, body)
            except hil_real.HILError as e:
                if e.status != 404:
                    errors.append('HIL %s %s: %s' % (method, path, e))
        for port in node.ports.values():
            try:
                self.switch.del_port(port)
            except Exception as e:
                errors.append('switch port %s: %s' % (port, e))
        return errors

    def network_exists(self, name):
        """Whether HIL has network ``name`` (its admin's view)."""
        try:
            self.admin.call('GET', 'network/' + name)
            return True
        except hil_real.HILError as e:
            if e.status == 404:
                return False
            raise

    def delete_network(self, name):
        try:
            self.admin.call('DELETE', 'network/' + name)
        except hil_real.HILError as e:
            if e.status != 404:
                return ['HIL network %s: %s' % (name, e)]
        return []


class Probe(object):
    """One probe of a node's plan and what the scenario expects of it."""

    def __init__(self, kind, to, expected, args):
        self.kind = kind
        self.to = to
        self.expected = expected
        self.args = [str(a) for a in args]

    def plan_line(self):
        return ' '.join(['probe', self.kind, self.to] + self.args)

    def __repr__(self):
        return '%s -> %s (%s)' % (self.kind, self.to, self.expected)


def probe_plan(node, probes):
    """The probe plan (doc/probes.md) of ``node``: [Probe]."""
    lines = ['BMI-PLAN 1', 'node %s' % node.name,
             'tenant %s %s' % (node.tenant_mac, node.tenant_ip),
             'timeout %d' % PROBE_TIMEOUT]
    lines += [p.plan_line() for p in probes]
    lines.append('end')
    text = '\n'.join(lines) + '\n'
    # The guest reads the plan's first 4096 bytes (doc/probes.md).
    if len(text) > 4096:
        raise ValueError('probe plan of %s is %d bytes (> 4096)'
                         % (node.name, len(text)))
    return text


def config_drive(text):
    """Ironic's --config-drive value: base64(gzip(bytes))."""
    return base64.b64encode(gzip.compress(text.encode())).decode()


class Scenario(object):
    """The snapshot path; ``run()`` then always ``cleanup()``."""

    # The busybox demo OS runs in a few MiB.
    vm_memory_mib = 384
    # Its initramfs has the e1000 driver only (tools/demo/build-image.sh).
    nic_model = 'e1000'

    def __init__(self, lab, ironic_url, bmi_conf, net, image_path,
                 prefix='demo', project='demo', mac_byte=0xb3,
                 reporter=None, boot_timeout=240, state_timeout=240):
        self.lab = lab
        self.ironic_url = ironic_url
        self.ironic = ironic_client.get_client(
            '1', endpoint=ironic_url, os_ironic_api_version='latest')
        self.bmi_conf = bmi_conf
        self.net = net
        self.image_path = image_path
        self.prefix = prefix
        self.project = project
        self.tag = uuid.uuid4().hex[:8]
        self.nodes = self.make_nodes(mac_byte)
        self.report = reporter or Reporter()
        self.boot_timeout = boot_timeout
        self.state_timeout = state_timeout
        self.images = []          # golden images created, newest last
        self.networks = []        # HIL networks created
        self.golden = None
        self.snapshot = None
        self.plans = {}             # node name -> [Probe]

    def make_nodes(self, mac_byte):
        return [Node('%s-node-%d' % (self.prefix, i), self.project, i,
                     mac_byte) for i in (1, 2)]

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

    # -- steps -----------------------------------------------------------
    def run(self):
        r = self.report
        with r.step('import the golden image with bmi-manage'):
            self.golden = self._import_image()
        with r.step('define two VMs on the switch and enroll them in HIL '
                    'and Ironic'):
            self.enroll_all()
        first, second = self.nodes
        with r.step('deploy %s from the golden image' % first.name):
            self._deploy(first, self.golden)
            self._wait_active(first)
        with r.step('%s boots from its clone' % first.name):
            self._wait_boot(first)
        with r.step('snapshot %s into a new golden image' % first.name):
            self.snapshot = self._snapshot(first)
        with r.step('deploy %s from the snapshot' % second.name):
            self._deploy(second, self.snapshot)
            self._wait_active(second)
        with r.step('%s boots and finds the file %s wrote'
                    % (second.name, first.name)):
            self._wait_boot(second)
            found = [m for ln in second.lines
                     for m in re.findall(FOUND_RE, ln)]
            if first.name not in found:
                raise RuntimeError('%s did not report %s\'s file (found: %s)'
                                   % (second.name, first.name, found))
        with r.step('undeploy both nodes'):
            self.undeploy_all()
        with r.step('check that nothing is left'):
            self.check_nothing_left()

    def enroll_all(self):
        for node in self.nodes:
            self._remove_node(node)
            self._enroll(node)

    def undeploy_all(self):
        for node in self.nodes:
            self.baremetal('node', 'undeploy', node.uuid)
        for node in self.nodes:
            self.wait_state(node, 'available')

    def _import_image(self, visibility='private'):
        name = '%s-golden-%s' % (self.prefix, self.tag)
        out = self.bmi_manage('image', 'import', name, '--file',
                              self.image_path, '--project', self.project,
                              '--visibility', visibility, '-f', 'json')
        image = json.loads(out)
        self.images.append(image['uuid'])
        self.report.detail('golden image %s (%s, %s)'
                           % (name, image['uuid'], visibility))
        return image['uuid']

    def _enroll(self, node):
        self.net.add_ports(node)
        self.net.register(node)
        node.vm_uuid = self.lab.define_vm(
            node.vm, (node.mac, node.boot_port),
            (node.tenant_mac, node.tenant_port),
            memory_mib=self.vm_memory_mib, nic_model=self.nic_model)
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
        ic.node.update(n.uuid, [
            {'op': 'add', 'path': '/owner', 'value': node.project},
            {'op': 'add', 'path': '/lessee', 'value': node.project}])
        ic.port.create(node_uuid=n.uuid, address=node.mac, pxe_enabled=True)
        ic.port.create(node_uuid=n.uuid, address=node.tenant_mac,
                       pxe_enabled=False)
        ic.volume_connector.create(node_uuid=n.uuid, type='iqn',
                                   connector_id=node.initiator)
        ic.node.set_provision_state(n.uuid, 'manage')
        self.wait_state(node, 'manageable')
        ic.node.set_provision_state(n.uuid, 'provide')
        self.wait_state(node, 'available')
        self.report.detail(
            '%s (project %s): node %s, VM %s, boot nic %s on port %s, '
            'tenant nic %s on port %s' % (
                node.name, node.project, n.uuid, node.vm, node.mac,
                node.boot_port, node.tenant_mac, node.tenant_port))

    def _deploy(self, node, image_id, tenant_networks=None,
                configdrive=None):
        """Start a deploy (does not wait)."""
        node.console_offset = self.lab.console(node.vm).size()
        patch = [{'op': 'add', 'path': '/instance_info/image_source',
                  'value': image_id}]
        if tenant_networks is not None:
            patch.append({'op': 'add',
                          'path': '/instance_info/hil_networks',
                          'value': tenant_networks})
        self.ironic.node.update(node.uuid, patch)
        node.deploy_started = time.monotonic()
        node.powered_on = None
        node.to_marker = None
        if not configdrive:
            self.baremetal('node', 'deploy', node.uuid)
            return
        # A file: baremetal takes a string with a "/" (base64 has them)
        # for a missing path.
        path = os.path.join(self.lab.state_dir, '%s.configdrive'
                            % node.name)
        with open(path, 'w') as f:
            f.write(configdrive)
        self.baremetal('node', 'deploy', node.uuid, '--config-drive', path)

    def _wait_active(self, node):
        deadline = node.deploy_started + self.state_timeout
        while True:
            self._note_power_on(node)
            n = self._node(node)
            if n.provision_state == 'active' and not n.target_provision_state:
                break
            if n.provision_state in ('deploy failed', 'error'):
                raise RuntimeError('%s: %s: %s' % (
                    node.name, n.provision_state, n.last_error))
            if time.monotonic() > deadline:
                raise RuntimeError('%s not ACTIVE after %ss (%s)' % (
                    node.name, self.state_timeout, n.provision_state))
            time.sleep(0.5)
        node.to_active = time.monotonic() - node.deploy_started
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
        nets = self.net.node_networks(node)
        boot_net = self.net.boot_networks[node.project]
        if nets.get(BOOT_NIC, {}).get('vlan/native') != boot_net.hil_network:
            raise RuntimeError('%s\'s boot nic is not on its project\'s '
                               'boot network %s (HIL: %s)'
                               % (node.name, boot_net.hil_network, nets))
        for t in targets:
            portal = t.properties.get('target_portal')
            if portal != boot_net.portal:
                raise RuntimeError('%s boots from portal %s, not its '
                                   'project\'s %s' % (node.name, portal,
                                                      boot_net.portal))
        seen = self.net.check_switch_agrees(node)
        for label in sorted(nets):
            for channel, net in sorted(nets[label].items()):
                self.report.detail(
                    '%s: HIL network %s (VLAN %d) on %s %s; switch port %s '
                    '(tag, trunks) %s' % (
                        node.name, net, self.net.vlan(net), label, channel,
                        node.ports[label], seen[label]))

    def _note_power_on(self, node):
        if node.powered_on is None and self.lab.vm_state(node.vm) == 'running':
            node.powered_on = time.monotonic()

    def _console_step(self, node, shown):
        """Show new console lines; fail on BMI-BOOT-FAIL; note the marker.

        Returns (text, number of lines shown).
        """
        console = self.lab.console(node.vm)
        self._note_power_on(node)
        lines = console.lines(node.console_offset)
        for ln in lines[shown:]:
            self.report.detail('console %s | %s' % (node.name, ln))
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
        return text, len(lines)

    def _wait_boot(self, node):
        deadline = time.monotonic() + self.boot_timeout
        shown = 0
        while True:
            _text, shown = self._console_step(node, shown)
            if (node.to_marker is not None
                    and self.lab.vm_state(node.vm) == 'shut off'):
                node.lines = self.lab.console(node.vm).lines(
                    node.console_offset)
                return
            if time.monotonic() > deadline:
                raise RuntimeError('%s: no %s within %ss (console: %s)'
                                   % (node.name,
                                      'power-off' if node.to_marker
                                      else 'BMI-BOOT-OK marker',
                                      self.boot_timeout,
                                      self.lab.console(node.vm).path))
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

        Every switch port is on no VLAN (its guard alone) and HIL shows
        no attachment.

        :raises: RuntimeError naming each clone, target, HIL attachment,
            switch VLAN or VolumeTarget left for one of the nodes.
        """
        left = []
        uuids = [n.uuid for n in self.nodes if n.uuid]
        # Clones, config drives, ephemeral and swap disks (the census's
        # names of them).
        left += ['%s %s' % (row.kind, row.what) for row in self._rbd_rows()
                 if row.node in uuids]
        targets, _err = processutils.execute('tgtadm', '--lld', 'iscsi',
                                             '--mode', 'target', '--op',
                                             'show')
        for u in uuids:
            if u in targets:
                left.append('iSCSI target of %s' % u)
        for node in self.nodes:
            for label, nets in self.net.node_networks(node).items():
                if nets:
                    left.append('HIL attachment %s/%s: %s'
                                % (node.name, label, nets))
            for label, port in node.ports.items():
                vlans = self.net.switch.tenant_vlans(port)
                if vlans != (None, []):
                    left.append('switch port %s (%s/%s) on VLANs %s'
                                % (port, node.name, label, vlans))
            if node.uuid and self.ironic.volume_target.list(node=node.uuid):
                left.append('VolumeTarget of %s' % node.name)
            root = self.net.boot_networks[node.project].http_root
            for path in (os.path.join(root, node.uuid or '-', 'config'),
                         os.path.join(root, 'pxelinux.cfg',
                                      node.mac.replace(':', '-'))):
                if os.path.exists(path):
                    left.append('boot file %s' % path)
        if left:
            raise RuntimeError('left behind: %s' % '; '.join(left))
        self.report.detail(
            'no clone, config drive or scratch disk, no iSCSI target, no '
            'HIL attachment, no VolumeTarget, no published boot file left; '
            'every switch port on its guard VLAN alone: %s'
            % ', '.join('%s %s' % (p, self.net.switch.port_vlans(p))
                        for n in self.nodes for p in n.ports.values()))

    def _rbd_rows(self):
        """soak_census rows of the RBD images of the clone pool."""
        pool = images.ImageLibrary().clone_pool
        with rbd_utils.ClientPool().get() as client:
            names = rbd.RBD().list(client.ioctx(pool))
        return soak_census.rbd_names(names, pool)

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
        """Remove what this run created; return the errors.

        Nodes, VMs, HIL records, switch ports, networks and images.
        """
        errors = []
        for node in self.nodes:
            try:
                self._remove_node(node)
            except Exception as e:
                errors.append('%s: %s' % (node.name, e))
            errors += self.net.unregister(node)
        for network in self.networks:
            errors += self.net.delete_network(network)
        self.networks = []
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
        lines = ['', 'Summary', '  %-16s %-16s %-22s %s' % header]
        for n in self.nodes:
            lines.append('  %-16s %-16s %-22s %s' % (
                n.name,
                '%.1f s' % n.to_active if n.to_active else '-',
                '%.1f s' % n.to_marker if n.to_marker else '-',
                self.lab.console(n.vm).path))
        return lines


class TenantScenario(Scenario):
    """Two projects, two VMs each, probing each other on tenant nets."""

    PROJECTS = ('tenant-a', 'tenant-b')

    def make_nodes(self, mac_byte):
        nodes = []
        for p, project in enumerate(self.PROJECTS):
            for i in (1, 2):
                index = 2 * p + i
                nodes.append(Node(
                    '%s-%s%d' % (self.prefix, project[-1], i), project,
                    index, mac_byte, TENANT_SUBNET % (10 + index)))
        return nodes

    def attacker(self, node):
        """Project A's nodes attack project B's: the i-th the i-th."""
        return node.project == self.PROJECTS[0]

    def victim(self, node):
        i = [n for n in self.nodes if n.project == node.project].index(node)
        return [n for n in self.nodes if n.project != node.project][i]

    def expected(self, node, victim_export=None):
        """[Probe] of ``node``'s plan.

        Every node: its peers on the tenant networks (its project's
        reachable, the other's blocked), its own boot file on its boot
        network (reachable), its own disk (reachable). A node of project
        A also tries its victim in B: B's node's boot files (``<uuid>/
        config`` and ``pxelinux.cfg/<mac>``, at B's gateway address and at
        A's own) and a login to its target with B's CHAP user, secret,
        target IQN (``victim_export``, from Ceph), at B's portal and at
        A's, as B's initiator and as A's own: all blocked.
        """
        probes = [Probe('tenant-net', peer.name,
                        'reachable' if peer.project == node.project
                        else 'blocked', [peer.tenant_ip.split('/')[0]])
                  for peer in self.nodes if peer is not node]
        own = self.net.boot_networks[node.project]
        probes.append(Probe('boot-files', node.name, 'reachable',
                            ['%s/%s/config' % (own.url, node.uuid)]))
        if self.attacker(node):
            v = self.victim(node)
            theirs = self.net.boot_networks[v.project]
            mac = v.mac.replace(':', '-')
            for gw in (theirs, own):
                probes += [
                    Probe('boot-files', '%s/config@%s' % (v.name,
                                                          gw.address),
                          'blocked', ['%s/%s/config' % (gw.url, v.uuid)]),
                    Probe('boot-files', '%s/mac@%s' % (v.name, gw.address),
                          'blocked', ['%s/pxelinux.cfg/%s' % (gw.url, mac)])]
            if victim_export is not None:
                ex = victim_export
                for gw in (theirs, own):
                    for who, initiator in (('its-iqn', v.initiator),
                                           ('own-iqn', node.initiator)):
                        probes.append(Probe(
                            'iscsi-login', '%s@%s/%s' % (v.name, gw.address,
                                                         who),
                            'blocked', [gw.address, 3260, ex.target_iqn,
                                        initiator, ex.chap_username,
                                        ex.chap_secret]))
        probes.append(Probe('own-disk', node.name, 'reachable', ['root']))
        return probes

    def run(self):
        r = self.report
        a, b = self.PROJECTS
        with r.step('import the golden image (public) with bmi-manage'):
            self.golden = self._import_image(visibility='public')
        with r.step('create a tenant network per project in HIL'):
            self.tenant_nets = {}
            for project in self.PROJECTS:
                name = '%s-net-%s' % (self.prefix, project)
                self.networks.append(name)
                vlan = self.net.create_network(name, project)
                self.tenant_nets[project] = name
                bn = self.net.boot_networks[project]
                r.detail('HIL network %s of project %s: VLAN %d; its boot '
                         'network %s: VLAN %d, gateway %s, portal %s'
                         % (name, project, vlan, bn.hil_network,
                            self.net.vlan(bn.hil_network), bn.address,
                            bn.portal))
        with r.step('define four VMs on the switch and enroll them in HIL '
                    'and Ironic'):
            self.enroll_all()
        self.plans = {}
        with r.step('deploy the nodes of %s, each with its tenant network '
                    'and a probe plan' % b):
            for node in self.nodes:
                if node.project == b:
                    self._deploy_with_plan(node)
            exports = {n.name: self._wait_export(n) for n in self.nodes
                       if n.project == b}
        with r.step('deploy the nodes of %s with plans that hold %s\'s '
                    'CHAP user, secret and target IQN (taken from Ceph)'
                    % (a, b)):
            for node in self.nodes:
                if node.project == a:
                    self._deploy_with_plan(
                        node, exports[self.victim(node).name])
            for node in self.nodes:
                self._wait_active(node)
        with r.step('the guests probe each other, the boot files, the '
                    'targets and their own disks'):
            self._wait_probes()
        with r.step('check the probes'):
            self.check_probes()
        with r.step('undeploy the four nodes'):
            self.undeploy_all()
        with r.step('check that every switch port is on no VLAN and HIL '
                    'shows no attachment'):
            self.check_nothing_left()

    def _deploy_with_plan(self, node, victim_export=None):
        self.plans[node.name] = self.expected(node, victim_export)
        plan = probe_plan(node, self.plans[node.name])
        self._deploy(node, self.golden, [{
            'network': self.tenant_nets[node.project],
            'nic': TENANT_NIC, 'channel': 'vlan/native'}],
            config_drive(plan))

    def _wait_export(self, node):
        """The node's export as Ceph records it, once it exists."""
        mgr = export_manager.ExportManager()
        deadline = node.deploy_started + self.state_timeout
        while True:
            n = self._node(node)
            if n.provision_state in ('deploy failed', 'error'):
                raise RuntimeError('%s: %s: %s' % (
                    node.name, n.provision_state, n.last_error))
            ex = mgr.get_export(node.uuid)
            if ex is not None and ex.chap_secret:
                self.report.detail(
                    '%s\'s target %s, CHAP user %s (secret from Ceph)'
                    % (node.name, ex.target_iqn, ex.chap_username))
                return ex
            if time.monotonic() > deadline:
                raise RuntimeError('%s has no export after %ss'
                                   % (node.name, self.state_timeout))
            time.sleep(0.5)

    def _wait_probes(self):
        deadline = time.monotonic() + self.boot_timeout + 2 * PROBE_TIMEOUT
        shown = {n.name: 0 for n in self.nodes}
        waiting = list(self.nodes)
        while waiting:
            for node in list(waiting):
                text, shown[node.name] = self._console_step(
                    node, shown[node.name])
                done = re.search(PROBES_DONE_RE, text, re.M)
                if done and done.group(1) == node.name:
                    node.to_probes = time.monotonic() - (
                        node.powered_on or node.deploy_started)
                    node.probes = [
                        (m.group(2), m.group(3), m.group(4))
                        for m in re.finditer(PROBE_RE, text, re.M)
                        if m.group(1) == node.name]
                    waiting.remove(node)
            if waiting and time.monotonic() > deadline:
                raise RuntimeError('no BMI-PROBES-DONE from %s (consoles: '
                                   '%s)' % (
                                       ', '.join(n.name for n in waiting),
                                       ', '.join(self.lab.console(n.vm).path
                                                 for n in waiting)))
            time.sleep(0.5)

    def probe_lines(self):
        """(line, ok) per expected probe, in the issue's form."""
        result = []
        for node in self.nodes:
            seen = {(to, kind): s for to, kind, s in node.probes}
            for p in self.plans.get(node.name, []):
                got = seen.get((p.to, p.kind), 'missing')
                result.append((
                    'PROBE %s -> %s %s: expected %s, seen %s'
                    % (node.name, p.to, p.kind, p.expected, got),
                    got == p.expected))
        return result

    def check_probes(self):
        lines = self.probe_lines()
        for line, _ok in lines:
            self.report.line(line)
        bad = [line for line, ok in lines if not ok]
        if bad:
            raise RuntimeError('%d probe(s) not as expected: %s'
                               % (len(bad), '; '.join(bad)))
        self.check_refused_by_the_gateway()

    def check_refused_by_the_gateway(self):
        """A's fetches at B's address reached B's server, which said 403.

        So the blocked ``boot-files`` probes at B's gateway address were
        stopped by the gateway's defence (nginx's ``allow`` of B's
        network), not by the guest's routing.

        :raises: RuntimeError naming the victim whose file no 403 shows.
        """
        with open(self.net.http_access_log, errors='replace') as f:
            log = f.read()
        for node in self.nodes:
            if not self.attacker(node):
                continue
            v = self.victim(node)
            own = self.net.boot_networks[node.project]
            prefix = own.address.rsplit('.', 1)[0] + '.'
            refused = re.findall(r'^(%s\d+) .*"GET /%s/config HTTP/[\d.]+" '
                                 r'403 ' % (re.escape(prefix), v.uuid),
                                 log, re.M)
            if not refused:
                raise RuntimeError(
                    'no request of %s for %s\'s boot file reached %s\'s '
                    'server (%s): blocked by routing, not by the gateway'
                    % (node.name, v.name, v.project,
                       self.net.http_access_log))
            self.report.detail(
                'gateway: %s\'s GET of %s\'s boot file at %s was refused '
                '(403, from %s)' % (node.name, v.name,
                                    self.net.boot_networks[v.project].address,
                                    refused[0]))

    def summary(self):
        header = ('node', 'project', 'time to ACTIVE', 'boot to probes done')
        lines = ['', 'Summary (tenant networks)',
                 '  %-14s %-10s %-16s %s' % header]
        for n in self.nodes:
            lines.append('  %-14s %-10s %-16s %s' % (
                n.name, n.project,
                '%.1f s' % n.to_active if n.to_active else '-',
                '%.1f s' % n.to_probes if n.to_probes else '-'))
        return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--services',
                        help='services.json (default: the lab state\'s)')
    parser.add_argument('--lab-dir', required=True)
    parser.add_argument('--image', required=True, help='raw golden image')
    parser.add_argument('--guest-image',
                        help='the Debian guest\'s raw golden image '
                             '(tools/demo/build-debian.sh): boot it too')
    parser.add_argument('--only', choices=('tenants', 'snapshot', 'guest'),
                        help='run one scenario only')
    args = parser.parse_args(argv)

    def _terminate(signum, frame):
        raise SystemExit('interrupted by signal %d' % signum)
    signal.signal(signal.SIGTERM, _terminate)

    env = lab_state.load_services(args.services)
    ironic_env = lab_state.read_env(env['ironic_state'], 'Ironic')
    bmi_conf = os.path.join(env['ironic_state'], 'bmi.conf')
    CONF(args=[], project='bmi', default_config_files=[bmi_conf])

    # tools/demo.sh passes its start time: one clock for all the steps.
    report = Reporter(started_at=float(os.environ.get('BMI_DEMO_T0') or 0))
    rc = 0
    scenarios = []
    failed = None
    try:
        lab = vmlab.Lab.from_services(env, args.lab_dir)
        net = LabNet(env)
        report.detail('lab namespace %s: Redfish %s, HIL %s; boot networks '
                      '(iPXE files and tgtd portal on the gateway address '
                      'of each project): %s' % (
                          labnet.NETNS, lab.redfish_url, net.admin.url,
                          ', '.join('%s %s' % (p, n.address) for p, n in
                                    sorted(net.boot_networks.items()))))
        kinds = [('tenants', TenantScenario, 0xb4, args.image),
                 ('snapshot', Scenario, 0xb3, args.image)]
        if args.guest_image:
            # Imported here: tools.lab.guest builds on this module.
            from tools.lab import guest
            kinds.append(('guest', guest.GuestScenario, 0xb5,
                          args.guest_image))
        for kind, cls, mac_byte, image in kinds:
            if args.only and args.only != kind:
                continue
            scenario = cls(lab, ironic_env['url'], bmi_conf, net,
                           image, mac_byte=mac_byte, reporter=report)
            scenarios.append(scenario)
            try:
                scenario.run()
            finally:
                for err in scenario.cleanup():
                    report.say('cleanup: %s' % err)
    except StepFailed as e:
        rc = 1
        failed = e
    except (Exception, SystemExit, KeyboardInterrupt) as e:
        rc = 1
        failed = StepFailed(report.current or 'setup',
                            e if str(e) else 'interrupted')
    finally:
        for scenario in scenarios:
            for line in scenario.summary():
                print(line)
        print('  logs: VM consoles %s, Ironic %s'
              % (os.path.join(os.path.abspath(args.lab_dir), 'console'),
                 os.path.join(env['ironic_state'], 'ironic.log')))
    if rc:
        print('\nDEMO FAILED at step "%s": %s' % (failed.step, failed.error))
        for scenario in scenarios:
            for node in scenario.nodes:
                if node.vm_uuid is None:
                    continue
                tail = scenario.lab.console(node.vm).text(
                    node.console_offset).splitlines()[-15:]
                if tail:
                    print('--- last console lines of %s' % node.vm)
                    print('\n'.join(tail))
    else:
        print('\nDEMO OK in %.1fs' % report.elapsed())
    return rc


if __name__ == '__main__':
    sys.exit(main())
