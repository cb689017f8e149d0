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

"""What Ironic's node says, read for the three interfaces.

Nova's ironic driver (and a standalone operator) describe the instance in
``instance_info``: ``image_source`` (a UUID: a golden image of the library
or a Glance image stored in Ceph), ``root_gb``, ``project_id``, the config
drive that the conductor stored there and the HIL tenant networks;
``driver_info`` names the node in HIL.  These helpers turn that into the
arguments of the library, rejecting bad input before anything is created.

Nothing here imports Ironic: ``node`` is anything with Ironic's node
attributes (``uuid``, ``name``, ``owner``, ``lessee``, ``instance_info``,
``driver_info``).  Errors are bmi_driver's (:class:`NodeFactMissing`,
:class:`NodeFactInvalid`, :class:`ConfigDriveError`); the interfaces turn
them into Ironic's with :func:`bmi_driver.common.ironic_errors.as_ironic`,
messages unchanged.
"""

import base64
import binascii
import json
import re
import time
import urllib.parse
import zlib

from oslo_log import log
from oslo_utils import strutils
from oslo_utils import uuidutils
import requests
from urllib3 import exceptions as urllib3_exc

from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.network import boot_networks
from bmi_driver.network import hil_client
from bmi_driver.storage.ceph import scratch

LOG = log.getLogger(__name__)

GiB = 1024 ** 3
MiB = 1024 ** 2

# Config drives by URL: the longest single socket wait (seconds) and the
# largest single read (bytes).
_READ_WAIT = 5
_CHUNK = 64 * 1024

_CHANNEL_RE = re.compile(r'^vlan/(native|[0-9]{1,4})$')
# A tenant network's nic may be given by MAC address instead of HIL label.
_MAC_RE = re.compile(r'^([0-9a-f]{2}:){5}[0-9a-f]{2}$')


# --- the image ------------------------------------------------------------

def get_image_source(node):
    """Return the node's ``instance_info/image_source``, a UUID.

    :raises: NodeFactMissing when it is not set.
    :raises: NodeFactInvalid when it is not a UUID.
    """
    image_source = node.instance_info.get('image_source')
    if not image_source:
        raise exception.NodeFactMissing(
            'Node %s has no instance_info/image_source: set it to the UUID '
            'of a golden image (bmi-manage image list) or of a Glance '
            'image stored in Ceph.' % node.uuid)
    if not uuidutils.is_uuid_like(image_source):
        raise exception.NodeFactInvalid(
            'Node %(node)s: instance_info/image_source %(src)r is not a '
            'UUID. The bmi deploy interface boots golden images of its '
            'library or Glance images stored in Ceph, both by UUID.' %
            {'node': node.uuid, 'src': image_source})
    return image_source


def get_root_size(node):
    """Return ``instance_info/root_gb`` in bytes, or None when not set.

    :raises: NodeFactInvalid when it is not a non-negative integer or is
        larger than ``[bmi] max_root_gb``.
    """
    root_gb = node.instance_info.get('root_gb')
    if root_gb in (None, ''):
        return None
    try:
        root_gb = int(root_gb)
        if root_gb < 0:
            raise ValueError(root_gb)
    except (TypeError, ValueError):
        raise exception.NodeFactInvalid(
            'Node %(node)s: instance_info/root_gb must be a non-negative '
            'integer, not %(value)r.' %
            {'node': node.uuid, 'value': root_gb})
    if root_gb > CONF.bmi.max_root_gb:
        raise exception.NodeFactInvalid(
            'Node %(node)s: instance_info/root_gb %(value)d is larger than '
            'the %(max)d GiB this cloud allows ([bmi] max_root_gb).' %
            {'node': node.uuid, 'value': root_gb,
             'max': CONF.bmi.max_root_gb})
    return root_gb * GiB or None


# --- scratch disks (issue 14) --------------------------------------------
# Nova 34.0.0's ironic driver (virt/ironic/patcher.py) writes swap_mb
# always (str of the flavor's swap, '0' for none), ephemeral_gb when the
# flavor has one, ephemeral_format only when Nova's [DEFAULT]
# default_ephemeral_format is set, and preserve_ephemeral ('True'/'False')
# at a rebuild; all as strings.

