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

"""Glance images as node sources: checked through Glance, bytes in Ceph.

Glance owns the catalogue (who owns an image, who may see it, its format
and hash); Ceph holds the bytes (Glance's ``rbd`` store, ``[ceph]
glance_pool``).  A node's image source that is no golden image is asked of
Glance (:mod:`bmi_driver.storage.glance_client`):

- refused unless ``active``, visible to the node's project, container
  ``bare``, stored in ``[ceph] glance_pool``;
- ``raw``: the node's disk is a clone of Glance's own snapshot (no copy);
- ``qcow2``, ``vmdk``, ``vdi``, ``vhdx``: converted once by ``qemu-img``
  into ``glance-cache-<id>`` (raw, with a protected snapshot), keyed by the
  image id and Glance's hash, as Cinder's image cache is; every later
  deploy clones that copy.  The copy goes when Glance no longer has the
  image (seen at lookup, or by :meth:`GlanceImages.sweep_glance_cache`)
  and no node clones it;
- any other format: refused, naming it.

:class:`GlanceImages` is a part of
:class:`bmi_driver.storage.ceph.library.ImageLibrary`.
"""

from concurrent import futures

from oslo_log import log

from bmi_driver.common import locks
from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.storage.ceph import rbd_utils
from bmi_driver.storage.ceph.rbd_utils import rbd
from bmi_driver.storage.ceph import transfer
from bmi_driver.storage import glance_client
from bmi_driver.storage import layout
from bmi_driver.storage import names

LOG = log.getLogger(__name__)


