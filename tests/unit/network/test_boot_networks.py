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

"""The registry of per-project boot networks ([bmi] boot_networks_file)."""

import json
import os
import types
from unittest import mock

import fixtures
# Registers Ironic 39.0.0's [DEFAULT] host, as in a conductor.
from ironic import conf as ironic_conf  # noqa: F401

from bmi_driver.common import node_facts
from bmi_driver import exception
from bmi_driver.network import boot_networks
from tests import base

A = {'hil_network': 'boot-a', 'portal': '10.78.1.1:3260',
     'cidr': '10.78.1.0/24', 'http_root': '/srv/bmi-boot/a'}
B = {'hil_network': 'boot-b', 'portal': '10.78.2.1',
     'cidr': '10.78.2.0/24', 'http_root': '/srv/bmi-boot/b'}


class _Base(base.TestCase):

    def setUp(self):
        super().setUp()
        boot_networks.reset_cache()
        self.addCleanup(boot_networks.reset_cache)
        self.path = os.path.join(self.state_dir, 'boot-networks.json')

    def write(self, data):
        text = data if isinstance(data, str) else json.dumps(data)
        with open(self.path, 'w') as f:
            f.write(text)
        self.config(boot_networks_file=self.path, group='bmi')

    def refused(self, data, *texts):
        self.write(data)
        e = self.assertRaises(exception.BootNetworkConfigError,
                              boot_networks.load)
        self.assertIn(self.path, str(e))
        for text in texts:
            self.assertIn(text, str(e))
        return e


class TestRegistry(_Base):

    def test_shared_mode(self):
        self.assertFalse(boot_networks.enabled())
        self.assertIsNone(boot_networks.load())
        self.assertIsNone(boot_networks.for_project('a'))

    def test_entries(self):
        self.write({'a': A, 'b': B})
        nets = boot_networks.load()
        self.assertEqual(['a', 'b'], sorted(nets))
        a = nets['a']
        self.assertEqual(('boot-a', '10.78.1.1', 3260, '10.78.1.0/24',
                          '/srv/bmi-boot/a'),
                         (a.hil_network, a.portal_address, a.portal_port,
                          a.cidr, a.http_root))
        self.assertEqual('10.78.1.1:3260', a.portal)
        self.assertEqual('10.78.1.0/24', a.acl_address)
        self.assertEqual(3260, nets['b'].portal_port)
        self.assertIs(a, boot_networks.for_project('a'))

    def test_single_address_acl_is_bare(self):
        # tgt 1.0.85 never matches a /32 entry (measured).
        self.write({'a': dict(A, cidr='10.78.1.1/32', portal='10.78.1.1')})
        self.assertEqual('10.78.1.1', boot_networks.load()['a'].acl_address)

    def test_ipv6(self):
        self.write({'a': dict(A, cidr='fd00:1::/64',
                              portal='[fd00:1::1]:3261')})
        net = boot_networks.load()['a']
        self.assertEqual('[fd00:1::1]:3261', net.portal)

    def test_project_without_entry(self):
        self.write({'a': A})
        e = self.assertRaises(exception.BootNetworkMissing,
                              boot_networks.for_project, 'b')
        self.assertIn('Project b has no boot network', str(e))
        self.assertRaises(exception.BootNetworkMissing,
                          boot_networks.for_project, None)

    def test_malformed(self):
        self.refused('{not json', 'not JSON')
        self.refused('[]', 'must be a JSON object')
        self.refused({'a': 'x'}, 'must be an object')
        self.refused({'a': {'portal': '10.78.1.1'}},
                     'missing cidr', 'missing hil_network')
        self.refused({'a': dict(A, extra=1)}, 'unknown key extra')

    def test_bad_values(self):
        self.refused({'a': dict(A, cidr='10.78.1.1/24')},
                     "cidr '10.78.1.1/24' is not a network")
        self.refused({'a': dict(A, portal='gateway:3260')}, 'portal')
        self.refused({'a': dict(A, portal='10.78.1.1:99999')},
                     'is not a TCP port')
        self.refused({'a': dict(A, portal='10.78.9.1')},
                     'portal address 10.78.9.1 is not in cidr')
        self.refused({'a': dict(A, http_root='srv/a')}, 'absolute path')
        self.refused({'a': dict(A, http_root='/srv/../etc')}, '".."')
        self.refused({'a': dict(A, hil_network='x/../y')},
                     'Invalid HIL network name')
        self.refused({'x/../y': A}, 'Invalid HIL project name')
        self.refused({'a': dict(A, hil_network='bmi-provisioning')},
                     'provisioning_network')

    def test_projects_kept_apart(self):
        self.refused({'a': A, 'b': dict(B, hil_network='boot-a')},
                     "projects 'a' and 'b' share hil_network boot-a")
        self.refused({'a': A, 'b': dict(B, cidr='10.78.0.0/16',
                                        portal='10.78.2.1')},
                     'overlapping cidrs')
        self.refused({'a': A, 'b': dict(B, http_root='/srv/bmi-boot/a/b')},
                     'nested http_roots')
        self.refused({'a': A, 'b': dict(B, http_root='/srv/bmi-boot/a')},
                     'nested http_roots')

    def test_every_problem_named(self):
        e = self.refused({'a': dict(A, cidr='x'), 'b': dict(B, portal='y')})
        self.assertIn("project 'a'", str(e))
        self.assertIn("project 'b'", str(e))

    def test_unreadable(self):
        self.config(boot_networks_file=self.path + '.missing', group='bmi')
        e = self.assertRaises(exception.BootNetworkConfigError,
                              boot_networks.load)
        self.assertIn('cannot be read', str(e))


