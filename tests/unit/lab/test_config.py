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

"""Unit tests of the lab's state layout, services.json and renderer."""

import configparser
import json
import os

import fixtures

from bmi_driver.network import boot_files
from bmi_driver.network import boot_networks
from tests import base
from tools.lab import config
from tools.lab import labnet
from tools.lab import multi
from tools.lab import neutron
from tools.lab import service
from tools.lab import services
from tools.lab import state as lab_state


def _parse(path):
    # Ironic's [DEFAULT] is a section like the others here.
    parser = configparser.RawConfigParser(default_section='none')
    parser.read(path)
    return {name: dict(parser[name]) for name in parser}


class StateTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.st = lab_state.State(os.path.join(self.state_dir, 'st'))

    def test_services_json_round_trip(self):
        written = self.st.write_services(tgtd_portal='127.0.0.1:3261',
                                         tgtd_running=True)
        env = lab_state.load_services(self.st.services_json)
        self.assertEqual(written, env)
        root = self.st.root
        self.assertEqual(os.path.join(root, 'ceph', 'ceph.conf'),
                         env['ceph_conf'])
        self.assertEqual(os.path.join(root, 'ceph',
                                      'ceph.client.bmi.keyring'),
                         env['ceph_keyring'])
        self.assertEqual(('bmi', 'tgt', 'bmi-images', 'images'),
                         (env['ceph_user'], env['ceph_tgt_user'],
                          env['image_pool'], env['glance_pool']))
        self.assertEqual(os.path.join(root, 'ironic'), env['ironic_state'])
        self.assertEqual(os.path.join(root, 'hil'), env['hil_state'])
        self.assertTrue(env['tgtd_running'])

    def test_missing_services_json_says_how_to_start(self):
        e = self.assertRaises(RuntimeError, lab_state.load_services,
                              os.path.join(self.state_dir, 'none.json'))
        self.assertIn('make services-start', str(e))

    def test_ceph_and_iscsi_options(self):
        env = self.st.services(tgtd_portal='127.0.0.1:3261')
        self.assertEqual({'conf_file': env['ceph_conf'], 'user': 'bmi',
                          'keyring': env['ceph_keyring'],
                          'image_pool': 'bmi-images',
                          'clone_pool': 'bmi-images',
                          'glance_pool': 'images'},
                         lab_state.ceph_options(env))
        self.assertEqual({'portal_address': '127.0.0.1', 'portal_port': 3261,
                          'tgt_ceph_user': 'tgt'},
                         lab_state.iscsi_options(env))

    def test_configure_sets_the_plugin_options(self):
        env = self.st.services()
        lab_state.configure(self.conf_fixture.conf, env, ('ceph', 'iscsi'))
        self.assertEqual(env['ceph_keyring'],
                         self.conf_fixture.conf.ceph.keyring)
        self.assertEqual(3260, self.conf_fixture.conf.iscsi.portal_port)


class RenderTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.st = lab_state.State(os.path.join(self.state_dir, 'st'))
        self.env = self.st.services()

    def test_bmi_conf(self):
        path = config.write(os.path.join(self.state_dir, 'bmi.conf'),
                            config.bmi_conf(self.env, '/srv/bmi', {
                                'url': 'http://127.0.0.1:7000',
                                'username': 'bmi', 'password': 'pw'}),
                            header='a header')
        self.assertEqual({
            'bmi': {'state_path': '/srv/bmi'},
            'ceph': {'conf_file': self.env['ceph_conf'], 'user': 'bmi',
                     'keyring': self.env['ceph_keyring'],
                     'image_pool': 'bmi-images', 'clone_pool': 'bmi-images',
                     'glance_pool': 'images'},
            # The lab's own initiators; the nodes' portals are their
            # boot networks' (test_bmi_conf_per_project_mode).
            'iscsi': {'portal_address': '127.0.0.1', 'portal_port': '3260',
                      'tgt_ceph_user': 'tgt'},
            'coordination': {'backend_url': 'file://%s/locks'
                             % self.st.root},
            'hil': {'url': 'http://127.0.0.1:7000',
                    'auth_type': 'http_basic', 'username': 'bmi',
                    'password': 'pw', 'default_project': 'admin'},
        }, {k: v for k, v in _parse(path).items() if k != 'none'})
        with open(path) as f:
            self.assertEqual('# a header\n', f.readline())

    def test_ironic_conf(self):
        d = os.path.join(self.state_dir, 'ironic')
        path = config.write(os.path.join(d, 'ironic.conf'),
                            config.ironic_conf(d, port=6395, debug=True))
        parsed = _parse(path)
        self.assertEqual('noauth', parsed['DEFAULT']['auth_strategy'])
        self.assertEqual('true', parsed['DEFAULT']['debug'])
        self.assertEqual('bmi,fake-hardware',
                         parsed['DEFAULT']['enabled_hardware_types'])
        self.assertEqual({'host_ip': '127.0.0.1', 'port': '6395',
                          'api_workers': '1'}, parsed['api'])
        self.assertEqual('sqlite:///%s/ironic.sqlite' % d,
                         parsed['database']['connection'])
        self.assertEqual(os.path.join(d, 'httpboot'),
                         parsed['deploy']['http_root'])
        self.assertEqual('false',
                         parsed['conductor']['force_power_state_during_sync'])
        # The VMs fetch their iPXE files from nginx on the gateway.
        self.assertEqual('http://10.78.0.1', parsed['deploy']['http_url'])
        self.assertEqual('uefi', parsed['deploy']['default_boot_mode'])

    def test_bmi_conf_with_a_password_is_0600(self):
        path = config.write(os.path.join(self.state_dir, 'b.conf'),
                            config.bmi_conf(self.env, '/srv/bmi'), mode=0o600)
        self.assertEqual(0o600, os.stat(path).st_mode & 0o777)
        self.assertEqual({'url': 'http://127.0.0.1:7000',
                          'auth_type': 'none', 'default_project': 'admin'},
                         _parse(path)['hil'])

    def test_bmi_conf_per_project_mode(self):
        registry = labnet.write_registry(
            os.path.join(self.state_dir, 'ironic', 'boot-networks.json'),
            self.st.root)
        path = config.write(os.path.join(self.state_dir, 'p.conf'),
                            config.bmi_conf(self.env, '/srv/bmi',
                                            boot_networks_file=registry,
                                            boot_file_group='www-data'))
        self.assertEqual({'state_path': '/srv/bmi',
                          'boot_networks_file': registry,
                          'boot_file_group': 'www-data'},
                         _parse(path)['bmi'])
        with open(registry) as f:
            text = f.read()
        # The plugin's own parser accepts it: one network per project,
        # apart from each other and from [deploy] http_root.
        networks = boot_networks.parse(registry, text)
        self.assertEqual(set(labnet.BOOT_PROJECTS), set(networks))
        for project, net in networks.items():
            self.assertEqual('boot-' + project, net.hil_network)
            self.assertTrue(net.portal.endswith(':3260'))
            self.assertEqual(os.path.join(self.st.root, 'boot', project),
                             net.http_root)
            boot_files.check_roots(
                os.path.join(self.st.root, 'ironic', 'httpboot'),
                net.http_root)
        self.assertEqual(len(networks),
                         len({n.portal for n in networks.values()}))

    def test_repair_timing(self):
        # The soak's short timing by default; tools/bench asks for the
        # plugin's production defaults (none written).
        self.useFixture(fixtures.EnvironmentVariable('BMI_LAB_REPAIR_TIMING'))
        self.assertEqual(multi.REPAIR_TIMING, multi.repair_timing())
        self.useFixture(fixtures.EnvironmentVariable('BMI_LAB_REPAIR_TIMING',
                                                     'default'))
        self.assertEqual({}, multi.repair_timing())
        self.useFixture(fixtures.EnvironmentVariable('BMI_LAB_REPAIR_TIMING',
                                                     'fast'))
        self.assertRaises(ValueError, multi.repair_timing)

    def test_multi_conductor_confs(self):
        d = os.path.join(self.state_dir, 'ironic-multi')
        url = 'mysql+pymysql://ironic:pw@localhost/ironic?unix_socket=/s'
        path = config.write(os.path.join(d, 'ironic.conf'),
                            config.multi_ironic_conf(d, url), mode=0o600)
        self.assertEqual(0o600, os.stat(path).st_mode & 0o777)
        parsed = _parse(path)
        self.assertEqual('json-rpc', parsed['DEFAULT']['rpc_transport'])
        self.assertEqual(url, parsed['database']['connection'])
        self.assertEqual({'auth_strategy': 'noauth',
                          'host_ip': '127.0.0.1'}, parsed['json_rpc'])
        self.assertEqual('10', parsed['conductor']['heartbeat_timeout'])
        # The README's scale settings, for bmi's and fake's nodes alike.
        self.assertEqual('50', parsed['database']['max_pool_size'])
        self.assertEqual('200', parsed['conductor']['max_concurrent_clean'])
        # What stays as in the all-in-one.
        self.assertEqual('bmi,fake-hardware',
                         parsed['DEFAULT']['enabled_hardware_types'])
        # Ironic's default JSON-RPC port, on the conductor's own address:
        # its name in Ironic is then its [DEFAULT] host, the name its
        # reservations carry (tools.lab.multi.conductor_host).
        own = _parse(config.write(os.path.join(d, 'c.conf'),
                                  config.conductor_conf('127.0.1.2')))
        self.assertEqual(('127.0.1.2', '127.0.1.2', '8089'),
                         (own['DEFAULT']['host'], own['json_rpc']['host_ip'],
                          own['json_rpc']['port']))
        bmi = _parse(config.write(os.path.join(d, 'b.conf'), config.bmi_conf(
            self.env, '/srv/bmi', iscsi={'portal_address': '127.0.0.2',
                                         'portal_port': 3260,
                                         'tgtadm_control_port': 2},
            coordination_url='etcd3+http://127.0.0.1:2379')))
        self.assertEqual({'portal_address': '127.0.0.2',
                          'portal_port': '3260', 'tgt_ceph_user': 'tgt',
                          'tgtadm_control_port': '2'}, bmi['iscsi'])
        self.assertEqual('etcd3+http://127.0.0.1:2379',
                         bmi['coordination']['backend_url'])

    def test_registry_gives_each_conductor_its_gateway(self):
        registry = labnet.write_registry(
            os.path.join(self.state_dir, 'boot-networks.json'),
            self.st.root, hosts=['c1', 'c2'])
        with open(registry) as f:
            networks = boot_networks.parse(registry, f.read())
        admin = networks['admin']
        self.assertEqual('10.78.3.1:3260', admin.portal_for('c1'))
        self.assertEqual('10.78.3.2:3260', admin.portal_for('c2'))
        self.assertEqual('10.78.1.2:3260',
                         networks['tenant-a'].portal_for('c2'))

    def test_ceph_only_conf(self):
        path = config.write(os.path.join(self.state_dir, 'c.conf'),
                            config.ceph_only_conf(self.env))
        self.assertEqual(['none', 'ceph'], list(_parse(path)))


