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

"""The bmi hardware type through a real Ironic all-in-one.

Ironic (``tools.lab.ironic``: sqlite, noauth, rpc_transport none) runs the
plugin against the live Ceph cluster and tgtd; nodes use fake power, so no
machine boots: a real iSCSI initiator reads (and writes) the node's LUN
instead, with the CHAP credentials Ironic hands to iPXE.
"""

import base64
import gzip
import hashlib
import os
import socket
import subprocess
import sys
import time
import uuid

import fixtures
from ironicclient import client as ir_client
from ironicclient.common.apiclient import exceptions as ir_exc

from bmi_driver import exception
from bmi_driver.storage.ceph import library as images
from bmi_driver.storage.export import manager as export
from tests.functional import base
from tests.functional import glance_api
from tests.functional import iscsi
from tools.lab import ironic as lab_ironic
from tools.lab import state as lab_state

MiB = 1024 ** 2
GiB = 1024 ** 3
IMAGE_SIZE = 8 * MiB
WAIT = 120
MARK_OFFSET = 4 * MiB
MARK = b'BMI-SNAPSHOT-MARK'


def _sha256_prefix(path, size):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        h.update(f.read(size))
    return h.hexdigest()


def _qemu_iscsi_opts(portal, iqn, lun, user, secret):
    host, _sep, port = portal.rpartition(':')
    opts = ['driver=iscsi', 'transport=tcp', 'portal=%s:%s' % (host, port),
            'target=%s' % iqn, 'lun=%d' % lun,
            'initiator-name=%s' % iscsi.DEFAULT_INITIATOR]
    objs = []
    if user:
        objs = ['--object', 'secret,id=chap0,data=%s' % secret]
        opts += ['user=%s' % user, 'password-secret=chap0']
    return objs, ','.join(opts)


def write_lun(portal, iqn, lun, user, secret, offset, data):
    """Write ``data`` at ``offset`` of the LUN as an initiator (qemu-io)."""
    pattern = data[0]
    assert data == bytes([pattern]) * len(data)
    objs, opts = _qemu_iscsi_opts(portal, iqn, lun, user, secret)
    subprocess.run(['qemu-io'] + objs + [
        '--image-opts', opts, '-c',
        'write -P %d %d %d' % (pattern, offset, len(data))],
        check=True, capture_output=True, timeout=60)


