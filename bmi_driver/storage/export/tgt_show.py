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
_LLD_TARGET_RE = re.compile(r'^ +Target (\d+): (\S+)\s*$')
_LUN_RE = re.compile(r'^LUN: (\d+)$')
_NEXUS_RE = re.compile(r'^I_T nexus: \d+$')


class AmbiguousListing(ValueError):
    """The listing holds a target twice: some of it is not tgtd's."""


def _blocks(text):
    """``(tid, iqn, lines)`` of each ``Target N: IQN`` line at column 0.

    ``lines``: those after it, up to the next line at column 0.
    """
    block = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line[0] != ' ':
            if block is not None:
                yield block
            match = _TARGET_RE.match(line)
            block = ((int(match.group(1)), match.group(2), [])
                     if match else None)
        elif block is not None:
            block[2].append(line)
    if block is not None:
        yield block


def _read_block(tid, iqn, lines):
    luns, accounts, acl, sessions = {}, [], [], 0
    section = lun = None
    for line in lines:
        indent = len(line) - len(line.lstrip(' '))
        body = line.strip()
        if indent <= 4 and body.endswith(':'):
            section = body[:-1].strip().lower()
            lun = None
            continue
        if section == 'lun information':
            m = _LUN_RE.match(body)
            if m:
                lun = int(m.group(1))
            elif lun and body.startswith('Backing store path:'):
                luns[lun] = body.split(':', 1)[1].strip()
        elif section == 'account information':
            if not body.endswith('(outgoing)'):
                accounts.append(body)
        elif section == 'acl information':
            acl.append(body)
        elif section == 'i_t nexus information':
            if _NEXUS_RE.match(body):
                sessions += 1
    return base.ServedTarget(tid=tid, iqn=iqn, luns=luns,
                             accounts=tuple(accounts), acl=tuple(acl),
                             sessions=sessions)


def parse_targets(text):
    """Parse ``tgtadm --mode target --op show`` into [ServedTarget].

    The format is indented text: ``Target N: IQN`` at column 0, sections
    (``LUN information:``, ``Account information:``, ``ACL
    information:``...) one level in.  Unknown sections and lines are
    ignored, so that another tgt version's extra fields do no harm.

    Not all of it is tgtd's: each session's ``Initiator: <name> alias:
    <alias>`` line is the initiator's login text, printed verbatim (tgt
    1.0.85 ``iscsi/session.c``: any byte but NUL, line breaks included,
    up to about 1000 bytes a session), so a tenant's node logged in to
    its own target can write lines that read as more targets, LUNs,
    accounts or ACL entries.  What it writes lands inside its own
    target's block, where tgtd prints the targets in increasing tid order
    (``target.c`` keeps its list sorted): a written ``Target N:`` line
    either repeats a tid or IQN that tgtd prints too, which is refused
    here, or names a target tgtd does not have, which only tgtd's own
    list of targets tells (the tgt backend asks it whenever a session
    exists); either way :func:`parse_checked` then reads the listing
    against that list.  The block of that node's own target may read
    wrong (its own export then fails to converge); callers act on another
    target only by its own name, and never delete an account because a
    listing shows it (``TgtExportBackend.remove_target``).

    :raises AmbiguousListing: a tid out of order or an IQN twice.
    """
    targets = []
    for tid, iqn, lines in _blocks(text):
        last = targets[-1] if targets else None
        if last is not None and tid <= last.tid:
            raise AmbiguousListing(
                'target %d (%s) listed after target %d (%s)'
                % (tid, iqn, last.tid, last.iqn))
        if any(t.iqn == iqn for t in targets):
            raise AmbiguousListing('%s listed twice' % iqn)
        targets.append(_read_block(tid, iqn, lines))
    return targets


def parse_lld_targets(text):
    """``tgtadm --mode lld --op show``: [(tid, IQN)], sorted by tid.

    tgtd's own list of targets (``lld_show``, tgt 1.0.85 ``target.c``):
    each lld's name and state, then ``Target N: IQN`` of each target it
    drives; nothing an initiator sends is printed there.
    """
    found = (_LLD_TARGET_RE.match(line) for line in text.splitlines())
    return sorted((int(m.group(1)), m.group(2)) for m in found if m)


def parse_checked(text, known):
    """Read a target listing against tgtd's own list of targets.

    For a listing that :func:`parse_targets` refuses.  ``known``:
    :func:`parse_lld_targets` of the same tgtd, asked after ``text``.
    Every target of ``known`` is returned, and nothing else (what an
    initiator wrote as a target of its own is dropped).  tgtd prints
    each target's ``Target N: IQN`` line once, and what an initiator
    writes stays inside its own target's block: a target whose line is
    in ``text`` once is read from that block, as tgtd printed it (the
    writer's own block may read wrong, its own harm); one whose line is
    there twice (an initiator copied it) or not at all (created in
    between) is returned ``uncertain``, with nothing read for it.  So a
    written listing costs another target the reading of its block at
    most, never its commands, which go by tid.

    :returns: ([ServedTarget], [IQN of each uncertain target])
    """
    blocks = {}
    for tid, iqn, lines in _blocks(text):
        blocks.setdefault((tid, iqn), []).append(lines)
    targets, uncertain = [], []
    for tid, iqn in known:
        found = blocks.get((tid, iqn), [])
        if len(found) == 1:
            targets.append(_read_block(tid, iqn, found[0]))
        else:
            targets.append(base.ServedTarget(tid=tid, iqn=iqn,
                                             uncertain=True))
            uncertain.append(iqn)
    return targets, uncertain
