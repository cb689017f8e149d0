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

"""Node disks: copy-on-write clones, config drives, scratch disks, snapshots.

A node's disk is ``node-<uuid>`` in ``[ceph] clone_pool``, a clone of a
golden image's snapshot or of a Glance image; its config drive is
``node-<uuid>-config``, its ephemeral and swap disks ``node-<uuid>-ephemeral``
and ``node-<uuid>-swap`` (:mod:`bmi_driver.storage.layout`).
:class:`NodeDisks` is the other half of
:class:`bmi_driver.storage.ceph.library.ImageLibrary`: it finds images
and saves snapshots through the golden-image half.
"""

import hashlib

from oslo_log import log
from oslo_utils import units
from oslo_utils import uuidutils

from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.storage.ceph import rbd_utils
from bmi_driver.storage.ceph.rbd_utils import rbd
from bmi_driver.storage.ceph import scratch
from bmi_driver.storage.ceph import transfer
from bmi_driver.storage import layout
from bmi_driver.storage import names

LOG = log.getLogger(__name__)


class NodeDisks:
    """Node disk operations (a part of ImageLibrary).

    Needs ``self._clients``, ``self.clone_pool`` and the methods of
    :class:`bmi_driver.storage.ceph.golden.GoldenImages`.
    """

    @rbd_utils.retry_transient
    def resolve_source(self, image_source, project=layout.ANY_PROJECT):
        """What a node would be cloned from for ``image_source``.

        ``image_source`` is a golden image (UUID or name) or the UUID of a
        Glance image (asked of Glance's API, bytes in ``[ceph]
        glance_pool``: :mod:`bmi_driver.storage.ceph.glance_images`).  A
        private golden image of another project than ``project`` is
        refused; ``project`` None (a node of no project) may use public
        images only; :data:`~bmi_driver.storage.layout.ANY_PROJECT` (an
        admin, the default) any.  A Glance image that must be converted
        is not converted here (``kind`` ``glance-convert``): the clone
        does it.

        :raises: ImageNotFound
        :raises: ImageNotVisible for a private image of another project.
        :raises: ImageUnsealed for a golden image whose snapshot golden is
            missing or not protected (an interrupted operation's).
        :raises: GlanceImageUnusable for a Glance image bmi cannot boot
            (not active, a format other than raw, qcow2, vmdk, vdi, vhdx,
            not in Ceph).
        :raises: GlanceError when Glance cannot be asked.
        :raises: CephError (and CephConnectionError, CephPoolNotFound) when
            Ceph fails.
        """
        if isinstance(image_source, layout.ImageSource):
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
            if (project is not layout.ANY_PROJECT
                    and img.visibility != 'public'
                    and img.project != project):
                if not uuidutils.is_uuid_like(image_source):
                    # Found by its name: the refusal must not give the
                    # caller the UUID of another project's image.
                    raise exception.ImageNotFound(image=image_source)
                raise exception.ImageNotVisible(
                    image=img.uuid, owner=img.project,
                    project=project or '(none: a node without owner or '
                                       'lessee may use public images only)')
            if not img.sealed:
                raise exception.ImageUnsealed(image=image_source)
            return layout.ImageSource(
                uuid=img.uuid, kind='golden', pool=img.pool,
                rbd_name=img.rbd_name, snapshot=layout.GOLDEN_SNAP,
                size=img.size, project=img.project,
                visibility=img.visibility, metadata=img.metadata())
        if uuidutils.is_uuid_like(image_source):
            # Not a golden image: Glance says what it is and who may boot
            # it (issue 13); never Glance's RBD pool read blindly.
            return self._resolve_glance(client, str(image_source).lower(),
                                        project)
        raise exception.ImageNotFound(image=image_source)

    def _read_node_disk(self, client, node_uuid):
        ioctx = client.ioctx(self.clone_pool)
        rbd_name = layout.node_rbd_name(node_uuid)
        try:
            with rbd.Image(ioctx, rbd_name, read_only=True) as image:
                disk = layout.NodeDisk(
                    node_uuid=node_uuid, pool=self.clone_pool,
                    rbd_name=rbd_name, size=image.size(),
                    parent=rbd_utils.parent_spec(image),
                    metadata=dict(image.metadata_list()))
        except rbd.ImageNotFound:
            raise exception.CloneNotFound(node=node_uuid, clone=rbd_name)
        disk.configdrive = self._read_part(
            ioctx, node_uuid, layout.configdrive_rbd_name(node_uuid))
        disk.ephemeral = self._read_part(
            ioctx, node_uuid, layout.ephemeral_rbd_name(node_uuid))
        disk.swap = self._read_part(
            ioctx, node_uuid, layout.swap_rbd_name(node_uuid))
        return disk

    def _read_part(self, ioctx, node_uuid, rbd_name):
        """One of the node's other images (config drive...), or None."""
        try:
            with rbd.Image(ioctx, rbd_name, read_only=True) as image:
                return layout.NodeDisk(
                    node_uuid=node_uuid, pool=self.clone_pool,
                    rbd_name=rbd_name, size=image.size(),
                    metadata=dict(image.metadata_list()))
        except rbd.ImageNotFound:
            return None

    @rbd_utils.retry_transient
    def clone_for_node(self, node_uuid, image_source, size=None,
                       project=layout.ANY_PROJECT):
        """The node's copy-on-write disk, made if missing.

        Idempotent: an existing clone of the same source is returned (grown
        to ``size`` if that is larger); a clone of another source is an
        error, since the node's data would be lost.  The clone records
        nothing of its own: its name says the node, its parent the source
        and RBD its creation time; it inherits the golden image's metadata.

        ``project`` as for :meth:`resolve_source`.

        :raises: InvalidName, InvalidInput (bad node UUID or size).
        :raises: ImageNotFound, ImageNotVisible
        :raises: BmiException when the node has a disk of another source.
        :raises: CephError (and CephConnectionError, CephPoolNotFound) when
            Ceph fails.
        """
        node_uuid = names.node_uuid(node_uuid)
        if size is not None and (not isinstance(size, int) or size < 0):
            raise exception.InvalidInput(reason='size must be a positive '
                                         'number of bytes, not %r' % size)
        with self._clients.get() as client:
            source = image_source
            if not isinstance(source, layout.ImageSource):
                source = self._resolve(client, image_source, project)
            if source.kind == 'glance-convert':
                # Converted once; later deploys find the copy.
                source = self._ensure_glance_cache(client, source)
            ioctx = client.ioctx(self.clone_pool)
            rbd_name = layout.node_rbd_name(node_uuid)
            with rbd_utils.ceph_errors(rbd_name):
                try:
                    rbd.RBD().clone(client.ioctx(source.pool),
                                    source.rbd_name, source.snapshot, ioctx,
                                    rbd_name, features=rbd_utils.features())
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
            disk = layout.NodeDisk(node_uuid=node_uuid, pool=self.clone_pool,
                                   rbd_name=rbd_name, size=source.size,
                                   parent=source.spec,
                                   metadata=dict(source.metadata))
            if size and size > source.size:
                try:
                    with rbd_utils.ceph_errors(rbd_name):
                        self._grow(ioctx, rbd_name, size)
                except BaseException:
                    rbd_utils.undo(ioctx, rbd_name, 'clone')
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
        """The node's disk (with its config drive, if any).

        :raises: InvalidName, CloneNotFound
        :raises: CephError (and CephConnectionError, CephPoolNotFound) when
            Ceph fails.
        """
        node_uuid = names.node_uuid(node_uuid)
        with self._clients.get() as client:
            return self._read_node_disk(client, node_uuid)

    @rbd_utils.retry_transient
    def list_node_disks(self):
        """Every node disk of the clone pool.

        :raises: CephError (and CephConnectionError, CephPoolNotFound) when
            Ceph fails.
        """
        with self._clients.get() as client:
            disks = []
            for rbd_name in rbd.RBD().list(client.ioctx(self.clone_pool)):
                node = rbd_name[len(layout.NODE_PREFIX):]
                if (not rbd_name.startswith(layout.NODE_PREFIX)
                        or not uuidutils.is_uuid_like(node)):
                    continue
                try:
                    disks.append(self._read_node_disk(client, node))
                except exception.CloneNotFound:
                    continue
            return disks

    @rbd_utils.retry_transient
    def list_cloneless_scratch(self):
        """Nodes with an ephemeral or swap disk but no clone.

        What a preserving rebuild that failed keeps (its ephemeral disk)
        when the node is then deleted from Ironic without an undeploy:
        :meth:`list_node_disks` lists clones only.

        :returns: {node uuid: the metadata of one of those disks}.
        :raises: CephError (and CephConnectionError, CephPoolNotFound)
        """
        with self._clients.get() as client:
            ioctx = client.ioctx(self.clone_pool)
            with rbd_utils.ceph_errors(self.clone_pool):
                names = set(rbd.RBD().list(ioctx))
            found = {}
            for name in sorted(names):
                node, suffix = layout.node_of_rbd_name(name)
                if (suffix not in (layout.EPHEMERAL_SUFFIX,
                                   layout.SWAP_SUFFIX)
                        or not uuidutils.is_uuid_like(node)
                        or layout.node_rbd_name(node) in names
                        or node in found):
                    continue
                part = self._read_part(ioctx, node, name)
                if part is not None:
                    found[node] = part.metadata
            return found

    @rbd_utils.retry_transient
    def remove_node_disk(self, node_uuid, stale_watch=False,
                         keep_ephemeral=False):
        """Remove the node's clone and its other images; missing is fine.

        Its config drive, swap and (unless ``keep_ephemeral``: a rebuild
        that preserves it) ephemeral disk go first, the clone last.

        Leftover temporary snapshots of an interrupted snapshot_node() go
        with it.  A disk still open (exported) is refused as busy, unless
        ``stale_watch`` (the node is being torn down and its export was
        removed, or its gateway is dead): then its watchers are
        blocklisted and what still cannot go is moved to the RBD trash for
        :meth:`sweep_removed_disks` (see ``rbd_utils.remove_or_trash``).

        :returns: the names moved to the trash (usually none).
        :raises: InvalidName
        :raises: ImageBusy while the disk is exported.
        :raises: CephError (and CephConnectionError, CephPoolNotFound,
            CephPoolFull) when Ceph fails.
        """
        node_uuid = names.node_uuid(node_uuid)
        trashed = []
        with self._clients.get() as client:
            ioctx = client.ioctx(self.clone_pool)
            # The others are usually absent, the clone usually there; the
            # clone goes last, so a node whose clone is gone has nothing.
            parts = [(layout.configdrive_rbd_name(node_uuid), True),
                     (layout.swap_rbd_name(node_uuid), True)]
            if not keep_ephemeral:
                parts.append((layout.ephemeral_rbd_name(node_uuid), True))
            parts.append((layout.node_rbd_name(node_uuid), False))
            for rbd_name, probe in parts:
                with rbd_utils.ceph_errors(rbd_name):
                    if stale_watch:
                        done = rbd_utils.remove_or_trash(client, ioctx,
                                                         rbd_name, probe)
                    else:
                        done = rbd_utils.remove_if_present(
                            ioctx, rbd_name, probe) and 'removed'
                if done == 'trashed':
                    trashed.append(rbd_name)
                elif done:
                    LOG.info('Removed %(img)s of node %(node)s',
                             {'img': rbd_name, 'node': node_uuid})
        return trashed

    @rbd_utils.retry_transient
    def sweep_removed_disks(self):
        """Remove the node disks waiting in the clone pool's RBD trash.

        :returns: (removed, left): lists of image names.
        :raises: CephError (and CephConnectionError, CephPoolNotFound)
        """
        def is_ours(name):
            node, _suffix = layout.node_of_rbd_name(name)
            return node is not None and uuidutils.is_uuid_like(node)

        with self._clients.get() as client:
            with rbd_utils.ceph_errors('the RBD trash'):
                return rbd_utils.sweep_trash(
                    client, client.ioctx(self.clone_pool), is_ours)

    @rbd_utils.retry_transient
    def check_capacity(self):
        """Refuse new node disks when the clone pool or Ceph cannot take them.

        :raises: CephPoolFull (quota reached or near it, pool flagged full
            or nearfull, no space), CephUnhealthy (HEALTH_ERR), CephError
        """
        with self._clients.get() as client:
            client.ioctx(self.clone_pool)
            problem = rbd_utils.capacity_problem(
                client, self.clone_pool, CONF.ceph.pool_full_ratio)
        if problem is not None:
            raise problem

    @rbd_utils.retry_transient
    def set_node_metadata(self, node_uuid, metadata):
        """Set metadata keys on the node's clone; an empty value removes.

        :raises: InvalidName, CloneNotFound
        :raises: CephError (and CephConnectionError, CephPoolNotFound) when
            Ceph fails.
        """
        node_uuid = names.node_uuid(node_uuid)
        with self._clients.get() as client:
            rbd_name = layout.node_rbd_name(node_uuid)
            try:
                with rbd.Image(client.ioctx(self.clone_pool),
                               rbd_name) as image:
                    for key, value in metadata.items():
                        rbd_utils.set_metadata(image, key, value)
            except rbd.ImageNotFound:
                raise exception.CloneNotFound(node=node_uuid, clone=rbd_name)

    def remove_node_metadata(self, node_uuid, keys):
        """Remove metadata keys from the node's clone; missing is fine.

        :raises: InvalidName, CloneNotFound
        :raises: CephError (and CephConnectionError, CephPoolNotFound) when
            Ceph fails.
        """
        self.set_node_metadata(node_uuid, dict.fromkeys(keys, ''))

    @rbd_utils.retry_transient
    def write_node_configdrive(self, node_uuid, data):
        """Store the node's config drive (bytes of an ISO 9660 or vfat image).

        Idempotent: the same content is left as it is; other content
        replaces it (refused as busy while it is exported).

        :raises: InvalidName, InvalidInput
        :raises: ImageBusy while the config drive is exported.
        :raises: CephError (and CephConnectionError, CephPoolNotFound) when
            Ceph fails.
        """
        node_uuid = names.node_uuid(node_uuid)
        if not isinstance(data, bytes) or not data:
            raise exception.InvalidInput(reason='the config drive must be '
                                         'non-empty bytes')
        checksum = 'sha256:' + hashlib.sha256(data).hexdigest()
        with self._clients.get() as client:
            ioctx = client.ioctx(self.clone_pool)
            rbd_name = layout.configdrive_rbd_name(node_uuid)
            with rbd_utils.ceph_errors(rbd_name):
                try:
                    with rbd.Image(ioctx, rbd_name, read_only=True) as image:
                        # No checksum: a write that died half way.
                        same = (dict(image.metadata_list())
                                .get(layout.META_CHECKSUM) == checksum)
                except rbd.ImageNotFound:
                    same = None
                if same:
                    return self._read_node_disk(client, node_uuid).configdrive
                if same is not None:
                    rbd.RBD().remove(ioctx, rbd_name)
                size = -(-len(data) // transfer.SECTOR) * transfer.SECTOR
                rbd.RBD().create(ioctx, rbd_name, size,
                                 features=rbd_utils.features())
            try:
                with rbd_utils.ceph_errors(rbd_name):
                    with rbd.Image(ioctx, rbd_name) as image:
                        image.write(data, 0)
                        image.flush()
                        image.metadata_set(layout.META_CHECKSUM, checksum)
            except BaseException:
                rbd_utils.undo(ioctx, rbd_name, 'config drive write')
                raise
            return layout.NodeDisk(node_uuid=node_uuid, pool=self.clone_pool,
                                   rbd_name=rbd_name, size=size,
                                   metadata={layout.META_CHECKSUM: checksum})

    @rbd_utils.retry_transient
    def remove_node_configdrive(self, node_uuid):
        """Remove the node's config drive; missing is fine.

        :raises: InvalidName
        :raises: ImageBusy while it is exported.
        :raises: CephError (and CephConnectionError, CephPoolNotFound) when
            Ceph fails.
        """
        node_uuid = names.node_uuid(node_uuid)
        rbd_name = layout.configdrive_rbd_name(node_uuid)
        with self._clients.get() as client:
            with rbd_utils.ceph_errors(rbd_name):
                rbd_utils.remove_if_present(client.ioctx(self.clone_pool),
                                            rbd_name)

    @rbd_utils.retry_transient
    def ensure_node_scratch(self, node_uuid, kind, size, fmt, metadata,
                            claim=(), keep_any=False):
        """The node's ephemeral or swap disk, made and formatted if needed.

        ``kind`` is ``ephemeral`` (``fmt`` a file system of
        :data:`scratch.FORMATS`) or ``swap`` (``fmt`` ``swap``).  An
        existing disk is kept, unformatted, when it records a deployment
        in ``claim`` (this deployment, or the one a preserving rebuild
        keeps it from) and has the requested size and format; it is then
        stamped with ``metadata`` (the new deployment, the IQN).  Any
        other existing disk is removed and a blank one formatted: never a
        disk that is not the new image.  ``keep_any`` (an ACTIVE node:
        power on, take over) keeps an existing disk whatever it records.

        :returns: the NodeDisk, and whether it was kept.
        :raises: InvalidName, InvalidInput
        :raises: ScratchDiskMismatch when a claimed disk has another size
            or format (a preserving rebuild would lose it).
        :raises: ScratchFormatError, ImageBusy (while exported),
            CephError (and CephConnectionError, CephPoolNotFound).
        """
        node_uuid = names.node_uuid(node_uuid)
        if kind == 'ephemeral':
            rbd_name = layout.ephemeral_rbd_name(node_uuid)
            label = layout.EPHEMERAL_LABEL
        elif kind == 'swap':
            rbd_name = layout.swap_rbd_name(node_uuid)
            label = layout.SWAP_LABEL
        else:
            raise exception.InvalidInput(reason='unknown scratch disk %r'
                                         % kind)
        if not isinstance(size, int) or size <= 0 or size % units.Mi:
            raise exception.InvalidInput(
                reason='a scratch disk size must be a positive number of '
                       'MiB in bytes, not %r' % size)
        with self._clients.get() as client:
            ioctx = client.ioctx(self.clone_pool)
            with rbd_utils.ceph_errors(rbd_name):
                old = self._read_part(ioctx, node_uuid, rbd_name)
                if old is not None and keep_any:
                    return old, True
                if old is not None:
                    found = old.metadata.get(layout.META_DEPLOYMENT)
                    # No format recorded: its formatting died half way.
                    if (found and found in claim
                            and old.metadata.get(layout.META_FORMAT)):
                        if (old.size != size or old.metadata.get(
                                layout.META_FORMAT) != fmt):
                            raise exception.ScratchDiskMismatch(
                                node=node_uuid, disk=old.spec,
                                reason='is %d MiB of %s, not %d MiB of %s'
                                % (old.size // units.Mi,
                                   old.metadata.get(layout.META_FORMAT),
                                   size // units.Mi, fmt))
                        with rbd.Image(ioctx, rbd_name) as image:
                            for key, value in metadata.items():
                                rbd_utils.set_metadata(image, key, value)
                        old.metadata.update(metadata)
                        return old, True
                    LOG.info('Node %(node)s: replacing its %(kind)s disk '
                             '%(img)s (deployment %(found)s)',
                             {'node': node_uuid, 'kind': kind,
                              'img': rbd_name, 'found': found})
                    rbd_utils.remove_if_present(ioctx, rbd_name,
                                                probe=False)
            with scratch.formatted_file(size, fmt, label) as path:
                with rbd_utils.ceph_errors(rbd_name):
                    rbd.RBD().create(ioctx, rbd_name, size,
                                     features=rbd_utils.features())
                try:
                    with rbd_utils.ceph_errors(rbd_name):
                        with rbd.Image(ioctx, rbd_name) as image:
                            written = scratch.copy_extents(path, image)
                            # The format last: a disk without it is one
                            # whose formatting died half way.
                            meta = dict(metadata)
                            meta[layout.META_FORMAT] = fmt
                            for key, value in meta.items():
                                rbd_utils.set_metadata(image, key, value)
                except BaseException:
                    rbd_utils.undo(ioctx, rbd_name, 'format')
                    raise
            LOG.info('Node %(node)s: made its %(kind)s disk %(img)s '
                     '(%(size)d MiB, %(fmt)s, %(written)d bytes written)',
                     {'node': node_uuid, 'kind': kind, 'img': rbd_name,
                      'size': size // units.Mi, 'fmt': fmt,
                      'written': written})
            return layout.NodeDisk(node_uuid=node_uuid, pool=self.clone_pool,
                                   rbd_name=rbd_name, size=size,
                                   metadata=meta), False

    @rbd_utils.retry_transient
    def remove_node_scratch(self, node_uuid, kind):
        """Remove the node's ephemeral or swap disk; missing is fine.

        :raises: InvalidName, ImageBusy (while exported), CephError
        """
        node_uuid = names.node_uuid(node_uuid)
        rbd_name = (layout.ephemeral_rbd_name(node_uuid) if kind ==
                    'ephemeral' else layout.swap_rbd_name(node_uuid))
        with self._clients.get() as client:
            with rbd_utils.ceph_errors(rbd_name):
                if rbd_utils.remove_if_present(
                        client.ioctx(self.clone_pool), rbd_name):
                    LOG.info('Removed %(img)s of node %(node)s',
                             {'img': rbd_name, 'node': node_uuid})

    @staticmethod
    def _drop_dead_temp_snaps(disk, rbd_name):
        """Remove the temporary snapshots a killed snapshot_node() left.

        One killed before its clone, or after the flatten, leaves a
        protected ``bmi-snap-*`` that no clone uses and that nothing else
        removes while the node is ACTIVE (sweep_unsealed drops only those
        under an unsealed image): it pins the blocks the node rewrites.
        The caller holds the node's exclusive lock (Ironic 39.0.0 takes it
        for a passthru call), so none is another call's.  Best effort.
        """
        for snap in rbd_utils.snap_names(disk):
            if not snap.startswith(layout.TEMP_SNAP_PREFIX):
                continue
            try:
                if rbd_utils.remove_unused_snapshot(disk, snap):
                    continue  # sweep_unsealed's, with its image
            except rbd.Error as e:
                LOG.warning('Could not remove the leftover temporary '
                            'snapshot %(snap)s of %(img)s: %(err)s',
                            {'snap': snap, 'img': rbd_name, 'err': e})
                continue
            LOG.warning('Removed the leftover temporary snapshot %(snap)s '
                        'of %(img)s (an interrupted snapshot)',
                        {'snap': snap, 'img': rbd_name})

    @rbd_utils.retry_transient
    def snapshot_node(self, node_uuid, name, project=None,
                      visibility='private', progress=None):
        """Save a node's disk as a new, independent golden image.

        A temporary snapshot gives a crash-consistent point in time while
        the node keeps running (and writing) on its clone; the new image is
        cloned from it and flattened, so it depends on neither the node
        nor the node's golden image, and the temporary snapshot goes.

        :raises: InvalidName, ImageExists
        :raises: CloneNotFound when the node has no disk.
        :raises: CephError (and CephConnectionError, CephPoolNotFound) when
            Ceph fails.
        """
        node_uuid = names.node_uuid(node_uuid)
        project = self._new_image_args(name, project, visibility)
        with self._clients.get() as client:
            # The new image's project asks: another project's image that
            # holds the name is not named in the error.
            self._check_name_free(client, name, asker=project)
            ioctx = client.ioctx(self.clone_pool)
            rbd_name = layout.node_rbd_name(node_uuid)
            temp = layout.TEMP_SNAP_PREFIX + uuidutils.generate_uuid()
            try:
                with rbd.Image(ioctx, rbd_name) as disk:
                    self._drop_dead_temp_snaps(disk, rbd_name)
                    rbd_utils.protected_snapshot(disk, temp)
            except rbd.ImageNotFound:
                raise exception.CloneNotFound(node=node_uuid, clone=rbd_name)
            except rbd.Error as e:
                raise rbd_utils.map_rbd_error(e, rbd_name)
            try:
                new = self._flat_copy(
                    client, ioctx, rbd_name, temp,
                    self._new_meta(name, project, visibility,
                                   'snapshot:node %s' % node_uuid),
                    progress, asker=project)
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
            return self._published_new(client, new)
