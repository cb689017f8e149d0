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

"""The ``bmi`` deploy interface: agentless, diskless deploys.

Nothing is written to the node's local disks and no ramdisk runs on it: the
node's root disk is a copy-on-write clone of its image in Ceph, exported over
iSCSI by the ``bmi`` storage interface, which Ironic's ``ipxe`` boot
interface ``sanboot``-s.  A deploy therefore is:

``prepare``
    power off, attach the disk (clone, config drive, iSCSI export, boot
    VolumeTarget), put the node on the provisioning network.  On a rebuild
    the old disk is dropped first: the node gets a fresh clone.
``deploy`` (the single deploy step, priority 100)
    render the iPXE ``sanboot`` configuration and set network boot, join the
    tenant networks, power on.  The node is ACTIVE without any callback.
``clean_up`` / ``tear_down``
    power off, leave the tenant networks, unexport and delete the disk and
    its VolumeTarget, remove the boot configuration, leave the provisioning
    network (last: it carries the iSCSI traffic).

Cleaning has nothing to erase on a diskless node: this interface has no
clean steps, so automated cleaning only runs what other interfaces bring
(usually nothing) and finishes in seconds.
"""

import os

from ironic.common import exception as ironic_exc
from ironic.common.i18n import _
from ironic.common import states
from ironic.conductor import periodics
from ironic.conductor import task_manager
from ironic.conductor import utils as manager_utils
from ironic.drivers import base
from ironic.drivers.modules import deploy_utils as ironic_deploy_utils
from oslo_log import log
from oslo_utils import excutils

from bmi_driver.common import ironic_errors
from bmi_driver.common import node_facts
from bmi_driver.conf import CONF
from bmi_driver.deploy import heal
from bmi_driver.network import boot_files
from bmi_driver.network import boot_networks
from bmi_driver.storage.ceph import library
from bmi_driver.storage.export import manager as export_manager
from bmi_driver.storage import layout
from bmi_driver.storage import rbd_iscsi

LOG = log.getLogger(__name__)

WHOLE_DISK = 'whole-disk'
# driver_internal_info: the project HTTP root the node's iPXE files were
# published into (per-project mode), for their removal.
BOOT_FILES_ROOT = 'bmi_boot_files_root'
# validate() before a new disk: deploy, rebuild, retried deploy (Ironic 39
# validates in the state the node is in when the request arrives).
_NEW_DISK_STATES = (states.AVAILABLE, states.ACTIVE, states.DEPLOYFAIL,
                    states.ERROR, states.DEPLOYING)
_FAILED_DEPLOY_STATES = (states.DEPLOYING, states.DEPLOYWAIT,
                         states.DEPLOYFAIL)


