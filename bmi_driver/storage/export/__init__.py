"""iSCSI exports of node disks: one target per node over its RBD clone.

:class:`ExportManager` is what callers use.  It decides what each node's
target serves and records it in Ceph, then has the export backend (chosen
by stevedore from ``[iscsi] export_backend`` in the
``bmi_driver.export_backends`` namespace) make the target daemon serve it.

Ceph is the single record.  The export of a node is kept in the RBD
metadata of its clone (``node-<uuid>``)::

    bmi.export.iqn          target IQN, <[iscsi] iqn_prefix>:<node uuid>
    bmi.export.initiator    initiator IQN bound to the target ('' = any)
    bmi.export.chap_user    incoming CHAP user ('' = CHAP off)
    bmi.export.chap_secret  its secret

so that :meth:`ExportManager.reconcile` can rebuild every target after the
target daemon restarts (tgtd keeps nothing) or on another gateway.  The CHAP
secret is therefore readable by anyone who may read the clone pool's
metadata (the cephx users of the plugin and of tgtd, and Ceph admins); it is
never logged nor put in an exception message.

Node disks: LUN 1 is the node's clone, LUN 2 its config drive
(``node-<uuid>-config``) when it has one.
"""

import contextlib
import dataclasses
import re
import secrets
import string

from oslo_log import log
from oslo_utils import excutils
from oslo_utils import uuidutils
from stevedore import driver as stevedore_driver
from stevedore import exception as stevedore_exc

from bmi_driver.common import locks
from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.storage.export import base

LOG = log.getLogger(__name__)

NAMESPACE = 'bmi_driver.export_backends'

META_IQN = 'bmi.export.iqn'
META_INITIATOR = 'bmi.export.initiator'
META_CHAP_USER = 'bmi.export.chap_user'
META_CHAP_SECRET = 'bmi.export.chap_secret'
META_KEYS = (META_IQN, META_INITIATOR, META_CHAP_USER, META_CHAP_SECRET)

DISK_LUN = 1
CONFIGDRIVE_LUN = 2

CHAP_USER_PREFIX = 'bmi-'
_SECRET_ALPHABET = string.ascii_letters + string.digits
# RFC 3720/3722: at most 223 bytes; we accept the plain ASCII subset.
IQN_MAX = 223
_IQN_RE = re.compile(r'^iqn\.[0-9]{4}-(0[1-9]|1[0-2])\.'
                     r'[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*'
                     r'[a-z0-9])?)*(:[a-z0-9.:_-]+)?$')
_EUI_RE = re.compile(r'^eui\.[0-9A-F]{16}$')
_NAA_RE = re.compile(r'^naa\.([0-9A-F]{16}|[0-9A-F]{32})$')


def load_backend(name=None):
    """The export backend ``name`` (default ``[iscsi] export_backend``)."""
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


def check_iscsi_name(kind, value):
    """Check an iSCSI name (iqn., eui. or naa. format); return it."""
    if not isinstance(value, str) or not value:
        raise exception.InvalidName(kind=kind, value=value,
                                    reason='must be a non-empty string')
    if len(value) > IQN_MAX:
        raise exception.InvalidName(kind=kind, value=value,
                                    reason='longer than %d bytes' % IQN_MAX)
    if not (_IQN_RE.match(value) or _EUI_RE.match(value)
            or _NAA_RE.match(value)):
        raise exception.InvalidName(
            kind=kind, value=value,
            reason='not an iSCSI name: expected iqn.yyyy-mm.reversed.domain'
                   '[:name] in lower case, eui.<16 hex> or naa.<16 or 32 '
                   'hex>')
    return value


def check_node_uuid(value):
    """A node UUID, the last part of its target IQN; return it, lower."""
    if not isinstance(value, str) or not uuidutils.is_uuid_like(value):
        raise exception.InvalidName(
            kind='node UUID', value=value,
            reason='not a UUID (it names the node\'s iSCSI target)')
    return value.lower()


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