class TestPerConductorPortals(_Base):
    """Each conductor's own gateway on the network ("portals")."""

    PORTALS = {'conductor-1': '10.78.1.1:3260', 'conductor-2': '10.78.1.2'}

    def test_each_conductor_announces_its_gateway(self):
        self.write({'a': dict(A, portals=self.PORTALS), 'b': B})
        net = boot_networks.load()['a']
        self.assertEqual('10.78.1.2:3260', net.portal_for('conductor-2'))
        self.assertEqual('10.78.1.1:3260', net.portal_for('other'))
        self.assertEqual(frozenset(['10.78.1.1:3260', '10.78.1.2:3260']),
                         net.all_portals)
        c2 = boot_networks.for_project('a', host='conductor-2')
        self.assertEqual(('10.78.1.2', 3260, '10.78.1.2:3260'),
                         (c2.portal_address, c2.portal_port, c2.portal))
        self.assertEqual(net.cidr, c2.cidr)
        # A project without "portals": the same portal for every host.
        self.assertEqual('10.78.2.1:3260', boot_networks.for_project(
            'b', host='conductor-2').portal)

    def test_default_host_is_the_conductors(self):
        self.write({'a': dict(A, portals=self.PORTALS)})
        self.config(host='conductor-2')
        self.assertEqual('conductor-2', boot_networks.conductor_host())
        self.assertEqual('10.78.1.2:3260',
                         boot_networks.for_project('a').portal)
        self.assertEqual('10.78.1.2:3260', node_facts.boot_network(
            types.SimpleNamespace(
                uuid='1be26c0b-03f2-4d2e-ae87-c02d7f33c123', name='n1',
                owner='a', lessee=None, driver_info={},
                instance_info={})).portal)

    def test_json_rpc_port_is_part_of_the_name(self):
        # Ironic 39.0.0 registers "<host>:<port>" on a non-default port.
        self.config(host='c1')
        self.config(rpc_transport='json-rpc')
        self.config(port=8091, group='json_rpc')
        self.assertEqual('c1:8091', boot_networks.conductor_host())
        self.config(port=8089, group='json_rpc')
        self.assertEqual('c1', boot_networks.conductor_host())
        self.config(port=8091, group='json_rpc')
        self.config(rpc_transport='oslo')
        self.assertEqual('c1', boot_networks.conductor_host())

    def test_warns_when_reservations_outlive_a_crash(self):
        # Ironic 39.0.0 reserves as [DEFAULT] host, registers (and clears
        # at restart) "<host>:<port>": the lab's conductor_kill bug.
        self.config(host='c1')
        self.config(rpc_transport='json-rpc')
        self.config(port=8091, group='json_rpc')
        with mock.patch.object(boot_networks.LOG, 'warning') as warn:
            self.assertTrue(
                boot_networks.warn_if_reservations_outlive_a_crash())
        msg = warn.call_args[0][0] % warn.call_args[0][1]
        self.assertIn('known to Ironic as c1:8091', msg)
        self.assertIn('stay locked by c1', msg)
        self.assertIn('[json_rpc] port at 8089', msg)
        for port, transport in ((8089, 'json-rpc'), (8091, 'oslo')):
            self.config(port=port, group='json_rpc')
            self.config(rpc_transport=transport)
            with mock.patch.object(boot_networks.LOG, 'warning') as warn:
                self.assertFalse(
                    boot_networks.warn_if_reservations_outlive_a_crash())
            warn.assert_not_called()

    def test_warns_when_boot_configs_are_readable_by_all(self):
        # Ironic 39's default 0o644: every node's CHAP secret for any
        # local user.
        with mock.patch.object(boot_networks.LOG, 'warning') as warn:
            self.assertTrue(boot_networks.warn_if_boot_config_readable())
        msg = warn.call_args[0][0] % warn.call_args[0][1]
        self.assertIn('[pxe] file_permission is 0o644', msg)
        for mode in (0o640, 0o600):
            self.config(file_permission=mode, group='pxe')
            with mock.patch.object(boot_networks.LOG, 'warning') as warn:
                self.assertFalse(
                    boot_networks.warn_if_boot_config_readable())
            warn.assert_not_called()

    def test_warns_when_published_boot_files_are_readable_by_all(self):
        self.config(file_permission=0o600, group='pxe')
        self.config(boot_networks_file='/etc/bmi/boot-networks.json',
                    boot_file_mode='0644', group='bmi')
        with mock.patch.object(boot_networks.LOG, 'warning') as warn:
            self.assertTrue(boot_networks.warn_if_boot_config_readable())
        msg = warn.call_args[0][0] % warn.call_args[0][1]
        self.assertIn('[bmi] boot_file_mode is 0644', msg)
        self.config(boot_file_mode='0640', group='bmi')
        with mock.patch.object(boot_networks.LOG, 'warning') as warn:
            self.assertFalse(boot_networks.warn_if_boot_config_readable())
        warn.assert_not_called()

    def test_bad_portals(self):
        self.refused({'a': dict(A, portals=['10.78.1.2'])},
                     'portals must be an object')
        self.refused({'a': dict(A, portals={'c2': '10.78.9.2'})},
                     "portals 'c2': address 10.78.9.2 is not in cidr")
        self.refused({'a': dict(A, portals={'c2': 'gw'})}, "portals 'c2'")
        self.refused({'a': dict(A, portals={'c1': '10.78.1.2',
                                            'c2': '10.78.1.2:3260'})},
                     "portals 'c1' and 'c2' share 10.78.1.2:3260")


