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

"""The ``bmi`` storage interface: a node's root disk is an RBD clone.

``attach_volumes`` gives the node a copy-on-write clone of its image in Ceph
(grown to ``instance_info/root_gb``), stores the config drive next to it,
makes its ephemeral and swap disks when ``instance_info/ephemeral_gb`` and
``swap_mb`` ask for them, exports them all over iSCSI (LUN 1, 2, 3 and 4
of the node's own target) and
records the export in the node's boot VolumeTarget (``boot_index`` 0,
``volume_type`` iscsi) so that Ironic's ``ipxe`` boot interface renders a
``sanboot`` of it with the target's CHAP credentials.

``detach_volumes`` undoes all of that, except on an ACTIVE node: Ironic
detaches volumes whenever an active node is powered off, and a BMI node's
disk must survive a power cycle. It is removed when the node is undeployed.

Every step is idempotent: the image library returns the existing clone, the
export manager the existing export, and the VolumeTarget is refreshed in
place, so a retried attach reuses what a failed one left.
"""

from ironic.common import exception as ironic_exc
from ironic.common.i18n import _
from ironic.common import states
from ironic.conductor import configdrive_utils
from ironic.conductor import periodics
from ironic.conf import CONF as IRONIC_CONF
from ironic.drivers import base
from ironic.drivers import utils as driver_utils
from ironic import objects
from oslo_log import log
from oslo_utils import strutils
from oslo_utils import uuidutils

from bmi_driver.common import ironic_errors
from bmi_driver.common import node_facts
from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.storage.ceph import library
from bmi_driver.storage.export import manager as export_manager
from bmi_driver.storage import layout

LOG = log.getLogger(__name__)

BOOT_INDEX = 0
# driver_internal_info: the deployment the node's clone belongs to, made at
# each deploy's prepare and recorded on the clone too (layout.py): a clone
# of another deployment (a node re-enrolled with an old UUID) is never
# reused nor exported.
DEPLOYMENT = 'bmi_deployment'
# driver_internal_info: whom the deployment is for, recorded with its id:
# {'project': node_facts.node_project, 'boot_network': its HIL network or
# None}.  Ironic 39.0.0's default policy lets a member of the node's owner
# project change its lessee on an ACTIVE node (baremetal:node:update:lessee
# is SYSTEM_MEMBER_OR_OWNER_MEMBER): a power-on or a take-over then refuses
# to export the disk (or publish its boot files) for the new project.
DEPLOYED_FOR = 'bmi_deployed_for'
# driver_internal_info: the deployments whose ephemeral disk a rebuild with
# preserve_ephemeral keeps (the last few: a rebuild that failed before
# its attach claimed the disk leaves it stamped with an older one).
PRESERVE_FROM = 'bmi_preserve_ephemeral_of'
_PRESERVE_KEEP = 4
# Marks the VolumeTargets this interface manages (VolumeTarget.extra).
# Nova's boot from volume (nova/virt/ironic/driver.py,
# _add_volume_target_info in 34.0.0) writes none: its targets are never
# bmi's, never changed and never deleted by bmi.
MANAGED_BY = 'bmi'
# Ironic 39.0.0's driver_internal_info keys of a boot from volume
# (deploy_utils.populate_storage_driver_internal_info).
_BFV_KEYS = ('boot_from_volume', 'boot_from_volume_deploy')


