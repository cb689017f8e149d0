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

"""The one renderer of the lab's ``ironic.conf`` and ``bmi.conf``.

``ironic_conf`` is Ironic all-in-one for the lab (sqlite, noauth, no RPC
bus, the API on 127.0.0.1); ``multi_ironic_conf`` and ``conductor_conf``
the multi-conductor lab's (MariaDB, JSON-RPC, one API and several
conductors); ``bmi_conf`` is the plugin's configuration,
made from ``services.json`` (``tools.lab.state``). Both are lists of
``(section, [(option, value), ...])`` so that a test can read them without
parsing; ``write`` turns them into files.
"""

import os

from tools.lab import state as lab_state

ENABLED_INTERFACES = [
    ('enabled_hardware_types', 'bmi,fake-hardware'),
    ('enabled_boot_interfaces', 'ipxe,fake'),
    ('enabled_deploy_interfaces', 'bmi,fake'),
    ('enabled_storage_interfaces', 'bmi,noop'),
    ('enabled_vendor_interfaces', 'bmi,no-vendor,fake'),
    ('enabled_network_interfaces', 'noop,hil'),
    ('default_network_interface', 'noop'),
    ('enabled_power_interfaces', 'fake,redfish'),
    ('enabled_management_interfaces', 'fake,redfish'),
    ('enabled_inspect_interfaces', 'no-inspect'),
    ('enabled_raid_interfaces', 'no-raid'),
    ('enabled_bios_interfaces', 'no-bios'),
    ('enabled_console_interfaces', 'no-console'),
    ('enabled_rescue_interfaces', 'no-rescue'),
    ('enabled_firmware_interfaces', 'no-firmware'),
]


# README, "Several conductors and gateways": what a cloud that deploys
# or undeploys about a hundred nodes at once sets (multi_ironic_conf).
SCALE_DB_POOL = 50
SCALE_CONCURRENT_CLEAN = 200


