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

"""Unit tests of the soak's census (leak counting) and its tally.

The sources are fakes of the real tools' output: tgtadm show of tgt
1.0.85, rbd ls / trash ls JSON, HIL's node info, the directories of
Ironic's ipxe interface and of the plugin's published boot files.
"""

import os
import random
from unittest import mock

from tests import base
from tools.lab import soak
from tools.lab import soak_census as census

A = '0a6b7a2c-1d7e-4e8f-9a0b-1c2d3e4f5a6b'   # ACTIVE
B = '1b6b7a2c-1d7e-4e8f-9a0b-1c2d3e4f5a6b'   # AVAILABLE
C = '2c6b7a2c-1d7e-4e8f-9a0b-1c2d3e4f5a6b'   # deleted
D = '3d6b7a2c-1d7e-4e8f-9a0b-1c2d3e4f5a6b'   # not the soak's
PREFIX = 'iqn.2026-11.org.massopen.bmi'

TARGETS = '''Target 1: %(p)s:%(a)s
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
    LUN information:
        LUN: 0
            Type: controller
            Backing store path: None
        LUN: 1
            Type: disk
            Backing store type: rbd
            Backing store path: bmi-images/node-%(a)s
    Account information:
        bmi-%(a)s
    ACL information:
        ALL
Target 2: %(p)s:%(b)s
    System information:
        Driver: iscsi
    LUN information:
        LUN: 0
            Type: controller
    Account information:
    ACL information:
        10.78.3.0/24
Target 3: iqn.2001-04.com.other:%(c)s
    System information:
        Driver: iscsi
''' % {'p': PREFIX, 'a': A, 'b': B, 'c': C}

ACCOUNTS = '''Account list:
    bmi-%s
    bmi-%s
    bmi-discovery
    other-%s
''' % (A, C, B)


class CensusParsersTest(base.TestCase):

    def test_rbd_names(self):
        rows = census.rbd_names(['node-' + A, 'node-%s-config' % B,
                                 'img-' + C, 'soak-base-x',
                                 'node-not-a-uuid'], 'pool')
        self.assertEqual([census.Seen('clone', A, 'pool/node-' + A),
                          census.Seen('configdrive', B,
                                      'pool/node-%s-config' % B)], rows)

    def test_rbd_names_scratch_disks(self):
        rows = census.rbd_names(['node-%s-ephemeral' % A,
                                 'node-%s-swap' % A,
                                 'node-%s-other' % A], 'pool')
        self.assertEqual(
            [census.Seen('ephemeral', A, 'pool/node-%s-ephemeral' % A),
             census.Seen('swap', A, 'pool/node-%s-swap' % A)], rows)
        self.assertEqual(1, census.summary(rows)['ephemeral'])

    def test_rbd_trash(self):
        rows = census.rbd_trash([{'id': '10ab', 'name': 'node-' + C},
                                 {'id': '10ac', 'name': 'img-' + A}], 'p')
        self.assertEqual([census.Seen('trash', C,
                                      'p/trash:10ab (node-%s)' % C)], rows)

    def test_targets_only_ours(self):
        rows = census.targets(TARGETS, 'tgtd', PREFIX)
        self.assertEqual([A, B], [r.node for r in rows])
        self.assertEqual({'target'}, {r.kind for r in rows})
        self.assertIn('tid 2', rows[1].what)

    def test_accounts(self):
        rows = census.accounts(ACCOUNTS, 'tgtd-2', 'bmi-')
        self.assertEqual([A, C], [r.node for r in rows])
        self.assertEqual('tgtd-2 CHAP user bmi-' + C, rows[1].what)

    def test_boot_files(self):
        root = os.path.join(self.state_dir, 'boot')
        os.makedirs(os.path.join(root, A))
        os.makedirs(os.path.join(root, B))
        os.makedirs(os.path.join(root, 'pxelinux.cfg'))
        for mac in ('52-54-00-00-00-01', '52-54-00-00-00-02',
                    '52-54-00-00-00-09'):
            open(os.path.join(root, 'pxelinux.cfg', mac), 'w').close()
        open(os.path.join(root, 'boot.ipxe'), 'w').close()
        rows = census.boot_files(root, {'52:54:00:00:00:01': A,
                                        '52:54:00:00:00:02': C})
        self.assertEqual(
            sorted([(A, os.path.join(root, A)), (B, os.path.join(root, B)),
                    (A, os.path.join(root, 'pxelinux.cfg',
                                     '52-54-00-00-00-01')),
                    (C, os.path.join(root, 'pxelinux.cfg',
                                     '52-54-00-00-00-02'))]),
            sorted((r.node, r.what) for r in rows))
        self.assertEqual([], census.boot_files(root + '-missing', {}))

    def test_lock_files(self):
        d = os.path.join(self.state_dir, 'locks')
        os.makedirs(d)
        for name in ('bmi-export-' + B, 'bmi-tgt-tid', '.driver_lock'):
            open(os.path.join(d, name), 'w').close()
        self.assertEqual([census.Seen('lock_file', B, os.path.join(
            d, 'bmi-export-' + B))], census.lock_files(d))

    def test_hil_attachments(self):
        info = {'name': 'soak-x-0', 'nics': [
            {'label': 'boot', 'networks': {'vlan/native': 'boot-e2e'}},
            {'label': 'tenant', 'networks': {}}]}
        self.assertEqual(
            [census.Seen('hil_attachment', C,
                         'soak-x-0 boot vlan/native: boot-e2e')],
            census.hil_attachments(info, C))
        self.assertEqual([], census.hil_attachments(
            '{"name": "n", "nics": [{"label": "boot"}]}', C))


