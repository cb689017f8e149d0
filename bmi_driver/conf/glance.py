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

"""The ``[glance]`` group: how the plugin reaches Glance's API.

keystoneauth1's session, auth and adapter options (``auth_type``,
``endpoint_override``, ``service_type`` = image, ``timeout``...). In a
conductor, Ironic 39.0.0 registers the same group with the same
keystoneauth1 helpers (ironic/conf/glance.py): one ``[glance]`` section
serves both, and the options Ironic registered first are kept.  And
bmi's own ``publish_images`` (issue 13: golden images seen in Glance).
"""

from oslo_config import cfg

from bmi_driver.conf import auth

GROUP = 'glance'

# Glance's service type in the catalogue; Ironic sets the same default.
SERVICE_TYPE = 'image'

# The plugin's own options of the group, beside keystoneauth1's.
opts = [
    cfg.BoolOpt('publish_images', default=False,
                help='Publish every golden image and node snapshot to '
                     'Glance as a raw image whose only location is its RBD '
                     'snapshot (rbd://<fsid>/<image pool>/img-<uuid>/'
                     'golden: no copy), owned by the golden image\'s '
                     'project with its visibility, so that Nova users can '
                     'list and boot it.  Deleting the golden image deletes '
                     'its bytes, then the Glance record; a record deleted '
                     'in Glance is forgotten by the golden image, whose '
                     'bytes bmi keeps (bmi-manage image publish sweep).  '
                     'Glance needs show_multiple_locations = true and '
                     'read-only access to [ceph] image_pool.'),
]


def register_opts(conf):
    auth.register_shared_group(conf, GROUP, SERVICE_TYPE, opts)


def list_opts():
    return (GROUP, opts + auth.sample_opts())
