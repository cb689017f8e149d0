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

"""iSCSI exports of node disks: one target per node over its RBD clone.

:class:`ExportManager` is what callers use.  It decides what each node's
target serves and records it in Ceph, then has the export backend (chosen
by stevedore from ``[iscsi] export_backend`` in the
``bmi_driver.export_backends`` namespace) make the target daemon serve it.

Ceph is the single record.  The export of a node is kept in the RBD
metadata of its clone (``bmi.export.*``, :mod:`bmi_driver.storage.layout`),
so that :meth:`ExportManager.reconcile` can rebuild every target after the
target daemon restarts (tgtd keeps nothing) or on another gateway.  The CHAP
secret is therefore readable by anyone who may read the clone pool's
metadata (the cephx users of the plugin and of tgtd, and Ceph admins); it is
never logged nor put in an exception message.

Node disks: LUN 1 is the node's clone, LUN 2 its config drive
(``node-<uuid>-config``) when it has one.  Every name (IQNs, initiator
addresses, node UUIDs) is checked by
:mod:`~bmi_driver.storage.export.iscsi_names` before anything is recorded.

One manager serves a process (:func:`get_manager`): stevedore loads the
backend once, and the backend's caches (tgt's tid cache) live as long.
"""

import contextlib
import dataclasses
import secrets
import string
import threading

from oslo_log import log
from oslo_utils import excutils
from stevedore import driver as stevedore_driver
from stevedore import exception as stevedore_exc

from bmi_driver.common import locks
from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.storage.ceph import library as ceph_library
from bmi_driver.storage.export import base
from bmi_driver.storage.export import iscsi_names
from bmi_driver.storage import layout

LOG = log.getLogger(__name__)

NAMESPACE = 'bmi_driver.export_backends'

CHAP_USER_PREFIX = 'bmi-'
_SECRET_ALPHABET = string.ascii_letters + string.digits
# reconcile(nodes=...): a node no longer to be served when its turn came.
SKIPPED = 'skipped'

# The name checks live in iscsi_names; reachable here for callers.
IQN_MAX = iscsi_names.IQN_MAX
check_iscsi_name = iscsi_names.check_iscsi_name
check_initiator_address = iscsi_names.check_initiator_address
check_node_uuid = iscsi_names.check_node_uuid


def load_backend(name=None):
    """The export backend ``name`` (default ``[iscsi] export_backend``).

    :raises: ExportBackendNotFound when it cannot be loaded.
    """
    name = name or CONF.iscsi.export_backend

    def _failed(_manager, entrypoint, err):
        if isinstance(err, exception.BmiException):
            raise err
        raise exception.ExportBackendNotFound(
            name=name, reason='%s: %s' % (entrypoint, err))

    try:
        mgr = stevedore_driver.DriverManager(
            NAMESPACE, name, invoke_on_load=True,
            on_load_failure_callback=_failed)
    except stevedore_exc.NoMatches:
        raise exception.ExportBackendNotFound(
            name=name, reason='no entry point in namespace %s' % NAMESPACE)
    return mgr.driver


@dataclasses.dataclass(frozen=True)
class NodeExport:
    """How a node reaches its disk. ``repr`` hides the CHAP secret."""

    node_uuid: str
    target_iqn: str
    portal: str
    luns: dict
    chap_username: str = None
    chap_secret: str = dataclasses.field(default=None, repr=False)
    initiator_iqn: str = None


@dataclasses.dataclass
class ReconcileReport:
    """What reconcile() found and did, by target IQN."""

    created: list = dataclasses.field(default_factory=list)
    updated: list = dataclasses.field(default_factory=list)
    unchanged: list = dataclasses.field(default_factory=list)
    removed: list = dataclasses.field(default_factory=list)
    foreign: list = dataclasses.field(default_factory=list)
    failed: dict = dataclasses.field(default_factory=dict)
    # reconcile(nodes=...): nodes whose clone or record is gone, and the
    # status of every node asked for (created, updated, unchanged, lost,
    # failed).
    lost: list = dataclasses.field(default_factory=list)
    nodes: dict = dataclasses.field(default_factory=dict)