class TestCache(_Base):

    def test_read_once_until_changed(self):
        self.write({'a': A})
        first = boot_networks.load()
        opened = []
        real_open = open

        def spy(*args, **kwargs):
            opened.append(args[0])
            return real_open(*args, **kwargs)

        self.useFixture(fixtures.MonkeyPatch('builtins.open', spy))
        self.assertIs(first, boot_networks.load())
        self.assertEqual([], opened)
        self.write({'a': A, 'b': B})
        st = os.stat(self.path)
        os.utime(self.path, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
        del opened[:]
        self.assertEqual(['a', 'b'], sorted(boot_networks.load()))
        self.assertEqual([self.path], opened)

    def test_broken_after_a_change_is_refused(self):
        # A broken registry must not keep a project on a stale network.
        self.write({'a': A})
        boot_networks.load()
        self.write({'a': dict(A, cidr='bad')})
        st = os.stat(self.path)
        os.utime(self.path, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
        self.assertRaises(exception.BootNetworkConfigError,
                          boot_networks.load)


class TestNodeBootNetwork(_Base):

    def node(self, owner=None, lessee=None, instance_info=None):
        return types.SimpleNamespace(
            uuid='1be26c0b-03f2-4d2e-ae87-c02d7f33c123', name='n1',
            owner=owner, lessee=lessee, driver_info={},
            instance_info=instance_info or {})

    def test_shared_mode(self):
        self.assertIsNone(node_facts.boot_network(self.node(owner='a')))

    def test_the_nodes_one_project(self):
        self.write({'a': A, 'b': B})
        self.assertEqual('boot-b', node_facts.boot_network(
            self.node(owner='a', lessee='b')).hil_network)
        # A forged project_id is not trusted by default.
        self.assertEqual('boot-a', node_facts.boot_network(
            self.node(owner='a',
                      instance_info={'project_id': 'b'})).hil_network)

    def test_node_without_project(self):
        self.write({'a': A})
        self.assertRaises(exception.NodeFactMissing,
                          node_facts.boot_network, self.node())
        self.assertRaises(exception.BootNetworkMissing,
                          node_facts.boot_network, self.node(owner='c'))
