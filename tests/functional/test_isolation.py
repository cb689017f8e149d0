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

"""Issue 11's attack list, tried through the lab's real services.

Ironic all-in-one in per-project mode (the lab's bmi.conf: [bmi]
boot_networks_file), the real tgtd, Ceph and HIL. Where a case needs no
service it is a unit test (tests/unit: HIL names with ``/ ? # ..``,
config-drive URL policy against a local server); here are the cases that
need the real thing:

* a forged ``instance_info/project_id`` does not give another project's
  private image; a node of no project deploys public images only;
* config drives by URL: the Ironic API itself is refused before anything
  is cloned; with an allowed host an endless body is cut at the size cap
  and a trickle at the time limit, and the conductor's memory stays
  bounded (an Ironic of its own, with those options);
* no CHAP secret on any command line during a real deploy and rebuild
  (``/proc/*/cmdline`` polled meanwhile);
* unauthenticated iSCSI discovery lists no target;
* an unknown HIL node: the deploy is refused with nothing cloned; an
  undeploy of a node that HIL lost succeeds.
"""

import http.server
import os
import subprocess
import threading
import time
import uuid

from ironicclient.common.apiclient import exceptions as ir_exc

from bmi_driver import exception
from tests.functional import test_ironic
from tools.lab import e2e
from tools.lab import hil_real

MiB = 1024 ** 2


def _rss_kib(pid):
    """Resident memory of ``pid`` and its children, in KiB."""
    total = 0
    pids = [pid]
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
            pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    for p in pids:
        try:
            with open('/proc/%d/status' % p) as f:
                for line in f:
                    if line.startswith('VmRSS:'):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class CmdlinePoller(threading.Thread):
    """Every distinct command line of every process, polled every 5 ms."""

    def __init__(self):
        super().__init__(daemon=True)
        self.seen = set()
        self.polls = 0
        self._done = threading.Event()

    def run(self):
        while not self._done.is_set():
            for pid in os.listdir('/proc'):
                if not pid.isdigit():
                    continue
                try:
                    with open('/proc/%s/cmdline' % pid, 'rb') as f:
                        self.seen.add(f.read())
                except OSError:
                    pass
            self.polls += 1
            self._done.wait(0.005)

    def stop(self):
        self._done.set()
        self.join(10)


class LabIronicTestCase(test_ironic.IronicHelpers):
    """The lab's Ironic all-in-one (not IronicTestCase: its tests)."""

    def setUp(self):
        super().setUp()
        self.use_ironic(self.env.get('ironic_state'))

    def project_image(self, project, visibility='private'):
        path = os.path.join(self.tmp, 'image-%s.raw' % project)
        with open(path, 'wb') as f:
            f.write(os.urandom(test_ironic.IMAGE_SIZE))
        image = self.lib.import_file(path, self.unique('img'),
                                     project=project, visibility=visibility)
        self.addCleanup(self._delete_image, image.uuid)
        return image


class ProjectTestCase(LabIronicTestCase):
    """One resolution of the node's project, from admin-set fields."""

    def _refused_deploy(self, node_uuid, image_uuid, **info):
        patch = [{'op': 'add', 'path': '/instance_info/image_source',
                  'value': image_uuid}]
        patch += [{'op': 'add', 'path': '/instance_info/%s' % k,
                   'value': v} for k, v in info.items()]
        self.ironic.node.update(node_uuid, patch)
        e = self.assertRaises(ir_exc.BadRequest,
                              self.ironic.node.set_provision_state,
                              node_uuid, 'active')
        self.assertEqual('available',
                         self.ironic.node.get(node_uuid).provision_state)
        self.assertRaises(exception.CloneNotFound,
                          self.lib.get_node_disk, node_uuid)
        return str(e)

    def test_forged_project_id_gives_no_private_image(self):
        # A node leased to tenant-a; its lessee writes instance_info and
        # claims tenant-b, whose private image it wants.
        image = self.project_image('tenant-b')
        node = self.create_node(lessee='tenant-a')
        msg = self._refused_deploy(node.uuid, image.uuid,
                                   project_id='tenant-b')
        # Refused for the node's own project; the owner is not named.
        self.assertIn('not visible to project tenant-a', msg)
        self.assertIn('private to another project', msg)
        self.assertNotIn('tenant-b', msg)

    def test_node_without_project_deploys_public_images_only(self):
        node = self.create_node(owner=None)
        n = self.ironic.node.get(node.uuid)
        self.assertEqual((None, None), (n.owner, n.lessee))
        private = self.project_image('admin')
        msg = self._refused_deploy(node.uuid, private.uuid)
        self.assertIn('public images only', msg)
        self.assertIn('private to another project', msg)

        public = self.project_image('admin', visibility='public')
        self.deploy(node.uuid, public.uuid)
        self.ironic.node.set_provision_state(node.uuid, 'deleted')
        self.wait(node.uuid, 'available')
        self.assert_released(node.uuid)


