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

"""tgtd's ``show`` output read back (no I/O).

``tgtadm --mode target --op show`` (tgt 1.0.85), which tgtd also answers on
its management socket (:mod:`bmi_driver.storage.export.tgt_ipc`), parsed
into :class:`~bmi_driver.storage.export.base.ServedTarget` records for the
tgt backend (:mod:`bmi_driver.storage.export.tgt`).
"""

import re

from bmi_driver.storage.export import base

_TARGET_RE = re.compile(r'^Target (\d+): (\S+)\s*$')
_LUN_RE = re.compile(r'^LUN: (\d+)$')
_NEXUS_RE = re.compile(r'^I_T nexus: \d+$')


class AmbiguousListing(ValueError):
    """The listing holds a target twice: some of it is not tgtd's."""


def parse_targets(text):
    """Parse ``tgtadm --mode target --op show`` into [ServedTarget].

    The format is indented text: ``Target N: IQN`` at column 0, sections
    (``LUN information:``, ``Account information:``, ``ACL
    information:``...) one level in.  Unknown sections and lines are
    ignored, so that another tgt version's extra fields do no harm.

    Not all of it is tgtd's: each session's ``Initiator: <name> alias:
    <alias>`` line is the initiator's login text, printed verbatim (tgt
    1.0.85 ``iscsi/session.c``: any byte but NUL, line breaks included),
    so a tenant's node logged in to its own target can write lines that
    read as more targets, LUNs, accounts or ACL entries.  What it writes
    lands inside its own target's block, where tgtd prints the targets in
    increasing tid order (``target.c`` keeps its list sorted): a written
    ``Target N:`` line either names a tid no target has (commands on it
    fail: "can't find the target") or repeats a tid or IQN that tgtd
    prints too, which is refused here.  The block of that node's own
    target may read wrong (its own export then fails to converge); callers
    act on another target only by its own name, and never delete an
    account because a listing shows it (``TgtExportBackend.remove_target``).

    :raises AmbiguousListing: a tid out of order or an IQN twice.
    """
    targets = []
    current = None
    section = None
    lun = None

    def finish():
        if current is not None:
            last = targets[-1] if targets else None
            if last is not None and current['tid'] <= last.tid:
                raise AmbiguousListing(
                    'target %d (%s) listed after target %d (%s)'
                    % (current['tid'], current['iqn'], last.tid, last.iqn))
            if any(t.iqn == current['iqn'] for t in targets):
                raise AmbiguousListing('%s listed twice' % current['iqn'])
            targets.append(base.ServedTarget(
                tid=current['tid'], iqn=current['iqn'],
                luns=current['luns'], accounts=tuple(current['accounts']),
                acl=tuple(current['acl']), sessions=current['sessions']))

    for line in text.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(' '))
        body = line.strip()
        match = _TARGET_RE.match(line)
        if indent == 0:
            finish()
            current = None
            if match:
                current = {'tid': int(match.group(1)),
                           'iqn': match.group(2), 'luns': {},
                           'accounts': [], 'acl': [], 'sessions': 0}
            section = lun = None
            continue
        if current is None:
            continue
        if indent <= 4 and body.endswith(':'):
            section = body[:-1].strip().lower()
            lun = None
            continue
        if section == 'lun information':
            m = _LUN_RE.match(body)
            if m:
                lun = int(m.group(1))
            elif lun and body.startswith('Backing store path:'):
                path = body.split(':', 1)[1].strip()
                current['luns'][lun] = path
        elif section == 'account information':
            if not body.endswith('(outgoing)'):
                current['accounts'].append(body)
        elif section == 'acl information':
            current['acl'].append(body)
        elif section == 'i_t nexus information':
            if _NEXUS_RE.match(body):
                current['sessions'] += 1
    finish()
    return targets
