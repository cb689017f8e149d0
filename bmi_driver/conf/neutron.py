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

"""The ``[neutron]`` group: how the ``hil`` interface reaches Neutron.

keystoneauth1's session, auth and adapter options (``auth_type``,
``endpoint_override``, ``service_type`` = network, ``timeout``...).  In a
conductor, Ironic 39.0.0 registers the same group with the same
keystoneauth1 helpers (ironic/conf/neutron.py, auth.register_auth_opts):
one ``[neutron]`` section serves both, and the options Ironic registered
first are kept.  The plugin's own options are prefixed ``hil_`` so that
they never collide with Ironic's (checked against Ironic 39.0.0's option
names).
"""

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

GROUP = 'neutron'

# Neutron's service type in the catalogue; Ironic sets the same default.
SERVICE_TYPE = 'network'

opts = [
    cfg.StrOpt('hil_network_prefix', default='neutron-',
               help='The hil network interface maps each Neutron network '
                    'to one HIL network named <prefix><Neutron network '
                    'id>, created on demand (owned by the node\'s HIL '
                    'project) and deleted when no nic uses it any more.'),
    cfg.IntOpt('hil_port_active_timeout', default=30, min=0,
               help='Seconds to wait for a Neutron port that the hil '
                    'network interface bound to reach status ACTIVE; 0: '
                    'do not wait (a port no mechanism driver binds stays '
                    'DOWN and is not an error then).'),
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
    # One by one, as conf/glance.py does: in a conductor Ironic 39.0.0 has
    # registered keystoneauth1's options in this group already.
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