class LeakCountTest(base.TestCase):
    """What counts as a leak: everything of a node not ACTIVE."""

    def seen(self):
        rows = []
        for node in (A, B, C, D):
            rows += [census.Seen('clone', node, 'node-' + node),
                     census.Seen('target', node, 'iqn:' + node),
                     census.Seen('account', node, 'bmi-' + node),
                     census.Seen('volume_target', node, 'vt'),
                     census.Seen('boot_file', node, '/b/' + node),
                     census.Seen('hil_attachment', node, 'boot'),
                     census.Seen('lock_file', node, '/l/' + node)]
        return rows

    def test_active_keeps_its_things(self):
        leaked = census.leaks(self.seen(), {A: 'active', B: 'available'},
                              deleted={C})
        self.assertEqual(set(), {r.node for r in leaked} & {A, D})
        # B (available) and C (deleted): every kind of theirs.
        self.assertEqual(14, len(leaked))
        self.assertEqual({B, C}, {r.node for r in leaked})
        self.assertEqual(dict(census.summary([]), clone=2, target=2,
                              account=2, volume_target=2, boot_file=2,
                              hil_attachment=2, lock_file=2),
                         census.summary(leaked))

    def test_failed_states_leak(self):
        for state in ('deploy failed', 'error', 'clean failed',
                      'manageable', 'deploying'):
            leaked = census.leaks(self.seen(), {A: state})
            self.assertEqual(7, len(leaked), state)

    def test_nothing_left_is_zero(self):
        self.assertEqual([], census.leaks([], {A: 'available'}, {C}))
        only_active = [r for r in self.seen() if r.node == A]
        self.assertEqual([], census.leaks(only_active, {A: 'active'}))

    def test_duplicates_count_once(self):
        row = census.Seen('clone', B, 'p/node-' + B)
        self.assertEqual([row], census.leaks([row, row], {B: 'available'}))

    def test_reenrolled_uuid_is_judged_by_its_state(self):
        # Deleted, then enrolled again with the same UUID (AVAILABLE):
        # the old clone is a leak; once ACTIVE again it is its disk.
        row = census.Seen('clone', C, 'p/node-' + C)
        self.assertEqual([row], census.leaks([row], {C: 'available'}, {C}))
        self.assertEqual([], census.leaks([row], {C: 'active'}, set()))


class TallyTest(base.TestCase):

    def test_line_and_exit(self):
        t = soak.Tally()
        t.cycles, t.faults, t.failed, t.healed = 20, 9, 3, 3
        self.assertEqual('soak: cycles=20 faults=9 failed=3 leaked=0 '
                         'healed=3 operator=0', t.line())
        self.assertTrue(t.ok())
        t.leaked = 1
        self.assertFalse(t.ok())
        t.leaked, t.operator = 0, 1
        self.assertFalse(t.ok())

    def test_args_from_environment(self):
        with mock.patch.dict(os.environ, {'SOAK_CYCLES': '20',
                                          'SOAK_SEED': '7',
                                          'SOAK_FAULTS': 'tgtd_kill'}):
            args = soak.parse_args([])
        self.assertEqual((20, 7, ['tgtd_kill']),
                         (args.cycles, args.seed, args.faults))
        with mock.patch.dict(os.environ, {}, clear=True):
            self.assertEqual(200, soak.parse_args([]).cycles)
        self.assertRaises(SystemExit, soak.parse_args,
                          ['--faults', 'tgtd_kill,meteor'])

    def test_main_prints_one_line_on_abort(self):
        with mock.patch.object(soak, 'run', side_effect=RuntimeError('x')), \
                mock.patch('builtins.print') as out:
            self.assertEqual(1, soak.main(['--cycles', '1', '--seed', '1']))
        lines = [c.args[0] for c in out.call_args_list
                 if c.args and c.args[0].startswith('soak: cycles=')]
        self.assertEqual(['soak: cycles=0 faults=0 failed=0 leaked=0 '
                          'healed=0 operator=1'], lines)


