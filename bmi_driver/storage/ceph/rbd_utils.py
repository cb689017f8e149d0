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

"""Connections to the Ceph cluster, and Ceph errors mapped to ours.

In the manner of Cinder's RBD driver and glance_store: a connection is
borrowed for one operation through a context manager.  Connecting costs a
monitor round trip and a cephx handshake, so a small pool keeps a few
connected clients for the next operation; a client that saw a transport
error is dropped rather than returned.  Transient failures (timeouts, a lost
connection) are retried with tenacity on a fresh connection.

This is the one place where rbd/rados errors become ours
(:func:`ceph_errors`, :func:`map_rbd_error`), and the one module that
imports the bindings; the small RBD operations the library shares live at
its end.
"""

import contextlib
import datetime
import functools
import json
import queue
import threading

from oslo_log import log
import tenacity

from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.storage import layout

try:
    import rados
    import rbd
except ImportError:  # pragma: no cover - exercised only without Ceph
    rados = None
    rbd = None

LOG = log.getLogger(__name__)


def _require_bindings():
    if rados is None or rbd is None:
        raise exception.CephError(
            reason='the python rados/rbd bindings are not installed '
                   '(Debian: python3-rados, python3-rbd)')


def _transient_errors():
    return (rados.TimedOut, rados.ConnectionShutdown,
            rbd.ConnectionShutdown, rbd.Timeout)


class CephClient:
    """One connected rados client and the pool contexts opened on it."""

    def __init__(self, conf_file, user, keyring, connect_timeout,
                 op_timeout):
        _require_bindings()
        self.user = user
        self.conf_file = conf_file
        options = {
            'rados_mon_op_timeout': str(op_timeout),
            'rados_osd_op_timeout': str(op_timeout),
            'client_mount_timeout': str(connect_timeout),
        }
        if keyring:
            options['keyring'] = keyring
        self.cluster = rados.Rados(conffile=conf_file, rados_id=user,
                                   conf=options)
        try:
            self.cluster.connect(timeout=connect_timeout)
        except rados.Error as e:
            self.cluster.shutdown()
            raise _connection_error(conf_file, user, e)
        self._ioctxs = {}
        self.broken = False

    def ioctx(self, pool):
        """An I/O context on ``pool``, opened once per client.

        :raises: CephPoolNotFound
        """
        ioctx = self._ioctxs.get(pool)
        if ioctx is None:
            try:
                ioctx = self.cluster.open_ioctx(pool)
            except rados.ObjectNotFound:
                raise exception.CephPoolNotFound(pool=pool)
            self._ioctxs[pool] = ioctx
        return ioctx

    def close(self):
        for ioctx in self._ioctxs.values():
            try:
                ioctx.close()
            except rados.Error:
                pass
        self._ioctxs.clear()
        try:
            self.cluster.shutdown()
        except rados.Error:
            pass


def _connection_error(conf_file, user, error):
    if isinstance(error, (rados.PermissionDeniedError,
                          rados.PermissionError)):
        reason = 'cephx authentication refused (%s)' % error
    elif isinstance(error, (rados.TimedOut,
                            rados.InterruptedOrTimeoutError)):
        reason = 'timed out (monitors unreachable?)'
    elif isinstance(error, rados.ObjectNotFound):
        reason = 'configuration or keyring not found (%s)' % error
    else:
        reason = str(error)
    return exception.CephConnectionError(conf=conf_file, user=user,
                                         reason=reason)


