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

"""The [bmi] group also serves Ironic's per-hardware-type lookups."""

from ironic.drivers import utils as driver_utils
from ironic.tests.unit.objects import utils as obj_utils

from bmi_driver import conf  # noqa: F401  (registers [bmi])
from ironic.tests.unit.db import base as db_base


class VerifyCaTest(db_base.DbTestCase):

    def test_get_verify_ca_for_a_bmi_node(self):
        # Ironic reads verify_ca from the group named after the node's
        # hardware type: for a bmi node that is bmi_driver's [bmi].
        node = obj_utils.get_test_node(self.context, driver='bmi')
        self.assertIsNone(driver_utils.get_verify_ca(node, None))
        self.config(verify_ca='/etc/ssl/bmc-ca.pem', group='bmi')
        self.assertEqual('/etc/ssl/bmc-ca.pem',
                         driver_utils.get_verify_ca(node, True))
        self.assertFalse(driver_utils.get_verify_ca(node, False))