class FakeNode(object):
    def __init__(self, state, maintenance=False, target=None, error=None):
        self.provision_state = state
        self.maintenance = maintenance
        self.target_provision_state = target
        self.last_error = error
        self.uuid = B


class RecoverTest(base.TestCase):
    """healed vs operator: what Nova's undeploy can and cannot fix."""

    def make(self, states):
        s = soak.Soak.__new__(soak.Soak)
        s.tally = soak.Tally()
        s.rng = random.Random(1)
        s.retired = []
        s.slots = [soak.Slot(0)]
        s.slots[0].uuid = B
        s.slots[0].failure = 'deploy: deploy failed: boom'
        s.ironic = mock.Mock()
        s.ironic.node.get_history_list.return_value = []
        s.op_timeout = 5
        s.api = lambda fn, *a, **k: fn(*a, **k)
        s.node = mock.Mock(return_value=states[0])
        s.wait_state = mock.Mock(side_effect=states[1:])
        s.enroll = mock.Mock()
        return s

    def test_deploy_failed_then_undeployed_is_healed(self):
        s = self.make([FakeNode('deploy failed'), FakeNode('available')])
        s.recover()
        self.assertEqual((1, 0), (s.tally.healed, s.tally.operator))
        s.ironic.node.set_provision_state.assert_called_once_with(
            B, 'deleted')
        self.assertIsNone(s.slots[0].failure)

    def test_deploy_failed_keeps_its_target_and_is_undeployed(self):
        # Ironic 39.0.0 leaves target_provision_state 'active' on a
        # failed deploy: at rest all the same.
        s = self.make([FakeNode('deploy failed', target='active'),
                       FakeNode('available')])
        s.recover()
        self.assertEqual((1, 0), (s.tally.healed, s.tally.operator))

    def test_still_busy_needs_a_person(self):
        s = self.make([FakeNode('deploying', target='active')])
        s.recover()
        self.assertEqual((0, 1), (s.tally.healed, s.tally.operator))
        s.ironic.node.set_provision_state.assert_not_called()

    def test_clean_failed_needs_a_person(self):
        s = self.make([FakeNode('clean failed', maintenance=True)])
        s.recover()
        self.assertEqual((0, 1), (s.tally.healed, s.tally.operator))
        s.ironic.node.set_provision_state.assert_not_called()
        self.assertEqual([B], s.retired)
        s.enroll.assert_called_once()

    def test_undeploy_that_keeps_failing_needs_a_person(self):
        s = self.make([FakeNode('error')] + [FakeNode('error')] * 3)
        s.recover()
        self.assertEqual((0, 1), (s.tally.healed, s.tally.operator))
        self.assertEqual(3, s.ironic.node.set_provision_state.call_count)


class WhyTest(base.TestCase):
    """A failure's message: last_error, else the node's history."""

    def make(self, history):
        s = soak.Soak.__new__(soak.Soak)
        s.ironic = mock.Mock()
        if isinstance(history, Exception):
            s.ironic.node.get_history_list.side_effect = history
        else:
            s.ironic.node.get_history_list.return_value = history
        return s

    def test_last_error_first(self):
        s = self.make([])
        self.assertEqual('boom', s.why(FakeNode('deploy failed',
                                                error='boom')))
        s.ironic.node.get_history_list.assert_not_called()

    def test_cleared_error_is_read_from_history(self):
        # Ironic's power sync cleared last_error; the newest ERROR says why.
        s = self.make([
            {'created_at': '2026-12-02T10:00:00', 'severity': 'ERROR',
             'event_type': 'deploying', 'event': 'older failure'},
            {'created_at': '2026-12-02T10:05:00', 'severity': 'ERROR',
             'event_type': 'deploying', 'event': 'Deploy step failed'},
            {'created_at': '2026-12-02T10:06:00', 'severity': 'INFO',
             'event_type': 'provisioning', 'event': 'not an error'}])
        self.assertEqual('None; its history: Deploy step failed (deploying)',
                         s.why(FakeNode('deploy failed')))
        s.ironic.node.get_history_list.assert_called_once_with(
            B, detail=True)

    def test_no_error_in_history(self):
        s = self.make([{'created_at': 'x', 'severity': 'INFO',
                        'event_type': 'provisioning', 'event': 'fine'}])
        self.assertEqual('None (no error in its history)',
                         s.why(FakeNode('deploy failed')))

    def test_history_unreadable(self):
        s = self.make(RuntimeError('gone'))
        self.assertEqual('None (its history unreadable: gone)',
                         s.why(FakeNode('deploy failed')))
