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

"""The tgt backend against a fake tgtd (processutils.execute)."""

import io
import socket
import sys
from unittest import mock

import fixtures

from bmi_driver import exception
from bmi_driver.storage.export import base
from bmi_driver.storage.export import tgt
from bmi_driver.storage.export import tgt_ipc
from bmi_driver.storage.export import tgt_show
from tests import base as test_base
from tests.unit.storage.export import fakes

PREFIX = 'iqn.2026-11.org.massopen.bmi:'
IQN = PREFIX + '6b1a3f8e-4c1d-4c57-9e0a-0d1c2b3a4f5e'
INITIATOR = 'iqn.2010-04.org.ipxe:node1'
SECRET = 'S3cretS3cretS3cr'


def wanted(**kw):
    values = dict(iqn=IQN, luns={1: 'bmi-images/node-a'},
                  initiator_iqn=None, chap_username='bmi-a',
                  chap_secret=SECRET)
    values.update(kw)
    return base.ExportTarget(**values)


class ParseTestCase(test_base.TestCase):

    def test_recorded_output(self):
        targets = tgt.parse_targets(fakes.RECORDED_SHOW)
        self.assertEqual(2, len(targets))
        first, second = targets
        self.assertEqual(1, first.tid)
        self.assertEqual('iqn.2026-11.org.massopen.bmi:abc', first.iqn)
        self.assertEqual({1: 'bmi-images/node-abc'}, first.luns)
        self.assertEqual(('u1',), first.accounts)  # not the outgoing one
        self.assertEqual(('127.0.0.1', 'iqn.1993-08.org.debian:01:abc'),
                         first.acl)
        self.assertEqual(1, first.sessions)
        self.assertEqual(base.ServedTarget(tid=2, iqn='iqn.2026-11.org.'
                                           'other:x', acl=('ALL',)), second)

    def test_empty_and_unknown_lines(self):
        self.assertEqual([], tgt.parse_targets(''))
        text = ('Some banner\n    ignored: yes\nTarget 7: iqn.x:y\n'
                '    New section:\n        whatever\n'
                '    ACL information:\n        ALL\n')
        self.assertEqual([base.ServedTarget(tid=7, iqn='iqn.x:y',
                                            acl=('ALL',))],
                         tgt.parse_targets(text))

    def test_lld_listing(self):
        # As the lab's tgtd (1.0.85, Debian) printed it.
        text = ('LLDs:\n    iscsi: ready\n        Target 9: iqn.x:b\n'
                '        Target 7: iqn.x:a\n    iser: error\n')
        self.assertEqual([(7, 'iqn.x:a'), (9, 'iqn.x:b')],
                         tgt_show.parse_lld_targets(text))
        self.assertEqual([], tgt_show.parse_lld_targets(
            'LLDs:\n    iscsi: ready\n    iser: error\n'))

    def test_checked_against_tgtds_list(self):
        # The first target's session wrote a copy of its own line, a
        # target of no tid, and the second target's line.
        written = fakes.RECORDED_SHOW.replace(
            'alias: none\n',
            'alias: x\nTarget 1: iqn.2026-11.org.massopen.bmi:abc\n'
            'Target 5: iqn.x:junk\nTarget 2: iqn.2026-11.org.other:x\n'
            '    ACL information:\n        10.0.0.9\n', 1)
        self.assertRaises(tgt_show.AmbiguousListing, tgt.parse_targets,
                          written)
        known = [(1, 'iqn.2026-11.org.massopen.bmi:abc'),
                 (2, 'iqn.2026-11.org.other:x'), (3, 'iqn.x:new')]
        targets, uncertain = tgt_show.parse_checked(written, known)
        self.assertEqual([1, 2, 3], [t.tid for t in targets])
        self.assertEqual([t.iqn for t in targets], [k[1] for k in known])
        self.assertTrue(all(t.uncertain for t in targets))
        self.assertEqual([k[1] for k in known], uncertain)
        self.assertEqual(({}, (), (), 0), (targets[1].luns,
                                           targets[1].accounts,
                                           targets[1].acl,
                                           targets[1].sessions))
        # Unwritten, each target is read as parse_targets reads it.
        self.assertEqual(
            (tgt.parse_targets(fakes.RECORDED_SHOW), []),
            tgt_show.parse_checked(fakes.RECORDED_SHOW, known[:2]))