def _recorded(disk):
    """The target the metadata of the node's ``disk`` records, or None."""
    metadata = disk.metadata or {}
    if not metadata.get(layout.META_IQN):
        return None
    return base.ExportTarget(
        iqn=metadata[layout.META_IQN], luns=layout.target_luns(disk),
        initiator_iqn=metadata.get(layout.META_INITIATOR) or None,
        initiator_address=(metadata.get(layout.META_INITIATOR_ADDRESS)
                           or None),
        chap_username=metadata.get(layout.META_CHAP_USER) or None,
        chap_secret=metadata.get(layout.META_CHAP_SECRET) or None)


def _recorded_portal(disk):
    """The portal the node was told, or None (the configured one)."""
    return (disk.metadata or {}).get(layout.META_PORTAL) or None


def _record(target, portal=None):
    """The clone metadata that records ``target`` (told at ``portal``)."""
    return {layout.META_IQN: target.iqn,
            layout.META_INITIATOR: target.initiator_iqn or '',
            layout.META_INITIATOR_ADDRESS: target.initiator_address or '',
            layout.META_CHAP_USER: target.chap_username or '',
            layout.META_CHAP_SECRET: target.chap_secret or '',
            layout.META_PORTAL: portal or ''}


def _current_record(disk):
    """What the clone's metadata says of the export now, or None."""
    metadata = disk.metadata or {}
    if not metadata.get(layout.META_IQN):
        return None
    return {k: metadata.get(k, '') for k in layout.EXPORT_KEYS}


def _new_secret():
    return ''.join(secrets.choice(_SECRET_ALPHABET)
                   for _ in range(CONF.iscsi.chap_secret_length))