def _size_field(node, field, unit, maximum, option):
    value = node.instance_info.get(field)
    if value in (None, ''):
        return None
    try:
        number = int(value)
        if number < 0:
            raise ValueError(number)
    except (TypeError, ValueError):
        raise exception.NodeFactInvalid(
            'Node %(node)s: instance_info/%(field)s must be a non-negative '
            'integer, not %(value)r.' %
            {'node': node.uuid, 'field': field, 'value': value})
    if not number:
        return None
    if not CONF.bmi.scratch_disks:
        raise exception.NodeFactInvalid(
            'Node %(node)s: instance_info/%(field)s is %(value)d, but this '
            'cloud gives bmi nodes no ephemeral or swap disks ([bmi] '
            'scratch_disks is off): use a flavor without ephemeral and '
            'swap.' % {'node': node.uuid, 'field': field, 'value': number})
    if number > maximum:
        raise exception.NodeFactInvalid(
            'Node %(node)s: instance_info/%(field)s %(value)d is larger '
            'than the %(max)d this cloud allows ([bmi] %(option)s).' %
            {'node': node.uuid, 'field': field, 'value': number,
             'max': maximum, 'option': option})
    return number * unit


def get_ephemeral(node, default_format):
    """(size in bytes, file system) of the node's ephemeral disk, or None.

    ``instance_info/ephemeral_gb`` (0 or unset: none), formatted as
    ``instance_info/ephemeral_format``, else ``default_format`` (the
    interface passes Ironic's ``[pxe] default_ephemeral_format``).

    :raises: NodeFactInvalid for a bad size or format, one above ``[bmi]
        max_ephemeral_gb``, or any when ``[bmi] scratch_disks`` is off.
    """
    size = _size_field(node, 'ephemeral_gb', GiB, CONF.bmi.max_ephemeral_gb,
                       'max_ephemeral_gb')
    if size is None:
        return None
    fmt = node.instance_info.get('ephemeral_format') or default_format
    if fmt not in scratch.FORMATS:
        raise exception.NodeFactInvalid(
            'Node %(node)s: ephemeral_format %(fmt)r is not one the bmi '
            'deploy interface formats (%(known)s).' %
            {'node': node.uuid, 'fmt': fmt,
             'known': ', '.join(scratch.FORMATS)})
    return size, fmt


def get_swap_size(node):
    """The size in bytes of the node's swap disk, or None.

    :raises: NodeFactInvalid for a bad size, one above ``[bmi]
        max_swap_mb``, or any when ``[bmi] scratch_disks`` is off.
    """
    return _size_field(node, 'swap_mb', MiB, CONF.bmi.max_swap_mb,
                       'max_swap_mb')


def preserve_ephemeral(node):
    """Whether ``instance_info/preserve_ephemeral`` asks to keep it."""
    return strutils.bool_from_string(
        node.instance_info.get('preserve_ephemeral', False))


# --- the node's project ---------------------------------------------------
# One resolution (issue 11) for image visibility, snapshots and HIL alike:
# the lessee, else the owner.  Not fields that only admins set: Ironic
# 39.0.0's default policy (ironic/common/policy.py) keeps the owner to
# system members (baremetal:node:update:owner), but lets a member of the
# owner project set the lessee, the name and driver_info
# (SYSTEM_MEMBER_OR_OWNER_MEMBER), also on an ACTIVE node; the hil
# interface therefore refuses a HIL node that another Ironic node maps to,
# and tears down the HIL node recorded at deploy
# (bmi_driver/network/hil.py).  Nova's
# instance_info/project_id counts only where [bmi]
# trust_instance_project_id says so: a node's owner or lessee may write
# instance_info, so elsewhere it is a tenant's claim.  An untrusted
# project_id is ignored rather than refused: Nova writes it on every boot,
# also on nodes without a lessee, where a refusal would break every Nova
# deploy; ignoring it can never widen what the node may see.

_NO_PROJECT = 'no project (public images only)'


def node_project(node):
    """Return the project a node is deployed for, or None.

    The lessee, else (when [bmi] trust_instance_project_id is set) Nova's
    ``instance_info/project_id``, else the owner.  None: the node belongs
    to no project and may use public images only.
    """
    claimed = node.instance_info.get('project_id') or None
    if CONF.bmi.trust_instance_project_id:
        return node.lessee or claimed or node.owner or None
    project = node.lessee or node.owner or None
    if claimed and claimed != project:
        LOG.warning('Node %(node)s: instance_info/project_id %(claim)s is '
                    'ignored ([bmi] trust_instance_project_id is off); the '
                    'node is deployed for %(project)s (its lessee or owner)',
                    {'node': node.uuid, 'claim': claimed,
                     'project': project or _NO_PROJECT})
    return project