class _BackendBase(test_base.TestCase):

    def setUp(self):
        super().setUp()
        self.tgtd = fakes.FakeTgtd(control_port=3)
        self.config(tgtd_socket=self.tgtd.serve(self), group='iscsi')
        self.config(conf_file='/etc/ceph/test.conf', group='ceph')
        self.config(tgtadm_control_port=3, group='iscsi')
        # Discovery authentication: DiscoveryAuthTestCase.
        self.config(discovery_auth=False, group='iscsi')
        self.log = self.useFixture(fixtures.FakeLogger(level='DEBUG'))
        self.backend = tgt.TgtExportBackend()

    def assertNoSecret(self, *texts):
        for text in texts + (self.log.output,):
            self.assertNotIn(SECRET, str(text))


class TgtBackendTestCase(_BackendBase):

    def test_tids_are_allocated_under_this_tgtds_own_lock(self):
        # Two conductors with a gateway each share one etcd: a lock per
        # tgtd (host and control port), not one for all, and this
        # process's only (tgtd refuses a taken tid: retried).
        taken = []
        real = tgt.locks.local_lock

        def lock(name, *args, **kwargs):
            taken.append(name)
            return real(name, *args, **kwargs)
        self.useFixture(fixtures.MockPatchObject(tgt.locks, 'local_lock',
                                                 lock))
        backend_locks = []
        self.useFixture(fixtures.MockPatchObject(
            tgt.locks, '_backend_lock', side_effect=lambda name, *a:
            backend_locks.append(name)))
        self.backend.ensure_target(wanted())
        self.assertEqual(['tgt-tid-%s-3' % socket.gethostname()], taken)
        self.assertEqual([], backend_locks)
        self.config(tgtadm_control_port=4, group='iscsi')
        self.assertEqual('tgt-tid-%s-4' % socket.gethostname(),
                         tgt.TgtExportBackend().tid_lock)

    def test_create(self):
        target, status = self.backend.ensure_target(wanted())
        self.assertEqual(base.CREATED, status)
        self.assertEqual(1, target.tid)
        served = self.tgtd.by_iqn(IQN)
        self.assertEqual({1: 'bmi-images/node-a'}, served.luns)
        self.assertEqual(['bmi-a'], served.accounts)
        self.assertEqual(SECRET, self.tgtd.accounts['bmi-a'])
        self.assertEqual(['ALL'], served.acl)
        lun_new = next(c for c in self.tgtd.calls if 'logicalunit' in c)
        self.assertEqual(['tgtadm', '-C', '3', '--lld', 'iscsi'],
                         lun_new[:5])
        self.assertIn('--bsopts', lun_new)
        self.assertEqual('conf=/etc/ceph/test.conf;id=tgt',
                         lun_new[lun_new.index('--bsopts') + 1])
        self.assertEqual('rbd', lun_new[lun_new.index('--bstype') + 1])
        self.assertEqual(['thin_provisioning=1'],
                         self.tgtd.lun_params[(1, 1)])
        self.assertNoSecret()

    def test_idempotent(self):
        self.backend.ensure_target(wanted())
        before = self.tgtd.changes
        target, status = self.backend.ensure_target(wanted())
        self.assertEqual(base.UNCHANGED, status)
        self.assertEqual(before, self.tgtd.changes)
        self.assertEqual(1, len(self.tgtd.targets))

    def test_next_tid_after_the_highest(self):
        self.tgtd.targets[5] = fakes._Target(5, 'iqn.2026-11.org.other:x')
        target, _ = self.backend.ensure_target(wanted())
        self.assertEqual(6, target.tid)

    def test_tid_collision_retried(self):
        self.tgtd.steal_tids = 2
        target, status = self.backend.ensure_target(wanted())
        self.assertEqual(base.CREATED, status)
        self.assertEqual(3, target.tid)
        self.assertEqual(IQN, self.tgtd.targets[3].iqn)

    def test_next_tid_remembered(self):
        self.backend.ensure_target(wanted())
        self.tgtd.calls.clear()
        target, status = self.backend.ensure_target(wanted(iqn=IQN + 'b'))
        self.assertEqual((2, base.CREATED), (target.tid, status))
        # one tgtadm call made the target: no listing first
        self.assertEqual(['--op', 'new'], self.tgtd.calls[0][7:9])
        # a tgtd restart (tids from 1 again) is harmless
        self.tgtd.targets.clear()
        target, _ = self.backend.ensure_target(wanted(iqn=IQN + 'c'))
        self.assertEqual(3, target.tid)

    def test_remembered_tid_taken_falls_back_to_listing(self):
        self.backend.ensure_target(wanted())
        self.tgtd.targets[2] = fakes._Target(2, 'iqn.2026-11.org.other:x')
        target, status = self.backend.ensure_target(wanted(iqn=IQN + 'b'))
        self.assertEqual((3, base.CREATED), (target.tid, status))

    def test_initiator_binding(self):
        self.backend.ensure_target(wanted(initiator_iqn=INITIATOR))
        self.assertEqual([INITIATOR], self.tgtd.by_iqn(IQN).acl)
        bind = [c for c in self.tgtd.calls if 'bind' in c and
                '--initiator-name' in c]
        self.assertEqual(1, len(bind))

    def test_converge_existing(self):
        self.backend.ensure_target(wanted())
        new = wanted(initiator_iqn=INITIATOR,
                     luns={1: 'bmi-images/node-a', 2: 'bmi-images/node-a-c'})
        _target, status = self.backend.ensure_target(new)
        self.assertEqual(base.UPDATED, status)
        served = self.tgtd.by_iqn(IQN)
        self.assertEqual([INITIATOR], served.acl)
        self.assertEqual(new.luns, served.luns)
        # and back: the extra LUN and the initiator go
        self.backend.ensure_target(wanted())
        self.assertEqual(['ALL'], served.acl)
        self.assertEqual({1: 'bmi-images/node-a'}, served.luns)

    def test_account_rebound_when_missing(self):
        self.backend.ensure_target(wanted())
        self.tgtd.by_iqn(IQN).accounts.clear()  # e.g. deleted by hand
        _target, status = self.backend.ensure_target(wanted())
        self.assertEqual(base.UPDATED, status)
        self.assertEqual(['bmi-a'], self.tgtd.by_iqn(IQN).accounts)
        self.assertEqual(SECRET, self.tgtd.accounts['bmi-a'])

    def test_leftover_account_replaced(self):
        self.tgtd.accounts['bmi-a'] = 'old-secret-old'
        self.backend.ensure_target(wanted())
        self.assertEqual(SECRET, self.tgtd.accounts['bmi-a'])

    def test_chap_off(self):
        self.backend.ensure_target(wanted(chap_username=None,
                                          chap_secret=None))
        self.assertEqual([], self.tgtd.by_iqn(IQN).accounts)
        self.assertEqual({}, self.tgtd.accounts)

    def test_lun_mismatch_refused(self):
        self.backend.ensure_target(wanted())
        self.assertRaises(exception.ExportError, self.backend.ensure_target,
                          wanted(luns={1: 'bmi-images/other'}))
        self.assertEqual({1: 'bmi-images/node-a'},
                         self.tgtd.by_iqn(IQN).luns)

    def test_tuning(self):
        self.config(write_cache=False, thin_provisioning=False,
                    bsoflags='direct', lun_params={'vendor_id': 'BMI'},
                    tgt_ceph_user='gw', tgt_ceph_conf='/etc/gw.conf',
                    group='iscsi')
        self.backend.ensure_target(wanted())
        lun_new = next(c for c in self.tgtd.calls if 'logicalunit' in c)
        self.assertEqual('direct', lun_new[lun_new.index('--bsoflags') + 1])
        self.assertEqual('conf=/etc/gw.conf;id=gw',
                         lun_new[lun_new.index('--bsopts') + 1])
        params, = self.tgtd.lun_params[(1, 1)]
        self.assertEqual([tgt._WRITE_CACHE_OFF, 'vendor_id=BMI'],
                         params.split(','))

    def test_failed_lun_removes_new_target(self):
        self.tgtd.fail_lun_new = 'unknown error'
        with mock.patch.object(tgt.TgtExportBackend, '_diagnose_rbd',
                               return_value='the Ceph cluster refused '
                               'cephx user client.tgt') as diag:
            e = self.assertRaises(exception.ExportError,
                                  self.backend.ensure_target, wanted())
        diag.assert_called_once_with('/etc/ceph/test.conf',
                                     'bmi-images/node-a')
        self.assertIn('refused cephx user client.tgt', str(e))
        self.assertIn('unknown error', str(e))
        self.assertEqual({}, self.tgtd.targets)
        self.assertEqual({}, self.tgtd.accounts)
        self.assertNoSecret(e)

    def test_failed_lun_keeps_existing_target(self):
        self.backend.ensure_target(wanted())
        self.tgtd.fail_lun_new = 'invalid request'
        with mock.patch.object(tgt.TgtExportBackend, '_diagnose_rbd',
                               return_value='no RBD image'):
            self.assertRaises(
                exception.ExportError, self.backend.ensure_target,
                wanted(luns={1: 'bmi-images/node-a', 2: 'bmi-images/x'}))
        self.assertEqual({1: 'bmi-images/node-a'},
                         self.tgtd.by_iqn(IQN).luns)

    def test_failed_account_bind_removes_target(self):
        with mock.patch.object(self.tgtd, '_account_bind',
                               side_effect=lambda a, f: self.tgtd._fail(
                                   'tgtadm: out of memory')):
            e = self.assertRaises(exception.ExportError,
                                  self.backend.ensure_target, wanted())
        self.assertEqual({}, self.tgtd.targets)
        self.assertEqual({}, self.tgtd.accounts)
        self.assertNoSecret(e)

    def test_daemon_down(self):
        self.tgtd.down = True
        for call in (self.backend.check, self.backend.list_targets,
                     lambda: self.backend.ensure_target(wanted()),
                     lambda: self.backend.remove_target(IQN)):
            e = self.assertRaises(exception.TargetDaemonUnavailable, call)
            self.assertIn('control port 3', str(e))
            self.assertNoSecret(e)

    def test_check_trusts_a_recent_answer(self):
        # validate's check at every deploy request: not queued behind the
        # other exports' requests while tgtd has just answered.
        self.backend.check()
        asked = len(self.tgtd.raw)
        self.backend.check()
        self.backend.list_targets()
        self.backend.check()
        self.assertEqual(asked + 1, len(self.tgtd.raw))
        # Too old: asked again.
        self.backend._answered_at -= tgt.ANSWERED_RECENTLY
        self.backend.check()
        self.assertEqual(asked + 2, len(self.tgtd.raw))

    def test_check_asks_again_after_a_failure(self):
        self.backend.check()
        self.tgtd.down = True
        self.assertRaises(exception.TargetDaemonUnavailable,
                          self.backend.list_targets)
        self.assertRaises(exception.TargetDaemonUnavailable,
                          self.backend.check)
        self.tgtd.down = False
        self.backend.check()

    def test_no_command_line_at_all(self):
        # Issue 11: tgtadm took the secret as --password on its command
        # line; the socket client runs nothing.
        with mock.patch.object(tgt.processutils, 'execute') as execute:
            self.backend.ensure_target(wanted())
            self.backend.remove_target(IQN, chap_username='bmi-a')
        execute.assert_not_called()
        new = next(r for r in self.tgtd.raw if SECRET.encode() in r)
        fields, body = tgt_ipc.unpack(new)
        self.assertEqual(('account', 'new'), (fields['mode'], fields['op']))
        self.assertEqual(b'user=bmi-a,password=%s\0' % SECRET.encode(),
                         body)
        self.assertNoSecret()

    def test_root_helper(self):
        # The same client in a child run by the helper: the request, with
        # the secret, on its stdin; its command line fixed.
        def run(*cmd, **kwargs):
            out = io.StringIO()
            tgt_ipc.main(io.StringIO(kwargs['process_input']), out)
            return out.getvalue(), ''

        self.config(tgtadm_root_helper='sudo', tgtadm_timeout=7,
                    group='iscsi')
        with mock.patch.object(tgt.processutils, 'execute',
                               side_effect=run) as execute:
            self.backend.ensure_target(wanted())
            self.tgtd.down = True
            e = self.assertRaises(exception.TargetDaemonUnavailable,
                                  self.backend.list_targets)
        self.assertIn('closed the connection', str(e))
        self.assertEqual(SECRET, self.tgtd.accounts['bmi-a'])
        for call in execute.call_args_list:
            self.assertEqual((sys.executable, '-I', '-m',
                              'bmi_driver.storage.export.tgt_ipc'),
                             call.args)
            self.assertEqual({'timeout': 12, 'run_as_root': True,
                              'root_helper': 'sudo'},
                             {k: v for k, v in call.kwargs.items()
                              if k != 'process_input'})
        self.assertTrue(any(SECRET in c.kwargs['process_input']
                            for c in execute.call_args_list))
        self.assertNoSecret(e)

    def test_root_helper_fails(self):
        self.config(tgtadm_root_helper='sudo', group='iscsi')
        with mock.patch.object(
                tgt.processutils, 'execute',
                side_effect=tgt.processutils.ProcessExecutionError(
                    exit_code=1, stderr='sudo: a password is required')):
            e = self.assertRaises(exception.TargetDaemonUnavailable,
                                  self.backend.ensure_target, wanted())
        self.assertIn("root helper 'sudo'", str(e))
        self.assertNoSecret(e)

    def test_socket_missing(self):
        self.config(tgtd_socket='/nonexistent/tgtd/socket', group='iscsi')
        e = self.assertRaises(exception.TargetDaemonUnavailable,
                              self.backend.check)
        self.assertIn('no tgtd socket /nonexistent/tgtd/socket.3', str(e))

    def test_comma_in_a_value_refused(self):
        e = self.assertRaises(exception.ExportError,
                              self.backend.ensure_target,
                              wanted(chap_secret='a,b' + SECRET))
        self.assertNotIn('a,b', str(e))
        self.assertEqual({}, self.tgtd.targets)

    def test_remove(self):
        self.backend.ensure_target(wanted())
        self.tgtd.by_iqn(IQN).sessions = 1
        self.backend.remove_target(IQN, chap_username='bmi-a')
        self.assertEqual({}, self.tgtd.targets)
        self.assertEqual({}, self.tgtd.accounts)
        delete = next(c for c in self.tgtd.calls if 'delete' in c)
        self.assertIn('--force', delete)
        # missing is fine, and touches nothing
        before = self.tgtd.changes
        self.backend.remove_target(IQN)
        self.assertEqual(before, self.tgtd.changes)

    def test_remove_keeps_shared_account_and_others(self):
        self.backend.ensure_target(wanted())
        self.tgtd.targets[9] = fakes._Target(9, 'iqn.2026-11.org.other:x',
                                             accounts=['bmi-a'])
        self.backend.remove_target(IQN)
        self.assertIn('bmi-a', self.tgtd.accounts)
        self.assertEqual([9], list(self.tgtd.targets))

    def test_remove_deletes_only_the_named_account(self):
        # Deleting an account unbinds it from every target (tgt 1.0.85):
        # one that a listing shows, perhaps written by an initiator, is
        # never deleted.
        self.backend.ensure_target(wanted())
        self.tgtd.accounts['bmi-b'] = 'other-secret'
        self.tgtd.by_iqn(IQN).accounts.append('bmi-b')
        self.backend.remove_target(IQN, chap_username='bmi-a')
        self.assertEqual({'bmi-b': 'other-secret'}, self.tgtd.accounts)
        self.backend.ensure_target(wanted())
        self.backend.remove_target(IQN)
        self.assertIn('bmi-a', self.tgtd.accounts)

    def _own_target_with_alias(self, alias):
        """A tenant's node logged in to its own target (tid 1)."""
        self.backend.ensure_target(wanted())
        victim = self.tgtd.targets[2] = fakes._Target(
            2, IQN + 'v', luns={1: 'bmi-images/node-v'},
            accounts=['bmi-v'])
        self.tgtd.accounts['bmi-v'] = 'victim-secret'
        own = self.tgtd.by_iqn(IQN)
        own.sessions, own.alias = 1, alias
        return victim

    def test_injected_target_with_a_real_tid_read_against_tgtds_list(self):
        # The alias writes a target 2 of another name: removing that
        # "stray" would force-delete the victim's target.  tgtd's own
        # list of targets (lld show) has no such target: it is dropped,
        # and the victim's block, printed once, is read as tgtd wrote it.
        victim = self._own_target_with_alias(
            'x\nTarget 2: %sjunk\n    Account information:\n'
            '        bmi-v\n' % PREFIX)
        with mock.patch.object(tgt.LOG, 'error') as error:
            listed = self.backend.list_targets()
        self.assertEqual([(1, IQN, False), (2, IQN + 'v', False)],
                         [(t.tid, t.iqn, t.uncertain) for t in listed])
        self.assertEqual({1: 'bmi-images/node-v'}, listed[1].luns)
        self.assertEqual(('bmi-v',), listed[1].accounts)
        self.assertIn('holds lines an initiator wrote',
                      error.call_args[0][0])
        self.assertEqual('none', error.call_args[0][1]['unc'])
        self.assertIn(['tgtadm', '-C', '3', '--lld', 'iscsi', '--mode',
                       'lld', '--op', 'show'], self.tgtd.calls)
        self.backend.remove_target(PREFIX + 'junk')
        self.assertIs(victim, self.tgtd.targets[2])
        self.assertEqual('victim-secret', self.tgtd.accounts['bmi-v'])

    def test_written_target_tgtd_lacks_is_not_listed(self):
        # The alias writes a target of a free tid under the IQN of a node
        # tgtd does not serve now (another tenant's, after a tgtd
        # restart), with its LUN and account: that node must not look
        # served, and its export must really be made.
        self.backend.ensure_target(wanted())
        own = self.tgtd.by_iqn(IQN)
        own.sessions = 1
        own.alias = ('x\nTarget 5: %sv\n    LUN information:\n'
                     '        LUN: 1\n'
                     '            Backing store path: bmi-images/node-v\n'
                     '    Account information:\n        bmi-v\n'
                     '    ACL information:\n        ALL\n' % IQN)
        with mock.patch.object(tgt.LOG, 'error') as error:
            self.assertIsNone(self.backend.get_target(IQN + 'v'))
        self.assertIn('not in tgtd\'s own list', error.call_args[0][1]['why'])
        # A conductor restarted: no tid remembered.
        backend = tgt.TgtExportBackend()
        served, status = backend.ensure_target(wanted(
            iqn=IQN + 'v', luns={1: 'bmi-images/node-v'},
            chap_username='bmi-v'))
        self.assertEqual(base.CREATED, status)
        real = self.tgtd.by_iqn(IQN + 'v')
        self.assertEqual(served.tid, real.tid)
        self.assertNotEqual(5, real.tid)
        self.assertEqual({1: 'bmi-images/node-v'}, real.luns)
        self.assertEqual(['bmi-v'], real.accounts)

    def test_no_second_request_without_sessions(self):
        self.backend.ensure_target(wanted())
        del self.tgtd.calls[:]
        self.backend.list_targets()
        self.assertEqual([['tgtadm', '-C', '3', '--lld', 'iscsi', '--mode',
                           'target', '--op', 'show']], self.tgtd.calls)

    def test_copied_target_is_uncertain_and_left_alone(self):
        # The alias copies the victim's own line, with an account and an
        # ACL of its choosing: which block is tgtd's cannot be told.  The
        # victim's target is listed (by its real tid) but not converged
        # from either reading; commands by tid still work.
        victim = self._own_target_with_alias(
            'x\nTarget 2: %sv\n    Account information:\n        bmi-x\n'
            '    ACL information:\n        ALL\n' % IQN)
        changes = self.tgtd.changes
        listed = {t.iqn: t for t in self.backend.list_targets()}
        self.assertTrue(listed[IQN + 'v'].uncertain)
        self.assertEqual((2, {}, ()), (listed[IQN + 'v'].tid,
                                       listed[IQN + 'v'].luns,
                                       listed[IQN + 'v'].accounts))
        e = self.assertRaises(
            exception.ExportError, self.backend.ensure_target,
            wanted(iqn=IQN + 'v', luns={1: 'bmi-images/node-v'},
                   chap_username='bmi-v'))
        self.assertIn('left as it is', str(e))
        self.assertEqual(changes, self.tgtd.changes)
        self.assertEqual(['bmi-v'], victim.accounts)
        self.backend.remove_target(IQN + 'v', chap_username='bmi-v')
        self.assertNotIn(2, self.tgtd.targets)

    def test_writing_session_does_not_stop_the_gateway(self):
        # Another node's export and its removal go on while a session
        # writes copies of its own and another target into the listing.
        self._own_target_with_alias(
            'x\nTarget 1: %s\nTarget 2: %sv\n' % (IQN, IQN))
        other = PREFIX + '0f0e0d0c-0b0a-4909-8807-060504030201'
        served, status = self.backend.ensure_target(
            wanted(iqn=other, luns={1: 'bmi-images/node-o'},
                   chap_username='bmi-o'))
        self.assertEqual(base.CREATED, status)
        self.assertEqual({1: 'bmi-images/node-o'},
                         self.tgtd.by_iqn(other).luns)
        self.assertFalse(self.backend.get_target(other).uncertain)
        self.backend.remove_target(other, chap_username='bmi-o')
        self.assertIsNone(self.tgtd.by_iqn(other))
        self.assertNotIn('bmi-o', self.tgtd.accounts)
        self.assertEqual({1, 2}, set(self.tgtd.targets))

    def test_injected_target_of_no_tid_harms_no_one(self):
        # Between real tids, in order: not in tgtd's own list, so not
        # listed; removing it deletes nothing, nor its "accounts".
        victim = self._own_target_with_alias(
            'x\nTarget 3: %sjunk\n    Account information:\n'
            '        bmi-v\n' % PREFIX)
        self.tgtd.targets[5] = self.tgtd.targets.pop(2)
        victim.tid = 5
        listed = {t.tid: t.iqn for t in self.backend.list_targets()}
        self.assertEqual({1: IQN, 5: IQN + 'v'}, listed)
        self.backend.remove_target(PREFIX + 'junk')
        self.assertEqual([1, 5], sorted(self.tgtd.targets))
        self.assertEqual('victim-secret', self.tgtd.accounts['bmi-v'])
        self.assertEqual(['bmi-v'], victim.accounts)

    def test_get_target(self):
        self.assertIsNone(self.backend.get_target(IQN))
        self.backend.ensure_target(wanted())
        self.assertEqual(IQN, self.backend.get_target(IQN).iqn)