class BMIStorage(base.StorageInterface):
    """Root disks as Ceph RBD clones exported over iSCSI."""

    def get_properties(self):
        return {}

    def validate(self, task):
        """Check that the node can boot from an iSCSI volume.

        The image itself is validated by the ``bmi`` deploy interface.

        :raises: InvalidParameterValue when the node lacks the
            ``iscsi_boot`` capability or the boot interface cannot boot
            from an iSCSI volume.
        """
        node = task.node
        if not has_iscsi_boot(node):
            raise ironic_exc.InvalidParameterValue(
                _('Node %s cannot boot from its BMI disk: set the capability '
                  'with "baremetal node set --property '
                  'capabilities=iscsi_boot:True".') % node.uuid)
        if 'iscsi_volume_boot' not in task.driver.boot.capabilities:
            raise ironic_exc.InvalidParameterValue(
                _('Node %(node)s: boot interface %(boot)s cannot boot from '
                  'an iSCSI volume; use "ipxe".') %
                {'node': node.uuid, 'boot': node.get_interface('boot')})
        check_no_foreign_boot_volume(task)
        with ironic_errors.as_ironic():
            # Per-project mode: the node's project has a boot network.
            node_facts.boot_network(node)

    def should_write_image(self, task):
        """Never: the clone already is the image."""
        return False

    def attach_volumes(self, task):
        """Clone, store the config drive, export and record the disk.

        :raises: StorageError on a Ceph or iSCSI failure; what this call
            created is removed again unless the node is ACTIVE.
        :raises: InvalidParameterValue when the image cannot be used.
        """
        node = task.node
        with ironic_errors.as_ironic():
            image_source = node_facts.get_image_source(node)
            size = node_facts.get_root_size(node)
            project = node_facts.node_project(node)
            # Per-project mode: the portal on the project's boot network,
            # and only that network's initiators.
            boot_net = node_facts.boot_network(node)
            # Decode it before anything is created.
            configdrive = (node_facts.get_configdrive(
                node, build=configdrive_utils.build_configdrive)
                if node.provision_state != states.ACTIVE else None)
            ephemeral, swap = _scratch_for_attach(node)
            if node.provision_state == states.ACTIVE:
                _check_deployed_for(node)
        initiator = _initiator_iqn(task)
        lib = library.ImageLibrary()
        if node.provision_state == states.ADOPTING:
            # Before the try: a refused disk is not this call's to remove.
            with ironic_errors.translated('adopting the disk', node.uuid):
                _check_adoptable(lib, node)
        try:
            with ironic_errors.translated('attaching the disk', node.uuid):
                disk = _disk_of_deployment(lib, node)
                if disk is None or node.provision_state != states.ACTIVE:
                    # Idempotent: the clone made by an earlier attempt of
                    # this deployment is returned (grown if needed).
                    disk = lib.clone_for_node(node.uuid, image_source,
                                              size=size, project=project)
                _stamp_deployment(lib, node, disk)
                if configdrive is not None:
                    lib.write_node_configdrive(node.uuid, configdrive)
                _ensure_scratch(lib, node, disk, ephemeral, swap)
                # A fresh CHAP secret at every deploy and rebuild (issue
                # 11); an active node (power on, take over) keeps its own.
                node_export = export_manager.get_manager().export_node(
                    node.uuid, initiator_iqn=initiator,
                    fresh_credentials=(node.provision_state
                                       != states.ACTIVE),
                    portal=_portal_for(boot_net),
                    initiator_address=(boot_net.acl_address if boot_net
                                       else None))
            self._save_boot_target(task, disk, node_export)
        except Exception:
            if node.provision_state != states.ACTIVE:
                LOG.error('Attaching the disk of node %(node)s failed; '
                          'removing what was created.', {'node': node.uuid})
                self._remove(task, raise_errors=False,
                             keep_ephemeral=keeps_ephemeral(node))
            raise
        LOG.info('Node %(node)s boots from %(spec)s (parent %(parent)s), '
                 'exported as %(iqn)s LUN %(lun)d',
                 {'node': node.uuid, 'spec': disk.spec,
                  'parent': disk.parent, 'iqn': node_export.target_iqn,
                  'lun': layout.DISK_LUN})

    def detach_volumes(self, task):
        """Unexport the disk and delete it and its boot VolumeTarget.

        An ACTIVE node keeps its disk (Ironic detaches volumes on every
        power off of an active node).

        :raises: StorageError on a Ceph or iSCSI failure.
        """
        node = task.node
        if node.provision_state == states.ACTIVE:
            LOG.debug('Node %(node)s is active: its disk stays attached.',
                      {'node': node.uuid})
            return
        self._remove(task, keep_ephemeral=keeps_ephemeral(node))

    def _remove(self, task, raise_errors=True, keep_ephemeral=False):
        node = task.node
        try:
            with ironic_errors.translated('detaching the disk', node.uuid):
                # Unexport first: RBD refuses to remove an open image.
                try:
                    export_manager.get_manager().unexport_node(node.uuid)
                except exception.TargetDaemonUnavailable as e:
                    # Safe to go on: a tgtd that is down serves nothing and
                    # keeps nothing across a restart (its targets live in
                    # its memory); one that does not answer is cut off
                    # from the disk by the blocklist below, and its
                    # leftover target (no clone records it) is removed by
                    # reconcile. The node's own OS is powered off already.
                    LOG.warning('Node %(node)s: tgtd cannot unexport its '
                                'disk (%(err)s); removing the disk anyway',
                                {'node': node.uuid, 'err': e})
                trashed = library.ImageLibrary().remove_node_disk(
                    node.uuid, stale_watch=True,
                    keep_ephemeral=keep_ephemeral)
                if trashed:
                    LOG.warning('Node %(node)s: %(imgs)s moved to the RBD '
                                'trash; the sweep removes it within [ceph] '
                                'sweep_interval', {'node': node.uuid,
                                                   'imgs': trashed})
        except ironic_exc.StorageError as e:
            if raise_errors:
                raise
            LOG.error('Could not remove the disk of node %(node)s: %(err)s',
                      {'node': node.uuid, 'err': e})
            return
        for target in managed_targets(task):
            try:
                target.destroy()
            except ironic_exc.VolumeTargetNotFound:
                # Another conductor's interrupted teardown got there first.
                continue
            LOG.info('Deleted boot volume target %(target)s of node '
                     '%(node)s', {'target': target.uuid, 'node': node.uuid})
        _refresh_targets(task)
        LOG.info('Node %(node)s: disk unexported and deleted',
                 {'node': node.uuid})

    @periodics.periodic(
        spacing=lambda: CONF.ceph.sweep_interval,
        enabled=lambda: CONF.ceph.sweep_interval > 0)
    def sweep_removed_disks(self, manager, context):
        """Remove the node disks a teardown had to leave in the RBD trash.

        And first the golden images an import, copy or node snapshot that
        died midway left unsealed (``[ceph] unsealed_grace``): a node
        snapshot's is a clone of the node's temporary snapshot, which keeps
        that node's disk in the trash until it goes.

        Ironic 39.0.0 collects periodics of the enabled interfaces
        (conductor/base_manager.py: _collect_periodic_tasks) and calls
        them with (manager, context).  Each conductor sweeps the shared
        trash and image pool; removals are idempotent.
        """
        lib = library.ImageLibrary()
        try:
            # Each removal is logged by the library.
            lib.sweep_unsealed()
        except exception.BmiException as e:
            LOG.warning('Sweeping the unsealed golden images failed: %s', e)
        try:
            removed, left = lib.sweep_removed_disks()
        except exception.BmiException as e:
            LOG.warning('Sweeping the RBD trash failed: %s', e)
            return
        if removed or left:
            LOG.info('RBD trash sweep: removed %(removed)s, left '
                     '%(left)s', {'removed': removed, 'left': left})

    def _save_boot_target(self, task, disk, node_export):
        """Create or refresh the node's boot VolumeTarget."""
        node = task.node
        properties = {
            'target_portal': node_export.portal,
            'target_iqn': node_export.target_iqn,
            'target_lun': layout.DISK_LUN,
        }
        if node_export.chap_username:
            properties.update(auth_method='CHAP',
                              auth_username=node_export.chap_username,
                              auth_password=node_export.chap_secret)
        luns = node_export.luns or {}
        if layout.CONFIGDRIVE_LUN in luns:
            # Not booted from: the OS finds it on the same target. (Not
            # "configdrive_lun": Ironic's API masks keys with "configdrive".)
            properties['config_drive_lun'] = layout.CONFIGDRIVE_LUN
        if layout.EPHEMERAL_LUN in luns:
            properties['ephemeral_lun'] = layout.EPHEMERAL_LUN
        if layout.SWAP_LUN in luns:
            properties['swap_lun'] = layout.SWAP_LUN
        extra = {'managed_by': MANAGED_BY, 'rbd': disk.spec}
        # Ironic 39.0.0's volume_targets.volume_id is a String(36): MariaDB
        # refuses the RBD spec (sqlite never checked the length). The
        # node's UUID names its disk; the spec itself is in extra['rbd'].
        volume_id = node.uuid
        target = next((t for t in managed_targets(task)
                       if t.boot_index == BOOT_INDEX), None)
        if target is None and foreign_boot_targets(task):
            # Validate refuses such a node; one added since is not ours to
            # overwrite (Ironic allows one boot_index 0 per node).
            check_no_foreign_boot_volume(task, cls=ironic_exc.StorageError)
        if target is None:
            target = objects.VolumeTarget(
                task.context, node_id=node.id, volume_type='iscsi',
                boot_index=BOOT_INDEX, volume_id=volume_id,
                properties=properties, extra=extra)
            target.create()
            LOG.info('Created boot volume target %(target)s for node '
                     '%(node)s', {'target': target.uuid, 'node': node.uuid})
        else:
            target.volume_type = 'iscsi'
            target.volume_id = volume_id
            target.properties = properties
            target.extra = dict(target.extra or {}, **extra)
            target.save()
            LOG.debug('Refreshed boot volume target %(target)s of node '
                      '%(node)s', {'target': target.uuid, 'node': node.uuid})
        _refresh_targets(task)
        return target