def hil_project(node):
    """The HIL project a node is deployed for: :func:`node_project`.

    [hil] project_source (deprecated) other than ``lessee`` still picks
    another field, with a warning; [hil] default_project places a node of
    no project in HIL (its images stay public ones).

    :raises: NodeFactMissing when the node has no project and [hil]
        default_project is not set.
    """
    source = CONF.hil.project_source
    if source == 'lessee':
        project = node_project(node)
    else:
        LOG.warning('Node %(node)s: [hil] project_source %(source)s is '
                    'deprecated; HIL and image visibility may now disagree '
                    'on the node\'s project',
                    {'node': node.uuid, 'source': source})
        if source == 'owner':
            project = node.owner
        else:
            project = node.driver_info.get('hil_project')
    project = project or CONF.hil.default_project
    if not project:
        raise exception.NodeFactMissing(
            'Node %(node)s has no project for HIL: set its owner or lessee '
            '(or [hil] default_project).' % {'node': node.uuid})
    return project


def boot_network(node):
    """The node's boot network, or None in shared mode.

    Per-project mode ([bmi] boot_networks_file): the boot network of the
    node's HIL project (:func:`hil_project`, the one project, else [hil]
    default_project), so that HIL, the target and the boot files agree.

    :raises: NodeFactMissing when the node has no project.
    :raises: BootNetworkMissing, BootNetworkConfigError
    """
    if not boot_networks.enabled():
        return None
    return boot_networks.for_project(hil_project(node))


# --- the config drive -----------------------------------------------------

def _refuse_url(node, why):
    # The URL is often a temporary URL, a credential: never in the text.
    raise exception.ConfigDriveError(
        'Node %(node)s: the config drive URL is refused: %(why)s.' %
        {'node': node.uuid, 'why': why})


def _default_port(scheme):
    return 443 if scheme == 'https' else 80


def check_configdrive_url(node, url):
    """Check a config-drive URL against the operator's [bmi] options.

    :raises: ConfigDriveError (the URL itself is not in its message).
    """
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        _refuse_url(node, 'it is not a valid URL')
    scheme = parts.scheme.lower()
    if scheme not in ('http', 'https'):
        _refuse_url(node, 'only https:// (or, where [bmi] '
                          'configdrive_url_allow_http is set, http://) '
                          'is fetched')
    if scheme == 'http' and not CONF.bmi.configdrive_url_allow_http:
        _refuse_url(node, 'plain http is not allowed ([bmi] '
                          'configdrive_url_allow_http)')
    if parts.username is not None or parts.password is not None:
        _refuse_url(node, 'it carries a user name or password')
    host = (parts.hostname or '').lower()
    if not host:
        _refuse_url(node, 'it names no host')
    port = port or _default_port(scheme)
    allowed = set()
    for entry in CONF.bmi.configdrive_url_hosts:
        entry = entry.strip().lower()
        if not entry:
            continue
        try:
            listed = urllib.parse.urlsplit('//' + entry)
            allowed.add((listed.hostname, listed.port
                         or _default_port(scheme)))
        except ValueError:
            LOG.warning('[bmi] configdrive_url_hosts: %s is not a host '
                        'or host:port, ignored', entry)
    if (host, port) not in allowed:
        _refuse_url(node, 'host %s port %d is not in [bmi] '
                          'configdrive_url_hosts' % (host, port))


def _too_big(node):
    raise exception.ConfigDriveError(
        'Node %(node)s: the config drive is larger than [bmi] '
        'configdrive_max_size (%(max)d bytes).' %
        {'node': node.uuid, 'max': CONF.bmi.configdrive_max_size})