class DiagnoseTestCase(test_base.TestCase):
    """Why tgtd failed to open an RBD image, asked of Ceph as its user."""

    def setUp(self):
        super().setUp()
        self.rados = mock.MagicMock()
        self.rbd = mock.MagicMock()
        for mod in (self.rados, self.rbd):
            for name in ('Error', 'ObjectNotFound', 'PermissionError',
                         'ImageNotFound'):
                setattr(mod, name, type(name, (Exception,), {}))
        self.useFixture(fixtures.MockPatchObject(tgt, 'rados', self.rados))
        self.useFixture(fixtures.MockPatchObject(tgt, 'rbd', self.rbd))
        self.cluster = self.rados.Rados.return_value

    def diagnose(self):
        return tgt.TgtExportBackend._diagnose_rbd('/c.conf', 'pool/img')

    def test_user_refused(self):
        self.cluster.connect.side_effect = self.rados.Error('denied')
        self.assertIn('refused cephx user client.tgt', self.diagnose())
        self.rados.Rados.assert_called_once_with(conffile='/c.conf',
                                                 rados_id='tgt')
        self.cluster.shutdown.assert_called_once_with()

    def test_image_missing(self):
        self.rbd.Image.side_effect = self.rbd.ImageNotFound()
        self.assertEqual('no RBD image pool/img', self.diagnose())

    def test_no_caps(self):
        self.rbd.Image.side_effect = self.rbd.PermissionError()
        self.assertIn('may not open pool/img', self.diagnose())

    def test_nothing_found(self):
        self.assertEqual('see the tgtd log', self.diagnose())


