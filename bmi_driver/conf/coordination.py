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

"""The ``[coordination]`` group: tooz, for locks shared by processes."""

from oslo_config import cfg

GROUP = 'coordination'

opts = [
    cfg.StrOpt('backend_url',
               default='file://$bmi.state_path/locks',
               secret=True,
               help='tooz backend URL for the plugin\'s locks. The default '
                    'file backend serves one host; use a shared backend '
                    '(etcd3+http://, redis://) as soon as several '
                    'conductors run, even with a gateway each: the locks '
                    'guard what they share (the export records in Ceph, '
                    'the sweeps of deleted nodes and their HIL networks, '
                    'golden image names, Glance conversions). May embed '
                    'credentials, so it is never logged.'),
    cfg.IntOpt('lock_timeout',
               default=60, min=1,
               help='Seconds to wait for a lock before failing.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return (GROUP, opts)