@dataclasses.dataclass(frozen=True)
class _Spec:
    iqn: str
    initiator_iqn: str = None
    chap_username: str = None
    chap_secret: str = dataclasses.field(default=None, repr=False)

    @classmethod
    def from_metadata(cls, metadata):
        metadata = metadata or {}
        if not metadata.get(META_IQN):
            return None
        return cls(iqn=metadata[META_IQN],
                   initiator_iqn=metadata.get(META_INITIATOR) or None,
                   chap_username=metadata.get(META_CHAP_USER) or None,
                   chap_secret=metadata.get(META_CHAP_SECRET) or None)

    def metadata(self):
        return {META_IQN: self.iqn,
                META_INITIATOR: self.initiator_iqn or '',
                META_CHAP_USER: self.chap_username or '',
                META_CHAP_SECRET: self.chap_secret or ''}


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
            from bmi_driver.storage import images
            self._library = images.ImageLibrary()
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

    def export_node(self, node_uuid, initiator_iqn=None):
        """Export a node's clone (LUN 1) and config drive (LUN 2).

        Idempotent: an exported node keeps its target and credentials; a
        given ``initiator_iqn`` replaces the recorded one.

        :raises InvalidName: bad node UUID or initiator IQN (nothing done).
        :raises CloneNotFound: the node has no clone (nothing done).
        :raises TargetDaemonUnavailable, ExportError: nothing is left
            half-made.
        """
        node_uuid = check_node_uuid(node_uuid)
        iqn = self.target_iqn(node_uuid)
        if initiator_iqn is not None:
            check_iscsi_name('initiator IQN', initiator_iqn)
        with locks.lock('export-%s' % node_uuid):
            disk = self.library.get_node_disk(node_uuid)
            recorded = _Spec.from_metadata(disk.metadata)
            spec = self._wanted_spec(node_uuid, iqn, recorded, initiator_iqn)
            if spec != recorded:
                self.library.set_node_metadata(node_uuid, spec.metadata())
            try:
                _target, status = self.backend.ensure_target(
                    self._target_spec(disk, spec))
            except Exception:
                with excutils.save_and_reraise_exception():
                    self._restore_record(node_uuid, recorded, spec)
        LOG.info('Node %(node)s exported as %(iqn)s (%(status)s, '
                 'initiator %(ini)s, CHAP %(chap)s)',
                 {'node': node_uuid, 'iqn': spec.iqn, 'status': status,
                  'ini': spec.initiator_iqn or 'any',
                  'chap': 'on' if spec.chap_username else 'off'})
        return self._node_export(node_uuid, disk, spec)

    def _wanted_spec(self, node_uuid, iqn, recorded, initiator_iqn):
        initiator = initiator_iqn or (recorded and recorded.initiator_iqn)
        if (not initiator
                and CONF.iscsi.initiator_binding == 'required'):
            raise exception.InvalidInput(
                reason='node %s has no known initiator IQN and [iscsi] '
                       'initiator_binding is "required"' % node_uuid)
        user = secret = None
        if CONF.iscsi.chap:
            if recorded and recorded.chap_username and recorded.chap_secret:
                user, secret = recorded.chap_username, recorded.chap_secret
            else:
                user, secret = self.chap_username(node_uuid), _new_secret()
        return _Spec(iqn=recorded.iqn if recorded else iqn,
                     initiator_iqn=initiator or None,
                     chap_username=user, chap_secret=secret)

    def _restore_record(self, node_uuid, recorded, spec):
        if spec == recorded:
            return
        try:
            if recorded is None:
                self.library.remove_node_metadata(node_uuid, META_KEYS)
            else:
                self.library.set_node_metadata(node_uuid,
                                               recorded.metadata())
        except Exception as e:
            LOG.error('Could not restore the export record of node '
                      '%(node)s: %(err)s', {'node': node_uuid, 'err': e})

    @staticmethod
    def _luns(disk):
        luns = {DISK_LUN: disk.spec}
        if getattr(disk, 'configdrive', None) is not None:
            luns[CONFIGDRIVE_LUN] = disk.configdrive.spec
        return luns

    def _target_spec(self, disk, spec):
        return base.TargetSpec(iqn=spec.iqn, luns=self._luns(disk),
                               initiator_iqn=spec.initiator_iqn,
                               chap_username=spec.chap_username,
                               chap_secret=spec.chap_secret)

    def _node_export(self, node_uuid, disk, spec):
        return NodeExport(node_uuid=node_uuid, target_iqn=spec.iqn,
                          portal=self.portal(), luns=self._luns(disk),
                          chap_username=spec.chap_username,
                          chap_secret=spec.chap_secret,
                          initiator_iqn=spec.initiator_iqn)

    def unexport_node(self, node_uuid):
        """Stop serving a node's disk and forget its export; missing is
        fine.  The target goes first: a failure keeps the record, so a
        retry (or reconcile) finds everything again."""
        node_uuid = check_node_uuid(node_uuid)
        iqn = self.target_iqn(node_uuid)
        with locks.lock('export-%s' % node_uuid):
            try:
                disk = self.library.get_node_disk(node_uuid)
            except exception.CloneNotFound:
                disk = None
            recorded = _Spec.from_metadata(disk.metadata) if disk else None
            user = self.chap_username(node_uuid)
            iqns = {iqn}
            if recorded is not None:
                iqns.add(recorded.iqn)
                user = recorded.chap_username or user
            for name in sorted(iqns):
                self.backend.remove_target(name, chap_username=user)
            if recorded is not None:
                try:
                    self.library.remove_node_metadata(node_uuid, META_KEYS)
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
        spec = _Spec.from_metadata(disk.metadata)
        if spec is None or self.backend.get_target(spec.iqn) is None:
            return None
        return self._node_export(node_uuid, disk, spec)

    def list_exports(self):
        """[(NodeExport, ServedTarget or None)] of every recorded export,
        then [(None, ServedTarget)] of our targets that nothing records."""
        served = {t.iqn: t for t in self.backend.list_targets()}
        rows = []
        for disk in self.library.list_node_disks():
            spec = _Spec.from_metadata(disk.metadata)
            if spec is not None:
                rows.append((self._node_export(disk.node_uuid, disk, spec),
                             served.pop(spec.iqn, None)))
        ours = self.iqn_prefix() + ':'
        rows.extend((None, t) for iqn, t in sorted(served.items())
                    if iqn.startswith(ours))
        return rows

    def reconcile(self):
        """Make the target daemon serve what Ceph records, and only that.

        Re-creates (or repairs) the target of every node whose clone
        records an export, and removes the targets under our IQN prefix
        that no clone records.  Targets of others are left alone.  A node
        that fails is reported and does not stop the others.

        :returns: ReconcileReport
        :raises TargetDaemonUnavailable: the daemon is not reachable.
        """
        report = ReconcileReport()
        expected = {}
        for disk in self.library.list_node_disks():
            spec = _Spec.from_metadata(disk.metadata)
            if spec is not None:
                expected[spec.iqn] = disk.node_uuid
        served = self.backend.list_targets()

        for iqn, node_uuid in sorted(expected.items()):
            try:
                status = self._reconcile_node(node_uuid)
            except exception.TargetDaemonUnavailable:
                raise
            except exception.BmiException as e:
                LOG.error('Reconcile: target %(iqn)s of node %(node)s: '
                          '%(err)s', {'iqn': iqn, 'node': node_uuid,
                                      'err': e})
                report.failed[iqn] = str(e)
                continue
            if status is not None:
                getattr(report, status).append(iqn)

        ours = self.iqn_prefix() + ':'
        for target in served:
            if target.iqn in expected:
                continue
            if not target.iqn.startswith(ours):
                report.foreign.append(target.iqn)
                continue
            try:
                if self._remove_orphan(target.iqn[len(ours):], target.iqn):
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

    def _reconcile_node(self, node_uuid):
        with locks.lock('export-%s' % node_uuid):
            # Read again under the lock: it may have changed meanwhile.
            try:
                disk = self.library.get_node_disk(node_uuid)
            except exception.CloneNotFound:
                return None
            spec = _Spec.from_metadata(disk.metadata)
            if spec is None:
                return None
            _target, status = self.backend.ensure_target(
                self._target_spec(disk, spec))
        if status != base.UNCHANGED:
            LOG.info('Reconcile: target %(iqn)s of node %(node)s %(st)s',
                     {'iqn': spec.iqn, 'node': node_uuid, 'st': status})
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
                spec = _Spec.from_metadata(disk.metadata) if disk else None
                if spec is not None and spec.iqn == iqn:
                    return False  # exported meanwhile
                user = self.chap_username(node_uuid)
            self.backend.remove_target(iqn, chap_username=user)
        LOG.info('Reconcile: removed orphan target %(iqn)s', {'iqn': iqn})
        return True
