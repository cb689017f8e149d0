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

"""Fake ``rados`` and ``rbd`` bindings over an in-memory Ceph cluster.

In the manner of glance_store's rbd tests, the exceptions are real classes
with the bindings' hierarchy, so ``except rbd.ImageNotFound`` and
``isinstance(e, rados.Error)`` behave as with librbd.  Unlike a plain mock,
:class:`Cluster` models enough of RBD for the library to run for real:
pools, sparse images, metadata (copied into clones, as librbd does),
snapshots that freeze the data, protection, copy-on-write clones (format 2
by default: a snapshot with children may be unprotected, and removing it
moves it to the snapshot trash, listed by list_snaps() in the trash
namespace), flatten, resize, watchers and the RBD trash (an image with
snapshots is refused there as by rbd.RBD().remove()).  A clone's link to
its parent snapshot is by identity, as RBD's by image id: it survives the
parent's move to the trash and never follows a new image of the old name.
Behaviours were checked against Ceph 16.2's python bindings on the test
cluster; the RBD trash's refusal of an image with snapshots (ENOTEMPTY),
the snapshot trash in list_snaps() and create_timestamp() (naive UTC)
follow the librbd and rbd.pyx sources, not yet checked on the cluster.

Failure injection: ``cluster.inject('protect_snap', rbd.ImageBusy)`` makes
the next call of that operation raise; ``times``, ``skip`` and ``image``
narrow it.  Every call is recorded in ``cluster.calls`` as ``(op, name)``.
"""

import datetime
import itertools
import json
import uuid

import fixtures

from bmi_driver.storage.ceph import library
from bmi_driver.storage.ceph import rbd_utils
from bmi_driver.storage import glance_client
from tests import base

BLOCK = 4096


def _utcnow():
    """Naive UTC, as the binding's times (create_timestamp, trash_list)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class rados:  # noqa: N801 - stands for the module
    """The fake ``rados`` module."""

    cluster = None  # the Cluster that Rados() connects to; set by FakeCeph

    class Error(Exception):
        """Base of the binding's errors."""

    class OSError(Error):
        def __init__(self, message, errno=None):
            super().__init__(message)
            self.errno = errno

        def __str__(self):
            return '[errno %s] %s' % (self.errno, self.args[0])

    class PermissionError(OSError):
        pass

    class PermissionDeniedError(OSError):
        pass

    class ObjectNotFound(OSError):
        pass

    class NoData(OSError):
        pass

    class ObjectExists(OSError):
        pass

    class ObjectBusy(OSError):
        pass

    class IOError(OSError):
        pass

    class NoSpace(OSError):
        pass

    class NotConnected(OSError):
        pass

    class TimedOut(OSError):
        pass

    class ConnectionShutdown(OSError):
        pass

    class InterruptedOrTimeoutError(OSError):
        pass

    class InvalidArgumentError(Error):
        pass

    class RadosStateError(Error):
        pass

    class IoctxStateError(Error):
        pass

    class LogicError(Error):
        pass

    class Rados:
        def __init__(self, rados_id=None, name=None, clustername=None,
                     conf_defaults=None, conffile=None, conf=None, flags=0):
            self.cluster = rados.cluster
            assert self.cluster is not None, 'use the FakeCeph fixture'
            self.rados_id = rados_id
            self.conffile = conffile
            self.conf = dict(conf or {})
            self.state = 'configuring'
            self.cluster.call('Rados', rados_id)
            self.cluster.clients.append(self)

        def connect(self, timeout=0):
            self.cluster.call('connect', self.rados_id)
            if self.state != 'configuring':
                raise rados.RadosStateError('already connected')
            if not self.cluster.reachable:
                raise rados.TimedOut('error connecting to the cluster', 110)
            if self.rados_id not in self.cluster.users:
                raise rados.PermissionDeniedError(
                    'error connecting to the cluster', 13)
            self.state = 'connected'

        def open_ioctx(self, pool):
            self.cluster.call('open_ioctx', pool)
            if self.state != 'connected':
                raise rados.RadosStateError('not connected')
            if pool not in self.cluster.pools:
                raise rados.ObjectNotFound(
                    "error opening pool '%s'" % pool, 2)
            return rados.Ioctx(self, pool)

        def mon_command(self, cmd, inbuf, timeout=0, target=None):
            """The few monitor commands the library sends (Ceph 16.2)."""
            import json
            cmd = json.loads(cmd)
            self.cluster.call('mon_command', cmd['prefix'])
            return self.cluster.mon(cmd)

        def get_fsid(self):
            return self.cluster.fsid

        def shutdown(self):
            self.cluster.call('shutdown', self.rados_id)
            self.state = 'shutdown'

    class Ioctx:
        def __init__(self, client, pool):
            self.client = client
            self.cluster = client.cluster
            self.name = pool
            self.closed = False

        @property
        def images(self):
            return self.cluster.pools[self.name]

        def close(self):
            self.closed = True


