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

"""The ``[iscsi]`` group: how node disks are exported."""

from oslo_config import cfg

GROUP = 'iscsi'

opts = [
    cfg.StrOpt('export_backend',
               default='tgt',
               help='Export backend, by its name in the '
                    '"bmi_driver.export_backends" entry point namespace.'),
    cfg.StrOpt('iqn_prefix',
               default='iqn.2026-11.org.massopen.bmi',
               help='Prefix of the target IQNs: <prefix>:<node uuid>. '
                    'Reconcile removes the targets under this prefix that '
                    'no node disk records, so give every deployment '
                    'sharing a target daemon its own prefix.'),
    cfg.HostAddressOpt('portal_address',
                       default='127.0.0.1',
                       help='Address that nodes use to reach the target. '
                            'May differ from the one the conductor uses.'),
    cfg.PortOpt('portal_port',
                default=3260,
                help='iSCSI port nodes connect to.'),
    cfg.BoolOpt('chap',
                default=True,
                help='Give every export its own random CHAP credentials. '
                     'Switch off only in labs. The credentials are kept in '
                     'the metadata of the node\'s clone, so whoever may '
                     'read the clone pool may read them.'),
    cfg.IntOpt('chap_secret_length',
               default=16, min=12, max=64,
               help='Length of the generated CHAP secrets (letters and '
                    'digits). Some initiators (Windows) accept only 12 to '
                    '16 characters.'),
    cfg.StrOpt('initiator_binding',
               default='when-known',
               choices=[('when-known',
                         'Bind the node\'s initiator IQN when it is known, '
                         'otherwise accept any initiator that passes CHAP'),
                        ('required',
                         'Refuse to export a node whose initiator IQN is '
                         'not known')],
               help='Which initiators a node\'s target accepts.'),
    cfg.StrOpt('initiator_network',
               help='Address or network/prefix (e.g. 10.77.0.0/24) from '
                    'which every target accepts initiators when no '
                    'per-project boot network gives one ([bmi] '
                    'boot_networks_file): the shared provisioning network. '
                    'Unset: by initiator name when known, else any address '
                    '(tgt\'s ALL) with CHAP.'),
    cfg.BoolOpt('discovery_auth',
                default=True,
                help='Refuse unauthenticated iSCSI discovery (SendTargets) '
                     'on the target daemon: a discovery CHAP account with a '
                     'random secret that nobody is told is bound to tgtd '
                     'globally. Nodes never discover: iPXE and the iBFT '
                     'log in to their target by name. This applies to '
                     'every target of that tgtd.'),
    # tgt
    cfg.PortOpt('tgtadm_control_port',
                default=0,
                help='tgtd control port (tgtadm -C): selects the local '
                     'tgtd instance, whose management socket is '
                     '<tgtd_socket>.<port>.'),
    cfg.StrOpt('tgtd_socket',
               default='/var/run/tgtd/socket',
               help='Path of tgtd\'s management sockets without the '
                    '".<control port>" suffix (tgt 1.0.85\'s default; '
                    'tgtadm\'s TGT_IPC_SOCKET). The plugin speaks this '
                    'socket itself instead of running tgtadm, which would '
                    'put CHAP secrets on its command line.'),
    cfg.StrOpt('tgtadm_root_helper',
               help='Command that runs the plugin\'s tgtd client as root '
                    'when the plugin does not run as tgtd\'s user (tgtd '
                    'accepts only its own uid and gid on its socket), e.g. '
                    '"sudo" or "sudo ironic-rootwrap '
                    '/etc/ironic/rootwrap.conf": it runs "<python> -I -m '
                    'bmi_driver.storage.export.tgt_ipc", which reads the '
                    'request (with any CHAP secret) on stdin. Unset: speak '
                    'to the socket directly.'),
    cfg.IntOpt('tgtadm_timeout',
               default=30, min=1,
               help='Seconds a request to tgtd may take in all.'),
    cfg.StrOpt('tgt_ceph_user',
               default='tgt',
               help='Cephx user (without "client.") tgtd\'s RBD backing '
                    'store connects as. Needs "profile rbd" on the clone '
                    'pool; its keyring must be where the Ceph configuration '
                    'file below says.'),
    cfg.StrOpt('tgt_ceph_conf',
               help='Ceph configuration file tgtd\'s RBD backing store '
                    'reads. Default: [ceph] conf_file.'),
    cfg.BoolOpt('write_cache',
                default=True,
                help='Announce a write cache on the LUNs (SCSI caching '
                     'mode page). Initiators then send SYNCHRONIZE CACHE, '
                     'which tgt turns into an RBD flush, so data stays '
                     'safe while librbd may cache writes.'),
    cfg.BoolOpt('thin_provisioning',
                default=True,
                help='Announce thin provisioning, so that initiators may '
                     'UNMAP (discard) blocks: the clone\'s objects are then '
                     'freed in Ceph.'),
    cfg.StrOpt('bsoflags',
               choices=['sync', 'direct', 'sync:direct'],
               help='tgt backing store open flags for the LUNs. Unset: '
                    'none.'),
    cfg.DictOpt('lun_params',
                default={},
                help='Further tgt logical unit parameters set on each LUN '
                     '(tgtadm --params), for example '
                     'vendor_id:BMI,product_id:disk.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return (GROUP, opts)
