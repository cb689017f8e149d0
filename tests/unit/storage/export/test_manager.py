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

"""ExportManager with a fake library and the tgt backend on a fake tgtd."""

import threading
from unittest import mock

import fixtures

from bmi_driver import exception
from bmi_driver.storage.export import base
from bmi_driver.storage.export import manager as export
from bmi_driver.storage.export import tgt
from bmi_driver.storage import layout
from tests import base as test_base
from tests.unit.storage.export import fakes

NODE = '6b1a3f8e-4c1d-4c57-9e0a-0d1c2b3a4f5e'
NODE2 = '0a6c1c8e-7d7b-4d0f-8d0e-3c1f7e9b2a10'
PREFIX = 'iqn.2026-11.org.massopen.bmi'
INITIATOR = 'iqn.2010-04.org.ipxe:node1'


class _Base(test_base.TestCase):

    def setUp(self):
        super().setUp()
        self.tgtd = fakes.FakeTgtd()
        self.config(tgtd_socket=self.tgtd.serve(self), group='iscsi')
        # The discovery account has its own tests (DiscoveryAuthTestCase,
        # test_tgt): here tgtd's accounts are the nodes' only.
        self.config(discovery_auth=False, group='iscsi')
        self.log = self.useFixture(fixtures.FakeLogger(level='DEBUG'))
        self.lib = fakes.FakeLibrary()
        self.lib.add_disk(NODE)
        self.mgr = export.ExportManager(library=self.lib)

    def secrets(self):
        return [d.metadata.get(layout.META_CHAP_SECRET)
                for d in self.lib.disks.values()
                if d.metadata.get(layout.META_CHAP_SECRET)]

    def assertNoSecret(self, *texts):
        for secret in self.secrets():
            for text in texts + (self.log.output,):
                self.assertNotIn(secret, str(text))


