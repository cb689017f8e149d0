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

"""bmi_driver's errors become Ironic's at the interfaces."""

from ironic.common import exception as ironic_exc

from bmi_driver.common import ironic_errors
from bmi_driver import exception
from tests.unit.deploy import base


class IronicErrorsTestCase(base.BMITestCase):

    def test_mapping(self):
        for bmi_exc, ironic_cls in (
                (exception.ImageNotFound(image='x'),
                 ironic_exc.InvalidParameterValue),
                (exception.ImageNotVisible(image='x', owner='a', project='b'),
                 ironic_exc.InvalidParameterValue),
                (exception.InvalidInput(reason='bad'),
                 ironic_exc.InvalidParameterValue),
                (exception.CephConnectionError(conf='c', user='u',
                                               reason='r'),
                 ironic_exc.StorageError),
                (exception.TargetDaemonUnavailable(reason='down'),
                 ironic_exc.StorageError),
                (exception.HILUnreachable(url='http://hil', reason='r'),
                 ironic_exc.NetworkError)):
            new = ironic_errors.to_ironic(bmi_exc)
            self.assertIsInstance(new, ironic_cls)
            self.assertEqual(str(bmi_exc), str(new))

    def test_translated(self):
        def fail():
            with ironic_errors.translated('cloning', 'n1'):
                raise exception.ExportError(reason='tgtadm said no')
        e = self.assertRaises(ironic_exc.StorageError, fail)
        self.assertEqual('Node n1: cloning failed: iSCSI export failed: '
                         'tgtadm said no', str(e))
        self.assertIsInstance(e.__cause__, exception.ExportError)

    def test_translated_forced_class_and_others_untouched(self):
        def fail(exc):
            with ironic_errors.translated(
                    'checking', as_=ironic_exc.InvalidParameterValue):
                raise exc
        e = self.assertRaises(ironic_exc.InvalidParameterValue, fail,
                              exception.CephError(reason='timeout'))
        self.assertEqual('Checking failed: Ceph operation failed: timeout',
                         str(e))
        self.assertRaises(KeyError, fail, KeyError('x'))

    def test_as_ironic_keeps_the_message(self):
        def fail(exc):
            with ironic_errors.as_ironic():
                raise exc
        e = self.assertRaises(ironic_exc.MissingParameterValue, fail,
                              exception.NodeFactMissing('Node n1 has none.'))
        self.assertEqual('Node n1 has none.', str(e))
        self.assertIsInstance(e.__cause__, exception.NodeFactMissing)
        self.assertRaises(ironic_exc.InvalidParameterValue, fail,
                          exception.NodeFactInvalid('bad'))
        self.assertRaises(ironic_exc.InstanceDeployFailure, fail,
                          exception.ConfigDriveError('bad'))
        self.assertRaises(KeyError, fail, KeyError('x'))
