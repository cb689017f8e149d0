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

"""The per-project boot networks, as the operator lists them.

``[bmi] boot_networks_file`` is a JSON object, one entry per project::

    {"<project>": {"hil_network": "boot-p",
                   "portal": "10.78.1.1:3260",
                   "cidr": "10.78.1.0/24",
                   "http_root": "/srv/bmi-boot/p"}}

``hil_network``: the HIL network of the project's boot nics (native VLAN);
``portal``: the gateway's address on it (and the iSCSI port, default
3260), what the node's VolumeTarget announces; ``cidr``: the network
itself, the address ACL of every target of the project; ``http_root``: the
directory the project's boot files are published into, which the web
server serves on the gateway address only.

The file is read again whenever its modification time or size changes
(a cheap ``stat`` per lookup), and refused as a whole, with every problem
named, when an entry is malformed or two entries would let one project's
nodes reach the other's (same HIL network, overlapping networks, nested
HTTP roots).  Nothing here imports Ironic.

Several conductors, each with a gateway of its own (README, "Several
conductors and gateways"): an entry may also say ``"portals":
{"<conductor>": "<address>[:<port>]", ...}``, each conductor's gateway
address on the network, by the conductor's name in Ironic
(``conductor_host()``: ``[DEFAULT] host``, plus ``:<port>`` on a JSON-RPC
port other than 8089). ``portal`` stays the one of any host not listed.
``for_project`` answers with the portal of the conductor it runs in, so a
node exported or taken over by a conductor announces that conductor's
gateway.
"""

import dataclasses
import ipaddress
import json
import os
import socket
import threading

from oslo_config import cfg
from oslo_log import log

from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.network import hil_client

LOG = log.getLogger(__name__)

DEFAULT_ISCSI_PORT = 3260
_KEYS = frozenset(['hil_network', 'portal', 'cidr', 'http_root'])
_OPTIONAL_KEYS = frozenset(['portals'])
# Ironic 39.0.0's [json_rpc] port default: a conductor on another port is
# registered as "<host>:<port>".
_JSON_RPC_DEFAULT_PORT = 8089


@dataclasses.dataclass(frozen=True)
class BootNetwork:
    """One project's boot network."""

    project: str
    hil_network: str
    portal_address: str
    portal_port: int
    cidr: str
    http_root: str
    #: ((conductor host, address, port), ...): the per-conductor gateways
    #: ("portals"); empty when every conductor announces ``portal``.
    host_portals: tuple = ()

    @property
    def portal(self):
        """``address:port`` (``[v6]:port``), as a VolumeTarget says it."""
        return _format_portal(self.portal_address, self.portal_port)

    def portal_for(self, host):
        """The portal conductor ``host``'s gateway has on this network."""
        for name, address, port in self.host_portals:
            if name == host:
                return _format_portal(address, port)
        return self.portal

    @property
    def all_portals(self):
        """Every portal of this network, of every conductor's gateway."""
        return frozenset([self.portal] + [
            _format_portal(a, p) for _h, a, p in self.host_portals])

    def for_host(self, host):
        """This network as conductor ``host`` announces it."""
        for name, address, port in self.host_portals:
            if name == host:
                return dataclasses.replace(self, portal_address=address,
                                           portal_port=port)
        return self

    @property
    def acl_address(self):
        """The network as tgt's ``initiator-address`` ACL must say it.

        tgt 1.0.85 (usr/iscsi/target.c, measured) matches ``a.b.c.d/n``
        only when the host bits of ``a.b.c.d`` are zero and n < 32: a
        ``/32`` (or ``/128``) entry never matches, so a single address is
        given bare.
        """
        network = ipaddress.ip_network(self.cidr)
        if network.prefixlen == network.max_prefixlen:
            return str(network.network_address)
        return str(network)


def _format_portal(address, port):
    if ':' in address:
        address = '[%s]' % address
    return '%s:%d' % (address, port)


