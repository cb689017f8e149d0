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
import gzip
import json
import re

from oslo_log import log
from oslo_utils import uuidutils
import requests

from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.network import hil_client

LOG = log.getLogger(__name__)

GiB = 1024 ** 3

# Seconds to wait for a config drive given as a URL.
_CONFIGDRIVE_TIMEOUT = 60

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

    :raises: NodeFactInvalid when it is not a non-negative integer.
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
    return root_gb * GiB or None


# --- the node's project ---------------------------------------------------
# Two resolutions that DIFFER, kept apart on purpose: image_project() is
# what the image library checks visibility against (and owns snapshots),
# hil_project() is what HIL allocates the node to ([hil] project_source).
# Merging them changes behaviour; issue 11 (tenant isolation) decides which
# fields are trusted.

def image_project(node):
    """Return the project deploying the node (for image visibility).

    The lessee uses a leased node; otherwise the project Nova recorded in
    ``instance_info/project_id``; otherwise the node's owner.  None when
    none of them is set.  (Not :func:`hil_project`: see above.)
    """
    return (node.lessee or node.instance_info.get('project_id')
            or node.owner or None)


def hil_project(node):
    """The HIL project a node is deployed for, per [hil] project_source.

    (Not :func:`image_project`: see above.)

    :raises: NodeFactMissing when the source gives none and [hil]
        default_project is not set.
    """
    source = CONF.hil.project_source
    if source == 'lessee':
        project = node.lessee or node.owner
    elif source == 'owner':
        project = node.owner
    else:
        project = node.driver_info.get('hil_project')
    project = project or CONF.hil.default_project
    if not project:
        raise exception.NodeFactMissing(
            'Node %(node)s has no HIL project: [hil] project_source is '
            '%(source)s and gives nothing, and [hil] default_project is '
            'not set.' % {'node': node.uuid, 'source': source})
    return project


# --- the config drive -----------------------------------------------------

def _decode_configdrive(node, data):
    if isinstance(data, str):
        data = data.encode('ascii', 'replace')
    try:
        data = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        raise exception.ConfigDriveError(
            'Node %s: the config drive is not base64 encoded.' % node.uuid)
    if data[:2] == b'\x1f\x8b':
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise exception.ConfigDriveError(
                'Node %(node)s: the config drive is not valid gzip: '
                '%(err)s' % {'node': node.uuid, 'err': e})
    return data


def get_configdrive(node, build=None):
    """Return the node's config drive image as bytes, or None.

    The conductor stores it in ``instance_info/configdrive`` as gzipped,
    base64 encoded ISO 9660 (what Nova sends), as a URL (object store), or
    as a JSON document that Ironic turns into an image.

    :param build: ``build(node, document)`` makes that image of a JSON
        document; the interfaces pass Ironic's
        ``configdrive_utils.build_configdrive``.
    :raises: ConfigDriveError when it cannot be read or decoded.
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
    if (isinstance(configdrive, str)
            and configdrive.startswith(('http://', 'https://'))):
        try:
            resp = requests.get(configdrive, timeout=_CONFIGDRIVE_TIMEOUT)
            resp.raise_for_status()
        except requests.RequestException as e:
            # The URL is a temporary URL: a credential, not to be logged.
            raise exception.ConfigDriveError(
                'Node %(node)s: cannot download the config drive: '
                '%(err)s' % {'node': node.uuid, 'err': type(e).__name__})
        configdrive = resp.content
    return _decode_configdrive(node, configdrive)


# --- HIL --------------------------------------------------------------------

def hil_node_name(node):
    """The HIL node an Ironic node maps to.

    :raises: NodeFactMissing when the node has neither
        ``driver_info/hil_node`` nor a name.
    """
    name = node.driver_info.get('hil_node') or node.name
    if not name:
        raise exception.NodeFactMissing(
            'Node %s has neither driver_info/hil_node nor a name: the hil '
            'network interface cannot find it in HIL.' % node.uuid)
    return _hil_name(node, 'node', name)


def _hil_name(node, kind, value):
    """A HIL name checked as data (see hil_client.check_name).

    :raises: NodeFactInvalid, naming the Ironic node.
    """
    try:
        return hil_client.check_name(kind, value)
    except exception.HILInvalidName as e:
        raise exception.NodeFactInvalid('Node %s: %s' % (node.uuid, e))


def tenant_networks(node):
    """The tenant networks requested in instance_info, checked.

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