def foreign_boot_targets(task):
    """The node's boot VolumeTargets (boot_index 0) bmi did not make."""
    return [t for t in task.volume_targets
            if t.boot_index == BOOT_INDEX
            and (t.extra or {}).get('managed_by') != MANAGED_BY]


def check_no_foreign_boot_volume(task, cls=None):
    """Refuse a node that is to boot from a volume bmi does not manage.

    Nova's boot from volume writes a VolumeTarget of the Cinder volume
    with boot_index 0 and no image_source (Nova 34.0.0): the bmi storage
    interface boots only its own clones, and never touches that target.

    :raises: InvalidParameterValue (or ``cls``) naming the target.
    """
    foreign = foreign_boot_targets(task)
    if not foreign:
        return
    target = foreign[0]
    raise (cls or ironic_exc.InvalidParameterValue)(
        _('Node %(node)s is to boot from volume %(volume)s (%(type)s, '
          'VolumeTarget %(target)s), which bmi did not create: the bmi '
          'storage interface boots only its own Ceph clones of an '
          'instance_info/image_source, not Cinder volumes (boot from '
          'volume). Boot it from an image, or use a hardware type with '
          'Ironic\'s cinder storage interface; bmi leaves that '
          'VolumeTarget alone.') %
        {'node': task.node.uuid, 'volume': target.volume_id,
         'type': target.volume_type, 'target': target.uuid})