def conductor_host():
    """The name of the conductor this code runs in, as Ironic knows it.

    The name in its hash ring, ``baremetal conductor list`` and a node's
    ``conductor`` field: ``[DEFAULT] host`` (default: the machine's
    hostname), with ``:<[json_rpc] port>`` appended when ``rpc_transport``
    is ``json-rpc`` and the port is not the default 8089, as Ironic
    39.0.0's ``BaseConductorManager.prepare_host`` registers it. Read from
    the global CONF the plugin shares with Ironic; a process without
    Ironic's options (bmi-manage, unit tests) gets the hostname.
    """
    try:
        host = CONF.host or socket.gethostname()
    except cfg.NoSuchOptError:
        return socket.gethostname()
    try:
        port = CONF.json_rpc.port
        json_rpc = CONF.rpc_transport == 'json-rpc'
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
        return host
    if json_rpc and port != _JSON_RPC_DEFAULT_PORT:
        if ':' in host:
            host = '[%s]' % host
        host = '%s:%d' % (host, port)
    return host


def warn_if_reservations_outlive_a_crash():
    """Log when this conductor's node locks would outlive its crash.

    Ironic 39.0.0 names a conductor ``<host>:<port>`` on a JSON-RPC port
    other than 8089 (``conductor_host()``), but its ``TaskManager``
    reserves nodes as ``[DEFAULT] host`` alone. At restart the conductor
    clears the reservations of ``<host>:<port>``, and
    ``_check_orphan_nodes`` releases those of offline conductors by that
    name too: a node this conductor held when it died (kill -9, OOM,
    power loss) stays locked by ``<host>`` for ever (HTTP 409, its
    deploy or undeploy never finishes, its disk and export are never
    cleaned up). The plugin cannot clear them itself: a reservation by
    ``<host>`` may as well be this live conductor's own, and taking it
    would break Ironic's locking. The fix is the configuration: keep
    ``[json_rpc] port`` 8089 and give each conductor its own address
    (``[json_rpc] host_ip``).

    :returns: True when it warned.
    """
    name = conductor_host()
    try:
        host = CONF.host or socket.gethostname()
    except cfg.NoSuchOptError:
        return False
    if name in (host, '[%s]' % host):
        return False
    LOG.warning('This conductor is known to Ironic as %(name)s (JSON-RPC '
                'port %(port)s) but reserves nodes as %(host)s: Ironic '
                '39.0.0 then never clears the nodes it held when it '
                'crashes (they stay locked by %(host)s). Keep [json_rpc] '
                'port at %(default)d and give each conductor its own '
                '[json_rpc] host_ip (README, "Several conductors and '
                'gateways").', {'name': name, 'host': host,
                                'port': CONF.json_rpc.port,
                                'default': _JSON_RPC_DEFAULT_PORT})
    return True


def warn_if_boot_config_readable():
    """Log when Ironic writes the nodes' boot configs readable by all.

    Ironic's ``ipxe`` boot interface writes ``[deploy]
    http_root/<uuid>/config``, which holds the node's CHAP user and
    secret, with ``[pxe] file_permission`` (Ironic 39: default 0o644): any
    local user of the conductor's host can read every node's secret and,
    from an address the target's ACL admits (the host has one on every
    boot network), log in to its disk.  The copy bmi publishes per project
    has ``[bmi] boot_file_mode``; the original is Ironic's.

    :returns: True when it warned.
    """
    warned = False
    own = int(CONF.bmi.boot_file_mode, 8)
    if enabled() and own & 0o007:
        LOG.warning('[bmi] boot_file_mode is %(mode)s: the boot files '
                    'published into each project\'s http_root hold the '
                    'nodes\' CHAP secrets, readable so by every local '
                    'user. Set it to 0640 with [bmi] boot_file_group the '
                    'web server\'s.', {'mode': CONF.bmi.boot_file_mode})
        warned = True
    try:
        mode = CONF.pxe.file_permission
    except cfg.NoSuchOptError:
        return warned
    if not mode & 0o007:
        return warned
    LOG.warning('[pxe] file_permission is %(mode)s: the boot config Ironic '
                'writes for each node into [deploy] http_root holds its '
                'CHAP secret, readable so by every local user. Set it to '
                '0o640 (the web server in the conductor\'s group; shared '
                'mode) or 0o600 (per-project mode, where the web server '
                'reads bmi\'s own copies) (doc/network.md, "Threat '
                'model").', {'mode': oct(mode)})
    return True


