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
import http.server
import threading
import time
import types
from unittest import mock

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
    get_project=_as_interfaces_call(node_facts.node_project),
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
        # Issue 11: instance_info/project_id is a tenant's claim, ignored
        # unless [bmi] trust_instance_project_id says Nova alone writes it.
        self.node.owner = 'owner'
        self._info(project_id='nova')
        self.assertEqual(base.LESSEE, utils.get_project(self.node))
        self.node.lessee = None
        self.assertEqual('owner', utils.get_project(self.node))
        self.node.owner = None
        self.assertIsNone(utils.get_project(self.node))

    def test_project_precedence_trusting_nova(self):
        self.config(trust_instance_project_id=True, group='bmi')
        self.node.owner = 'owner'
        self._info(project_id='nova')
        self.assertEqual(base.LESSEE, utils.get_project(self.node))
        self.node.lessee = None
        self.assertEqual('nova', utils.get_project(self.node))
        self._info(project_id=None)
        self.assertEqual('owner', utils.get_project(self.node))
        self.node.owner = None
        self.assertIsNone(utils.get_project(self.node))

    def test_forged_project_id_ignored_and_logged(self):
        self.node.lessee = None
        self.node.owner = 'tenant-a'
        self._info(project_id='tenant-b')
        with mock.patch.object(node_facts.LOG, 'warning') as warning:
            self.assertEqual('tenant-a', node_facts.node_project(self.node))
            self.assertIn('is ignored', warning.call_args[0][0])
            self.assertEqual('tenant-b', warning.call_args[0][1]['claim'])
            # Nova's own, agreeing with the owner: nothing to say.
            warning.reset_mock()
            self._info(project_id='tenant-a')
            self.assertEqual('tenant-a', node_facts.node_project(self.node))
            warning.assert_not_called()

    def test_one_resolution_for_images_and_hil(self):
        self.node.owner = 'owner'
        for lessee in (base.LESSEE, None):
            self.node.lessee = lessee
            for trusted in (False, True):
                self.config(trust_instance_project_id=trusted, group='bmi')
                self._info(project_id='nova')
                self.assertEqual(node_facts.node_project(self.node),
                                 node_facts.hil_project(self.node))

    def test_root_size(self):
        self.assertEqual(10 * utils.GiB, utils.get_root_size(self.node))
        self._info(root_gb='0')
        self.assertIsNone(utils.get_root_size(self.node))
        self._info(root_gb=None)
        self.assertIsNone(utils.get_root_size(self.node))
        self._info(root_gb=-1)
        self.assertRaises(ironic_exc.InvalidParameterValue,
                          utils.get_root_size, self.node)

    def test_scratch_sizes_as_nova_writes_them(self):
        # Nova 34.0.0: strings; swap_mb '0' for a flavor without swap.
        self._info(swap_mb='0')
        self.assertIsNone(node_facts.get_swap_size(self.node))
        self.assertIsNone(node_facts.get_ephemeral(self.node, 'ext4'))
        self._info(swap_mb='64', ephemeral_gb='2')
        self.assertEqual(64 * 1024 ** 2, node_facts.get_swap_size(self.node))
        self.assertEqual((2 * utils.GiB, 'ext4'),
                         node_facts.get_ephemeral(self.node, 'ext4'))
        self._info(ephemeral_format='xfs')
        self.assertEqual((2 * utils.GiB, 'xfs'),
                         node_facts.get_ephemeral(self.node, 'ext4'))
        self.assertFalse(node_facts.preserve_ephemeral(self.node))
        for value, expected in (('True', True), ('False', False),
                                (True, True), ('', False)):
            self._info(preserve_ephemeral=value)
            self.assertEqual(expected,
                             node_facts.preserve_ephemeral(self.node))

    def test_scratch_refusals(self):
        for info, text in (({'swap_mb': 'x'}, 'non-negative'),
                           ({'ephemeral_gb': '1', 'ephemeral_format':
                             'btrfs'}, 'btrfs'),
                           ({'ephemeral_gb': '1025'}, 'max_ephemeral_gb'),
                           ({'swap_mb': '65537'}, 'max_swap_mb')):
            self.node.instance_info = dict(info)
            e = self.assertRaises(exception.NodeFactInvalid,
                                  rbd_iscsi.scratch_request, self.node)
            self.assertIn(text, str(e))
            self.assertIn(self.node.uuid, str(e))
        self.config(scratch_disks=False, group='bmi')
        self.node.instance_info = {'swap_mb': '0', 'ephemeral_gb': '0'}
        self.assertEqual((None, None), rbd_iscsi.scratch_request(self.node))
        self.node.instance_info = {'swap_mb': '1'}
        e = self.assertRaises(exception.NodeFactInvalid,
                              rbd_iscsi.scratch_request, self.node)
        self.assertIn('scratch_disks', str(e))

    def test_root_size_bounded_by_the_operator(self):
        # Issue 13: [bmi] max_root_gb (default 1024).
        self._info(root_gb=1024)
        self.assertEqual(1024 * utils.GiB, utils.get_root_size(self.node))
        self._info(root_gb=1025)
        e = self.assertRaises(ironic_exc.InvalidParameterValue,
                              utils.get_root_size, self.node)
        self.assertIn('max_root_gb', str(e))
        self.config(max_root_gb=20, group='bmi')
        self._info(root_gb=21)
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
        # Issue 11: only to a listed host; http only where allowed.
        self.config(configdrive_url_hosts=['swift.example.com'],
                    configdrive_url_allow_http=True, group='bmi')
        url = 'http://swift.example.com/v1/cd?temp_url_sig=secret'
        self._info(configdrive=url)
        with requests_mock.Mocker() as m:
            m.get(url, content=base64.b64encode(gzip.compress(ISO)))
            self.assertEqual(ISO, utils.get_configdrive(self.node))

    def test_configdrive_url_error_hides_the_url(self):
        self.config(configdrive_url_hosts=['swift.example.com'],
                    configdrive_url_allow_http=True, group='bmi')
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

    def test_configdrive_of_another_type_is_refused(self):
        # An owner member may PATCH instance_info/configdrive to any JSON.
        for value in (12345, True, ['a'], 1.5):
            self._info(configdrive=value)
            self.assertRaises(exception.ConfigDriveError,
                              node_facts.check_configdrive, self.node)
            self.assertRaises(exception.ConfigDriveError,
                              node_facts.get_configdrive, self.node)

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

    def test_hil_project_deprecated_sources_and_default(self):
        # The one resolution by default; project_source's other values
        # (deprecated) still pick their field; default_project places a
        # node of no project in HIL.
        self.node.owner = 'owner'
        self.node.lessee = None
        self._info(project_id='nova')
        self.assertEqual('owner', node_facts.node_project(self.node))
        self.assertEqual('owner', node_facts.hil_project(self.node))
        self.config(project_source='driver_info', group='hil')
        self.node.driver_info = {'hil_project': 'hp'}
        self.assertEqual('hp', node_facts.hil_project(self.node))
        self.config(project_source='lessee', group='hil')
        self.node.owner = None
        self.assertRaises(exception.NodeFactMissing,
                          node_facts.hil_project, self.node)
        self.config(default_project='shared', group='hil')
        self.assertEqual('shared', node_facts.hil_project(self.node))
        self.assertIsNone(node_facts.node_project(self.node))