def clear_storage_info(task):
    """Forget the node's boot-from-volume flags; keep foreign targets.

    Instead of Ironic 39.0.0's
    ``deploy_utils.tear_down_storage_configuration``, which destroys every
    VolumeTarget of the node, also those bmi did not create (its own are
    deleted by ``detach_volumes``).
    """
    node = task.node
    changed = False
    # A failed preserving rebuild keeps its mark with the disk.
    keys = _BFV_KEYS if keeps_ephemeral(node) else _BFV_KEYS + (
        PRESERVE_FROM,)
    for key in keys:
        if key in (node.driver_internal_info or {}):
            node.del_driver_internal_info(key)
            changed = True
    if changed:
        node.save()


def scratch_request(node):
    """((size, format) or None, swap size or None) the node asks for.

    :raises: NodeFactInvalid (see node_facts.get_ephemeral)
    """
    return (node_facts.get_ephemeral(
        node, IRONIC_CONF.pxe.default_ephemeral_format),
        node_facts.get_swap_size(node))


def _scratch_for_attach(node):
    """scratch_request(), but an ACTIVE node is never refused.

    Power on and take-over of a node deployed before the operator
    lowered a bound or turned scratch disks off keep what it has.
    """
    try:
        return scratch_request(node)
    except exception.NodeFactInvalid as e:
        if node.provision_state != states.ACTIVE:
            raise
        LOG.warning('Node %(node)s: %(err)s; it keeps the scratch disks it '
                    'has', {'node': node.uuid, 'err': e})
        return None, None


