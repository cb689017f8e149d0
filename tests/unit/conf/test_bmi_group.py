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