class ClientPool:
    """Connected clients, each lent to one operation at a time.

    ``max_idle`` (default ``[ceph] idle_connections``) are kept for the
    next operation; one borrowed when none is idle is made and, if the
    pool already keeps enough, shut down after its operation.  Measured
    in the two-conductor bench (December 2026): with 2 kept, 50 deploys
    at once connected afresh for most of their Ceph operations.
    """

    def __init__(self, max_idle=None):
        self._idle = queue.LifoQueue()
        self._max_idle_arg = max_idle
        self._lock = threading.Lock()

    @property
    def _max_idle(self):
        # Read at use: the configuration is parsed after this module's
        # process-wide pool is made.
        if self._max_idle_arg is not None:
            return self._max_idle_arg
        return CONF.ceph.idle_connections

    def _new_client(self):
        group = CONF.ceph
        return CephClient(group.conf_file, group.user, group.keyring,
                          group.connect_timeout, group.op_timeout)

    @contextlib.contextmanager
    def get(self):
        try:
            client = self._idle.get_nowait()
        except queue.Empty:
            client = self._new_client()
        try:
            yield client
        except BaseException as e:
            if rados is not None and isinstance(e, _transient_errors()):
                client.broken = True
            raise
        finally:
            if client.broken or self._idle.qsize() >= self._max_idle:
                client.close()
            else:
                self._idle.put(client)

    def clear(self):
        """Close every idle client (the configuration changed, tests)."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def retry_transient(func):
    """Re-run an idempotent operation after a transient Ceph failure.

    The pool drops the client that failed, so the retry connects afresh.

    :raises: CephError when the transient failures outlast the retries.
    """
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        _require_bindings()
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_transient_errors()),
            stop=tenacity.stop_after_attempt(CONF.ceph.connect_retries + 1),
            wait=tenacity.wait_exponential(
                multiplier=CONF.ceph.connect_retry_interval, max=30),
            before_sleep=_log_retry,
            reraise=True)

        def attempt():
            try:
                return func(*args, **kwargs)
            except _transient_errors() as e:
                # A pool at its quota blocks every write until the op
                # timeout (measured on Ceph 16.2: open for write, create
                # and remove all end in ETIMEDOUT after
                # rados_osd_op_timeout): say so instead of retrying.
                full = _full_pool_error(args, e)
                if full is not None:
                    raise full from e
                raise
        try:
            return retrying(attempt)
        except _transient_errors() as e:
            raise exception.CephError(
                reason='%s failed after %d attempts: %s'
                % (func.__name__, CONF.ceph.connect_retries + 1, e))
    return wrapper


def _full_pool_error(args, error):
    """CephPoolFull when a timeout came from a full pool, else None."""
    clients = getattr(args[0], '_clients', None) if args else None
    if clients is None:
        return None
    try:
        with clients.get() as client:
            for pool, flags in pool_flags(client).items():
                if pool in (CONF.ceph.clone_pool, CONF.ceph.image_pool) and (
                        flags & {'full', 'full_quota'}):
                    return exception.CephPoolFull(
                        pool=pool, reason='Ceph flags it %s; the operation '
                        'timed out (%s)' % (', '.join(sorted(flags)), error))
    except Exception as e:
        LOG.debug('Could not read the pool flags after %(err)s: %(e)s',
                  {'err': error, 'e': e})
    return None


def _log_retry(retry_state):
    LOG.warning('Transient Ceph error in %(op)s, retry %(n)d: %(err)s',
                {'op': retry_state.fn.__name__,
                 'n': retry_state.attempt_number,
                 'err': retry_state.outcome.exception()})


def map_rbd_error(error, image):
    """Our exception for an rbd/rados error about ``image``."""
    if isinstance(error, rbd.ImageNotFound):
        return exception.ImageNotFound(image=image)
    if isinstance(error, (rbd.DiskQuotaExceeded, rbd.NoSpace)):
        return exception.CephPoolFull(
            pool=CONF.ceph.clone_pool,
            reason='quota exceeded or no space left writing %s (%s)'
            % (image, error))
    if isinstance(error, rbd.ImageBusy):
        return exception.ImageBusy(image=image, reason=str(error))
    if isinstance(error, rbd.ImageHasSnapshots):
        return exception.ImageBusy(image=image,
                                   reason='it still has snapshots')
    if isinstance(error, (rbd.PermissionError, rados.PermissionError,
                          rados.PermissionDeniedError)):
        return exception.CephError(
            reason='permission denied on %s for user %s'
            % (image, CONF.ceph.user))
    return exception.CephError(reason='%s: %s' % (image, error))


@contextlib.contextmanager
def ceph_errors(image):
    """Translate rbd/rados errors raised in the block into ours.

    :raises: the BmiException matching an rbd/rados error (transient ones pass
        through for retry_transient).
    """
    try:
        yield
    except exception.BmiException:
        raise
    except (rbd.Error, rados.Error) as e:
        if isinstance(e, _transient_errors()):
            raise  # retry_transient decides
        raise map_rbd_error(e, image)


# -- small RBD operations shared by the library ------------------------------

def features():
    """The features of every image the library creates."""
    return rbd.RBD_FEATURE_LAYERING | rbd.RBD_FEATURE_EXCLUSIVE_LOCK | \
        rbd.RBD_FEATURE_OBJECT_MAP | rbd.RBD_FEATURE_FAST_DIFF | \
        rbd.RBD_FEATURE_DEEP_FLATTEN


def protected_snapshot(image, snap):
    """Take and protect a snapshot; none is left if protecting fails.

    :raises: rbd.Error from librbd.
    """
    image.create_snap(snap)
    try:
        image.protect_snap(snap)
    except BaseException:
        try:
            image.remove_snap(snap)
        except rbd.Error as e:
            LOG.error('Could not remove snapshot %(snap)s after failing to '
                      'protect it: %(err)s', {'snap': snap, 'err': e})
        raise


def set_metadata(image, key, value):
    """Set one metadata key; an empty value removes the key.

    Empty values are never stored: the python binding's metadata_list()
    of Ceph 16 shifts every later value by one after an empty one.
    """
    value = '' if value is None else str(value)
    if value:
        image.metadata_set(key, value)
    else:
        try:
            image.metadata_remove(key)
        except KeyError:
            pass


def reset_metadata(image, meta):
    """Make the image's ``bmi.*`` metadata exactly ``meta``.

    A clone inherits its parent's metadata; a golden image made from a
    node's disk, or a node's disk cloned from a golden image, must not
    carry the other's record.
    """
    for key, _value in list(image.metadata_list()):
        if key.startswith(layout.META_PREFIX) and not meta.get(key):
            image.metadata_remove(key)
    for key, value in meta.items():
        set_metadata(image, key, value)


def parent_spec(image):
    """The RBD spec of the image's parent snapshot, or None."""
    try:
        p = image.get_parent_image_spec()
    except rbd.ImageNotFound:
        return None
    return layout.rbd_spec(p['pool_name'], p['image_name'], p['snap_name'])