def keeps_ephemeral(node):
    """Whether removing the node's disks now keeps its ephemeral disk.

    During a rebuild with ``preserve_ephemeral`` (prepare recorded which
    deployment's disk to keep) and when such a rebuild fails: its data
    stays until the node is rebuilt again or undeployed.
    """
    return (node.provision_state in (states.DEPLOYING, states.DEPLOYWAIT,
                                     states.DEPLOYFAIL)
            and node_facts.preserve_ephemeral(node)
            and bool((node.driver_internal_info or {}).get(PRESERVE_FROM)))


def mark_preserved_ephemeral(node, previous):
    """At a deploy's prepare: the ephemeral disk a rebuild keeps.

    ``previous`` is the deployment the node had before this one; the
    ones marked by earlier rebuilds stay (one that failed before its
    attach stamped the disk leaves it with an older deployment), until
    a deploy without preserve_ephemeral or the undeploy.
    """
    info = node.driver_internal_info or {}
    if not node_facts.preserve_ephemeral(node):
        if PRESERVE_FROM in info:
            node.del_driver_internal_info(PRESERVE_FROM)
        return
    if not _same_project_as_deployed(node):
        # The disk holds the data of the project the node was deployed
        # for: a member of the owner project may change the lessee (Ironic
        # 39.0.0, baremetal:node:update:lessee) and then rebuild, also
        # from DEPLOYFAIL or ERROR.  The new project gets a blank disk.
        LOG.warning('Node %(node)s: preserve_ephemeral is ignored, its '
                    'lessee or owner changed since its last deployment; '
                    'its ephemeral disk is made anew', {'node': node.uuid})
        if PRESERVE_FROM in info:
            node.del_driver_internal_info(PRESERVE_FROM)
        return
    kept = [d for d in (info.get(PRESERVE_FROM) or []) if d != previous]
    if previous:
        kept.append(previous)
    if kept:
        node.set_driver_internal_info(PRESERVE_FROM, kept[-_PRESERVE_KEEP:])


def _ensure_scratch(lib, node, disk, ephemeral, swap):
    """Make, keep or remove the node's ephemeral and swap disks.

    A disk is reused only when it records this deployment (an attach
    retried, a powered-on or taken-over ACTIVE node) or, for the
    ephemeral one, the deployment a preserving rebuild keeps it from.
    An ACTIVE node (power on, take over) keeps whatever it has and gets
    a lost one made anew; another deploy drops those it no longer asks
    for.

    :raises: ScratchDiskMismatch, ScratchFormatError, CephError
    """
    deployment = node_deployment(node)
    active = node.provision_state == states.ACTIVE
    meta = {layout.META_DEPLOYMENT: deployment or '',
            layout.META_IQN: export_manager.get_manager().target_iqn(
                node.uuid)}
    claim = {deployment} if deployment else set()
    info = node.driver_internal_info or {}
    if ephemeral is not None:
        size, fmt = ephemeral
        eph_claim = set(claim)
        if keeps_ephemeral(node):
            eph_claim.update(info[PRESERVE_FROM])
        disk.ephemeral, kept = lib.ensure_node_scratch(
            node.uuid, 'ephemeral', size, fmt, meta, claim=eph_claim,
            keep_any=active)
        if kept:
            LOG.info('Node %(node)s keeps its ephemeral disk %(spec)s',
                     {'node': node.uuid, 'spec': disk.ephemeral.spec})
    elif not active and (disk.ephemeral is not None
                         or not keeps_ephemeral(node)):
        # Also when ``disk`` lists none: a clone just made does not look
        # for the others (clone_for_node), and the ephemeral disk a failed
        # preserving rebuild kept is there without a clone; the export
        # reads Ceph and would serve it.  Missing is fine.  A preserving
        # rebuild (of the same project: mark_preserved_ephemeral) that
        # asks for none keeps it, rather than lose the data.
        lib.remove_node_scratch(node.uuid, 'ephemeral')
        disk.ephemeral = None
    if swap is not None:
        disk.swap, _kept = lib.ensure_node_scratch(
            node.uuid, 'swap', swap, layout.SWAP, meta, claim=claim,
            keep_any=active)
    elif not active:
        lib.remove_node_scratch(node.uuid, 'swap')
        disk.swap = None


