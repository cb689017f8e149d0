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

"""Exports heal themselves; deleted nodes leave nothing (issue 12).

Against the lab: real Ceph, the lab's tgtd (killed with SIGKILL and
started again as the lab's service), an Ironic all-in-one of the test's
own (fake power) whose conductor runs the plugin's periodic reconcile
every few seconds.  Its own IQN prefix keeps the lab's shared Ironic (its
periodic runs too, on the same tgtd) off the test's targets and clones.
"""

import hashlib
import os
import signal
import subprocess
import time

from ironicclient.common.apiclient import exceptions as ir_exc

from bmi_driver import exception
from bmi_driver.storage import layout
from tests.functional import test_ironic
from tests.functional import test_isolation
from tools.lab import service as lab_service
from tools.lab import services as lab_services
from tools.lab import state as lab_state

PREFIX = 'iqn.2026-12.org.massopen.bmi-heal'
INTERVAL = 3
WAIT = test_ironic.WAIT


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _marker():
    """4 KiB of one byte (what the helpers' qemu-io write can say)."""
    return bytes([os.urandom(1)[0] | 1]) * 4096


def _accounts():
    """The CHAP users tgtd knows (tgtadm prints no secret for them)."""
    proc = subprocess.run(['tgtadm', '--lld', 'iscsi', '--mode', 'account',
                           '--op', 'show'], capture_output=True, text=True,
                          timeout=30)
    return {line.strip() for line in proc.stdout.splitlines()[1:]}


class HealTestCase(test_ironic.IronicHelpers):

    def start(self, grace):
        self.config(iqn_prefix=PREFIX, group='iscsi')
        self.start_ironic('[bmi]\nreconcile_interval = %d\n'
                          'orphan_grace = %d\n'
                          '[iscsi]\niqn_prefix = %s\n'
                          % (INTERVAL, grace, PREFIX))

    def _delete_node(self, node_uuid):
        try:
            super()._delete_node(node_uuid)
        except ir_exc.NotFound:
            pass  # the test deleted it

    def until(self, predicate, timeout, what):
        start = time.monotonic()
        while not predicate():
            if time.monotonic() - start > timeout:
                self.fail('%s: not within %d s\n--- ironic log:\n%s'
                          % (what, timeout, self.ironic_log(80)))
            time.sleep(0.2)
        return time.monotonic() - start

    def history(self, node_uuid):
        return [e['event'] for e in self.ironic.node.get_history_list(
            node_uuid, detail=True)]

    def served(self, node_uuid):
        try:
            self.exports.verify_export(node_uuid)
        except (exception.ExportNotServed, exception.CloneNotFound):
            return False
        return True

    def test_tgtd_killed_the_periodic_heals_the_target(self):
        self.start(grace=300)
        image, digest = self.golden()
        node = self.create_node()
        self.deploy(node.uuid, image.uuid)
        marker = _marker()
        self.write_lun(node.uuid, 1024 * 1024, marker)
        exp = self.node_export(node.uuid)

        tgtd = lab_services.get('tgtd', lab_state.State())
        pid = tgtd.pid()
        self.assertIsNotNone(pid, 'the lab\'s tgtd does not run')
        os.kill(pid, signal.SIGKILL)
        lab_service.wait_for(lambda: not lab_service.pid_alive(pid), 10,
                             0.1, 'tgtd to die')
        self.assertRaises(exception.TargetDaemonUnavailable,
                          self.exports.verify_export, node.uuid)
        tgtd.start()
        healed = self.until(lambda: self.served(node.uuid),
                            INTERVAL * 2 + 10, 'the target back')

        # The same target, account and secret: the running OS logs in
        # again; its bytes are readable through a real initiator.
        self.assertEqual(exp, self.node_export(node.uuid))
        self.assertEqual(marker, self.lun_bytes(node.uuid, 1024 * 1024,
                                                len(marker)))
        self.assertEqual('active',
                         self.ironic.node.get(node.uuid).provision_state)
        events = self.history(node.uuid)
        self.assertTrue(any('re-created' in e for e in events), events)
        self.assertFalse(any(exp.chap_secret in e for e in events))
        print('tgtd SIGKILL + restart: target healed after %.1f s '
              '(interval %d s)' % (healed, INTERVAL))

    def _deploy_and_delete(self):
        image, _digest = self.golden()
        node = self.create_node()
        self.deploy(node.uuid, image.uuid)
        marker = _marker()
        self.write_lun(node.uuid, 0, marker)
        old = self.node_export(node.uuid)
        old_deployment = layout.disk_deployment(
            self.lib.get_node_disk(node.uuid))
        self.assertIsNotNone(old_deployment)
        self.ironic.node.set_maintenance(node.uuid, True)
        self.ironic.node.delete(node.uuid)
        return image, node, marker, old, old_deployment

    def _boot_files(self, node_uuid):
        roots = [self.ironic_env['http_root']]
        boot = lab_state.State().path('boot')
        if os.path.isdir(boot):
            roots += [os.path.join(boot, p) for p in os.listdir(boot)]
        return [os.path.join(root, node_uuid) for root in roots
                if os.path.exists(os.path.join(root, node_uuid))]

    def _leftovers(self, node_uuid, old):
        left = []
        try:
            self.lib.get_node_disk(node_uuid)
            left.append('clone')
        except exception.CloneNotFound:
            pass
        if self.exports.backend.get_target(old.target_iqn) is not None:
            left.append('target')
        if old.chap_username in _accounts():
            left.append('account')
        left += self._boot_files(node_uuid)
        return left

    def test_delete_active_node_in_maintenance_leaves_nothing(self):
        self.start(grace=2)
        _image, node, _marker, old, _dep = self._deploy_and_delete()
        self.assertIn('clone', self._leftovers(node.uuid, old))
        took = self.until(lambda: not self._leftovers(node.uuid, old),
                          INTERVAL * 2 + 20, 'the deleted node\'s clone, '
                          'target, account and boot files gone')
        print('ACTIVE node deleted in maintenance: nothing left after '
              '%.1f s (grace 2 s, interval %d s)' % (took, INTERVAL))

    def test_reenrolled_uuid_gets_a_fresh_clone_and_secret(self):
        # A long grace: the old clone is still there at the new deploy.
        self.start(grace=3600)
        image, node, marker, old, old_dep = self._deploy_and_delete()
        self.assertRaises(ir_exc.NotFound, self.ironic.node.get, node.uuid)
        self.lib.get_node_disk(node.uuid)  # still there
        again = self.create_node(uuid=node.uuid)
        self.deploy(again.uuid, image.uuid)
        new = self.node_export(again.uuid)
        self.assertNotEqual(old.chap_secret, new.chap_secret)
        self.assertNotEqual(
            old_dep, layout.disk_deployment(self.lib.get_node_disk(
                again.uuid)))
        # The new tenant reads the golden image, not the old one's data.
        self.assertNotEqual(marker, self.lun_bytes(again.uuid, 0,
                                                   len(marker)))

    def test_reenrolled_uuid_cannot_adopt_the_old_clone(self):
        # Ironic 39.0.0's adoption (a member of the owner project may ask
        # for it) runs prepare without a deploy: the re-enrolled UUID
        # would have been handed the deleted node's clone, its data and
        # its CHAP secret.
        self.start(grace=3600)
        image, node, marker, old, old_dep = self._deploy_and_delete()
        again = self.create_node(uuid=node.uuid)
        self.ironic.node.set_provision_state(again.uuid, 'manage')
        self.wait(again.uuid, 'manageable')
        self.ironic.node.update(again.uuid, [
            {'op': 'add', 'path': '/instance_info/image_source',
             'value': image.uuid}])
        self.ironic.node.set_provision_state(again.uuid, 'adopt')
        deadline = time.monotonic() + 60
        while True:
            again = self.ironic.node.get(again.uuid)
            if (again.provision_state in ('active', 'adopt failed')
                    or time.monotonic() > deadline):
                break
            time.sleep(0.5)
        self.assertEqual('adopt failed', again.provision_state)
        self.assertIn('never reused', again.last_error)
        self.assertEqual([], self.ironic.volume_target.list(
            node=again.uuid))
        # Left to the sweep of nodes at rest, as it was.
        self.assertEqual(old_dep, layout.disk_deployment(
            self.lib.get_node_disk(again.uuid)))
        # The sweep's work, which the long grace holds back: the golden
        # image can go only without the old clone.
        self.exports.unexport_node(again.uuid)
        self.lib.remove_node_disk(again.uuid)


