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

"""iSCSI export against the live Ceph cluster and real tgtd daemons.

Most tests use the shared tgtd ($BMI_TEST_ENV's ``tgtd_portal``, control
port 0); the restart test runs its own tgtd on a free control port and
portal port, started and stopped by pid.  Every node UUID is new, and every
clone, golden image and target is removed in cleanups.
"""

import concurrent.futures
import hashlib
import logging
import os
import socket
import subprocess
import time
import uuid

import fixtures

from bmi_driver import exception
from bmi_driver.storage.ceph import library as images
from bmi_driver.storage.export import manager as export
from bmi_driver.storage.export import tgt
from bmi_driver.storage.export import tgt_ipc
from tests.functional import base
from tests.functional import iscsi

MiB = 1024 * 1024
INITIATOR = 'iqn.2026-11.org.massopen.bmi.test:node-a'
OTHER_INITIATOR = 'iqn.2026-11.org.massopen.bmi.test:node-b'


def sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(MiB), b''):
            digest.update(chunk)
    return digest.hexdigest()


class TgtdProcess(fixtures.Fixture):
    """A tgtd of our own on 127.0.0.1, on free control and portal ports."""

    def _setUp(self):
        self.log_dir = self.useFixture(fixtures.TempDir()).path
        self.control_port = self._free_control_port()
        self.portal_port = self._free_tcp_port()
        self.proc = None
        self.start()
        self.addCleanup(self.stop)

    @staticmethod
    def _free_tcp_port():
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            return s.getsockname()[1]

    def _answers(self, port=None):
        return subprocess.run(
            ['tgtadm', '-C', str(port if port is not None
                                 else self.control_port),
             '--lld', 'iscsi', '--mode', 'system', '--op', 'show'],
            capture_output=True, timeout=10).returncode == 0

    def _free_control_port(self):
        for port in range(200 + os.getpid() % 500, 1000):
            if not self._answers(port):
                return port
        raise RuntimeError('no free tgtd control port')

    @property
    def portal(self):
        return '127.0.0.1:%d' % self.portal_port

    def start(self):
        log = open(os.path.join(self.log_dir, 'tgtd.log'), 'ab')
        self.proc = subprocess.Popen(
            ['tgtd', '-f', '-C', str(self.control_port), '--iscsi',
             'portal=%s' % self.portal], stdout=log, stderr=log)
        log.close()
        for _ in range(100):
            if self._answers():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError('own tgtd did not start (control port %d)'
                           % self.control_port)

    def stop(self):
        """Stop tgtd as an operator would: it forgets every target.

        tgtd exits on "--op delete --mode system" only once it serves no
        target, and closes its RBD images only when their targets are
        deleted (a killed tgtd leaves their watches behind for 30 s).
        """
        if self.proc is None:
            return
        if self.proc.poll() is None:
            base_cmd = ['tgtadm', '-C', str(self.control_port), '--lld',
                        'iscsi']
            show = subprocess.run(
                base_cmd + ['--mode', 'target', '--op', 'show'],
                capture_output=True, text=True, timeout=10)
            for target in tgt.parse_targets(show.stdout):
                subprocess.run(base_cmd + ['--mode', 'target', '--op',
                                           'delete', '--force', '--tid',
                                           str(target.tid)],
                               capture_output=True, timeout=10)
            subprocess.run(base_cmd + ['--mode', 'system', '--op',
                                       'delete'],
                           capture_output=True, timeout=10)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def tgtadm(self, *args):
        subprocess.run(['tgtadm', '-C', str(self.control_port), '--lld',
                        'iscsi'] + list(args), check=True,
                       capture_output=True, timeout=10)