class BMIDeploy(base.DeployInterface):
    """Boot the node from its own Ceph RBD clone over iSCSI."""

    def __init__(self):
        super().__init__()
        # Said once per conductor start (the interface is made once).
        boot_networks.warn_if_shared()
        boot_networks.warn_if_reservations_outlive_a_crash()
        boot_networks.warn_if_boot_config_readable()

    def get_properties(self):
        return {}

    def validate(self, task):
        """Check everything a deploy needs, before anything is created.

        :raises: MissingParameterValue when ``instance_info/image_source``
            is missing.
        :raises: InvalidParameterValue when the node cannot boot from iSCSI,
            the image is unknown or not visible to the node's project (a
            node of no project: public images only), its config-drive URL
            is not allowed, or Ceph or the iSCSI target daemon cannot be
            reached.
        """
        node = task.node
        if not isinstance(task.driver.storage, rbd_iscsi.BMIStorage):
            raise ironic_exc.InvalidParameterValue(
                _('Node %(node)s: the bmi deploy interface needs the bmi '
                  'storage interface, not %(storage)s.') %
                {'node': node.uuid, 'storage': node.get_interface('storage')})
        # Boot from a Cinder volume (a boot VolumeTarget bmi did not make,
        # no image_source): refused saying so, before "no image_source".
        rbd_iscsi.check_no_foreign_boot_volume(task)
        task.driver.storage.validate(task)
        # HIL's refusals (node of another project, boot network not the
        # project's own...) at the API call, before DEPLOYING: Ironic 39's
        # do_node_deploy validates only the power and deploy interfaces.
        task.driver.network.validate(task)
        if (getattr(task.driver.boot, 'ipxe_enabled', False)
                and not (CONF.deploy.http_url and CONF.deploy.http_root)):
            raise ironic_exc.InvalidParameterValue(
                _('iPXE boot needs [deploy]http_url and [deploy]http_root in '
                  'the conductor\'s configuration.'))
        ironic_deploy_utils.validate_capabilities(node)
        with ironic_errors.as_ironic():
            image_source = node_facts.get_image_source(node)
            node_facts.get_root_size(node)
            # Ephemeral and swap: sizes, format, [bmi] scratch_disks.
            rbd_iscsi.scratch_request(node)
            project = node_facts.node_project(node)
        as_invalid = ironic_exc.InvalidParameterValue
        # Ironic 39 stores a config drive given to the provision API only
        # after validate (conductor/deployments.py: start_deploy validates,
        # do_node_deploy stores); one already in instance_info is checked
        # here, a new one in prepare, before anything is cloned.
        with ironic_errors.translated('checking the config drive',
                                      node.uuid, as_=as_invalid):
            node_facts.check_configdrive(node)
        with ironic_errors.translated('checking the image', node.uuid,
                                      as_=as_invalid):
            source = library.ImageLibrary().resolve_source(
                image_source, project=project)
        with ironic_errors.translated('checking the iSCSI target daemon',
                                      node.uuid, as_=as_invalid):
            export_manager.get_manager().check()
        if node.provision_state in _NEW_DISK_STATES:
            # A full pool blocks librbd writes (and so tgtd) instead of
            # failing them: refuse before anything is cloned (issue 12).
            with ironic_errors.translated('checking Ceph\'s capacity',
                                          node.uuid, as_=as_invalid):
                library.ImageLibrary().check_capacity()
        LOG.debug('Node %(node)s will boot a clone of %(kind)s image '
                  '%(image)s (%(pool)s/%(rbd)s@%(snap)s)',
                  {'node': node.uuid, 'kind': source.kind,
                   'image': source.uuid, 'pool': source.pool,
                   'rbd': source.rbd_name, 'snap': source.snapshot})

    @task_manager.require_exclusive_lock
    def prepare(self, task):
        """Attach the node's disk and the provisioning network.

        On a failure, what this call created is removed again.
        """
        node = task.node
        if node.provision_state == states.DEPLOYING:
            task.driver.network.validate(task)
            # Before the rebuild below drops the old disks: which
            # ephemeral disk preserve_ephemeral keeps.
            rbd_iscsi.mark_preserved_ephemeral(
                node, rbd_iscsi.node_deployment(node))
            if not node.disable_power_off:
                manager_utils.node_power_action(task, states.POWER_OFF)
            if rbd_iscsi.managed_targets(task):
                # A rebuild (or a deploy retried after a crash): the node
                # gets a fresh clone of its image.
                LOG.info('Node %(node)s has a disk from an earlier deploy: '
                         'replacing it with a fresh clone',
                         {'node': node.uuid})
                with manager_utils.power_state_for_network_configuration(
                        task):
                    task.driver.network.unconfigure_tenant_networks(task)
                task.driver.boot.clean_up_instance(task)
                task.driver.storage.detach_volumes(task)
            # A clone is a whole disk image. Recording it also spares a
            # later rebuild an Ironic 39.0 error: without image_type,
            # start_deploy() reads an unbound variable for UUID sources that
            # Glance does not know.
            if node.instance_info.get('image_type') != WHOLE_DISK:
                node.set_instance_info('image_type', WHOLE_DISK)
            # Each deploy's own clone (issue 12): one of another
            # deployment is removed, never reused.
            rbd_iscsi.new_deployment(node)
            node.save()
            # Boot files of a deleted node of the same UUID: Ironic would
            # keep them, without this node's MACs (the deploy step renders
            # the node's own).
            with ironic_errors.translated('removing leftover boot files',
                                          node.uuid):
                heal.withdraw_leftover_boot_files(node.uuid)
            try:
                task.driver.storage.attach_volumes(task)
                ironic_deploy_utils.populate_storage_driver_internal_info(
                    task)
                # Kept before HIL changes, and again once the node is in
                # its project: what a delete of the node leaves in HIL.
                record = _keep_network_record(task)
                with manager_utils.power_state_for_network_configuration(
                        task):
                    task.driver.network.add_provisioning_network(task)
                _keep_network_record(task, previous=record)
            except Exception as e:
                with excutils.save_and_reraise_exception():
                    LOG.error('Preparing node %(node)s failed, releasing '
                              'what was set up: %(err)s',
                              {'node': node.uuid, 'err': e})
                    try:
                        self._release(task, power_off=False)
                    except Exception:
                        # Logged step by step; the first error is the news.
                        pass
        elif node.provision_state in (states.ACTIVE, states.ADOPTING):
            if node.provision_state == states.ADOPTING:
                # For whom it is adopted: a later lessee change is then
                # refused as after a deploy.
                rbd_iscsi.record_deployed_for(node)
                node.save()
            # Take over by this conductor: make sure the disk is exported
            # here and the iPXE configuration exists here.
            task.driver.storage.attach_volumes(task)
            ironic_deploy_utils.populate_storage_driver_internal_info(task)
            # A clone made again here (its disk was lost) has no record.
            _keep_network_record(task)
            task.driver.boot.prepare_instance(task)
            _publish_boot_files(task)

    @base.deploy_step(priority=100)
    @task_manager.require_exclusive_lock
    def deploy(self, task):
        """Boot the node from its disk. Synchronous: no callback needed."""
        node = task.node
        if not node.disable_power_off:
            manager_utils.node_power_action(task, states.POWER_OFF)
        # Renders the sanboot configuration from the boot VolumeTarget and
        # sets persistent network boot.
        task.driver.boot.prepare_instance(task)
        try:
            # Per-project mode: where the node's boot network finds them.
            _publish_boot_files(task)
            with manager_utils.power_state_for_network_configuration(task):
                task.driver.network.configure_tenant_networks(task)
            # The node must find its disk: tgtd may have died since prepare.
            _verify_export(task)
            manager_utils.node_power_action(task, states.POWER_ON)
        except Exception:
            with excutils.save_and_reraise_exception():
                # A failed deploy leaves no boot file (with its CHAP
                # secret) on the project's network.
                _withdraw_boot_files(task, raise_errors=False)
        LOG.info('Node %(node)s powered on to boot its BMI disk',
                 {'node': node.uuid})
        return None

    @task_manager.require_exclusive_lock
    def tear_down(self, task):
        """Power off, then release networks, disk and boot configuration.

        :returns: states.DELETED
        """
        self._release(task, power_off=not task.node.disable_power_off)
        return states.DELETED

    def clean_up(self, task):
        """Release what a deploy set up.

        After a failed deploy this releases everything, as ``tear_down``
        does; before a ``tear_down`` it only removes the boot configuration.
        """
        node = task.node
        if node.provision_state in _FAILED_DEPLOY_STATES:
            # Ironic 39.0.0's deploying_error_handler records the failure in
            # last_error, then calls this while the node is still DEPLOYING:
            # node_power_action clears last_error outside the failure
            # states, and when the node is off already too
            # (_can_skip_state_change), so the node would end in DEPLOYFAIL
            # with no last_error.  Put the failure back.
            error = node.last_error
            try:
                self._release(task, power_off=not node.disable_power_off)
            finally:
                if error and not node.last_error:
                    node.last_error = error
                    node.save()
        else:
            _withdraw_boot_files(task)
            task.driver.boot.clean_up_instance(task)

    def take_over(self, task):
        """Check that this conductor's gateway now serves the node.

        Ironic 39.0.0's ``_do_takeover`` calls ``prepare`` first, which
        exported this node alone on this conductor's gateway and pointed
        its VolumeTarget, its record in Ceph and its boot files there.
        """
        node = task.node
        node_export = _verify_export(task)
        heal.record(node, 'bmi: taken over by this conductor; the disk is '
                          'exported as %s at %s' % (node_export.target_iqn,
                                                    node_export.portal))

    @periodics.periodic(
        spacing=lambda: CONF.bmi.reconcile_interval,
        enabled=lambda: CONF.bmi.reconcile_interval > 0,
        run_immediately=True)
    def reconcile_exports(self, manager, context):
        """Heal this conductor's exports; sweep deleted nodes' leftovers.

        Ironic 39.0.0 collects the periodics of every enabled interface
        (base_manager._collect_periodic_tasks) and runs them in the
        conductor with (manager, context); run_immediately: the check at
        conductor start.  See :mod:`bmi_driver.deploy.heal`.
        """
        heal.reconcile(manager, context)

    def prepare_cleaning(self, task):
        """Nothing to prepare: a diskless node has nothing to erase."""
        LOG.info('Node %(node)s is diskless: no BMI cleaning steps',
                 {'node': task.node.uuid})
        return None

    def tear_down_cleaning(self, task):
        """Nothing was prepared for cleaning."""

    def _release(self, task, power_off=True):
        """Undo a deploy, every step even when an earlier one fails.

        Order: power off, leave tenant networks, unexport and delete the
        disk, remove the boot configuration, leave the provisioning network
        last (it carries the iSCSI traffic).

        :raises: the first error met, after trying every step.
        """
        node = task.node
        steps = []
        if power_off:
            steps.append(('powering off', lambda: (
                manager_utils.node_power_action(task, states.POWER_OFF))))
        steps += [
            ('leaving the tenant networks', lambda: _with_network_power(
                task, task.driver.network.unconfigure_tenant_networks)),
            ('detaching the disk',
             lambda: task.driver.storage.detach_volumes(task)),
            # Not Ironic's tear_down_storage_configuration: it destroys
            # every VolumeTarget of the node, also those bmi did not make.
            ('removing the storage configuration',
             lambda: rbd_iscsi.clear_storage_info(task)),
            ('removing the published boot files',
             lambda: _withdraw_boot_files(task)),
            ('removing the boot configuration',
             lambda: task.driver.boot.clean_up_instance(task)),
            ('leaving the provisioning network', lambda: _with_network_power(
                task, task.driver.network.remove_provisioning_network)),
        ]
        first_error = None
        for what, step in steps:
            try:
                step()
            except Exception as e:
                LOG.error('Node %(node)s: %(what)s failed: %(err)s',
                          {'node': node.uuid, 'what': what, 'err': e})
                first_error = first_error or e
        if first_error is not None:
            raise first_error