class SecretsTestCase(LabIronicTestCase):
    """No secret on a command line; discovery lists nothing."""

    def test_no_chap_secret_on_any_command_line(self):
        image, _digest = self.golden()
        node = self.create_node()
        poller = CmdlinePoller()
        poller.start()
        try:
            self.deploy(node.uuid, image.uuid)
            first = self.node_export(node.uuid).chap_secret
            self.ironic.node.set_provision_state(node.uuid, 'rebuild')
            self.wait(node.uuid, 'active')
            second = self.node_export(node.uuid).chap_secret
        finally:
            poller.stop()
        self.assertNotEqual(first, second)
        self.assertGreater(poller.polls, 50)
        self.assertGreater(len(poller.seen), 10)
        for secret in (first, second):
            found = [c for c in poller.seen if secret.encode() in c]
            self.assertEqual([], found)

    def test_unauthenticated_discovery_lists_no_target(self):
        image, _digest = self.golden()
        node = self.create_node()
        self.deploy(node.uuid, image.uuid)
        exp = self.node_export(node.uuid)
        for portal in (exp.portal, self.env['tgtd_portal']):
            proc = subprocess.run(
                ['iscsi-ls', '-i', 'iqn.2026-11.org.example:nobody',
                 'iscsi://%s' % portal], capture_output=True, text=True,
                timeout=60)
            out = proc.stdout + proc.stderr
            self.assertNotIn(exp.target_iqn, out)
            self.assertNotIn('Target:', proc.stdout, out)


class _DriveHandler(http.server.BaseHTTPRequestHandler):
    mode = 'endless'

    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.end_headers()
        chunk = b'A' * 65536
        try:
            if self.path.startswith('/endless'):
                while True:
                    self.wfile.write(chunk)
            else:
                # A trickle: a few bytes every half second, for ever.
                while True:
                    self.wfile.write(b'A' * 16)
                    self.wfile.flush()
                    time.sleep(0.5)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


