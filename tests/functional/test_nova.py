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

"""Nova 34.0.0's own ironic driver drives the lab's Ironic (issue 14).

``tools.lab.nova.Harness`` runs ``nova.virt.ironic.driver.IronicDriver``
in Nova's venv against the lab's Ironic all-in-one and Glance (see
tools/lab/nova_harness.py for what is Nova's and what is stubbed). The
nodes use fake power, so no machine boots: a real iSCSI initiator reads
the node's disk and the config drive Nova's ConfigDriveBuilder made.
Here the node has Ironic's ``noop`` network interface and one Neutron
port of the lab's Neutron as its VIF (Nova 34.0.0 builds no config drive
for an instance without one), which ``noop`` drops;
tests/functional/test_neutron_vifs.py spawns with Neutron ports through
the ``hil`` interface, tests/functional/test_guest.py boots the real
guest that way.
"""

import json
import os

import rados
import rbd
from testtools import content

from tests.functional import test_ironic
from tools.lab import nova
from tools.lab import soak_census


class NovaDriverTest(test_ironic.IronicHelpers):
    """spawn, power, reboot, rebuild, destroy through Nova's driver."""

    def setUp(self):
        super().setUp()
        # The shared Ironic all-in-one (the helpers only: IronicTestCase's
        # own tests run in test_ironic).
        self.use_ironic(self.env.get('ironic_state'))
        # A project of the lab's boot networks (per-project mode: a node
        # boots only on its project's own).
        self.project = 'tenant-a'
        neutron = (self.env.get('services') or {}).get('neutron') or {}
        self.neutron = nova.neutron(self.env)
        self.harness = nova.from_services(self.env,
                                          neutron_url=neutron.get('url'))
        self.harness.start()
        self.addCleanup(self.harness.stop)
        self.addOnException(self._attach_harness_log)

    def _attach_harness_log(self, exc_info):
        self.addDetail('nova-harness.log', content.text_content(
            self.harness.log_tail(60)))
        self.addDetail('ironic.log', content.text_content(
            self.ironic_log(60)))

    def nova_node(self):
        """A node enrolled as the README says, then set up for Nova."""
        node = self.create_node(lessee=self.project)
        nova.prepare_node(self.ironic, node.uuid)
        return node

    def census(self, node_uuid):
        """What Ceph, tgtd and Ironic still hold for the node."""
        pool = self.env['image_pool']
        admin = rados.Rados(conffile=self.env['ceph_conf'])
        admin.connect(timeout=10)
        try:
            ioctx = admin.open_ioctx(pool)
            try:
                # Clones and config drives (node-<uuid>[-config]).
                names = rbd.RBD().list(ioctx)
            finally:
                ioctx.close()
        finally:
            admin.shutdown()
        seen = soak_census.rbd_names(names, pool)
        served = self.exports.backend.list_targets()
        seen += [soak_census.Seen('target', node_uuid, t.iqn)
                 for t in served
                 if t.iqn == self.exports.target_iqn(node_uuid)]
        seen += soak_census.volume_targets(
            [{'node_uuid': v.node_uuid, 'uuid': v.uuid}
             for v in self.ironic.volume_target.list(node=node_uuid)])
        return [r for r in seen if r.node == node_uuid]

    def neutron_port(self, cidr):
        """A port of a new vlan network of the project (cleaned up)."""
        net = self.neutron.create_network(
            name=self.unique('net'), project_id=self.project,
            provider_network_type='vlan',
            provider_physical_network=self.env['services']['neutron'][
                'physnet'])
        self.addCleanup(self.neutron.delete_network, net,
                        ignore_missing=True)
        self.neutron.create_subnet(network_id=net.id, cidr=cidr,
                                   ip_version=4, project_id=self.project)
        port = self.neutron.create_port(network_id=net.id,
                                        project_id=self.project)
        self.addCleanup(self.neutron.delete_port, port,
                        ignore_missing=True)
        return port

    def deployment(self, node_uuid):
        node = self.ironic.node.get(node_uuid)
        return (node.driver_internal_info or {}).get('bmi_deployment')

    def test_spawn_power_reboot_rebuild_destroy(self):
        data = os.urandom(test_ironic.IMAGE_SIZE)
        path = os.path.join(self.tmp, 'disk.raw')
        with open(path, 'wb') as f:
            f.write(data)
        images, image = nova.upload_image(self.env, self.project, path,
                                          self.unique('nova'))
        self.addCleanup(images.delete_image, image, ignore_missing=True)
        node = self.nova_node()
        flavor = nova.flavor(root_gb=1)
        vif = self.neutron_port('10.80.0.0/24')
        vif_ip = vif.fixed_ips[0]['ip_address']

        sched = self.harness.call('schedule', node=node.uuid,
                                  extra_specs=flavor['extra_specs'])
        inv = sched['inventory']['CUSTOM_BAREMETAL_BMI']
        self.assertEqual((1, 0), (inv['total'], inv['reserved']))

        spawned = self.harness.call(
            'spawn', node=node.uuid, image=image, flavor=flavor,
            project_id=self.project, name='vm-nova',
            key={'name': 'k1', 'public_key': 'ssh-ed25519 AAAAC3Nza test'},
            user_data='#!/bin/sh\necho hello\n',
            network={'source': 'neutron', 'ports': [vif.id]})
        inst = spawned['instance']
        n = self.ironic.node.get(node.uuid)
        self.assertEqual(('active', None),
                         (n.provision_state, n.target_provision_state))
        self.assertEqual(inst, n.instance_uuid)
        # What Nova wrote (nova 34.0.0's patcher).
        self.assertEqual(image, n.instance_info['image_source'])
        self.assertEqual(self.project, n.instance_info['project_id'])
        self.assertEqual('1', n.instance_info['root_gb'])
        # The clone of Glance's own snapshot, read through an initiator.
        disk = self.lib.get_node_disk(node.uuid)
        self.assertEqual('%s/%s@snap' % (self.env['glance_pool'], image),
                         disk.parent)
        self.assertEqual(data[:4096],
                         self.lun_bytes(node.uuid, 0, 4096))
        # Nova's config drive on LUN 2: ISO 9660 "config-2", the
        # instance's uuid, key and user-data.
        self.assertEqual(2, self.boot_target(node.uuid)
                         .properties['config_drive_lun'])
        iso = self.read_lun(node.uuid, lun=2)
        self.assertEqual('config-2', nova.iso_volume_id(iso))
        meta = json.loads(nova.iso_file(iso,
                                        'openstack/latest/meta_data.json'))
        self.assertEqual(inst, meta['uuid'])
        self.assertEqual({'k1': 'ssh-ed25519 AAAAC3Nza test'},
                         meta['public_keys'])
        self.assertEqual(b'#!/bin/sh\necho hello\n',
                         nova.iso_file(iso, 'openstack/latest/user_data'))
        # noop dropped the VIF (issue 14 item 3: vif_list is empty), so
        # Nova's network_data.json has the Neutron port's own MAC, which
        # no nic of the node has.
        self.assertEqual([], self.ironic.node.vif_list(node.uuid))
        net = json.loads(nova.iso_file(
            iso, 'openstack/latest/network_data.json'))
        self.assertEqual([(vif.id, vif.mac_address)],
                         [(ln['vif_id'], ln['ethernet_mac_address'])
                          for ln in net['links']])
        self.assertNotIn(vif.mac_address, [
            p.address for p in self.ironic.port.list(node=node.uuid)])
        self.assertEqual([vif_ip],
                         [n['ip_address'] for n in net['networks']])
        # Used: placement would see it reserved.
        sched = self.harness.call('schedule', node=node.uuid)
        self.assertEqual(1, sched['inventory']['CUSTOM_BAREMETAL_BMI']
                         ['reserved'])

        off = self.harness.call('power_off', instance=inst)
        self.assertEqual('power off', off['node']['power_state'])
        self.assertEqual('power off',
                         self.ironic.node.get(node.uuid).power_state)
        on = self.harness.call('power_on', instance=inst)
        self.assertEqual('power on', on['node']['power_state'])
        self.harness.call('reboot', instance=inst, type='HARD')
        self.assertEqual('power on',
                         self.ironic.node.get(node.uuid).power_state)
        # The disk stays across power and reboot.
        self.assertEqual(disk.rbd_name,
                         self.lib.get_node_disk(node.uuid).rbd_name)

        # Nova attaches and detaches a second VIF; Ironic's noop network
        # interface accepts and drops them (issue 14 item 3: its vif_list
        # stays empty).
        second = self.neutron_port('10.80.1.0/24')
        self.harness.call('attach_interface', instance=inst,
                          port=second.id)
        self.assertEqual([], self.ironic.node.vif_list(node.uuid))
        self.harness.call('detach_interface', instance=inst,
                          port=second.id)

        first = self.deployment(node.uuid)
        self.assertIsNotNone(first)
        for preserve in (False, True):
            before = self.deployment(node.uuid)
            rebuilt = self.harness.call('rebuild', instance=inst,
                                        preserve_ephemeral=preserve)
            self.assertEqual('active', rebuilt['node']['provision_state'])
            self.assertEqual(str(preserve), rebuilt['node']['instance_info']
                             ['preserve_ephemeral'])
            after = self.deployment(node.uuid)
            self.assertNotEqual(before, after)
            self.assertEqual(data[:4096],
                             self.lun_bytes(node.uuid, 0, 4096))
            self.assertEqual(inst, self.ironic.node.get(node.uuid)
                             .instance_uuid)

        gone = self.harness.call('destroy', instance=inst)
        self.assertIn(gone['node']['provision_state'],
                      ('available', 'cleaning', 'clean wait'))
        n = self.wait(node.uuid, 'available')
        self.assertIsNone(n.instance_uuid)
        self.assertEqual({}, n.instance_info)
        self.assert_released(node.uuid)
        self.assertEqual([], self.census(node.uuid))
        sched = self.harness.call('schedule', node=node.uuid,
                                  extra_specs=flavor['extra_specs'])
        self.assertEqual(0, sched['inventory']['CUSTOM_BAREMETAL_BMI']
                         ['reserved'])

    def test_node_without_resource_class_is_not_schedulable(self):
        # The README's enrollment before the "Nova" subsection (issue 14,
        # item 6): Nova 34.0.0 raises NoResourceClass for it.
        node = self.create_node(lessee=self.project)
        err = self.assertRaises(nova.HarnessError, self.harness.call,
                                'schedule', node=node.uuid)
        self.assertEqual('NoResourceClass', err.type)