def has_iscsi_boot(node):
    """Whether the node's capabilities include ``iscsi_boot:True``.

    :raises: InvalidParameterValue when the capabilities are malformed.
    """
    caps = driver_utils.capabilities_to_dict(
        node.properties.get('capabilities'))
    return strutils.bool_from_string(caps.get('iscsi_boot', False))


def new_deployment(node):
    """Give the node a new deployment id (each deploy's prepare).

    Recorded with whom it is for (``DEPLOYED_FOR``).

    :raises: InvalidParameterValue, MissingParameterValue (no project or
        boot network: as validate).
    """
    deployment = uuidutils.generate_uuid()
    with ironic_errors.as_ironic():
        deployed_for = _deployed_for(node)
    node.set_driver_internal_info(DEPLOYMENT, deployment)
    node.set_driver_internal_info(DEPLOYED_FOR, deployed_for)
    return deployment


def record_deployed_for(node):
    """Record whom the node's disk is for (``DEPLOYED_FOR``) at adoption.

    Ironic 39.0.0's adoption runs no deploy, so :func:`new_deployment`
    never recorded it, and a power-on or take-over after the lessee changed
    would export the disk the old lessee used for the new one. (No
    deployment id: an adopted node keeps the clone it has.)

    :raises: InvalidParameterValue, MissingParameterValue (as validate).
    """
    with ironic_errors.as_ironic():
        node.set_driver_internal_info(DEPLOYED_FOR, _deployed_for(node))


def _deployed_for(node):
    """Whom the node's disk is for now: see ``DEPLOYED_FOR``."""
    boot_net = node_facts.boot_network(node)
    return {'project': node_facts.node_project(node),
            'boot_network': boot_net.hil_network if boot_net else None}


def recorded_for(node):
    """Whom the node's disk is for, as recorded (``DEPLOYED_FOR``).

    ``{'project', 'boot_network'}``, or None for a node deployed before
    the record existed, or never.
    """
    recorded = (node.driver_internal_info or {}).get(DEPLOYED_FOR)
    return recorded if isinstance(recorded, dict) else None


def _same_project_as_deployed(node):
    """Whether the node is for the project of its last deployment.

    Only the project counts (a boot network moved by the operator does
    not hand the data to anyone else); a node deployed before the record
    existed, or never, is not checked.
    """
    recorded = recorded_for(node)
    if recorded is None:
        return True
    return node_facts.node_project(node) == recorded.get('project')


def _check_deployed_for(node):
    """Refuse an ACTIVE node whose project changed since its deployment.

    Its disk holds the data of the project it was deployed for: exporting
    it on another project's boot network, to that network's initiators,
    or publishing its boot files (its CHAP secret) there would hand that
    data to the new project.  A node deployed before the record existed
    is not checked.

    :raises: InvalidParameterValue
    """
    recorded = recorded_for(node)
    if recorded is None:
        return
    current = _deployed_for(node)
    if current == recorded:
        return
    # The projects in the log only: the API user may be the new project.
    LOG.error('Node %(node)s was deployed for %(old)s and is now for '
              '%(new)s (its lessee or owner changed): its disk is not '
              'exported for the new project',
              {'node': node.uuid, 'old': recorded, 'new': current})
    raise ironic_exc.InvalidParameterValue(
        _('Node %s: its lessee or owner changed since it was deployed, so '
          'its disk (the data of the project it was deployed for) is not '
          'exported for the new one. Set them back, or rebuild or undeploy '
          'the node.') % node.uuid)


def node_deployment(node):
    """The node's deployment id, or None (deployed before issue 12)."""
    return (node.driver_internal_info or {}).get(DEPLOYMENT)