class ConfigDriveURLTestCase(test_ironic.IronicHelpers):
    """Config drives by URL, through a real conductor."""

    def test_ironic_api_url_refused_before_any_clone(self):
        # The lab's Ironic: no config-drive URL is allowed (the default).
        self.use_ironic(self.env.get('ironic_state'))
        image, _digest = self.golden()
        node = self.create_node()
        self.ironic.node.update(node.uuid, [
            {'op': 'add', 'path': '/instance_info/image_source',
             'value': image.uuid}])
        msg = self._deploy_refused(node.uuid, b'http://127.0.0.1:6385/')
        self.assertIn('config drive URL is refused', msg)
        self.assertNotIn('127.0.0.1:6385', msg)
        self.assertRaises(exception.CloneNotFound,
                          self.lib.get_node_disk, node.uuid)

    def _deploy_refused(self, node_uuid, url):
        """Deploy with a config drive URL; the error (API or last_error).

        A URL given to the provision API is stored after validate: prepare
        refuses it, before anything is cloned.
        """
        try:
            # bytes: the client takes a str with a "/" for a file name.
            self.ironic.node.set_provision_state(node_uuid, 'active',
                                                 configdrive=url)
        except ir_exc.BadRequest as e:
            return str(e)
        return self.failure(self._wait_failed(node_uuid))

    def _wait_failed(self, node_uuid, timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            n = self.ironic.node.get(node_uuid)
            if n.provision_state == 'deploy failed':
                return n
            self.assertNotEqual('active', n.provision_state)
            self.assertLess(time.monotonic(), deadline, self.ironic_log())
            time.sleep(0.5)

    def test_endless_and_slow_streams_are_cut(self):
        server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                 _DriveHandler)
        server.daemon_threads = True
        port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.start_ironic('[bmi]\nconfigdrive_url_hosts = 127.0.0.1:%d\n'
                          'configdrive_url_allow_http = true\n'
                          'configdrive_max_size = %d\n'
                          'configdrive_url_timeout = 5\n' % (port, 16 * MiB))
        image, _digest = self.golden()
        pid = self.ironic_env['pid']
        before = _rss_kib(pid)
        for path, why in (('/endless', 'larger than [bmi] '
                                       'configdrive_max_size'),
                          ('/slow', 'took longer than [bmi] '
                                    'configdrive_url_timeout')):
            node = self.create_node()
            self.ironic.node.update(node.uuid, [
                {'op': 'add', 'path': '/instance_info/image_source',
                 'value': image.uuid}])
            t0 = time.monotonic()
            msg = self._deploy_refused(
                node.uuid, b'http://127.0.0.1:%d%s' % (port, path.encode()))
            self.assertIn(why, msg)
            self.assertLess(time.monotonic() - t0, 90)
            self.assertRaises(exception.CloneNotFound,
                              self.lib.get_node_disk, node.uuid)
        grown = _rss_kib(pid) - before
        # At most the cap (16 MiB) and the allocator's slack: the endless
        # body once took the conductor from 211 MB to 2.3 GB.
        self.assertLess(grown, 64 * 1024, 'conductor RSS grew %d KiB'
                        % grown)


class HILNodeTestCase(LabIronicTestCase):
    """Helpers: nodes in the real HIL, on real switch ports.

    The plugin's non-admin HIL user; fake power, so no VM boots.
    """

    def setUp(self):
        super().setUp()
        self.net = e2e.LabNet(self.env)

    def _hil_node(self, index):
        node = e2e.Node(self.unique('hiln'), 'e2e', index, 0xb8)
        self.net.add_ports(node)
        self.net.register(node)
        self.addCleanup(self._unregister, node)
        return node

    def _unregister(self, node):
        errors = self._detach_all(node)
        errors += self.net.unregister(node)
        self.assertEqual([], errors)

    def _detach_all(self, node):
        errors = []
        try:
            nets = self.net.node_networks(node)
        except hil_real.HILError as e:
            return [] if e.status == 404 else [str(e)]
        for label, channels in nets.items():
            for network in set(channels.values()):
                try:
                    self.net.admin.wait_action(self.net.admin.detach_network(
                        node.name, label, network))
                except hil_real.HILError as e:
                    errors.append(str(e))
        return errors

    def _ironic_node(self, hil, port_fields=None):
        """An Ironic node of HIL node ``hil``, available.

        :param port_fields: {MAC: extra fields of that port}: connectivity
            fields can only be set before the node is available.
        """
        port_fields = port_fields or {}
        node = self.ironic.node.create(
            driver='bmi', name=self.unique('node'), boot_interface='ipxe',
            deploy_interface='bmi', storage_interface='bmi',
            network_interface='hil', power_interface='fake',
            management_interface='fake', vendor_interface='bmi',
            driver_info={'hil_node': hil.name},
            properties={'capabilities': 'iscsi_boot:True'})
        self.addCleanup(self._delete_node, node.uuid)
        self.ironic.node.update(node.uuid, [
            {'op': 'add', 'path': '/owner', 'value': 'admin'},
            {'op': 'add', 'path': '/lessee', 'value': hil.project}])
        self.ironic.port.create(node_uuid=node.uuid, address=hil.mac,
                                pxe_enabled=True,
                                **port_fields.get(hil.mac, {}))
        self.ironic.port.create(node_uuid=node.uuid, address=hil.tenant_mac,
                                pxe_enabled=False,
                                **port_fields.get(hil.tenant_mac, {}))
        self.ironic.node.set_provision_state(node.uuid, 'manage')
        self.wait(node.uuid, 'manageable')
        self.ironic.node.set_provision_state(node.uuid, 'provide')
        self.wait(node.uuid, 'available')
        return node


