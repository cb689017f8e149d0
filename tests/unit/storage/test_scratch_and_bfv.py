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

"""Ephemeral and swap disks, and foreign boot volumes (issue 14 3, 4).

The bmi storage and deploy interfaces in Ironic's unit-test database,
Ceph and tgtd mocked (tests.unit.deploy.base).
"""

import dataclasses

from ironic.common import exception as ironic_exc
from ironic.common import states
from ironic.conductor import task_manager
from ironic import objects
from ironic.tests.unit.objects import utils as obj_utils

from bmi_driver import exception
from bmi_driver.storage import layout
from bmi_driver.storage import rbd_iscsi as bmi_storage
from tests.unit.deploy import base

GiB = 1024 ** 3
MiB = 1024 ** 2


class ScratchTestCase(base.BMITestCase):

    def setUp(self):
        super().setUp()
        self.set_state(states.DEPLOYING)
        self.scratch = {}
        self.mgr.target_iqn.side_effect = lambda u: base.IQN % u

        def ensure(node_uuid, kind, size, fmt, metadata, claim=(),
                   keep_any=False):
            old = self.scratch.get(kind)
            if old is not None and (keep_any or old.metadata.get(
                    layout.META_DEPLOYMENT) in claim):
                old.metadata.update(metadata)
                return old, True
            disk = layout.NodeDisk(
                node_uuid=node_uuid, pool='bmi-images',
                rbd_name='node-%s-%s' % (node_uuid, kind), size=size,
                metadata=dict(metadata, **{layout.META_FORMAT: fmt}))
            self.scratch[kind] = disk
            return disk, False

        def remove(node_uuid, kind):
            self.scratch.pop(kind, None)

        def remove_disk(node_uuid, stale_watch=False, keep_ephemeral=False):
            self.disk_exists = False
            self.scratch.pop('swap', None)
            if not keep_ephemeral:
                self.scratch.pop('ephemeral', None)

        self.lib.ensure_node_scratch.side_effect = ensure
        self.lib.remove_node_scratch.side_effect = remove
        self.lib.remove_node_disk.side_effect = remove_disk

        def export(node_uuid, **kwargs):
            luns = {1: self.disk.spec}
            for lun, kind in ((3, 'ephemeral'), (4, 'swap')):
                if kind in self.scratch:
                    luns[lun] = self.scratch[kind].spec
            return dataclasses.replace(self.export, luns=luns)

        self.mgr.export_node.side_effect = export

    def _info(self, **info):
        self.node.instance_info = dict(self.node.instance_info, **info)
        self.node.save()

    def _targets(self):
        return objects.VolumeTarget.list_by_node_id(self.context,
                                                    self.node.id)

    def _attach(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)

    def _validate(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.validate(task)

    # --- what Nova writes -------------------------------------------------

    def test_attach_makes_ephemeral_and_swap_as_nova_asks(self):
        # Nova 34.0.0 writes strings.
        self._info(ephemeral_gb='1', swap_mb='64', ephemeral_format='xfs')
        self._attach()
        calls = self.lib.ensure_node_scratch.call_args_list
        self.assertEqual(2, len(calls))
        deployment = self.node.driver_internal_info.get(
            bmi_storage.DEPLOYMENT)
        meta = {layout.META_DEPLOYMENT: deployment or '',
                layout.META_IQN: base.IQN % self.node.uuid}
        self.assertEqual(((self.node.uuid, 'ephemeral', GiB, 'xfs', meta),
                          {'claim': set(), 'keep_any': False}),
                         (calls[0][0], calls[0][1]))
        self.assertEqual(((self.node.uuid, 'swap', 64 * MiB, 'swap', meta),
                          {'claim': set(), 'keep_any': False}),
                         (calls[1][0], calls[1][1]))
        [target] = self._targets()
        self.assertEqual(3, target.properties['ephemeral_lun'])
        self.assertEqual(4, target.properties['swap_lun'])

    def test_default_format_is_ironics(self):
        # Nova writes ephemeral_format only when its [DEFAULT]
        # default_ephemeral_format is set: Ironic's [pxe] default (ext4).
        self._info(ephemeral_gb='2', swap_mb='0')
        self._attach()
        [call] = self.lib.ensure_node_scratch.call_args_list
        self.assertEqual(('ephemeral', 2 * GiB, 'ext4'), call[0][1:4])
        [target] = self._targets()
        self.assertNotIn('swap_lun', target.properties)
        self.config(default_ephemeral_format='ext3', group='pxe')
        self.lib.ensure_node_scratch.reset_mock()
        self.scratch.clear()
        self._attach()
        [call] = self.lib.ensure_node_scratch.call_args_list
        self.assertEqual('ext3', call[0][3])

    def test_none_asked_none_made(self):
        self._info(swap_mb='0')
        self._attach()
        self.lib.ensure_node_scratch.assert_not_called()
        [target] = self._targets()
        self.assertNotIn('ephemeral_lun', target.properties)

    def test_a_deploy_drops_disks_it_no_longer_asks_for(self):
        self._info(ephemeral_gb='1', swap_mb='64')
        self._attach()
        self._info(ephemeral_gb='0', swap_mb='0')
        self.disk.ephemeral = self.scratch['ephemeral']
        self.disk.swap = self.scratch['swap']
        self._attach()
        self.assertEqual({}, self.scratch)

    def test_a_fresh_clone_never_serves_a_leftover_ephemeral_disk(self):
        # A preserving rebuild that failed kept its ephemeral disk without
        # a clone; the next deploy (no ephemeral asked) makes a fresh clone,
        # whose record shows no other image, while the export serves what
        # Ceph has.
        self.scratch['ephemeral'] = layout.NodeDisk(
            node_uuid=self.node.uuid, pool='bmi-images',
            rbd_name='node-%s-ephemeral' % self.node.uuid, size=GiB,
            metadata={layout.META_DEPLOYMENT: 'of-another-lessee',
                      layout.META_FORMAT: 'ext4'})
        self._info(swap_mb='0')
        self._attach()
        self.assertEqual({}, self.scratch)
        [target] = self._targets()
        self.assertNotIn('ephemeral_lun', target.properties)

    def test_active_node_keeps_its_scratch_disks(self):
        self._info(ephemeral_gb='1', swap_mb='64')
        self._attach()
        self.set_state(states.ACTIVE)
        self.lib.ensure_node_scratch.reset_mock()
        self._attach()
        for call in self.lib.ensure_node_scratch.call_args_list:
            self.assertTrue(call[1]['keep_any'])
        self.lib.remove_node_scratch.assert_not_called()

    def test_active_node_is_not_refused_when_scratch_is_turned_off(self):
        self._info(ephemeral_gb='1', swap_mb='64')
        self._attach()
        self.set_state(states.ACTIVE)
        self.config(scratch_disks=False, group='bmi')
        self.lib.ensure_node_scratch.reset_mock()
        self._attach()
        self.lib.ensure_node_scratch.assert_not_called()
        self.lib.remove_node_scratch.assert_not_called()

    def test_failed_attach_removes_scratch_disks(self):
        self._info(ephemeral_gb='1', swap_mb='64')
        self.mgr.export_node.side_effect = exception.TargetDaemonUnavailable(
            reason='connection refused')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertRaises(ironic_exc.StorageError,
                              task.driver.storage.attach_volumes, task)
        self.lib.remove_node_disk.assert_called_once_with(
            self.node.uuid, stale_watch=True, keep_ephemeral=False)
        self.assertEqual({}, self.scratch)

    def test_format_error_is_a_storage_error(self):
        self._info(ephemeral_gb='1')
        self.lib.ensure_node_scratch.side_effect = (
            exception.ScratchFormatError(fmt='ext4', reason='mkfs died'))
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.StorageError,
                                  task.driver.storage.attach_volumes, task)
        self.assertIn('mkfs died', str(e))
        self.assertEqual([], self._targets())

    # --- validate ---------------------------------------------------------

    def test_validate_accepts_scratch(self):
        self._info(ephemeral_gb='1', swap_mb='64')
        self._validate()

    def test_validate_refuses_when_turned_off(self):
        self.config(scratch_disks=False, group='bmi')
        self._info(swap_mb='0', ephemeral_gb='0')
        self._validate()
        for field in ('ephemeral_gb', 'swap_mb'):
            self._info(**dict({'swap_mb': '0', 'ephemeral_gb': '0'},
                              **{field: '1'}))
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self._validate)
            self.assertIn('[bmi] scratch_disks is off', str(e))
            self.assertIn(field, str(e))
        self.lib.ensure_node_scratch.assert_not_called()

    def test_validate_bounds_and_formats(self):
        self.config(max_ephemeral_gb=10, max_swap_mb=128, group='bmi')
        for info, text in (({'ephemeral_gb': '11'}, 'max_ephemeral_gb'),
                           ({'swap_mb': '129'}, 'max_swap_mb'),
                           ({'swap_mb': 'lots'}, 'non-negative integer'),
                           ({'ephemeral_gb': '-1'}, 'non-negative integer'),
                           ({'ephemeral_gb': '1',
                             'ephemeral_format': 'ntfs'}, "'ntfs'")):
            self.node.instance_info = dict(image_source=base.IMAGE_UUID,
                                           **info)
            self.node.save()
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self._validate)
            self.assertIn(text, str(e))

    # --- rebuild with and without preserve_ephemeral ----------------------

    def _deploy_prepare(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.prepare(task)

    def test_rebuild_preserving_keeps_the_ephemeral_remakes_swap(self):
        self._info(ephemeral_gb='1', swap_mb='64')
        self._deploy_prepare()
        self.node.refresh()
        first = self.node.driver_internal_info[bmi_storage.DEPLOYMENT]
        eph, swap = self.scratch['ephemeral'], self.scratch['swap']
        self._info(preserve_ephemeral='True')
        self._deploy_prepare()
        self.node.refresh()
        second = self.node.driver_internal_info[bmi_storage.DEPLOYMENT]
        self.assertNotEqual(first, second)
        self.assertIs(eph, self.scratch['ephemeral'])
        self.assertEqual(second,
                         eph.metadata[layout.META_DEPLOYMENT])
        self.assertIsNot(swap, self.scratch['swap'])
        self.assertEqual(
            [first], self.node.driver_internal_info[bmi_storage.PRESERVE_FROM])
        self.lib.remove_node_disk.assert_called_once_with(
            self.node.uuid, stale_watch=True, keep_ephemeral=True)

    def test_rebuild_without_preserving_remakes_both(self):
        self._info(ephemeral_gb='1', swap_mb='64')
        self._deploy_prepare()
        eph = self.scratch['ephemeral']
        self._info(preserve_ephemeral='False')
        self._deploy_prepare()
        self.assertIsNot(eph, self.scratch['ephemeral'])
        self.node.refresh()
        self.assertNotIn(bmi_storage.PRESERVE_FROM,
                         self.node.driver_internal_info)

    def test_failed_preserving_rebuild_keeps_it_for_the_next(self):
        self._info(ephemeral_gb='1', swap_mb='64')
        self._deploy_prepare()
        eph = self.scratch['ephemeral']
        self._info(preserve_ephemeral='True')
        self.lib.clone_for_node.side_effect = exception.CephError(
            reason='pool gone')
        self.assertRaises(ironic_exc.StorageError, self._deploy_prepare)
        self.assertIs(eph, self.scratch['ephemeral'])
        self.node.refresh()
        self.assertTrue(self.node.driver_internal_info.get(
            bmi_storage.PRESERVE_FROM))
        self.lib.clone_for_node.side_effect = lambda *a, **k: self.disk
        self._deploy_prepare()
        self.assertIs(eph, self.scratch['ephemeral'])

    def test_preserving_rebuild_for_another_project_gets_a_blank_disk(self):
        # Ironic 39.0.0 lets an owner member change the lessee of an
        # ACTIVE node, then rebuild it: the old lessee's data stays hers.
        self._info(ephemeral_gb='1', swap_mb='64')
        self._deploy_prepare()
        eph = self.scratch['ephemeral']
        self.node.refresh()
        self.node.lessee = 'another-project'
        self.node.save()
        self._info(preserve_ephemeral='True')
        self._deploy_prepare()
        self.assertIsNot(eph, self.scratch['ephemeral'])
        self.lib.remove_node_disk.assert_called_once_with(
            self.node.uuid, stale_watch=True, keep_ephemeral=False)
        self.node.refresh()
        self.assertNotIn(bmi_storage.PRESERVE_FROM,
                         self.node.driver_internal_info)
        # The new project's own next preserving rebuild keeps its disk.
        eph = self.scratch['ephemeral']
        self._deploy_prepare()
        self.assertIs(eph, self.scratch['ephemeral'])

    def test_failed_preserving_rebuild_is_not_kept_for_another_project(self):
        self._info(ephemeral_gb='1', swap_mb='64')
        self._deploy_prepare()
        eph = self.scratch['ephemeral']
        self._info(preserve_ephemeral='True')
        self.lib.clone_for_node.side_effect = exception.CephError(
            reason='pool gone')
        self.assertRaises(ironic_exc.StorageError, self._deploy_prepare)
        self.assertIs(eph, self.scratch['ephemeral'])
        self.lib.clone_for_node.side_effect = lambda *a, **k: self.disk
        self.node.refresh()
        self.node.lessee = 'another-project'
        self.node.save()
        self._deploy_prepare()
        self.assertIsNot(eph, self.scratch['ephemeral'])

    def test_a_kept_ephemeral_no_longer_asked_for_is_not_exported(self):
        # A failed preserving rebuild keeps the ephemeral disk without a
        # clone; the next deploy's fresh clone does not list it (the
        # export reads Ceph, and would serve it as LUN 3).
        self._info(ephemeral_gb='1', swap_mb='64')
        self._deploy_prepare()
        self._info(preserve_ephemeral='True')
        self.lib.clone_for_node.side_effect = exception.CephError(
            reason='pool gone')
        self.assertRaises(ironic_exc.StorageError, self._deploy_prepare)
        self.assertIn('ephemeral', self.scratch)
        # What clone_for_node returns for a clone it has just made.
        self.disk.ephemeral = self.disk.swap = None
        self.lib.clone_for_node.side_effect = lambda *a, **k: self.disk
        self._info(preserve_ephemeral='False', ephemeral_gb='0')
        self._deploy_prepare()
        self.assertNotIn('ephemeral', self.scratch)
        [target] = self._targets()
        self.assertNotIn('ephemeral_lun', target.properties)

    def test_preserving_rebuild_without_its_volume_target(self):
        # A lessee admin may delete the node's VolumeTargets (Ironic
        # 39.0.0): prepare then sees no earlier disk, and the attach
        # removes the clone of the old deployment, but not the ephemeral.
        self._info(ephemeral_gb='1', swap_mb='64')
        self._deploy_prepare()
        eph = self.scratch['ephemeral']
        for target in self._targets():
            target.destroy()
        self._info(preserve_ephemeral='True')
        self._deploy_prepare()
        self.assertIs(eph, self.scratch['ephemeral'])
        self.lib.remove_node_disk.assert_called_once_with(
            self.node.uuid, keep_ephemeral=True)

    def test_undeploy_removes_everything(self):
        self._info(ephemeral_gb='1', swap_mb='64', preserve_ephemeral='True')
        self._deploy_prepare()
        self.set_state(states.DELETING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.tear_down(task)
        self.assertEqual({}, self.scratch)
        self.node.refresh()
        self.assertNotIn(bmi_storage.PRESERVE_FROM,
                         self.node.driver_internal_info)


class ForeignBootVolumeTestCase(base.BMITestCase):
    """A boot VolumeTarget bmi did not make: Nova's boot from volume."""

    def setUp(self):
        super().setUp()
        self.set_state(states.DEPLOYING)
        # What Nova 34.0.0's _add_volume_target_info writes: no extra.
        self.cinder = obj_utils.create_test_volume_target(
            self.context, node_id=self.node.id, boot_index=0,
            volume_type='iscsi', volume_id='cinder-vol-1',
            properties={'target_iqn': 'iqn.2010-10.org.openstack:vol'})

    def _targets(self):
        return objects.VolumeTarget.list_by_node_id(self.context,
                                                    self.node.id)

    def test_validate_refuses_it_clearly(self):
        # Nova writes no image_source for a boot from volume: the refusal
        # is about the volume, not "no instance_info/image_source".
        self.node.instance_info = {'root_gb': '0'}
        self.node.save()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  task.driver.deploy.validate, task)
        self.assertIn('cinder-vol-1', str(e))
        self.assertIn('bmi did not create', str(e))
        self.assertNotIn('image_source %', str(e))
        self.assertIn(self.cinder.uuid, str(e))
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertRaises(ironic_exc.InvalidParameterValue,
                              task.driver.storage.validate, task)

    def test_attach_never_overwrites_it(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.StorageError,
                                  task.driver.storage.attach_volumes, task)
        self.assertIn('cinder-vol-1', str(e))
        [target] = self._targets()
        self.assertEqual('cinder-vol-1', target.volume_id)
        self.assertEqual(self.cinder.properties, target.properties)

    def test_teardown_and_detach_never_delete_it(self):
        self.cinder.boot_index = 1   # a data volume next to bmi's disk
        self.cinder.save()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        self.assertEqual(2, len(self._targets()))
        self.set_state(states.DELETING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.tear_down(task)
        [target] = self._targets()
        self.assertEqual(self.cinder.uuid, target.uuid)
        self.node.refresh()
        self.assertNotIn('boot_from_volume', self.node.driver_internal_info)
