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

"""The periodic reconcile of the ``bmi`` deploy interface (issue 12).

Run by the conductor every ``[bmi] reconcile_interval`` seconds and once
at its start (:meth:`BMIDeploy.reconcile_exports`):

1. every ACTIVE bmi node this conductor deployed or took over (Ironic's
   ``conductor_affinity``: the hash ring alone would drop a node the ring
   has moved before Ironic took it over) has its target, LUNs and CHAP
   account on this conductor's target daemon as its clone's record in
   Ceph says (re-created when tgtd lost them);
2. nothing else of ours is exported there: targets under ``[iscsi]
   iqn_prefix`` of nodes that are another conductor's, deleted, or in a
   state without a disk are removed;
3. the clones (and their config drives, ephemeral and swap disks, also
   those left without a clone), targets, accounts and boot files of nodes
   Ironic no longer has (deleted, also in maintenance: Ironic 39.0.0's
   ``destroy_node`` loads no driver and calls no interface) are removed
   once they have been seen gone for ``[bmi] orphan_grace`` seconds (a
   target of a node unknown to Ironic too), after its HIL node has left
   the networks of that deployment (the record its clone carries,
   :func:`release_network`, under the node's export lock: two conductors
   never release the same node at once, the second one leaves it to the
   first).  Only clones owned by our ``[iscsi] iqn_prefix`` are ours
   (:func:`_ours`): another Ironic sharing the pool and the gateway needs
   a prefix of its own (doc/export.md);
4. the same leftovers of a node Ironic has again at rest (enroll,
   manageable, available: no disk) are removed once they have been seen
   for ``[bmi] orphan_grace`` seconds, under an exclusive Ironic lock of
   the node so that no deploy can start meanwhile: a node deleted while
   ACTIVE and enrolled again with its UUID, never deployed since (a
   deploy removes a clone of another deployment itself, see
   ``rbd_iscsi._disk_of_deployment``).  Only this conductor's nodes (the
   hash ring).

Races: a node that Ironic has locked (a reservation: deploy, undeploy,
power actions...) is never touched; the check is made again under the
node's export lock (``export-<uuid>``, :mod:`bmi_driver.common.locks`),
which every export and unexport of the node takes too.  Every repair is
logged and recorded in the node's history.

Part of the deploy interface: it imports Ironic.
"""

import os
import time

from ironic.common import exception as ironic_exc
from ironic.common import states
from ironic.conductor import task_manager
from ironic.conductor import utils as manager_utils
from ironic import objects
from oslo_log import log

from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.network import boot_files
from bmi_driver.network import boot_networks
from bmi_driver.network import hil
from bmi_driver.storage.ceph import library
from bmi_driver.storage.export import manager as export_manager
from bmi_driver.storage import layout
from bmi_driver.storage import rbd_iscsi

LOG = log.getLogger(__name__)

# The deploy interface's name (setup.cfg, ironic.hardware.interfaces.deploy).
DEPLOY_INTERFACE = 'bmi'
EVENT_TYPE = 'monitoring'

# States in which a node has no disk: a target of it is a leftover.
# (Cleaning, error and failed states are left to undeploy and its retries.)
_NO_DISK_STATES = frozenset([states.ENROLL, states.VERIFYING,
                             states.MANAGEABLE, states.AVAILABLE,
                             states.INSPECTING, states.INSPECTWAIT,
                             states.INSPECTFAIL])

# States in which a node has no disk and gets one only under Ironic's
# lock (a deploy): a disk or boot files of it are an earlier deployment's.
_AT_REST_STATES = frozenset([states.ENROLL, states.MANAGEABLE,
                             states.AVAILABLE])

# Node clones without a node in Ironic, by UUID: when first seen so.
_gone_since = {}
# Targets on this gateway of nodes Ironic does not have, by UUID: when
# first seen so.  Not _gone_since: sweep_deleted forgets every node that
# has no disk in the pool, and such a target may outlive its disk (removed
# by another conductor's sweep, or by an undeploy tgtd did not answer).
_stray_since = {}
# Nodes at rest with leftovers of an earlier deployment: when first seen so.
_stale_since = {}