class ManagerTestCase(_Base):

    def test_backend_from_config(self):
        self.assertIsInstance(self.mgr.backend, tgt.TgtExportBackend)

    def test_export(self):
        exp = self.mgr.export_node(NODE)
        self.assertEqual('%s:%s' % (PREFIX, NODE), exp.target_iqn)
        self.assertEqual('127.0.0.1:3260', exp.portal)
        self.assertEqual({1: 'bmi-images/node-%s' % NODE}, exp.luns)
        self.assertEqual('bmi-' + NODE, exp.chap_username)
        self.assertEqual(16, len(exp.chap_secret))
        self.assertTrue(exp.chap_secret.isalnum())
        self.assertIsNone(exp.initiator_iqn)
        self.assertNotIn(exp.chap_secret, repr(exp))
        self.assertEqual({layout.META_IQN: exp.target_iqn,
                          layout.META_INITIATOR: '',
                          layout.META_INITIATOR_ADDRESS: '',
                          layout.META_PORTAL: '',
                          layout.META_CHAP_USER: exp.chap_username,
                          layout.META_CHAP_SECRET: exp.chap_secret},
                         self.lib.disks[NODE].metadata)
        served = self.tgtd.by_iqn(exp.target_iqn)
        self.assertEqual(['ALL'], served.acl)
        self.assertEqual(exp.chap_secret,
                         self.tgtd.accounts[exp.chap_username])
        self.assertNoSecret()

    def test_export_twice_same_target_and_credentials(self):
        first = self.mgr.export_node(NODE)
        calls = self.tgtd.changes
        second = self.mgr.export_node(NODE)
        self.assertEqual(first, second)
        self.assertEqual(calls, self.tgtd.changes)
        self.assertEqual(1, self.lib.calls.count(('set_node_metadata',
                                                  NODE)))

    def test_fresh_credentials_at_every_deploy(self):
        # Issue 11: a deploy retried on a clone that records credentials
        # (or a rebuild) does not reuse them; tgtd serves the new secret.
        first = self.mgr.export_node(NODE)
        again = self.mgr.export_node(NODE, fresh_credentials=True)
        self.assertEqual(first.chap_username, again.chap_username)
        self.assertNotEqual(first.chap_secret, again.chap_secret)
        self.assertEqual(again.chap_secret,
                         self.tgtd.accounts[again.chap_username])
        self.assertEqual([again.chap_secret], self.secrets())
        served = self.tgtd.by_iqn(again.target_iqn)
        self.assertEqual([again.chap_username], served.accounts)
        self.assertEqual(again.luns, served.luns)
        self.assertNoSecret()

    def test_fresh_credentials_replace_a_leftover_target(self):
        # An undeploy whose unexport tgtd did not answer removed the clone
        # (and its record) but not the target; the next deployment's clone
        # has the same name.  Converging that target would keep the old
        # secret and the LUN tgtd opened on the removed image.
        old = self.mgr.export_node(NODE, fresh_credentials=True)
        self.lib.add_disk(NODE)          # the new deployment's clone
        del self.tgtd.calls[:]
        with mock.patch.object(tgt.LOG, 'warning') as warning:
            new = self.mgr.export_node(NODE, fresh_credentials=True)
        self.assertNotEqual(old.chap_secret, new.chap_secret)
        self.assertEqual(new.chap_secret,
                         self.tgtd.accounts[new.chap_username])
        ops = [(c[6], c[8]) for c in self.tgtd.calls]
        self.assertIn(('target', 'delete'), ops)
        self.assertIn(('logicalunit', 'new'), ops)
        self.assertEqual([new.chap_username],
                         self.tgtd.by_iqn(new.target_iqn).accounts)
        self.assertIn('left by an earlier deployment',
                      warning.call_args[0][0])
        self.assertNoSecret()

    def test_leftover_target_kept_without_fresh_credentials(self):
        # Reconcile and power on (no new deployment) converge it.
        self.mgr.export_node(NODE)
        self.lib.disks[NODE].metadata.clear()
        del self.tgtd.calls[:]
        self.mgr.export_node(NODE)
        ops = [(c[6], c[8]) for c in self.tgtd.calls]
        self.assertNotIn(('target', 'delete'), ops)

    def test_credentials_differ_per_node(self):
        self.lib.add_disk(NODE2)
        a = self.mgr.export_node(NODE)
        b = self.mgr.export_node(NODE2)
        self.assertNotEqual(a.chap_username, b.chap_username)
        self.assertNotEqual(a.chap_secret, b.chap_secret)
        self.assertNotEqual(a.target_iqn, b.target_iqn)

    def test_initiator_bound_and_kept(self):
        exp = self.mgr.export_node(NODE, initiator_iqn=INITIATOR)
        self.assertEqual(INITIATOR, exp.initiator_iqn)
        self.assertEqual([INITIATOR], self.tgtd.by_iqn(exp.target_iqn).acl)
        # a later call without it keeps the binding
        again = self.mgr.export_node(NODE)
        self.assertEqual(exp, again)
        # a new one replaces it, with the same credentials
        other = 'iqn.2010-04.org.ipxe:node1b'
        moved = self.mgr.export_node(NODE, initiator_iqn=other)
        self.assertEqual(exp.chap_secret, moved.chap_secret)
        self.assertEqual([other], self.tgtd.by_iqn(exp.target_iqn).acl)

    def test_configdrive_is_lun_2(self):
        self.lib.add_disk(NODE, configdrive=True)
        exp = self.mgr.export_node(NODE)
        self.assertEqual({1: 'bmi-images/node-%s' % NODE,
                          2: 'bmi-images/node-%s-config' % NODE}, exp.luns)
        self.assertEqual(exp.luns, self.tgtd.by_iqn(exp.target_iqn).luns)

    def test_chap_off(self):
        self.config(chap=False, group='iscsi')
        exp = self.mgr.export_node(NODE)
        self.assertIsNone(exp.chap_username)
        self.assertIsNone(exp.chap_secret)
        self.assertEqual({}, self.tgtd.accounts)

    def test_portal(self):
        self.config(portal_address='10.0.2.2', portal_port=3261,
                    group='iscsi')
        self.assertEqual('10.0.2.2:3261', self.mgr.export_node(NODE).portal)
        self.config(portal_address='fd00::1', group='iscsi')
        self.assertEqual('[fd00::1]:3261', self.mgr.portal())

    def _assert_untouched(self):
        self.assertEqual([], self.tgtd.calls)
        self.assertFalse([c for c in self.lib.calls
                          if c[0] != 'get_node_disk'])

    def test_bad_names_rejected_first(self):
        for node, initiator in (('not-a-uuid', None),
                                (NODE + ':x', None),
                                (NODE, 'iqn.2010-04.org.ipxe:Node1'),
                                (NODE, 'iqn.bad'),
                                (NODE, 'iqn.2010-04.org.ipxe:a b'),
                                (NODE, ''),
                                (NODE, 'iqn.2010-04.org.ipxe:' + 'a' * 220)):
            self.assertRaises(exception.InvalidName, self.mgr.export_node,
                              node, initiator_iqn=initiator)
        self.assertRaises(exception.InvalidName, self.mgr.unexport_node,
                          'x')
        self.config(iqn_prefix='not an iqn', group='iscsi')
        self.assertRaises(exception.InvalidName, self.mgr.export_node, NODE)
        self.assertEqual([], self.tgtd.calls)
        self.assertEqual([], self.lib.calls)

    def test_good_initiator_names(self):
        for name in ('iqn.1993-08.org.debian:01:abc',
                     'eui.02004567A425678D',
                     'naa.52004567BA64678D'):
            self.assertEqual(name, export.check_iscsi_name('x', name))

    def test_uppercase_node_uuid_normalised(self):
        exp = self.mgr.export_node(NODE.upper())
        self.assertEqual(NODE, exp.node_uuid)

    def test_missing_clone_rejected_first(self):
        self.assertRaises(exception.CloneNotFound, self.mgr.export_node,
                          NODE2)
        self._assert_untouched()

    def test_initiator_required(self):
        self.config(initiator_binding='required', group='iscsi')
        self.assertRaises(exception.InvalidInput, self.mgr.export_node, NODE)
        self._assert_untouched()
        exp = self.mgr.export_node(NODE, initiator_iqn=INITIATOR)
        self.assertEqual(INITIATOR, exp.initiator_iqn)

    def test_backend_failure_forgets_new_record(self):
        self.tgtd.fail_lun_new = 'unknown error'
        with mock.patch.object(tgt.TgtExportBackend, '_diagnose_rbd',
                               return_value='see the tgtd log'):
            e = self.assertRaises(exception.ExportError,
                                  self.mgr.export_node, NODE)
        self.assertEqual({}, self.lib.disks[NODE].metadata)
        self.assertEqual({}, self.tgtd.targets)
        self.assertEqual({}, self.tgtd.accounts)
        self.assertNotIn('bmi.export', str(e))

    def test_backend_failure_restores_old_record(self):
        self.mgr.export_node(NODE)
        before = dict(self.lib.disks[NODE].metadata)
        self.tgtd.down = True
        self.assertRaises(exception.TargetDaemonUnavailable,
                          self.mgr.export_node, NODE, initiator_iqn=INITIATOR)
        self.assertEqual(before, self.lib.disks[NODE].metadata)
        self.assertNoSecret()

    def test_unexport(self):
        exp = self.mgr.export_node(NODE)
        self.mgr.unexport_node(NODE)
        self.assertEqual({}, self.tgtd.targets)
        self.assertEqual({}, self.tgtd.accounts)
        self.assertEqual({}, self.lib.disks[NODE].metadata)
        self.assertIsNone(self.mgr.get_export(NODE))
        self.mgr.unexport_node(NODE)  # twice is fine
        self.assertIsNone(self.tgtd.by_iqn(exp.target_iqn))

    def test_unexport_without_clone(self):
        exp = self.mgr.export_node(NODE)
        del self.lib.disks[NODE]
        self.mgr.unexport_node(NODE)
        self.assertIsNone(self.tgtd.by_iqn(exp.target_iqn))
        self.assertEqual({}, self.tgtd.accounts)

    def test_unexport_daemon_down_keeps_record(self):
        self.mgr.export_node(NODE)
        self.tgtd.down = True
        self.assertRaises(exception.TargetDaemonUnavailable,
                          self.mgr.unexport_node, NODE)
        self.assertIn(layout.META_IQN, self.lib.disks[NODE].metadata)

    def test_get_export(self):
        self.assertIsNone(self.mgr.get_export(NODE))
        self.assertIsNone(self.mgr.get_export(NODE2))
        exp = self.mgr.export_node(NODE)
        self.assertEqual(exp, self.mgr.get_export(NODE))
        self.tgtd.targets.clear()  # tgtd restarted
        self.assertIsNone(self.mgr.get_export(NODE))

    def test_check(self):
        self.mgr.check()
        self.tgtd.down = True
        # Noticed once tgtd's last answer is no longer recent.
        self.mgr.backend._answered_at -= tgt.ANSWERED_RECENTLY
        self.assertRaises(exception.TargetDaemonUnavailable, self.mgr.check)

    def test_list_exports(self):
        self.lib.add_disk(NODE2)
        a = self.mgr.export_node(NODE)
        self.mgr.export_node(NODE2)
        self.tgtd.targets.pop(self.tgtd.by_iqn(a.target_iqn).tid)
        self.tgtd.targets[40] = fakes._Target(40, PREFIX + ':orphan')
        self.tgtd.targets[41] = fakes._Target(41, 'iqn.2026-11.org.o:x')
        rows = self.mgr.list_exports()
        self.assertEqual([(NODE2, 'served'), (NODE, None),
                          (None, PREFIX + ':orphan')],
                         [(e.node_uuid if e else None,
                           (t.iqn if e is None else 'served') if t else None)
                          for e, t in rows])