def _decode_configdrive(node, data):
    limit = CONF.bmi.configdrive_max_size
    if isinstance(data, str):
        data = data.encode('ascii', 'replace')
    try:
        data = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        raise exception.ConfigDriveError(
            'Node %s: the config drive is not base64 encoded.' % node.uuid)
    if data[:2] == b'\x1f\x8b':
        # Bounded: a small gzip bomb must not fill the conductor's memory.
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            image = inflater.decompress(data, limit + 1)
            if len(image) > limit or inflater.unconsumed_tail:
                _too_big(node)
            if not inflater.eof:
                raise zlib.error('truncated')
        except zlib.error as e:
            raise exception.ConfigDriveError(
                'Node %(node)s: the config drive is not valid gzip: '
                '%(err)s' % {'node': node.uuid, 'err': e})
        data = image
    if len(data) > limit:
        _too_big(node)
    return data


def _download_configdrive(node, url):
    """GET ``url``: no redirects, at most the size limit, in the time limit.

    :raises: ConfigDriveError
    """
    check_configdrive_url(node, url)
    limit = CONF.bmi.configdrive_max_size
    total = CONF.bmi.configdrive_url_timeout
    deadline = time.monotonic() + total
    body = bytearray()
    # Each socket wait is short; the deadline, checked after every read,
    # bounds the whole download, which a slow endless body would otherwise
    # not (read1 returns after one socket read: urllib3 2.x).
    wait = min(total, _READ_WAIT)
    try:
        with requests.get(url, timeout=(wait, wait), stream=True,
                          allow_redirects=False,
                          headers={'Accept-Encoding': 'identity'}) as resp:
            if resp.is_redirect or 300 <= resp.status_code < 400:
                raise exception.ConfigDriveError(
                    'Node %(node)s: the config drive URL answered a '
                    'redirect (HTTP %(code)d); redirects are not followed.'
                    % {'node': node.uuid, 'code': resp.status_code})
            resp.raise_for_status()
            length = resp.headers.get('Content-Length')
            if length and length.isdigit() and int(length) > limit:
                _too_big(node)
            while True:
                if time.monotonic() > deadline:
                    raise exception.ConfigDriveError(
                        'Node %(node)s: the config drive download took '
                        'longer than [bmi] configdrive_url_timeout '
                        '(%(t)d s).' % {'node': node.uuid, 't': total})
                chunk = resp.raw.read1(_CHUNK, decode_content=False)
                if not chunk:
                    break
                body += chunk
                if len(body) > limit:
                    _too_big(node)
    except (requests.RequestException, urllib3_exc.HTTPError) as e:
        # The URL is a temporary URL: a credential, not to be logged.
        raise exception.ConfigDriveError(
            'Node %(node)s: cannot download the config drive: '
            '%(err)s' % {'node': node.uuid, 'err': type(e).__name__})
    return bytes(body)


def _is_url(value):
    return (isinstance(value, str)
            and value[:8].lower().startswith(('http://', 'https://')))


def _refuse_type(node):
    # instance_info is free JSON that an owner member may PATCH (Ironic
    # 39.0.0): a number or a list would otherwise fail as a TypeError.
    raise exception.ConfigDriveError(
        'Node %s: instance_info/configdrive must be a base64 string, a URL '
        'or a JSON object.' % node.uuid)


def check_configdrive(node):
    """Refuse a config-drive URL the operator does not allow; no fetch.

    :raises: ConfigDriveError
    """
    configdrive = node.instance_info.get('configdrive')
    if configdrive and not isinstance(configdrive, (str, dict)):
        _refuse_type(node)
    if _is_url(configdrive):
        check_configdrive_url(node, configdrive)


def get_configdrive(node, build=None):
    """Return the node's config drive image as bytes, or None.

    The conductor stores it in ``instance_info/configdrive`` as gzipped,
    base64 encoded ISO 9660 (what Nova sends), as a URL (object store), or
    as a JSON document that Ironic turns into an image.  A URL is fetched
    only when [bmi] configdrive_url_hosts allows it, without redirects,
    within [bmi] configdrive_url_timeout and configdrive_max_size.

    :param build: ``build(node, document)`` makes that image of a JSON
        document; the interfaces pass Ironic's
        ``configdrive_utils.build_configdrive``.
    :raises: ConfigDriveError when it is refused, cannot be read or
        decoded, or is too large.
    """
    configdrive = node.instance_info.get('configdrive')
    if not configdrive:
        return None
    if isinstance(configdrive, dict):
        if build is None:
            raise exception.ConfigDriveError(
                'Node %s: the config drive is a JSON document and nothing '
                'was given to build it.' % node.uuid)
        configdrive = build(node, configdrive)
    if not isinstance(configdrive, str):
        _refuse_type(node)
    if _is_url(configdrive):
        configdrive = _download_configdrive(node, configdrive)
    elif len(configdrive) > CONF.bmi.configdrive_max_size * 4 // 3 + 4:
        _too_big(node)
    return _decode_configdrive(node, configdrive)