def record(node, event, error=False):
    """Log ``event`` and add it to the node's history."""
    (LOG.error if error else LOG.info)('Node %(node)s: %(event)s',
                                       {'node': node.uuid, 'event': event})
    try:
        manager_utils.node_history_record(node, event=event,
                                          event_type=EVENT_TYPE, error=error)
    except Exception as e:
        LOG.warning('Node %(node)s: could not record history: %(err)s',
                    {'node': node.uuid, 'err': e})


def _get_node(context, node_uuid):
    try:
        return objects.Node.get_by_uuid(context, node_uuid)
    except ironic_exc.NodeNotFound:
        return None


def _mapped_here(manager, node):
    # Ironic 39.0.0 base_manager: the hash ring check iter_nodes uses.
    return manager._mapped_to_this_conductor(node.uuid, node.driver,
                                             node.conductor_group)


def _ours_by_affinity(manager, affinity):
    """Whether this conductor deployed or took over the node.

    Ironic 39.0.0 sets ``conductor_affinity`` at deploy and take-over
    (``_do_takeover``, also from ``_sync_local_state`` up to its interval
    after the ring moved a node): until then the previous conductor's
    gateway serves the node, and this one must not export it twice.
    """
    return affinity is None or affinity == manager.conductor.id


def _serves(manager, node):
    """Whether this conductor must serve ``node``'s disk now."""
    return (node is not None and node.reservation is None
            and node.deploy_interface == DEPLOY_INTERFACE
            and node.provision_state == states.ACTIVE
            and _mapped_here(manager, node)
            and _ours_by_affinity(manager, node.conductor_affinity))


def _is_stray(manager, context, node_uuid):
    """Whether this conductor's gateway must not serve ``node_uuid``.

    Asked under the node's export lock: a node Ironic holds is never
    stray (it may be deploying right now).
    """
    node = _get_node(context, node_uuid)
    if node is None:
        # Not in Ironic (deleted, or exported by hand): after the grace.
        return _gone_long_enough(node_uuid, since=_stray_since)
    # Enrolled again: a later delete starts a new grace.
    _stray_since.pop(node_uuid, None)
    if node.reservation is not None:
        return False
    if (node.deploy_interface != DEPLOY_INTERFACE
            or node.provision_state in _NO_DISK_STATES):
        # No gateway serves such a node, wherever the ring maps it: an
        # undeploy on the conductor the ring moved it to before the take-
        # over removed only that conductor's target (Ironic 39.0.0 sets
        # conductor_affinity at deploy and take-over, not at tear down).
        return True
    if not _mapped_here(manager, node):
        # Taken over by another conductor (not merely mapped elsewhere:
        # until the take-over this gateway is still the node's).
        return not _ours_by_affinity(manager, node.conductor_affinity)
    return False


def _gone_long_enough(node_uuid, now=None, since=None):
    now = time.monotonic() if now is None else now
    seen = _gone_since if since is None else since
    first = seen.setdefault(node_uuid, now)
    return now - first >= CONF.bmi.orphan_grace


def _ours(disk, prefix):
    """Whether the clone is of this deployment of the plugin.

    Its owner (``bmi.owner``) is our ``[iscsi] iqn_prefix``, or (a clone
    stamped before there was an owner) its recorded IQN is under it:
    another Ironic sharing the clone pool (with its own prefix, as
    doc/export.md asks) keeps its clones.
    """
    meta = disk.metadata or {}
    if meta.get(layout.META_OWNER) == prefix:
        return True
    return (meta.get(layout.META_IQN) or '').startswith(prefix + ':')