class ReconcileTestCase(_Base):

    def setUp(self):
        super().setUp()
        self.lib.add_disk(NODE2, configdrive=True)
        self.a = self.mgr.export_node(NODE, initiator_iqn=INITIATOR)
        self.b = self.mgr.export_node(NODE2)

    def test_after_restart(self):
        secrets = dict(self.tgtd.accounts)
        self.tgtd.targets.clear()
        self.tgtd.accounts.clear()
        report = self.mgr.reconcile()
        self.assertEqual(sorted([self.a.target_iqn, self.b.target_iqn]),
                         sorted(report.created))
        self.assertEqual(secrets, self.tgtd.accounts)
        self.assertEqual([INITIATOR], self.tgtd.by_iqn(self.a.target_iqn).acl)
        self.assertEqual(self.b.luns,
                         self.tgtd.by_iqn(self.b.target_iqn).luns)
        self.assertEqual((self.a, self.b),
                         (self.mgr.get_export(NODE),
                          self.mgr.get_export(NODE2)))
        again = self.mgr.reconcile()
        self.assertEqual([], again.created + again.updated + again.removed)
        self.assertEqual(2, len(again.unchanged))
        self.assertNoSecret(report)

    def test_orphans_removed_others_kept(self):
        orphan_node = '11111111-2222-3333-4444-555555555555'
        self.tgtd.targets[50] = fakes._Target(
            50, '%s:%s' % (PREFIX, orphan_node), accounts=['bmi-' +
                                                           orphan_node])
        self.tgtd.accounts['bmi-' + orphan_node] = 'x' * 16
        self.tgtd.targets[51] = fakes._Target(51, PREFIX + ':not-a-node')
        self.tgtd.targets[52] = fakes._Target(52, 'iqn.2026-11.org.other:y',
                                              acl=['ALL'])
        self.tgtd.targets[53] = fakes._Target(53, PREFIX + 'x:similar')
        report = self.mgr.reconcile()
        self.assertEqual(['%s:%s' % (PREFIX, orphan_node),
                          PREFIX + ':not-a-node'], report.removed)
        self.assertEqual(['iqn.2026-11.org.other:y', PREFIX + 'x:similar'],
                         report.foreign)
        self.assertEqual([52, 53], sorted(t for t in self.tgtd.targets
                                          if t >= 50))
        self.assertNotIn('bmi-' + orphan_node, self.tgtd.accounts)

    def test_repairs_drift(self):
        target = self.tgtd.by_iqn(self.a.target_iqn)
        target.acl[:] = ['ALL']
        report = self.mgr.reconcile()
        self.assertEqual([self.a.target_iqn], report.updated)
        self.assertEqual([INITIATOR], target.acl)

    def test_unexported_node_is_not_recreated(self):
        self.mgr.unexport_node(NODE)
        report = self.mgr.reconcile()
        self.assertNotIn(self.a.target_iqn, report.created)
        self.assertIsNone(self.tgtd.by_iqn(self.a.target_iqn))

    def test_one_failure_does_not_stop_the_rest(self):
        self.tgtd.targets.clear()
        real = self.mgr.backend.ensure_target

        def ensure(spec):
            if spec.iqn == self.a.target_iqn:
                raise exception.ExportError(reason='boom')
            return real(spec)

        with mock.patch.object(self.mgr.backend, 'ensure_target',
                               side_effect=ensure):
            report = self.mgr.reconcile()
        self.assertEqual({self.a.target_iqn: 'iSCSI export failed: boom'},
                         report.failed)
        self.assertEqual([self.b.target_iqn], report.created)

    def test_daemon_down(self):
        self.tgtd.down = True
        self.assertRaises(exception.TargetDaemonUnavailable,
                          self.mgr.reconcile)

    def test_a_written_listing_costs_only_the_copied_target(self):
        # Another target's session copies node b's target line into the
        # listing (its alias): b's target cannot be read, so it is neither
        # repaired nor removed; a's drift is still repaired.
        self.tgtd.targets[50] = fakes._Target(
            50, 'iqn.2026-11.org.other:w', sessions=1,
            alias='x\nTarget %d: %s\n' % (
                self.tgtd.by_iqn(self.b.target_iqn).tid, self.b.target_iqn))
        own = self.tgtd.by_iqn(self.a.target_iqn)
        own.acl[:] = ['ALL']
        before = dict(self.tgtd.targets)
        report = self.mgr.reconcile()
        self.assertEqual([self.b.target_iqn], list(report.failed))
        self.assertIn('left as it is', report.failed[self.b.target_iqn])
        self.assertEqual([self.a.target_iqn], report.updated)
        self.assertEqual([INITIATOR], own.acl)
        self.assertEqual(before, self.tgtd.targets)


