"""What a BMI deploy reads from a node's instance_info."""

import base64
import gzip

from ironic.common import exception as ironic_exc
import requests_mock

from bmi_driver.common import ironic_errors
from bmi_driver.deploy import utils
from bmi_driver import exception
from tests.unit.deploy import base

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
