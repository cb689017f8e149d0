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

"""The lab's Glance as its users reach it (openstacksdk), for the tests.

The users endpoint takes the caller's project and roles from headers
(tools/lab/glance.py): ``connect(env, project)`` acts as that project.
"""

from keystoneauth1 import noauth
from keystoneauth1 import session as ks_session
import openstack.connection

from bmi_driver.storage.ceph import library as images
from bmi_driver.storage.ceph import rbd_utils
from bmi_driver.storage import glance_client
from tools.lab import state as lab_state


def glance_env(env):
    """services.json's Glance; AssertionError when it does not run."""
    glance = (env.get('services') or {}).get('glance') or {}
    if not glance.get('running'):
        # Loud, never a skip: the lab must run Glance.
        raise AssertionError('the lab\'s Glance is not running: python -m '
                             'tools.lab start ... glance')
    return glance


def image_library(test, **options):
    """The plugin's image library reading the lab's Glance, for ``test``.

    ``options`` are further ``[glance]`` options (``publish_images``).
    """
    glance_env(test.env)
    test.config(group='glance', **lab_state.glance_options(test.env))
    if options:
        test.config(group='glance', **options)
    return images.ImageLibrary(clients=rbd_utils.ClientPool(),
                               glance=glance_client.GlanceClient())


def connect(env, project, roles='member,reader'):
    """An openstacksdk connection to Glance acting as ``project``."""
    sess = ks_session.Session(auth=noauth.NoAuth(), additional_headers={
        'X-Identity-Status': 'Confirmed', 'X-Project-Id': project,
        'X-User-Id': 'user-' + project, 'X-Roles': roles})
    return openstack.connection.Connection(
        session=sess, image_endpoint_override=glance_env(env)['url'])


def upload(env, project, path, disk_format, name, visibility='private'):
    """Upload ``path`` as ``project``: (connection, the image, active)."""
    roles = ('admin,member,reader' if visibility == 'public'
             else 'member,reader')
    conn = connect(env, project, roles)
    img = conn.image.create_image(
        name=name, filename=path, disk_format=disk_format,
        container_format='bare', visibility=visibility,
        allow_duplicates=True, validate_checksum=False)
    return conn, conn.image.get_image(img.id)