class ConductorReconcileTestCase(ReconcileTestCase):
    """reconcile(nodes=...): one conductor's nodes on its own gateway."""

    def test_only_the_given_nodes_are_served(self):
        self.tgtd.targets.clear()
        self.tgtd.accounts.clear()
        report = self.mgr.reconcile(nodes={NODE: None})
        self.assertEqual([self.a.target_iqn], report.created)
        self.assertEqual({NODE: 'created'}, report.nodes)
        self.assertIsNone(self.tgtd.by_iqn(self.b.target_iqn))

    def test_targets_of_other_nodes_removed_when_stray(self):
        asked = []

        def is_stray(node_uuid):
            asked.append(node_uuid)
            return True

        report = self.mgr.reconcile(nodes={NODE: None}, is_stray=is_stray)
        self.assertEqual([NODE2], asked)
        self.assertEqual([self.b.target_iqn], report.removed)
        self.assertIsNone(self.tgtd.by_iqn(self.b.target_iqn))
        self.assertNotIn(self.b.chap_username, self.tgtd.accounts)
        # The record stays: another gateway may serve the node now.
        self.assertEqual(self.b.target_iqn,
                         self.lib.disks[NODE2].metadata[layout.META_IQN])
        self.assertIsNotNone(self.tgtd.by_iqn(self.a.target_iqn))

    def test_a_node_held_elsewhere_is_kept(self):
        report = self.mgr.reconcile(nodes={NODE: None},
                                    is_stray=lambda node_uuid: False)
        self.assertEqual([], report.removed)
        self.assertIsNotNone(self.tgtd.by_iqn(self.b.target_iqn))

    def test_repair_called_off_under_the_lock(self):
        self.tgtd.targets.clear()
        report = self.mgr.reconcile(nodes={NODE: None},
                                    is_wanted=lambda node_uuid: False)
        self.assertEqual({NODE: export.SKIPPED}, report.nodes)
        self.assertEqual([], report.created)
        self.assertIsNone(self.tgtd.by_iqn(self.a.target_iqn))

    def test_clone_of_another_deployment_is_not_exported(self):
        self.lib.disks[NODE].metadata[layout.META_DEPLOYMENT] = 'old'
        self.tgtd.targets.clear()
        report = self.mgr.reconcile(nodes={NODE: 'new'})
        self.assertEqual({NODE: 'failed'}, report.nodes)
        self.assertIn('deployment old', report.failed[self.a.target_iqn])
        self.assertIsNone(self.tgtd.by_iqn(self.a.target_iqn))
        report = self.mgr.reconcile(nodes={NODE: 'old'})
        self.assertEqual({NODE: 'created'}, report.nodes)

    def test_lost_disk_is_reported(self):
        del self.lib.disks[NODE]
        report = self.mgr.reconcile(nodes={NODE: None})
        self.assertEqual([NODE], report.lost)
        self.assertEqual({NODE: 'lost'}, report.nodes)


