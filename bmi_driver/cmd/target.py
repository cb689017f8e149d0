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

"""``bmi-manage target ...``: the iSCSI targets of node disks.

``target list`` shows every export Ceph records next to what the local
target daemon serves; ``target reconcile`` makes the daemon serve exactly
what Ceph records (after a tgtd restart, or on a new gateway).  CHAP
secrets are never printed.
"""

from cliff import command
from cliff import lister

from bmi_driver.storage.export import manager as export_manager


class ListTargets(lister.Lister):
    """List node exports and this plugin's targets on the local daemon."""

    columns = ('node', 'target', 'tid', 'luns', 'initiator', 'chap user',
               'sessions', 'state')

    def take_action(self, args):
        rows = []
        for exp, target in export_manager.get_manager().list_exports():
            if exp is None:
                state = 'orphan'
            elif target is None:
                state = 'missing'
            elif target.uncertain:
                # tgtd's listing of it holds an initiator's lines.
                state = 'served (unreadable)'
            else:
                state = 'served'
            luns = exp.luns if exp is not None else target.luns
            rows.append((
                exp.node_uuid if exp else None,
                exp.target_iqn if exp else target.iqn,
                target.tid if target else None,
                ', '.join('%d=%s' % kv for kv in sorted(luns.items())),
                (exp.initiator_iqn or 'any') if exp else None,
                exp.chap_username if exp else None,
                target.sessions if target else 0,
                state))
        return self.columns, rows


class ReconcileTargets(command.Command):
    """Re-create missing targets and remove orphan ones (ours only)."""

    def take_action(self, args):
        report = export_manager.get_manager().reconcile()
        out = self.app.stdout
        for label, iqns in (('created', report.created),
                            ('repaired', report.updated),
                            ('removed orphan', report.removed)):
            for iqn in iqns:
                out.write('%s %s\n' % (label, iqn))
        for iqn, reason in sorted(report.failed.items()):
            out.write('FAILED %s: %s\n' % (iqn, reason))
        out.write('%d created, %d repaired, %d unchanged, %d orphan(s) '
                  'removed, %d not ours left alone, %d failed\n'
                  % (len(report.created), len(report.updated),
                     len(report.unchanged), len(report.removed),
                     len(report.foreign), len(report.failed)))
        return 1 if report.failed else 0
