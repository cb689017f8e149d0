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

"""What bmi_driver keeps in Ceph: RBD names, metadata keys and LUNs.

Ceph is the single record; this module is its schema, in one place.

Pools: ``[ceph] image_pool`` (golden images) and ``[ceph] clone_pool``
(node disks; may be the same pool).

``img-<uuid>``
    A golden image.  Its record lives in its RBD image metadata
    (``bmi.name``, ``bmi.project``, ``bmi.visibility``, ``bmi.created_at``,
    ``bmi.source``, ``bmi.checksum``; ``bmi.ref_snapshot`` when it was
    imported by reference from an image without a snapshot); there is no
    side database to drift.  Its protected snapshot ``golden`` is what
    nodes are cloned from.
``node-<node uuid>``
    A node's disk: a copy-on-write clone of a golden snapshot (or of a
    Glance image's ``<glance pool>/<uuid>@snap``).  It inherits the golden
    image's metadata and records the node's iSCSI export::

        bmi.export.iqn          target IQN, <[iscsi] iqn_prefix>:<node uuid>
        bmi.export.initiator    initiator IQN bound to the target ('' = any)
        bmi.export.chap_user    incoming CHAP user ('' = CHAP off)
        bmi.export.chap_secret  its secret

    and the deployment it belongs to (``bmi.deployment``, made at each
    deploy's prepare and kept in the node's driver_internal_info too), so
    that a node re-enrolled with an old UUID never gets an old clone.

``node-<node uuid>-config``
    The node's config drive, when it has one (``bmi.checksum``).
``node-<node uuid>-ephemeral``, ``node-<node uuid>-swap``
    The node's scratch disks, when ``instance_info/ephemeral_gb`` or
    ``swap_mb`` ask for them (what Nova's ironic driver writes from the
    flavor): blank RBD images formatted at deploy (``bmi.format``: the
    file system, ``swap``), recording the deployment they belong to
    (``bmi.deployment``) and the IQN of the node's export
    (``bmi.export.iqn``, so the orphan sweep knows them as ours).  The
    ephemeral one is kept across a rebuild with
    ``instance_info/preserve_ephemeral``; swap is always made anew.
``glance-cache-<glance image id>`` (``image_pool``)
    The raw conversion of a Glance image that is not raw (qcow2, vmdk,
    vdi, vhdx), made once and cloned by every node that boots it; its
    protected snapshot ``golden``; ``bmi.glance.id``, ``bmi.glance.key``
    (Glance's ``os_hash_algo:os_hash_value``), ``bmi.glance.format``.
    Not a golden image: it has no name and is not listed; it goes when
    Glance no longer has the image (and no node clones it).

A node's target serves its disk as LUN 1 (LUN 0 is the controller), its
config drive, when it has one, as LUN 2, its ephemeral disk as LUN 3 and
its swap as LUN 4 (fixed numbers, also when an earlier one is absent).

In this package an RBD *spec* is always the string ``pool/image`` or
``pool/image@snapshot``.
"""

import dataclasses

# RBD image names.
GOLDEN_PREFIX = 'img-'
NODE_PREFIX = 'node-'
CONFIG_SUFFIX = '-config'
EPHEMERAL_SUFFIX = '-ephemeral'
SWAP_SUFFIX = '-swap'
# Every image of a node besides its clone (node-<uuid><suffix>).
NODE_SUFFIXES = (CONFIG_SUFFIX, EPHEMERAL_SUFFIX, SWAP_SUFFIX)

# Snapshots.
GOLDEN_SNAP = 'golden'
GLANCE_SNAP = 'snap'
TEMP_SNAP_PREFIX = 'bmi-snap-'
REF_SNAP_PREFIX = 'bmi-ref-'

# Converted Glance images.
CACHE_PREFIX = 'glance-cache-'
CACHE_PART_SUFFIX = '.part'
META_GLANCE_ID = 'bmi.glance.id'
META_GLANCE_KEY = 'bmi.glance.key'
META_GLANCE_FORMAT = 'bmi.glance.format'
# A published golden image: the id of its Glance record ([glance]
# publish_images), and the property that record carries back to it.
META_PUBLISHED = 'bmi.glance.published'
GLANCE_PROP_IMAGE = 'bmi_image_id'
# The image pool's own metadata (rbd pool-metadata): a Glance record bmi
# wrote whose golden image is being removed, or is gone, while the record
# stays (Glance refused its delete): key + glance id = golden uuid.  Once
# the golden image is gone it is the only proof that the record is bmi's.
POOL_META_UNPUBLISH = 'bmi.unpublish.'


