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
``rbd://<fsid>/<image pool>/img-<uuid>/golden``: no byte copied.  The
golden image records the Glance id (``bmi.glance.published``).

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

    def _publish(self, client, img):
        """Give ``img`` its Glance record; returns the Glance id.

        :raises: GlanceError, CephError
        """
        glance_id = self.glance.create_published(
            img.name, img.project, img.visibility, img.uuid, img.size,
            self._location_of(client, img))
        try:
            self._set_published(client, img, glance_id)
        except BaseException:
            self.glance.delete_image(glance_id)
            raise
        LOG.info('Published image %(name)s (%(uuid)s) to Glance as '
                 '%(glance)s', {'name': img.name, 'uuid': img.uuid,
                                'glance': glance_id})
        return glance_id

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
            return img
        return self._read_golden(client, image_uuid)

    def _unpublish(self, img):
        """Delete the Glance record of a deleted golden image.

        Called once the RBD image is gone, so that Glance, which deletes
        a location's bytes with the record, finds none.
        """
        if not img.glance_id:
            return
        try:
            self.glance.delete_image(img.glance_id)
        except exception.BmiException as e:
            LOG.warning('Image %(uuid)s is deleted but its Glance record '
                        '%(glance)s stays: %(err)s; bmi-manage image '
                        'publish sweep removes it', {
                            'uuid': img.uuid, 'glance': img.glance_id,
                            'err': e})
            return
        LOG.info('Deleted the Glance record %(glance)s of image %(uuid)s',
                 {'glance': img.glance_id, 'uuid': img.uuid})

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

    @rbd_utils.retry_transient
    def sweep_published(self):
        """Make the golden images and their Glance records agree.

        - a golden image whose Glance record is gone forgets it (the image
          stays: bmi owns the bytes);
        - a Glance record of bmi's whose golden image is gone is deleted;
        - with ``publish_images``, unpublished golden images are published.

        :returns: {'forgotten': [uuid], 'deleted': [glance id],
                   'published': [uuid]}
        :raises: GlanceError, CephError
        """
        result = {'forgotten': [], 'deleted': [], 'published': []}
        records = self.glance.published()
        with self._clients.get() as client:
            golden = {i.uuid: i for i in self._all_golden(client,
                                                          count_clones=False)}
            for img in golden.values():
                if img.glance_id and img.glance_id not in records:
                    LOG.info('Glance no longer has %(glance)s: image '
                             '%(name)s (%(uuid)s) stays, unpublished',
                             {'glance': img.glance_id, 'name': img.name,
                              'uuid': img.uuid})
                    self._set_published(client, img, None)
                    img.glance_id = ''
                    result['forgotten'].append(img.uuid)
            for glance_id, bmi_id in sorted(records.items()):
                img = golden.get(bmi_id)
                if img is None:
                    self.glance.delete_image(glance_id)
                    result['deleted'].append(glance_id)
                elif img.glance_id != glance_id and img.glance_id:
                    # A second record of one image (a publication that was
                    # interrupted after Glance answered): the recorded one
                    # stays.
                    self.glance.delete_image(glance_id)
                    result['deleted'].append(glance_id)
                elif not img.glance_id:
                    self._set_published(client, img, glance_id)
                    img.glance_id = glance_id
            if self.publishing():
                for img in golden.values():
                    if not img.glance_id:
                        self._publish(client, img)
                        result['published'].append(img.uuid)
        return result
