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

"""What Glance knows about an image, read through its API (v2).

keystoneauth1 from the ``[glance]`` options (:mod:`bmi_driver.conf.glance`):
in a cloud a service user's token and the catalogue; in the lab
``auth_type = none`` with ``endpoint_override``.  The plugin reads as a
service that sees every project's images and decides itself who may boot
which (:meth:`GlanceImage.visible_to`), from what Glance says: visibility,
owner, members and their status.

Checked against Glance 31.0.0 (OpenStack 2025.2): ``GET /v2/images/{id}``
(``direct_url`` and ``locations`` need ``show_image_direct_url`` /
``show_multiple_locations``), ``GET /v2/images/{id}/members/{project}``.

Publishing a golden image (``[glance] publish_images``): ``POST
/v2/images`` (the id bmi chose, owner, visibility, the ``bmi_image_id``
property), then the
location added by ``PATCH`` (``add /locations/-``, which needs
``show_multiple_locations = true``).  Not 31.0.0's new ``POST
/v2/images/{id}/locations``: it is reserved to the ``service`` role, runs
as an asynchronous task, and without a sha512 ``validation_data`` (bmi
records sha256) reads the whole image back through Glance to hash it; the
PATCH is synchronous and reads nothing.  Neither lets a location be
removed from an image that has one location only ("Cannot remove last
location in the image"), and deleting a Glance image deletes every
location from its store, in the location's own pool: see
:mod:`bmi_driver.storage.ceph.published` for what bmi does about it.
"""

import dataclasses
import urllib.parse

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from oslo_log import log
from oslo_utils import uuidutils

from bmi_driver.conf import CONF
from bmi_driver.conf import glance as glance_conf
from bmi_driver import exception
from bmi_driver.storage import layout

LOG = log.getLogger(__name__)

GROUP = glance_conf.GROUP

# Cloned as they are: the RBD snapshot is the disk.
CLONED_FORMATS = ('raw',)
# Converted once by qemu-img into a cached raw image, then cloned.
CONVERTED_FORMATS = ('qcow2', 'vmdk', 'vdi', 'vhdx')
CONTAINER_FORMATS = ('bare',)


@dataclasses.dataclass
class GlanceImage:
    """An image as Glance describes it."""
    id: str
    status: str
    disk_format: str
    container_format: str
    size: int
    virtual_size: int
    checksum: str
    hash_algo: str
    hash_value: str
    visibility: str
    owner: str
    # The RBD spec of its bytes (pool/image@snap), or None when they are
    # not in Ceph.
    rbd_spec: str = None
    # project -> member status; filled by GlanceClient for shared images.
    members: dict = dataclasses.field(default_factory=dict)

    @property
    def cache_key(self):
        """What the converted copy is keyed by, with the image id."""
        if self.hash_value:
            return '%s:%s' % (self.hash_algo, self.hash_value)
        return 'md5:%s' % self.checksum if self.checksum else ''

    def visible_to(self, project):
        """Whether a node of ``project`` may boot this image.

        Public and community images: every project (and a node of no
        project); shared: the owner and members whose membership is
        accepted; private: the owner.
        """
        if project is layout.ANY_PROJECT:
            return True
        if self.visibility in ('public', 'community'):
            return True
        if project is None:
            return False
        if self.owner == project:
            return True
        return (self.visibility == 'shared'
                and self.members.get(project) == 'accepted')


def parse_rbd_url(url):
    """glance_store's ``rbd://<fsid>/<pool>/<image>/<snap>``: a spec.

    :returns: ``pool/image@snap``, or None for another store's URL.
    """
    if not url or not url.startswith('rbd://'):
        return None
    parts = [urllib.parse.unquote(p) for p in url[len('rbd://'):].split('/')]
    if len(parts) != 4 or not all(parts):
        return None
    _fsid, pool, image, snap = parts
    return layout.rbd_spec(pool, image, snap)


def _rbd_spec(body):
    spec = parse_rbd_url(body.get('direct_url'))
    if spec:
        return spec
    for loc in body.get('locations') or ():
        spec = parse_rbd_url((loc or {}).get('url'))
        if spec:
            return spec
    return None


