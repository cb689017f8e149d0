"""The golden-image library, kept in Ceph RBD and nowhere else.

Layout (``[ceph] image_pool`` and ``clone_pool``):

``img-<uuid>``
    A golden image.  Its record lives in its RBD image metadata
    (``bmi.name``, ``bmi.project``, ``bmi.visibility``, ``bmi.created_at``,
    ``bmi.source``, ``bmi.checksum``); there is no side database to drift.
    Its protected snapshot ``golden`` is what nodes are cloned from.
``node-<node uuid>``
    A node's disk: a copy-on-write clone of a golden snapshot (or of a
    Glance image's ``<glance pool>/<uuid>@snap``), metadata ``bmi.node``,
    ``bmi.image`` and whatever the export records.
``node-<node uuid>-config``
    The node's config drive, when it has one.

Every operation borrows one connection from a small pool
(:mod:`bmi_driver.storage.rbd_utils`), is idempotent where the operation
allows, and undoes what it did when it fails part way.
"""

import dataclasses
import datetime
import hashlib
import json
import os
import uuid as uuidlib

from oslo_concurrency import processutils
from oslo_log import log
from oslo_utils import units
from oslo_utils import uuidutils

from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.storage import names
from bmi_driver.storage import rbd_utils
from bmi_driver.storage.rbd_utils import rbd

LOG = log.getLogger(__name__)

GOLDEN_PREFIX = 'img-'
NODE_PREFIX = 'node-'
CONFIG_SUFFIX = '-config'
GOLDEN_SNAP = 'golden'
GLANCE_SNAP = 'snap'
TEMP_SNAP_PREFIX = 'bmi-snap-'
REF_SNAP_PREFIX = 'bmi-ref-'

META_NAME = 'bmi.name'
META_PROJECT = 'bmi.project'
META_VISIBILITY = 'bmi.visibility'
META_CREATED = 'bmi.created_at'
META_SOURCE = 'bmi.source'
META_CHECKSUM = 'bmi.checksum'
META_REF_SNAP = 'bmi.ref_snapshot'

SECTOR = 512
# qemu-img may use this much memory and CPU time on an untrusted file.
_QEMU_IMG_LIMITS = processutils.ProcessLimits(address_space=1 * units.Gi,
                                              cpu_time=30)
_CLIENTS = rbd_utils.ClientPool()


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec='seconds')


@dataclasses.dataclass
class GoldenImage:
    """A golden image, as its RBD metadata describes it."""
    uuid: str
    name: str
    project: str
    visibility: str
    created_at: str
    source: str
    checksum: str
    size: int
    pool: str
    rbd_name: str
    snapshot: str = GOLDEN_SNAP
    parent: str = None
    clones: int = 0

    @property
    def spec(self):
        return '%s/%s@%s' % (self.pool, self.rbd_name, self.snapshot)

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ImageSource:
    """Something a node can be cloned from: a golden or a Glance image."""
    uuid: str
    kind: str  # 'golden' or 'glance'
    pool: str
    rbd_name: str
    snapshot: str
    size: int
    project: str = None
    visibility: str = None
    # The source's own bmi.* metadata, which a clone inherits.
    metadata: dict = dataclasses.field(default_factory=dict)

    @property
    def spec(self):
        return '%s/%s@%s' % (self.pool, self.rbd_name, self.snapshot)


@dataclasses.dataclass
class NodeDisk:
    """A node's clone (or its config drive)."""
    node_uuid: str
    pool: str
    rbd_name: str
    size: int
    parent: str = None
    metadata: dict = dataclasses.field(default_factory=dict)
    configdrive: 'NodeDisk' = None

    @property
    def spec(self):
        return '%s/%s' % (self.pool, self.rbd_name)


def golden_rbd_name(image_uuid):
    return GOLDEN_PREFIX + image_uuid


def node_rbd_name(node_uuid):
    return NODE_PREFIX + node_uuid


def configdrive_rbd_name(node_uuid):
    return NODE_PREFIX + node_uuid + CONFIG_SUFFIX


def _features():
    return rbd.RBD_FEATURE_LAYERING | rbd.RBD_FEATURE_EXCLUSIVE_LOCK | \
        rbd.RBD_FEATURE_OBJECT_MAP | rbd.RBD_FEATURE_FAST_DIFF | \
        rbd.RBD_FEATURE_DEEP_FLATTEN


def _is_zero(chunk, _zeros={}):
    n = len(chunk)
    zeros = _zeros.get(n)
    if zeros is None:
        zeros = _zeros[n] = bytes(n)
    return chunk == zeros


