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

"""The hil interface in per-project mode: each project's own boot network.

Against the HIL test server (tools/lab/hil_emulator), as test_hil.py.
"""

import json
import os

import fixtures
from ironic.common import exception as ironic_exc
from ironic.common import states

from bmi_driver.network import boot_networks
from bmi_driver.network import hil
from bmi_driver.network import hil_client
from tests.unit.network import test_hil

LESSEE = test_hil.LESSEE
_SEED = test_hil.seed


def seed():
    data = _SEED()
    data['networks'].update({
        'boot-a': {'owner': 'admin', 'access': [LESSEE], 'net_id': '1101'},
        'boot-other': {'owner': 'admin', 'access': ['other'],
                       'net_id': '1102'},
        'boot-public': {'owner': 'admin', 'access': [], 'net_id': '1103'},
    })
    return data


def entry(network, third):
    return {'hil_network': network, 'portal': '10.78.%d.1:3260' % third,
            'cidr': '10.78.%d.0/24' % third,
            'http_root': '/srv/bmi-boot/%d' % third}


class _Base(test_hil.HILNetworkTestCase):

    def setUp(self):
        self.useFixture(fixtures.MonkeyPatch(
            'tests.unit.network.test_hil.seed', seed))
        super().setUp()
        self.registry({LESSEE: entry('boot-a', 1),
                       'other': entry('boot-other', 2)})

    def registry(self, data):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'boot-networks.json')
        with open(path, 'w') as f:
            json.dump(data, f)
        self.config(boot_networks_file=path, group='bmi')
        boot_networks.reset_cache()
        self.addCleanup(boot_networks.reset_cache)


class TestPerProjectBootNetwork(_Base):

    def test_boot_nic_joins_the_projects_own_network(self):
        with self.acquire() as task:
            self.interface.add_provisioning_network(task)
            self.assertEqual({'eth0': {'vlan/native': 'boot-a'}, 'eth1': {}},
                             self.networks())
            self.assertEqual('boot-a', task.node.driver_internal_info[
                hil.BOOT_NETWORK])
            self.interface.remove_provisioning_network(task)
            self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())
            self.assertNotIn(hil.BOOT_NETWORK,
                             task.node.driver_internal_info)

    def test_teardown_leaves_the_recorded_network_after_a_change(self):
        with self.acquire() as task:
            self.interface.add_provisioning_network(task)
        # The operator moves the project meanwhile, or drops it.
        self.registry({'other': entry('boot-other', 2)})
        with self.acquire() as task:
            self.interface.unconfigure_tenant_networks(task)
            self.assertEqual({'vlan/native': 'boot-a'},
                             self.networks()['eth0'])
            self.interface.remove_provisioning_network(task)
        self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())

    def test_tenant_networks_never_take_the_boot_network_off(self):
        self.set_tenant_networks([{'network': 'net-a', 'nic': 'eth1'}])
        with self.acquire() as task:
            self.interface.add_provisioning_network(task)
            self.interface.configure_tenant_networks(task)
            self.interface.unconfigure_tenant_networks(task)
            self.assertEqual({'eth0': {'vlan/native': 'boot-a'}, 'eth1': {}},
                             self.networks())

    def test_validate_checks_the_boot_network(self):
        self.node.provision_state = states.AVAILABLE
        self.node.save()
        with self.acquire() as task:
            self.interface.validate(task)

    def _refused(self, registry, *texts):
        self.registry(registry)
        self.node.provision_state = states.AVAILABLE
        self.node.save()
        with self.acquire() as task:
            e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                  self.interface.validate, task)
        for text in texts:
            self.assertIn(text, str(e))
        return e

    def test_validate_refusals(self):
        self._refused({'other': entry('boot-other', 2)},
                      'Project tenant-a has no boot network')
        self._refused({LESSEE: entry('boot-missing', 1)},
                      'Boot network boot-missing of project tenant-a')
        self._refused({LESSEE: entry('boot-public', 1)},
                      'is public in HIL')
        e = self._refused({LESSEE: entry('boot-other', 1)},
                          'other projects access to it too')
        # Not which: the text reaches the API user.
        self.assertNotIn('project(s) other', str(e))
        self._refused({LESSEE: entry('net-x', 1)}, 'net-x')

    def test_shared_mode_stays_as_it_was(self):
        self.config(boot_networks_file=None, group='bmi')
        with self.acquire() as task:
            self.interface.add_provisioning_network(task)
            self.assertEqual({'vlan/native': 'prov'},
                             self.networks()['eth0'])
            self.interface.remove_provisioning_network(task)


class TestBootNetworksAreNoTenantNetworks(_Base):
    """3: boot networks are the plugin's, never a tenant network."""

    def test_refused_at_validate(self):
        for network in ('prov', 'boot-a', 'boot-other'):
            self.set_tenant_networks([{'network': network, 'nic': 'eth1'}])
            for state in (states.AVAILABLE, states.ACTIVE):
                self.node.provision_state = state
                self.node.save()
                with self.acquire() as task:
                    e = self.assertRaises(ironic_exc.InvalidParameterValue,
                                          self.interface.validate, task)
                self.assertIn('network %s is reserved for booting'
                              % network, str(e))

    def test_never_joined(self):
        # Before the refusal, in per-project mode the provisioning network
        # joined eth1 and stayed there after the undeploy.
        self.set_tenant_networks([{'network': 'prov', 'nic': 'eth1',
                                   'channel': 'vlan/1000'}])
        with self.acquire() as task:
            self.interface.add_provisioning_network(task)
            self.assertRaises(ironic_exc.InvalidParameterValue,
                              self.interface.configure_tenant_networks, task)
            self.interface.unconfigure_tenant_networks(task)
            self.interface.remove_provisioning_network(task)
        self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())

    def test_shared_mode_refuses_the_provisioning_network(self):
        self.config(boot_networks_file=None, group='bmi')
        self.set_tenant_networks([{'network': 'prov', 'nic': 'eth1'}])
        with self.acquire() as task:
            self.assertRaises(ironic_exc.InvalidParameterValue,
                              self.interface.validate, task)
        # A network of a registry no longer in use is a tenant's again.
        self.set_tenant_networks([{'network': 'boot-a', 'nic': 'eth1'}])
        with self.acquire() as task:
            self.interface.validate(task)

    def test_one_joined_before_is_left_at_teardown(self):
        with self.acquire() as task:
            self.interface.add_provisioning_network(task)
        # A deployment from before the refusal: prov on eth1, tagged.
        hil_client.HILClient().connect_networks(
            'node-1', [('eth1', 'prov', 'vlan/1000')], [])
        self.assertEqual({'eth0': {'vlan/native': 'boot-a'},
                          'eth1': {'vlan/1000': 'prov'}}, self.networks())
        with self.acquire() as task:
            self.interface.unconfigure_tenant_networks(task)
            self.interface.remove_provisioning_network(task)
        self.assertEqual({'eth0': {}, 'eth1': {}}, self.networks())
