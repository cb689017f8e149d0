"""What a BMI deploy reads from an Ironic node.

Nova's ironic driver (and a standalone operator) describe the instance in
``instance_info``: ``image_source`` (a UUID: a golden image of the library or
a Glance image stored in Ceph), ``root_gb``, ``project_id``, and the config
drive that the conductor stored there.  These helpers turn that into the
arguments of the image library, rejecting bad input before anything is
created.
"""

import base64
import binascii
import gzip

from ironic.common import exception as ironic_exc
from ironic.common.i18n import _
from ironic.conductor import configdrive_utils
from ironic.drivers import utils as driver_utils
from oslo_log import log
from oslo_utils import strutils
from oslo_utils import uuidutils
import requests

LOG = log.getLogger(__name__)

GiB = 1024 ** 3

# Seconds to wait for a config drive given as a URL.
_CONFIGDRIVE_TIMEOUT = 60


def get_image_source(node):
    """Return the node's ``instance_info/image_source``, a UUID.

    :raises: MissingParameterValue when it is not set.
    :raises: InvalidParameterValue when it is not a UUID.
    """
    image_source = node.instance_info.get('image_source')
    if not image_source:
        raise ironic_exc.MissingParameterValue(
            _('Node %s has no instance_info/image_source: set it to the UUID '
              'of a golden image (bmi-manage image list) or of a Glance '
              'image stored in Ceph.') % node.uuid)
    if not uuidutils.is_uuid_like(image_source):
        raise ironic_exc.InvalidParameterValue(
            _('Node %(node)s: instance_info/image_source %(src)r is not a '
              'UUID. The bmi deploy interface boots golden images of its '
              'library or Glance images stored in Ceph, both by UUID.') %
            {'node': node.uuid, 'src': image_source})
    return image_source


def get_project(node):
    """Return the project deploying the node (for image visibility).

    The lessee uses a leased node; otherwise the project Nova recorded in
    ``instance_info/project_id``; otherwise the node's owner.  None when
    none of them is set.
    """
    return (node.lessee or node.instance_info.get('project_id')
            or node.owner or None)


def get_root_size(node):
    """Return ``instance_info/root_gb`` in bytes, or None when not set.

    :raises: InvalidParameterValue when it is not a non-negative integer.
    """
    root_gb = node.instance_info.get('root_gb')
    if root_gb in (None, ''):
        return None
    try:
        root_gb = int(root_gb)
        if root_gb < 0:
            raise ValueError(root_gb)
    except (TypeError, ValueError):
        raise ironic_exc.InvalidParameterValue(
            _('Node %(node)s: instance_info/root_gb must be a non-negative '
              'integer, not %(value)r.') %
            {'node': node.uuid, 'value': root_gb})
    return root_gb * GiB or None


def has_iscsi_boot(node):
    """Whether the node's capabilities include ``iscsi_boot:True``."""
    caps = driver_utils.capabilities_to_dict(
        node.properties.get('capabilities'))
    return strutils.bool_from_string(caps.get('iscsi_boot', False))


def _decode_configdrive(node, data):
    if isinstance(data, str):
        data = data.encode('ascii', 'replace')
    try:
        data = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        raise ironic_exc.InstanceDeployFailure(
            _('Node %s: the config drive is not base64 encoded.') % node.uuid)
    if data[:2] == b'\x1f\x8b':
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise ironic_exc.InstanceDeployFailure(
                _('Node %(node)s: the config drive is not valid gzip: '
                  '%(err)s') % {'node': node.uuid, 'err': e})
    return data


def get_configdrive(node):
    """Return the node's config drive image as bytes, or None.

    The conductor stores it in ``instance_info/configdrive`` as gzipped,
    base64 encoded ISO 9660 (what Nova sends), as a URL (object store), or
    as a JSON document that Ironic turns into an image.

    :raises: InstanceDeployFailure when it cannot be read or decoded.
    """
    if not node.instance_info.get('configdrive'):
        return None
    configdrive = configdrive_utils.get_configdrive_image(node)
    if (isinstance(configdrive, str)
            and configdrive.startswith(('http://', 'https://'))):
        try:
            resp = requests.get(configdrive, timeout=_CONFIGDRIVE_TIMEOUT)
            resp.raise_for_status()
        except requests.RequestException as e:
            # The URL is a temporary URL: a credential, not to be logged.
            raise ironic_exc.InstanceDeployFailure(
                _('Node %(node)s: cannot download the config drive: '
                  '%(err)s') % {'node': node.uuid,
                                'err': type(e).__name__})
        configdrive = resp.content
    return _decode_configdrive(node, configdrive)
