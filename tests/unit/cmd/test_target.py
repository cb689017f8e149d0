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

"""bmi-manage target list|reconcile."""

import io
import json
from unittest import mock

import fixtures

from bmi_driver.cmd import manage
from bmi_driver import exception
from bmi_driver.storage.export import base as export_base
from bmi_driver.storage.export import manager as export
from tests import base

NODE = '6b1a3f8e-4c1d-4c57-9e0a-0d1c2b3a4f5e'
IQN = 'iqn.2026-11.org.massopen.bmi:' + NODE


class BMIManageTargetTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.mgr = mock.Mock(spec=export.ExportManager)
        self.useFixture(fixtures.MockPatchObject(
            export, 'ExportManager', return_value=self.mgr))
        # The process's one manager is made from the mocked class.
        export.reset_manager()
        self.addCleanup(export.reset_manager)
        self.stdout = self.useFixture(
            fixtures.MonkeyPatch('sys.stdout', io.StringIO())).new_value
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', io.StringIO()))
        # cliff also logs errors through the root logger, which Ironic's
        # test package sends to the real stderr.
        self.useFixture(fixtures.FakeLogger())

    def run_cli(self, *argv):
        return manage.main(list(argv))

    def test_list(self):
        exp = export.NodeExport(
            node_uuid=NODE, target_iqn=IQN, portal='127.0.0.1:3260',
            luns={1: 'bmi-images/node-' + NODE}, chap_username='bmi-' + NODE,
            chap_secret='TopSecretTopSecr', initiator_iqn=None)
        served = export_base.ServedTarget(tid=3, iqn=IQN, luns=exp.luns,
                                          sessions=1)
        orphan = export_base.ServedTarget(
            tid=4, iqn='iqn.2026-11.org.massopen.bmi:x', luns={1: 'p/i'})
        unreadable = export_base.ServedTarget(tid=3, iqn=IQN,
                                              uncertain=True)
        self.mgr.list_exports.return_value = [(exp, served), (exp, None),
                                              (None, orphan),
                                              (exp, unreadable)]
        self.assertEqual(0, self.run_cli('target', 'list', '-f', 'json'))
        rows = json.loads(self.stdout.getvalue())
        self.assertEqual(['served', 'missing', 'orphan',
                          'served (unreadable)'],
                         [r['state'] for r in rows])
        self.assertEqual(3, rows[0]['tid'])
        self.assertEqual('any', rows[0]['initiator'])
        self.assertEqual('1=p/i', rows[2]['luns'])
        self.assertNotIn('TopSecret', self.stdout.getvalue())

    def test_reconcile(self):
        self.mgr.reconcile.return_value = export.ReconcileReport(
            created=[IQN], removed=['iqn.2026-11.org.massopen.bmi:x'],
            foreign=['iqn.other:y'])
        self.assertEqual(0, self.run_cli('target', 'reconcile'))
        out = self.stdout.getvalue()
        self.assertIn('created ' + IQN, out)
        self.assertIn('removed orphan iqn.2026-11.org.massopen.bmi:x', out)
        self.assertIn('1 created, 0 repaired, 0 unchanged, 1 orphan(s) '
                      'removed, 1 not ours left alone, 0 failed', out)

    def test_reconcile_failures_exit_1(self):
        self.mgr.reconcile.return_value = export.ReconcileReport(
            failed={IQN: 'boom'})
        self.assertEqual(1, self.run_cli('target', 'reconcile'))
        self.assertIn('FAILED %s: boom' % IQN, self.stdout.getvalue())

    def test_daemon_down(self):
        self.mgr.reconcile.side_effect = exception.TargetDaemonUnavailable(
            reason='tgtd (control port 0): not connected')
        self.assertNotEqual(0, self.run_cli('target', 'reconcile'))
