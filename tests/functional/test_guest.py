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

"""The real guest: Debian 12 spawned by Nova's own driver on a Neutron port.

tools/demo/build-debian.sh builds the image from Debian's packages
(cached); ``tools.lab.nova_guest.NovaGuestScenario`` uploads it to Glance,
makes a Neutron port of the project's vlan network, has Nova 34.0.0's
``IronicDriver`` (tools/lab/nova.py's harness) spawn the instance with
that port, a key pair and user-data, waits for cloud-init's marker, logs
in over SSH from the lab's network namespace, and checks that Nova's
destroy leaves nothing (see its docstring).

This is the one real-guest boot of ``make test``: it covers what the
Ironic-path guest (``tools.lab.guest.GuestScenario``, Ironic's own config
drive; ``make demo`` runs it) checked, config drive applied, SSH login,
the iSCSI root surviving cloud-init, through Nova's path and its config
drive instead; and the flavor's ephemeral disk and swap (LUNs 3 and 4)
mounted and swapped on by the guest's cloud-init (doc/export.md, "Nova's
metadata": the image mounts them by label).
"""

from testtools import content

from tests.functional import test_e2e_boot
from tools.lab import nova
from tools.lab import nova_guest

GUEST_BOOT_TIMEOUT = 900


class NovaDebianGuestTest(test_e2e_boot.IronicLabTestCase):
    """Nova's own driver spawns the guest; cloud-init; SSH login."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.image_path = test_e2e_boot.built_image(
            'build-debian.sh', 'bmi-debian.raw')

    def test_nova_spawns_debian_guest_on_a_neutron_port(self):
        neutron = self.services['services']['neutron']
        harness = nova.from_services(self.services,
                                     neutron_url=neutron.get('url'))
        harness.start()
        self.addCleanup(harness.stop)
        self.addOnException(lambda exc_info: self.addDetail(
            'nova-harness.log', content.text_content(harness.log_tail(60))))
        scenario = self.scenario(nova_guest.NovaGuestScenario, 'ndeb', 0xc5,
                                 project=test_e2e_boot.PROJECT,
                                 harness=harness, env=self.services)
        scenario.boot_timeout = GUEST_BOOT_TIMEOUT
        scenario.run()
        node = scenario.nodes[0]
        port = scenario.neutron_port
        # cloud-init ran Nova's instance: its uuid, its hostname.
        self.assertEqual(scenario.instance_uuid, scenario.guest['uuid'])
        self.assertEqual(scenario.hostname, scenario.login[0])
        # The root is still the iSCSI LUN of the node's own target.
        self.assertTrue(scenario.login[1].startswith('/dev/sd'))
        self.assertTrue(scenario.login[2].endswith(':' + node.uuid))
        # The flavor's ephemeral disk at /mnt and its swap, as cloud-init
        # set them up from Nova's metadata: bmi's LUNs, by their labels
        # (never a partition of the root disk).
        self.assertEqual('ephemeral0', scenario.scratch['mnt'][-1],
                         scenario.scratch)
        self.assertIn('swap1', [s[-1] for s in scenario.scratch['swap']],
                      scenario.scratch)
        # While ACTIVE: the VIF's HIL network on the boot nic (tagged,
        # beside the boot network), the port bound to the node, and
        # Nova's network data of that port on the boot nic's MAC.
        self.assertEqual(
            {'vlan/native': self.net.boot_networks[
                test_e2e_boot.PROJECT].hil_network,
             'vlan/%d' % self.net.vlan(scenario.vif_network):
                scenario.vif_network}, scenario.attached)
        self.assertEqual(node.uuid, scenario.bound.binding_host_id)
        self.assertEqual(
            [(port.id, node.mac)],
            [(ln['vif_id'], ln['ethernet_mac_address'])
             for ln in scenario.network_data['links']])
        self.assertEqual([port.fixed_ips[0]['ip_address']],
                         [n['ip_address']
                          for n in scenario.network_data['networks']])
        self.progress.extend(scenario.summary())
