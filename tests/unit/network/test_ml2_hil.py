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

"""The ``bmi_hil`` ML2 mechanism driver, with a fake PortContext.

No Neutron process: the driver sees what ML2 (Neutron 29.0.0) hands a
mechanism driver's ``bind_port``, a PortContext (here the fake below,
whose ``set_binding`` has neutron-lib 5.0.1's signature) on its own
configuration object.
"""

import inspect

from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api
from oslo_config import cfg
import stevedore

from bmi_driver.network import ml2_hil
from tests import base

NODE = '1be26c0b-03f2-4d4d-8b3c-7c1e3c0e1c11'


def _segment(seg_id, net_type='vlan', physnet='lab', vlan=1001):
    return {api.ID: seg_id, api.NETWORK_TYPE: net_type,
            api.PHYSICAL_NETWORK: physnet, api.SEGMENTATION_ID: vlan}


class FakePortContext(object):
    """What ML2 gives bind_port: the port, its host, the segments."""

    def __init__(self, segments, vnic=portbindings.VNIC_BAREMETAL,
                 host=NODE, profile=None):
        self.current = {
            'id': 'port-1', portbindings.VNIC_TYPE: vnic,
            portbindings.HOST_ID: host,
            portbindings.PROFILE: profile if profile is not None else {
                'local_link_information': [{
                    'switch_id': '00:00:00:00:00:01',
                    'switch_info': 'br-lab', 'port_id': 'tap1'}]}}
        self.host = host
        self.segments_to_bind = segments
        self.bindings = []

    def set_binding(self, segment_id, vif_type, vif_details, status=None):
        self.bindings.append((segment_id, vif_type, vif_details, status))


class HILMechanismDriverTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.driver = self.make_driver(['lab'])

    def make_driver(self, physnets):
        conf = cfg.ConfigOpts()
        conf([], project='neutron')
        ml2_hil.register_opts(conf)
        conf.set_override('physical_networks', physnets,
                          group=ml2_hil.GROUP)
        driver = ml2_hil.HILMechanismDriver(conf)
        driver.initialize()
        return driver

    def bind(self, context, driver=None):
        (driver or self.driver).bind_port(context)
        return context.bindings

    def test_fake_has_neutron_libs_set_binding(self):
        self.assertEqual(
            inspect.signature(api.PortContext.set_binding),
            inspect.signature(FakePortContext.set_binding))

    def test_binds_baremetal_vlan_port_active_as_other(self):
        ctx = FakePortContext([_segment('seg-1')])
        self.assertEqual([('seg-1', portbindings.VIF_TYPE_OTHER, {},
                           'ACTIVE')], self.bind(ctx))

    def test_picks_the_segment_of_its_physnet(self):
        ctx = FakePortContext([_segment('seg-vx', 'vxlan', None, 7),
                               _segment('seg-other', physnet='other'),
                               _segment('seg-lab', vlan=1002)])
        self.assertEqual(['seg-lab'], [b[0] for b in self.bind(ctx)])

    def test_leaves_other_vnic_types(self):
        for vnic in (portbindings.VNIC_NORMAL, portbindings.VNIC_DIRECT,
                     'smart-nic'):
            ctx = FakePortContext([_segment('seg-1')], vnic=vnic)
            self.assertEqual([], self.bind(ctx), vnic)

    def test_leaves_other_physnets_and_network_types(self):
        for seg in (_segment('s', physnet='other'),
                    _segment('s', net_type='flat', vlan=None),
                    _segment('s', net_type='vxlan', physnet=None)):
            self.assertEqual([], self.bind(FakePortContext([seg])), seg)

    def test_leaves_a_port_without_host(self):
        self.assertEqual([], self.bind(FakePortContext([_segment('s')],
                                                       host='')))

    def test_profile_physical_network_must_match(self):
        other = FakePortContext([_segment('s')],
                                profile={'physical_network': 'other'})
        self.assertEqual([], self.bind(other))
        same = FakePortContext([_segment('s')],
                               profile={'physical_network': 'lab'})
        self.assertEqual(['s'], [b[0] for b in self.bind(same)])

    def test_binds_without_local_link_information(self):
        # HIL finds the nic by its MAC address: a port with no
        # local_link_connection in Ironic is still HIL's.
        ctx = FakePortContext([_segment('s')], profile={})
        self.assertEqual(['s'], [b[0] for b in self.bind(ctx)])

    def test_empty_physnets_binds_nothing(self):
        driver = self.make_driver([])
        self.assertEqual([], self.bind(FakePortContext([_segment('s')]),
                                       driver))

    def test_no_segments(self):
        self.assertEqual([], self.bind(FakePortContext([])))
        self.assertEqual([], self.bind(FakePortContext(None)))

    def test_l2_connectivity(self):
        # ML2 binds a port without a fixed IP only with an "l2" driver.
        self.assertEqual(portbindings.CONNECTIVITY_L2,
                         self.driver.connectivity)

    def test_port_and_network_events_change_nothing(self):
        # Unbind and delete have no switch work: HIL's detach is the hil
        # interface's. The base class's hooks are not overridden.
        for hook in ('update_port_postcommit', 'delete_port_postcommit',
                     'create_network_postcommit',
                     'delete_network_postcommit'):
            self.assertIs(getattr(api.MechanismDriver, hook),
                          getattr(ml2_hil.HILMechanismDriver, hook), hook)

    def test_default_conf_is_neutrons(self):
        self.assertIs(cfg.CONF, ml2_hil.HILMechanismDriver()._conf)

    def test_list_opts(self):
        [(group, opts)] = ml2_hil.list_opts()
        self.assertEqual('ml2_bmi_hil', group)
        self.assertEqual(['physical_networks'], [o.name for o in opts])

    def test_entry_point_loads_the_driver(self):
        # What ML2's MechanismManager does (Neutron 29.0.0): stevedore,
        # namespace neutron.ml2.mechanism_drivers, by name.
        mgr = stevedore.NamedExtensionManager(
            'neutron.ml2.mechanism_drivers', ['bmi_hil'],
            invoke_on_load=False)
        self.assertEqual([ml2_hil.HILMechanismDriver],
                         [ext.plugin for ext in mgr])
