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
    cfg.BoolOpt('trust_instance_project_id',
                default=False,
                help='Whether instance_info/project_id (written by Nova) '
                     'names the project deploying a node. The node\'s '
                     'project is its lessee, else its owner (fields only '
                     'admins set); with this option also Nova\'s '
                     'instance_info/project_id, between the two. Set it only '
                     'where nobody but Nova writes instance_info: a node\'s '
                     'owner or lessee can write any project there. The one '
                     'project decides image visibility and HIL alike; a node '
                     'without one may use public images only.'),
    # Each GiB of root_gb is a GiB a tenant may write into the shared Ceph
    # cluster (the clone grows on demand): an operator bound, checked at
    # validate, before anything is cloned.
    cfg.IntOpt('max_root_gb',
               default=1024, min=1,
               help='Largest instance_info/root_gb (GiB) a node may ask '
                    'for; its clone grows to that size in Ceph. Larger '
                    'values are refused when the deploy is validated.'),
    # Issue 14: Nova's ironic driver writes the flavor's ephemeral_gb and
    # swap_mb into instance_info; they are disks in the shared Ceph
    # cluster, bounded like root_gb.
    cfg.BoolOpt('scratch_disks',
                default=True,
                help='Whether instance_info/ephemeral_gb and swap_mb '
                     '(written by Nova from the flavor) become RBD images '
                     'of the node exported as LUN 3 (ephemeral, formatted '
                     'as instance_info/ephemeral_format, else [pxe] '
                     'default_ephemeral_format, label ephemeral0) and LUN 4 '
                     '(swap, label swap1) of its target. Off: a deploy '
                     'asking for either (a value above 0) is refused when '
                     'it is validated, so that no flavor gets a disk its '
                     'metadata advertises and the node lacks.'),
    cfg.IntOpt('max_ephemeral_gb',
               default=1024, min=1,
               help='Largest instance_info/ephemeral_gb (GiB) a node may '
                    'ask for. Larger values are refused when the deploy '
                    'is validated.'),
    cfg.IntOpt('max_swap_mb',
               default=64 * 1024, min=1,
               help='Largest instance_info/swap_mb (MiB) a node may ask '
                    'for. Larger values are refused when the deploy is '
                    'validated.'),
    # Config drives given as a URL (issue 11): the conductor fetches them,
    # and the node then reads the body as its LUN 2. Without a limit a
    # tenant makes the conductor read an internal service for it.
    cfg.ListOpt('configdrive_url_hosts',
                default=[],
                help='Hosts (name or address, optionally :port) the '
                     'conductor may fetch a config drive from when '
                     'instance_info/configdrive is a URL (for example the '
                     'object store of [deploy] configdrive_use_object_store '
                     'or Nova\'s). Empty: config drives by URL are '
                     'refused. Compared with the URL\'s host as written, '
                     'case-insensitively; an entry without a port allows '
                     'the scheme\'s default port only.'),
    cfg.BoolOpt('configdrive_url_allow_http',
                default=False,
                help='Allow plain http:// config-drive URLs (to the listed '
                     'hosts). Default: https only.'),
    cfg.IntOpt('configdrive_max_size',
               default=64 * 1024 * 1024, min=1024,
               help='Largest config drive in bytes, both as fetched from a '
                    'URL and once decoded and decompressed. The default '
                    'is Ironic 39\'s own limit: [api] '
                    'max_json_body_size_provision (64 MiB) for the request '
                    'that carries it, and the 64 MiB partition its agent '
                    'writes it to.'),
    cfg.IntOpt('configdrive_url_timeout',
               default=60, min=1,
               help='Seconds a config-drive download may take in total '
                    '(connecting, waiting and reading together): a slow '
                    'endless body is cut off at this time.'),
    # Per-project boot networks (issue 11): the boot and iSCSI traffic of
    # a project's nodes on a HIL network of that project's own.
    cfg.StrOpt('boot_networks_file',
               help='JSON file of the per-project boot networks: '
                    '{"<project>": {"hil_network": <HIL network>, '
                    '"portal": "<gateway address>[:<port>]", "cidr": '
                    '"<network>/<prefix>", "http_root": <directory>}}, '
                    'optionally "portals": {"<conductor host>": "<its '
                    'gateway address>[:<port>]"} when each conductor has '
                    'a gateway of its own (a conductor announces its own '
                    'portal, "portal" when its [DEFAULT] host is not '
                    'listed). '
                    'Set ("per-project mode"): '
                    'the boot nics of a node of project P join P\'s '
                    'hil_network instead of [hil] provisioning_network, its '
                    'target is announced on P\'s portal and accepts only '
                    'initiators from P\'s cidr, and its iPXE files are '
                    'published into P\'s http_root (served only on P\'s '
                    'gateway address); a node whose project has no entry is '
                    'refused. Re-read when it changes. Unset ("shared mode"): '
                    'every tenant boots on the one provisioning network, '
                    'which isolates no tenant\'s boot files or target from '
                    'another (doc/network.md).'),
    cfg.StrOpt('boot_file_mode',
               default='0640', regex='^0?[0-7]{3}$',
               help='Octal mode of the boot files published into a '
                    'project\'s http_root (they hold the node\'s CHAP '
                    'secret): readable by the web server through '
                    'boot_file_group, by nobody else.'),
    cfg.StrOpt('boot_file_group',
               help='Group of the published boot files (the web server\'s, '
                    'e.g. www-data). Unset: the conductor\'s own group.'),
    # Issue 12: exports heal themselves, and nodes deleted from Ironic leave
    # nothing behind.
    cfg.IntOpt('reconcile_interval',
               default=30, min=0,
               help='Seconds between two runs of the conductor\'s periodic '
                    'reconcile (also run once when the conductor starts): '
                    'every ACTIVE bmi node that Ironic\'s hash ring maps to '
                    'this conductor gets its target, LUNs and CHAP account '
                    'back on this conductor\'s tgtd as Ceph records them; '
                    'targets under [iscsi] iqn_prefix there that belong to '
                    'no such node are removed; and the disks, exports and '
                    'boot files of nodes Ironic no longer has are removed '
                    '(after orphan_grace). Every repair is logged and '
                    'recorded in the node\'s history. 0 disables it.'),
    cfg.IntOpt('orphan_grace',
               default=300, min=0,
               help='Seconds a node clone must have been seen without its '
                    'node in Ironic\'s database (deleted) before the '
                    'periodic reconcile removes it with its export and boot '
                    'files.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return (GROUP, opts)