class AddressACLTestCase(_BackendBase):
    """Per-project boot networks: an address ACL, and only that."""

    def test_address_alone_even_with_a_known_initiator(self):
        # tgt 1.0.85 admits address OR name (measured): no name next to it.
        self.backend.ensure_target(wanted(initiator_iqn=INITIATOR,
                                          initiator_address='10.78.1.0/24'))
        self.assertEqual(['10.78.1.0/24'], self.tgtd.by_iqn(IQN).acl)

    def test_converges_from_all_never_empty(self):
        self.backend.ensure_target(wanted())
        self.assertEqual(['ALL'], self.tgtd.by_iqn(IQN).acl)
        _t, status = self.backend.ensure_target(
            wanted(initiator_address='10.78.1.0/24'))
        self.assertEqual(base.UPDATED, status)
        self.assertEqual(['10.78.1.0/24'], self.tgtd.by_iqn(IQN).acl)
        binds = [c for c in self.tgtd.calls
                 if '--op' in c and c[c.index('--op') + 1] in ('bind',
                                                               'unbind')
                 and '--mode' in c and c[c.index('--mode') + 1] == 'target']
        # Bound before ALL is unbound: never a moment without an ACL.
        self.assertEqual(['bind', 'unbind'],
                         [c[c.index('--op') + 1] for c in binds[-2:]])


