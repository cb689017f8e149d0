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

"""keystoneauth1's options for the groups of the plugin's HTTP clients.

Not a group of its own: ``[glance]``, ``[neutron]`` and ``[hil]`` call
these (checked against keystoneauth1 5.18.1).  The clients load the
options back with ``load_session_from_conf_options``,
``load_auth_from_conf_options`` and ``load_adapter_from_conf_options``.
"""

import copy

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

# The auth plugins documented in the sample: none (the lab, a standalone
# Ironic) and Keystone's password.
AUTH_PLUGINS = ('none', 'password')


def register_shared_group(conf, group, service_type, own_opts):
    """Register a group Ironic may have registered already.

    In a conductor Ironic 39.0.0 registers ``[glance]`` and ``[neutron]``
    with the same keystoneauth1 helpers and changes some defaults
    (valid_interfaces, service_type), so a second register_*_conf_options
    call would raise DuplicateOptError: the options go one by one, and
    the ones Ironic registered first are kept (the same setting).
    """
    for opt in (ks_loading.get_session_conf_options()
                + ks_loading.get_auth_common_conf_options()
                + ks_loading.get_adapter_conf_options(
                    include_deprecated=False)
                + list(own_opts)):
        try:
            conf.register_opt(opt, group=group)
        except cfg.DuplicateOptError:
            pass
    conf.set_default('service_type', service_type, group=group)


def sample_opts(plugins=AUTH_PLUGINS, defaults=None):
    """keystoneauth1's options for a group's sample, each name once.

    Session, common auth (``auth_type``, ``auth_section``), the options of
    each documented auth plugin and the adapter's; the plugins share some
    (``username``, ``password``), listed once.
    """
    result = list(ks_loading.get_auth_common_conf_options())
    for name in plugins:
        loader = ks_loading.get_plugin_loader(name)
        result.extend(ks_loading.get_auth_plugin_conf_options(loader))
    result.extend(ks_loading.get_session_conf_options())
    result.extend(ks_loading.get_adapter_conf_options(
        include_deprecated=False))
    unique = {}
    for opt in result:
        unique.setdefault(opt.dest, opt)
    # Copies: the helpers may hand out option objects that they share.
    ks_opts = copy.deepcopy(list(unique.values()))
    if defaults:
        cfg.set_defaults(ks_opts, **defaults)
    return sorted(ks_opts, key=lambda o: o.dest)