class IronicHelpers(base.FunctionalTestCase):
    """Helpers to drive an Ironic all-in-one and check Ceph and tgtd."""

    def setUp(self):
        super().setUp()
        self.lib = images.ImageLibrary()
        self.exports = export.ExportManager()
        self.portal = self.env['tgtd_portal']
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def use_ironic(self, state_dir):
        """Talk to the Ironic all-in-one whose state is there."""
        self.ironic_env = lab_state.read_env(state_dir, 'Ironic all-in-one')
        self.ironic = ir_client.get_client(
            '1', endpoint=self.ironic_env['url'], auth_type='none',
            os_ironic_api_version='latest')

    # --- helpers ----------------------------------------------------------

    def start_ironic(self, extra_conf):
        """An Ironic all-in-one of the test's own, with extra_conf added.

        It uses the shared Ceph, tgtd and HIL, on a free API port.
        """
        state = os.path.join(self.tmp, 'ironic')
        extra = os.path.join(self.tmp, 'extra.conf')
        with open(extra, 'w') as f:
            f.write(extra_conf)
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            port = sock.getsockname()[1]
        aio = lab_ironic.IronicAIO(
            state, services_json=os.path.join(self.env['state_dir'],
                                              'services.json'),
            port=port, extra_conf=[extra])
        self.addCleanup(aio.stop)
        aio.start()
        self.use_ironic(state)

    def golden(self, size=IMAGE_SIZE):
        """A fresh golden image of random content: (image, sha256)."""
        path = os.path.join(self.tmp, 'golden.raw')
        data = os.urandom(size)
        with open(path, 'wb') as f:
            f.write(data)
        image = self.lib.import_file(path, self.unique('ironic'))
        self.addCleanup(self._delete_image, image.uuid)
        return image, hashlib.sha256(data).hexdigest()

    def _delete_image(self, ref):
        try:
            self.lib.delete(ref)
        except exception.ImageNotFound:
            pass

    def ironic_log(self, lines=40):
        try:
            with open(self.ironic_env['log'], errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except OSError:
            return ''

    def create_node(self, **kwargs):
        fields = dict(
            driver='bmi', name=self.unique('node'), boot_interface='ipxe',
            deploy_interface='bmi', storage_interface='bmi',
            network_interface='noop', power_interface='fake',
            management_interface='fake', vendor_interface='bmi',
            properties={'capabilities': 'iscsi_boot:True'})
        fields.update(kwargs)
        owner = fields.pop('owner', 'admin')
        lessee = fields.pop('lessee', None)
        node = self.ironic.node.create(**fields)
        self.addCleanup(self._delete_node, node.uuid)
        # The operator owns the hardware and the golden images: a node with
        # no project may deploy public images only. With noauth a node
        # cannot be created with an owner or lessee, but may get them.
        patch = [{'op': 'add', 'path': '/%s' % k, 'value': v}
                 for k, v in (('owner', owner), ('lessee', lessee)) if v]
        if patch:
            self.ironic.node.update(node.uuid, patch)
        self.ironic.port.create(node_uuid=node.uuid,
                                address='52:54:00:%02x:%02x:%02x' % tuple(
                                    os.urandom(3)))
        self.ironic.node.set_provision_state(node.uuid, 'manage')
        self.wait(node.uuid, 'manageable')
        self.ironic.node.set_provision_state(node.uuid, 'provide')
        self.wait(node.uuid, 'available')
        return node

    def _delete_node(self, node_uuid):
        node = self.ironic.node.get(node_uuid)
        if node.provision_state in ('active', 'deploy failed'):
            self.ironic.node.set_provision_state(node_uuid, 'deleted')
            self.wait(node_uuid, 'available')
        self.ironic.node.delete(node_uuid)

    def failure(self, node):
        """Why ``node`` failed: its last_error, else its newest error event.

        Ironic 39.0.0's power sync clears ``last_error`` of a node at rest
        whose power state matches, failed states included
        (``_clear_last_error_if_needed``, conductor/manager.py): read a
        sync later, the message is in the node's history only (as the
        soak reads it, tools/lab/soak.py ``why``).
        """
        if node.last_error:
            return node.last_error
        errors = [e for e in self.ironic.node.get_history_list(
            node.uuid, detail=True) if e.get('severity') == 'ERROR']
        if not errors:
            return None
        return max(errors, key=lambda e: e.get('created_at') or '')['event']

    def wait(self, node_uuid, state, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while True:
            node = self.ironic.node.get(node_uuid)
            if node.provision_state == state:
                return node
            if (node.provision_state.endswith('failed')
                    or time.monotonic() > deadline):
                self.fail('node %s is %s, not %s: %s\n--- ironic log:\n%s'
                          % (node_uuid, node.provision_state, state,
                             node.last_error, self.ironic_log()))
            time.sleep(0.5)

    def deploy(self, node_uuid, image_source, configdrive=None, **info):
        patch = [{'op': 'add', 'path': '/instance_info/image_source',
                  'value': image_source}]
        patch += [{'op': 'add', 'path': '/instance_info/%s' % k,
                   'value': v} for k, v in info.items()]
        self.ironic.node.update(node_uuid, patch)
        # bytes: a str would be taken for a file name by the client.
        self.ironic.node.set_provision_state(
            node_uuid, 'active',
            configdrive=configdrive.encode() if configdrive else None)
        return self.wait(node_uuid, 'active')

    def boot_target(self, node_uuid):
        [target] = self.ironic.volume_target.list(node=node_uuid,
                                                  detail=True)
        return target

    def node_export(self, node_uuid):
        """The node's export as Ceph records it.

        Ironic's API masks the CHAP secret of VolumeTargets.
        """
        node_export = self.exports.get_export(node_uuid)
        self.assertIsNotNone(node_export)
        return node_export

    def lun_bytes(self, node_uuid, offset, length):
        """``length`` bytes at ``offset`` of the node's disk.

        They are read through a real initiator.
        """
        with open(self.read_lun(node_uuid), 'rb') as f:
            f.seek(offset)
            return f.read(length)

    def read_lun(self, node_uuid, lun=1):
        # At the node's portal: the gateway's address on its project's
        # boot network, whose network is the target's address ACL (the
        # gateway's own address is in it; 127.0.0.1 is not).
        exp = self.node_export(node_uuid)
        return iscsi.read_lun(exp.portal, exp.target_iqn, lun,
                              exp.chap_username, exp.chap_secret,
                              dest=self.tmp)

    def write_lun(self, node_uuid, offset, data):
        exp = self.node_export(node_uuid)
        write_lun(exp.portal, exp.target_iqn, 1, exp.chap_username,
                  exp.chap_secret, offset, data)

    def assert_released(self, node_uuid):
        self.assertEqual([], self.ironic.volume_target.list(node=node_uuid))
        self.assertRaises(exception.CloneNotFound,
                          self.lib.get_node_disk, node_uuid)
        iqn = self.exports.target_iqn(node_uuid)
        served = [t.iqn for t in self.exports.backend.list_targets()]
        self.assertNotIn(iqn, served)

    def set_power(self, node_uuid, state):
        self.ironic.node.set_power_state(node_uuid, state)
        deadline = time.monotonic() + WAIT
        while self.ironic.node.get(node_uuid).power_state != 'power ' + state:
            self.assertLess(time.monotonic(), deadline, self.ironic_log())
            time.sleep(0.3)

    def baremetal(self, *args):
        """Run the operator's ``baremetal`` command against the Ironic."""
        cmd = [os.path.join(os.path.dirname(sys.executable), 'baremetal'),
               '--os-endpoint', self.ironic_env['url'],
               '--os-auth-type', 'none'] + list(args)
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=WAIT + 60)
        if proc.returncode:
            self.fail('%s failed (%d): %s\n--- ironic log:\n%s'
                      % (' '.join(args[:3]), proc.returncode,
                         proc.stderr[-2000:], self.ironic_log()))
        return proc.stdout.strip()


class IronicTestCase(IronicHelpers):
    """The shared Ironic all-in-one that the lab started."""

    def setUp(self):
        super().setUp()
        self.use_ironic(self.env.get('ironic_state'))

    def test_operator_path_with_the_baremetal_command(self):
        image, digest = self.golden()
        name = self.unique('cli')
        node_uuid = self.baremetal(
            'node', 'create', '--driver', 'bmi', '--name', name,
            '--storage-interface', 'bmi', '--power-interface', 'fake',
            '--management-interface', 'fake',
            '--property', 'capabilities=iscsi_boot:True',
            '-f', 'value', '-c', 'uuid')
        self.addCleanup(self._delete_node, node_uuid)
        # The operator's node (a node of no project may deploy public
        # images only; the golden image is the operator's, private).
        # noauth refuses an owner at create, not afterwards.
        self.baremetal('node', 'set', name, '--owner', 'admin')
        node = self.ironic.node.get(node_uuid)
        self.assertEqual(('ipxe', 'bmi', 'bmi'), (
            node.boot_interface, node.deploy_interface,
            node.storage_interface))
        self.baremetal('port', 'create', '--node', node_uuid,
                       '52:54:00:%02x:%02x:%02x' % tuple(os.urandom(3)))
        self.baremetal('node', 'manage', name, '--wait', str(WAIT))
        self.baremetal('node', 'provide', name, '--wait', str(WAIT))
        self.baremetal('node', 'set', name, '--instance-info',
                       'image_source=%s' % image.uuid)
        self.baremetal('node', 'deploy', name, '--wait', str(WAIT))
        self.assertEqual(digest, _sha256_prefix(self.read_lun(node_uuid),
                                                IMAGE_SIZE))
        self.baremetal('node', 'undeploy', name, '--wait', str(WAIT))
        self.assert_released(node_uuid)

    def test_adopt_read_undeploy(self):
        # Ironic's adoption (MANAGEABLE to ACTIVE without a deploy) of a
        # node with no disk yet: it gets a clone of its image_source.
        image, digest = self.golden()
        node = self.create_node()
        self.ironic.node.set_provision_state(node.uuid, 'manage')
        self.wait(node.uuid, 'manageable')
        self.ironic.node.update(node.uuid, [
            {'op': 'add', 'path': '/instance_info/image_source',
             'value': image.uuid}])
        self.ironic.node.set_provision_state(node.uuid, 'adopt')
        node = self.wait(node.uuid, 'active')
        self.assertIn('bmi_deployed_for', node.driver_internal_info)
        self.assertEqual(digest, _sha256_prefix(self.read_lun(node.uuid),
                                                IMAGE_SIZE))
        self.ironic.node.set_provision_state(node.uuid, 'deleted')
        self.wait(node.uuid, 'available')
        self.assert_released(node.uuid)

    def test_deploy_read_undeploy(self):
        image, digest = self.golden()
        node = self.create_node()
        self.deploy(node.uuid, image.uuid)

        target = self.boot_target(node.uuid)
        self.assertEqual(0, target.boot_index)
        self.assertEqual('iscsi', target.volume_type)
        props = target.properties
        self.assertEqual(self.exports.target_iqn(node.uuid),
                         props['target_iqn'])
        self.assertEqual(1, props['target_lun'])
        exp = self.node_export(node.uuid)
        self.assertEqual(exp.chap_username, props['auth_username'])
        # The API does not show the secret.
        self.assertNotEqual(exp.chap_secret, props['auth_password'])

        # What iPXE will run: sanboot of the node's target, with CHAP.
        config = os.path.join(self.ironic_env['http_root'], node.uuid,
                              'config')
        with open(config) as f:
            ipxe = f.read()
        self.assertIn('sanhook --drive 0x80 iscsi:', ipxe)
        self.assertIn(':1:%s' % props['target_iqn'], ipxe)
        self.assertIn('set username %s' % props['auth_username'], ipxe)
        self.assertIn('set password %s' % exp.chap_secret, ipxe)

        # A real initiator reads the golden image from the node's LUN.
        path = self.read_lun(node.uuid)
        self.assertEqual(digest, _sha256_prefix(path, IMAGE_SIZE))
        self.assertTrue(iscsi.login_refused(exp.portal,
                                            props['target_iqn']))

        self.ironic.node.set_provision_state(node.uuid, 'deleted')
        self.wait(node.uuid, 'available')
        self.assert_released(node.uuid)
        self.assertFalse(os.path.exists(config))

    def test_snapshot_then_second_node(self):
        image, _digest = self.golden()
        node1 = self.create_node()
        self.deploy(node1.uuid, image.uuid)
        self.write_lun(node1.uuid, MARK_OFFSET, b'\x5a' * 65536)

        name = self.unique('snap')
        self.ironic.node.vendor_passthru(node1.uuid, 'snapshot',
                                         args={'name': name},
                                         http_method='POST')
        deadline = time.monotonic() + WAIT
        while True:
            info = self.ironic.node.get(node1.uuid).driver_internal_info
            result = info.get('bmi_snapshot') or {}
            if result.get('name') == name and result.get('status'):
                break
            self.assertLess(time.monotonic(), deadline, self.ironic_log())
            time.sleep(0.5)
        self.assertEqual('done', result['status'], result)
        snap = self.lib.get(name)
        self.addCleanup(self._delete_image, snap.uuid)
        self.assertEqual(result['image'], snap.uuid)

        node2 = self.create_node()
        self.deploy(node2.uuid, snap.uuid)
        self.assertEqual(b'\x5a' * 65536,
                         self.lun_bytes(node2.uuid, MARK_OFFSET, 65536))

    def test_power_cycle_keeps_the_disk(self):
        # Ironic detaches volumes when an active node powers off and
        # attaches them at power on: the disk and its data stay.
        image, _digest = self.golden()
        node = self.create_node()
        self.deploy(node.uuid, image.uuid)
        self.write_lun(node.uuid, MARK_OFFSET, b'\x3c' * 4096)
        self.set_power(node.uuid, 'off')
        self.assertIsNotNone(self.lib.get_node_disk(node.uuid))
        self.set_power(node.uuid, 'on')
        self.assertEqual(b'\x3c' * 4096,
                         self.lun_bytes(node.uuid, MARK_OFFSET, 4096))

    def test_rebuild_gives_a_fresh_disk(self):
        image, digest = self.golden()
        node = self.create_node()
        self.deploy(node.uuid, image.uuid)
        before = self.node_export(node.uuid)
        self.write_lun(node.uuid, 0, b'\x00' * 65536)
        self.assertNotEqual(digest, _sha256_prefix(self.read_lun(node.uuid),
                                                   IMAGE_SIZE))

        self.ironic.node.set_provision_state(node.uuid, 'rebuild')
        self.wait(node.uuid, 'active')
        after = self.node_export(node.uuid)
        self.assertNotEqual(before.chap_secret, after.chap_secret)
        self.assertEqual(digest, _sha256_prefix(self.read_lun(node.uuid),
                                                IMAGE_SIZE))

    def test_nova_style_glance_image_with_configdrive(self):
        data = os.urandom(IMAGE_SIZE)
        # Issue 13: made as a user makes it, through Glance's API.
        glance_uuid = self._glance_image(data, 'tenant-a')
        iso = b'CD001' + os.urandom(64 * 1024)
        configdrive = base64.b64encode(gzip.compress(iso)).decode()

        node = self.create_node(lessee='tenant-a')
        self.deploy(node.uuid, glance_uuid, configdrive=configdrive,
                    root_gb=1, project_id='tenant-a',
                    display_name='vm-1', capabilities={'boot_option':
                                                       'local'})
        target = self.boot_target(node.uuid)
        self.assertEqual(2, target.properties['config_drive_lun'])
        disk = self.lib.get_node_disk(node.uuid)
        self.assertEqual('%s/%s@snap' % (self.env['glance_pool'],
                                         glance_uuid), disk.parent)
        self.assertEqual(GiB, disk.size)

        path = self.read_lun(node.uuid)
        self.assertEqual(GiB, os.path.getsize(path))
        self.assertEqual(hashlib.sha256(data).hexdigest(),
                         _sha256_prefix(path, IMAGE_SIZE))
        cd = self.read_lun(node.uuid, lun=2)
        with open(cd, 'rb') as f:
            self.assertEqual(iso, f.read(len(iso)))

        self.ironic.node.set_provision_state(node.uuid, 'deleted')
        self.wait(node.uuid, 'available')
        self.assert_released(node.uuid)

    def _glance_image(self, data, project):
        """A raw image uploaded to the lab's Glance as ``project``.

        Glance's rbd store lays it out as <glance pool>/<uuid>@snap.
        """
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'disk.raw')
        with open(path, 'wb') as f:
            f.write(data)
        conn, img = glance_api.upload(self.env, project, path, 'raw',
                                      self.unique('nova'))
        self.addCleanup(conn.image.delete_image, img.id,
                        ignore_missing=True)
        return img.id

    def test_unknown_image_fails_validation_and_creates_nothing(self):
        node = self.create_node()
        missing = str(uuid.uuid4())
        self.ironic.node.update(node.uuid, [
            {'op': 'add', 'path': '/instance_info/image_source',
             'value': missing}])
        e = self.assertRaises(ir_exc.BadRequest,
                              self.ironic.node.set_provision_state,
                              node.uuid, 'active')
        self.assertIn('Image %s not found' % missing, str(e))
        self.assertEqual('available',
                         self.ironic.node.get(node.uuid).provision_state)
        self.assert_released(node.uuid)

    def test_private_image_of_another_project_is_refused(self):
        image, _digest = self.golden()
        # A lab project (its boot network exists) without the image.
        node = self.create_node(lessee='tenant-b')
        self.ironic.node.update(node.uuid, [
            {'op': 'add', 'path': '/instance_info/image_source',
             'value': image.uuid}])
        e = self.assertRaises(ir_exc.BadRequest,
                              self.ironic.node.set_provision_state,
                              node.uuid, 'active')
        self.assertIn('not visible to project tenant-b', str(e))
        # Issue 13: the refusal never names the image's owner.
        self.assertIn('private to another project', str(e))
        self.assertNotIn('admin', str(e))
        self.assert_released(node.uuid)


