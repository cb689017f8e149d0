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

"""What the interfaces read from an Ironic node (common/node_facts.py)."""

import base64
import gzip
import types

from ironic.common import exception as ironic_exc
from ironic.conductor import configdrive_utils
import requests_mock

from bmi_driver.common import ironic_errors
from bmi_driver.common import node_facts
from bmi_driver import exception
from bmi_driver.storage import rbd_iscsi
from tests.unit.deploy import base


def _as_interfaces_call(func, **kwargs):
    """``func`` as the interfaces call it: errors become Ironic's."""
    def call(node):
        with ironic_errors.as_ironic():
            return func(node, **kwargs)
    return call


# The helpers these tests were written for (deploy/utils.py), now
# node_facts called through the interfaces' error translation.
utils = types.SimpleNamespace(
    GiB=node_facts.GiB,
    get_project=_as_interfaces_call(node_facts.image_project),
    get_root_size=_as_interfaces_call(node_facts.get_root_size),
    get_image_source=_as_interfaces_call(node_facts.get_image_source),
    get_configdrive=_as_interfaces_call(
        node_facts.get_configdrive,
        build=configdrive_utils.build_configdrive),
    has_iscsi_boot=rbd_iscsi.has_iscsi_boot)

ISO = b'CD001' + bytes(range(256)) * 8


class DeployUtilsTestCase(base.BMITestCase):

    def _info(self, **kwargs):
        self.node.instance_info = dict(self.node.instance_info, **kwargs)

    def test_project_precedence(self):
        self.node.owner = 'owner'
        self._info(project_id='nova')
        self.assertEqual(base.LESSEE, utils.get_project(self.node))
        self.node.lessee = None
        self.assertEqual('nova', utils.get_project(self.node))
        self._info(project_id=None)
        self.assertEqual('owner', utils.get_project(self.node))
        self.node.owner = None
        self.assertIsNone(utils.get_project(self.node))

    def test_root_size(self):
        self.assertEqual(10 * utils.GiB, utils.get_root_size(self.node))
        self._info(root_gb='0')
        self.assertIsNone(utils.get_root_size(self.node))
        self._info(root_gb=None)
        self.assertIsNone(utils.get_root_size(self.node))
        self._info(root_gb=-1)
        self.assertRaises(ironic_exc.InvalidParameterValue,
                          utils.get_root_size, self.node)

    def test_image_source_uuid(self):
        self.assertEqual(base.IMAGE_UUID, utils.get_image_source(self.node))
        self._info(image_source='http://example.com/img.qcow2')
        self.assertRaises(ironic_exc.InvalidParameterValue,
                          utils.get_image_source, self.node)

    def test_configdrive_none(self):
        self.assertIsNone(utils.get_configdrive(self.node))

    def test_configdrive_gzip_base64(self):
        self._info(configdrive=base64.b64encode(gzip.compress(ISO)).decode())
        self.assertEqual(ISO, utils.get_configdrive(self.node))

    def test_configdrive_plain_base64(self):
        self._info(configdrive=base64.b64encode(ISO).decode())
        self.assertEqual(ISO, utils.get_configdrive(self.node))

    def test_configdrive_url(self):
        url = 'http://swift.example.com/v1/cd?temp_url_sig=secret'
        self._info(configdrive=url)
        with requests_mock.Mocker() as m:
            m.get(url, content=base64.b64encode(gzip.compress(ISO)))
            self.assertEqual(ISO, utils.get_configdrive(self.node))

    def test_configdrive_url_error_hides_the_url(self):
        url = 'http://swift.example.com/v1/cd?temp_url_sig=secret'
        self._info(configdrive=url)
        with requests_mock.Mocker() as m:
            m.get(url, status_code=404)
            e = self.assertRaises(ironic_exc.InstanceDeployFailure,
                                  utils.get_configdrive, self.node)
        self.assertNotIn('secret', str(e))

    def test_configdrive_bad_gzip(self):
        self._info(configdrive=base64.b64encode(b'\x1f\x8bnot gzip').decode())
        self.assertRaises(ironic_exc.InstanceDeployFailure,
                          utils.get_configdrive, self.node)

    def test_iscsi_boot_capability(self):
        self.assertTrue(utils.has_iscsi_boot(self.node))
        self.node.properties = {'capabilities': 'iscsi_boot:false'}
        self.assertFalse(utils.has_iscsi_boot(self.node))

    def test_library_errors_are_bmi_driver_s(self):
        # Without the interfaces' translation: no Ironic class escapes.
        self.node.instance_info = {}
        e = self.assertRaises(exception.NodeFactMissing,
                              node_facts.get_image_source, self.node)
        new = ironic_errors.to_ironic(e)
        self.assertIsInstance(new, ironic_exc.MissingParameterValue)
        self.assertEqual(str(e), str(new))
        self._info(image_source='not-a-uuid')
        self.assertRaises(exception.NodeFactInvalid,
                          node_facts.get_image_source, self.node)
        self._info(root_gb='x')
        self.assertRaises(exception.NodeFactInvalid,
                          node_facts.get_root_size, self.node)
        self.assertIsInstance(
            ironic_errors.to_ironic(exception.ConfigDriveError('x')),
            ironic_exc.InstanceDeployFailure)

    def test_json_configdrive_needs_a_builder(self):
        self._info(configdrive={'meta_data': {}})
        self.assertRaises(exception.ConfigDriveError,
                          node_facts.get_configdrive, self.node)
        built = base64.b64encode(ISO).decode()
        self.assertEqual(ISO, node_facts.get_configdrive(
            self.node, build=lambda node, doc: built))

    def test_two_project_resolutions_stay_apart(self):
        # They disagree (issue 11 decides); this pins today's behaviour.
        self.node.owner = 'owner'
        self.node.lessee = None
        self._info(project_id='nova')
        self.config(project_source='lessee', group='hil')
        self.assertEqual('nova', node_facts.image_project(self.node))
        self.assertEqual('owner', node_facts.hil_project(self.node))