class GlanceClient:
    """Glance's v2 API, as the image library needs it.

    :param adapter: a keystoneauth1 Adapter; by default loaded from the
        ``[glance]`` options.
    """

    def __init__(self, adapter=None):
        self.adapter = adapter or self._load_adapter()

    @staticmethod
    def _load_adapter():
        try:
            auth = ks_loading.load_auth_from_conf_options(CONF, GROUP)
            session = ks_loading.load_session_from_conf_options(
                CONF, GROUP, auth=auth)
            return ks_loading.load_adapter_from_conf_options(
                CONF, GROUP, session=session, auth=auth)
        except (ks_exc.NoMatchingPlugin, ks_exc.MissingRequiredOptions,
                ks_exc.OptionError, TypeError) as e:
            raise exception.GlanceError(
                reason='invalid [glance] options: %s' % e)

    def _get(self, path):
        """GET ``path``: (status code, decoded JSON or None)."""
        return self._request('GET', path)

    def _request(self, method, path, **kwargs):
        """``method`` ``path``: (status code, decoded JSON or None)."""
        try:
            resp = self.adapter.request(path, method, raise_exc=False,
                                        **kwargs)
        except (ks_exc.ConnectionError, ks_exc.EndpointNotFound,
                ks_exc.MissingAuthPlugin, ks_exc.AuthorizationFailure,
                ks_exc.DiscoveryFailure, ks_exc.HttpError) as e:
            raise exception.GlanceError(reason='%s: %s'
                                        % (type(e).__name__, e))
        if resp.status_code >= 500 or resp.status_code in (401, 403):
            raise exception.GlanceError(
                reason='%s %s answered HTTP %d' % (method, path,
                                                   resp.status_code))
        try:
            body = resp.json() if resp.content else None
        except ValueError:
            body = None
        return resp.status_code, body

    def get_image(self, image_id, with_members=True):
        """The image ``image_id`` as Glance describes it.

        :param with_members: for a shared image, read its members too.
        :raises: ImageNotFound when Glance does not know it (or it is
            deleted).
        :raises: GlanceError when Glance cannot be asked.
        """
        if not uuidutils.is_uuid_like(image_id):
            raise exception.ImageNotFound(image=image_id)
        quoted = urllib.parse.quote(image_id, safe='')
        status, body = self._get('/v2/images/%s' % quoted)
        # Only a 404 says Glance has no such image: callers drop the
        # converted copy and unpublish on it.  Anything else unexpected
        # (a 200 whose body is no image: a proxy's page, a cut reply) is
        # an error, never "not found".
        if status == 404:
            raise exception.ImageNotFound(image=image_id)
        if status != 200:
            raise exception.GlanceError(
                reason='GET image %s answered HTTP %d' % (image_id, status))
        if not isinstance(body, dict):
            raise exception.GlanceError(
                reason='GET image %s answered HTTP 200 without an image: %s'
                % (image_id, _message(body)))
        img = GlanceImage(
            id=body.get('id', image_id), status=body.get('status') or '',
            disk_format=body.get('disk_format') or '',
            container_format=body.get('container_format') or '',
            size=int(body.get('size') or 0),
            virtual_size=int(body.get('virtual_size') or 0),
            checksum=body.get('checksum') or '',
            hash_algo=body.get('os_hash_algo') or '',
            hash_value=body.get('os_hash_value') or '',
            visibility=body.get('visibility') or 'private',
            owner=body.get('owner') or '',
            rbd_spec=_rbd_spec(body))
        if with_members and img.visibility == 'shared':
            img.members = self.members(img.id)
        return img

    def members(self, image_id):
        """{member project: status} of a shared image.

        :raises: GlanceError
        """
        quoted = urllib.parse.quote(image_id, safe='')
        status, body = self._get('/v2/images/%s/members' % quoted)
        if status != 200 or not isinstance(body, dict):
            return {}
        return {m.get('member_id'): m.get('status')
                for m in body.get('members') or () if isinstance(m, dict)}

    def exists(self, image_id):
        """Whether Glance still has the image (deleted ones it has not).

        :raises: GlanceError
        """
        try:
            img = self.get_image(image_id, with_members=False)
        except exception.ImageNotFound:
            return False
        return img.status not in ('deleted', 'pending_delete', 'killed')

    # -- publishing golden images --------------------------------------

    def create_published(self, image_id, name, owner, visibility,
                         bmi_image_id, size, location_url):
        """Glance image ``image_id``, whose only location is ``location_url``.

        Raw and bare (a golden image is raw), owned by ``owner`` with
        ``visibility``, and the ``bmi_image_id`` property that names the
        golden image.  The caller chooses the id (Glance 31's ``POST
        /v2/images`` takes an ``id``; one that exists answers 409): the
        property alone proves nothing, any Glance user may set it.  Undone
        when the location cannot be added.

        :raises: GlanceError
        """
        status, body = self._request('POST', '/v2/images', json={
            'id': image_id, 'name': name, 'disk_format': 'raw',
            'container_format': 'bare', 'visibility': visibility,
            'owner': owner, layout.GLANCE_PROP_IMAGE: bmi_image_id})
        if (status != 201 or not isinstance(body, dict)
                or body.get('id') != image_id):
            raise exception.GlanceError(
                reason='creating the image of %s answered HTTP %d: %s'
                % (bmi_image_id, status, _message(body)))
        quoted = urllib.parse.quote(image_id, safe='')
        try:
            status, body = self._request(
                'PATCH', '/v2/images/%s' % quoted,
                headers={'Content-Type':
                         'application/openstack-images-v2.1-json-patch'},
                json=[{'op': 'add', 'path': '/locations/-',
                       'value': {'url': location_url, 'metadata': {}}}])
            if status != 200:
                raise exception.GlanceError(
                    reason='adding the location of %s answered HTTP %d: %s'
                    % (bmi_image_id, status, _message(body)))
        except exception.GlanceError:
            try:
                self.delete_image(image_id)
            except exception.GlanceError as e:
                LOG.warning('Could not remove the unfinished Glance image '
                            '%(id)s: %(err)s', {'id': image_id, 'err': e})
            raise

    def update_image(self, image_id, **fields):
        """Replace top-level fields (name, visibility) of an image.

        :raises: ImageNotFound, GlanceError
        """
        quoted = urllib.parse.quote(image_id, safe='')
        status, body = self._request(
            'PATCH', '/v2/images/%s' % quoted,
            headers={'Content-Type':
                     'application/openstack-images-v2.1-json-patch'},
            json=[{'op': 'replace', 'path': '/%s' % k, 'value': v}
                  for k, v in sorted(fields.items())])
        if status == 404:
            raise exception.ImageNotFound(image=image_id)
        if status != 200:
            raise exception.GlanceError(
                reason='updating image %s answered HTTP %d: %s'
                % (image_id, status, _message(body)))

    def delete_image(self, image_id):
        """Delete an image; one Glance does not have is not an error.

        :raises: GlanceError
        """
        quoted = urllib.parse.quote(image_id, safe='')
        status, body = self._request('DELETE', '/v2/images/%s' % quoted)
        if status not in (204, 404):
            raise exception.GlanceError(
                reason='deleting image %s answered HTTP %d: %s'
                % (image_id, status, _message(body)))

    def published(self):
        """{Glance id: (bmi image id, status)} of images with the property.

        Every image that carries ``bmi_image_id``: bmi's records, and any
        other that a user gave the property (it is an ordinary property,
        and Nova's snapshots inherit it): the caller tells them apart.
        Glance filters on the property (``GET /v2/images?bmi_image_id=``
        takes one value; the list is read whole and filtered here).

        :raises: GlanceError
        """
        found, path = {}, '/v2/images?limit=200'
        while path:
            status, body = self._get(path)
            if status != 200 or not isinstance(body, dict):
                raise exception.GlanceError(
                    reason='listing images answered HTTP %d' % status)
            for img in body.get('images') or ():
                bmi_id = (img or {}).get(layout.GLANCE_PROP_IMAGE)
                if bmi_id and img.get('status') not in (
                        'deleted', 'pending_delete', 'killed'):
                    found[img['id']] = (bmi_id, img.get('status') or '')
            path = body.get('next')
        return found


def _message(body):
    if isinstance(body, dict):
        return str(body.get('message') or body.get('title') or body)[:200]
    return str(body)[:200] if body else '(no body)'
