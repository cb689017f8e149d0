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

"""Golden images published to Glance (issue 13, ``[glance] publish_images``).

Each golden image (imports, copies, node snapshots) gets a Glance record:
raw, bare, owned by the golden image's project with its visibility, the
property ``bmi_image_id``, and one location, its RBD snapshot
``rbd://<fsid>/<image pool>/img-<uuid>/golden``: no byte copied.  bmi
chooses the Glance id and the golden image records it
(``bmi.glance.published``) before Glance has the record.

Which records are bmi's: only those whose golden image names them.  The
property ``bmi_image_id`` proves nothing: any Glance user may set it on
their own image, and Nova's snapshots inherit it.  A record the golden
image does not name is never adopted.  Who may boot a published image is
decided by the golden image's own record (its project, its visibility),
never by the Glance record's owner or visibility.

Who owns what: bmi owns the bytes, Glance the catalogue entry.

- Deleting the golden image (the library, ``bmi-manage image delete``)
  removes its RBD image first (refused while nodes clone it, as always),
  then the Glance record.  Glance 31.0.0 cannot be told to forget a
  location: the last one cannot be removed, and deleting an image deletes
  every location from its store *in the location's pool*
  (glance_store's rbd ``delete`` unprotects the snapshot and removes the
  image).  Since the bytes are already gone, Glance finds nothing to
  delete (it logs that the data was not found) and drops the record.
- Glance's cephx user gets read-only access to the image pool (``profile
  rbd-read-only``): enough to serve downloads of published images, and
  Ceph refuses Glance's attempt to delete bmi's bytes when a user deletes
  a published image in Glance.
- A Glance record that is gone (deleted in Glance by any means) is noticed
  at lookup by its id and by :meth:`PublishedImages.sweep_published`: the
  golden image is kept (its bytes are bmi's) and forgets the Glance id;
  the sweep publishes again what is unpublished (so ``publish_images``
  turned on later, or a publication that failed, catches up).
"""

import urllib.parse

from oslo_log import log
from oslo_utils import uuidutils

from bmi_driver.common import locks

from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.storage.ceph import rbd_utils
from bmi_driver.storage.ceph.rbd_utils import rbd
from bmi_driver.storage import layout

LOG = log.getLogger(__name__)


def rbd_url(fsid, pool, image, snap):
    """glance_store's ``rbd://<fsid>/<pool>/<image>/<snap>``."""
    return 'rbd://%s' % '/'.join(urllib.parse.quote(p, safe='')
                                 for p in (fsid, pool, image, snap))