class GlanceImages:
    """Glance image sources (a part of ImageLibrary).

    Needs ``self._clients``, ``self.image_pool`` and, optionally,
    ``self._glance_client`` (tests give their own).
    """

    _glance_client = None

    @property
    def glance(self):
        if self._glance_client is None:
            self._glance_client = glance_client.GlanceClient()
        return self._glance_client

    # -- resolving ---------------------------------------------------------

    def _resolve_glance(self, client, image_id, project):
        """What a node of ``project`` boots for Glance image ``image_id``.

        :raises: ImageNotFound, ImageNotVisible, GlanceImageUnusable,
            GlanceError
        """
        try:
            img = self.glance.get_image(image_id)
        except exception.ImageNotFound:
            self._drop_cache_quietly(client, image_id)
            self._forget_published_quietly(client, image_id)
            raise
        if img.status != 'active':
            raise exception.GlanceImageUnusable(
                image=image_id, reason='its status is %s, not active'
                % (img.status or 'unknown'))
        golden = self._golden_of_glance(client, img)
        if golden is None:
            visible = img.visible_to(project)
        else:
            # A published golden image (published.py): the golden image's
            # own record decides who boots it, not the Glance record's
            # owner or visibility.
            visible = self._published_visible_to(golden, img, project)
        if not visible:
            raise exception.ImageNotVisible(
                image=image_id, owner=img.owner,
                project=project or '(none: a node without owner or '
                                   'lessee may use public images only)')
        if golden is not None:
            if not golden.sealed:
                raise exception.ImageUnsealed(image=image_id)
            # Its own snapshot, cloned in milliseconds.
            return layout.ImageSource(
                uuid=golden.uuid, kind='golden', pool=golden.pool,
                rbd_name=golden.rbd_name, snapshot=layout.GOLDEN_SNAP,
                size=golden.size, project=golden.project,
                visibility=golden.visibility, metadata=golden.metadata())
        fmt = img.disk_format
        if fmt not in (glance_client.CLONED_FORMATS
                       + glance_client.CONVERTED_FORMATS):
            raise exception.GlanceImageUnusable(
                image=image_id, reason='its disk format is %s; bmi boots '
                '%s' % (fmt or 'not set', ', '.join(
                    glance_client.CLONED_FORMATS
                    + glance_client.CONVERTED_FORMATS)))
        if img.container_format not in glance_client.CONTAINER_FORMATS:
            raise exception.GlanceImageUnusable(
                image=image_id, reason='its container format is %s, not '
                'bare' % (img.container_format or 'not set'))
        ref = self._glance_rbd_ref(img)
        if fmt in glance_client.CLONED_FORMATS:
            with rbd_utils.ceph_errors(image_id):
                try:
                    with rbd.Image(client.ioctx(ref.pool), ref.image,
                                   snapshot=ref.snapshot,
                                   read_only=True) as image:
                        size = image.size()
                except rbd.ImageNotFound:
                    raise exception.GlanceImageUnusable(
                        image=image_id, reason='Glance names %s, which '
                        'Ceph does not have' % img.rbd_spec)
            return layout.ImageSource(
                uuid=img.id, kind='glance', pool=ref.pool,
                rbd_name=ref.image, snapshot=ref.snapshot, size=size,
                project=img.owner, visibility=img.visibility)
        cached = self._read_cache(client, img.id, img.cache_key)
        if cached is not None:
            return cached
        return layout.ImageSource(
            uuid=img.id, kind='glance-convert', pool=self.image_pool,
            rbd_name=layout.cache_rbd_name(img.id),
            snapshot=layout.GOLDEN_SNAP, size=img.virtual_size,
            project=img.owner, visibility=img.visibility,
            convert_from=img.rbd_spec, disk_format=fmt,
            cache_key=img.cache_key)

    def _forget_published_quietly(self, client, glance_id):
        """A golden image published as ``glance_id``, now gone, forgets it.

        bmi owns the bytes: the golden image stays.
        """
        try:
            for img in self._all_golden(client, count_clones=False):
                if img.glance_id == glance_id:
                    self._set_published(client, img, None)
                    LOG.info('Glance no longer has %(glance)s: image '
                             '%(name)s (%(uuid)s) stays, unpublished',
                             {'glance': glance_id, 'name': img.name,
                              'uuid': img.uuid})
        except exception.BmiException as e:
            LOG.warning('Could not unpublish the image of %(glance)s: '
                        '%(err)s', {'glance': glance_id, 'err': e})

    @staticmethod
    def _glance_rbd_ref(img):
        if not img.rbd_spec:
            raise exception.GlanceImageUnusable(
                image=img.id, reason='its bytes are not in Ceph (no rbd:// '
                'location; Glance needs show_image_direct_url)')
        ref = names.rbd_ref(img.rbd_spec)
        if ref.pool != CONF.ceph.glance_pool or not ref.snapshot:
            raise exception.GlanceImageUnusable(
                image=img.id, reason='it is stored at %s, not in a snapshot '
                'of [ceph] glance_pool %s' % (img.rbd_spec,
                                              CONF.ceph.glance_pool))
        if ref.image != img.id:
            # Glance's rbd store names each image's RBD image by its id
            # (glance_store 5.x rbd.py add()); a location naming another
            # is one a user added (Glance lets a project member add
            # locations where show_multiple_locations is on, which
            # publish_images needs): perhaps another image's bytes.
            raise exception.GlanceImageUnusable(
                image=img.id, reason='its RBD location names another '
                'image than its own; Glance\'s rbd store names each image '
                'by its id')
        return ref

    # -- the cache of converted images -------------------------------------

    def _read_cache(self, client, glance_id, key):
        """The converted copy of ``glance_id`` if it is whole and current."""
        return self._look_at_cache(client, glance_id, key)[0]

    def _look_at_cache(self, client, glance_id, key):
        """(the usable copy or None, whether an image of its name exists).

        A copy is usable once it carries the current key: the key is the
        last thing a conversion writes, after the protected snapshot.
        """
        rbd_name = layout.cache_rbd_name(glance_id)
        try:
            with rbd.Image(client.ioctx(self.image_pool), rbd_name,
                           read_only=True) as image:
                meta = dict(image.metadata_list())
                if (meta.get(layout.META_GLANCE_KEY) != key
                        or layout.GOLDEN_SNAP
                        not in rbd_utils.snap_names(image)):
                    return None, True
                size = image.size()
        except rbd.ImageNotFound:
            return None, False
        except rbd.Error as e:
            raise rbd_utils.map_rbd_error(e, rbd_name)
        return layout.ImageSource(
            uuid=glance_id, kind='glance-cache', pool=self.image_pool,
            rbd_name=rbd_name, snapshot=layout.GOLDEN_SNAP, size=size,
            disk_format=meta.get(layout.META_GLANCE_FORMAT),
            cache_key=key), True

    def _ensure_glance_cache(self, client, source):
        """Convert a ``glance-convert`` source once; its cached copy.

        One conversion per image at a time (a lock per Glance id): a second
        deploy waits for the first and clones its result.

        The copy is written under its final name, ``glance-cache-<id>``,
        and is usable only once sealed: its protected snapshot, then its
        metadata, the key last (:meth:`_look_at_cache`).  Without the key it
        is a leftover (a failed or interrupted conversion, or an older
        hash), removed here before converting again.  (Until December 2026
        the copy was written as ``<name>.part`` and renamed: the rename
        cost about 18 ms of a first deploy and sealed nothing the key does
        not.)

        :raises: ImageFormatError, CephError
        """
        with locks.lock('glance-cache-' + source.uuid,
                        timeout=max(CONF.coordination.lock_timeout, 3600)):
            cached, present = self._look_at_cache(client, source.uuid,
                                                  source.cache_key)
            if cached is not None:
                return cached
            ioctx = client.ioctx(self.image_pool)
            final = layout.cache_rbd_name(source.uuid)
            if present:
                with rbd_utils.ceph_errors(final):
                    rbd_utils.remove_if_present(ioctx, final, probe=False)
            ref = names.rbd_ref(source.convert_from)
            size = self._inspect_glance_bytes(client, ref, source)
            LOG.info('Converting Glance image %(id)s (%(fmt)s, %(size)d '
                     'bytes) into %(pool)s/%(name)s',
                     {'id': source.uuid, 'fmt': source.disk_format,
                      'size': size, 'pool': self.image_pool, 'name': final})
            with rbd_utils.ceph_errors(final):
                rbd.RBD().create(ioctx, final, size,
                                 features=rbd_utils.features())
            try:
                # Held open from its creation to its key, and sealed
                # through this handle: its watch makes another remover
                # (another conductor, _drop_cache_quietly) fail with
                # EBUSY, so no image removed and made again under this
                # name meanwhile is sealed as this conversion's.  As
                # import_file's (golden.py): qemu-img writes through its
                # own client meanwhile; this handle writes nothing until
                # qemu-img is done, so the exclusive lock goes to qemu-img
                # at its first write and comes back for the snapshot.
                with rbd_utils.ceph_errors(final), \
                        rbd.Image(ioctx, final) as held:
                    # The qcow2 check beside the conversion: the snapshot
                    # cannot change between them, and the copy is usable
                    # only once sealed, after both succeeded.  It takes the
                    # check (a qemu-img run and Ceph connection of its own)
                    # off a first deploy's critical path.
                    with futures.ThreadPoolExecutor(max_workers=1) as pool:
                        checked = pool.submit(
                            transfer.check_rbd, ref.pool, ref.image,
                            ref.snapshot, source.disk_format)
                        try:
                            transfer.convert_rbd(ref.pool, ref.image,
                                                 ref.snapshot,
                                                 source.disk_format, final)
                        finally:
                            # A bad image's check error wins: it says why.
                            checked.result()
                    # Protected before the key says it is usable: a deploy
                    # that finds the key can clone it at once.
                    rbd_utils.protected_snapshot(held, layout.GOLDEN_SNAP)
                    for key, value in (
                            (layout.META_GLANCE_ID, source.uuid),
                            (layout.META_GLANCE_FORMAT, source.disk_format),
                            (layout.META_GLANCE_KEY, source.cache_key)):
                        held.metadata_set(key, value)
            except BaseException:
                rbd_utils.undo(ioctx, final, 'conversion')
                raise
            # What _look_at_cache would read back, known here (one open of
            # the image less on the first deploy).
            return layout.ImageSource(
                uuid=source.uuid, kind='glance-cache', pool=self.image_pool,
                rbd_name=final, snapshot=layout.GOLDEN_SNAP, size=size,
                disk_format=source.disk_format, cache_key=source.cache_key)

    @staticmethod
    def _inspect_glance_bytes(client, ref, source):
        """The virtual size of a Glance image's bytes; refuse unsafe ones.

        First, before anything opens the image as its format: a backing
        or data file (qemu-img would read this host's or the cluster's
        other files) is refused.  A qcow2's header is read here, through
        this process's Ceph connection (:func:`transfer.inspect_header`,
        oslo.utils' format inspector): measured in the lab (December 2026),
        about 7 ms (opening the snapshot 6, one 64 KiB read 1) where
        ``qemu-img info`` took 70-105 ms (a process and a Ceph connection
        of its own).  The other formats ask ``qemu-img
        info`` (:func:`transfer.inspect_rbd`).  The qcow2 check runs
        later, beside the conversion (``_ensure_glance_cache``).

        :raises: ImageFormatError, CephError
        """
        if source.disk_format not in transfer.HEADER_INSPECTED:
            return transfer.inspect_rbd(ref.pool, ref.image, ref.snapshot,
                                        source.disk_format, check=False)
        with rbd_utils.ceph_errors(source.convert_from):
            with rbd.Image(client.ioctx(ref.pool), ref.image,
                           snapshot=ref.snapshot, read_only=True) as image:
                return transfer.inspect_header(
                    image.read, source.disk_format, source.convert_from)

    def _drop_cache_quietly(self, client, glance_id):
        """Drop the copy of an image Glance no longer has; False if kept.

        Under the image's lock, as the conversion (which also holds the
        copy open until sealed): not waited for, a copy being converted
        is left to the next lookup or sweep.
        """
        try:
            with locks.lock('glance-cache-' + glance_id, timeout=0):
                return self._drop_cache_locked(client, glance_id)
        except exception.CoordinationError as e:
            LOG.info('Glance image %(id)s is gone; its converted copy is '
                     'left for now: %(err)s', {'id': glance_id, 'err': e})
            return False

    def _drop_cache_locked(self, client, glance_id):
        rbd_name = layout.cache_rbd_name(glance_id)
        ioctx = client.ioctx(self.image_pool)
        try:
            with rbd.Image(ioctx, rbd_name, read_only=True) as image:
                if layout.GOLDEN_SNAP in rbd_utils.snap_names(image):
                    image.set_snap(layout.GOLDEN_SNAP)
                    if list(image.list_children2()):
                        LOG.info('Glance image %(id)s is gone; its converted '
                                 'copy %(name)s stays while nodes clone it',
                                 {'id': glance_id, 'name': rbd_name})
                        return False
        except rbd.ImageNotFound:
            return True
        except rbd.Error as e:
            LOG.warning('Could not look at %(name)s: %(err)s',
                        {'name': rbd_name, 'err': e})
            return False
        try:
            rbd_utils.destroy(ioctx, rbd_name)
        except rbd.Error as e:
            LOG.warning('Could not drop %(name)s: %(err)s',
                        {'name': rbd_name, 'err': e})
            return False
        LOG.info('Dropped %(name)s: Glance no longer has image %(id)s',
                 {'name': rbd_name, 'id': glance_id})
        return True

    @rbd_utils.retry_transient
    def list_glance_cache(self):
        """The Glance ids that have a converted copy in the image pool.

        :raises: CephError
        """
        with self._clients.get() as client:
            found = rbd.RBD().list(client.ioctx(self.image_pool))
        return sorted(n[len(layout.CACHE_PREFIX):] for n in found
                      if n.startswith(layout.CACHE_PREFIX)
                      and not n.endswith(layout.CACHE_PART_SUFFIX))

    @rbd_utils.retry_transient
    def sweep_glance_cache(self):
        """Drop the converted copies of images Glance no longer has.

        Copies that nodes still clone stay (until those nodes go).
        Returns the Glance ids whose copy was dropped.

        :raises: GlanceError, CephError
        """
        dropped = []
        for glance_id in self.list_glance_cache():
            if self.glance.exists(glance_id):
                continue
            with self._clients.get() as client:
                if self._drop_cache_quietly(client, glance_id):
                    dropped.append(glance_id)
        return dropped