def _flatten_progress(progress, size):
    """librbd's flatten progress (objects done of total) in bytes."""
    if progress is None:
        return None

    def report(done, total):
        progress(min(size, done * size // max(total, 1)), size)
        return 0
    return report


def _protected_snapshot(image, snap):
    """Take and protect a snapshot; none is left if protecting fails."""
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


def _set_metadata(image, key, value):
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


def _reset_metadata(image, meta):
    """Make the image's ``bmi.*`` metadata exactly ``meta``.

    A clone inherits its parent's metadata; a golden image made from a
    node's disk, or a node's disk cloned from a golden image, must not
    carry the other's record.
    """
    for key, _value in list(image.metadata_list()):
        if key.startswith('bmi.') and not meta.get(key):
            image.metadata_remove(key)
    for key, value in meta.items():
        _set_metadata(image, key, value)


def _parent_spec(image):
    try:
        p = image.get_parent_image_spec()
    except rbd.ImageNotFound:
        return None
    return '%s/%s@%s' % (p['pool_name'], p['image_name'], p['snap_name'])


def _snap_names(image):
    return [s['name'] for s in image.list_snaps()]


class ImageLibrary:
    """Golden images and node clones in Ceph RBD.

    :param clients: the connection pool to borrow from (tests may pass
        their own); the process-wide pool by default.
    """

    def __init__(self, clients=None):
        self._clients = clients or _CLIENTS

    # -- helpers ---------------------------------------------------------

    @property
    def image_pool(self):
        return CONF.ceph.image_pool

    @property
    def clone_pool(self):
        return CONF.ceph.clone_pool

    def _golden_from_image(self, image, rbd_name, count_clones=True):
        meta = dict(image.metadata_list())
        clones = 0
        if count_clones and GOLDEN_SNAP in _snap_names(image):
            image.set_snap(GOLDEN_SNAP)
            clones = len(list(image.list_children2()))
            image.set_snap(None)
        return GoldenImage(
            uuid=rbd_name[len(GOLDEN_PREFIX):],
            name=meta.get(META_NAME, ''),
            project=meta.get(META_PROJECT, ''),
            visibility=meta.get(META_VISIBILITY, 'private'),
            created_at=meta.get(META_CREATED, ''),
            source=meta.get(META_SOURCE, ''),
            checksum=meta.get(META_CHECKSUM, ''),
            size=image.size(),
            pool=self.image_pool,
            rbd_name=rbd_name,
            parent=_parent_spec(image),
            clones=clones)

    @staticmethod
    def _golden_meta(img):
        meta = {META_NAME: img.name, META_PROJECT: img.project,
                META_VISIBILITY: img.visibility, META_CREATED: img.created_at,
                META_SOURCE: img.source, META_CHECKSUM: img.checksum}
        return {k: v for k, v in meta.items() if v}

    def _read_golden(self, client, image_uuid, count_clones=True):
        rbd_name = golden_rbd_name(image_uuid)
        with rbd_utils.ceph_errors(image_uuid):
            with rbd.Image(client.ioctx(self.image_pool), rbd_name,
                           read_only=True) as image:
                return self._golden_from_image(image, rbd_name, count_clones)

    def _golden_names(self, client):
        return sorted(n for n in rbd.RBD().list(client.ioctx(self.image_pool))
                      if n.startswith(GOLDEN_PREFIX))

    def _all_golden(self, client, count_clones=True):
        found = []
        for rbd_name in self._golden_names(client):
            try:
                found.append(self._read_golden(
                    client, rbd_name[len(GOLDEN_PREFIX):], count_clones))
            except exception.ImageNotFound:
                continue  # removed while we listed
        return found

    def _find(self, client, ref, count_clones=True):
        if uuidutils.is_uuid_like(ref):
            return self._read_golden(client, ref.lower(), count_clones)
        names.image_name(ref)
        for rbd_name in self._golden_names(client):
            try:
                with rbd.Image(client.ioctx(self.image_pool), rbd_name,
                               read_only=True) as image:
                    try:
                        if image.metadata_get(META_NAME) != ref:
                            continue
                    except KeyError:
                        continue
                    return self._golden_from_image(image, rbd_name,
                                                   count_clones)
            except rbd.ImageNotFound:
                continue
        raise exception.ImageNotFound(image=ref)

    def _check_name_free(self, client, name):
        try:
            existing = self._find(client, name, count_clones=False)
        except exception.ImageNotFound:
            return
        raise exception.ImageExists(name=name, image=existing.uuid)

    def _destroy(self, ioctx, rbd_name):
        """Remove an image and its snapshots; missing is fine."""
        try:
            self._purge_snapshots(ioctx, rbd_name)
        except rbd.ImageNotFound:
            return
        try:
            rbd.RBD().remove(ioctx, rbd_name)
        except rbd.ImageNotFound:
            pass

    def _undo(self, ioctx, rbd_name, what):
        """Best-effort removal of a half-made image after a failure."""
        try:
            self._destroy(ioctx, rbd_name)
        except Exception as e:
            LOG.error('Could not remove the partial image %(img)s after a '
                      'failed %(what)s: %(err)s; remove it by hand',
                      {'img': rbd_name, 'what': what, 'err': e})

    def _seal(self, ioctx, rbd_name, meta):
        """Record a golden image's metadata and protect its snapshot."""
        with rbd.Image(ioctx, rbd_name) as image:
            _reset_metadata(image, meta)
            image.create_snap(GOLDEN_SNAP)
            image.protect_snap(GOLDEN_SNAP)

    def _new_meta(self, name, project, visibility, source, checksum=''):
        return {META_NAME: name,
                META_PROJECT: project,
                META_VISIBILITY: visibility,
                META_CREATED: _now(),
                META_SOURCE: source,
                META_CHECKSUM: checksum}

    @staticmethod
    def _new_image_args(name, project, visibility):
        """Check a new golden image's name and visibility: its owner."""
        names.image_name(name)
        names.visibility(visibility)
        return names.project(project or CONF.bmi.default_project)

    # -- golden images ---------------------------------------------------

    @rbd_utils.retry_transient
    def check(self):
        """Connect and open the pools: raise a clear error if we cannot."""
        with self._clients.get() as client:
            for pool in {self.image_pool, self.clone_pool}:
                client.ioctx(pool)

    @rbd_utils.retry_transient
    def get(self, ref):
        """A golden image by UUID or name."""
        with self._clients.get() as client:
            return self._find(client, ref)

    @rbd_utils.retry_transient
    def list(self, project=None, include_public=False):
        """Golden images, all or those of ``project`` (and public ones)."""
        if project is not None:
            names.project(project)
        with self._clients.get() as client:
            return [i for i in self._all_golden(client)
                    if project is None or i.project == project
                    or (include_public and i.visibility == 'public')]

    @rbd_utils.retry_transient
    def import_file(self, path, name, project=None, visibility='private',
                    progress=None):
        """Import a local raw or qcow2 file as a new golden image.

        The content is streamed into RBD (all-zero chunks are skipped, so
        the image stays sparse) and its SHA-256 recorded.
        """
        project = self._new_image_args(name, project, visibility)
        fmt, size = self._inspect_file(path)
        with self._clients.get() as client:
            self._check_name_free(client, name)
            image_uuid = uuidutils.generate_uuid()
            rbd_name = golden_rbd_name(image_uuid)
            ioctx = client.ioctx(self.image_pool)
            LOG.info('Importing %(path)s (%(fmt)s, %(size)d bytes) as image '
                     '%(name)s (%(uuid)s)', {'path': path, 'fmt': fmt,
                                             'size': size, 'name': name,
                                             'uuid': image_uuid})
            with rbd_utils.ceph_errors(name):
                rbd.RBD().create(ioctx, rbd_name, size,
                                 features=_features())
            try:
                with rbd_utils.ceph_errors(name):
                    if fmt == 'raw':
                        checksum = self._write_raw(ioctx, rbd_name, path,
                                                   size, progress)
                    else:
                        self._convert_into(path, fmt, rbd_name)
                        checksum = self._checksum(ioctx, rbd_name, None,
                                                  progress)
                    self._seal(ioctx, rbd_name, self._new_meta(
                        name, project, visibility,
                        'file:%s' % os.path.basename(path),
                        'sha256:' + checksum))
            except BaseException:
                self._undo(ioctx, rbd_name, 'import')
                raise
            return self._read_golden(client, image_uuid)

    @rbd_utils.retry_transient
    def import_rbd(self, ref, name, project=None, visibility='private'):
        """Make an existing RBD image or snapshot a golden image, no copy.

        ``ref`` is ``pool/image@snap`` (a Glance-stored image is
        ``<glance pool>/<uuid>@snap``) or ``pool/image``, in which case a
        protected snapshot is taken of it first.  The golden image is a
        copy-on-write clone of the reference.
        """
        src = names.rbd_ref(ref)
        project = self._new_image_args(name, project, visibility)
        with self._clients.get() as client:
            self._check_name_free(client, name)
            src_ioctx = client.ioctx(src.pool)
            image_uuid = uuidutils.generate_uuid()
            rbd_name = golden_rbd_name(image_uuid)
            ioctx = client.ioctx(self.image_pool)
            snap, made_snap = src.snapshot, None
            with rbd_utils.ceph_errors(ref):
                with rbd.Image(src_ioctx, src.image) as source:
                    if snap is None:
                        made_snap = snap = REF_SNAP_PREFIX + image_uuid
                        _protected_snapshot(source, snap)
                    elif snap not in _snap_names(source):
                        raise exception.ImageNotFound(image=ref)
            try:
                with rbd_utils.ceph_errors(ref):
                    rbd.RBD().clone(src_ioctx, src.image, snap, ioctx,
                                    rbd_name, features=_features())
                meta = self._new_meta(name, project, visibility,
                                      'rbd:%s/%s@%s' % (src.pool, src.image,
                                                        snap))
                if made_snap:
                    meta[META_REF_SNAP] = made_snap
                with rbd_utils.ceph_errors(name):
                    self._seal(ioctx, rbd_name, meta)
            except BaseException:
                self._undo(ioctx, rbd_name, 'import')
                if made_snap:
                    self._drop_ref_snapshot(client, src.pool, src.image,
                                            made_snap)
                raise
            LOG.info('Imported %(ref)s by reference as image %(name)s '
                     '(%(uuid)s)', {'ref': ref, 'name': name,
                                    'uuid': image_uuid})
            return self._read_golden(client, image_uuid)

    def _drop_ref_snapshot(self, client, pool, image_name, snap):
        try:
            with rbd.Image(client.ioctx(pool), image_name) as source:
                source.set_snap(snap)
                children = list(source.list_children2())
                source.set_snap(None)
                if children:
                    return
                source.unprotect_snap(snap)
                source.remove_snap(snap)
        except (rbd.Error, exception.BmiException) as e:
            LOG.warning('Could not remove snapshot %(snap)s of %(pool)s/'
                        '%(img)s: %(err)s', {'snap': snap, 'pool': pool,
                                             'img': image_name, 'err': e})

    @rbd_utils.retry_transient
    def delete(self, ref):
        """Delete a golden image: refused while clones exist, never partial.

        The snapshot is unprotected and removed before the image; if the
        image cannot be removed, the snapshot is taken and protected again
        (a golden image is never written, so it is the same content).
        """
        with self._clients.get() as client:
            img = self._find(client, ref)
            ioctx = client.ioctx(self.image_pool)
            with rbd_utils.ceph_errors(img.name):
                with rbd.Image(ioctx, img.rbd_name) as image:
                    meta = dict(image.metadata_list())
                    # (A snapshot already gone or unprotected is the trace
                    # of an interrupted delete: carry on from there.)
                    had_snap = GOLDEN_SNAP in _snap_names(image)
                    if had_snap:
                        self._refuse_if_cloned(image, img)
                        if image.is_protected_snap(GOLDEN_SNAP):
                            try:
                                image.unprotect_snap(GOLDEN_SNAP)
                            except rbd.ImageBusy:
                                # A clone appeared since we looked.
                                self._refuse_if_cloned(image, img)
                                raise
                        try:
                            image.remove_snap(GOLDEN_SNAP)
                        except BaseException:
                            image.protect_snap(GOLDEN_SNAP)
                            raise
                try:
                    rbd.RBD().remove(ioctx, img.rbd_name)
                except rbd.Error:
                    if had_snap:
                        with rbd.Image(ioctx, img.rbd_name) as image:
                            image.create_snap(GOLDEN_SNAP)
                            image.protect_snap(GOLDEN_SNAP)
                    raise
            if META_REF_SNAP in meta:
                ref_pool, _, rest = meta[META_SOURCE][4:].partition('/')
                self._drop_ref_snapshot(client, ref_pool,
                                        rest.partition('@')[0],
                                        meta[META_REF_SNAP])
            LOG.info('Deleted image %(name)s (%(uuid)s)',
                     {'name': img.name, 'uuid': img.uuid})

    @staticmethod
    def _refuse_if_cloned(image, img):
        image.set_snap(GOLDEN_SNAP)
        children = ['%s/%s' % (c['pool'], c['image'])
                    for c in image.list_children2()]
        image.set_snap(None)
        if children:
            raise exception.ImageInUse(image=img.name, count=len(children),
                                       clones=', '.join(sorted(children)))

    @rbd_utils.retry_transient
    def rename(self, ref, new_name):
        """Give a golden image a new name (its UUID stays)."""
        names.image_name(new_name)
        with self._clients.get() as client:
            img = self._find(client, ref)
            if img.name == new_name:
                return img
            self._check_name_free(client, new_name)
            with rbd_utils.ceph_errors(img.name):
                with rbd.Image(client.ioctx(self.image_pool),
                               img.rbd_name) as image:
                    image.metadata_set(META_NAME, new_name)
            LOG.info('Renamed image %(uuid)s from %(old)s to %(new)s',
                     {'uuid': img.uuid, 'old': img.name, 'new': new_name})
            return self._read_golden(client, img.uuid)

    @rbd_utils.retry_transient
    def copy(self, ref, new_name, project=None, visibility=None,
             progress=None):
        """A full, independent copy of a golden image under a new name."""
        names.image_name(new_name)
        if project is not None:
            names.project(project)
        if visibility is not None:
            names.visibility(visibility)
        with self._clients.get() as client:
            src = self._find(client, ref)
            self._check_name_free(client, new_name)
            new = self._flat_copy(
                client, client.ioctx(src.pool), src.rbd_name, GOLDEN_SNAP,
                self._new_meta(new_name, project or src.project,
                               visibility or src.visibility,
                               'copy:%s' % src.uuid, src.checksum),
                progress)
            LOG.info('Copied image %(src)s to %(name)s (%(uuid)s)',
                     {'src': src.name, 'name': new_name, 'uuid': new})
            return self._read_golden(client, new)

    def _flat_copy(self, client, src_ioctx, src_name, src_snap, meta,
                   progress=None):
        """Clone ``src_name@src_snap`` into a new golden image, flatten it.

        Flattening copies every allocated block from the parents, so the
        result depends on nothing; unallocated blocks stay sparse.
        """
        image_uuid = uuidutils.generate_uuid()
        rbd_name = golden_rbd_name(image_uuid)
        ioctx = client.ioctx(self.image_pool)
        with rbd_utils.ceph_errors(meta[META_NAME]):
            rbd.RBD().clone(src_ioctx, src_name, src_snap, ioctx, rbd_name,
                            features=_features())
        try:
            with rbd_utils.ceph_errors(meta[META_NAME]):
                with rbd.Image(ioctx, rbd_name) as image:
                    image.flatten(on_progress=_flatten_progress(
                        progress, image.size()))
                self._seal(ioctx, rbd_name, meta)
        except BaseException:
            self._undo(ioctx, rbd_name, 'copy')
            raise
        return image_uuid

    @rbd_utils.retry_transient
    def export(self, ref, path, progress=None):
        """Write a golden image to a local raw file (sparse).

        The bytes are checked against the recorded checksum; the file
        appears under its name only once complete and verified.
        """
        target = os.path.abspath(path)
        if os.path.exists(target):
            raise exception.LocalFileError(path=path,
                                           reason='already exists')
        if not os.path.isdir(os.path.dirname(target)):
            raise exception.LocalFileError(
                path=path, reason='its directory does not exist')
        with self._clients.get() as client:
            img = self._find(client, ref)
            partial = target + '.part-' + uuidlib.uuid4().hex[:8]
            try:
                with rbd_utils.ceph_errors(img.name):
                    with rbd.Image(client.ioctx(img.pool), img.rbd_name,
                                   snapshot=GOLDEN_SNAP,
                                   read_only=True) as image, \
                            open(partial, 'wb') as out:
                        digest = self._stream(image, img.size, out, progress)
                if img.checksum and img.checksum != 'sha256:' + digest:
                    raise exception.CephError(
                        reason='image %s read back with checksum sha256:%s, '
                        'recorded %s' % (img.name, digest, img.checksum))
                os.rename(partial, target)
            except BaseException:
                if os.path.exists(partial):
                    os.unlink(partial)
                raise
            LOG.info('Exported image %(name)s to %(path)s',
                     {'name': img.name, 'path': target})
            return img

    # -- data transfer ---------------------------------------------------

    def _chunk(self):
        return CONF.ceph.transfer_chunk_mib * units.Mi

    def _stream(self, image, size, out=None, progress=None):
        """Read ``image`` in chunks: sha256 hex digest; write to ``out``."""
        digest = hashlib.sha256()
        chunk = self._chunk()
        offset = 0
        while offset < size:
            data = image.read(offset, min(chunk, size - offset))
            digest.update(data)
            if out is not None:
                if _is_zero(data):
                    out.seek(len(data), os.SEEK_CUR)
                else:
                    out.write(data)
            offset += len(data)
            if progress:
                progress(offset, size)
        if out is not None:
            out.truncate(size)
        return digest.hexdigest()

    def _checksum(self, ioctx, rbd_name, snapshot, progress):
        with rbd.Image(ioctx, rbd_name, snapshot=snapshot,
                       read_only=True) as image:
            return self._stream(image, image.size(), None, progress)

    def _write_raw(self, ioctx, rbd_name, path, size, progress):
        digest = hashlib.sha256()
        chunk = self._chunk()
        offset = 0
        with rbd.Image(ioctx, rbd_name) as image, open(path, 'rb') as src:
            while True:
                data = src.read(chunk)
                if not data:
                    break
                digest.update(data)
                if not _is_zero(data):
                    image.write(data, offset)
                offset += len(data)
                if progress:
                    progress(offset, size)
            image.flush()
        if offset != size:
            raise exception.LocalFileError(
                path=path, reason='changed size while being read')
        return digest.hexdigest()

    @staticmethod
    def _qemu_rbd_target(rbd_name):
        def esc(value):
            return value.replace('\\', '\\\\').replace(':', '\\:')
        parts = ['rbd:%s/%s' % (CONF.ceph.image_pool, rbd_name),
                 'id=' + esc(CONF.ceph.user),
                 'conf=' + esc(CONF.ceph.conf_file)]
        if CONF.ceph.keyring:
            parts.append('keyring=' + esc(CONF.ceph.keyring))
        return ':'.join(parts)

    def _convert_into(self, path, fmt, rbd_name):
        """Stream a non-raw image into the (existing, empty) RBD image."""
        try:
            processutils.execute(
                'qemu-img', 'convert', '-n', '-f', fmt, '-O', 'raw',
                '-m', '4', '-W', path, self._qemu_rbd_target(rbd_name))
        except processutils.ProcessExecutionError as e:
            raise exception.ImageFormatError(
                path=path, reason='qemu-img convert failed: %s'
                % (e.stderr or e).strip())

    def _inspect_file(self, path):
        """(format, virtual size) of a local disk image, or a clear error.

        Only raw and qcow2 are accepted; a qcow2 that names a backing or
        data file is refused (it would read other files of this host).
        """
        if not os.path.isfile(path):
            raise exception.LocalFileError(path=path,
                                           reason='no such file')
        if not os.access(path, os.R_OK):
            raise exception.LocalFileError(path=path, reason='not readable')
        try:
            out, _err = processutils.execute(
                'qemu-img', 'info', '--output=json', path,
                prlimit=_QEMU_IMG_LIMITS)
            info = json.loads(out)
        except (processutils.ProcessExecutionError, ValueError) as e:
            raise exception.ImageFormatError(
                path=path, reason='qemu-img cannot read it: %s'
                % str(getattr(e, 'stderr', '') or e).strip())
        fmt = info.get('format')
        size = info.get('virtual-size') or 0
        if fmt == 'raw':
            # qemu-img rounds a raw file's size up to whole sectors.
            size = os.path.getsize(path)
        if fmt not in ('raw', 'qcow2'):
            raise exception.ImageFormatError(
                path=path, reason='format %s is not raw or qcow2' % fmt)
        if info.get('backing-filename') or (
                info.get('format-specific', {}).get('data', {})
                .get('data-file')):
            raise exception.ImageFormatError(
                path=path, reason='it refers to a backing or data file')
        if size <= 0 or size % SECTOR:
            raise exception.ImageFormatError(
                path=path, reason='its size (%d bytes) is not a whole '
                'number of %d-byte sectors' % (size, SECTOR))
        return fmt, size

    # -- node disks ------------------------------------------------------

    @rbd_utils.retry_transient
    def resolve_source(self, image_source, project=None):
        """What a node would be cloned from for ``image_source``.

        ``image_source`` is a golden image (UUID or name) or the UUID of a
        Glance image in ``[ceph] glance_pool``.  A private golden image of
        another project than ``project`` is refused.
        """
        if isinstance(image_source, ImageSource):
            return image_source
        with self._clients.get() as client:
            return self._resolve(client, image_source, project)

    def _resolve(self, client, image_source, project):
        try:
            img = self._find(client, image_source, count_clones=False)
        except exception.ImageNotFound:
            img = None
        except exception.InvalidName:
            raise exception.ImageNotFound(image=image_source)
        if img is not None:
            if (project and img.visibility != 'public'
                    and img.project != project):
                raise exception.ImageNotVisible(image=img.uuid,
                                                owner=img.project,
                                                project=project)
            return ImageSource(uuid=img.uuid, kind='golden', pool=img.pool,
                               rbd_name=img.rbd_name, snapshot=GOLDEN_SNAP,
                               size=img.size, project=img.project,
                               visibility=img.visibility,
                               metadata=self._golden_meta(img))
        if uuidutils.is_uuid_like(image_source):
            glance_name = str(image_source).lower()
            try:
                with rbd.Image(client.ioctx(CONF.ceph.glance_pool),
                               glance_name, snapshot=GLANCE_SNAP,
                               read_only=True) as image:
                    return ImageSource(uuid=glance_name, kind='glance',
                                       pool=CONF.ceph.glance_pool,
                                       rbd_name=glance_name,
                                       snapshot=GLANCE_SNAP,
                                       size=image.size())
            except (rbd.ImageNotFound, exception.CephPoolNotFound):
                pass
        raise exception.ImageNotFound(image=image_source)

    def _read_node_disk(self, client, node_uuid):
        ioctx = client.ioctx(self.clone_pool)
        rbd_name = node_rbd_name(node_uuid)
        try:
            with rbd.Image(ioctx, rbd_name, read_only=True) as image:
                disk = NodeDisk(node_uuid=node_uuid, pool=self.clone_pool,
                                rbd_name=rbd_name, size=image.size(),
                                parent=_parent_spec(image),
                                metadata=dict(image.metadata_list()))
        except rbd.ImageNotFound:
            raise exception.CloneNotFound(node=node_uuid, clone=rbd_name)
        cd_name = configdrive_rbd_name(node_uuid)
        try:
            with rbd.Image(ioctx, cd_name, read_only=True) as image:
                disk.configdrive = NodeDisk(
                    node_uuid=node_uuid, pool=self.clone_pool,
                    rbd_name=cd_name, size=image.size(),
                    metadata=dict(image.metadata_list()))
        except rbd.ImageNotFound:
            pass
        return disk

    @rbd_utils.retry_transient
    def clone_for_node(self, node_uuid, image_source, size=None,
                       project=None):
        """The node's copy-on-write disk, made if missing.

        Idempotent: an existing clone of the same source is returned (grown
        to ``size`` if that is larger); a clone of another source is an
        error, since the node's data would be lost.  The clone records
        nothing of its own: its name says the node, its parent the source
        and RBD its creation time; it inherits the golden image's metadata.
        """
        node_uuid = names.node_uuid(node_uuid)
        if size is not None and (not isinstance(size, int) or size < 0):
            raise exception.InvalidInput(reason='size must be a positive '
                                         'number of bytes, not %r' % size)
        with self._clients.get() as client:
            source = image_source
            if not isinstance(source, ImageSource):
                source = self._resolve(client, image_source, project)
            ioctx = client.ioctx(self.clone_pool)
            rbd_name = node_rbd_name(node_uuid)
            with rbd_utils.ceph_errors(rbd_name):
                try:
                    rbd.RBD().clone(client.ioctx(source.pool),
                                    source.rbd_name, source.snapshot, ioctx,
                                    rbd_name, features=_features())
                except rbd.ImageExists:
                    disk = self._read_node_disk(client, node_uuid)
                    if disk.parent != source.spec:
                        raise exception.BmiException(
                            'Node %s already has a disk cloned from %s, not '
                            '%s: remove it first.'
                            % (node_uuid, disk.parent, source.spec))
                    if size and size > disk.size:
                        self._grow(ioctx, rbd_name, size)
                        disk.size = size
                    return disk
            disk = NodeDisk(node_uuid=node_uuid, pool=self.clone_pool,
                            rbd_name=rbd_name, size=source.size,
                            parent=source.spec,
                            metadata=dict(source.metadata))
            if size and size > source.size:
                try:
                    with rbd_utils.ceph_errors(rbd_name):
                        self._grow(ioctx, rbd_name, size)
                except BaseException:
                    self._undo(ioctx, rbd_name, 'clone')
                    raise
                disk.size = size
            LOG.info('Cloned %(src)s for node %(node)s',
                     {'src': source.spec, 'node': node_uuid})
            return disk

    @staticmethod
    def _grow(ioctx, rbd_name, size):
        with rbd.Image(ioctx, rbd_name) as image:
            image.resize(size, allow_shrink=False)

    @rbd_utils.retry_transient
    def get_node_disk(self, node_uuid):
        node_uuid = names.node_uuid(node_uuid)
        with self._clients.get() as client:
            return self._read_node_disk(client, node_uuid)

    @rbd_utils.retry_transient
    def list_node_disks(self):
        with self._clients.get() as client:
            disks = []
            for rbd_name in rbd.RBD().list(client.ioctx(self.clone_pool)):
                node = rbd_name[len(NODE_PREFIX):]
                if (not rbd_name.startswith(NODE_PREFIX)
                        or not uuidutils.is_uuid_like(node)):
                    continue
                try:
                    disks.append(self._read_node_disk(client, node))
                except exception.CloneNotFound:
                    continue
            return disks

    @rbd_utils.retry_transient
    def remove_node_disk(self, node_uuid):
        """Remove the node's clone and config drive; missing is fine.

        Leftover temporary snapshots of an interrupted snapshot_node() go
        with it.  A disk still open (exported) is refused as busy.
        """
        node_uuid = names.node_uuid(node_uuid)
        with self._clients.get() as client:
            ioctx = client.ioctx(self.clone_pool)
            # A config drive is usually absent, the clone usually there.
            for rbd_name, probe in ((configdrive_rbd_name(node_uuid), True),
                                    (node_rbd_name(node_uuid), False)):
                with rbd_utils.ceph_errors(rbd_name):
                    if self._remove_if_present(ioctx, rbd_name, probe):
                        LOG.info('Removed %(img)s of node %(node)s',
                                 {'img': rbd_name, 'node': node_uuid})

    def _remove_if_present(self, ioctx, rbd_name, probe=True):
        """Remove an image and its snapshots: False if it was not there.

        ``probe``: look first with a read-only open, which fails in about a
        millisecond for a missing image, where a remove looks in the trash
        and elsewhere first (over 15 ms).
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
                self._purge_snapshots(ioctx, rbd_name)
                rbd.RBD().remove(ioctx, rbd_name)
        except rbd.ImageNotFound:
            return False
        return True

    @staticmethod
    def _purge_snapshots(ioctx, rbd_name):
        with rbd.Image(ioctx, rbd_name) as image:
            for snap in _snap_names(image):
                if image.is_protected_snap(snap):
                    image.unprotect_snap(snap)
                image.remove_snap(snap)

    @rbd_utils.retry_transient
    def set_node_metadata(self, node_uuid, metadata):
        """Set metadata keys on the node's clone; an empty value removes."""
        node_uuid = names.node_uuid(node_uuid)
        with self._clients.get() as client:
            rbd_name = node_rbd_name(node_uuid)
            try:
                with rbd.Image(client.ioctx(self.clone_pool),
                               rbd_name) as image:
                    for key, value in metadata.items():
                        _set_metadata(image, key, value)
            except rbd.ImageNotFound:
                raise exception.CloneNotFound(node=node_uuid, clone=rbd_name)

    def remove_node_metadata(self, node_uuid, keys):
        """Remove metadata keys from the node's clone; missing is fine."""
        self.set_node_metadata(node_uuid, dict.fromkeys(keys, ''))

    @rbd_utils.retry_transient
    def write_node_configdrive(self, node_uuid, data):
        """Store the node's config drive (bytes of an ISO 9660 or vfat image).

        Idempotent: the same content is left as it is; other content
        replaces it (refused as busy while it is exported).
        """
        node_uuid = names.node_uuid(node_uuid)
        if not isinstance(data, bytes) or not data:
            raise exception.InvalidInput(reason='the config drive must be '
                                         'non-empty bytes')
        checksum = 'sha256:' + hashlib.sha256(data).hexdigest()
        with self._clients.get() as client:
            ioctx = client.ioctx(self.clone_pool)
            rbd_name = configdrive_rbd_name(node_uuid)
            with rbd_utils.ceph_errors(rbd_name):
                try:
                    with rbd.Image(ioctx, rbd_name, read_only=True) as image:
                        # No checksum: a write that died half way.
                        same = (dict(image.metadata_list())
                                .get(META_CHECKSUM) == checksum)
                except rbd.ImageNotFound:
                    same = None
                if same:
                    return self._read_node_disk(client, node_uuid).configdrive
                if same is not None:
                    rbd.RBD().remove(ioctx, rbd_name)
                size = -(-len(data) // SECTOR) * SECTOR
                rbd.RBD().create(ioctx, rbd_name, size, features=_features())
            try:
                with rbd_utils.ceph_errors(rbd_name):
                    with rbd.Image(ioctx, rbd_name) as image:
                        image.write(data, 0)
                        image.flush()
                        image.metadata_set(META_CHECKSUM, checksum)
            except BaseException:
                self._undo(ioctx, rbd_name, 'config drive write')
                raise
            return NodeDisk(node_uuid=node_uuid, pool=self.clone_pool,
                            rbd_name=rbd_name, size=size,
                            metadata={META_CHECKSUM: checksum})

    @rbd_utils.retry_transient
    def remove_node_configdrive(self, node_uuid):
        node_uuid = names.node_uuid(node_uuid)
        rbd_name = configdrive_rbd_name(node_uuid)
        with self._clients.get() as client:
            with rbd_utils.ceph_errors(rbd_name):
                self._remove_if_present(client.ioctx(self.clone_pool),
                                        rbd_name)

    @rbd_utils.retry_transient
    def snapshot_node(self, node_uuid, name, project=None,
                      visibility='private', progress=None):
        """Save a node's disk as a new, independent golden image.

        A temporary snapshot gives a crash-consistent point in time while
        the node keeps running (and writing) on its clone; the new image is
        cloned from it and flattened, so it depends on neither the node
        nor the node's golden image, and the temporary snapshot goes.
        """
        node_uuid = names.node_uuid(node_uuid)
        project = self._new_image_args(name, project, visibility)
        with self._clients.get() as client:
            self._check_name_free(client, name)
            ioctx = client.ioctx(self.clone_pool)
            rbd_name = node_rbd_name(node_uuid)
            temp = TEMP_SNAP_PREFIX + uuidutils.generate_uuid()
            try:
                with rbd.Image(ioctx, rbd_name) as disk:
                    _protected_snapshot(disk, temp)
            except rbd.ImageNotFound:
                raise exception.CloneNotFound(node=node_uuid, clone=rbd_name)
            except rbd.Error as e:
                raise rbd_utils.map_rbd_error(e, rbd_name)
            try:
                new = self._flat_copy(
                    client, ioctx, rbd_name, temp,
                    self._new_meta(name, project, visibility,
                                   'snapshot:node %s' % node_uuid),
                    progress)
            finally:
                try:
                    with rbd.Image(ioctx, rbd_name) as disk:
                        disk.unprotect_snap(temp)
                        disk.remove_snap(temp)
                except rbd.Error as e:
                    LOG.warning('Could not remove the temporary snapshot '
                                '%(snap)s of %(img)s: %(err)s; it goes with '
                                'the node\'s disk', {'snap': temp,
                                                     'img': rbd_name,
                                                     'err': e})
            LOG.info('Saved the disk of node %(node)s as image %(name)s '
                     '(%(uuid)s)', {'node': node_uuid, 'name': name,
                                    'uuid': new})
            return self._read_golden(client, new)