def _keep_network_record(task, previous=None):
    """Keep the network interface's deletion record with the clone.

    Ironic 39.0.0 deletes a node (also an ACTIVE one in maintenance)
    without calling any interface: the sweep of deleted nodes
    (:func:`heal.sweep_deleted`) finds what to undo in HIL in the clone's
    metadata (``layout.META_HIL_*``). Written only when it differs from
    ``previous``; a network interface without ``deletion_record`` (noop,
    flat) keeps none.

    :returns: the record (None without one).
    :raises: StorageError (Ceph), InvalidParameterValue,
        MissingParameterValue
    """
    deletion_record = getattr(task.driver.network, 'deletion_record', None)
    if deletion_record is None:
        return None
    record = deletion_record(task)
    if record != previous:
        with ironic_errors.translated('recording the node\'s HIL node with '
                                      'its disk', task.node.uuid):
            library.ImageLibrary().set_node_metadata(
                task.node.uuid, layout.hil_record_metadata(record))
    return record


def _verify_export(task):
    """The node's export, checked to be served (target, LUNs, account).

    :raises: StorageError naming what is missing.
    """
    with ironic_errors.translated('checking that its iSCSI export is '
                                  'served', task.node.uuid):
        return export_manager.get_manager().verify_export(task.node.uuid)