def utcnow():
    """Now, as the binding's times: naive UTC.

    Ceph 16.2's ``Image.create_timestamp()`` and the trash entries'
    ``deferment_end_time`` are ``datetime.utcfromtimestamp()``.
    """
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def snap_names(image):
    """The names of the image's own snapshots (the user namespace).

    Ceph 16's ``list_snaps()`` lists every namespace: a snapshot in the
    snapshot trash (clone v2: removed while a clone still uses it) has a
    UUID for a name, which the calls by name do not find.
    """
    user = rbd.RBD_SNAP_NAMESPACE_TYPE_USER
    return [s['name'] for s in image.list_snaps()
            if s.get('namespace', user) == user]


def snap_clones(image, snap):
    """The clones of one snapshot of an open image, as pool/image."""
    image.set_snap(snap)
    try:
        return sorted('%s/%s' % (c['pool'], c['image'])
                      for c in image.list_children2())
    finally:
        image.set_snap(None)


def describe_kept(kept):
    """What :func:`purge_snapshots` kept, for a log line."""
    return '; '.join('snapshot %s is still used by %s' % (snap, ', '.join(
        clones)) for snap, clones in sorted(kept.items()))


def purge_snapshots(ioctx, rbd_name=None, image_id=None):
    """Unprotect and remove every snapshot of an image that no clone uses.

    One that a clone uses stays: the image cannot go before its clones
    anyway, and a format 1 clone's parent cannot even be unprotected
    (format 2 would only move it to the snapshot trash). It is typically
    the temporary snapshot of a node snapshot killed midway, under the
    golden image it left unsealed (``sweep_unsealed`` removes that).
    ``image_id`` opens an image in the RBD trash.

    :returns: {snapshot name: its clones as pool/image} of those kept.
    :raises: rbd.ImageNotFound when the image is missing.
    """
    kept = {}
    with rbd.Image(ioctx, rbd_name, image_id=image_id) as image:
        for snap in snap_names(image):
            clones = remove_unused_snapshot(image, snap)
            if clones:
                kept[snap] = clones
    return kept


def remove_unused_snapshot(image, snap):
    """Unprotect and remove one snapshot of an open image, unless cloned.

    :returns: the clones that keep it (pool/image), [] when it is gone.
    :raises: rbd.Error from librbd.
    """
    clones = snap_clones(image, snap)
    if not clones:
        if image.is_protected_snap(snap):
            image.unprotect_snap(snap)
        image.remove_snap(snap)
    return clones


def destroy(ioctx, rbd_name):
    """Remove an image and its snapshots; missing is fine."""
    try:
        purge_snapshots(ioctx, rbd_name)
    except rbd.ImageNotFound:
        return
    try:
        rbd.RBD().remove(ioctx, rbd_name)
    except rbd.ImageNotFound:
        pass


def undo(ioctx, rbd_name, what):
    """Best-effort removal of a half-made image after a failure."""
    try:
        destroy(ioctx, rbd_name)
    except Exception as e:
        LOG.error('Could not remove the partial image %(img)s after a '
                  'failed %(what)s: %(err)s; remove it by hand',
                  {'img': rbd_name, 'what': what, 'err': e})


