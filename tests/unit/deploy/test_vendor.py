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

"""The bmi vendor interface: the snapshot passthru."""

from ironic.common import exception as ironic_exc
from ironic.common import states
from ironic.conductor import task_manager

from bmi_driver.deploy import vendor
from bmi_driver import exception
from bmi_driver.storage import layout
from bmi_driver.storage import rbd_iscsi as bmi_storage
from tests.unit.deploy import base

NEW_UUID = '0b0c6d4e-64cf-4b3e-a8f4-3f0f61e57f35'


class BMIVendorTestCase(base.BMITestCase):

    def setUp(self):
        super().setUp()
        self.set_state(states.ACTIVE)
        self.lib.snapshot_node.return_value = layout.GoldenImage(
            uuid=NEW_UUID, name='snap-1', project=base.LESSEE,
            visibility='private', created_at='now', source='node',
            checksum='', size=1024 ** 3, pool='bmi-images',
            rbd_name='img-%s' % NEW_UUID)

    def _validate(self, method='snapshot', **kwargs):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.vendor.validate(task, method=method, **kwargs)

    def test_routes(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertIsInstance(task.driver.vendor,
                                  vendor.BMIVendorPassthru)
            route = task.driver.vendor.vendor_routes['snapshot']
        self.assertTrue(route['async'])
        self.assertEqual(['POST'], route['http_methods'])

    def test_validate(self):
        self._validate(name='snap-1', visibility='public', project='p',
                       http_method='POST')

    def test_validate_checks_the_name_before_the_call_returns(self):
        # Issue 13: the call is asynchronous; what can be refused is
        # refused by validate, synchronously.
        self._validate(name='snap-1')
        self.lib.check_new_name.assert_called_once_with('snap-1',
                                                        asker=base.LESSEE)
        for bad in ('bad name', 'x' * 64, NEW_UUID):
            self.assertRaises(ironic_exc.InvalidParameterValue,
                              self._validate, name=bad)
        self.lib.check_new_name.side_effect = exception.ImageExists(
            'An image named snap-1 already exists; choose another name.',
            name='snap-1')
        e = self.assertRaises(ironic_exc.InvalidParameterValue,
                              self._validate, name='snap-1')
        self.assertIn('already exists', str(e))
        self.lib.snapshot_node.assert_not_called()

    def test_validate_refuses_an_empty_project(self):
        e = self.assertRaises(ironic_exc.InvalidParameterValue,
                              self._validate, name='x', project='')
        self.assertIn('project', str(e))
        self.lib.check_new_name.assert_not_called()

    def test_validate_needs_name(self):
        e = self.assertRaises(ironic_exc.MissingParameterValue,
                              self._validate)
        self.assertIn('name', str(e))

    def test_validate_bad_visibility(self):
        self.assertRaises(ironic_exc.InvalidParameterValue, self._validate,
                          name='x', visibility='shared')

    def test_validate_unknown_argument(self):
        self.assertRaises(ironic_exc.InvalidParameterValue, self._validate,
                          name='x', colour='blue')

    def test_validate_unknown_method(self):
        self.assertRaises(ironic_exc.InvalidParameterValue, self._validate,
                          method='format')

    def test_validate_needs_active_node(self):
        self.set_state(states.AVAILABLE)
        e = self.assertRaises(ironic_exc.InvalidParameterValue,
                              self._validate, name='x')
        self.assertIn('available', str(e))

    def test_snapshot(self):
        with task_manager.acquire(self.context, self.node.uuid) as task:
            result = task.driver.vendor.snapshot(task, name='snap-1',
                                                 http_method='POST')
        self.assertEqual({'image': NEW_UUID, 'name': 'snap-1'}, result)
        self.lib.snapshot_node.assert_called_once_with(
            self.node.uuid, 'snap-1', project=base.LESSEE,
            visibility='private')
        self.node.refresh()
        self.assertEqual({'name': 'snap-1', 'status': 'done',
                          'image': NEW_UUID},
                         self.node.driver_internal_info['bmi_snapshot'])
        self.assertIsNone(self.node.last_error)

    def test_snapshot_default_project(self):
        self.node.lessee = None
        self.node.save()
        self.config(default_project='admin', group='bmi')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.vendor.snapshot(task, name='snap-1',
                                        visibility='public')
        self.lib.snapshot_node.assert_called_once_with(
            self.node.uuid, 'snap-1', project='admin', visibility='public')

    def test_snapshot_belongs_to_the_project_deployed_for(self):
        # An owner member changed the lessee of the ACTIVE node (Ironic
        # 39.0.0 allows it): the disk still holds the data of the project
        # it was deployed for, which the new lessee must not get.
        self.node.set_driver_internal_info(
            bmi_storage.DEPLOYED_FOR,
            {'project': base.LESSEE, 'boot_network': None})
        self.node.lessee = 'new-lessee'
        self.node.save()
        self._validate(name='snap-1')
        self.lib.check_new_name.assert_called_once_with('snap-1',
                                                        asker=base.LESSEE)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.vendor.snapshot(task, name='snap-1')
        self.lib.snapshot_node.assert_called_once_with(
            self.node.uuid, 'snap-1', project=base.LESSEE,
            visibility='private')

    def test_snapshot_failure_is_recorded(self):
        self.lib.snapshot_node.side_effect = exception.ImageExists(
            name='snap-1', image=NEW_UUID)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertRaises(ironic_exc.InvalidParameterValue,
                              task.driver.vendor.snapshot, task,
                              name='snap-1')
        self.node.refresh()
        result = self.node.driver_internal_info['bmi_snapshot']
        self.assertEqual('error', result['status'])
        self.assertIn('already exists', result['error'])
        self.assertIn('already exists', self.node.last_error)