def _boot_macs(task):
    return sorted({p.address.lower() for p in task.ports if p.address})


def _publish_boot_files(task):
    """Per-project mode: copy the node's iPXE files to its project's root.

    After Ironic's ``prepare_instance`` wrote them into [deploy]
    http_root.  The root is recorded for :func:`_withdraw_boot_files`.

    :raises: InvalidParameterValue, MissingParameterValue, StorageError
    """
    node = task.node
    with ironic_errors.as_ironic():
        net = node_facts.boot_network(node)
    if net is None:
        return
    recorded = node.driver_internal_info.get(BOOT_FILES_ROOT)
    if recorded and recorded != net.http_root:
        # The project moved: nothing stays where it no longer belongs.
        _withdraw_from(task, recorded)
    if recorded != net.http_root:
        # Recorded first: a publish that fails half-way is withdrawn.
        node.set_driver_internal_info(BOOT_FILES_ROOT, net.http_root)
        node.save()
    with ironic_errors.translated('publishing the boot files', node.uuid):
        boot_files.publish(
            CONF.deploy.http_root, net.http_root, node.uuid,
            _boot_macs(task),
            os.path.basename(CONF.pxe.ipxe_boot_script),
            mode=int(CONF.bmi.boot_file_mode, 8),
            group=CONF.bmi.boot_file_group)


def _withdraw_from(task, root):
    with ironic_errors.translated('removing the boot files', task.node.uuid):
        boot_files.withdraw(root, task.node.uuid, _boot_macs(task))


def _withdraw_boot_files(task, raise_errors=True):
    """Remove the node's published iPXE files; idempotent.

    From the root recorded at publication and the project's current one.
    """
    node = task.node
    roots = []
    recorded = node.driver_internal_info.get(BOOT_FILES_ROOT)
    if recorded:
        roots.append(recorded)
    try:
        with ironic_errors.as_ironic():
            net = node_facts.boot_network(node)
        if net is not None and net.http_root not in roots:
            roots.append(net.http_root)
    except (ironic_exc.InvalidParameterValue,
            ironic_exc.MissingParameterValue) as e:
        LOG.debug('Node %(node)s: no current boot network (%(err)s)',
                  {'node': node.uuid, 'err': e})
    try:
        for root in roots:
            _withdraw_from(task, root)
    except Exception as e:
        if raise_errors:
            raise
        LOG.error('Node %(node)s: could not remove its boot files: '
                  '%(err)s', {'node': node.uuid, 'err': e})
        return
    if recorded:
        node.del_driver_internal_info(BOOT_FILES_ROOT)
        node.save()


def _with_network_power(task, method):
    with manager_utils.power_state_for_network_configuration(task):
        method(task)