class ExportManager:
    """Exports node disks through the configured backend."""

    def __init__(self, backend=None, library=None):
        self.backend = backend if backend is not None else load_backend()
        self._library = library

    @property
    def library(self):
        if self._library is None:
            self._library = ceph_library.ImageLibrary()
        return self._library

    # --- names --------------------------------------------------------------

    @staticmethod
    def iqn_prefix():
        prefix = CONF.iscsi.iqn_prefix
        check_iscsi_name('[iscsi] iqn_prefix', prefix)
        return prefix

    def target_iqn(self, node_uuid):
        """The IQN of a node's target: ``<iqn_prefix>:<node uuid>``."""
        iqn = '%s:%s' % (self.iqn_prefix(), check_node_uuid(node_uuid))
        return check_iscsi_name('target IQN', iqn)

    @staticmethod
    def chap_username(node_uuid):
        return CHAP_USER_PREFIX + node_uuid

    @staticmethod
    def portal():
        address = CONF.iscsi.portal_address
        if ':' in address:
            address = '[%s]' % address
        return '%s:%d' % (address, CONF.iscsi.portal_port)

    # --- operations ---------------------------------------------------------

    def check(self):
        """Raise TargetDaemonUnavailable when the daemon is not reachable."""
        self.backend.check()

    def export_node(self, node_uuid, initiator_iqn=None,
                    fresh_credentials=False, portal=None,
                    initiator_address=None):
        """Export a node's clone (LUN 1) and config drive (LUN 2).

        ``portal`` (``address:port``) is what the node is told (default:
        ``[iscsi] portal_address``/``portal_port``), ``initiator_address``
        (an address or ``network/prefix``) the only initiators the target
        accepts (default: ``[iscsi] initiator_network``; neither: by
        initiator name when known, else any that passes CHAP): a
        per-project boot network gives both.

        Idempotent: an exported node keeps its target and credentials; a
        given ``initiator_iqn`` replaces the recorded one.  With
        ``fresh_credentials`` (every deploy and rebuild) the node gets a new
        CHAP secret even when its clone records one from an earlier
        attempt; a target already served is then re-created (its sessions
        end: the node is powered off while it is deployed).

        :raises InvalidName: bad node UUID or initiator IQN (nothing done).
        :raises CloneNotFound: the node has no clone (nothing done).
        :raises TargetDaemonUnavailable, ExportError: nothing is left
            half-made.
        """
        node_uuid = check_node_uuid(node_uuid)
        iqn = self.target_iqn(node_uuid)
        if initiator_iqn is not None:
            check_iscsi_name('initiator IQN', initiator_iqn)
        initiator_address = check_initiator_address(
            initiator_address or CONF.iscsi.initiator_network or None)
        with locks.lock('export-%s' % node_uuid):
            disk = self.library.get_node_disk(node_uuid)
            recorded = _recorded(disk)
            old_record = _current_record(disk)
            wanted = self._wanted(node_uuid, iqn, disk, recorded,
                                  initiator_iqn, fresh_credentials,
                                  initiator_address)
            if (fresh_credentials and recorded is not None
                    and recorded.chap_username):
                # tgtd cannot say which secret an account has: drop the
                # target and its account so that the new one is served.
                self.backend.remove_target(
                    recorded.iqn, chap_username=recorded.chap_username)
            new_record = _record(wanted, portal)
            if new_record != old_record:
                self.library.set_node_metadata(node_uuid, new_record)
            try:
                # Without a record, a target of this name is a leftover
                # (an unexport tgtd did not answer, the clone then
                # removed): ``replace`` drops it, as above.
                _served, status = self.backend.ensure_target(
                    wanted, replace=fresh_credentials)
            except Exception:
                with excutils.save_and_reraise_exception():
                    self._restore_record(node_uuid, old_record, new_record)
        LOG.info('Node %(node)s exported as %(iqn)s (%(status)s, '
                 'initiators %(ini)s, CHAP %(chap)s)',
                 {'node': node_uuid, 'iqn': wanted.iqn, 'status': status,
                  'ini': (wanted.initiator_address or wanted.initiator_iqn
                          or 'any'),
                  'chap': 'on' if wanted.chap_username else 'off'})
        return self._node_export(node_uuid, wanted, portal)

    def _wanted(self, node_uuid, iqn, disk, recorded, initiator_iqn,
                fresh_credentials=False, initiator_address=None):
        initiator = initiator_iqn or (recorded and recorded.initiator_iqn)
        if (not initiator
                and CONF.iscsi.initiator_binding == 'required'):
            raise exception.InvalidInput(
                reason='node %s has no known initiator IQN and [iscsi] '
                       'initiator_binding is "required"' % node_uuid)
        user = secret = None
        if CONF.iscsi.chap:
            if (recorded and recorded.chap_username and recorded.chap_secret
                    and not fresh_credentials):
                user, secret = recorded.chap_username, recorded.chap_secret
            else:
                user, secret = self.chap_username(node_uuid), _new_secret()
        return base.ExportTarget(iqn=recorded.iqn if recorded else iqn,
                                 luns=layout.target_luns(disk),
                                 initiator_iqn=initiator or None,
                                 initiator_address=initiator_address,
                                 chap_username=user, chap_secret=secret)

    def _restore_record(self, node_uuid, old_record, new_record):
        if new_record == old_record:
            return
        try:
            if old_record is None:
                self.library.remove_node_metadata(node_uuid,
                                                  layout.EXPORT_KEYS)
            else:
                self.library.set_node_metadata(node_uuid, old_record)
        except Exception as e:
            LOG.error('Could not restore the export record of node '
                      '%(node)s: %(err)s', {'node': node_uuid, 'err': e})

    def _node_export(self, node_uuid, target, portal=None):
        return NodeExport(node_uuid=node_uuid, target_iqn=target.iqn,
                          portal=portal or self.portal(), luns=target.luns,
                          chap_username=target.chap_username,
                          chap_secret=target.chap_secret,
                          initiator_iqn=target.initiator_iqn)

    def unexport_node(self, node_uuid):
        """Stop serving a node's disk and forget its export.

        A missing export is fine.  The target goes first: a failure keeps
        the record, so a retry (or reconcile) finds everything again.

        :raises: InvalidName for a bad node UUID.
        :raises: TargetDaemonUnavailable, ExportError, CephError
        """
        node_uuid = check_node_uuid(node_uuid)
        iqn = self.target_iqn(node_uuid)
        with locks.lock('export-%s' % node_uuid):
            try:
                disk = self.library.get_node_disk(node_uuid)
            except exception.CloneNotFound:
                disk = None
            recorded = _recorded(disk) if disk else None
            user = self.chap_username(node_uuid)
            iqns = {iqn}
            if recorded is not None:
                iqns.add(recorded.iqn)
                user = recorded.chap_username or user
            for name in sorted(iqns):
                self.backend.remove_target(name, chap_username=user)
            if recorded is not None:
                try:
                    self.library.remove_node_metadata(node_uuid,
                                                      layout.EXPORT_KEYS)
                except exception.CloneNotFound:
                    pass
        LOG.info('Node %(node)s is not exported any more', {'node': node_uuid})

    def get_export(self, node_uuid):
        """The node's export when it is recorded and served, else None."""
        node_uuid = check_node_uuid(node_uuid)
        try:
            disk = self.library.get_node_disk(node_uuid)
        except exception.CloneNotFound:
            return None
        recorded = _recorded(disk)
        if recorded is None or self.backend.get_target(recorded.iqn) is None:
            return None
        return self._node_export(node_uuid, recorded, _recorded_portal(disk))

    def list_exports(self):
        """Every recorded export and every target of ours.

        :returns: [(NodeExport, ServedTarget or None)] of every recorded
            export, then [(None, ServedTarget)] of our targets that nothing
            records.
        :raises: TargetDaemonUnavailable, CephError
        """
        served = {t.iqn: t for t in self.backend.list_targets()}
        rows = []
        for disk in self.library.list_node_disks():
            recorded = _recorded(disk)
            if recorded is not None:
                rows.append((self._node_export(disk.node_uuid, recorded,
                                               _recorded_portal(disk)),
                             served.pop(recorded.iqn, None)))
        ours = self.iqn_prefix() + ':'
        rows.extend((None, t) for iqn, t in sorted(served.items())
                    if iqn.startswith(ours))
        return rows

    def reconcile(self, nodes=None, is_stray=None, is_wanted=None):
        """Make the target daemon serve what Ceph records, and only that.

        ``nodes`` None (``bmi-manage target reconcile``, one gateway for
        every node): re-creates (or repairs) the target of every node whose
        clone records an export, and removes the targets under our IQN
        prefix that no clone records.

        ``nodes`` given (the conductor's periodic, one gateway per
        conductor): ``{node uuid: deployment id or None}`` of the nodes
        this gateway must serve; only their targets are re-created (a clone
        of another deployment than the one given is not exported:
        ``report.failed``), and every other target under our prefix is
        removed when ``is_stray(node_uuid)``, asked under the node's export
        lock, says so (None: always); the records in Ceph are left alone
        (another gateway may serve the node now).  ``is_wanted(node_uuid)``,
        asked under the node's export lock too, can call off the repair of
        a node of ``nodes`` (status ``skipped``: undeployed meanwhile).

        Targets of others are left alone.  A node that fails is reported
        and does not stop the others.

        :returns: ReconcileReport (``report.nodes``: {node uuid: status})
        :raises TargetDaemonUnavailable: the daemon is not reachable.
        """
        report = ReconcileReport()
        expected = {}
        if nodes is None:
            for disk in self.library.list_node_disks():
                recorded = _recorded(disk)
                if recorded is not None:
                    expected[recorded.iqn] = disk.node_uuid
            wanted = {}
        else:
            wanted = {check_node_uuid(u): d for u, d in dict(nodes).items()}
            expected = {self.target_iqn(u): u for u in wanted}
        served = self.backend.list_targets()

        for iqn, node_uuid in sorted(expected.items()):
            try:
                status = self._reconcile_node(node_uuid,
                                              wanted.get(node_uuid),
                                              is_wanted)
            except exception.TargetDaemonUnavailable:
                raise
            except exception.BmiException as e:
                LOG.error('Reconcile: target %(iqn)s of node %(node)s: '
                          '%(err)s', {'iqn': iqn, 'node': node_uuid,
                                      'err': e})
                report.failed[iqn] = str(e)
                report.nodes[node_uuid] = 'failed'
                continue
            report.nodes[node_uuid] = status or 'lost'
            if status == SKIPPED:
                continue
            if status is not None:
                getattr(report, status).append(iqn)
            elif nodes is not None:
                report.lost.append(node_uuid)

        ours = self.iqn_prefix() + ':'
        for target in served:
            if target.iqn in expected:
                continue
            if not target.iqn.startswith(ours):
                report.foreign.append(target.iqn)
                continue
            try:
                if nodes is None:
                    removed = self._remove_orphan(target.iqn[len(ours):],
                                                  target.iqn)
                else:
                    removed = self._remove_stray(target.iqn[len(ours):],
                                                 target.iqn, is_stray)
                if removed:
                    report.removed.append(target.iqn)
            except exception.TargetDaemonUnavailable:
                raise
            except exception.BmiException as e:
                LOG.error('Reconcile: orphan target %(iqn)s: %(err)s',
                          {'iqn': target.iqn, 'err': e})
                report.failed[target.iqn] = str(e)
        LOG.info('Reconcile: %(c)d created, %(u)d repaired, %(k)d fine, '
                 '%(r)d orphan(s) removed, %(f)d failed',
                 {'c': len(report.created), 'u': len(report.updated),
                  'k': len(report.unchanged), 'r': len(report.removed),
                  'f': len(report.failed)})
        return report

    def _remove_stray(self, suffix, iqn, is_stray):
        """Remove a target of ours this gateway must not serve (see reconcile).

        Its record in Ceph stays: the node may be served by another
        gateway, or be deployed here right now (``is_stray`` says no then).
        """
        try:
            node_uuid = check_node_uuid(suffix)
        except exception.InvalidName:
            node_uuid = None
        guard = (locks.lock('export-%s' % node_uuid) if node_uuid
                 else contextlib.nullcontext())
        with guard:
            if node_uuid and is_stray is not None and not is_stray(node_uuid):
                return False
            self.backend.remove_target(
                iqn, chap_username=(self.chap_username(node_uuid)
                                    if node_uuid else None))
        LOG.info('Reconcile: removed target %(iqn)s, which this gateway '
                 'must not serve', {'iqn': iqn})
        return True

    def verify_export(self, node_uuid):
        """Check that the daemon serves the node's export as Ceph records.

        The target, every recorded LUN and the CHAP account must be there
        (what a node needs to boot); the deploy step asks before power-on.

        :raises ExportNotServed: with what is missing.
        :raises CloneNotFound, TargetDaemonUnavailable, CephError
        """
        node_uuid = check_node_uuid(node_uuid)
        disk = self.library.get_node_disk(node_uuid)
        recorded = _recorded(disk)
        if recorded is None:
            raise exception.ExportNotServed(
                node=node_uuid, reason='its clone records no export')
        served = self.backend.get_target(recorded.iqn)
        if served is None:
            raise exception.ExportNotServed(
                node=node_uuid, reason='no target %s' % recorded.iqn)
        if served.uncertain:
            # tgtd serves it (its own list says so); what it serves cannot
            # be read while an initiator writes into the listing.
            LOG.warning('Node %(node)s: target %(iqn)s is served, but its '
                        'LUNs and account cannot be checked (tgtd\'s '
                        'listing holds lines an initiator wrote)',
                        {'node': node_uuid, 'iqn': recorded.iqn})
            return self._node_export(node_uuid, recorded,
                                     _recorded_portal(disk))
        missing = sorted(set(recorded.luns) - set(served.luns))
        if missing:
            raise exception.ExportNotServed(
                node=node_uuid, reason='target %s lacks LUN(s) %s' % (
                    recorded.iqn, ', '.join(map(str, missing))))
        if (recorded.chap_username
                and recorded.chap_username not in served.accounts):
            raise exception.ExportNotServed(
                node=node_uuid, reason='target %s has no CHAP account %s'
                % (recorded.iqn, recorded.chap_username))
        return self._node_export(node_uuid, recorded, _recorded_portal(disk))

    def remove_node(self, node_uuid, still_gone=None, timeout=None):
        """Remove the export and the disk of a node that must have none.

        A node Ironic no longer has, or one at rest with an earlier
        deployment's disk (``deploy/heal.py``). Under the node's export
        lock; ``still_gone()``, asked under it, can call it off (the node
        was enrolled again meanwhile, or what must be undone first, such
        as its HIL networks, could not be yet).

        :param timeout: seconds to wait for that lock (default
            ``[coordination] lock_timeout``).
        :returns: True when something was removed.
        :raises: TargetDaemonUnavailable, ExportError, CephError,
            LockTimeout
        """
        node_uuid = check_node_uuid(node_uuid)
        with locks.lock('export-%s' % node_uuid, timeout=timeout):
            if still_gone is not None and not still_gone():
                return False
            self.backend.remove_target(self.target_iqn(node_uuid),
                                       chap_username=self.chap_username(
                                           node_uuid))
            try:
                # As at undeploy: nothing may serve this disk now, so a
                # watch still on it is a dead gateway's (or a taken-over
                # one's, whose conductor sweeps it too) and is blocklisted;
                # without that the sweep met ImageBusy at every run.
                self.library.remove_node_disk(node_uuid, stale_watch=True)
            except exception.CloneNotFound:
                pass
        LOG.info('Node %(node)s: its leftover target, CHAP account and '
                 'disk were removed', {'node': node_uuid})
        return True

    def _reconcile_node(self, node_uuid, deployment=None, is_wanted=None):
        with locks.lock('export-%s' % node_uuid):
            if is_wanted is not None and not is_wanted(node_uuid):
                return SKIPPED
            # Read again under the lock: it may have changed meanwhile.
            try:
                disk = self.library.get_node_disk(node_uuid)
            except exception.CloneNotFound:
                return None
            recorded = _recorded(disk)
            if recorded is None:
                return None
            found = layout.disk_deployment(disk)
            if deployment and found != deployment:
                raise exception.StaleDisk(node=node_uuid, clone=disk.spec,
                                          found=found or '(none)',
                                          expected=deployment)
            _served, status = self.backend.ensure_target(recorded)
        if status != base.UNCHANGED:
            LOG.info('Reconcile: target %(iqn)s of node %(node)s %(st)s',
                     {'iqn': recorded.iqn, 'node': node_uuid, 'st': status})
        return status

    def _remove_orphan(self, suffix, iqn):
        try:
            node_uuid = check_node_uuid(suffix)
        except exception.InvalidName:
            node_uuid = None
        guard = (locks.lock('export-%s' % node_uuid) if node_uuid
                 else contextlib.nullcontext())
        with guard:
            user = None
            if node_uuid:
                try:
                    disk = self.library.get_node_disk(node_uuid)
                except exception.CloneNotFound:
                    disk = None
                recorded = _recorded(disk) if disk else None
                if recorded is not None and recorded.iqn == iqn:
                    return False  # exported meanwhile
                user = self.chap_username(node_uuid)
            self.backend.remove_target(iqn, chap_username=user)
        LOG.info('Reconcile: removed orphan target %(iqn)s', {'iqn': iqn})
        return True


_MANAGER = None
_MANAGER_LOCK = threading.Lock()


def get_manager():
    """The process's export manager, made on first use.

    :raises: ExportBackendNotFound when the backend cannot be loaded (the
        next call tries again).
    """
    global _MANAGER
    with _MANAGER_LOCK:
        if _MANAGER is None:
            _MANAGER = ExportManager()
        return _MANAGER


def reset_manager():
    """Forget the process's export manager (tests, a new configuration)."""
    global _MANAGER
    with _MANAGER_LOCK:
        _MANAGER = None
