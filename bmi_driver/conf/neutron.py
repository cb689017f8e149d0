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

from oslo_config import cfg

from bmi_driver.conf import auth

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
                    'network interface bound to reach status ACTIVE (the '
                    'ML2 driver bmi_hil sets it at once). A port not '
                    'ACTIVE by then fails like a binding failure: the '
                    'deploy or attach fails when Ironic\'s [neutron] '
                    'fail_on_port_binding_failure is set. 0: do not wait '
                    '(only binding_failed in the update\'s answer is '
                    'then an error).'),
]


def register_opts(conf):
    auth.register_shared_group(conf, GROUP, SERVICE_TYPE, opts)


def list_opts():
    return (GROUP, opts + auth.sample_opts())