class _AnyProject:
    """The ``project`` of callers that may see every image (admins)."""

    def __repr__(self):
        return 'ANY_PROJECT'


# Image visibility: the caller is an admin, not a node's project (which is
# a name, or None for a node of no project: public images only).
ANY_PROJECT = _AnyProject()

# Every metadata key of the plugin starts with this.
META_PREFIX = 'bmi.'

# Golden image record (and config drive checksum).
META_NAME = 'bmi.name'
META_PROJECT = 'bmi.project'
META_VISIBILITY = 'bmi.visibility'
META_CREATED = 'bmi.created_at'
META_SOURCE = 'bmi.source'
META_CHECKSUM = 'bmi.checksum'
META_REF_SNAP = 'bmi.ref_snapshot'

# Export record, on the node's clone.
META_IQN = 'bmi.export.iqn'
META_INITIATOR = 'bmi.export.initiator'
META_CHAP_USER = 'bmi.export.chap_user'
META_CHAP_SECRET = 'bmi.export.chap_secret'
# Per-project boot networks: the target's address ACL ('': none) and the
# portal the node was told ('': [iscsi] portal_address/portal_port).
META_INITIATOR_ADDRESS = 'bmi.export.initiator_address'
META_PORTAL = 'bmi.export.portal'
EXPORT_KEYS = (META_IQN, META_INITIATOR, META_CHAP_USER, META_CHAP_SECRET,
               META_INITIATOR_ADDRESS, META_PORTAL)

# The deployment a clone belongs to (a UUID made at prepare): a clone of
# another deployment is never reused nor exported again (issue 12).
META_DEPLOYMENT = 'bmi.deployment'
# The [iscsi] iqn_prefix of the plugin that made the clone, stamped with
# the deployment and never removed: the export record (its IQN) goes at
# every unexport, and a clone left without it (a conductor that died
# between unexport and removal, a removal that failed) must still be
# known as ours to the sweeps of deleted and idle nodes (deploy/heal.py).
META_OWNER = 'bmi.owner'

# The network's record of the deployment, on the node's clone: what the
# sweep of deleted nodes undoes in HIL (Ironic 39.0.0's node delete calls
# no interface, and the node's driver_internal_info goes with it). The HIL
# node, the project it was deployed for, and '1' when the plugin connected
# the free node to that project ('' otherwise).
META_HIL_NODE = 'bmi.hil.node'
META_HIL_PROJECT = 'bmi.hil.project'
META_HIL_CONNECTED = 'bmi.hil.connected'

# A scratch disk's format (a file system name, or SWAP).
META_FORMAT = 'bmi.format'
SWAP = 'swap'
# The labels Ironic's own partition deploys give them (ironic-lib's
# disk_utils.work_on_disk: "ephemeral0" and "swap1"), which cloud-init's
# ConfigDrive source also looks up (LABEL=ephemeral0, TYPE=swap).
EPHEMERAL_LABEL = 'ephemeral0'
SWAP_LABEL = 'swap1'

# LUNs of a node's target.
DISK_LUN = 1
CONFIGDRIVE_LUN = 2
EPHEMERAL_LUN = 3
SWAP_LUN = 4


def golden_rbd_name(image_uuid):
    return GOLDEN_PREFIX + image_uuid


def node_rbd_name(node_uuid):
    return NODE_PREFIX + node_uuid


def configdrive_rbd_name(node_uuid):
    return NODE_PREFIX + node_uuid + CONFIG_SUFFIX


def ephemeral_rbd_name(node_uuid):
    return NODE_PREFIX + node_uuid + EPHEMERAL_SUFFIX


def swap_rbd_name(node_uuid):
    return NODE_PREFIX + node_uuid + SWAP_SUFFIX


def node_of_rbd_name(rbd_name):
    """(node uuid, suffix) of one of a node's images, else (None, None).

    The suffix is '' for the clone itself, else one of NODE_SUFFIXES.
    """
    if not rbd_name.startswith(NODE_PREFIX):
        return None, None
    rest = rbd_name[len(NODE_PREFIX):]
    for suffix in NODE_SUFFIXES:
        if rest.endswith(suffix):
            return rest[:-len(suffix)], suffix
    return rest, ''


def cache_rbd_name(glance_id):
    return CACHE_PREFIX + glance_id


def rbd_spec(pool, rbd_name, snapshot=None):
    """``pool/image`` or ``pool/image@snapshot``."""
    spec = '%s/%s' % (pool, rbd_name)
    return '%s@%s' % (spec, snapshot) if snapshot else spec