class ServiceTest(base.TestCase):

    def test_registry_order_and_unknown_names(self):
        # The namespace first; HIL before the gateway (its VLAN), the
        # gateway before tgtd (its portal address), Ironic after them
        # (its bmi.conf names Neutron's URL).
        self.assertEqual(['netns', 'ceph', 'glance', 'neutron', 'ovs', 'hil',
                          'gateway', 'http',
                          'tgtd', 'ironic', 'libvirtd', 'sushy'],
                         list(services.DEFAULT))
        # The multi-conductor lab: the database and etcd before the
        # gateways' tgtds, the API (dbsync) before the conductors.
        self.assertEqual(['netns', 'ceph', 'glance', 'ovs', 'hil',
                          'gateway', 'http',
                          'mariadb', 'etcd', 'tgtd-1', 'tgtd-2',
                          'ironic-api', 'conductor-1', 'conductor-2'],
                         list(services.MULTI))
        self.assertEqual(set(services.SERVICES),
                         set(services.DEFAULT) | set(services.MULTI)
                         | {'libvirtd', 'sushy'})
        self.assertNotIn('neutron', services.MULTI)
        self.assertRaises(ValueError, services.get, 'nope')
        self.assertEqual(['tgtd', 'ironic'],
                         services._ordered(['ironic', 'tgtd']))

    def test_the_mode_is_chosen_by_bmi_lab_conductors(self):
        self.useFixture(fixtures.EnvironmentVariable('BMI_LAB_CONDUCTORS'))
        self.assertEqual(services.DEFAULT, services.default())
        self.useFixture(fixtures.EnvironmentVariable('BMI_LAB_CONDUCTORS',
                                                     '2'))
        self.assertEqual(services.MULTI, services.default())
        self.useFixture(fixtures.EnvironmentVariable('BMI_LAB_CONDUCTORS',
                                                     '3'))
        self.assertRaises(ValueError, services.default)

    def _running(self, *names):
        real_get = services.get

        def get(name, st=None, opts=None):
            svc = real_get(name, st, opts)
            svc.is_running = lambda: name in names
            return svc
        self.useFixture(fixtures.MockPatchObject(services, 'get', get))

    def test_one_lab_at_a_time(self):
        st = lab_state.State(self.state_dir)
        self.useFixture(fixtures.EnvironmentVariable('BMI_LAB_CONDUCTORS',
                                                     '2'))
        self._running('ceph', 'tgtd', 'ironic', 'libvirtd')
        # libvirtd and ceph are the multi lab's too; tgtd and ironic hold
        # the ports its tgtds and API want.
        self.assertEqual(['tgtd', 'ironic'], services.conflicting(st))
        start = self.useFixture(fixtures.MockPatchObject(
            services, '_ordered')).mock
        e = self.assertRaises(RuntimeError, services.start, None, st)
        self.assertIn('the all-in-one lab runs (tgtd, ironic)', str(e))
        start.assert_not_called()
        self.useFixture(fixtures.EnvironmentVariable('BMI_LAB_CONDUCTORS'))
        self.assertEqual([], services.conflicting(st))
        self._running('etcd', 'conductor-2')
        e = self.assertRaises(RuntimeError, services.check_no_conflict, st)
        self.assertIn('the multi-conductor lab runs (etcd, conductor-2)',
                      str(e))

    def test_each_conductor_has_its_own_gateway(self):
        self.useFixture(fixtures.EnvironmentVariable('BMI_LAB_CONDUCTORS',
                                                     '2'))
        st = lab_state.State(self.state_dir)
        t1, t2 = services.get('tgtd-1', st), services.get('tgtd-2', st)
        self.assertEqual((1, 2), (t1.control_port, t2.control_port))
        self.assertEqual(('127.0.0.1:3260', '127.0.0.2:3260'),
                         (t1.portal, t2.portal))
        self.assertIn('10.78.3.1:3260', t1.extra_portals)
        self.assertIn('10.78.3.2:3260', t2.extra_portals)
        self.assertNotEqual(t1.pidfile, t2.pidfile)
        self.assertEqual(2, services.get('gateway', st).gateways)
        doc = services.write_services(st)
        hosts = doc['multi']['hosts']
        # Keyed by the conductors' names in Ironic: their [DEFAULT] host,
        # no ":<port>" (the default JSON-RPC port).
        self.assertEqual(['127.0.1.1', '127.0.1.2'], sorted(hosts))
        self.assertEqual(2, hosts['127.0.1.2']['tgtd']['control_port'])
        self.assertEqual('conductor-2', hosts['127.0.1.2']['name'])
        self.assertEqual('tgtd-2', hosts['127.0.1.2']['tgtd']['name'])
        self.assertEqual(8089, hosts['127.0.1.2']['json_rpc_port'])

    def test_every_service_has_a_pid_file_in_its_state(self):
        st = lab_state.State(self.state_dir)
        for name in services.SERVICES:
            svc = services.get(name, st)
            self.assertIsInstance(svc, service.Service)
            self.assertEqual(name, svc.name)
            self.assertTrue(svc.pidfile.startswith(self.state_dir))
            if name != 'netns':   # the machine's, not the state's
                self.assertFalse(svc.is_running())

    def test_spawn_records_the_pid_and_stop_stops_it(self):
        class Sleeper(service.Service):
            name = 'sleeper'

            def start(self):
                self.spawn(['sleep', '60'])

        svc = Sleeper(self.state_dir)
        svc.start()
        pid = svc.pid()
        self.assertIsNotNone(pid)
        with open(svc.pidfile) as f:
            self.assertEqual(pid, int(f.read()))
        svc.stop()
        self.assertFalse(service.pid_alive(pid))
        self.assertFalse(os.path.exists(svc.pidfile))
        svc.stop()  # a second stop is a no-op

    def test_stale_pid_file_is_not_running(self):
        svc = services.get('tgtd', lab_state.State(self.state_dir))
        with open(svc.pidfile, 'w') as f:
            f.write('999999999\n')
        self.assertIsNone(svc.pid())

    def test_write_services_records_each_service(self):
        st = lab_state.State(self.state_dir)
        services.write_services(st)
        with open(st.services_json) as f:
            env = json.load(f)
        self.assertEqual(set(services.SERVICES), set(env['services']))
        self.assertFalse(env['tgtd_running'])

    def test_netns_wraps_the_command(self):
        svc = service.Service(self.state_dir, netns='bmi-lab')
        self.assertEqual(['ip', 'netns', 'exec', 'bmi-lab', 'dnsmasq', '-k'],
                         svc.argv(['dnsmasq', '-k']))
        self.assertEqual(['true'], service.Service(self.state_dir).argv(
            ['true']))

    def test_run_fails_loudly_with_its_log(self):
        svc = service.Service(self.state_dir)
        svc.name = 'x'
        svc.run(['true'])
        e = self.assertRaises(service.ServiceError, svc.run,
                              ['sh', '-c', 'echo nope; exit 3'])
        self.assertIn('exit code 3', str(e))
        with open(svc.log_path) as f:
            self.assertEqual('nope\n', f.read())


class NeutronSectionTest(base.TestCase):

    def test_running_neutron_gives_the_plugin_its_url(self):
        env = {'services': {'neutron': {'running': True,
                                        'url': 'http://127.0.0.1:9696'}}}
        self.assertEqual(
            [('neutron', [('auth_type', 'none'),
                          ('endpoint_override', 'http://127.0.0.1:9696')])],
            config.neutron_section(env))

    def test_neutron_binds_with_bmi_hil_on_the_lab_physnet(self):
        # ML2 loads bmi_driver's driver, configured for the lab's physnet
        # (bmi_driver/network/ml2_hil.py), and nothing else binds.
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(neutron._CONF.format(
            state='/s', log='/s/log', db='mysql+pymysql://x',
            physnet=neutron.PHYSNET, first=1, last=2))
        self.assertEqual('bmi_hil', parser['ml2']['mechanism_drivers'])
        self.assertEqual(neutron.PHYSNET,
                         parser['ml2_bmi_hil']['physical_networks'])

    def test_no_neutron_no_section(self):
        self.assertEqual([], config.neutron_section({'services': {
            'neutron': {'running': False}}}))
        self.assertEqual([], config.neutron_section({}))
