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

"""The ``[hil]`` group: the HIL client and the ``hil`` network interface.

Besides the plugin's own options, the group carries keystoneauth1's session
(``timeout``, TLS), adapter (``endpoint_override``, ``connect_retries``,
``status_code_retries``) and authentication options (``auth_type`` =
``none``, ``http_basic`` or ``password`` for Keystone, plus that plugin's
own options, registered when the client is loaded).
"""

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

from bmi_driver.conf import auth

GROUP = 'hil'

# Authentication plugins documented in the sample configuration: HIL's null
# auth, its database auth (HTTP Basic) and Keystone.
_AUTH_PLUGINS = ('none', 'http_basic', 'password')

opts = [
    cfg.StrOpt('url',
               help='HIL API root, e.g. http://hil.example.com:7000 (without '
                    'the /v0 prefix). endpoint_override, when set, wins.'),
    cfg.StrOpt('provisioning_network',
               default='bmi-provisioning',
               help='HIL network that every deployed node\'s boot nic joins '
                    '(native VLAN): it carries iSCSI to the node\'s disk.'),
    cfg.StrOpt('tenant_networks_field',
               default='hil_networks',
               help='Key of the node\'s instance_info holding the tenant '
                    'networks: a list of {"network": <HIL network>, "nic": '
                    '<HIL nic label or MAC>, "channel": "vlan/<id>"} '
                    '(channel optional: the network\'s own VLAN). They are '
                    'joined as tagged VLANs when the node is deployed.'),
    cfg.StrOpt('project_source',
               default='lessee',
               choices=[('lessee', 'The node\'s lessee, else its owner.'),
                        ('owner', 'The node\'s owner.'),
                        ('driver_info', 'driver_info/hil_project.')],
               deprecated_for_removal=True,
               deprecated_since='issue 11',
               deprecated_reason='A node has one project, for image '
                                 'visibility and HIL alike: its lessee, '
                                 'else its owner (see [bmi] '
                                 'trust_instance_project_id). "lessee" is '
                                 'that resolution; "owner" and '
                                 '"driver_info" still work but make HIL '
                                 'and image visibility disagree.',
               help='Where the HIL project of a node comes from. With '
                    'Keystone auth, HIL project names are Keystone project '
                    'IDs, as Ironic\'s owner and lessee are.'),
    cfg.StrOpt('default_project',
               help='HIL project for a node that has no project (neither '
                    'lessee nor owner). Such a node may still use public '
                    'images only. Unset: such nodes cannot be deployed.'),
    cfg.BoolOpt('allow_connect_free_node',
                default=False,
                help='Connect a node that is free in HIL to the node\'s '
                     'project at deploy (and detach it again at undeploy). '
                     'When false, the node must already be in the project.'),
    cfg.FloatOpt('action_poll_interval',
                 default=1.0, min=0.01,
                 help='Seconds between two polls of a pending HIL '
                      'networking action.'),
    cfg.IntOpt('action_timeout',
               default=120, min=1,
               help='Seconds a HIL networking action (including the wait '
                    'for an earlier action pending on the same nic) may '
                    'take before the operation fails.'),
    cfg.IntOpt('cleanup_interval',
               default=60, min=0,
               help='Seconds between two runs of the conductor\'s periodic '
                    'retry of HIL detachments that a failed undeploy, '
                    'rollback or cleaning left (nodes in error, deploy '
                    'failed, clean failed, available or manageable that '
                    'still record HIL attachments); 0 disables it.'),
]


# Our defaults for keystoneauth1's options: HIL's null auth, and a HIL
# that answers within 30 s or is retried.
_KS_DEFAULTS = {'auth_type': 'none', 'timeout': 30, 'connect_retries': 3,
                'connect_retry_delay': 1.0}


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)
    # keystoneauth1's own helpers (checked against keystoneauth1 5.18.1); the
    # client loads them back with load_session_from_conf_options,
    # load_auth_from_conf_options and load_adapter_from_conf_options.
    ks_loading.register_session_conf_options(conf, GROUP)
    ks_loading.register_auth_conf_options(conf, GROUP)
    ks_loading.register_adapter_conf_options(conf, GROUP)
    for name, value in _KS_DEFAULTS.items():
        conf.set_default(name, value, group=GROUP)


def list_opts():
    return (GROUP, opts + auth.sample_opts(_AUTH_PLUGINS, _KS_DEFAULTS))