def enabled():
    """Whether per-project boot networks are configured."""
    return bool(CONF.bmi.boot_networks_file)


class _Cache:
    def __init__(self):
        self.lock = threading.Lock()
        self.key = None
        self.networks = None


_CACHE = _Cache()


def _invalid(path, problems):
    return exception.BootNetworkConfigError(
        path=path, reason='; '.join(problems))


def _parse_portal(value):
    """``address[:port]`` → (address, port). :raises: ValueError"""
    if not isinstance(value, str) or not value:
        raise ValueError('must be "<address>[:<port>]"')
    port = DEFAULT_ISCSI_PORT
    if value.startswith('['):
        address, sep, rest = value[1:].partition(']')
        if not sep or (rest and not rest.startswith(':')):
            raise ValueError('must be "[<IPv6 address>]:<port>"')
        if rest:
            port = rest[1:]
    elif value.count(':') == 1:
        address, port = value.split(':')
    else:
        address = value
    address = str(ipaddress.ip_address(address))
    if not str(port).isdigit() or not 0 < int(port) < 65536:
        raise ValueError('port %r is not a TCP port' % (port,))
    return address, int(port)


def _entry(project, raw, problems):
    """One checked BootNetwork, or None (its problems appended)."""
    where = 'project %r' % project
    try:
        hil_client.check_name('project', project)
    except exception.HILInvalidName as e:
        problems.append(str(e))
        return None
    if not isinstance(raw, dict):
        problems.append('%s: the entry must be an object' % where)
        return None
    missing = sorted(_KEYS - set(raw))
    unknown = sorted(set(raw) - _KEYS - _OPTIONAL_KEYS)
    if missing or unknown:
        problems.append('%s: %s' % (where, ', '.join(
            ['missing %s' % k for k in missing]
            + ['unknown key %s' % k for k in unknown])))
        return None
    before = len(problems)
    network = raw['hil_network']
    try:
        hil_client.check_name('network', network)
    except exception.HILInvalidName as e:
        problems.append('%s: %s' % (where, e))
    if network == CONF.hil.provisioning_network:
        problems.append('%s: hil_network %s is [hil] provisioning_network, '
                        'which every project shares' % (where, network))
    try:
        cidr = ipaddress.ip_network(raw['cidr'], strict=True)
    except (TypeError, ValueError) as e:
        # strict: tgt silently never matches an ACL with host bits set.
        problems.append('%s: cidr %r is not a network address/prefix '
                        '(%s)' % (where, raw['cidr'], e))
        cidr = None
    try:
        address, port = _parse_portal(raw['portal'])
    except ValueError as e:
        problems.append('%s: portal %r: %s' % (where, raw['portal'], e))
        address = port = None
    if (cidr is not None and address is not None
            and ipaddress.ip_address(address) not in cidr):
        problems.append('%s: portal address %s is not in cidr %s (the '
                        'gateway needs an address on the boot network)'
                        % (where, address, cidr))
    host_portals = _host_portals(where, raw.get('portals', {}), cidr,
                                 problems)
    root = raw['http_root']
    if (not isinstance(root, str) or not os.path.isabs(root)
            or '..' in root.split('/')):
        problems.append('%s: http_root %r must be an absolute path without '
                        '".."' % (where, root))
    if len(problems) > before:
        return None
    return BootNetwork(project=project, hil_network=network,
                       portal_address=address, portal_port=port,
                       cidr=str(cidr), http_root=os.path.normpath(root),
                       host_portals=host_portals)


def _host_portals(where, raw, cidr, problems):
    """The checked ``portals`` of an entry: ((host, address, port), ...)."""
    if not isinstance(raw, dict):
        problems.append('%s: portals must be an object {"<conductor '
                        'host>": "<address>[:<port>]"}' % where)
        return ()
    found = []
    seen = {}
    for host, value in sorted(raw.items()):
        if not host:
            problems.append('%s: portals: empty conductor host' % where)
            continue
        try:
            address, port = _parse_portal(value)
        except ValueError as e:
            problems.append('%s: portals %r: %r: %s' % (where, host, value,
                                                        e))
            continue
        if cidr is not None and ipaddress.ip_address(address) not in cidr:
            problems.append('%s: portals %r: address %s is not in cidr %s'
                            % (where, host, address, cidr))
            continue
        if (address, port) in seen:
            # Two gateways on one portal: a take-over would not move the
            # node anywhere.
            problems.append('%s: portals %r and %r share %s'
                            % (where, seen[(address, port)], host,
                               _format_portal(address, port)))
            continue
        seen[(address, port)] = host
        found.append((host, address, port))
    return tuple(found)