def _disk_of_deployment(lib, node):
    """The node's clone if it belongs to the node's deployment, else None.

    Deploying: a clone of another deployment (an earlier attempt, or a
    deleted node whose UUID was enrolled again) is unexported and removed,
    never reused.  ACTIVE (power on, take over): the node keeps the disk it
    has, whatever became of its image since; a clone of another deployment
    is refused (StaleDisk), a lost one is cloned again.

    :raises: StaleDisk, CephError, ExportError
    """
    try:
        disk = lib.get_node_disk(node.uuid)
    except exception.CloneNotFound:
        if node.provision_state == states.ACTIVE:
            LOG.warning('Active node %(node)s has lost its disk: cloning its '
                        'image again', {'node': node.uuid})
        return None
    expected = node_deployment(node)
    found = layout.disk_deployment(disk)
    if not expected or found == expected:
        return disk
    if node.provision_state == states.ACTIVE:
        raise exception.StaleDisk(node=node.uuid, clone=disk.spec,
                                  found=found or '(none)', expected=expected)
    LOG.warning('Node %(node)s: its clone %(clone)s belongs to deployment '
                '%(found)s, not %(expected)s: removing it',
                {'node': node.uuid, 'clone': disk.spec,
                 'found': found or '(none)', 'expected': expected})
    export_manager.get_manager().unexport_node(node.uuid)
    # A rebuild whose boot VolumeTarget is gone (its owner or lessee
    # admin may delete it: Ironic 39.0.0, baremetal:volume:delete) skips
    # prepare's detach and gets here: preserve_ephemeral still holds.
    lib.remove_node_disk(node.uuid, keep_ephemeral=keeps_ephemeral(node))
    return None


def _check_adoptable(lib, node):
    """Refuse to adopt a clone that another deployment stamped.

    Ironic 39.0.0's adoption (``manager._do_adoption``: MANAGEABLE to
    ADOPTING, which the default policy lets a member of the node's owner
    project ask for) calls ``prepare`` without a deploy, so the node has
    no deployment of its own, and :func:`_disk_of_deployment` would hand
    it any clone of its UUID: that of a node deleted while ACTIVE (for
    another project) and enrolled again with the UUID, before the sweep of
    nodes at rest removed it.  Nothing is removed here either: that sweep
    releases the old deployment's HIL node first
    (``heal.sweep_at_rest``, once the failed adoption is managed again).

    :raises: StaleDisk, CephError
    """
    try:
        disk = lib.get_node_disk(node.uuid)
    except exception.CloneNotFound:
        return
    found = layout.disk_deployment(disk)
    expected = node_deployment(node)
    if found and found != expected:
        raise exception.StaleDisk(node=node.uuid, clone=disk.spec,
                                  found=found, expected=expected or '(none)')


def _stamp_deployment(lib, node, disk):
    """Record the deployment and the owner on the clone (one write)."""
    deployment = node_deployment(node)
    stamp = {}
    if deployment and layout.disk_deployment(disk) != deployment:
        stamp[layout.META_DEPLOYMENT] = deployment
    owner = export_manager.get_manager().iqn_prefix()
    if (disk.metadata or {}).get(layout.META_OWNER) != owner:
        stamp[layout.META_OWNER] = owner
    if stamp:
        lib.set_node_metadata(node.uuid, stamp)
        disk.metadata = dict(disk.metadata or {}, **stamp)


def _portal_for(boot_net):
    """The portal of this conductor's gateway (None: [iscsi] portal_*).

    The registry gives this conductor's gateway's address on the node's
    boot network (branch multi: for_project() per conductor host), so a
    node taken over is told the new gateway.  The one place that asks.
    """
    return boot_net.portal if boot_net is not None else None


def _initiator_iqn(task):
    """The node's iSCSI initiator name, from an ``iqn`` volume connector."""
    return next((c.connector_id for c in task.volume_connectors
                 if c.type == 'iqn' and c.connector_id), None)


def managed_targets(task):
    """The node's VolumeTargets that this interface created or refreshed."""
    return [t for t in task.volume_targets
            if (t.extra or {}).get('managed_by') == MANAGED_BY]


def _refresh_targets(task):
    task.volume_targets = objects.VolumeTarget.list_by_node_id(
        task.context, task.node.id)
