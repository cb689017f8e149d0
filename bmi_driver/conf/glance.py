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

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

GROUP = 'glance'

# Glance's service type in the catalogue; Ironic sets the same default.
SERVICE_TYPE = 'image'

# The plugin's own options of the group: none (keystoneauth1's only).
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

# The auth plugins documented in the sample: none (the lab, a standalone
# Ironic) and Keystone's password.
_AUTH_PLUGINS = ('none', 'password')


def _register_each(conf, options):
    for opt in options:
        try:
            conf.register_opt(opt, group=GROUP)
        except cfg.DuplicateOptError:
            # Ironic's (with its own defaults): the same setting.
            pass


def register_opts(conf):
    # keystoneauth1's helpers' option lists (checked against keystoneauth1
    # 5.18.1), registered one by one: in a conductor Ironic has registered
    # them already and changed some defaults (valid_interfaces,
    # service_type), which would make a second register_*_conf_options call
    # raise DuplicateOptError.
    _register_each(conf, ks_loading.get_session_conf_options())
    _register_each(conf, ks_loading.get_auth_common_conf_options())
    _register_each(conf, ks_loading.get_adapter_conf_options(
        include_deprecated=False))
    conf.set_default('service_type', SERVICE_TYPE, group=GROUP)
    _register_each(conf, opts)


def _keystoneauth_opts():
    result = list(ks_loading.get_auth_common_conf_options())
    for name in _AUTH_PLUGINS:
        loader = ks_loading.get_plugin_loader(name)
        result.extend(ks_loading.get_auth_plugin_conf_options(loader))
    result.extend(ks_loading.get_session_conf_options())
    result.extend(ks_loading.get_adapter_conf_options(
        include_deprecated=False))
    result.extend(opts)
    seen, unique = set(), []
    for opt in result:
        if opt.dest not in seen:
            seen.add(opt.dest)
            unique.append(opt)
    return unique


def list_opts():
    return (GROUP, _keystoneauth_opts())
