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
exports both over iSCSI (LUN 1 and LUN 2 of the node's own target) and
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
# Marks the VolumeTargets this interface manages (VolumeTarget.extra).
MANAGED_BY = 'bmi'


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
        initiator = _initiator_iqn(task)
        lib = library.ImageLibrary()
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
                self._remove(task, raise_errors=False)
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
        self._remove(task)

    def _remove(self, task, raise_errors=True):
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
                    node.uuid, stale_watch=True)
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

        Ironic 39.0.0 collects periodics of the enabled interfaces
        (conductor/base_manager.py: _collect_periodic_tasks) and calls
        them with (manager, context).  Each conductor sweeps the shared
        trash; removals are idempotent.
        """
        try:
            removed, left = library.ImageLibrary().sweep_removed_disks()
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
        if layout.CONFIGDRIVE_LUN in (node_export.luns or {}):
            # Not booted from: the OS finds it on the same target. (Not
            # "configdrive_lun": Ironic's API masks keys with "configdrive".)
            properties['config_drive_lun'] = layout.CONFIGDRIVE_LUN
        extra = {'managed_by': MANAGED_BY, 'rbd': disk.spec}
        # Ironic 39.0.0's volume_targets.volume_id is a String(36): MariaDB
        # refuses the RBD spec (sqlite never checked the length). The
        # node's UUID names its disk; the spec itself is in extra['rbd'].
        volume_id = node.uuid
        target = next((t for t in task.volume_targets
                       if t.boot_index == BOOT_INDEX), None)
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


def has_iscsi_boot(node):
    """Whether the node's capabilities include ``iscsi_boot:True``.

    :raises: InvalidParameterValue when the capabilities are malformed.
    """
    caps = driver_utils.capabilities_to_dict(
        node.properties.get('capabilities'))
    return strutils.bool_from_string(caps.get('iscsi_boot', False))


def new_deployment(node):
    """Give the node a new deployment id (each deploy's prepare)."""
    deployment = uuidutils.generate_uuid()
    node.set_driver_internal_info(DEPLOYMENT, deployment)
    return deployment


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
    lib.remove_node_disk(node.uuid)
    return None


def _stamp_deployment(lib, node, disk):
    deployment = node_deployment(node)
    if deployment and layout.disk_deployment(disk) != deployment:
        lib.set_node_metadata(node.uuid,
                              {layout.META_DEPLOYMENT: deployment})
        disk.metadata = dict(disk.metadata or {},
                             **{layout.META_DEPLOYMENT: deployment})


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