@dataclasses.dataclass
class GoldenImage:
    """A golden image, as its RBD metadata describes it."""
    uuid: str
    name: str
    project: str
    visibility: str
    created_at: str
    source: str
    checksum: str
    size: int
    pool: str
    rbd_name: str
    snapshot: str = GOLDEN_SNAP
    parent: str = None
    clones: int = 0
    # The Glance image that publishes it ('' when not published).
    glance_id: str = ''
    # Its snapshot golden exists and is protected: nodes may clone it.
    sealed: bool = True

    @property
    def spec(self):
        return rbd_spec(self.pool, self.rbd_name, self.snapshot)

    def to_dict(self):
        return dataclasses.asdict(self)

    def metadata(self):
        """The ``bmi.*`` record of this image (empty values left out)."""
        meta = {META_NAME: self.name, META_PROJECT: self.project,
                META_VISIBILITY: self.visibility,
                META_CREATED: self.created_at, META_SOURCE: self.source,
                META_CHECKSUM: self.checksum}
        return {k: v for k, v in meta.items() if v}

    @classmethod
    def from_metadata(cls, meta, **fields):
        """The record ``meta`` describes; ``fields`` gives the rest."""
        return cls(name=meta.get(META_NAME, ''),
                   project=meta.get(META_PROJECT, ''),
                   visibility=meta.get(META_VISIBILITY, 'private'),
                   created_at=meta.get(META_CREATED, ''),
                   source=meta.get(META_SOURCE, ''),
                   checksum=meta.get(META_CHECKSUM, ''),
                   glance_id=meta.get(META_PUBLISHED, ''),
                   **fields)


def new_golden_metadata(name, project, visibility, created_at, source,
                        checksum=''):
    """The record of a golden image being made."""
    return {META_NAME: name,
            META_PROJECT: project,
            META_VISIBILITY: visibility,
            META_CREATED: created_at,
            META_SOURCE: source,
            META_CHECKSUM: checksum}


@dataclasses.dataclass
class ImageSource:
    """Something a node can be cloned from: a golden or a Glance image.

    ``kind``: ``golden``; ``glance`` (a raw Glance image: its own RBD
    snapshot); ``glance-cache`` (the converted copy of a Glance image);
    ``glance-convert`` (that copy, not made yet: ``convert_from`` is the
    Glance image's RBD spec, ``disk_format`` its format).
    """
    uuid: str
    kind: str
    pool: str
    rbd_name: str
    snapshot: str
    size: int
    project: str = None
    visibility: str = None
    # The source's own bmi.* metadata, which a clone inherits.
    metadata: dict = dataclasses.field(default_factory=dict)
    convert_from: str = None
    disk_format: str = None
    cache_key: str = None

    @property
    def spec(self):
        return rbd_spec(self.pool, self.rbd_name, self.snapshot)


@dataclasses.dataclass
class NodeDisk:
    """A node's clone (or its config drive)."""
    node_uuid: str
    pool: str
    rbd_name: str
    size: int
    parent: str = None
    metadata: dict = dataclasses.field(default_factory=dict)
    configdrive: 'NodeDisk' = None
    ephemeral: 'NodeDisk' = None
    swap: 'NodeDisk' = None

    @property
    def spec(self):
        return rbd_spec(self.pool, self.rbd_name)


def disk_deployment(disk):
    """The deployment id the node's ``disk`` records, or None."""
    return (getattr(disk, 'metadata', None) or {}).get(META_DEPLOYMENT) or None


def hil_record_metadata(record):
    """The clone's metadata for a network record (see :func:`hil_record`).

    :param record: {'node', 'project', 'connected' (bool)}.
    """
    return {META_HIL_NODE: record['node'],
            META_HIL_PROJECT: record['project'],
            META_HIL_CONNECTED: '1' if record['connected'] else ''}


def hil_record(metadata):
    """The network record a clone's ``metadata`` carries, or None.

    :returns: {'node', 'project', 'connected' (bool)}.
    """
    metadata = metadata or {}
    if not (metadata.get(META_HIL_NODE) and metadata.get(META_HIL_PROJECT)):
        return None
    return {'node': metadata[META_HIL_NODE],
            'project': metadata[META_HIL_PROJECT],
            'connected': metadata.get(META_HIL_CONNECTED) == '1'}


def target_luns(disk):
    """{LUN: RBD spec} that the target of a node's ``disk`` serves."""
    luns = {DISK_LUN: disk.spec}
    for lun, part in ((CONFIGDRIVE_LUN, 'configdrive'),
                      (EPHEMERAL_LUN, 'ephemeral'), (SWAP_LUN, 'swap')):
        if getattr(disk, part, None) is not None:
            luns[lun] = getattr(disk, part).spec
    return luns
