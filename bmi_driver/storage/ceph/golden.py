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

"""Golden images: import, list, find, copy, rename, export and delete.

A golden image is ``img-<uuid>`` in ``[ceph] image_pool`` with its record in
its RBD metadata and a protected snapshot ``golden`` that nodes are cloned
from (:mod:`bmi_driver.storage.layout`).  :class:`GoldenImages` is one half
of :class:`bmi_driver.storage.ceph.library.ImageLibrary`, which gives it its
connection pool and pools.
"""

import datetime
import os
import uuid as uuidlib

from oslo_log import log
from oslo_utils import uuidutils

from bmi_driver.common import locks
from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.storage.ceph import rbd_utils
from bmi_driver.storage.ceph.rbd_utils import rbd
from bmi_driver.storage.ceph import transfer
from bmi_driver.storage import layout
from bmi_driver.storage import names

LOG = log.getLogger(__name__)

# Every check-and-claim of a golden image's name holds this lock (tooz,
# [coordination] backend_url): the check reads every image's bmi.name, and
# the claim writes the new image's before the lock goes, so two imports,
# copies, renames or snapshots to one name cannot both pass the check.
# Held for metadata operations only, never while bytes move.  The default
# file backend serializes one host; several hosts that change the library
# (conductors, bmi-manage) need a shared backend, as for the exports.
NAMES_LOCK = 'golden-image-names'


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec='seconds')