def reconcile(manager, context):
    """One run of the periodic reconcile (see the module's text).

    :raises: nothing: every problem is logged (and recorded on the node it
        concerns); the next run tries again.
    """
    try:
        _reconcile_exports(manager, context)
    except Exception as e:
        LOG.error('Reconcile of this conductor\'s iSCSI exports failed: '
                  '%(err)s', {'err': e})
    try:
        held = nodes_with_disks()
    except Exception as e:
        LOG.error('Listing the node disks of the clone pool failed: '
                  '%(err)s', {'err': e})
        return
    try:
        sweep_deleted(manager, context, held=held)
    except Exception as e:
        LOG.error('Sweep of the disks of deleted nodes failed: %(err)s',
                  {'err': e})
    try:
        sweep_at_rest(manager, context, held=held)
    except Exception as e:
        LOG.error('Sweep of the leftovers of nodes at rest failed: %(err)s',
                  {'err': e})


def _reconcile_exports(manager, context):
    wanted = {}
    for node_uuid, _drv, _grp, state, reservation, iface, dii, aff in (
            manager.iter_nodes(fields=['provision_state', 'reservation',
                                       'deploy_interface',
                                       'driver_internal_info',
                                       'conductor_affinity'])):
        if (iface == DEPLOY_INTERFACE and state == states.ACTIVE
                and reservation is None
                and _ours_by_affinity(manager, aff)):
            wanted[node_uuid] = (dii or {}).get(rbd_iscsi.DEPLOYMENT)

    def still_wanted(node_uuid):
        return _serves(manager, _get_node(context, node_uuid))

    asked = set()

    def stray(node_uuid):
        asked.add(node_uuid)
        return _is_stray(manager, context, node_uuid)

    mgr = export_manager.get_manager()
    report = mgr.reconcile(nodes=wanted, is_wanted=still_wanted,
                           is_stray=stray)
    # Forget the targets removed, and those no longer served.
    removed = set(report.removed)
    for node_uuid in list(_stray_since):
        if node_uuid not in asked or mgr.target_iqn(node_uuid) in removed:
            del _stray_since[node_uuid]
    for node_uuid, status in sorted(report.nodes.items()):
        if status in (None, 'unchanged', 'skipped'):
            continue
        node = _get_node(context, node_uuid)
        if node is None:
            continue
        iqn = mgr.target_iqn(node_uuid)
        if status == 'created':
            record(node, 'bmi: the iSCSI target %s was missing on this '
                         'conductor\'s gateway (target daemon restarted?): '
                         're-created with its LUNs and CHAP account from '
                         'Ceph\'s record' % iqn)
        elif status == 'updated':
            record(node, 'bmi: the iSCSI target %s on this conductor\'s '
                         'gateway differed from Ceph\'s record (LUNs, CHAP '
                         'account or ACL): repaired' % iqn)
        elif status == 'lost':
            record(node, 'bmi: the node is ACTIVE but its disk or its export '
                         'record is gone from Ceph: nothing to export; '
                         'rebuild the node', error=True)
        else:
            record(node, 'bmi: re-exporting %s failed: %s'
                   % (iqn, report.failed.get(iqn, status)), error=True)
    for iqn in report.removed:
        LOG.info('Reconcile: target %(iqn)s removed from this conductor\'s '
                 'gateway: its node is not served here', {'iqn': iqn})


def _boot_roots():
    roots = []
    if CONF.deploy.http_root:
        roots.append(CONF.deploy.http_root)
    networks = boot_networks.load() or {}
    roots.extend(sorted({n.http_root for n in networks.values()}))
    return roots


def withdraw_leftover_boot_files(node_uuid):
    """Remove every boot file of ``node_uuid``, MACs unknown; idempotent.

    From Ironic's ``[deploy] http_root`` and every project's root: those
    of a deleted node, or of the node of the same UUID that was deleted
    before this one was enrolled (Ironic 39.0.0's
    ``pxe_utils.prepare_instance_pxe_config`` keeps an existing
    ``<uuid>/config`` and then links no new MAC to it).

    :raises: BootFilesError, BootNetworkConfigError
    """
    for root in _boot_roots():
        boot_files.withdraw_all(root, node_uuid)