def _inside(path, root):
    return path == root or path.startswith(root.rstrip('/') + '/')


def _check_apart(networks, problems):
    """Entries that would let one project's nodes reach another's."""
    items = sorted(networks.values(), key=lambda n: n.project)
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            pair = 'projects %r and %r' % (a.project, b.project)
            if a.hil_network == b.hil_network:
                problems.append('%s share hil_network %s'
                                % (pair, a.hil_network))
            if ipaddress.ip_network(a.cidr).overlaps(
                    ipaddress.ip_network(b.cidr)):
                problems.append('%s have overlapping cidrs %s and %s'
                                % (pair, a.cidr, b.cidr))
            if (_inside(a.http_root, b.http_root)
                    or _inside(b.http_root, a.http_root)):
                problems.append('%s have nested http_roots %s and %s'
                                % (pair, a.http_root, b.http_root))


def parse(path, text):
    """The boot networks of a file's text: {project: BootNetwork}.

    :raises: BootNetworkConfigError naming every problem.
    """
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise _invalid(path, ['not JSON: %s' % e])
    if not isinstance(raw, dict):
        raise _invalid(path, ['must be a JSON object {"<project>": {...}}'])
    problems = []
    networks = {}
    for project, entry in sorted(raw.items()):
        network = _entry(project, entry, problems)
        if network is not None:
            networks[project] = network
    if not problems:
        _check_apart(networks, problems)
    if problems:
        raise _invalid(path, problems)
    return networks


def load():
    """Every project's boot network, or None in shared mode.

    Read again when the file's modification time, size or inode changed.

    :raises: BootNetworkConfigError when the file cannot be read or is
        invalid (also after a change: the last good version is not used,
        a broken registry must not keep a project on a stale network).
    """
    path = CONF.bmi.boot_networks_file
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError as e:
        raise _invalid(path, ['cannot be read: %s' % (e.strerror or e)])
    key = (path, st.st_mtime_ns, st.st_size, st.st_ino)
    with _CACHE.lock:
        if _CACHE.key == key:
            return _CACHE.networks
        try:
            with open(path, encoding='utf-8') as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise _invalid(path, ['cannot be read: %s' % e])
        networks = parse(path, text)
        _CACHE.key, _CACHE.networks = key, networks
        LOG.info('Boot networks of %(n)d project(s) read from %(path)s',
                 {'n': len(networks), 'path': path})
        return networks


def for_project(project, host=None):
    """The boot network of ``project``, or None in shared mode.

    Its ``portal`` is the one of conductor ``host``'s gateway (default:
    this conductor's, ``conductor_host()``).

    :raises: BootNetworkMissing when per-project mode is on and the
        project (None: a node of no project) has no entry.
    :raises: BootNetworkConfigError
    """
    networks = load()
    if networks is None:
        return None
    network = networks.get(project) if project else None
    if network is None:
        raise exception.BootNetworkMissing(
            project=project or '(none)', path=CONF.bmi.boot_networks_file)
    return network.for_host(host or conductor_host())


def reset_cache():
    """Forget the file read last (tests)."""
    with _CACHE.lock:
        _CACHE.key = _CACHE.networks = None


def warn_if_shared():
    """Log, once per call, that boot traffic is not isolated per tenant."""
    if not enabled():
        LOG.warning('[bmi] boot_networks_file is not set: every tenant\'s '
                    'nodes boot on the one provisioning network, where '
                    'each node can reach the boot files and the iSCSI '
                    'portal of every other. Tenant isolation of boot '
                    'traffic is OFF (doc/network.md, "Per-project boot '
                    'networks").')
