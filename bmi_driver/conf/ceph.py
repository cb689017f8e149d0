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

"""The ``[ceph]`` group: where the golden images and node clones live."""

from oslo_config import cfg

GROUP = 'ceph'

opts = [
    cfg.StrOpt('conf_file',
               default='/etc/ceph/ceph.conf',
               help='Path to the Ceph configuration file of the cluster.'),
    cfg.StrOpt('user',
               default='bmi',
               help='Cephx user (without the "client." prefix) the plugin '
                    'connects as. Needs "profile rbd" on the image, clone '
                    'and Glance pools.'),
    cfg.StrOpt('keyring',
               help='Keyring file of that user. Default: what the Ceph '
                    'configuration file says.'),
    cfg.StrOpt('image_pool',
               default='bmi-images',
               help='Pool holding the golden images.'),
    cfg.StrOpt('clone_pool',
               default='bmi-images',
               help='Pool holding the node clones and config drives. May be '
                    'the image pool.'),
    cfg.StrOpt('glance_pool',
               default='images',
               help='Pool where Glance\'s RBD store keeps images '
                    '(<pool>/<uuid>@snap); nodes clone them directly.'),
    cfg.IntOpt('connect_timeout',
               default=10, min=1,
               help='Seconds to wait for the cluster when connecting.'),
    cfg.IntOpt('op_timeout',
               default=30, min=0,
               help='Seconds a monitor or OSD operation may take before it '
                    'fails (rados_mon_op_timeout/rados_osd_op_timeout); 0 '
                    'waits forever.'),
    cfg.IntOpt('idle_connections',
               default=16, min=0,
               help='Connected clients each conductor process keeps for '
                    'the next operation. A burst of deploys runs as many '
                    'Ceph operations at once as it has nodes in flight; '
                    'beyond this number each extra client connects (a '
                    'monitor round trip and a cephx handshake) and is shut '
                    'down after its one operation. Each idle client holds '
                    'a few threads and a few MiB.'),
    cfg.IntOpt('connect_retries',
               default=3, min=0,
               help='Times a transient failure (timeout, connection reset) '
                    'is retried before the error is raised.'),
    cfg.FloatOpt('connect_retry_interval',
                 default=1.0, min=0,
                 help='Seconds before the first retry; doubled each time.'),
    cfg.FloatOpt('pool_full_ratio',
                 default=0.9, min=0.0, max=1.0,
                 help='A deploy is refused when the clone pool has used '
                      'this fraction of its quota (max_bytes or '
                      'max_objects, "ceph osd pool set-quota"); a pool '
                      'Ceph flags full or nearfull is refused anyway.'),
    cfg.BoolOpt('blocklist_stale_watchers',
                default=True,
                help='When a node disk being removed is still watched '
                     '(a gateway\'s tgtd that died keeps its RBD watch for '
                     'about 30 s), add the watching client addresses to '
                     'Ceph\'s OSD blocklist ("osd blocklist add") and remove '
                     'the disk at once. Needs mon "profile rbd".'),
    cfg.IntOpt('blocklist_expiry',
               default=600, min=60,
               help='Seconds a blocklisted stale watcher stays '
                    'blocklisted.'),
    cfg.IntOpt('trash_delay',
               default=0, min=0,
               help='A node disk that cannot be removed now (busy, Ceph '
                    'errors) is moved to the pool\'s RBD trash with this '
                    'deferment in seconds; the sweep removes it after.'),
    cfg.IntOpt('sweep_interval',
               default=60, min=0,
               help='Seconds between two runs of the conductor\'s periodic '
                    'sweep of node disks left in the clone pool\'s RBD '
                    'trash and of golden images left unsealed (see '
                    'unsealed_grace); 0 disables it.'),
    cfg.IntOpt('unsealed_grace',
               default=3600, min=60,
               help='An import, copy or node snapshot whose process died '
                    'midway (a conductor or bmi-manage killed) leaves its '
                    'new golden image without its "golden" snapshot: it '
                    'holds its name, and a node snapshot\'s keeps the '
                    'node\'s disk from being removed. The periodic sweep '
                    '(sweep_interval) removes such an image once it is '
                    'this many seconds old and no client has it open; a '
                    'live operation keeps its image open, so a long one is '
                    'never taken for dead.'),
    cfg.IntOpt('transfer_chunk_mib',
               default=8, min=1, max=256,
               help='Size in MiB of the chunks streamed by import, export '
                    'and copy.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return (GROUP, opts)