def remove_if_present(ioctx, rbd_name, probe=True):
    """Remove an image and its snapshots: False if it was not there.

    ``probe``: look first with a read-only open, which fails in about a
    millisecond for a missing image, where a remove looks in the trash
    and elsewhere first (over 15 ms).

    :raises: rbd.ImageBusy while the image is open elsewhere.
    :raises: rbd.ImageHasSnapshots while a clone uses one of its snapshots
        (logged, naming the clones).
    """
    if probe:
        try:
            rbd.Image(ioctx, rbd_name, read_only=True).close()
        except rbd.ImageNotFound:
            return False
    try:
        try:
            rbd.RBD().remove(ioctx, rbd_name)
        except rbd.ImageHasSnapshots:
            kept = purge_snapshots(ioctx, rbd_name)
            if kept:
                LOG.warning('%(img)s cannot be removed yet: %(kept)s',
                            {'img': rbd_name, 'kept': describe_kept(kept)})
            rbd.RBD().remove(ioctx, rbd_name)
    except rbd.ImageNotFound:
        return False
    return True


# -- the cluster's state, through monitor commands ---------------------------

def mon_command(client, prefix, **args):
    """A monitor command's JSON answer.

    :raises: CephError when the monitor refuses it.
    """
    cmd = dict(args, prefix=prefix, format='json')
    ret, out, status = client.cluster.mon_command(json.dumps(cmd), b'')
    if ret:
        raise exception.CephError(reason='"%s" failed: %s (%d)'
                                  % (prefix, status, ret))
    return json.loads(out) if out else {}


def pool_flags(client):
    """{pool name: set of its OSD map flags (full, full_quota, ...)}."""
    dump = mon_command(client, 'osd dump')
    return {p['pool_name']: set(filter(None, p.get('flags_names', '')
                                       .split(',')))
            for p in dump.get('pools', [])}


def capacity_problem(client, pool, ratio):
    """Why ``pool`` cannot take new disks now, or None.

    The pool's flags (Ceph sets ``full_quota`` at the quota, ``full`` and
    ``nearfull`` from the OSDs' fill ratios), its quota against its usage
    (``osd pool get-quota`` reports both) at ``ratio``, and the cluster's
    HEALTH_ERR.  Checked against Ceph 16.2.
    """
    flags = pool_flags(client).get(pool, set())
    bad = flags & {'full', 'full_quota', 'nearfull'}
    if bad:
        return exception.CephPoolFull(
            pool=pool, reason='Ceph flags it %s' % ', '.join(sorted(bad)))
    quota = mon_command(client, 'osd pool get-quota', pool=pool)
    for what, used_key, max_key in (
            ('bytes', 'current_num_bytes', 'quota_max_bytes'),
            ('objects', 'current_num_objects', 'quota_max_objects')):
        limit = quota.get(max_key) or 0
        used = quota.get(used_key) or 0
        if limit and used >= ratio * limit:
            return exception.CephPoolFull(
                pool=pool, reason='%d of its quota of %d %s used '
                '(refused from %d%%, [ceph] pool_full_ratio)'
                % (used, limit, what, round(ratio * 100)))
    for p in mon_command(client, 'df').get('pools', []):
        if p.get('name') == pool and p.get('stats', {}).get(
                'max_avail', 1) == 0:
            return exception.CephPoolFull(
                pool=pool, reason='no space left on its OSDs (df max_avail '
                '0)')
    health = mon_command(client, 'health')
    if health.get('status') == 'HEALTH_ERR':
        checks = health.get('checks', {})
        return exception.CephUnhealthy(
            status='HEALTH_ERR', reason='; '.join(
                '%s: %s' % (name, c.get('summary', {}).get('message', ''))
                for name, c in sorted(checks.items())
                if c.get('severity') == 'HEALTH_ERR') or 'see ceph -s')
    return None