class _Handler(http.server.BaseHTTPRequestHandler):
    """What a hostile or broken config-drive URL answers."""

    def do_GET(self):
        kind = self.path.split('?')[0].strip('/')
        if kind == 'redirect':
            self.send_response(302)
            self.send_header('Location', 'http://127.0.0.1:6385/')
            self.end_headers()
            return
        if kind == 'ok':
            body = base64.b64encode(gzip.compress(ISO))
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.end_headers()  # no length: read until closed
        try:
            while not self.server.stopping.is_set():
                # 'endless': fast; 'slow': a trickle below any socket
                # timeout, which only a total time limit stops.
                self.wfile.write(b'QUFB' * (4096 if kind == 'endless'
                                            else 1))
                self.wfile.flush()
                if kind == 'slow':
                    time.sleep(0.05)
        except OSError:
            pass

    def log_message(self, *args):
        pass


class ConfigDriveURLTestCase(base.BMITestCase):
    """Config drives by URL (issue 11): only what the operator allows."""

    def setUp(self):
        super().setUp()
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                      _Handler)
        self.server.daemon_threads = True
        self.server.stopping = threading.Event()
        thread = threading.Thread(target=self.server.serve_forever)
        thread.start()
        self.addCleanup(thread.join)
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)
        self.addCleanup(self.server.stopping.set)
        self.host = '127.0.0.1:%d' % self.server.server_address[1]

    def allow(self, **kw):
        kw.setdefault('configdrive_url_hosts', [self.host])
        kw.setdefault('configdrive_url_allow_http', True)
        self.config(group='bmi', **kw)

    def get(self, url):
        self.node.instance_info = dict(self.node.instance_info,
                                       configdrive=url)
        return node_facts.get_configdrive(self.node)

    def refused(self, url, text):
        e = self.assertRaises(exception.ConfigDriveError, self.get, url)
        self.assertIn(text, str(e))
        self.assertNotIn('sig=', str(e))
        return e

    def test_allowed_url(self):
        self.allow()
        self.assertEqual(ISO, self.get('http://%s/ok' % self.host))

    def test_no_url_by_default(self):
        # The Ironic API on the conductor's host, the example.
        self.refused('https://127.0.0.1:6385/v1/nodes?sig=1',
                     'not in [bmi] configdrive_url_hosts')
        self.config(configdrive_url_allow_http=True, group='bmi')
        self.refused('http://%s/ok?sig=1' % self.host,
                     'not in [bmi] configdrive_url_hosts')

    def test_https_only_by_default(self):
        self.allow(configdrive_url_allow_http=False)
        self.refused('http://%s/ok?sig=1' % self.host, 'plain http')

    def test_host_and_port_must_match(self):
        self.config(configdrive_url_hosts=['swift.example.com'],
                    group='bmi')
        node_facts.check_configdrive_url(
            self.node, 'https://SWIFT.example.com/v1/x')
        node_facts.check_configdrive_url(
            self.node, 'https://swift.example.com:443/v1/x')
        for url in ('https://swift.example.com:8443/x',
                    'https://swift.example.com.evil.org/x',
                    'https://evil.org/swift.example.com',
                    'https://swift.example.com@evil.org/x',
                    'https://u:p@swift.example.com/x',
                    'ftp://swift.example.com/x',
                    'https://[::1/x'):
            self.assertRaises(exception.ConfigDriveError,
                              node_facts.check_configdrive_url,
                              self.node, url)

    def test_redirect_not_followed(self):
        self.allow()
        self.refused('http://%s/redirect?sig=1' % self.host,
                     'redirects are not followed')

    def test_endless_stream_is_cut_at_the_size_cap(self):
        self.allow(configdrive_max_size=256 * 1024)
        self.refused('http://%s/endless?sig=1' % self.host,
                     'larger than [bmi] configdrive_max_size')

    def test_slow_stream_is_cut_at_the_time_limit(self):
        self.allow(configdrive_url_timeout=1)
        start = time.monotonic()
        self.refused('http://%s/slow?sig=1' % self.host,
                     'longer than [bmi] configdrive_url_timeout')
        self.assertLess(time.monotonic() - start, 3)

    def test_declared_length_over_the_cap(self):
        self.allow(configdrive_max_size=1024)
        self.refused('http://%s/ok?sig=1' % self.host,
                     'larger than [bmi] configdrive_max_size')

    def test_gzip_bomb_is_bounded(self):
        self.config(configdrive_max_size=64 * 1024, group='bmi')
        bomb = base64.b64encode(gzip.compress(b'\0' * (8 * 1024 * 1024)))
        self.assertLess(len(bomb), 64 * 1024)
        e = self.assertRaises(exception.ConfigDriveError, self.get,
                              bomb.decode())
        self.assertIn('larger than', str(e))

    def test_check_configdrive_needs_no_fetch(self):
        self.node.instance_info = dict(self.node.instance_info,
                                       configdrive='https://evil.org/x')
        self.assertRaises(exception.ConfigDriveError,
                          node_facts.check_configdrive, self.node)
        self.node.instance_info['configdrive'] = base64.b64encode(
            ISO).decode()
        node_facts.check_configdrive(self.node)
