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

"""Per-project mode: the node's iPXE files in its project's HTTP root.

Ironic's real ``ipxe`` boot interface writes them into [deploy] http_root
(a temporary directory); power and network are faked.
"""

import os
import stat
from unittest import mock

import fixtures
from ironic.common import exception as ironic_exc
from ironic.common import states
from ironic.conductor import task_manager
from ironic.conductor import utils as manager_utils
from ironic.drivers.modules.network import noop as noop_net
from ironic.tests.unit.objects import utils as obj_utils
from oslo_utils import uuidutils

from bmi_driver.conf import CONF
from bmi_driver.deploy import diskless
from bmi_driver import exception
from bmi_driver.network import boot_files
from tests.unit.deploy import base


class BootFilesTestCase(base.BMITestCase):

    def setUp(self):
        super().setUp()
        self.config(dhcp_provider='none', group='dhcp')
        self.power = self._patch(manager_utils, 'node_power_action')
        for name in ('validate', 'add_provisioning_network',
                     'remove_provisioning_network',
                     'configure_tenant_networks',
                     'unconfigure_tenant_networks'):
            self._patch(noop_net.NoopNetwork, name)
        tmp = self.useFixture(fixtures.TempDir()).path
        self.root_a = os.path.join(tmp, 'a')
        self.root_b = os.path.join(tmp, 'b')
        os.mkdir(self.root_a)
        os.mkdir(self.root_b)
        self.boot_networks({
            base.LESSEE: {'hil_network': 'boot-a', 'portal': '10.78.1.1',
                          'cidr': '10.78.1.0/24', 'http_root': self.root_a},
            'other': {'hil_network': 'boot-b', 'portal': '10.78.2.1',
                      'cidr': '10.78.2.0/24', 'http_root': self.root_b}})
        self.shared = CONF.deploy.http_root
        self.mac = self.port.address.replace(':', '-').lower()

    def deploy(self):
        self.set_state(states.DEPLOYING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.prepare(task)
            task.driver.deploy.deploy(task)

    def files(self, root):
        out = {}
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                path = os.path.join(dirpath, name)
                out[os.path.relpath(path, root)] = stat.S_IMODE(
                    os.lstat(path).st_mode)
        return out

    def test_published_into_the_projects_root_only(self):
        self.deploy()
        uuid = self.node.uuid
        self.assertEqual({'%s/config' % uuid: 0o640,
                          'pxelinux.cfg/%s' % self.mac: 0o640,
                          'boot.ipxe': 0o640}, self.files(self.root_a))
        self.assertEqual({}, self.files(self.root_b))
        with open(os.path.join(self.root_a, uuid, 'config')) as f:
            config = f.read()
        with open(os.path.join(self.shared, uuid, 'config')) as f:
            self.assertEqual(f.read(), config)
        # The sanboot of this node, with its credentials.
        self.assertIn(base.CHAP_SECRET, config)
        self.assertIn('sanboot', config)
        with open(os.path.join(self.root_a, 'pxelinux.cfg', self.mac)) as f:
            self.assertEqual(config, f.read())
        self.node.refresh()
        self.assertEqual(self.root_a, self.node.driver_internal_info[
            diskless.BOOT_FILES_ROOT])

    def test_deploy_drops_files_of_a_deleted_node_of_the_same_uuid(self):
        # Ironic 39.0.0 keeps an existing <uuid>/config and would link no
        # MAC of the new node to it.
        os.makedirs(os.path.join(self.shared, self.node.uuid))
        os.makedirs(os.path.join(self.shared, 'pxelinux.cfg'))
        with open(os.path.join(self.shared, self.node.uuid, 'config'),
                  'w') as f:
            f.write('#!ipxe\nthe old tenant\n')
        old = os.path.join(self.shared, 'pxelinux.cfg', '52-54-00-0f-0f-0f')
        os.symlink('../%s/config' % self.node.uuid, old)
        self.deploy()
        self.assertFalse(os.path.lexists(old))
        with open(os.path.join(self.root_a, 'pxelinux.cfg', self.mac)) as f:
            self.assertNotIn('the old tenant', f.read())

    def test_another_nodes_mac_link_is_not_published(self):
        # Node Y (another project) kept a link for MAC M after its port
        # moved; M is now a port of this node without pxe_enabled, which
        # Ironic 39.0.0 does not link: Y's config (its CHAP secret) must
        # not be copied into this node's project.
        mac = '52:54:00:0e:0e:0e'
        obj_utils.create_test_port(
            self.context, node_id=self.node.id, address=mac,
            pxe_enabled=False, uuid=uuidutils.generate_uuid())
        other = uuidutils.generate_uuid()
        os.makedirs(os.path.join(self.shared, other))
        os.makedirs(os.path.join(self.shared, 'pxelinux.cfg'))
        with open(os.path.join(self.shared, other, 'config'), 'w') as f:
            f.write('#!ipxe\nset password the-other-secret\n')
        os.symlink('../%s/config' % other, os.path.join(
            self.shared, 'pxelinux.cfg', boot_files.mac_file_name(mac)))
        self.deploy()
        self.assertEqual({'%s/config' % self.node.uuid,
                          'pxelinux.cfg/%s' % self.mac, 'boot.ipxe'},
                         set(self.files(self.root_a)))
        for name in self.files(self.root_a):
            with open(os.path.join(self.root_a, name)) as f:
                self.assertNotIn('the-other-secret', f.read())

    def test_withdraw_all_without_macs(self):
        # A node deleted from Ironic: its ports (MACs) are gone too.
        self.deploy()
        other = os.path.join(self.root_a, 'pxelinux.cfg', '52-54-00-ff-ff-ff')
        with open(other, 'w') as f:
            f.write('#!ipxe\nanother node\n')
        self.assertEqual(2, boot_files.withdraw_all(self.root_a,
                                                    self.node.uuid))
        self.assertGreaterEqual(
            boot_files.withdraw_all(self.shared, self.node.uuid), 2)
        for root in (self.root_a, self.shared):
            self.assertFalse(os.path.exists(os.path.join(root,
                                                         self.node.uuid)))
            self.assertFalse(os.path.lexists(
                os.path.join(root, 'pxelinux.cfg', self.mac)))
        self.assertTrue(os.path.exists(other))
        self.assertTrue(os.path.exists(os.path.join(self.root_a,
                                                    'boot.ipxe')))
        self.assertEqual(0, boot_files.withdraw_all(self.root_a,
                                                    self.node.uuid))

    def test_withdrawn_at_tear_down(self):
        self.deploy()
        self.set_state(states.DELETING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.clean_up(task)
            task.driver.deploy.tear_down(task)
        # boot.ipxe stays: the project's other nodes chain it too.
        self.assertEqual({'boot.ipxe': 0o640}, self.files(self.root_a))
        self.node.refresh()
        self.assertNotIn(diskless.BOOT_FILES_ROOT,
                         self.node.driver_internal_info)

    def test_withdrawn_after_the_ports_mac_changed(self):
        # Ironic 39.0.0 lets an ACTIVE node's port change its address in
        # maintenance: the copy published for the old MAC goes too.
        self.deploy()
        self.port.address = '52:54:00:0d:0d:0d'
        self.port.save()
        self.set_state(states.DELETING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.clean_up(task)
            task.driver.deploy.tear_down(task)
        self.assertEqual({'boot.ipxe': 0o640}, self.files(self.root_a))

    def test_withdrawn_when_the_deploy_fails(self):
        def power(task, state):
            if state == states.POWER_ON:
                raise ironic_exc.PowerStateFailure(pstate=state)

        self.power.side_effect = power
        self.set_state(states.DEPLOYING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.prepare(task)
            self.assertRaises(ironic_exc.PowerStateFailure,
                              task.driver.deploy.deploy, task)
        self.assertEqual({'boot.ipxe': 0o640}, self.files(self.root_a))
        # Ironic's own copy is Ironic's to remove (clean_up).
        self.assertTrue(os.path.isfile(os.path.join(
            self.shared, self.node.uuid, 'config')))

    def test_moved_project_leaves_nothing_behind(self):
        self.deploy()
        self.node.lessee = 'other'
        self.node.save()
        with task_manager.acquire(self.context, self.node.uuid) as task:
            diskless._publish_boot_files(task)
        self.assertEqual({'boot.ipxe': 0o640}, self.files(self.root_a))
        self.assertIn('%s/config' % self.node.uuid, self.files(self.root_b))

    def test_mode_and_group(self):
        self.config(boot_file_mode='0600', group='bmi')
        self.deploy()
        self.assertEqual({0o600}, set(self.files(self.root_a).values()))
        self.config(boot_file_group='no-such-group-bmi', group='bmi')
        with task_manager.acquire(self.context, self.node.uuid) as task:
            self.assertRaises(ironic_exc.StorageError,
                              diskless._publish_boot_files, task)

    def test_missing_project_root_publishes_nothing(self):
        os.rmdir(self.root_a)
        self.set_state(states.DEPLOYING)
        with task_manager.acquire(self.context, self.node.uuid) as task:
            task.driver.deploy.prepare(task)
            e = self.assertRaises(ironic_exc.StorageError,
                                  task.driver.deploy.deploy, task)
        self.assertIn('does not exist', str(e))
        self.power.assert_has_calls([mock.call(mock.ANY, states.POWER_OFF)])
        self.assertNotIn(mock.call(mock.ANY, states.POWER_ON),
                         self.power.mock_calls)

    def test_shared_mode_publishes_nothing(self):
        self.config(boot_networks_file=None, group='bmi')
        self.deploy()
        self.assertEqual({}, self.files(self.root_a))
        self.assertTrue(os.path.isfile(os.path.join(
            self.shared, self.node.uuid, 'config')))


class LibraryTestCase(base.BMITestCase):

    def test_roots_apart(self):
        shared = CONF.deploy.http_root
        for root in (shared, os.path.join(shared, 'p'),
                     os.path.dirname(shared)):
            self.assertRaises(exception.BootNetworkConfigError,
                              boot_files.check_roots, shared, root)

    def test_withdraw_is_idempotent(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        boot_files.withdraw(tmp, self.node.uuid, ['52:54:00:00:00:01'])
        boot_files.withdraw(tmp, self.node.uuid, ['52:54:00:00:00:01'])
