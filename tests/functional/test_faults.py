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

"""Faults of issue 12 against the real lab: tgtd killed, a full pool.

The lab's own tgtd is killed with SIGKILL (as a crash would) and started
again at the end of each test (``tools.lab start tgtd``); the clone pool's
quota is set with ``ceph osd pool set-quota`` and removed again.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

from ironicclient.common.apiclient import exceptions as ir_exc
import rbd

from bmi_driver import exception
from bmi_driver.storage import layout
from tests.functional import test_ironic

WAIT = 150


class FaultsTestCase(test_ironic.IronicHelpers):

    def setUp(self):
        super().setUp()
        self.use_ironic(self.env['ironic_state'])
        self.pool = self.env['image_pool']

    # --- helpers ----------------------------------------------------------

    def ceph(self, *args):
        return subprocess.run(
            ['ceph', '-c', self.env['ceph_conf'], '--keyring',
             self.env['ceph_admin_keyring'], '--name', 'client.admin']
            + list(args), check=True, capture_output=True, text=True,
            timeout=60).stdout

    def kill_tgtd(self):
        """kill -9 the lab's tgtd; it is started again at cleanup."""
        with open(os.path.join(self.env['state_dir'], 'tgtd.pid')) as f:
            pid = int(f.read().split()[0])
        self.addCleanup(self._restart_tgtd)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while os.path.exists('/proc/%d' % pid) and not open(
                '/proc/%d/stat' % pid).read().split()[2] == 'Z':
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        return pid

    def _restart_tgtd(self):
        # The killed tgtd's parent (the lab's start) is gone and nothing
        # here reaps orphans: its zombie would pass for a running tgtd.
        pidfile = os.path.join(self.env['state_dir'], 'tgtd.pid')
        try:
            with open(pidfile) as f:
                pid = int(f.read().split()[0])
            with open('/proc/%d/stat' % pid) as f:
                if f.read().split()[2] == 'Z':
                    os.unlink(pidfile)
        except (OSError, ValueError):
            pass
        subprocess.run([sys.executable, '-m', 'tools.lab', 'start', 'tgtd'],
                       check=True, capture_output=True, timeout=120)

    def rbd_names(self):
        with self.lib._clients.get() as client:
            ioctx = client.ioctx(self.pool)
            return (set(rbd.RBD().list(ioctx)),
                    {e['name'] for e in rbd.RBD().trash_list(ioctx)})

    def assert_no_disk(self, node_uuid, timeout=0):
        """No clone nor config drive in the pool, nor in its trash.

        The trash may keep them ``timeout`` seconds at most (the sweep).
        """
        names = {layout.node_rbd_name(node_uuid),
                 layout.configdrive_rbd_name(node_uuid)}
        deadline = time.monotonic() + timeout
        while True:
            images, trash = self.rbd_names()
            self.assertEqual(set(), names & images)
            if not names & trash:
                return
            if time.monotonic() > deadline:
                self.fail('%s still in the RBD trash after %d s'
                          % (names & trash, timeout))
            time.sleep(1)

    def wait_any(self, node_uuid, states, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while True:
            node = self.ironic.node.get(node_uuid)
            if node.provision_state in states:
                return node
            if time.monotonic() > deadline:
                self.fail('node %s is %s, not in %s: %s\n%s'
                          % (node_uuid, node.provision_state, states,
                             node.last_error, self.ironic_log()))
            time.sleep(0.2)

    # --- tgtd killed --------------------------------------------------------

    def test_tgtd_killed_during_deploy_leaves_no_disk(self):
        image, _digest = self.golden()
        node = self.create_node()
        self.ironic.node.update(node.uuid, [
            {'op': 'add', 'path': '/instance_info/image_source',
             'value': image.uuid}])
        self.ironic.node.set_provision_state(node.uuid, 'active')
        # Kill tgtd as soon as the clone exists: before or during its
        # export.
        clone = layout.node_rbd_name(node.uuid)
        deadline = time.monotonic() + WAIT
        while clone not in self.rbd_names()[0]:
            self.assertLess(time.monotonic(), deadline, self.ironic_log())
        t0 = time.monotonic()
        self.kill_tgtd()
        node = self.wait_any(node.uuid, ('deploy failed', 'active'))
        if node.provision_state == 'active':
            # tgtd died after the export: what the undeploy test covers.
            self.ironic.node.set_provision_state(node.uuid, 'deleted')
            node = self.wait_any(node.uuid, ('available', 'error'))
            self.assertEqual('available', node.provision_state,
                             node.last_error)
        else:
            self.assertIn('iSCSI target daemon', self.failure(node) or '')
        elapsed = time.monotonic() - t0
        print('tgtd killed during deploy: node %s after %.1f s'
              % (node.provision_state, elapsed))
        self.assertEqual([], self.ironic.volume_target.list(node=node.uuid))
        self.assert_no_disk(node.uuid, timeout=90)

    def test_tgtd_killed_then_undeploy(self):
        image, _digest = self.golden()
        node = self.create_node()
        self.deploy(node.uuid, image.uuid)
        self.kill_tgtd()
        t0 = time.monotonic()
        self.ironic.node.set_provision_state(node.uuid, 'deleted')
        node = self.wait_any(node.uuid, ('available', 'error',
                                         'clean failed'))
        elapsed = time.monotonic() - t0
        self.assertEqual('available', node.provision_state, '%s\n%s' % (
            node.last_error, self.ironic_log()))
        self.assertEqual([], self.ironic.volume_target.list(node=node.uuid))
        # Removed at once (the dead tgtd's watch blocklisted), or moved to
        # the trash and swept within [ceph] sweep_interval (60 s).
        self.assert_no_disk(node.uuid, timeout=90)
        print('undeploy with tgtd killed: available after %.1f s, disk '
              'gone after %.1f s' % (elapsed, time.monotonic() - t0))
        blocklist = self.ceph('osd', 'blocklist', 'ls')
        print('blocklist: %s' % ' | '.join(blocklist.split('\n')))

    # --- a full pool --------------------------------------------------------

    def set_quota(self, max_objects):
        self.ceph('osd', 'pool', 'set-quota', self.pool, 'max_objects',
                  str(max_objects))

    def wait_flag(self, flag, present=True, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            dump = json.loads(self.ceph('osd', 'dump', '--format', 'json'))
            flags = next(p['flags_names'] for p in dump['pools']
                         if p['pool_name'] == self.pool)
            if (flag in flags.split(',')) == present:
                return
            self.assertLess(time.monotonic(), deadline, flags)
            time.sleep(0.5)

    def test_pool_quota(self):
        image, _digest = self.golden()
        active = self.create_node()
        self.deploy(active.uuid, image.uuid)
        exp = self.node_export(active.uuid)
        node = self.create_node()
        self.ironic.node.update(node.uuid, [
            {'op': 'add', 'path': '/instance_info/image_source',
             'value': image.uuid}])
        self.addCleanup(self.wait_flag, 'full_quota', False)
        self.addCleanup(self.set_quota, 0)
        # Fewer objects than the pool holds: full at once.
        self.set_quota(1)
        self.wait_flag('full_quota')
        before = self.rbd_names()
        e = self.assertRaises(ir_exc.BadRequest,
                              self.ironic.node.set_provision_state,
                              node.uuid, 'active')
        print('validate on a full pool: %s' % e)
        self.assertIn('Ceph pool %s is full (quota' % self.pool, str(e))
        self.assertEqual('available',
                         self.ironic.node.get(node.uuid).provision_state)
        self.assertRaises(exception.CloneNotFound,
                          self.lib.get_node_disk, node.uuid)
        self.assertEqual(before, self.rbd_names())
        # A write to the active node's LUN on the full pool fails within
        # the backing store's op timeout (rados osd op timeout in the
        # [client.tgt] section of ceph.conf), and tgtd keeps answering.
        result = {}

        def write():
            try:
                test_ironic.write_lun(exp.portal, exp.target_iqn, 1,
                                      exp.chap_username, exp.chap_secret,
                                      # Inside the 8 MiB disk, never
                                      # written: a new RBD object.
                                      2 << 20, b'Q' * 65536)
                result['error'] = None
            except Exception as e:
                result['error'] = e
            result['t'] = time.monotonic()

        t0 = time.monotonic()
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        time.sleep(2)
        t1 = time.monotonic()
        served = [t.iqn for t in self.exports.backend.list_targets()]
        tgtadm_s = time.monotonic() - t1
        self.assertIn(exp.target_iqn, served)
        writer.join(120)
        self.assertFalse(writer.is_alive(),
                         'the LUN write on the full pool hung for 120 s')
        error = result['error']
        said = (getattr(error, 'stdout', None) or b'') + (
            getattr(error, 'stderr', None) or b'')
        print('LUN write on the full pool: %s after %.1f s; tgtd answered '
              'a show in %.2f s meanwhile'
              % ('failed (%r)' % said[-300:] if error else 'succeeded',
                 result['t'] - t0, tgtadm_s))
        # tgtd answers the write with a SCSI error (measured: MEDIUM ERROR,
        # "unrecovered read error" ASCQ 0x1100, after the backing store's
        # op timeout); qemu-io then either exits non-zero or keeps
        # retrying until write_lun's own 60 s timeout.
        self.assertIsInstance(error, (subprocess.CalledProcessError,
                                      subprocess.TimeoutExpired))
        self.assertIn(b'failed', said)
        self.assertLess(tgtadm_s, 5)