# --- HIL --------------------------------------------------------------------

def hil_node_name(node):
    """The HIL node an Ironic node maps to.

    :raises: NodeFactMissing when the node has neither
        ``driver_info/hil_node`` nor a name.
    """
    name = hil_node_name_of(node.driver_info, node.name)
    if not name:
        raise exception.NodeFactMissing(
            'Node %s has neither driver_info/hil_node nor a name: the hil '
            'network interface cannot find it in HIL.' % node.uuid)
    return _hil_name(node, 'node', name)


def hil_node_name_of(driver_info, name):
    """The HIL node of a node's ``driver_info`` and name, unchecked."""
    return (driver_info or {}).get('hil_node') or name


def _hil_name(node, kind, value):
    """A HIL name checked as data (see hil_client.check_name).

    :raises: NodeFactInvalid, naming the Ironic node.
    """
    try:
        return hil_client.check_name(kind, value)
    except exception.HILInvalidName as e:
        raise exception.NodeFactInvalid('Node %s: %s' % (node.uuid, e))


def _boot_network_names():
    """The HIL networks that carry boot traffic: never a tenant's.

    [hil] provisioning_network and, in per-project mode, every project's
    boot network. A registry that cannot be read adds none: it is refused
    where the node's own boot network is read (validate, deploy).
    """
    names = {CONF.hil.provisioning_network}
    try:
        networks = boot_networks.load()
    except exception.BootNetworkConfigError:
        networks = None
    names.update(net.hil_network for net in (networks or {}).values())
    names.discard(None)
    return names


def tenant_networks(node):
    """The tenant networks requested in instance_info, checked.

    A boot network ([hil] provisioning_network, a project's boot network
    of [bmi] boot_networks_file) is refused: the plugin joins and leaves
    those on the boot nics alone, so one a tenant joined elsewhere
    survived the undeploy (the provisioning network in per-project mode).

    :returns: a list of {'network', 'nic', 'channel' (or None)}.
    :raises: NodeFactInvalid when the value is malformed.
    """
    field = CONF.hil.tenant_networks_field
    raw = node.instance_info.get(field)
    if not raw:
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = None
    if not isinstance(raw, list):
        raise exception.NodeFactInvalid(
            'instance_info/%s of node %s must be a list of {"network": ..., '
            '"nic": ..., "channel": "vlan/<id>"}' % (field, node.uuid))
    result = []
    seen = set()
    boot = _boot_network_names()
    for entry in raw:
        if (not isinstance(entry, dict)
                or set(entry) - {'network', 'nic', 'channel'}
                or not all(isinstance(entry.get(k), str) and entry[k]
                           for k in ('network', 'nic'))):
            raise exception.NodeFactInvalid(
                'instance_info/%s of node %s: %r is not a {"network": ..., '
                '"nic": ..., "channel": ...} entry (network and nic are '
                'required strings)' % (field, node.uuid, entry))
        channel = entry.get('channel')
        if channel is not None and not (isinstance(channel, str)
                                        and _CHANNEL_RE.match(channel)):
            raise exception.NodeFactInvalid(
                'instance_info/%s of node %s: channel %r is neither '
                '"vlan/native" nor "vlan/<id>"' % (field, node.uuid, channel))
        _hil_name(node, 'network', entry['network'])
        if entry['network'] in boot:
            raise exception.NodeFactInvalid(
                'instance_info/%s of node %s: network %s is reserved for '
                'booting (the provisioning network or a project\'s boot '
                'network) and cannot be a tenant network'
                % (field, node.uuid, entry['network']))
        if not _MAC_RE.match(entry['nic'].lower()):
            _hil_name(node, 'nic', entry['nic'])
        key = (entry['nic'].lower(), entry['network'])
        if key in seen:
            raise exception.NodeFactInvalid(
                'instance_info/%s of node %s lists network %s on nic %s '
                'twice' % (field, node.uuid, entry['network'], entry['nic']))
        seen.add(key)
        result.append({'network': entry['network'], 'nic': entry['nic'],
                       'channel': channel})
    return result