def _value(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def render(sections, header=None):
    """INI text of ``sections``; ``header`` becomes comment lines."""
    lines = ['# %s' % h for h in (header or '').splitlines()]
    for name, options in sections:
        if lines:
            lines.append('')
        lines.append('[%s]' % name)
        for key, value in options:
            lines.append('%s = %s' % (key, _value(value)))
    return '\n'.join(lines) + '\n'


def write(path, sections, header=None, mode=0o644):
    """Write ``sections`` to ``path`` (atomically)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, 'w') as f:
        f.write(render(sections, header))
    os.replace(tmp, path)
    return path


def ironic_conf(ironic_dir, port=6385, debug=False,
                http_url='http://10.78.0.1'):
    """Ironic all-in-one with the bmi plugin, state in ``ironic_dir``."""
    d = os.path.abspath(ironic_dir)
    return [
        ('DEFAULT', [('auth_strategy', 'noauth'),
                     ('rpc_transport', 'none'),
                     ('host', 'bmi-aio'),
                     ('debug', bool(debug))] + ENABLED_INTERFACES),
        ('api', [('host_ip', '127.0.0.1'), ('port', int(port)),
                 ('api_workers', 1)]),
        ('database', [('connection',
                       'sqlite:///%s' % os.path.join(d, 'ironic.sqlite'))]),
        ('dhcp', [('dhcp_provider', 'none')]),
        # http_url: nginx on the gateway (tools.lab.labnet), where the
        # VMs fetch boot.ipxe; UEFI avoids ~30 s of Redfish retries
        # (sushy answers 501 to BIOS-mode SecureBoot queries).
        ('deploy', [('http_root', os.path.join(d, 'httpboot')),
                    ('http_url', http_url),
                    ('default_boot_mode', 'uefi'),
                    ('fast_track', False)]),
        ('pxe', [('tftp_root', os.path.join(d, 'tftpboot')),
                 ('images_path', os.path.join(d, 'images')),
                 ('instance_master_path', os.path.join(d, 'master_images'))]),
        # A BMI node has no local disk: cleaning has nothing to do and is
        # fast.
        ('conductor', [('automated_clean', True),
                       ('force_power_state_during_sync', False),
                       ('heartbeat_interval', 5)]),
        ('nova', [('send_power_notifications', False)]),
        ('redfish', [('connection_attempts', 10),
                     ('connection_retry_interval', 1)]),
        ('oslo_concurrency', [('lock_path', os.path.join(d, 'locks'))]),
    ]


def override(sections, changes):
    """``sections`` with ``changes`` ({section: {option: value}}) applied.

    An option already there keeps its place with the new value; new
    options and sections go at the end.
    """
    out = []
    changes = {k: dict(v) for k, v in changes.items()}
    for name, options in sections:
        new = changes.pop(name, {})
        opts = [(k, new.pop(k) if k in new else v) for k, v in options]
        out.append((name, opts + list(new.items())))
    out += [(name, list(opts.items())) for name, opts in changes.items()]
    return out


def multi_ironic_conf(ironic_dir, database_url, port=6385, debug=False,
                      heartbeat_timeout=10):
    """Ironic split into an API and several conductors (issue 12).

    The settings every process shares (the conductors' own ``host`` and
    ``[json_rpc] host_ip`` are in ``conductor_conf``): MariaDB instead of
    sqlite, JSON-RPC between the API and the conductors instead of one
    process (Ironic 39.0.0: ``rpc_transport = json-rpc``, each conductor
    serves ``[json_rpc] port``; the API finds a node's conductor through
    the hash ring of the conductors registered in the database). The
    conductor timings are short so that a dead conductor's nodes move in
    seconds: it is dead after ``heartbeat_timeout`` s without a
    heartbeat, the ring is rebuilt at most ``hash_ring_reset_interval`` s
    later, and the new owner takes ACTIVE nodes over at its next
    ``sync_local_state_interval``.

    The scale settings are the README's for a burst of deploys (the
    bench's 100 nodes at once), the same for bmi's and the fake deploy's
    nodes: ``[database] max_pool_size`` (oslo.db's default 5) so that
    the conductor's deploy threads do not each open and close a MariaDB
    connection (PyMySQL 1.2.4 builds an SSL context for every one, even
    on a unix socket), and ``[conductor] max_concurrent_clean`` above the
    nodes undeployed at once (Ironic 39.0.0's default 50: the API
    answers 503 beyond it).

    ``database_url`` holds a password: write the file 0600.
    """
    return override(ironic_conf(ironic_dir, port, debug), {
        'DEFAULT': {'rpc_transport': 'json-rpc',
                    'hash_ring_reset_interval': 3},
        'database': {'connection': database_url,
                     'max_pool_size': SCALE_DB_POOL},
        'json_rpc': {'auth_strategy': 'noauth', 'host_ip': '127.0.0.1'},
        'conductor': {'heartbeat_interval': 2,
                      'heartbeat_timeout': int(heartbeat_timeout),
                      'sync_local_state_interval': 5,
                      'max_concurrent_clean': SCALE_CONCURRENT_CLEAN},
    })


def conductor_conf(host, json_rpc_port=8089):
    """One conductor's own settings: its name and its JSON-RPC server.

    ``host`` is also the address it listens on: Ironic 39.0.0's
    JSON-RPC client dials the conductor's name, ``<host>`` on its own
    ``[json_rpc] port`` (8089), ``<host>:<port>`` for a conductor on
    another port, whose node reservations Ironic 39.0.0 then never clears
    after a crash (``tools.lab.multi.conductor_host``).
    """
    return [('DEFAULT', [('host', host)]),
            ('json_rpc', [('host_ip', host), ('port', int(json_rpc_port))])]


def bmi_conf(env, bmi_state_path, hil=None, boot_networks_file=None,
             boot_file_group=None, iscsi=None, coordination_url=None,
             extra=None):
    """The plugin's configuration for the lab's services.

    :param env: services.json (``tools.lab.state.load_services``).
    :param bmi_state_path: the plugin's ``[bmi] state_path``.
    :param hil: ``{'url', 'username', 'password'}`` of the plugin's
        (non-admin) HIL user; without a username, HIL's null auth. With a
        password the file must be written 0600 (``write(..., mode)``).
    :param boot_networks_file: the per-project boot networks (the
        README's operator path); None: shared mode.
    :param boot_file_group: the web server's group (published boot files
        are 0640 of it).
    :param iscsi: this conductor's own gateway, ``[iscsi]`` options
        (``portal_address``, ``portal_port``, ``tgtadm_control_port``)
        over services.json's one tgtd.
    :param coordination_url: the tooz backend (default: the file backend
        in the lab's ``locks/``).
    :param extra: ``{section: [(option, value), ...]}`` appended to those
        sections.
    :raises: KeyError naming a key services.json lacks.
    """
    iscsi = dict(lab_state.iscsi_options(env), **(iscsi or {}))
    iscsi_opts = [('portal_address', iscsi['portal_address']),
                  ('portal_port', iscsi['portal_port']),
                  ('tgt_ceph_user', iscsi['tgt_ceph_user'])]
    if 'tgtadm_control_port' in iscsi:
        iscsi_opts.append(('tgtadm_control_port',
                           iscsi['tgtadm_control_port']))
    bmi = [('state_path', os.path.abspath(bmi_state_path))]
    if boot_networks_file:
        bmi.append(('boot_networks_file',
                    os.path.abspath(boot_networks_file)))
    if boot_file_group:
        bmi.append(('boot_file_group', boot_file_group))
    hil_opts = hil_options(hil or {'url': 'http://127.0.0.1:7000'})
    # A node of no project (neither owner nor lessee) boots on the
    # operator's boot network; its images stay public ones.
    hil_opts.append(('default_project', 'admin'))
    extra = extra or {}
    return [
        ('bmi', bmi + list(extra.get('bmi', ()))),
        ('ceph', list(lab_state.ceph_options(env).items())
         + list(extra.get('ceph', ()))),
        ('iscsi', iscsi_opts),
        ('coordination', [('backend_url', coordination_url or (
            'file://%s' % os.path.join(env['state_dir'], 'locks')))]),
        ('hil', hil_opts + list(extra.get('hil', ()))),
    ] + glance_section(env) + neutron_section(env)


def neutron_section(env):
    """``[neutron]`` when the lab's Neutron runs (services.json)."""
    opts = lab_state.neutron_options(env)
    return [('neutron', sorted(opts.items()))] if opts else []


def glance_section(env):
    """``[glance]`` when the lab's Glance is in services.json."""
    opts = lab_state.glance_options(env)
    return [('glance', sorted(opts.items()))] if opts else []


def hil_options(hil):
    """The ``[hil]`` options of the plugin.

    The URL and keystoneauth1's http_basic (HIL's database auth) for
    ``hil['username']``, else auth_type none.
    """
    if not hil.get('username'):
        return [('url', hil['url']), ('auth_type', 'none')]
    return [('url', hil['url']), ('auth_type', 'http_basic'),
            ('username', hil['username']), ('password', hil['password'])]


def ceph_only_conf(env):
    """A bmi.conf with ``[ceph]`` (and ``[glance]``): bmi-manage's."""
    return ([('ceph', list(lab_state.ceph_options(env).items()))]
            + glance_section(env))
