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

"""The bmi deploy interface, in Ironic's unit-test database."""

from unittest import mock

import fixtures

from ironic.common import exception as ironic_exc
from ironic.common import states
from ironic.conductor import task_manager
from ironic.conductor import utils as manager_utils
from ironic.drivers.modules import ipxe
from ironic.drivers.modules.network import noop as noop_net
from ironic import objects

from bmi_driver.deploy import diskless as bmi_deploy
from bmi_driver import exception
from bmi_driver.storage import layout
from bmi_driver.storage import rbd_iscsi as bmi_storage
from tests.unit.deploy import base


class BMIDeployTestCase(base.BMITestCase):

    def setUp(self):
        super().setUp()
        # One recorder for everything the interface asks of the others, so
        # the order of the calls can be checked.
        self.calls = mock.Mock()
        for name in ('validate', 'add_provisioning_network',
                     'remove_provisioning_network',
                     'configure_tenant_networks',
                     'unconfigure_tenant_networks'):
            self.calls.attach_mock(
                self._patch(noop_net.NoopNetwork, name), name)
        for name in ('prepare_instance', 'clean_up_instance'):
            self.calls.attach_mock(self._patch(ipxe.iPXEBoot, name), name)
        for name in ('attach_volumes', 'detach_volumes'):
            self.calls.attach_mock(
                mock.patch.object(bmi_storage.BMIStorage, name,
                                  autospec=True,
                                  side_effect=getattr(
                                      bmi_storage.BMIStorage,
                                      name)).start(), name)
        self.addCleanup(mock.patch.stopall)
        self.power_patch = mock.patch.object(manager_utils,
                                             'node_power_action',
                                             autospec=True)
        self.calls.attach_mock(self.power_patch.start(), 'power')

    def _mark(self):
        # Autospecced functions cannot be reset: remember where we are.
        self._seen = len(self.calls.mock_calls)

    def _names(self):
        out = []
        for call in self.calls.mock_calls[getattr(self, '_seen', 0):]:
            name, args = call[0], call[1]
            out.append('power %s' % args[1] if name == 'power' else name)
        return out

    def _targets(self):
        return objects.VolumeTarget.list_by_node_id(self.context,
                                                    self.node.id)

    # --- validate ---------------------------------------------------------

    def test_validate(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.validate(task)
        self.lib.resolve_source.assert_called_once_with(
            base.IMAGE_UUID, project=base.LESSEE)
        self.mgr.check.assert_called_once_with()
        self.lib.clone_for_node.assert_not_called()

    def test_validate_checks_ceph_capacity(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.validate(task)
        self.lib.check_capacity.assert_called_once_with()

    def test_validate_refuses_a_full_pool(self):
        self.lib.check_capacity.side_effect = exception.CephPoolFull(
            pool='bmi-images', reason='100 of its quota of 100 objects used')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  task.driver.deploy.validate, task)
        self.assertIn('Ceph pool bmi-images is full (quota', str(e))
        self.lib.clone_for_node.assert_not_called()

    def test_validate_asks_the_network_interface(self):
        # HIL refuses at the API call, before DEPLOYING.
        self.calls.validate.side_effect = ironic_exc.InvalidParameterValue(
            'Deploy refused: HIL node n is not available to project p of '
            'node u.')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  task.driver.deploy.validate, task)
        self.assertIn('Deploy refused', str(e))
        self.lib.resolve_source.assert_not_called()
        self.lib.clone_for_node.assert_not_called()

    def test_validate_unknown_image(self):
        self.lib.resolve_source.side_effect = exception.ImageNotFound(
            image=base.IMAGE_UUID)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  task.driver.deploy.validate, task)
        self.assertIn('Image %s not found' % base.IMAGE_UUID, str(e))
        self.lib.clone_for_node.assert_not_called()
        self.mgr.export_node.assert_not_called()

    def test_validate_image_of_another_project(self):
        self.lib.resolve_source.side_effect = exception.ImageNotVisible(
            image=base.IMAGE_UUID, owner='owner-x', project=base.LESSEE)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  task.driver.deploy.validate, task)
        self.assertIn('private to another project', str(e))
        # Issue 13: the owner is not told to another project.
        self.assertNotIn('owner-x', str(e))

    def test_validate_project_from_nova_instance_info(self):
        # Issue 11: Nova's project_id counts only when trusted.
        self.config(trust_instance_project_id=True, group='bmi')
        self.node.lessee = None
        self.node.owner = 'owner-project'
        self.node.instance_info = dict(self.node.instance_info,
                                       project_id='nova-project')
        self.node.save()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.validate(task)
        self.lib.resolve_source.assert_called_once_with(
            base.IMAGE_UUID, project='nova-project')

    def test_validate_forged_project_id_is_not_used(self):
        self.node.lessee = None
        self.node.owner = 'owner-project'
        self.node.instance_info = dict(self.node.instance_info,
                                       project_id='victim-project')
        self.node.save()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.validate(task)
        self.lib.resolve_source.assert_called_once_with(
            base.IMAGE_UUID, project='owner-project')

    def test_validate_node_without_project(self):
        # None, not ANY_PROJECT: the library allows public images only.
        self.node.lessee = None
        self.node.owner = None
        self.node.save()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.validate(task)
        self.lib.resolve_source.assert_called_once_with(
            base.IMAGE_UUID, project=None)

    def test_validate_refuses_configdrive_url(self):
        self.node.instance_info = dict(
            self.node.instance_info,
            configdrive='http://127.0.0.1:6385/v1/nodes')
        self.node.save()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  task.driver.deploy.validate, task)
        self.assertIn('config drive URL is refused', str(e))
        self.assertNotIn('6385/v1', str(e))
        self.lib.clone_for_node.assert_not_called()

    def test_validate_missing_image_source(self):
        self.node.instance_info = {}
        self.node.save()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.MissingParameterValue,
                                  task.driver.deploy.validate, task)
        self.assertIn('image_source', str(e))

    def test_validate_image_source_not_a_uuid(self):
        self.node.instance_info = {'image_source': 'debian-12'}
        self.node.save()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  task.driver.deploy.validate, task)
        self.assertIn('not a UUID', str(e))
        self.lib.resolve_source.assert_not_called()

    def test_validate_bad_root_gb(self):
        self.node.instance_info = dict(self.node.instance_info,
                                       root_gb='ten')
        self.node.save()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertRaises(ironic_exc.InvalidParameterValue,
                              task.driver.deploy.validate, task)

    def test_validate_root_gb_over_the_operator_bound(self):
        # Issue 13: refused at validate, before anything is cloned.
        self.config(max_root_gb=100, group='bmi')
        self.node.instance_info = dict(self.node.instance_info,
                                       root_gb=101)
        self.node.save()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  task.driver.deploy.validate, task)
        self.assertIn('max_root_gb', str(e))
        self.lib.clone_for_node.assert_not_called()

    def test_validate_needs_iscsi_boot(self):
        self.node.properties = {}
        self.node.save()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  task.driver.deploy.validate, task)
        self.assertIn('iscsi_boot', str(e))
        self.lib.resolve_source.assert_not_called()

    def test_validate_ceph_unreachable(self):
        self.lib.resolve_source.side_effect = exception.CephConnectionError(
            conf='/etc/ceph/ceph.conf', user='bmi', reason='timed out')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  task.driver.deploy.validate, task)
        self.assertIn('Cannot connect to the Ceph cluster', str(e))

    def test_validate_tgtd_unreachable(self):
        self.mgr.check.side_effect = exception.TargetDaemonUnavailable(
            reason='tgtadm: connection refused')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  task.driver.deploy.validate, task)
        self.assertIn('iSCSI target daemon is not reachable', str(e))

    def test_validate_needs_http_url(self):
        self.config(http_url=None, group='deploy')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  task.driver.deploy.validate, task)
        self.assertIn('http_url', str(e))

    # --- prepare ----------------------------------------------------------

    def test_prepare(self):
        self.set_state(states.DEPLOYING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.prepare(task)
            [target] = task.volume_targets
            self.assertEqual(
                target.uuid,
                task.node.driver_internal_info['boot_from_volume'])
            self.assertEqual('whole-disk',
                             task.node.instance_info['image_type'])
        self.assertEqual(['validate', 'power power off', 'attach_volumes',
                          'add_provisioning_network'], self._names())

    def test_prepare_failure_releases_everything(self):
        self.set_state(states.DEPLOYING)
        self.calls.add_provisioning_network.side_effect = (
            ironic_exc.NetworkError('HIL said no'))
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.NetworkError,
                                  task.driver.deploy.prepare, task)
            self.assertNotIn('boot_from_volume',
                             task.node.driver_internal_info)
        self.assertIn('HIL said no', str(e))
        self.assertEqual(
            ['validate', 'power power off', 'attach_volumes',
             'add_provisioning_network', 'unconfigure_tenant_networks',
             'detach_volumes', 'clean_up_instance',
             'remove_provisioning_network'], self._names())
        self.lib.remove_node_disk.assert_called_once_with(
            self.node.uuid, stale_watch=True, keep_ephemeral=False)
        self.assertEqual([], self._targets())

    def test_prepare_network_invalid_creates_nothing(self):
        self.set_state(states.DEPLOYING)
        self.calls.validate.side_effect = ironic_exc.InvalidParameterValue(
            'HIL unreachable')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertRaises(ironic_exc.InvalidParameterValue,
                              task.driver.deploy.prepare, task)
        self.assertEqual(['validate'], self._names())
        self.lib.clone_for_node.assert_not_called()

    def test_prepare_rebuild_gives_a_fresh_disk(self):
        self.set_state(states.DEPLOYING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.storage.attach_volumes(task)
        self._mark()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.prepare(task)
        self.assertEqual(
            ['validate', 'power power off', 'unconfigure_tenant_networks',
             'clean_up_instance', 'detach_volumes', 'attach_volumes',
             'add_provisioning_network'], self._names())
        self.lib.remove_node_disk.assert_called_once_with(
            self.node.uuid, stale_watch=True, keep_ephemeral=False)
        self.assertEqual(2, self.lib.clone_for_node.call_count)
        self.assertEqual(1, len(self._targets()))

    def _network_record(self, records):
        record = mock.patch.object(noop_net.NoopNetwork, 'deletion_record',
                                   create=True, side_effect=records)
        self.addCleanup(record.stop)
        return record.start()

    def test_prepare_keeps_the_network_record_with_the_clone(self):
        self.set_state(states.DEPLOYING)
        before = {'node': 'hil-1', 'project': 'p1', 'connected': False}
        after = dict(before, connected=True)
        self._network_record([before, after])
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.prepare(task)
        # Before HIL is asked to change anything, and once connected.
        self.assertEqual(
            [mock.call(self.node.uuid, layout.hil_record_metadata(before)),
             mock.call(self.node.uuid, layout.hil_record_metadata(after))],
            self.lib.set_node_metadata.call_args_list[-2:])
        self.assertEqual({layout.META_HIL_NODE: 'hil-1',
                          layout.META_HIL_PROJECT: 'p1',
                          layout.META_HIL_CONNECTED: '1'},
                         layout.hil_record_metadata(after))
        self.assertEqual(after, layout.hil_record(
            layout.hil_record_metadata(after)))

    def test_unchanged_network_record_is_written_once(self):
        self.set_state(states.DEPLOYING)
        record = {'node': 'hil-1', 'project': 'p1', 'connected': False}
        self._network_record([record, dict(record)])
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.prepare(task)
        written = [c for c in self.lib.set_node_metadata.call_args_list
                   if layout.META_HIL_NODE in c[0][1]]
        self.assertEqual(1, len(written))

    def test_prepare_takeover_of_active_node(self):
        self.set_state(states.ACTIVE)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.prepare(task)
        self.assertEqual(['attach_volumes', 'prepare_instance'],
                         self._names())

    # --- deploy -----------------------------------------------------------

    def test_deploy_step(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            steps = task.driver.deploy.get_deploy_steps(task)
        self.assertEqual([{'step': 'deploy', 'priority': 100,
                           'argsinfo': None, 'interface': 'deploy',
                           'abortable': True}], steps)

    def test_deploy(self):
        self.set_state(states.DEPLOYING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertIsNone(task.driver.deploy.deploy(task))
        self.assertEqual(['power power off', 'prepare_instance',
                          'configure_tenant_networks', 'power power on'],
                         self._names())

    def test_deploy_keeps_power_with_disable_power_off(self):
        self.node.disable_power_off = True
        self.set_state(states.DEPLOYING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.deploy(task)
        self.assertEqual(['prepare_instance', 'configure_tenant_networks',
                          'power power on'], self._names())

    # --- undeploy ---------------------------------------------------------

    def _deployed(self):
        self.set_state(states.DEPLOYING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.prepare(task)
        self._mark()

    def test_tear_down(self):
        self._deployed()
        self.set_state(states.DELETING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertEqual(states.DELETED,
                             task.driver.deploy.tear_down(task))
            self.assertNotIn('boot_from_volume',
                             task.node.driver_internal_info)
        self.assertEqual(
            ['power power off', 'unconfigure_tenant_networks',
             'detach_volumes', 'clean_up_instance',
             'remove_provisioning_network'], self._names())
        self.mgr.unexport_node.assert_called_once_with(self.node.uuid)
        self.lib.remove_node_disk.assert_called_once_with(
            self.node.uuid, stale_watch=True, keep_ephemeral=False)
        self.assertEqual([], self._targets())

    def test_tear_down_tries_every_step_and_raises_the_first_error(self):
        self._deployed()
        self.set_state(states.DELETING)
        self.calls.unconfigure_tenant_networks.side_effect = (
            ironic_exc.NetworkError('switch down'))
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.NetworkError,
                                  task.driver.deploy.tear_down, task)
        self.assertIn('switch down', str(e))
        self.assertIn('remove_provisioning_network', self._names())
        self.lib.remove_node_disk.assert_called_once_with(
            self.node.uuid, stale_watch=True, keep_ephemeral=False)

    def test_clean_up_after_failed_deploy_releases_everything(self):
        self._deployed()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.clean_up(task)
        self.assertEqual(
            ['power power off', 'unconfigure_tenant_networks',
             'detach_volumes', 'clean_up_instance',
             'remove_provisioning_network'], self._names())
        self.assertEqual([], self._targets())

    def test_failed_deploy_step_keeps_its_last_error(self):
        # Ironic's own failure handler and power action (fake power, the
        # node off already): the node ends in DEPLOYFAIL saying why.
        self._deployed()
        self.power_patch.stop()
        self.node.power_state = states.POWER_OFF
        self.node.save()
        msg = 'Deploy step deploy.deploy failed: tgtd is gone.'
        with task_manager.acquire(self.context, self.node.uuid) as task:
            manager_utils.deploying_error_handler(task, 'failed', msg)
        self.node.refresh()
        self.assertEqual(states.DEPLOYFAIL, self.node.provision_state)
        self.assertEqual(msg, self.node.last_error)
        self.assertEqual([], self._targets())

    def test_clean_up_before_tear_down_only_removes_boot_config(self):
        self._deployed()
        self.set_state(states.DELETING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.clean_up(task)
        self.assertEqual(['clean_up_instance'], self._names())
        self.lib.remove_node_disk.assert_not_called()

    def test_take_over_checks_this_node_is_served(self):
        self.set_state(states.ACTIVE)
        self.mgr.verify_export.return_value = self.export
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.take_over(task)
        self.mgr.verify_export.assert_called_once_with(self.node.uuid)
        # Only this node: never every clone of the pool.
        self.mgr.reconcile.assert_not_called()
        [event] = objects.NodeHistory.list_by_node_id(self.context,
                                                      self.node.id)
        self.assertIn('taken over', event.event)
        self.assertIn(self.export.portal, event.event)
        self.assertNotIn(base.CHAP_SECRET, event.event)

    def test_take_over_tgtd_down(self):
        self.mgr.verify_export.side_effect = (
            exception.TargetDaemonUnavailable(reason='down'))
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertRaises(ironic_exc.StorageError,
                              task.driver.deploy.take_over, task)

    def test_take_over_prepare_exports_at_this_gateway(self):
        # Ironic 39.0.0 _do_takeover: prepare, then take_over.
        self.set_state(states.ACTIVE)
        self.boot_networks({base.LESSEE: {
            'hil_network': 'boot-a', 'portal': '10.78.1.2:3260',
            'cidr': '10.78.1.0/24', 'http_root': self.useFixture(
                fixtures.TempDir()).path}})
        self.mgr.verify_export.return_value = self.export
        with mock.patch.object(bmi_deploy, '_publish_boot_files'):
            with task_manager.acquire(self.context, self.node.uuid) as task:
                task.driver.deploy.prepare(task)
                task.driver.deploy.take_over(task)
        kwargs = self.mgr.export_node.call_args.kwargs
        self.assertEqual('10.78.1.2:3260', kwargs['portal'])
        self.assertFalse(kwargs['fresh_credentials'])
        self.lib.clone_for_node.assert_not_called()

    def test_deploy_fails_before_power_on_when_not_served(self):
        self.set_state(states.DEPLOYING)
        self.mgr.verify_export.side_effect = exception.ExportNotServed(
            node=self.node.uuid, reason='no target x')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.StorageError,
                                  task.driver.deploy.deploy, task)
        self.assertIn('not served', str(e))
        self.assertNotIn('power power on', self._names())

    def test_prepare_gives_a_new_deployment_each_time(self):
        self.set_state(states.DEPLOYING)
        seen = []
        for _ in range(2):
            with task_manager.acquire(self.context, self.node.uuid) as task:
                task.driver.deploy.prepare(task)
                seen.append(task.node.driver_internal_info[
                    bmi_storage.DEPLOYMENT])
        self.assertNotEqual(seen[0], seen[1])
        self.assertEqual(seen[1],
                         self.disk.metadata[layout.META_DEPLOYMENT])

    def test_take_over_refused_when_the_lessee_changed(self):
        # Ironic 39.0.0 lets the owner's members change the lessee of an
        # ACTIVE node: its disk is not exported, nor its boot files (its
        # CHAP secret) published, for the new project.
        root_a = self.useFixture(fixtures.TempDir()).path
        root_b = self.useFixture(fixtures.TempDir()).path
        self.boot_networks({
            base.LESSEE: {'hil_network': 'boot-a', 'portal': '10.78.1.2:3260',
                          'cidr': '10.78.1.0/24', 'http_root': root_a},
            'tenant-b': {'hil_network': 'boot-b', 'portal': '10.78.2.2:3260',
                         'cidr': '10.78.2.0/24', 'http_root': root_b}})
        self.set_state(states.DEPLOYING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.prepare(task)
        self.assertEqual(
            {'project': base.LESSEE, 'boot_network': 'boot-a'},
            objects.Node.get_by_uuid(self.context, self.node.uuid)
            .driver_internal_info[bmi_storage.DEPLOYED_FOR])
        self.set_state(states.ACTIVE)
        self.node.refresh()
        self.node.lessee = 'tenant-b'
        self.node.save()
        self.mgr.export_node.reset_mock()
        with mock.patch.object(bmi_deploy, '_publish_boot_files') as publish:
            with task_manager.acquire(self.context, self.node.uuid) as task:
                e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                      task.driver.deploy.prepare, task)
        self.assertIn('lessee or owner changed', str(e))
        self.assertNotIn('tenant-a', str(e))
        self.mgr.export_node.assert_not_called()
        publish.assert_not_called()
        # Set back: served as before.
        self.node.lessee = base.LESSEE
        self.node.save()
        with mock.patch.object(bmi_deploy, '_publish_boot_files'):
            with task_manager.acquire(self.context, self.node.uuid) as task:
                task.driver.deploy.prepare(task)
        self.assertEqual('10.78.1.2:3260',
                         self.mgr.export_node.call_args.kwargs['portal'])

    def test_adopted_node_refused_when_the_lessee_changed(self):
        # Ironic 39.0.0's adoption runs no deploy: whom the disk is for is
        # recorded at its prepare, so that the lessee's data is not exported
        # for the next lessee the owner sets.
        self.set_state(states.ADOPTING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.prepare(task)
        self.assertEqual(
            {'project': base.LESSEE, 'boot_network': None},
            objects.Node.get_by_uuid(self.context, self.node.uuid)
            .driver_internal_info[bmi_storage.DEPLOYED_FOR])
        self.set_state(states.ACTIVE)
        self.node.refresh()
        self.node.lessee = 'tenant-b'
        self.node.save()
        self.mgr.export_node.reset_mock()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  task.driver.deploy.prepare, task)
        self.assertIn('lessee or owner changed', str(e))
        self.mgr.export_node.assert_not_called()

    def test_reconcile_is_a_periodic_of_the_interval(self):
        from futurist import periodics as futurist_periodics
        from ironic.conductor import periodics
        method = bmi_deploy.BMIDeploy.reconcile_exports
        self.assertTrue(futurist_periodics.is_periodic(method))
        self.config(reconcile_interval=7, group='bmi')
        periodics.refresh_periodic_attributes(method)
        self.assertEqual(7, method._periodic_spacing)
        self.assertTrue(method._is_periodic)
        self.assertTrue(method._periodic_run_immediately)
        self.config(reconcile_interval=0, group='bmi')
        periodics.refresh_periodic_attributes(method)
        self.assertFalse(method._is_periodic)

    # --- cleaning ---------------------------------------------------------

    def test_cleaning_has_nothing_to_do(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertEqual([], task.driver.deploy.get_clean_steps(task))
            self.assertIsNone(task.driver.deploy.prepare_cleaning(task))
            task.driver.deploy.tear_down_cleaning(task)
        self.assertEqual([], self._names())

    def test_interface_class(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertIsInstance(task.driver.deploy, bmi_deploy.BMIDeploy)