class VerifyExportTestCase(_Base):

    def setUp(self):
        super().setUp()
        self.lib.add_disk(NODE2, configdrive=True)
        self.exp = self.mgr.export_node(NODE2)

    def test_served(self):
        self.assertEqual(self.exp, self.mgr.verify_export(NODE2))

    def test_no_target(self):
        self.tgtd.targets.clear()
        e = self.assertRaises(exception.ExportNotServed,
                              self.mgr.verify_export, NODE2)
        self.assertIn('no target %s' % self.exp.target_iqn, str(e))

    def test_missing_lun(self):
        del self.tgtd.by_iqn(self.exp.target_iqn).luns[2]
        e = self.assertRaises(exception.ExportNotServed,
                              self.mgr.verify_export, NODE2)
        self.assertIn('lacks LUN(s) 2', str(e))

    def test_missing_account(self):
        self.tgtd.by_iqn(self.exp.target_iqn).accounts[:] = []
        e = self.assertRaises(exception.ExportNotServed,
                              self.mgr.verify_export, NODE2)
        self.assertIn('no CHAP account', str(e))
        self.assertNotIn(self.exp.chap_secret, str(e))

    def test_not_exported(self):
        self.assertRaises(exception.ExportNotServed,
                          self.mgr.verify_export, NODE)

    def test_unreadable_target_checked_by_tgtds_own_list(self):
        # A session wrote a copy of the target's line: it is served (tgtd's
        # own list), its LUNs cannot be read; a missing target still fails.
        target = self.tgtd.by_iqn(self.exp.target_iqn)
        target.sessions = 1
        target.alias = 'x\nTarget %d: %s\n' % (target.tid,
                                               self.exp.target_iqn)
        self.assertEqual(self.exp, self.mgr.verify_export(NODE2))
        self.assertIn('cannot be checked', self.log.output)
        self.tgtd.targets.clear()
        self.assertRaises(exception.ExportNotServed,
                          self.mgr.verify_export, NODE2)


