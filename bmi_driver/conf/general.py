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

"""The ``[bmi]`` group: how the plugin names and places what it creates."""

from oslo_config import cfg

GROUP = 'bmi'

opts = [
    cfg.StrOpt('state_path',
               default='/var/lib/bmi',
               help='Directory for the plugin\'s local state (lock files of '
                    'the default coordination backend, temporary files).'),
    cfg.StrOpt('default_project',
               default='admin',
               help='Project that owns images imported without --project.'),
    # Ironic looks for BMC TLS settings in the group named after a node's
    # hardware type (ironic.drivers.utils.get_verify_ca), which for bmi
    # nodes is this one.
    cfg.StrOpt('verify_ca',
               help='For nodes of hardware type bmi: the CA bundle to verify '
                    'their BMCs (redfish) with when driver_info '
                    'redfish_verify_ca is missing or True, as [redfish] '
                    'verify_ca does for the redfish hardware type.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return (GROUP, opts)
