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

"""The soak's census: what the plugin left, per node, and what is a leak.

``tools.lab.soak`` asks each source (Ceph, every gateway's tgtd, Ironic,
the HTTP roots, HIL, the lock directory) what it holds that names one of
the soak's nodes, as :class:`Seen` rows, and :func:`leaks` keeps those of
nodes that are not ACTIVE or that Ironic no longer has. The parsers here
read the real tools' output (``rbd ls``, ``rbd trash ls``, ``tgtadm
--mode target|account --op show`` of tgt 1.0.85, the directory layout of
Ironic 39.0.0's ``ipxe`` boot interface and of
``bmi_driver.network.boot_files``); they take text or paths so that the
unit tests give them fakes of exactly that output.
"""

import collections
import json
import os
import re

from bmi_driver.storage.export import tgt_show

# One thing a source holds for a node: kind (KINDS), node UUID, and what
# exactly (a name, a path) for the report.
Seen = collections.namedtuple('Seen', 'kind node what')

KINDS = ('clone', 'configdrive', 'ephemeral', 'swap', 'trash', 'target',
         'account', 'volume_target', 'boot_file', 'hil_attachment',
         'lock_file')

UUID_RE = re.compile(
    r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')
# A node's clone and its other images (bmi_driver/storage/layout.py).
_CLONE_RE = re.compile(r'^node-(%s)(-config|-ephemeral|-swap)?$'
                       % UUID_RE.pattern)
_PART_KINDS = {None: 'clone', '-config': 'configdrive',
               '-ephemeral': 'ephemeral', '-swap': 'swap'}


def _uuid_in(text):
    m = UUID_RE.search(text.lower())
    return m.group(0) if m else None


def rbd_names(names, pool):
    """``rbd ls`` names -> Seen clone / configdrive / ephemeral / swap."""
    rows = []
    for name in names:
        m = _CLONE_RE.match(name)
        if m:
            rows.append(Seen(_PART_KINDS[m.group(2)], m.group(1),
                             '%s/%s' % (pool, name)))
    return rows


def rbd_trash(entries, pool):
    """``rbd trash ls --format json`` entries -> Seen trash rows.

    A node's clone queued for removal (RBD trash, issue 12 item 2) still
    holds the tenant's data until the sweep purges it.
    """
    rows = []
    for entry in entries:
        m = _CLONE_RE.match(entry.get('name', ''))
        if m:
            rows.append(Seen('trash', m.group(1), '%s/trash:%s (%s)' % (
                pool, entry.get('id'), entry['name'])))
    return rows


def targets(show_text, gateway, iqn_prefix):
    """``tgtadm --mode target --op show`` -> Seen target rows.

    Only targets under the plugin's IQN prefix whose name ends in a node
    UUID (``<prefix>:<uuid>``).
    """
    rows = []
    for t in tgt_show.parse_targets(show_text):
        if not t.iqn.startswith(iqn_prefix + ':'):
            continue
        node = _uuid_in(t.iqn[len(iqn_prefix) + 1:])
        if node:
            rows.append(Seen('target', node, '%s %s (tid %d)'
                             % (gateway, t.iqn, t.tid)))
    return rows


def accounts(show_text, gateway, user_prefix):
    """``tgtadm --mode account --op show`` -> Seen account rows.

    tgt 1.0.85 prints ``Account list:`` and one indented user a line.
    """
    rows = []
    for line in show_text.splitlines():
        user = line.strip()
        if not line.startswith((' ', '\t')) or not user.startswith(
                user_prefix):
            continue
        node = _uuid_in(user[len(user_prefix):])
        if node:
            rows.append(Seen('account', node, '%s CHAP user %s'
                             % (gateway, user)))
    return rows


def boot_files(root, macs):
    """A node's iPXE files under an HTTP root -> Seen boot_file rows.

    ``<uuid>/config`` (Ironic's ipxe interface and the per-project copy:
    it holds the CHAP secret) and ``pxelinux.cfg/<mac>``, mapped to a
    node through ``macs`` ({MAC: node UUID}, any case or separator).
    """
    rows = []
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return rows
    by_mac = {m.lower().replace(':', '-'): n for m, n in macs.items()}
    for name in sorted(names):
        path = os.path.join(root, name)
        node = _uuid_in(name) if UUID_RE.fullmatch(name.lower()) else None
        if node and os.path.isdir(path):
            rows.append(Seen('boot_file', node, path))
        elif name == 'pxelinux.cfg' and os.path.isdir(path):
            for entry in sorted(os.listdir(path)):
                node = by_mac.get(entry.lower())
                if node:
                    rows.append(Seen('boot_file', node,
                                     os.path.join(path, entry)))
    return rows


def lock_files(lock_dir):
    """The plugin's tooz file locks naming a node -> Seen lock_file rows.

    tooz's file driver (tooz 6.x) keeps one file per lock name
    (``bmi-export-<uuid>``) and never removes it.
    """
    rows = []
    try:
        names = os.listdir(lock_dir)
    except FileNotFoundError:
        return rows
    for name in sorted(names):
        node = _uuid_in(name)
        if node:
            rows.append(Seen('lock_file', node,
                             os.path.join(lock_dir, name)))
    return rows


def hil_attachments(node_info, node_uuid):
    """HIL's ``GET /v0/node/<name>`` answer -> Seen hil_attachment rows.

    One row per (nic, channel, network) HIL still has on the node.
    """
    if isinstance(node_info, str):
        node_info = json.loads(node_info)
    rows = []
    for nic in node_info.get('nics') or []:
        for channel, net in sorted((nic.get('networks') or {}).items()):
            rows.append(Seen('hil_attachment', node_uuid, '%s %s %s: %s' % (
                node_info.get('name'), nic.get('label'), channel, net)))
    return rows


def volume_targets(rows):
    """Ironic's volume targets ([{'node_uuid', 'uuid', ...}])."""
    return [Seen('volume_target', r['node_uuid'], 'VolumeTarget %s'
                 % r['uuid']) for r in rows]


def leaks(seen, nodes, deleted=()):
    """The rows of ``seen`` that are leaks.

    :param seen: Seen rows of every source.
    :param nodes: {uuid: provision_state} of the soak's nodes Ironic has.
    :param deleted: UUIDs of the soak's nodes Ironic no longer has.
    :returns: the leaked rows, sorted: everything of a node that is not
        ``active`` (or that was deleted). Rows of nodes the soak does not
        know (another test's) are not its business.
    """
    deleted = set(deleted)
    out = []
    for row in seen:
        state = nodes.get(row.node)
        if state is None and row.node not in deleted:
            continue
        if state == 'active':
            continue
        out.append(row)
    return sorted(set(out))


def summary(rows):
    """{kind: count} of ``rows``, every kind named."""
    counts = collections.Counter(r.kind for r in rows)
    return {k: counts.get(k, 0) for k in KINDS}
