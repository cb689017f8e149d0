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

"""The bmi storage interface, in Ironic's unit-test database."""

import base64
import dataclasses
import gzip
from unittest import mock

from futurist import periodics as fp
from ironic.common import exception as ironic_exc
from ironic.common import states
from ironic.conductor import periodics
from ironic.conductor import task_manager
from ironic import objects
from ironic.tests.unit.objects import utils as obj_utils

from bmi_driver import exception
from bmi_driver.storage import layout
from bmi_driver.storage import rbd_iscsi as bmi_storage
from tests.unit.deploy import base

GiB = 1024 ** 3


class BMIStorageTestCase(base.BMITestCase):

    def setUp(self):
        super().setUp()
        self.set_state(states.DEPLOYING)

    def _targets(self):
        return objects.VolumeTarget.list_by_node_id(self.context,
                                                    self.node.id)

    def test_driver_is_bmi(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertIsInstance(task.driver.storage, bmi_storage.BMIStorage)
            self.assertFalse(task.driver.storage.should_write_image(task))

    def test_validate(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.validate(task)

    def test_validate_needs_iscsi_boot(self):
        self.node.properties = {'capabilities': 'boot_mode:uefi'}
        self.node.save()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  task.driver.storage.validate, task)
        self.assertIn('iscsi_boot:True', str(e))

    def test_attach_creates_boot_target(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
            self.assertEqual(1, len(task.volume_targets))

        self.lib.clone_for_node.assert_called_once_with(
            self.node.uuid, base.IMAGE_UUID, size=10 * GiB,
            project=base.LESSEE)
        self.lib.write_node_configdrive.assert_not_called()
        # A deploy: a fresh CHAP secret (issue 11).
        self.mgr.export_node.assert_called_once_with(
            self.node.uuid, initiator_iqn=None, fresh_credentials=True,
            portal=None, initiator_address=None)
        [target] = self._targets()
        self.assertEqual(0, target.boot_index)
        self.assertEqual('iscsi', target.volume_type)
        # Fits Ironic's String(36) column (MariaDB enforces it).
        self.assertEqual(self.node.uuid, target.volume_id)
        self.assertLessEqual(len(target.volume_id), 36)
        self.assertEqual({'target_portal': '192.0.2.10:3260',
                          'target_iqn': base.IQN % self.node.uuid,
                          'target_lun': 1,
                          'auth_method': 'CHAP',
                          'auth_username': base.CHAP_USER,
                          'auth_password': base.CHAP_SECRET},
                         target.properties)
        self.assertEqual('bmi', target.extra['managed_by'])

    def test_attach_passes_initiator_from_connector(self):
        obj_utils.create_test_volume_connector(
            self.context, node_id=self.node.id, type='iqn',
            connector_id='iqn.2026-11.test:node1')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        self.mgr.export_node.assert_called_once_with(
            self.node.uuid, initiator_iqn='iqn.2026-11.test:node1',
            fresh_credentials=True, portal=None, initiator_address=None)

    def test_attach_on_the_projects_boot_network(self):
        self.boot_networks({base.LESSEE: {
            'hil_network': 'boot-a', 'portal': '10.78.1.1:3260',
            'cidr': '10.78.1.0/24', 'http_root': '/srv/bmi-boot/a'}})
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.validate(task)
            task.driver.storage.attach_volumes(task)
        self.mgr.export_node.assert_called_once_with(
            self.node.uuid, initiator_iqn=None, fresh_credentials=True,
            portal='10.78.1.1:3260', initiator_address='10.78.1.0/24')

    def test_validate_refuses_a_project_without_boot_network(self):
        self.boot_networks({'someone-else': {
            'hil_network': 'boot-b', 'portal': '10.78.2.1',
            'cidr': '10.78.2.0/24', 'http_root': '/srv/bmi-boot/b'}})
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  task.driver.storage.validate, task)
            self.assertIn('has no boot network', str(e))
            self.assertRaises(ironic_exc.InvalidParameterValue,
                              task.driver.storage.attach_volumes, task)
        self.mgr.export_node.assert_not_called()
        self.lib.clone_for_node.assert_not_called()

    def test_attach_without_chap(self):
        self.mgr.export_node.return_value = dataclasses.replace(
            self.export, chap_username=None, chap_secret=None)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        [target] = self._targets()
        self.assertNotIn('auth_password', target.properties)
        self.assertNotIn('auth_method', target.properties)

    def test_attach_stores_configdrive(self):
        iso = b'CD001' + b'\0' * 2043
        self.node.instance_info = dict(
            self.node.instance_info,
            configdrive=base64.b64encode(gzip.compress(iso)).decode())
        self.node.save()
        self.mgr.export_node.return_value = dataclasses.replace(
            self.export, luns={1: self.disk.spec,
                               2: self.disk.spec + '-config'})
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        self.lib.write_node_configdrive.assert_called_once_with(
            self.node.uuid, iso)
        [target] = self._targets()
        self.assertEqual(2, target.properties['config_drive_lun'])

    def test_attach_is_idempotent(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        [first] = self._targets()
        self.mgr.export_node.return_value = dataclasses.replace(
            self.export, chap_secret='another-secret-456')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        [second] = self._targets()
        self.assertEqual(first.uuid, second.uuid)
        self.assertEqual('another-secret-456',
                         second.properties['auth_password'])

    # An operator's or Cinder's boot VolumeTarget (no managed_by): see
    # tests/unit/storage/test_scratch_and_bfv.py, never overwritten.

    def test_attach_failure_removes_what_was_made(self):
        self.mgr.export_node.side_effect = exception.TargetDaemonUnavailable(
            reason='connection refused')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.StorageError,
                                  task.driver.storage.attach_volumes, task)
        self.assertIn('connection refused', str(e))
        self.assertIn(self.node.uuid, str(e))
        self.mgr.unexport_node.assert_called_once_with(self.node.uuid)
        self.lib.remove_node_disk.assert_called_once_with(
            self.node.uuid, stale_watch=True, keep_ephemeral=False)
        self.assertEqual([], self._targets())

    def test_attach_unknown_image_is_invalid(self):
        self.lib.clone_for_node.side_effect = exception.ImageNotFound(
            image=base.IMAGE_UUID)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  task.driver.storage.attach_volumes, task)
        self.assertIn(base.IMAGE_UUID, str(e))
        self.mgr.export_node.assert_not_called()

    def test_attach_failure_on_active_node_keeps_the_disk(self):
        self.set_state(states.ACTIVE)
        self.mgr.export_node.side_effect = exception.ExportError(
            reason='boom')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertRaises(ironic_exc.StorageError,
                              task.driver.storage.attach_volumes, task)
        self.lib.remove_node_disk.assert_not_called()
        self.mgr.unexport_node.assert_not_called()

    def test_attach_on_active_node_keeps_its_disk(self):
        self.set_state(states.ACTIVE)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        self.lib.clone_for_node.assert_not_called()
        # Power on or take over: the running OS keeps its credentials.
        self.mgr.export_node.assert_called_once_with(
            self.node.uuid, initiator_iqn=None, fresh_credentials=False,
            portal=None, initiator_address=None)
        self.assertEqual(1, len(self._targets()))

    def test_power_on_refused_for_a_changed_lessee(self):
        # Ironic's power on of an ACTIVE node attaches its volumes: after
        # the lessee changed, the disk is not exported for the new one.
        self.node.set_driver_internal_info(
            bmi_storage.DEPLOYED_FOR,
            {'project': base.LESSEE, 'boot_network': None})
        self.node.lessee = 'tenant-b'
        self.node.save()
        self.set_state(states.ACTIVE)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            with mock.patch.object(bmi_storage.LOG, 'error') as error:
                self.assertRaises(ironic_exc.InvalidParameterValue,
                                  task.driver.storage.attach_volumes, task)
        self.mgr.export_node.assert_not_called()
        self.lib.remove_node_disk.assert_not_called()
        self.assertEqual('tenant-b', error.call_args[0][1]['new']['project'])

    # --- deployments (issue 12) --------------------------------------------

    def _with_deployment(self, node_has, disk_has):
        if node_has:
            self.node.driver_internal_info = {
                bmi_storage.DEPLOYMENT: node_has}
            self.node.save()
        self.disk_exists = True
        if disk_has:
            self.disk.metadata[layout.META_DEPLOYMENT] = disk_has
            self.disk.metadata[layout.META_OWNER] = self.mgr.iqn_prefix()

    def test_deploying_removes_a_clone_of_another_deployment(self):
        # A node re-enrolled with the UUID of a deleted one.
        self._with_deployment('new', 'old')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        self.mgr.unexport_node.assert_called_once_with(self.node.uuid)
        self.lib.remove_node_disk.assert_called_once_with(
            self.node.uuid, keep_ephemeral=False)
        self.lib.clone_for_node.assert_called_once()
        self.assertEqual('new', self.disk.metadata[layout.META_DEPLOYMENT])
        # Ours even once its export record is gone (heal._ours).
        self.assertEqual('iqn.2026-11.org.massopen.bmi',
                         self.disk.metadata[layout.META_OWNER])
        self.assertTrue(
            self.mgr.export_node.call_args.kwargs['fresh_credentials'])

    def test_deploying_removes_a_clone_without_deployment(self):
        self._with_deployment('new', None)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        self.lib.remove_node_disk.assert_called_once_with(
            self.node.uuid, keep_ephemeral=False)

    def test_deploying_reuses_its_own_clone(self):
        self._with_deployment('same', 'same')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        self.lib.remove_node_disk.assert_not_called()
        self.lib.set_node_metadata.assert_not_called()

    def test_active_node_refuses_a_clone_of_another_deployment(self):
        self.set_state(states.ACTIVE)
        self._with_deployment('mine', 'someone-elses')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.StorageError,
                                  task.driver.storage.attach_volumes, task)
        self.assertIn('someone-elses', str(e))
        self.mgr.export_node.assert_not_called()
        self.lib.remove_node_disk.assert_not_called()

    def test_active_node_deployed_before_deployments_keeps_its_disk(self):
        self.set_state(states.ACTIVE)
        self._with_deployment(None, None)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        self.mgr.export_node.assert_called_once()

    def test_adoption_refuses_a_clone_of_another_deployment(self):
        # A node deleted while ACTIVE, its UUID enrolled again (for
        # another project) and adopted: Ironic 39's adoption calls prepare
        # without a deploy, so the node has no deployment of its own.
        self.set_state(states.ADOPTING)
        self._with_deployment(None, 'of-the-deleted-node')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.StorageError,
                                  task.driver.storage.attach_volumes, task)
        self.assertIn('never reused nor exported', str(e))
        self.lib.clone_for_node.assert_not_called()
        self.mgr.export_node.assert_not_called()
        # Left to the sweep of nodes at rest, which releases HIL first.
        self.mgr.unexport_node.assert_not_called()
        self.lib.remove_node_disk.assert_not_called()
        self.assertEqual([], self._targets())

    def test_adoption_without_a_disk_gets_a_clone(self):
        self.set_state(states.ADOPTING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        self.lib.clone_for_node.assert_called_once()
        self.mgr.export_node.assert_called_once()

    def test_attach_on_active_node_that_lost_its_disk(self):
        self.set_state(states.ACTIVE)
        self.lib.get_node_disk.side_effect = exception.CloneNotFound(
            node=self.node.uuid, clone='node-x')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        self.lib.clone_for_node.assert_called_once_with(
            self.node.uuid, base.IMAGE_UUID, size=10 * GiB,
            project=base.LESSEE)

    def test_attach_on_active_node_does_not_rewrite_configdrive(self):
        self.set_state(states.ACTIVE)
        self.node.instance_info = dict(self.node.instance_info,
                                       configdrive='H4sI')
        self.node.save()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        self.lib.write_node_configdrive.assert_not_called()

    def test_detach_removes_disk_export_and_target(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        other = obj_utils.create_test_volume_target(
            self.context, node_id=self.node.id, boot_index=1,
            volume_type='iscsi', volume_id='data',
            uuid='1be26c0b-03f2-4d2e-ae87-c02d7f33c781')
        self.set_state(states.DELETING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.detach_volumes(task)
            self.assertEqual([other.uuid],
                             [t.uuid for t in task.volume_targets])
        self.mgr.unexport_node.assert_called_once_with(self.node.uuid)
        self.lib.remove_node_disk.assert_called_once_with(
            self.node.uuid, stale_watch=True, keep_ephemeral=False)
        self.assertEqual([other.uuid], [t.uuid for t in self._targets()])

    def test_detach_removes_the_disk_when_tgtd_is_down(self):
        # Issue 12: a rollback or undeploy with tgtd dead still removes
        # the clone and the VolumeTarget.
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        self.mgr.unexport_node.side_effect = (
            exception.TargetDaemonUnavailable(reason='no tgtd socket'))
        self.set_state(states.DELETING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.detach_volumes(task)
        self.lib.remove_node_disk.assert_called_once_with(
            self.node.uuid, stale_watch=True, keep_ephemeral=False)
        self.assertEqual([], self._targets())

    def test_detach_keeps_the_target_when_ceph_fails(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        self.lib.remove_node_disk.side_effect = exception.CephPoolFull(
            pool='bmi-images', reason='Ceph flags it full_quota')
        self.set_state(states.DELETING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.StorageError,
                                  task.driver.storage.detach_volumes, task)
        self.assertIn('quota', str(e))
        self.assertEqual(1, len(self._targets()))

    def test_detach_volume_target_already_gone(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        self.set_state(states.DELETING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            for t in self._targets():
                objects.VolumeTarget.get_by_uuid(self.context,
                                                 t.uuid).destroy()
            task.driver.storage.detach_volumes(task)
        self.assertEqual([], self._targets())

    def test_sweep_periodic(self):
        self.lib.sweep_removed_disks.return_value = (['node-x'], [])
        storage = bmi_storage.BMIStorage()
        storage.sweep_removed_disks(mock.Mock(), self.context)
        self.lib.sweep_removed_disks.assert_called_once_with()
        self.lib.sweep_removed_disks.side_effect = exception.CephError(
            reason='down')
        storage.sweep_removed_disks(mock.Mock(), self.context)

    def test_sweep_periodic_sweeps_unsealed_images_first(self):
        """One a killed node snapshot left keeps the node's disk trashed."""
        order = []
        self.lib.sweep_unsealed.side_effect = lambda: order.append('img')
        self.lib.sweep_removed_disks.side_effect = (
            lambda: order.append('trash') or ([], []))
        storage = bmi_storage.BMIStorage()
        storage.sweep_removed_disks(mock.Mock(), self.context)
        self.assertEqual(['img', 'trash'], order)
        # A failure of one does not stop the other.
        self.lib.sweep_unsealed.side_effect = exception.CephError(
            reason='down')
        storage.sweep_removed_disks(mock.Mock(), self.context)
        self.assertEqual(['img', 'trash', 'trash'], order)

    def test_sweep_periodic_spacing_is_an_option(self):
        self.config(sweep_interval=7, group='ceph')
        method = bmi_storage.BMIStorage.sweep_removed_disks
        periodics.refresh_periodic_attributes(method)
        self.assertTrue(fp.is_periodic(method))
        self.assertEqual(7, method._periodic_spacing)
        self.config(sweep_interval=0, group='ceph')
        periodics.refresh_periodic_attributes(method)
        self.assertFalse(method._is_periodic)

    def test_detach_is_idempotent(self):
        self.set_state(states.DELETING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.detach_volumes(task)
            task.driver.storage.detach_volumes(task)
        self.assertEqual(2, self.lib.remove_node_disk.call_count)

    def test_detach_keeps_the_disk_of_an_active_node(self):
        # Ironic detaches volumes whenever an active node is powered off.
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        self.set_state(states.ACTIVE)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.detach_volumes(task)
        self.mgr.unexport_node.assert_not_called()
        self.lib.remove_node_disk.assert_not_called()
        self.assertEqual(1, len(self._targets()))

    def test_detach_failure_is_a_storage_error_and_keeps_the_target(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        self.set_state(states.DELETING)
        self.lib.remove_node_disk.side_effect = exception.ImageBusy(
            image='node-x', reason='open elsewhere')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertRaises(ironic_exc.StorageError,
                              task.driver.storage.detach_volumes, task)
        self.assertEqual(1, len(self._targets()))

    def test_secret_not_logged(self):
        log = self._patch(bmi_storage, 'LOG')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        logged = repr(log.mock_calls)
        self.assertIn('boots from', logged)
        self.assertNotIn(base.CHAP_SECRET, logged)