class RemoveNodeTestCase(_Base):

    def test_removes_target_account_and_disk(self):
        exp = self.mgr.export_node(NODE)
        self.assertTrue(self.mgr.remove_node(NODE, still_gone=lambda: True))
        self.assertIsNone(self.tgtd.by_iqn(exp.target_iqn))
        self.assertNotIn(exp.chap_username, self.tgtd.accounts)
        self.assertNotIn(NODE, self.lib.disks)
        # A watch still on the disk (a dead gateway's) is blocklisted.
        self.assertTrue(self.lib.stale_watch)

    def test_called_off(self):
        exp = self.mgr.export_node(NODE)
        self.assertFalse(self.mgr.remove_node(NODE,
                                              still_gone=lambda: False))
        self.assertIsNotNone(self.tgtd.by_iqn(exp.target_iqn))
        self.assertIn(NODE, self.lib.disks)


class LoadBackendTestCase(test_base.TestCase):

    def test_default(self):
        self.assertIsInstance(export.load_backend(), tgt.TgtExportBackend)
        self.assertIsInstance(export.load_backend(), base.ExportBackend)

    def test_unknown(self):
        self.config(export_backend='lio', group='iscsi')
        e = self.assertRaises(exception.ExportBackendNotFound,
                              export.ExportManager, library=object())
        self.assertIn('lio', str(e))

    def test_load_failure(self):
        with mock.patch.object(tgt.TgtExportBackend, '__init__',
                               side_effect=RuntimeError('bad config')):
            e = self.assertRaises(exception.ExportBackendNotFound,
                                  export.load_backend, 'tgt')
        self.assertIn('bad config', str(e))

    def test_load_failure_bmi_error_kept(self):
        err = exception.InvalidInput(reason='x')
        with mock.patch.object(tgt.TgtExportBackend, '__init__',
                               side_effect=err):
            self.assertIs(err, self.assertRaises(exception.InvalidInput,
                                                 export.load_backend, 'tgt'))