class UnknownHILNodeTestCase(HILNodeTestCase):
    """A node HIL does not know: refused at deploy, no obstacle to undeploy."""

    def test_unknown_hil_node_deploy_refused_nothing_cloned(self):
        image, _digest = self.golden()
        hil = e2e.Node('no-such-node-%s' % uuid.uuid4().hex[:8], 'e2e', 1,
                       0xb9)
        node = self._ironic_node(hil)
        self.ironic.node.update(node.uuid, [
            {'op': 'add', 'path': '/instance_info/image_source',
             'value': image.uuid}])
        e = self.assertRaises(ir_exc.BadRequest,
                              self.ironic.node.set_provision_state,
                              node.uuid, 'active')
        self.assertIn(hil.name, str(e))
        self.assertEqual('available',
                         self.ironic.node.get(node.uuid).provision_state)
        self.assert_released(node.uuid)

    def test_undeploy_of_a_node_hil_lost_succeeds(self):
        image = self.project_image('e2e')
        hil = self._hil_node(3)
        node = self._ironic_node(hil)
        self.deploy(node.uuid, image.uuid)
        boot = self.net.boot_networks['e2e'].hil_network
        self.assertEqual(boot, self.net.node_networks(hil)['boot'].get(
            'vlan/native'))
        # HIL's admin removes the node (its networks first).
        self.assertEqual([], self._detach_all(hil))
        self.assertEqual([], self.net.unregister(hil))
        self.ironic.node.set_provision_state(node.uuid, 'deleted')
        self.wait(node.uuid, 'available')
        self.assert_released(node.uuid)
        self.assertFalse(self.ironic.node.get(node.uuid).last_error)


class SharedHILNodeTestCase(HILNodeTestCase):
    """An Ironic node pointed at another Ironic node's HIL node."""

    def test_node_pointed_at_a_deployed_nodes_hil_node_moves_nothing(self):
        # Ironic 39.0.0's default policy lets a member of a node's owner
        # project set its driver_info and lessee, and the plugin acts on
        # HIL with its own credentials: node B pointed at deployed node
        # A's HIL node, with A's project as lessee, would have had B's
        # undeploy detach A's networks. Refused before HIL is asked to
        # change anything; A's nics stay as they were, in HIL.
        image = self.project_image('e2e')
        hil = self._hil_node(4)
        victim = self._ironic_node(hil)
        self.deploy(victim.uuid, image.uuid)
        before = self.net.node_networks(hil)
        boot = self.net.boot_networks['e2e'].hil_network
        self.assertEqual(boot, before['boot'].get('vlan/native'))
        # Its ports labelled as the victim's nics (extra/hil_nic).
        other = e2e.Node(self.unique('hiln'), 'e2e', 7, 0xba)
        attacker = self._ironic_node(other, port_fields={
            other.mac: {'extra': {'hil_nic': e2e.BOOT_NIC}},
            other.tenant_mac: {'extra': {'hil_nic': e2e.TENANT_NIC}}})
        self.ironic.node.update(attacker.uuid, [
            {'op': 'add', 'path': '/driver_info/hil_node',
             'value': hil.name},
            {'op': 'add', 'path': '/instance_info/image_source',
             'value': image.uuid}])
        e = self.assertRaises(ir_exc.BadRequest,
                              self.ironic.node.set_provision_state,
                              attacker.uuid, 'active')
        self.assertIn('another Ironic node maps to it', str(e))
        self.assertNotIn(victim.uuid, str(e))
        self.assertEqual('available',
                         self.ironic.node.get(attacker.uuid).provision_state)
        self.assertEqual(before, self.net.node_networks(hil))
        self.assert_released(attacker.uuid)
        # The victim's own undeploy still takes it off its networks.
        self.ironic.node.set_provision_state(victim.uuid, 'deleted')
        self.wait(victim.uuid, 'available')
        self.assertNotIn(boot, self.net.node_networks(hil).get(
            'boot', {}).values())