def nodes_with_disks():
    """The nodes with a disk of ours in the clone pool, and its metadata.

    A clone, or scratch disks without one (a failed preserving rebuild):
    only those :func:`_ours` says are ours (their owner, or their export's
    IQN, is our ``[iscsi] iqn_prefix``).

    :returns: {node UUID: the clone's metadata (a scratch disk's when
        there is no clone)}.
    :raises: CephError
    """
    prefix = export_manager.get_manager().iqn_prefix()
    lib = library.ImageLibrary()
    held = {d.node_uuid: d.metadata or {} for d in lib.list_node_disks()
            if _ours(d, prefix)}
    for node_uuid, meta in lib.list_cloneless_scratch().items():
        if node_uuid not in held and _ours(
                layout.NodeDisk(node_uuid=node_uuid, pool='', rbd_name='',
                                size=0, metadata=meta), prefix):
            held[node_uuid] = meta or {}
    return held


def release_network(manager, node_uuid, metadata, but=None):
    """Undo in HIL what the deployment recorded on a leftover clone did.

    The clone's ``layout.META_HIL_*`` record (``diskless``'s
    ``_keep_network_record``): its HIL node leaves every network of the
    recorded project, and the project if the plugin connected it
    (:func:`hil.release_deleted_node`). Not while another Ironic node
    (``but``, the node at rest being swept, aside) maps to that HIL node:
    its own deployment, or its at-rest check, owns HIL's state then.

    :returns: False when HIL failed: the caller keeps the clone (it holds
        the record) and the next run tries again.
    """
    record = layout.hil_record(metadata)
    if record is None:
        return True
    users = hil.hil_node_users(record['node'], but=but,
                               dbapi=manager.dbapi)
    if users:
        LOG.info('HIL node %(hil)s of the deployment that node %(node)s '
                 'left is Ironic node %(users)s\'s now: its networks are '
                 'left to it', {'hil': record['node'], 'node': node_uuid,
                                'users': ', '.join(users)})
        return True
    try:
        pairs, freed = hil.release_deleted_node(record)
    except exception.HILError as e:
        LOG.error('Node %(node)s: taking HIL node %(hil)s off the networks '
                  'of its last deployment failed (next run tries again): '
                  '%(err)s', {'node': node_uuid, 'hil': record['node'],
                              'err': e})
        return False
    if pairs or freed:
        LOG.warning('Node %(node)s: HIL node %(hil)s of its last deployment '
                    'was still on %(pairs)s%(freed)s: detached',
                    {'node': node_uuid, 'hil': record['node'],
                     'pairs': ', '.join('%s/%s' % p for p in pairs)
                     or 'no network',
                     'freed': (' and in project %s, which the plugin had '
                               'connected it to' % record['project']
                               if freed else '')})
    return True


def sweep_deleted(manager, context, now=None, held=None):
    """Remove disks, exports and boot files of nodes Ironic no longer has.

    Any conductor may do it (the clone pool is shared); a clone is removed
    only after it has been seen without its node for ``[bmi]
    orphan_grace`` seconds, and only if the node is still missing under
    its export lock.

    :param held: :func:`nodes_with_disks` (default: asked now).
    :returns: the UUIDs of the nodes whose leftovers were removed.
    """
    now = time.monotonic() if now is None else now
    known = {row[0] for row in
             manager.dbapi.get_nodeinfo_list(columns=['uuid'])}
    mgr = export_manager.get_manager()
    held = nodes_with_disks() if held is None else held
    gone = set(held) - known
    for node_uuid in list(_gone_since):
        # Enrolled again, or its leftovers removed by another conductor.
        if node_uuid not in gone:
            del _gone_since[node_uuid]
    removed = []
    for node_uuid in sorted(gone):
        if not _gone_long_enough(node_uuid, now):
            continue

        # Asked under the node's export lock, so that two conductors never
        # ask HIL to detach the same nics at once.  The boot files go
        # before the disk: once the disk is gone, the node is no longer in
        # ``held`` and no later run would find its files.
        def settled(u=node_uuid):
            if (_get_node(context, u) is not None
                    or not release_network(manager, u, held[u])):
                return False
            # Asked again after HIL, which may take minutes: a deploy of
            # a node enrolled again with this UUID meanwhile takes no
            # export lock to replace the leftover clone with its own
            # (rbd_iscsi._disk_of_deployment, clone_for_node), nor to
            # write its boot files; that node's leftovers are
            # sweep_at_rest's.
            if _get_node(context, u) is not None:
                return False
            withdraw_leftover_boot_files(u)
            return True
        try:
            # Not waiting: the holder is another conductor's sweep of this
            # node (HIL may keep it for minutes), and the rest of this
            # reconcile must not wait behind it.
            done = mgr.remove_node(node_uuid, still_gone=settled, timeout=0)
        except exception.LockTimeout:
            LOG.info('Node %(node)s is gone from Ironic and another '
                     'conductor is removing its leftovers: left to it',
                     {'node': node_uuid})
            continue
        except exception.BmiException as e:
            LOG.error('Node %(node)s is gone from Ironic, but removing its '
                      'disk, export or boot files failed (next run tries '
                      'again): %(err)s', {'node': node_uuid, 'err': e})
            continue
        if done:
            # Not before: after a HIL failure the next run tries again at
            # once, without a new grace.
            _gone_since.pop(node_uuid, None)
            LOG.warning('Node %(node)s was deleted from Ironic with its disk '
                        'still there: its clone, target, CHAP account and '
                        'boot files were removed', {'node': node_uuid})
            removed.append(node_uuid)
    return removed