class ProcessManagerTestCase(test_base.TestCase):
    """One manager per process: the backend is loaded once."""

    def setUp(self):
        super().setUp()
        export.reset_manager()
        self.addCleanup(export.reset_manager)

    def test_one_manager_one_backend_load(self):
        with mock.patch.object(export, 'load_backend',
                               autospec=True) as load:
            first = export.get_manager()
            self.assertIs(first, export.get_manager())
        load.assert_called_once_with()
        self.assertIs(load.return_value, first.backend)

    def test_made_once_under_concurrent_first_use(self):
        made = []
        gate = threading.Event()

        def slow_load():
            gate.wait(5)
            made.append(1)
            return mock.sentinel.backend

        with mock.patch.object(export, 'load_backend', side_effect=slow_load):
            got = []
            threads = [threading.Thread(
                target=lambda: got.append(export.get_manager()))
                for _ in range(4)]
            for t in threads:
                t.start()
            gate.set()
            for t in threads:
                t.join(10)
        self.assertEqual([1], made)
        self.assertEqual(4, len(got))
        self.assertEqual(1, len({id(m) for m in got}))

    def test_reset_and_failed_load_retried(self):
        with mock.patch.object(export, 'load_backend', autospec=True,
                               side_effect=[exception.ExportBackendNotFound(
                                   name='x', reason='y'), mock.DEFAULT]):
            self.assertRaises(exception.ExportBackendNotFound,
                              export.get_manager)
            first = export.get_manager()
        export.reset_manager()
        with mock.patch.object(export, 'load_backend', autospec=True):
            self.assertIsNot(first, export.get_manager())


class BootNetworkExportTestCase(_Base):
    """Per-project boot networks: portal and address ACL, recorded."""

    def test_recorded_and_restored(self):
        exp = self.mgr.export_node(NODE, initiator_iqn=INITIATOR,
                                   portal='10.78.1.1:3260',
                                   initiator_address='10.78.1.0/24')
        self.assertEqual('10.78.1.1:3260', exp.portal)
        meta = self.lib.disks[NODE].metadata
        self.assertEqual('10.78.1.0/24',
                         meta[layout.META_INITIATOR_ADDRESS])
        self.assertEqual('10.78.1.1:3260', meta[layout.META_PORTAL])
        self.assertEqual(['10.78.1.0/24'],
                         self.tgtd.by_iqn(exp.target_iqn).acl)
        # After a tgtd restart: the same ACL, the same portal told.
        self.tgtd.targets.clear()
        self.tgtd.accounts.clear()
        self.mgr.reconcile()
        self.assertEqual(['10.78.1.0/24'],
                         self.tgtd.by_iqn(exp.target_iqn).acl)
        self.assertEqual(exp, self.mgr.get_export(NODE))
        [(listed, served)] = self.mgr.list_exports()
        self.assertEqual('10.78.1.1:3260', listed.portal)

    def test_shared_mode_network(self):
        self.config(initiator_network='10.77.0.0/24', group='iscsi')
        exp = self.mgr.export_node(NODE)
        self.assertEqual(['10.77.0.0/24'],
                         self.tgtd.by_iqn(exp.target_iqn).acl)

    def test_address_checked_as_tgt_matches_it(self):
        exp = self.mgr.export_node(NODE, initiator_address='10.78.1.5/32')
        self.assertEqual(['10.78.1.5'],
                         self.tgtd.by_iqn(exp.target_iqn).acl)
        self.lib.add_disk(NODE2)
        self.assertRaises(exception.InvalidName, self.mgr.export_node,
                          NODE2, initiator_address='10.78.1.1/24')
        self.assertNotIn(layout.META_IQN, self.lib.disks[NODE2].metadata)