def blocklist_watchers(client, ioctx, rbd_name=None, image_id=None):
    """Blocklist every client watching an image; their addresses.

    Only for an image being removed: its node is undeployed, so whoever
    still watches it is a dead gateway (a tgtd killed keeps its watch
    until the OSD times it out, about 30 s) or one that must not serve it
    any more.  Each tgtd RBD LUN has a rados client of its own, so the
    blocklist cuts that LUN's connection only.  The entry expires after
    ``[ceph] blocklist_expiry``.

    :raises: rbd.Error, CephError
    """
    with rbd.Image(ioctx, rbd_name, image_id=image_id,
                   read_only=True) as image:
        addrs = sorted({w['addr'] for w in image.watchers_list()})
    for addr in addrs:
        mon_command(client, 'osd blocklist', blocklistop='add', addr=addr,
                    expire=float(CONF.ceph.blocklist_expiry))
        LOG.warning('Blocklisted %(addr)s for %(sec)d s: it still watched '
                    '%(img)s, which is being removed',
                    {'addr': addr, 'sec': CONF.ceph.blocklist_expiry,
                     'img': rbd_name or image_id})
    return addrs


def remove_or_trash(client, ioctx, rbd_name, probe=True):
    """Remove an image; 'removed', 'trashed' or None (was not there).

    A busy image (a stale watch) gets its watchers blocklisted
    (``[ceph] blocklist_stale_watchers``) and is removed again; what still
    cannot be removed, also an image whose snapshot a clone still uses,
    goes to the pool's RBD trash (which frees its name, so a new deploy of
    the node never finds the old disk), for :func:`sweep_trash`.

    :raises: rbd.Error when even the move to the trash fails.
    """
    try:
        return 'removed' if remove_if_present(ioctx, rbd_name,
                                              probe) else None
    except rbd.ImageHasSnapshots:
        # No blocklist helps: it waits in the trash until the clone goes
        # (sweep_unsealed removes the one a killed node snapshot left).
        return _trash(ioctx, rbd_name)
    except rbd.ImageBusy as e:
        LOG.warning('%(img)s is still open elsewhere: %(err)s',
                    {'img': rbd_name, 'err': e})
    if CONF.ceph.blocklist_stale_watchers:
        try:
            blocklist_watchers(client, ioctx, rbd_name)
            return 'removed' if remove_if_present(ioctx, rbd_name,
                                                  False) else None
        except rbd.ImageNotFound:
            return None
        except (rbd.Error, rados.Error, exception.CephError) as e:
            LOG.warning('Could not remove %(img)s after blocklisting its '
                        'watchers: %(err)s', {'img': rbd_name, 'err': e})
    return _trash(ioctx, rbd_name)


def _trash(ioctx, rbd_name):
    try:
        rbd.RBD().trash_move(ioctx, rbd_name, delay=CONF.ceph.trash_delay)
    except rbd.ImageNotFound:
        return None
    LOG.warning('Moved %(img)s to the RBD trash: the periodic sweep removes '
                'it', {'img': rbd_name})
    return 'trashed'


def _trash_remove(client, ioctx, image_id):
    try:
        rbd.RBD().trash_remove(ioctx, image_id)
    except rbd.ImageBusy:
        if not CONF.ceph.blocklist_stale_watchers:
            raise
        blocklist_watchers(client, ioctx, image_id=image_id)
        rbd.RBD().trash_remove(ioctx, image_id)


def sweep_trash(client, ioctx, is_ours, now=None):
    """Remove the trashed images ``is_ours(name)`` whose deferment ended.

    A busy one gets its watchers blocklisted first (see
    :func:`remove_or_trash`).  One with snapshots (librbd refuses it,
    ENOTEMPTY) has those no clone uses purged first; one that a clone
    still uses keeps it there, named in the warning, until a later sweep
    finds the clone gone.  :returns: (removed, left) name lists.
    """
    now = now or utcnow()
    removed, left = [], []
    for entry in list(rbd.RBD().trash_list(ioctx)):
        name = entry['name']
        if not is_ours(name) or entry['deferment_end_time'] > now:
            continue
        try:
            try:
                _trash_remove(client, ioctx, entry['id'])
            except rbd.ImageHasSnapshots:
                kept = purge_snapshots(ioctx, image_id=entry['id'])
                if kept:
                    LOG.warning('%(img)s (%(id)s) stays in the RBD trash: '
                                '%(kept)s; next sweep',
                                {'img': name, 'id': entry['id'],
                                 'kept': describe_kept(kept)})
                    left.append(name)
                    continue
                _trash_remove(client, ioctx, entry['id'])
        except rbd.ImageNotFound:
            continue
        except (rbd.Error, rados.Error, exception.CephError) as e:
            LOG.warning('Could not remove %(img)s (%(id)s) from the RBD '
                        'trash: %(err)s; next sweep',
                        {'img': name, 'id': entry['id'], 'err': e})
            left.append(name)
            continue
        LOG.info('Removed %(img)s from the RBD trash', {'img': name})
        removed.append(name)
    return removed, left