def _has_boot_files(node_uuid):
    return any(os.path.isdir(os.path.join(root, node_uuid))
               for root in _boot_roots())


def sweep_at_rest(manager, context, now=None, held=None):
    """Remove what earlier deployments left of this conductor's idle nodes.

    A node in enroll, manageable or available has no disk: a clone (with
    its config drive and scratch disks), target, CHAP account or boot
    files of it are an earlier deployment's, typically of a node deleted
    while ACTIVE (Ironic 39.0.0's delete calls no interface) and enrolled
    again with the same UUID. Seen so for ``[bmi] orphan_grace`` seconds,
    they are removed under an exclusive Ironic lock of the node (no
    deploy can start meanwhile), and the removal is recorded in the
    node's history.

    :param held: :func:`nodes_with_disks` (default: asked now).
    :returns: the UUIDs of the nodes whose leftovers were removed.
    """
    now = time.monotonic() if now is None else now
    held = nodes_with_disks() if held is None else held
    stale = set()
    for node_uuid, _drv, _grp, state, reservation in manager.iter_nodes(
            fields=['provision_state', 'reservation']):
        if (state in _AT_REST_STATES and reservation is None
                and (node_uuid in held or _has_boot_files(node_uuid))):
            stale.add(node_uuid)
    for node_uuid in list(_stale_since):
        if node_uuid not in stale:
            del _stale_since[node_uuid]
    removed = []
    for node_uuid in sorted(stale):
        since = _stale_since.setdefault(node_uuid, now)
        if now - since < CONF.bmi.orphan_grace:
            continue
        try:
            with task_manager.acquire(
                    context, node_uuid, shared=False,
                    purpose='removing the leftovers of an earlier '
                            'deployment') as task:
                node = task.node
                if node.provision_state not in _AT_REST_STATES:
                    continue
                if not release_network(manager, node_uuid,
                                       held.get(node_uuid), but=node_uuid):
                    continue
                export_manager.get_manager().remove_node(node_uuid)
                withdraw_leftover_boot_files(node_uuid)
                record(node, 'bmi: the node is %s, but the disk, iSCSI '
                             'export or boot files of an earlier deployment '
                             'were still there (the node was deleted and '
                             'enrolled again?): removed'
                       % node.provision_state)
        except (ironic_exc.NodeLocked, ironic_exc.NodeNotFound):
            continue
        except (exception.BmiException, ironic_exc.IronicException) as e:
            LOG.error('Node %(node)s: removing the leftovers of an earlier '
                      'deployment failed (next run tries again): %(err)s',
                      {'node': node_uuid, 'err': e})
            continue
        _stale_since.pop(node_uuid, None)
        removed.append(node_uuid)
    return removed


def reset():
    """Forget what the sweeps have seen (tests)."""
    _gone_since.clear()
    _stray_since.clear()
    _stale_since.clear()