class PublishedImages:
    """Publishing golden images to Glance (a part of ImageLibrary).

    Needs ``self._clients``, ``self.image_pool``, ``self.glance`` and the
    golden image readers of :class:`golden.GoldenImages`.
    """

    @staticmethod
    def publishing():
        return bool(CONF.glance.publish_images)

    def _location_of(self, client, img):
        return rbd_url(client.cluster.get_fsid(), img.pool, img.rbd_name,
                       layout.GOLDEN_SNAP)

    def _set_published(self, client, img, glance_id):
        with rbd_utils.ceph_errors(img.uuid):
            with rbd.Image(client.ioctx(self.image_pool),
                           img.rbd_name) as image:
                if glance_id:
                    image.metadata_set(layout.META_PUBLISHED, glance_id)
                else:
                    try:
                        image.metadata_remove(layout.META_PUBLISHED)
                    except KeyError:
                        pass

    @staticmethod
    def _publish_lock(image_uuid):
        """Held from the id's record to the Glance record's end.

        The sweep takes it before it forgets an id that Glance does not
        list: a publication in flight is not taken for a record gone.
        """
        return locks.lock('glance-publish-' + image_uuid)

    def _publish(self, client, img):
        """Give ``img`` its Glance record; returns the Glance id.

        The id is bmi's choice (Glance 31's ``POST /v2/images`` takes one)
        and is recorded on the golden image before Glance has the record:
        a record whose id its golden image does not name is not bmi's
        (:meth:`sweep_published`).

        Read again under the lock: the sweep publishes what it listed as
        unpublished, and a publication of the same image (a new image's,
        another sweep's) may have recorded its id since; a second record
        would be left in Glance, naming the image but not named by it.

        :raises: GlanceError, CephError (ImageNotFound: the image is gone)
        """
        glance_id = uuidutils.generate_uuid()
        with self._publish_lock(img.uuid):
            now = self._read_golden(client, img.uuid, count_clones=False)
            if now.glance_id:
                return now.glance_id
            self._set_published(client, img, glance_id)
            try:
                self.glance.create_published(
                    glance_id, img.name, img.project, img.visibility,
                    img.uuid, img.size, self._location_of(client, img))
            except BaseException:
                self._forget_if_absent(client, img, glance_id)
                raise
        LOG.info('Published image %(name)s (%(uuid)s) to Glance as '
                 '%(glance)s', {'name': img.name, 'uuid': img.uuid,
                                'glance': glance_id})
        return glance_id

    def _forget_if_absent(self, client, img, glance_id):
        """After a failed publication: forget the id unless Glance has it.

        create_published removes what it made; when Glance kept a record
        anyway (its delete failed), the id stays recorded, so that the
        sweep knows the record for bmi's and removes it.
        """
        try:
            if self.glance.exists(glance_id):
                LOG.warning('Glance kept the unfinished record %(glance)s '
                            'of image %(uuid)s; bmi-manage image publish '
                            'sweep removes it', {'glance': glance_id,
                                                 'uuid': img.uuid})
                return
            self._set_published(client, img, None)
        except exception.BmiException as e:
            LOG.warning('Image %(uuid)s keeps the id %(glance)s of a '
                        'failed publication: %(err)s; bmi-manage image '
                        'publish sweep forgets it',
                        {'uuid': img.uuid, 'glance': glance_id, 'err': e})

    def _published_new(self, client, image_uuid):
        """A new golden image, published when ``publish_images`` says so.

        A failed publication does not undo the golden image (its bytes
        are whole and bmi's); it is logged and the sweep publishes it.
        """
        img = self._read_golden(client, image_uuid)
        if not self.publishing():
            return img
        try:
            self._publish(client, img)
        except exception.BmiException as e:
            LOG.warning('Could not publish image %(name)s (%(uuid)s) to '
                        'Glance: %(err)s; bmi-manage image publish sweep '
                        'will', {'name': img.name, 'uuid': img.uuid,
                                 'err': e})
        return self._read_golden(client, image_uuid)

    def _note_unpublish(self, client, image_uuid, glance_id):
        """Remember that ``glance_id`` is bmi's, its golden image going.

        Written before the golden image (which names the record) is
        removed: should Glance keep the record, the sweep still knows it
        for bmi's and deletes it (:data:`layout.POOL_META_UNPUBLISH`).

        :raises: CephError
        """
        with rbd_utils.ceph_errors(self.image_pool):
            rbd.RBD().pool_metadata_set(
                client.ioctx(self.image_pool),
                layout.POOL_META_UNPUBLISH + glance_id, image_uuid)

    def _drop_unpublish_note(self, client, glance_id):
        try:
            with rbd_utils.ceph_errors(self.image_pool):
                rbd.RBD().pool_metadata_remove(
                    client.ioctx(self.image_pool),
                    layout.POOL_META_UNPUBLISH + glance_id)
        except KeyError:
            pass
        except exception.BmiException as e:
            LOG.warning('Could not drop the note of the deleted Glance '
                        'record %(glance)s: %(err)s; next sweep',
                        {'glance': glance_id, 'err': e})

    def _unpublish_notes(self, client):
        """{glance id: golden uuid} of the notes of :meth:`_note_unpublish`.

        :raises: CephError
        """
        with rbd_utils.ceph_errors(self.image_pool):
            found = rbd.RBD().pool_metadata_list(
                client.ioctx(self.image_pool))
            return {k[len(layout.POOL_META_UNPUBLISH):]: v for k, v in found
                    if k.startswith(layout.POOL_META_UNPUBLISH)}

    def _unpublish(self, client, image_uuid, glance_id):
        """Delete the Glance record of a deleted golden image.

        Called once the RBD image is gone, so that Glance, which deletes
        a location's bytes with the record, finds none; the note of
        :meth:`_note_unpublish` goes with the record.
        """
        if not glance_id:
            return
        try:
            self.glance.delete_image(glance_id)
        except exception.BmiException as e:
            LOG.warning('Image %(uuid)s is deleted but its Glance record '
                        '%(glance)s stays: %(err)s; bmi-manage image '
                        'publish sweep removes it', {
                            'uuid': image_uuid, 'glance': glance_id,
                            'err': e})
            return
        self._drop_unpublish_note(client, glance_id)
        LOG.info('Deleted the Glance record %(glance)s of image %(uuid)s',
                 {'glance': glance_id, 'uuid': image_uuid})

    def _update_published(self, img, **fields):
        if not img.glance_id:
            return
        try:
            self.glance.update_image(img.glance_id, **fields)
        except exception.BmiException as e:
            LOG.warning('Could not update the Glance record %(glance)s of '
                        'image %(uuid)s: %(err)s',
                        {'glance': img.glance_id, 'uuid': img.uuid,
                         'err': e})

    def _golden_of_glance(self, client, glance_img):
        """The golden image a Glance image publishes, or None.

        Its location must be the golden snapshot of an image in bmi's pool
        whose record names this Glance id: a Glance image that merely
        points into the pool is not trusted.
        """
        if not glance_img.rbd_spec:
            return None
        pool, _, rest = glance_img.rbd_spec.partition('/')
        rbd_name, _, snap = rest.partition('@')
        if (pool != self.image_pool or snap != layout.GOLDEN_SNAP
                or not rbd_name.startswith(layout.GOLDEN_PREFIX)):
            return None
        try:
            img = self._read_golden(client,
                                    rbd_name[len(layout.GOLDEN_PREFIX):],
                                    count_clones=False)
        except exception.ImageNotFound:
            return None
        if img.glance_id != glance_img.id:
            return None
        return img

    @staticmethod
    def _published_visible_to(golden, glance_img, project):
        """Whether a node of ``project`` may boot a published golden image.

        The golden image's record decides, as for its UUID: its project,
        or any project when it is public.  Glance's owner and visibility
        do not (Glance lets the owner make a record ``community``, and a
        record's owner is whatever Glance says).  The one thing taken from
        Glance is the sharing its owner did there: an accepted member of a
        ``shared`` record owned by the golden image's project.
        """
        if project is layout.ANY_PROJECT or golden.visibility == 'public':
            return True
        if project is None:
            return False
        if golden.project == project:
            return True
        return (glance_img.owner == golden.project
                and glance_img.visibility == 'shared'
                and glance_img.members.get(project) == 'accepted')

    def _still_names(self, client, image_uuid, glance_id):
        """Whether the golden image, read again, still names ``glance_id``.

        Under its publication lock (the sweep's checks before it changes
        anything): a publication may have recorded a new id meanwhile, or
        a delete removed the image.
        """
        try:
            now = self._read_golden(client, image_uuid, count_clones=False)
        except exception.ImageNotFound:
            return False
        return now.glance_id == glance_id

    def _forget_gone(self, client, img, glance_id):
        """Forget ``glance_id`` if Glance has not got it: True if forgotten.

        Under the image's publication lock, checked again: a publication
        records its id before Glance has the record.
        """
        with self._publish_lock(img.uuid):
            if (not self._still_names(client, img.uuid, glance_id)
                    or self.glance.exists(glance_id)):
                return False
            self._set_published(client, img, None)
        LOG.info('Glance no longer has %(glance)s: image %(name)s '
                 '(%(uuid)s) stays, unpublished',
                 {'glance': glance_id, 'name': img.name, 'uuid': img.uuid})
        return True

    def _drop_unfinished(self, client, img, glance_id):
        """Delete bmi's record that never got its location: True if done.

        A publication that failed between the record and its location,
        and whose record Glance did not let go (``_forget_if_absent``):
        still ``queued``, checked again under the publication lock (one
        in flight is ``queued`` too).  The golden image forgets it and is
        published again.
        """
        with self._publish_lock(img.uuid):
            if not self._still_names(client, img.uuid, glance_id):
                return False
            try:
                record = self.glance.get_image(glance_id, with_members=False)
            except exception.ImageNotFound:
                record = None
            if record is not None:
                if record.status != 'queued':
                    return False
                self.glance.delete_image(glance_id)
            self._set_published(client, img, None)
        LOG.info('Deleted the unfinished Glance record %(glance)s of image '
                 '%(uuid)s', {'glance': glance_id, 'uuid': img.uuid})
        return True

    @rbd_utils.retry_transient
    def sweep_published(self):
        """Make the golden images and their Glance records agree.

        - a golden image whose Glance record is gone forgets it (the image
          stays: bmi owns the bytes);
        - a record of bmi's left ``queued`` by a failed publication is
          deleted, and its golden image forgets it;
        - a Glance record of bmi's whose golden image is gone (the note
          of :meth:`_note_unpublish` says so) is deleted;
        - a Glance record that carries ``bmi_image_id`` but that no golden
          image names, nor any note, is not bmi's (a user's image, a Nova
          snapshot of a published image, which inherits the property):
          never adopted, never deleted, logged and left;
        - with ``publish_images``, unpublished golden images are published.

        :returns: {'forgotten': [uuid], 'deleted': [glance id],
                   'published': [uuid], 'left': [glance id]}
        :raises: GlanceError, CephError
        """
        result = {'forgotten': [], 'deleted': [], 'published': [],
                  'left': []}
        records = self.glance.published()
        with self._clients.get() as client:
            golden = {i.uuid: i for i in self._all_golden(client,
                                                          count_clones=False)}
            notes = self._unpublish_notes(client)
            for img in golden.values():
                if (img.glance_id and img.glance_id not in records
                        and self._forget_gone(client, img, img.glance_id)):
                    img.glance_id = ''
                    result['forgotten'].append(img.uuid)
            for glance_id, (bmi_id, status) in sorted(records.items()):
                img = golden.get(bmi_id)
                if img is not None and img.glance_id == glance_id:
                    # bmi's: its golden image names it.
                    if status == 'queued' and self._drop_unfinished(
                            client, img, glance_id):
                        img.glance_id = ''
                        result['deleted'].append(glance_id)
                    continue
                if notes.get(glance_id) == bmi_id:
                    # bmi's, and its golden image is gone: bmi deletes it.
                    self.glance.delete_image(glance_id)
                    self._drop_unpublish_note(client, glance_id)
                    result['deleted'].append(glance_id)
                    continue
                # Not bmi's: no golden image names it, no note.  Adopting
                # it would let its owner decide who boots the golden image;
                # deleting it would delete a user's image (a Nova snapshot
                # of a published image inherits bmi_image_id).
                LOG.warning('Glance image %(glance)s says it publishes '
                            'image %(uuid)s, which does not name it: not '
                            'bmi\'s, left alone',
                            {'glance': glance_id, 'uuid': bmi_id})
                result['left'].append(glance_id)
            for glance_id in set(notes) - set(records):
                self._drop_unpublish_note(client, glance_id)
            if self.publishing():
                for img in golden.values():
                    if not img.glance_id:
                        self._publish(client, img)
                        result['published'].append(img.uuid)
        return result