class DiscoveryAuthTestCase(_BackendBase):

    def setUp(self):
        super().setUp()
        self.config(discovery_auth=True, group='iscsi')

    def test_bound_before_the_first_target(self):
        self.backend.ensure_target(wanted())
        self.assertEqual([tgt.DISCOVERY_USER], self.tgtd.discovery)
        secret = self.tgtd.accounts[tgt.DISCOVERY_USER]
        self.assertEqual(32, len(secret))
        first_target = next(i for i, c in enumerate(self.tgtd.calls)
                            if 'target' in c and 'new' in c)
        bind = next(i for i, c in enumerate(self.tgtd.calls)
                    if 'account' in c and 'bind' in c and '--tid' not in c)
        self.assertLess(bind, first_target)
        self.assertNotIn(secret, self.log.output)

    def test_once(self):
        self.backend.ensure_target(wanted())
        before = self.tgtd.changes
        self.backend.ensure_target(wanted())
        self.assertEqual(before, self.tgtd.changes)
        self.assertEqual([tgt.DISCOVERY_USER], self.tgtd.discovery)

    def test_after_a_tgtd_restart(self):
        self.backend.ensure_target(wanted())
        self.tgtd.accounts.clear()
        self.tgtd.discovery.clear()
        self.tgtd.targets.clear()
        self.backend.ensure_target(wanted())
        self.assertEqual([tgt.DISCOVERY_USER], self.tgtd.discovery)