class DeletedHILNodeTestCase(test_isolation.HILNodeTestCase):
    """A node deleted while ACTIVE leaves the real HIL as it found it."""

    def _delete_node(self, node_uuid):
        try:
            super()._delete_node(node_uuid)
        except ir_exc.NotFound:
            pass  # the test deleted it

    def test_deleted_active_node_leaves_its_hil_networks(self):
        HealTestCase.start(self, grace=2)
        image = self.project_image('e2e')
        hil = self._hil_node(5)
        node = self._ironic_node(hil)
        self.deploy(node.uuid, image.uuid)
        # The record travels with the clone, in Ceph.
        self.assertEqual(
            {'node': hil.name, 'project': hil.project, 'connected': False},
            layout.hil_record(self.lib.get_node_disk(node.uuid).metadata))
        boot = self.net.boot_networks['e2e'].hil_network
        self.assertEqual(boot, self.net.node_networks(hil)['boot'].get(
            'vlan/native'))
        self.ironic.node.set_maintenance(node.uuid, True)
        self.ironic.node.delete(node.uuid)

        def left():
            try:
                self.lib.get_node_disk(node.uuid)
                return True
            except exception.CloneNotFound:
                return any(self.net.node_networks(hil).values())
        took = HealTestCase.until(self, lambda: not left(), INTERVAL * 2 + 40,
                                  'the deleted node off its HIL networks')
        # Allocated to its project by HIL's admin: it stays there.
        info = self.net.admin.call('GET', 'node/' + hil.name)
        self.assertEqual(hil.project, info['project'])
        print('ACTIVE hil node deleted in maintenance: off its HIL networks '
              'and clone gone after %.1f s (grace 2 s, interval %d s)'
              % (took, INTERVAL))