class UnreachableServicesTestCase(IronicHelpers):
    """Validation with Ceph or tgtd out of reach, on an Ironic of its own.

    The all-in-one is started with an extra configuration file that points
    the plugin at a Ceph monitor or a tgtd control port where nothing
    listens; the shared services are not touched.
    """

    def _refused(self, image_uuid):
        node = self.create_node()
        self.ironic.node.update(node.uuid, [
            {'op': 'add', 'path': '/instance_info/image_source',
             'value': image_uuid}])
        e = self.assertRaises(ir_exc.BadRequest,
                              self.ironic.node.set_provision_state,
                              node.uuid, 'active')
        self.assertEqual('available',
                         self.ironic.node.get(node.uuid).provision_state)
        self.assertRaises(exception.CloneNotFound,
                          self.lib.get_node_disk, node.uuid)
        return str(e)

    def test_tgtd_unreachable(self):
        image, _digest = self.golden()
        # tgtadm -C selects a tgtd by its control socket: none has 77.
        self.start_ironic('[iscsi]\ntgtadm_control_port = 77\n')
        msg = self._refused(image.uuid)
        self.assertIn('iSCSI target daemon is not reachable', msg)

    def test_ceph_unreachable(self):
        conf = os.path.join(self.tmp, 'nowhere.conf')
        with open(conf, 'w') as f:
            # A monitor address where nothing listens.
            f.write('[global]\nmon host = 127.0.0.1:9\n')
        self.start_ironic('[ceph]\nconf_file = %s\nconnect_timeout = 2\n'
                          'connect_retries = 0\n' % conf)
        msg = self._refused(str(uuid.uuid4()))
        self.assertIn('Cannot connect to the Ceph cluster', msg)