class GoldenImages:
    """Golden image operations (a part of ImageLibrary).

    Needs ``self._clients`` (a :class:`rbd_utils.ClientPool`) and
    ``self.image_pool``.
    """

    # -- reading and checking --------------------------------------------

    def _golden_from_image(self, image, rbd_name, count_clones=True):
        meta = dict(image.metadata_list())
        clones = 0
        has_snap = layout.GOLDEN_SNAP in rbd_utils.snap_names(image)
        # A snapshot that exists but is not protected is no seal: the
        # process died between create_snap and protect_snap, or a delete
        # between unprotect_snap and remove_snap.  Clone v2 would clone it
        # all the same (Ceph 16.2, mimic clients): resolving refuses it.
        sealed = has_snap and image.is_protected_snap(layout.GOLDEN_SNAP)
        if count_clones and has_snap:
            image.set_snap(layout.GOLDEN_SNAP)
            clones = len(list(image.list_children2()))
            image.set_snap(None)
        return layout.GoldenImage.from_metadata(
            meta,
            uuid=rbd_name[len(layout.GOLDEN_PREFIX):],
            size=image.size(),
            pool=self.image_pool,
            rbd_name=rbd_name,
            parent=rbd_utils.parent_spec(image),
            clones=clones, sealed=sealed)

    def _read_golden(self, client, image_uuid, count_clones=True):
        rbd_name = layout.golden_rbd_name(image_uuid)
        with rbd_utils.ceph_errors(image_uuid):
            with rbd.Image(client.ioctx(self.image_pool), rbd_name,
                           read_only=True) as image:
                return self._golden_from_image(image, rbd_name, count_clones)

    def _golden_names(self, client):
        return sorted(n for n in rbd.RBD().list(client.ioctx(self.image_pool))
                      if n.startswith(layout.GOLDEN_PREFIX))

    def _all_golden(self, client, count_clones=True):
        found = []
        for rbd_name in self._golden_names(client):
            try:
                found.append(self._read_golden(
                    client, rbd_name[len(layout.GOLDEN_PREFIX):],
                    count_clones))
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
                        if image.metadata_get(layout.META_NAME) != ref:
                            continue
                    except KeyError:
                        continue
                    return self._golden_from_image(image, rbd_name,
                                                   count_clones)
            except rbd.ImageNotFound:
                continue
        raise exception.ImageNotFound(image=ref)

    def _check_name_free(self, client, name, asker=layout.ANY_PROJECT):
        """Refuse a taken name; name the holder only to who may see it.

        ``asker`` is the project on whose behalf the name is wanted
        (:data:`~bmi_driver.storage.layout.ANY_PROJECT`: an admin).
        """
        try:
            existing = self._find(client, name, count_clones=False)
        except exception.ImageNotFound:
            return
        if (asker is layout.ANY_PROJECT or existing.project == asker
                or existing.visibility == 'public'):
            raise exception.ImageExists(name=name, image=existing.uuid)
        # Names are unique over all projects: that it is taken must be
        # said, but not by which image of which project.
        raise exception.ImageExists(
            'An image named %s already exists; choose another name.' % name,
            name=name)

    def check_new_name(self, name, asker=layout.ANY_PROJECT):
        """Whether ``name`` may be given to a new golden image now.

        A quick answer for callers that must refuse early (the snapshot
        passthru); the operation itself checks again under the lock.

        :raises: InvalidName, ImageExists
        :raises: CephError (and CephConnectionError, CephPoolNotFound) when
            Ceph fails.
        """
        names.image_name(name)
        with self._clients.get() as client:
            self._check_name_free(client, name, asker)

    @staticmethod
    def _names_lock():
        return locks.lock(NAMES_LOCK)

    @staticmethod
    def _claim_name(ioctx, rbd_name, name, meta=None):
        """Give a just-made image its name (under the names lock).

        A clone inherits its parent's record: ``meta`` (the new image's
        whole record) replaces it at once, so that no second image carries
        the parent's name.  Undone with the image when the operation fails.
        """
        try:
            with rbd_utils.ceph_errors(name):
                with rbd.Image(ioctx, rbd_name) as image:
                    if meta is None:
                        rbd_utils.set_metadata(image, layout.META_NAME, name)
                    else:
                        rbd_utils.reset_metadata(image, meta)
        except BaseException:
            rbd_utils.undo(ioctx, rbd_name, 'name claim')
            raise

    def _seal(self, ioctx, rbd_name, meta):
        """Record a golden image's metadata and protect its snapshot."""
        with rbd.Image(ioctx, rbd_name) as image:
            self._seal_open(image, meta)

    @staticmethod
    def _seal_open(image, meta):
        """:meth:`_seal` through an image handle the caller holds open.

        Import from a file and copy (node snapshot too) hold one from
        just after the name claim to the seal: its watch tells
        :meth:`sweep_unsealed` that they are alive, also while nothing
        else has the image open (the checksum read opens it read-only,
        which sets no watch).
        """
        rbd_utils.reset_metadata(image, meta)
        image.create_snap(layout.GOLDEN_SNAP)
        image.protect_snap(layout.GOLDEN_SNAP)

    @staticmethod
    def _new_meta(name, project, visibility, source, checksum=''):
        return layout.new_golden_metadata(name, project, visibility, _now(),
                                          source, checksum)

    @staticmethod
    def _new_image_args(name, project, visibility):
        """Check a new golden image's name and visibility: its owner."""
        names.image_name(name)
        names.visibility(visibility)
        # Only a project left out takes the default: '' is refused, not
        # stored as the default project.
        return names.project(CONF.bmi.default_project if project is None
                             else project)

    # -- operations ------------------------------------------------------

    @rbd_utils.retry_transient
    def get(self, ref):
        """A golden image by UUID or name.

        :raises: ImageNotFound, InvalidName
        :raises: CephError (and CephConnectionError, CephPoolNotFound) when
            Ceph fails.
        """
        with self._clients.get() as client:
            return self._find(client, ref)

    @rbd_utils.retry_transient
    def list(self, project=None, include_public=False):
        """Golden images, all or those of ``project`` (and public ones).

        :raises: InvalidName for a bad project.
        :raises: CephError (and CephConnectionError, CephPoolNotFound) when
            Ceph fails.
        """
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

        :raises: InvalidName for a bad name, project or visibility.
        :raises: ImageExists when the name is taken.
        :raises: LocalFileError, ImageFormatError for an unusable file.
        :raises: CephError (and CephConnectionError, CephPoolNotFound) when
            Ceph fails.
        """
        project = self._new_image_args(name, project, visibility)
        fmt, size = transfer.inspect_file(path)
        with self._clients.get() as client:
            image_uuid = uuidutils.generate_uuid()
            rbd_name = layout.golden_rbd_name(image_uuid)
            ioctx = client.ioctx(self.image_pool)
            LOG.info('Importing %(path)s (%(fmt)s, %(size)d bytes) as image '
                     '%(name)s (%(uuid)s)', {'path': path, 'fmt': fmt,
                                             'size': size, 'name': name,
                                             'uuid': image_uuid})
            with self._names_lock():
                self._check_name_free(client, name)
                with rbd_utils.ceph_errors(name):
                    rbd.RBD().create(ioctx, rbd_name, size,
                                     features=rbd_utils.features())
                self._claim_name(ioctx, rbd_name, name)
            try:
                with rbd_utils.ceph_errors(name), \
                        rbd.Image(ioctx, rbd_name) as held:
                    if fmt == 'raw':
                        checksum = transfer.write_raw(ioctx, rbd_name,
                                                      path, size, progress)
                    else:
                        transfer.convert_into(path, fmt, rbd_name)
                        checksum = transfer.checksum(ioctx, rbd_name,
                                                     None, progress)
                    self._seal_open(held, self._new_meta(
                        name, project, visibility,
                        'file:%s' % os.path.basename(path),
                        'sha256:' + checksum))
            except BaseException:
                rbd_utils.undo(ioctx, rbd_name, 'import')
                raise
            return self._published_new(client, image_uuid)

    @rbd_utils.retry_transient
    def import_rbd(self, ref, name, project=None, visibility='private'):
        """Make an existing RBD image or snapshot a golden image, no copy.

        ``ref`` is ``pool/image@snap`` (a Glance-stored image is
        ``<glance pool>/<uuid>@snap``) or ``pool/image``, in which case a
        protected snapshot is taken of it first.  The golden image is a
        copy-on-write clone of the reference.

        :raises: InvalidName for a bad reference, name, project or visibility.
        :raises: ImageExists when the name is taken.
        :raises: ImageNotFound when the reference does not exist.
        :raises: CephError (and CephConnectionError, CephPoolNotFound) when
            Ceph fails.
        """
        src = names.rbd_ref(ref)
        if (src.pool == CONF.ceph.clone_pool
                and layout.node_of_rbd_name(src.image)[0] is not None):
            # A node's disk holds its project's data, live: it becomes a
            # golden image through the snapshot passthru, which records
            # that project and takes the node's lock.  A snapshot taken
            # here would also pin the disk (its undeploy could not remove
            # a clone with a child).
            raise exception.InvalidName(
                kind='RBD reference', value=ref,
                reason='it is a node\'s disk; save it with the node\'s '
                       'snapshot passthru (baremetal node passthru call '
                       '<node> snapshot --arg name=<name>)')
        project = self._new_image_args(name, project, visibility)
        with self._clients.get() as client:
            self._check_name_free(client, name)  # before any snapshot
            src_ioctx = client.ioctx(src.pool)
            image_uuid = uuidutils.generate_uuid()
            rbd_name = layout.golden_rbd_name(image_uuid)
            ioctx = client.ioctx(self.image_pool)
            snap, made_snap = src.snapshot, None
            with rbd_utils.ceph_errors(ref):
                with rbd.Image(src_ioctx, src.image) as source:
                    if snap is None:
                        made_snap = snap = layout.REF_SNAP_PREFIX + image_uuid
                        rbd_utils.protected_snapshot(source, snap)
                    elif snap not in rbd_utils.snap_names(source):
                        raise exception.ImageNotFound(image=ref)
            try:
                meta = self._new_meta(name, project, visibility,
                                      'rbd:%s/%s@%s' % (src.pool, src.image,
                                                        snap))
                if made_snap:
                    meta[layout.META_REF_SNAP] = made_snap
                with self._names_lock():
                    self._check_name_free(client, name)
                    with rbd_utils.ceph_errors(ref):
                        rbd.RBD().clone(src_ioctx, src.image, snap, ioctx,
                                        rbd_name,
                                        features=rbd_utils.features())
                    self._claim_name(ioctx, rbd_name, name, meta)
                with rbd_utils.ceph_errors(name):
                    self._seal(ioctx, rbd_name, meta)
            except BaseException:
                rbd_utils.undo(ioctx, rbd_name, 'import')
                if made_snap:
                    self._drop_ref_snapshot(client, src.pool, src.image,
                                            made_snap)
                raise
            LOG.info('Imported %(ref)s by reference as image %(name)s '
                     '(%(uuid)s)', {'ref': ref, 'name': name,
                                    'uuid': image_uuid})
            return self._published_new(client, image_uuid)

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
        except rbd.ImageNotFound:
            # Gone with its image (or the image waits in the RBD trash,
            # whose sweep purges its snapshots).
            return
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

        :raises: ImageNotFound
        :raises: ImageInUse while clones exist.
        :raises: ImageBusy
        :raises: CephError (and CephConnectionError, CephPoolNotFound) when
            Ceph fails.
        """
        with self._clients.get() as client:
            img = self._find(client, ref)
            ioctx = client.ioctx(self.image_pool)
            # Under its publication lock: a publication (the sweep's) that
            # recorded an id after it was read here made a Glance record
            # that no golden image, nor any note, named once it was gone.
            with self._publish_lock(img.uuid):
                with rbd_utils.ceph_errors(img.name):
                    with rbd.Image(ioctx, img.rbd_name) as image:
                        meta = dict(image.metadata_list())
                        # As recorded now, under the lock.
                        glance_id = meta.get(layout.META_PUBLISHED, '')
                        # (A snapshot already gone or unprotected is the
                        # trace of an interrupted delete: carry on.)
                        had_snap = (layout.GOLDEN_SNAP
                                    in rbd_utils.snap_names(image))
                        if had_snap:
                            self._refuse_if_cloned(image, img)
                            if image.is_protected_snap(layout.GOLDEN_SNAP):
                                try:
                                    image.unprotect_snap(layout.GOLDEN_SNAP)
                                except rbd.ImageBusy:
                                    # A clone appeared since we looked.
                                    self._refuse_if_cloned(image, img)
                                    raise
                            try:
                                image.remove_snap(layout.GOLDEN_SNAP)
                            except BaseException:
                                image.protect_snap(layout.GOLDEN_SNAP)
                                raise
                    if glance_id:
                        # The golden image names its Glance record: once it
                        # is gone, the note says the record is bmi's.
                        self._note_unpublish(client, img.uuid, glance_id)
                    try:
                        rbd.RBD().remove(ioctx, img.rbd_name)
                    except rbd.Error:
                        if glance_id:
                            self._drop_unpublish_note(client, glance_id)
                        if had_snap:
                            with rbd.Image(ioctx, img.rbd_name) as image:
                                image.create_snap(layout.GOLDEN_SNAP)
                                image.protect_snap(layout.GOLDEN_SNAP)
                        raise
            if layout.META_REF_SNAP in meta:
                ref_pool, _, rest = meta[layout.META_SOURCE][4:].partition('/')
                self._drop_ref_snapshot(client, ref_pool,
                                        rest.partition('@')[0],
                                        meta[layout.META_REF_SNAP])
            LOG.info('Deleted image %(name)s (%(uuid)s)',
                     {'name': img.name, 'uuid': img.uuid})
            # Its bytes are gone: Glance, which deletes a location's bytes
            # with the record, finds none.
            self._unpublish(client, img.uuid, glance_id)

    @staticmethod
    def _refuse_if_cloned(image, img):
        image.set_snap(layout.GOLDEN_SNAP)
        children = ['%s/%s' % (c['pool'], c['image'])
                    for c in image.list_children2()]
        image.set_snap(None)
        if children:
            raise exception.ImageInUse(image=img.name, count=len(children),
                                       clones=', '.join(sorted(children)))

    def _unsealed(self, ioctx, rbd_name, now):
        """(metadata, parent, age) of an abandoned unsealed image, or None.

        Abandoned: no protected ``golden`` snapshot, no watcher (a live
        import or copy holds it open, see :meth:`_seal_open`; a dead
        process's watch times out in about 30 s) and made ``[ceph]
        unsealed_grace`` seconds ago or more.  ``parent`` is
        get_parent_image_spec()'s answer, or None.
        """
        try:
            # Read-only: no watch of our own.
            with rbd.Image(ioctx, rbd_name, read_only=True) as image:
                if (layout.GOLDEN_SNAP in rbd_utils.snap_names(image)
                        and image.is_protected_snap(layout.GOLDEN_SNAP)):
                    return None
                if list(image.watchers_list()):
                    return None
                age = (now - image.create_timestamp()).total_seconds()
                if age < CONF.ceph.unsealed_grace:
                    return None
                try:
                    parent = image.get_parent_image_spec()
                except rbd.ImageNotFound:
                    parent = None
                return dict(image.metadata_list()), parent, age
        except rbd.ImageNotFound:
            return None

    @rbd_utils.retry_transient
    def sweep_unsealed(self, now=None):
        """Remove the golden images an interrupted operation left unsealed.

        Import, copy and node snapshot claim the new image's name before
        its bytes move, and seal it (its protected ``golden`` snapshot)
        last.  One whose process died (a conductor or bmi-manage killed)
        leaves an image that nodes cannot clone, that holds its name (any
        later image of that name is refused) and, for a node snapshot,
        that is still a clone of the node's temporary snapshot, which then
        keeps the node's disk from being removed (it waits in the RBD
        trash).  An abandoned one (:meth:`_unsealed`) is removed under the
        names lock, checked again under it, with the temporary or
        reference snapshot it was cloned from (its operation's own).

        :param now: naive UTC, as the binding's times (tests).
        :returns: the UUIDs of the images removed.
        :raises: CephError (and CephConnectionError, CephPoolNotFound) when
            Ceph fails.
        """
        now = now or rbd_utils.utcnow()
        removed = []
        with self._clients.get() as client:
            ioctx = client.ioctx(self.image_pool)
            with rbd_utils.ceph_errors(self.image_pool):
                found = self._golden_names(client)
            for rbd_name in found:
                try:
                    with rbd_utils.ceph_errors(rbd_name):
                        if self._unsealed(ioctx, rbd_name, now) is None:
                            continue
                        with self._names_lock():
                            # Sealed, or opened, since?
                            leftover = self._unsealed(ioctx, rbd_name, now)
                            if leftover is None or not self._remove_unsealed(
                                    client, rbd_name, leftover[0]):
                                continue
                except exception.BmiException as e:
                    LOG.warning('Could not remove the unsealed golden image '
                                '%(img)s: %(err)s; next sweep',
                                {'img': rbd_name, 'err': e})
                    continue
                meta, parent, age = leftover
                LOG.warning('Removed %(img)s (name %(name)s, %(source)s): '
                            'made %(age)d s ago and never sealed, its '
                            'import, copy or snapshot died midway',
                            {'img': rbd_name,
                             'name': meta.get(layout.META_NAME),
                             'source': meta.get(layout.META_SOURCE),
                             'age': age})
                if parent is not None and parent['snap_name'].startswith(
                        (layout.TEMP_SNAP_PREFIX, layout.REF_SNAP_PREFIX)):
                    self._drop_ref_snapshot(client, parent['pool_name'],
                                            parent['image_name'],
                                            parent['snap_name'])
                image_uuid = rbd_name[len(layout.GOLDEN_PREFIX):]
                # A delete killed midway had published it.
                self._unpublish(client, image_uuid,
                                meta.get(layout.META_PUBLISHED))
                removed.append(image_uuid)
        return removed

    def _remove_unsealed(self, client, rbd_name, meta):
        """Remove an abandoned unsealed image: False if it was not there.

        One a killed delete left names its Glance record: noted first, as
        :meth:`delete` does, so that the record stays known as bmi's (a
        note left by a failed removal is harmless: the sweep of published
        images drops it once Glance has no such record).
        """
        glance_id = meta.get(layout.META_PUBLISHED)
        if glance_id:
            self._note_unpublish(
                client, rbd_name[len(layout.GOLDEN_PREFIX):], glance_id)
        return rbd_utils.remove_if_present(client.ioctx(self.image_pool),
                                           rbd_name, probe=False)

    @rbd_utils.retry_transient
    def rename(self, ref, new_name):
        """Give a golden image a new name (its UUID stays).

        :raises: ImageNotFound, InvalidName
        :raises: ImageExists when the new name is taken.
        :raises: CephError (and CephConnectionError, CephPoolNotFound) when
            Ceph fails.
        """
        names.image_name(new_name)
        with self._clients.get() as client:
            img = self._find(client, ref)
            if img.name == new_name:
                return img
            with self._names_lock():
                self._check_name_free(client, new_name)
                with rbd_utils.ceph_errors(img.name):
                    with rbd.Image(client.ioctx(self.image_pool),
                                   img.rbd_name) as image:
                        image.metadata_set(layout.META_NAME, new_name)
            LOG.info('Renamed image %(uuid)s from %(old)s to %(new)s',
                     {'uuid': img.uuid, 'old': img.name, 'new': new_name})
            self._update_published(img, name=new_name)
            return self._read_golden(client, img.uuid)

    @rbd_utils.retry_transient
    def copy(self, ref, new_name, project=None, visibility=None,
             progress=None):
        """A full, independent copy of a golden image under a new name.

        :raises: ImageNotFound, InvalidName
        :raises: ImageExists when the new name is taken.
        :raises: CephError (and CephConnectionError, CephPoolNotFound) when
            Ceph fails.
        """
        names.image_name(new_name)
        if project is not None:
            names.project(project)
        if visibility is not None:
            names.visibility(visibility)
        with self._clients.get() as client:
            src = self._find(client, ref)
            self._check_name_free(client, new_name)
            new = self._flat_copy(
                client, client.ioctx(src.pool), src.rbd_name,
                layout.GOLDEN_SNAP,
                self._new_meta(new_name,
                               src.project if project is None else project,
                               visibility or src.visibility,
                               'copy:%s' % src.uuid, src.checksum),
                progress)
            LOG.info('Copied image %(src)s to %(name)s (%(uuid)s)',
                     {'src': src.name, 'name': new_name, 'uuid': new})
            return self._published_new(client, new)

    def _flat_copy(self, client, src_ioctx, src_name, src_snap, meta,
                   progress=None, asker=layout.ANY_PROJECT):
        """Clone ``src_name@src_snap`` into a new golden image, flatten it.

        Flattening copies every allocated block from the parents, so the
        result depends on nothing; unallocated blocks stay sparse.  The
        name is checked and claimed under the names lock; ``asker`` as for
        :meth:`_check_name_free`.
        """
        image_uuid = uuidutils.generate_uuid()
        rbd_name = layout.golden_rbd_name(image_uuid)
        ioctx = client.ioctx(self.image_pool)
        name = meta[layout.META_NAME]
        with self._names_lock():
            self._check_name_free(client, name, asker)
            with rbd_utils.ceph_errors(name):
                rbd.RBD().clone(src_ioctx, src_name, src_snap, ioctx,
                                rbd_name, features=rbd_utils.features())
            self._claim_name(ioctx, rbd_name, name, meta)
        try:
            with rbd_utils.ceph_errors(meta[layout.META_NAME]):
                with rbd.Image(ioctx, rbd_name) as image:
                    image.flatten(on_progress=transfer.flatten_progress(
                        progress, image.size()))
                    self._seal_open(image, meta)
        except BaseException:
            rbd_utils.undo(ioctx, rbd_name, 'copy')
            raise
        return image_uuid

    @rbd_utils.retry_transient
    def export(self, ref, path, progress=None):
        """Write a golden image to a local raw file (sparse).

        The bytes are checked against the recorded checksum; the file
        appears under its name only once complete and verified.

        :raises: LocalFileError when the file exists or its directory does
            not.
        :raises: ImageNotFound
        :raises: CephError also when the bytes read back differ from the
            recorded checksum.
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
                                   snapshot=layout.GOLDEN_SNAP,
                                   read_only=True) as image, \
                            open(partial, 'wb') as out:
                        digest = transfer.stream(image, img.size, out,
                                                 progress)
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