class ExportTestCase(base.FunctionalTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.use_tgtd(self.env['tgtd_portal'], 0)
        self.config(tgt_ceph_user=self.env['ceph_tgt_user'],
                    tgt_ceph_conf=self.env['ceph_conf'], group='iscsi')
        self.lib = images.ImageLibrary()
        self.mgr = export.ExportManager(library=self.lib)
        self.mgr.check()  # no tgtd: fail loudly
        self._golden = None

    def use_tgtd(self, portal, control_port):
        host, port = portal.rsplit(':', 1)
        self.config(portal_address=host, portal_port=int(port),
                    tgtadm_control_port=control_port, group='iscsi')

    def golden(self):
        """A small golden image with random bytes: (GoldenImage, path)."""
        if self._golden is None:
            path = os.path.join(self.tmp, 'golden.raw')
            with open(path, 'wb') as f:
                f.write(os.urandom(2 * MiB))
                f.seek(6 * MiB)
                f.write(os.urandom(2 * MiB))
            image = self.lib.import_file(path, self.unique('export'))
            self.addCleanup(self.lib.delete, image.uuid)
            self._golden = (image, path)
        return self._golden

    def node(self):
        """A new node UUID with a clone of the golden image."""
        node_uuid = str(uuid.uuid4())
        self.lib.clone_for_node(node_uuid, self.golden()[0].uuid)
        self.addCleanup(self.remove_disk, node_uuid)
        self.addCleanup(self.mgr.unexport_node, node_uuid)
        return node_uuid

    def remove_disk(self, node_uuid, wait=60):
        # A tgtd that stopped without closing its images leaves their
        # watches behind until the OSD times them out (30 s).
        deadline = time.monotonic() + wait
        while True:
            try:
                return self.lib.remove_node_disk(node_uuid)
            except exception.ImageBusy:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def creds(self, exp, initiator=None):
        return dict(chap_user=exp.chap_username,
                    chap_secret=exp.chap_secret,
                    initiator_iqn=initiator or exp.initiator_iqn
                    or iscsi.DEFAULT_INITIATOR)


class InitiatorTest(ExportTestCase):
    """A real initiator against the shared tgtd."""

    def test_chap_login_reads_the_golden_image(self):
        image, path = self.golden()
        exp = self.mgr.export_node(self.node(), initiator_iqn=INITIATOR)
        self.assertEqual(image.size, iscsi.lun_size(
            exp.portal, exp.target_iqn, 1, **self.creds(exp)))
        self.assertIn('VIRTUAL-DISK', iscsi.inquiry(
            exp.portal, exp.target_iqn, 1, **self.creds(exp)))
        copy = iscsi.read_lun(exp.portal, exp.target_iqn, 1,
                              dest=self.tmp, **self.creds(exp))
        self.assertEqual(os.path.getsize(path), os.path.getsize(copy))
        self.assertEqual(sha256(path), sha256(copy))

    def test_refused_logins(self):
        a = self.mgr.export_node(self.node(), initiator_iqn=INITIATOR)
        b = self.mgr.export_node(self.node())  # CHAP only
        for exp in (a, b):
            self.assertFalse(iscsi.login_refused(
                exp.portal, exp.target_iqn, **self.creds(exp)))
            # no credentials
            self.assertTrue(iscsi.login_refused(
                exp.portal, exp.target_iqn,
                initiator_iqn=exp.initiator_iqn or OTHER_INITIATOR))
            # a wrong secret
            self.assertTrue(iscsi.login_refused(
                exp.portal, exp.target_iqn,
                **dict(self.creds(exp), chap_secret='x' * 16)))
        # another node's credentials
        self.assertTrue(iscsi.login_refused(
            a.portal, a.target_iqn, **self.creds(b, initiator=INITIATOR)))
        self.assertTrue(iscsi.login_refused(
            b.portal, b.target_iqn, **self.creds(a)))
        # the right credentials from the wrong initiator
        self.assertTrue(iscsi.login_refused(
            a.portal, a.target_iqn,
            **self.creds(a, initiator=OTHER_INITIATOR)))
        # CHAP-only target: any initiator with the credentials
        self.assertFalse(iscsi.login_refused(
            b.portal, b.target_iqn, **self.creds(b, initiator=INITIATOR)))

    def test_secret_never_logged(self):
        logger = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        exp = self.mgr.export_node(self.node())
        self.mgr.reconcile()
        self.mgr.unexport_node(exp.node_uuid)
        # The secret reaches tgtd over its management socket, never on a
        # command line or in a log line.
        self.assertIn(exp.target_iqn, logger.output)
        self.assertNotIn(exp.chap_secret, logger.output)

    def test_login_text_cannot_rewrite_the_target_list(self):
        # A tenant's node runs its own initiator: the alias it sends at
        # login is printed by tgtd verbatim, line breaks included, and
        # here writes a target with the victim's tid (removing that
        # "stray" would force-delete the victim's target) holding the
        # victim's account (deleting it opens the victim's target), then
        # a copy of the victim's own target line.  The listing is read
        # against tgtd's own list of targets: the victim's target is kept
        # and left unchanged, and the gateway goes on exporting others.
        image, path = self.golden()
        victim = self.mgr.export_node(self.node())
        own = self.mgr.export_node(self.node())
        tid = self.mgr.backend.get_target(victim.target_iqn).tid
        fake = '%s:junk' % self.mgr.iqn_prefix()
        alias = ('x\nTarget %d: %s\n    Account information:\n'
                 '        %s' % (tid, fake, victim.chap_username))
        with iscsi.Session(own.portal, own.target_iqn, alias=alias,
                           **self.creds(own)):
            listing = self.mgr.backend._tgtd('target', 'show')
            self.assertIn('\nTarget %d: %s\n' % (tid, fake), listing)
            listed = {t.iqn: t for t in self.mgr.backend.list_targets()}
            self.assertNotIn(fake, listed)
            self.assertEqual((tid, False, (victim.chap_username,)),
                             (listed[victim.target_iqn].tid,
                              listed[victim.target_iqn].uncertain,
                              listed[victim.target_iqn].accounts))
            report = self.mgr.reconcile()
            self.assertNotIn(fake, report.removed)
            self.assertNotIn(victim.target_iqn, report.failed)
            self.mgr.backend.remove_target(fake)
            # The gateway still works for everyone else: a node exported
            # and read back through the initiator, then removed.
            other_node = self.node()
            other = self.mgr.export_node(other_node)
            copy = iscsi.read_lun(other.portal, other.target_iqn, 1,
                                  dest=self.tmp, **self.creds(other))
            self.assertEqual(sha256(path), sha256(copy))
            self.mgr.unexport_node(other_node)
            self.assertIsNone(self.mgr.backend.get_target(other.target_iqn))
        copied = 'x\nTarget %d: %s\n' % (tid, victim.target_iqn)
        with iscsi.Session(own.portal, own.target_iqn, alias=copied,
                           **self.creds(own)):
            served = self.mgr.backend.get_target(victim.target_iqn)
            self.assertEqual((tid, True), (served.tid, served.uncertain))
            report = self.mgr.reconcile()
            self.assertIn('left as it is', report.failed[victim.target_iqn])
        self.assertEqual(tid, self.mgr.backend.get_target(
            victim.target_iqn).tid)
        self.assertFalse(iscsi.login_refused(
            victim.portal, victim.target_iqn, **self.creds(victim)))
        self.assertTrue(iscsi.login_refused(victim.portal,
                                            victim.target_iqn))
        report = self.mgr.reconcile()    # the sessions ended: all read
        self.assertEqual({}, report.failed)

    def test_login_text_cannot_make_a_lost_target_look_served(self):
        # The victim's target is gone (tgtd restarted, or a new deploy not
        # made yet): a tenant's login alias writes a copy of its block, at
        # a tid no target has.  It must not read as served: the deploy
        # step's check would pass and power the node on without a disk,
        # and the export would "find" it and never make it.
        image, path = self.golden()
        victim_node = self.node()
        victim = self.mgr.export_node(victim_node)
        own = self.mgr.export_node(self.node())
        listing = self.mgr.backend._tgtd('target', 'show')
        start = listing.index('Target %d: %s\n' % (
            self.mgr.backend.get_target(victim.target_iqn).tid,
            victim.target_iqn))
        end = listing.find('\nTarget ', start + 1)
        block = listing[start:end if end >= 0 else len(listing)]
        fake_tid = self.mgr.backend.get_target(own.target_iqn).tid + 50
        alias = 'x\nTarget %d: %s' % (
            fake_tid, block.split(': ', 1)[1])
        self.mgr.backend.remove_target(victim.target_iqn)
        with iscsi.Session(own.portal, own.target_iqn, alias=alias,
                           **self.creds(own)):
            listing = self.mgr.backend._tgtd('target', 'show')
            written = '\nTarget %d: %s\n' % (fake_tid, victim.target_iqn)
            self.assertIn(written, listing)
            self.assertIsNone(
                self.mgr.backend.get_target(victim.target_iqn))
            self.assertRaises(exception.ExportNotServed,
                              self.mgr.verify_export, victim_node)
            again = self.mgr.export_node(victim_node)
            served = self.mgr.backend.get_target(victim.target_iqn)
            self.assertNotEqual(fake_tid, served.tid)
            copy = iscsi.read_lun(again.portal, again.target_iqn, 1,
                                  dest=self.tmp, **self.creds(again))
            self.assertEqual(sha256(path), sha256(copy))

    def test_configdrive_is_lun_2(self):
        node = self.node()
        data = os.urandom(MiB)
        self.lib.write_node_configdrive(node, data)
        exp = self.mgr.export_node(node)
        self.assertEqual(2, len(exp.luns))
        copy = iscsi.read_lun(exp.portal, exp.target_iqn, 2, dest=self.tmp,
                              **self.creds(exp))
        with open(copy, 'rb') as f:
            self.assertEqual(data, f.read(len(data)))


class ExportLifecycleTest(ExportTestCase):

    def targets_named(self, iqn):
        return [t for t in self.mgr.backend.list_targets() if t.iqn == iqn]

    def test_export_twice_unexport_twice(self):
        node = self.node()
        first = self.mgr.export_node(node)
        second = self.mgr.export_node(node)
        self.assertEqual(first, second)
        self.assertEqual(1, len(self.targets_named(first.target_iqn)))
        self.assertEqual(first, self.mgr.get_export(node))
        self.mgr.unexport_node(node)
        self.mgr.unexport_node(node)
        self.assertEqual([], self.targets_named(first.target_iqn))
        self.assertIsNone(self.mgr.get_export(node))
        self.assertFalse([k for k in self.lib.get_node_disk(node).metadata
                          if k.startswith('bmi.export.')])

    def test_50_exports_in_parallel(self):
        # Made first: golden() is not for threads (each would write its
        # file while another imports it).
        self.golden()
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            nodes = list(pool.map(lambda _: self.node(), range(50)))
        with concurrent.futures.ThreadPoolExecutor(50) as pool:
            exports = list(pool.map(self.mgr.export_node, nodes))
        iqns = {e.target_iqn for e in exports}
        self.assertEqual(50, len(iqns))
        served = {t.iqn: t for t in self.mgr.backend.list_targets()
                  if t.iqn in iqns}
        self.assertEqual(iqns, set(served))
        self.assertEqual(50, len({t.tid for t in served.values()}))
        for exp in exports:
            self.assertEqual(exp.luns, served[exp.target_iqn].luns)
            self.assertEqual((exp.chap_username,),
                             served[exp.target_iqn].accounts)
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            list(pool.map(self.mgr.unexport_node, nodes))
        left = {t.iqn for t in self.mgr.backend.list_targets()}
        self.assertEqual(set(), iqns & left)


class RejectedFirstTest(ExportTestCase):
    """Bad input and missing clones never reach tgtd."""

    def setUp(self):
        super().setUp()
        # Every request to tgtd goes through tgt_ipc.request (the backend
        # speaks tgtd's management socket, no tgtadm process).
        self.tgtd_requests = self.useFixture(fixtures.MockPatchObject(
            tgt_ipc, 'request', wraps=tgt_ipc.request)).mock

    def tgtadm_calls(self):
        return self.tgtd_requests.call_args_list

    def test_bad_names(self):
        node = self.node()
        for args in (('not-a-uuid',), (node + ':x',),
                     (node, 'iqn.2026-11.org.example:Upper'),
                     (node, 'not an iqn')):
            self.assertRaises(exception.InvalidName, self.mgr.export_node,
                              *args)
        self.assertEqual([], self.tgtadm_calls())
        self.assertEqual({}, {k: v for k, v in
                              self.lib.get_node_disk(node).metadata.items()
                              if k.startswith('bmi.export.')})

    def test_missing_clone(self):
        self.assertRaises(exception.CloneNotFound, self.mgr.export_node,
                          str(uuid.uuid4()))
        self.assertEqual([], self.tgtadm_calls())


class FailureTest(ExportTestCase):

    def test_cephx_user_refused(self):
        node = self.node()
        self.config(tgt_ceph_user=self.unique('nobody'), group='iscsi')
        e = self.assertRaises(exception.ExportError, self.mgr.export_node,
                              node)
        self.assertIn('refused cephx user', str(e))
        iqn = self.mgr.target_iqn(node)
        self.assertIsNone(self.mgr.backend.get_target(iqn))
        self.assertFalse([k for k in self.lib.get_node_disk(node).metadata
                          if k.startswith('bmi.export.')])

    def test_tgtd_not_running(self):
        node = self.node()
        port = TgtdProcess()._free_control_port()
        self.config(tgtadm_control_port=port, group='iscsi')
        mgr = export.ExportManager(library=self.lib)
        self.assertRaises(exception.TargetDaemonUnavailable, mgr.check)
        self.assertRaises(exception.TargetDaemonUnavailable,
                          mgr.export_node, node)
        self.assertFalse([k for k in self.lib.get_node_disk(node).metadata
                          if k.startswith('bmi.export.')])


class RestartTest(ExportTestCase):
    """tgtd restarted: reconcile brings the targets back."""

    def test_reconcile_after_restart(self):
        tgtd = self.useFixture(TgtdProcess())
        self.use_tgtd(tgtd.portal, tgtd.control_port)
        self.mgr = export.ExportManager(library=self.lib)
        image, path = self.golden()
        a = self.mgr.export_node(self.node(), initiator_iqn=INITIATOR)
        b = self.mgr.export_node(self.node())

        tgtd.stop()
        tgtd.start()
        self.assertEqual([], self.mgr.backend.list_targets())
        self.assertIsNone(self.mgr.get_export(a.node_uuid))
        orphan = self.mgr.target_iqn(str(uuid.uuid4()))
        foreign = 'iqn.2026-11.org.example.other:%s' % uuid.uuid4().hex
        tgtd.tgtadm('--mode', 'target', '--op', 'new', '--tid', '7',
                    '--targetname', orphan)
        tgtd.tgtadm('--mode', 'target', '--op', 'new', '--tid', '8',
                    '--targetname', foreign)

        report = self.mgr.reconcile()
        self.assertEqual(sorted([a.target_iqn, b.target_iqn]),
                         sorted(report.created))
        self.assertEqual([orphan], report.removed)
        self.assertEqual([foreign], report.foreign)
        self.assertEqual({}, report.failed)
        served = {t.iqn for t in self.mgr.backend.list_targets()}
        self.assertEqual({a.target_iqn, b.target_iqn, foreign}, served)
        self.assertEqual(a, self.mgr.get_export(a.node_uuid))

        for exp in (a, b):
            copy = iscsi.read_lun(exp.portal, exp.target_iqn, 1,
                                  dest=self.tmp, **self.creds(exp))
            self.assertEqual(sha256(path), sha256(copy))
        self.assertTrue(iscsi.login_refused(a.portal, a.target_iqn,
                                            **self.creds(b, INITIATOR)))

        again = self.mgr.reconcile()
        self.assertEqual(sorted([a.target_iqn, b.target_iqn]),
                         sorted(again.unchanged))
        self.assertEqual([], again.created + again.removed)