class rbd:  # noqa: N801 - stands for the module
    """The fake ``rbd`` module."""

    RBD_FEATURE_LAYERING = 1
    RBD_FEATURE_STRIPINGV2 = 2
    RBD_FEATURE_EXCLUSIVE_LOCK = 4
    RBD_FEATURE_OBJECT_MAP = 8
    RBD_FEATURE_FAST_DIFF = 16
    RBD_FEATURE_DEEP_FLATTEN = 32
    RBD_FEATURE_JOURNALING = 64

    RBD_SNAP_NAMESPACE_TYPE_USER = 0
    RBD_SNAP_NAMESPACE_TYPE_GROUP = 1
    RBD_SNAP_NAMESPACE_TYPE_TRASH = 2
    RBD_SNAP_NAMESPACE_TYPE_MIRROR = 3

    class Error(Exception):
        """Base of the binding's errors."""

    class OSError(Error):
        def __init__(self, message, errno=None):
            super().__init__(message)
            self.errno = errno

        def __str__(self):
            return '[errno %s] %s' % (self.errno, self.args[0])

    class PermissionError(OSError):
        pass

    class ImageNotFound(OSError):
        pass

    class ObjectNotFound(OSError):
        pass

    class ImageExists(OSError):
        pass

    class ObjectExists(OSError):
        pass

    class IOError(OSError):
        pass

    class NoSpace(OSError):
        pass

    class IncompleteWriteError(OSError):
        pass

    class InvalidArgument(OSError):
        pass

    class LogicError(OSError):
        pass

    class ReadOnlyImage(OSError):
        pass

    class ImageBusy(OSError):
        pass

    class ImageHasSnapshots(OSError):
        pass

    class FunctionNotSupported(OSError):
        pass

    class ArgumentOutOfRange(OSError):
        pass

    class ConnectionShutdown(OSError):
        pass

    class Timeout(OSError):
        pass

    class DiskQuotaExceeded(OSError):
        pass

    class OperationNotSupported(OSError):
        pass

    class OperationCanceled(OSError):
        pass

    class RBD:
        def create(self, ioctx, name, size, order=None, old_format=False,
                   features=None, *args, **kwargs):
            cluster = ioctx.cluster
            cluster.call('create', name)
            if name in ioctx.images:
                raise rbd.ImageExists('error creating image', 17)
            ioctx.images[name] = _Image(ioctx.name, name, size, features)

        def clone(self, p_ioctx, p_name, p_snapname, c_ioctx, c_name,
                  features=None, *args, **kwargs):
            cluster = p_ioctx.cluster
            cluster.call('clone', c_name)
            if features is not None and not (
                    features & rbd.RBD_FEATURE_LAYERING):
                raise rbd.InvalidArgument('layering is required', 22)
            parent = p_ioctx.images.get(p_name)
            snap = parent and parent.snaps.get(p_snapname)
            if snap is None:
                raise rbd.ImageNotFound('error opening parent snapshot', 2)
            if cluster.clone_format == 1 and not snap.protected:
                raise rbd.InvalidArgument('parent snapshot must be '
                                          'protected', 22)
            if c_name in c_ioctx.images:
                raise rbd.ImageExists('error creating clone', 17)
            child = _Image(c_ioctx.name, c_name, snap.size, features)
            child.parent = (p_ioctx.name, p_name, p_snapname)
            child.parent_snap = snap
            child.overlap = snap.size
            child.metadata = dict(parent.metadata)
            snap.children.add(child)
            c_ioctx.images[c_name] = child

        def remove(self, ioctx, name, on_progress=None):
            cluster = ioctx.cluster
            cluster.call('remove', name)
            image = ioctx.images.get(name)
            if image is None:
                raise rbd.ImageNotFound('error removing image', 2)
            if image.snaps or image.trash_snaps:
                raise rbd.ImageHasSnapshots('error removing image', 39)
            if image.watchers or cluster.stale(image):
                raise rbd.ImageBusy('error removing image', 16)
            cluster.unlink_parent(image)
            del ioctx.images[name]

        def trash_move(self, ioctx, name, delay=0):
            cluster = ioctx.cluster
            cluster.call('trash_move', name)
            image = ioctx.images.pop(name, None)
            if image is None:
                raise rbd.ImageNotFound('error moving image to trash', 2)
            image.trash_id = image.id
            image.deferment = _utcnow() + datetime.timedelta(seconds=delay)
            cluster.trash.setdefault(ioctx.name, {})[image.trash_id] = image

        def trash_list(self, ioctx):
            ioctx.cluster.call('trash_list', ioctx.name)
            return iter([{'id': i, 'name': im.name, 'source': 'USER',
                          'deferment_end_time': im.deferment,
                          'deletion_time': im.deferment}
                         for i, im in sorted(ioctx.cluster.trash.get(
                             ioctx.name, {}).items())])

        def trash_remove(self, ioctx, image_id, force=False,
                         on_progress=None):
            cluster = ioctx.cluster
            cluster.call('trash_remove', image_id)
            trash = cluster.trash.get(ioctx.name, {})
            image = trash.get(image_id)
            if image is None:
                raise rbd.ImageNotFound('error deleting image from trash', 2)
            # librbd removes a trashed image as any other: ENOTEMPTY while
            # it has snapshots (also those in the snapshot trash).
            if image.snaps or image.trash_snaps:
                raise rbd.ImageHasSnapshots(
                    'error deleting image from trash', 39)
            if image.watchers or cluster.stale(image):
                raise rbd.ImageBusy('error deleting image from trash', 16)
            cluster.unlink_parent(image)
            del trash[image_id]

        def list(self, ioctx):
            ioctx.cluster.call('list', ioctx.name)
            return sorted(ioctx.images)

        # Pool metadata, as Ceph 16.2's rbd.pyx: a missing key is a
        # KeyError for get and remove; list yields (key, value).
        def pool_metadata_get(self, ioctx, key):
            ioctx.cluster.call('pool_metadata_get', key)
            try:
                return ioctx.cluster.pool_meta(ioctx.name)[key]
            except KeyError:
                raise KeyError('no metadata %s' % key)

        def pool_metadata_set(self, ioctx, key, value):
            ioctx.cluster.call('pool_metadata_set', key)
            ioctx.cluster.pool_meta(ioctx.name)[key] = str(value)

        def pool_metadata_remove(self, ioctx, key):
            ioctx.cluster.call('pool_metadata_remove', key)
            meta = ioctx.cluster.pool_meta(ioctx.name)
            if key not in meta:
                raise KeyError('no metadata %s' % key)
            del meta[key]

        def pool_metadata_list(self, ioctx):
            ioctx.cluster.call('pool_metadata_list', ioctx.name)
            return iter(sorted(ioctx.cluster.pool_meta(ioctx.name).items()))

        def rename(self, ioctx, src, dest):
            cluster = ioctx.cluster
            cluster.call('rename', src)
            image = ioctx.images.get(src)
            if image is None:
                raise rbd.ImageNotFound('error renaming image', 2)
            if dest in ioctx.images:
                raise rbd.ImageExists('error renaming image', 17)
            if image.watchers:
                raise rbd.ImageBusy('error renaming image', 16)
            del ioctx.images[src]
            image.name = dest
            ioctx.images[dest] = image
            for snap_name, snap in image.snaps.items():
                for kid in snap.children:
                    kid.parent = (ioctx.name, dest, snap_name)

    class Image:
        def __init__(self, ioctx, name=None, snapshot=None, read_only=False,
                     image_id=None, _oncomplete=None):
            self.cluster = ioctx.cluster
            self.ioctx = ioctx
            self.name = name
            self.closed = True
            self.cluster.call('open', name)
            self.model = ioctx.images.get(name)
            if image_id is not None:
                self.model = self.cluster.trash.get(ioctx.name,
                                                    {}).get(image_id)
                name = self.name = getattr(self.model, 'name', None)
            if self.model is None or (snapshot is not None and
                                      snapshot not in self.model.snaps):
                raise rbd.ImageNotFound('error opening image %s at '
                                        'snapshot %s' % (name, snapshot), 2)
            self.snap = snapshot
            self.read_only = read_only
            self.closed = False
            self.watching = not read_only
            if self.watching:
                self.model.watchers += 1
            self.cluster.open_images.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()
            return False

        def close(self):
            if self.closed:
                return
            self.closed = True
            if self.watching:
                self.model.watchers -= 1
            self.cluster.open_images.remove(self)

        # -- helpers
        def _op(self, op):
            if self.closed:
                raise rbd.InvalidArgument('image closed', 22)
            self.cluster.call(op, self.name)

        def _view(self):
            return self.model.snaps[self.snap] if self.snap else self.model

        def _writable(self, what):
            if self.read_only or self.snap:
                raise rbd.ReadOnlyImage('error %s %s' % (what, self.name),
                                        30)

        def _snap(self, name):
            snap = self.model.snaps.get(name)
            if snap is None:
                raise rbd.ImageNotFound('no snapshot %s' % name, 2)
            return snap

        # -- data
        def size(self):
            self._op('size')
            return self._view().size

        def read(self, offset, length, fadvise_flags=0):
            self._op('read')
            view = self._view()
            if offset > view.size:
                raise rbd.InvalidArgument('error reading %s %d~%d'
                                          % (self.name, offset, length), 22)
            length = min(length, view.size - offset)
            return self.cluster.read(view, offset, length)

        def write(self, data, offset, fadvise_flags=0):
            self._op('write')
            self._writable('writing to')
            model = self.model
            if offset >= model.size:
                raise rbd.InvalidArgument('error writing', 22)
            if offset + len(data) > model.size:
                done = model.size - offset
                self.cluster.write(model, offset, data[:done])
                raise rbd.IncompleteWriteError(
                    'Wrote only %d out of %d bytes' % (done, len(data)))
            self.cluster.write(model, offset, data)
            return len(data)

        def flush(self):
            self._op('flush')

        def resize(self, size, allow_shrink=True):
            self._op('resize')
            self._writable('resizing')
            model = self.model
            if size < model.size:
                if not allow_shrink:
                    raise rbd.InvalidArgument('allow_shrink is False but '
                                              'old_size > new_size')
                for block in [b for b in model.blocks if b * BLOCK >= size]:
                    del model.blocks[block]
                model.overlap = min(model.overlap, size)
            model.size = size

        def flatten(self, on_progress=None):
            self._op('flatten')
            self._writable('flattening')
            model = self.model
            if model.parent is None:
                raise rbd.InvalidArgument('image has no parent', 22)
            total = max(1, -(-model.overlap // BLOCK))
            for n, block in enumerate(range(total)):
                if block not in model.blocks and block * BLOCK < model.size:
                    length = min(BLOCK, model.size - block * BLOCK)
                    data = self.cluster.read(model, block * BLOCK, length)
                    if any(data):
                        model.blocks[block] = data.ljust(BLOCK, b'\0')
                if on_progress is not None:
                    ret = on_progress(n + 1, total)
                    if not isinstance(ret, int):
                        # librbd prints "an integer is required" and goes on
                        self.cluster.callback_errors.append(
                            'flatten progress returned %r' % (ret,))
            self.cluster.unlink_parent(model)

        # -- snapshots
        def list_snaps(self):
            """Every namespace, as Ceph 16's rbd_snap_list.

            A snapshot in the snapshot trash has a UUID for a name (the
            calls by name do not know it) and its old name under 'trash'.
            """
            self._op('list_snaps')
            return iter([{'id': s.id, 'size': s.size, 'name': name,
                          'namespace': rbd.RBD_SNAP_NAMESPACE_TYPE_USER}
                         for name, s in self.model.snaps.items()]
                        + [{'id': s.id, 'size': s.size, 'name': s.trash_name,
                            'namespace': rbd.RBD_SNAP_NAMESPACE_TYPE_TRASH,
                            'trash': {'original_name': s.original_name}}
                           for s in self.model.trash_snaps])

        def create_snap(self, name):
            self._op('create_snap')
            self._writable('creating snapshot')
            if name in self.model.snaps:
                raise rbd.ImageExists('error creating snapshot', 17)
            self.model.snaps[name] = _Snap(self.model)

        def remove_snap(self, name):
            self._op('remove_snap')
            snap = self._snap(name)
            if snap.protected:
                raise rbd.ImageBusy('error removing snapshot %s' % name, 16)
            del self.model.snaps[name]
            if snap.children:  # clone v2: the snapshot goes to the trash
                snap.trash_name = str(uuid.uuid4())
                snap.original_name = name
                self.model.trash_snaps.append(snap)

        def protect_snap(self, name):
            self._op('protect_snap')
            snap = self._snap(name)
            if snap.protected:
                raise rbd.ImageBusy('error protecting snapshot', 16)
            snap.protected = True

        def unprotect_snap(self, name):
            self._op('unprotect_snap')
            snap = self._snap(name)
            if not snap.protected:
                raise rbd.InvalidArgument('error unprotecting snapshot', 22)
            if snap.children and self.cluster.clone_format == 1:
                raise rbd.ImageBusy('error unprotecting snapshot', 16)
            snap.protected = False

        def is_protected_snap(self, name):
            self._op('is_protected_snap')
            return self._snap(name).protected

        def set_snap(self, name):
            self._op('set_snap')
            if name is not None:
                self._snap(name)
            self.snap = name

        def list_children2(self):
            self._op('list_children2')
            snaps = ([self._snap(self.snap)] if self.snap
                     else list(self.model.snaps.values()))
            children = sorted(itertools.chain.from_iterable(
                s.children for s in snaps), key=lambda c: (c.pool, c.name))
            return iter([{'pool': c.pool, 'pool_namespace': '',
                          'image': c.name, 'id': c.id,
                          'trash': c.trash_id is not None}
                         for c in children])

        def get_parent_image_spec(self):
            self._op('get_parent_image_spec')
            parent = self._view().parent
            if parent is None:
                raise rbd.ImageNotFound('error getting parent info', 2)
            return {'pool_name': parent[0], 'pool_namespace': '',
                    'image_name': parent[1], 'snap_name': parent[2]}

        def create_timestamp(self):
            self._op('create_timestamp')
            return self.model.created

        def watchers_list(self):
            self._op('watchers_list')
            live = [{'addr': '127.0.0.1:0/%d' % (1000 + n), 'id': 4000 + n,
                     'cookie': n} for n in range(self.model.watchers)]
            return iter(live + [{'addr': a, 'id': 1, 'cookie': 1}
                                for a in self.cluster.stale(self.model)])

        # -- metadata
        def metadata_get(self, key):
            self._op('metadata_get')
            try:
                return self.model.metadata[key]
            except KeyError:
                raise KeyError('no metadata %s for image %s'
                               % (key, self.name))

        def metadata_set(self, key, value):
            self._op('metadata_set')
            self._writable('setting metadata')
            self.model.metadata[key] = str(value)

        def metadata_remove(self, key):
            self._op('metadata_remove')
            self._writable('removing metadata')
            if key not in self.model.metadata:
                raise KeyError('no metadata %s for image %s'
                               % (key, self.name))
            del self.model.metadata[key]

        def metadata_list(self):
            """Like Ceph 16's binding: values shift after an empty one."""
            self._op('metadata_list')
            items = sorted(self.model.metadata.items())
            keys = [k for k, _v in items]
            values = [v for _k, v in items if v]
            values += [''] * (len(keys) - len(values))
            return iter(list(zip(keys, values)))


class _Image:
    """The cluster's record of one RBD image."""

    def __init__(self, pool, name, size, features):
        self.pool = pool
        self.name = name
        self.size = size
        self.features = features
        self.blocks = {}  # block number -> BLOCK bytes (sparse)
        self.metadata = {}
        self.id = uuid.uuid4().hex[:12]
        self.created = _utcnow()  # what create_timestamp() answers
        self.snaps = {}  # name -> _Snap, in creation order
        self.trash_snaps = []
        self.parent = None  # (pool, image, snapshot): its spec
        self.parent_snap = None  # the _Snap itself, as RBD links by id
        self.overlap = 0
        self.trash_id = None  # in the RBD trash
        self.watchers = 0
        # Watches of dead clients (a killed tgtd): addresses.
        self.stale_watchers = []


class _Snap:
    """A snapshot: the image's data, size and parent, frozen."""

    _ids = itertools.count(4)

    def __init__(self, image):
        self.id = next(self._ids)
        self.size = image.size
        self.blocks = dict(image.blocks)
        self.owner = image
        self.parent = image.parent
        self.parent_snap = image.parent_snap
        self.overlap = image.overlap
        self.protected = False
        self.children = set()  # _Image
        self.trash_name = self.original_name = None  # in the snapshot trash


class Cluster:
    """An in-memory Ceph cluster: pools of RBD images."""

    def __init__(self, pools=('bmi-images', 'images'), users=('bmi',)):
        self.pools = {pool: {} for pool in pools}
        self.users = set(users)
        self.reachable = True
        self.fsid = '7b0c52b6-3b6a-4bd1-9d0e-5f1f0e1ad9c1'
        self.clone_format = 2
        self.calls = []
        self.clients = []
        self.open_images = []
        self.callback_errors = []
        self.trash = {}  # pool -> {id: _Image}
        self.pool_metadata = {}  # pool -> {key: value}
        self.blocklist = {}  # addr -> expiry seconds
        self.pool_flags = {}  # pool -> set of OSD map flags
        self.quotas = {}  # pool -> get-quota answer
        self.max_avail = {}  # pool -> bytes
        self.health = {'status': 'HEALTH_OK', 'checks': {}}
        self._faults = []

    # -- failure injection and call records
    def inject(self, op, error, times=1, skip=0, image=None):
        """Make the next ``times`` calls of ``op`` raise ``error``.

        ``skip`` calls pass first; ``image`` limits it to one image name.
        ``error`` is an exception class (built with a message and errno 5)
        or instance.
        """
        self._faults.append({'op': op, 'error': error, 'times': times,
                             'skip': skip, 'image': image})

    def call(self, op, name=None):
        self.calls.append((op, name))
        for fault in self._faults:
            if fault['op'] != op or fault['times'] <= 0 or (
                    fault['image'] is not None and fault['image'] != name):
                continue
            if fault['skip'] > 0:
                fault['skip'] -= 1
                continue
            fault['times'] -= 1
            error = fault['error']
            if isinstance(error, type):
                if issubclass(error, (rbd.OSError, rados.OSError)):
                    error = error('injected failure of %s' % op, 5)
                else:
                    error = error('injected failure of %s' % op)
            raise error

    def pool_meta(self, pool):
        """The pool's own metadata (rbd pool-metadata)."""
        return self.pool_metadata.setdefault(pool, {})

    def count(self, op):
        return sum(1 for o, _n in self.calls if o == op)

    @property
    def connections(self):
        return [c for c in self.clients if c.state == 'connected']

    # -- state, for assertions and set-up
    def image(self, pool, name):
        return self.pools[pool][name]

    def names(self, pool):
        return sorted(self.pools[pool])

    def add_image(self, pool, name, data=b'', size=None, snap=None,
                  protect=True, metadata=None):
        """Make an image directly (a Glance image, a foreign image)."""
        image = _Image(pool, name, size or len(data), None)
        self.write(image, 0, data)
        image.metadata.update(metadata or {})
        if snap:
            image.snaps[snap] = _Snap(image)
            image.snaps[snap].protected = protect
        self.pools[pool][name] = image
        return image

    def content(self, pool, name, snap=None):
        image = self.pools[pool][name]
        view = image.snaps[snap] if snap else image
        return self.read(view, 0, view.size)

    def watch(self, pool, name):
        """Another client (tgtd) opens the image."""
        self.pools[pool][name].watchers += 1

    def stale_watch(self, pool, name, addr='127.0.0.1:0/3870562293'):
        """A client that watched the image died (kill -9 of tgtd)."""
        self.pools[pool][name].stale_watchers.append(addr)

    def stale(self, image):
        return [a for a in image.stale_watchers if a not in self.blocklist]

    def mon(self, cmd):
        """(ret, out, status) of a monitor command, as Ceph 16.2 answers."""
        import json
        prefix = cmd['prefix']
        if prefix == 'osd blocklist' and cmd.get('blocklistop') == 'add':
            self.blocklist[cmd['addr']] = cmd.get('expire')
            return 0, b'', 'blocklisting %s' % cmd['addr']
        if prefix == 'osd dump':
            out = {'pools': [{'pool_name': p, 'flags_names': ','.join(
                sorted({'hashpspool'} | self.pool_flags.get(p, set())))}
                for p in sorted(self.pools)]}
        elif prefix == 'osd pool get-quota':
            if cmd['pool'] not in self.pools:
                return -2, b'', "unrecognized pool '%s'" % cmd['pool']
            out = dict({'pool_name': cmd['pool'], 'quota_max_objects': 0,
                        'quota_max_bytes': 0, 'current_num_objects': 0,
                        'current_num_bytes': 0},
                       **self.quotas.get(cmd['pool'], {}))
        elif prefix == 'df':
            out = {'pools': [{'name': p, 'stats': {
                'max_avail': self.max_avail.get(p, 40 << 30)}}
                for p in sorted(self.pools)]}
        elif prefix == 'health':
            out = self.health
        else:
            return -22, b'', 'command not known to the fake'
        return 0, json.dumps(out).encode(), ''

    # -- data paths shared by images and snapshots
    def read(self, view, offset, length):
        out = bytearray()
        end = offset + length
        pos = offset
        while pos < end:
            block, start = divmod(pos, BLOCK)
            n = min(BLOCK - start, end - pos)
            data = view.blocks.get(block)
            if data is not None:
                out += data[start:start + n]
            elif view.parent_snap is not None and pos < view.overlap:
                n = min(n, view.overlap - pos)
                out += self.read(view.parent_snap, pos, n)
            else:
                out += bytes(n)
            pos += n
        return bytes(out)

    def write(self, image, offset, data):
        pos = 0
        while pos < len(data):
            block, start = divmod(offset + pos, BLOCK)
            n = min(BLOCK - start, len(data) - pos)
            current = bytearray(self.read(image, block * BLOCK, BLOCK)
                                .ljust(BLOCK, b'\0'))
            current[start:start + n] = data[pos:pos + n]
            image.blocks[block] = bytes(current)
            pos += n

    def unlink_parent(self, image):
        """The clone leaves its parent snapshot (removed, flattened).

        A parent snapshot in the snapshot trash goes with its last child,
        as librbd's detach does; the parent may be in the RBD trash.
        """
        snap = image.parent_snap
        image.parent, image.parent_snap, image.overlap = None, None, 0
        if snap is None:
            return
        snap.children.discard(image)
        owner = snap.owner
        owner.trash_snaps = [s for s in owner.trash_snaps if s.children]


class _Response:
    def __init__(self, status_code, body=None):
        self.status_code = status_code
        self.content = json.dumps(body).encode() if body is not None else b''
        self._body = body

    def json(self):
        return self._body


class _Garbled(_Response):
    """A 200 whose body is no JSON (a proxy's page, a cut reply)."""

    def __init__(self):
        super().__init__(200)
        self.content = b'<html>502 Bad Gateway</html>'

    def json(self):
        raise ValueError('Expecting value: line 1 column 1 (char 0)')


class FakeGlanceAPI:
    """Glance's v2 API for the library (a keystoneauth1 Adapter's get()).

    ``add(image_id, **fields)`` records an image as Glance 31.0.0 answers
    it (active, raw, bare, private to ``p1``, its bytes at ``images/<id>
    @snap`` unless told otherwise); ``members[image_id]`` its members.
    """

    def __init__(self):
        self.images = {}
        self.members = {}
        self.calls = []
        self.down = False
        self.refuse_delete = False
        self.refuse_location = False
        self.garbled = False  # GET of an image: 200 with a non-JSON body

    def add(self, image_id, **fields):
        body = {'id': image_id, 'status': 'active', 'disk_format': 'raw',
                'container_format': 'bare', 'size': 0,
                'virtual_size': None, 'checksum': 'c0ffee',
                'os_hash_algo': 'sha512', 'os_hash_value': 'ab' * 64,
                'visibility': 'private', 'owner': 'p1',
                'direct_url': 'rbd://fsid/images/%s/snap' % image_id}
        body.update(fields)
        self.images[image_id] = body
        return body

    def request(self, path, method, raise_exc=True, json=None,
                headers=None):
        if method == 'GET':
            return self.get(path, raise_exc)
        self.calls.append((method, path))
        if self.down:
            from keystoneauth1 import exceptions as ks_exc
            raise ks_exc.ConnectFailure('Glance is down')
        parts = path.strip('/').split('/')
        if method == 'POST' and parts == ['v2', 'images']:
            # Glance 31: the caller may choose the id; a taken one is 409.
            fields = dict(json)
            image_id = fields.pop('id', None) or str(uuid.uuid4())
            if image_id in self.images:
                return _Response(409, {'message': 'image ID %s already '
                                       'exists' % image_id})
            body = self.add(image_id, status='queued', direct_url=None,
                            **fields)
            return _Response(201, body)
        body = self.images.get(parts[2]) if len(parts) > 2 else None
        if body is None:
            return _Response(404, {'message': 'not found'})
        if method == 'DELETE':
            if self.refuse_delete:
                return _Response(500, {'message': 'PermissionError'})
            del self.images[parts[2]]
            return _Response(204, None)
        if method == 'PATCH':
            for op in json:
                if op['path'] == '/locations/-':
                    if self.refuse_location:
                        return _Response(403, {'message': 'forbidden'})
                    body['direct_url'] = op['value']['url']
                    body['status'] = 'active'
                else:
                    body[op['path'][1:]] = op['value']
            return _Response(200, body)
        return _Response(405, None)

    def get(self, path, raise_exc=True):
        self.calls.append(path)
        if self.down:
            from keystoneauth1 import exceptions as ks_exc
            raise ks_exc.ConnectFailure('Glance is down')
        if path.startswith('/v2/images?'):
            return _Response(200, {'images': list(self.images.values())})
        parts = path.strip('/').split('/')
        if self.garbled:
            return _Garbled()
        body = self.images.get(parts[2]) if len(parts) > 2 else None
        if body is None:
            return _Response(404, {'message': 'not found'})
        if parts[3:] == ['members']:
            return _Response(200, {'members': [
                {'member_id': m, 'status': st}
                for m, st in self.members.get(parts[2], {}).items()]})
        return _Response(200, body)


class FakeCeph(fixtures.Fixture):
    """Puts the fake bindings in place of the real ones, on a new cluster."""

    def __init__(self, **cluster_args):
        self.cluster_args = cluster_args

    def _setUp(self):
        self.cluster = Cluster(**self.cluster_args)
        rados.cluster = self.cluster
        self.addCleanup(setattr, rados, 'cluster', None)
        for target in ('bmi_driver.storage.ceph.rbd_utils.rados',):
            self.useFixture(fixtures.MockPatch(target, rados))
        # Every module of the library that names the binding.
        for target in ('bmi_driver.storage.ceph.rbd_utils.rbd',
                       'bmi_driver.storage.ceph.golden.rbd',
                       'bmi_driver.storage.ceph.glance_images.rbd',
                       'bmi_driver.storage.ceph.node_disks.rbd',
                       'bmi_driver.storage.ceph.published.rbd',
                       'bmi_driver.storage.ceph.transfer.rbd'):
            self.useFixture(fixtures.MockPatch(target, rbd))


class TestCase(base.TestCase):
    """A test of the storage library against a fresh fake cluster.

    Each test has its own cluster and connection pool; at the end every
    image handle must be closed and every connection shut down.
    """

    def setUp(self):
        super().setUp()
        self.config(connect_retry_interval=0, group='ceph')
        self.cluster = self.useFixture(FakeCeph()).cluster
        self.clients = rbd_utils.ClientPool()
        self.glance_api = FakeGlanceAPI()
        self.library = library.ImageLibrary(
            clients=self.clients,
            glance=glance_client.GlanceClient(adapter=self.glance_api))
        self.addCleanup(self._check_nothing_left_open)
        self.addCleanup(self.clients.clear)

    def _check_nothing_left_open(self):
        self.assertEqual([], [i.name for i in self.cluster.open_images],
                         'image handles left open')
        self.assertEqual([], self.cluster.connections,
                         'connections left open')
        self.assertEqual([], self.cluster.callback_errors)
