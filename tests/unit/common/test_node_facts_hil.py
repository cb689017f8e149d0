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


"""node_facts' HIL names: data, not URL paths, refused before any request."""

import types

from bmi_driver.common import node_facts
from bmi_driver import exception
from tests import base


def fake_node(name='node-1', driver_info=None, instance_info=None):
    return types.SimpleNamespace(
        uuid='1be26c0b-03f2-4d2e-ae87-c02d7f33c123', name=name, owner=None,
        lessee=None, driver_info=driver_info or {},
        instance_info=instance_info or {})


BAD_NAMES = ('x/../other', '?x', '#x', '..', 'a b', 'a\nb', 'a%2Fb', 'n/1',
             'n' * 256)


class TestHILNames(base.TestCase):

    def test_node_name(self):
        self.assertEqual('node-1', node_facts.hil_node_name(fake_node()))
        self.assertEqual('hil-7', node_facts.hil_node_name(
            fake_node(driver_info={'hil_node': 'hil-7'})))
        for bad in BAD_NAMES:
            for node in (fake_node(name=bad),
                         fake_node(driver_info={'hil_node': bad})):
                e = self.assertRaises(exception.NodeFactInvalid,
                                      node_facts.hil_node_name, node)
                self.assertIn('Invalid HIL node name', str(e))
                self.assertIn(node.uuid, str(e))

    def test_tenant_network_names(self):
        for bad in BAD_NAMES:
            for entry in ({'network': bad, 'nic': 'eth1'},
                          {'network': 'net-a', 'nic': bad}):
                node = fake_node(instance_info={'hil_networks': [entry]})
                e = self.assertRaises(exception.NodeFactInvalid,
                                      node_facts.tenant_networks, node)
                self.assertIn('Invalid HIL', str(e))

    def test_nic_by_mac(self):
        node = fake_node(instance_info={'hil_networks': [
            {'network': 'net-a', 'nic': '52:54:00:00:00:02'}]})
        self.assertEqual([{'network': 'net-a', 'nic': '52:54:00:00:00:02',
                           'channel': None}],
                         node_facts.tenant_networks(node))
