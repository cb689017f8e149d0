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

"""Two conductors, each with its own gateway (issue 12, item 5).

Against the multi-conductor lab (``BMI_LAB_CONDUCTORS=2 python -m
tools.lab start``; ``tools/run-tests.sh`` runs it after the functional
suite): Ironic on MariaDB, JSON-RPC, one API, conductors ``127.0.1.1`` and
``127.0.1.2`` (both on JSON-RPC's default port 8089, each on its own
address: ``tools.lab.multi.conductor_host``), each with its own tgtd
(control port K) and portal 10.78.N.K on the project boot networks.

Nodes are spread by Ironic's hash ring; each node's target is on its
conductor's tgtd and its VolumeTarget announces that conductor's gateway.
When a conductor is killed (SIGKILL, by its pid), Ironic notices it
(``[conductor] heartbeat_timeout``), the ring gives its nodes to the other
conductor, which takes them over: exported on its own gateway, the
VolumeTarget's portal updated, the disk readable there through a real
initiator.
"""

import hashlib
import json
import os
import signal
import time

from bmi_driver.storage.export import manager as export
from tests.functional import iscsi
from tests.functional import test_ironic
from tools.lab import service
from tools.lab import services as lab_services
from tools.lab import state as lab_state

PROJECT = 'admin'
TAKEOVER_WAIT = 180
RESTART_SETTLE = 90
MIN_PER_CONDUCTOR = 2
MAX_NODES = 12


class MultiConductorTestCase(test_ironic.IronicHelpers):

    def setUp(self):
        super().setUp()
        self.multi = self.env.get('multi') or {}
        if self.multi.get('conductors') != 2:
            # Fails loudly: this phase needs the two-conductor lab.
            self.fail('the lab does not run two conductors: start it with '
                      'BMI_LAB_CONDUCTORS=2 python -m tools.lab start')
        self.hosts = self.multi['hosts']
        for host, info in self.hosts.items():
            self.assertTrue(info['running'], '%s (%s) does not run'
                            % (info['name'], host))
            self.assertTrue(info['tgtd']['running'], '%s does not run'
                            % info['tgtd']['name'])
        self.use_ironic(self.env['services']['ironic-api']['state_dir'])
        with open(self.ironic_env['boot_networks_file']) as f:
            self.registry = json.load(f)
        self._managers = {}

    def ironic_log(self, lines=25):
        """The tails of the API's and every conductor's logs."""
        out = []
        paths = [self.ironic_env['log']] + [h['log']
                                            for h in self.hosts.values()]
        for path in paths:
            try:
                with open(path, errors='replace') as f:
                    out.append('--- %s\n%s' % (
                        path, ''.join(f.readlines()[-lines:])))
            except OSError:
                pass
        return '\n'.join(out)

    # --- what the lab says ------------------------------------------------

    def gateway_portal(self, host):
        """Conductor ``host``'s portal on the project's boot network."""
        return self.registry[PROJECT]['portals'][host]

    def tgtd_targets(self, host):
        """IQNs served by conductor ``host``'s own tgtd (tgtadm -C K)."""
        tgtd = lab_services.get(self.hosts[host]['tgtd']['name'])
        self.assertEqual(self.hosts[host]['tgtd']['control_port'],
                         tgtd.control_port)
        return set(tgtd.targets())

    def manager(self, host):
        """An ExportManager on conductor ``host``'s tgtd (as it has)."""
        if host not in self._managers:
            port = self.hosts[host]['tgtadm_control_port']
            self.config(tgtadm_control_port=port, group='iscsi')
            self._managers[host] = export.ExportManager()
            self.assertEqual(port, self._managers[host].backend.control_port)
        return self._managers[host]

    def conductor_of(self, node_uuid):
        return self.ironic.node.get(node_uuid, fields=['conductor']).conductor

    # --- steps ------------------------------------------------------------

    def spread_nodes(self):
        """Nodes until the ring gives each conductor a few: {host: [uuid]}.

        The hash ring decides: more nodes are made until both own
        MIN_PER_CONDUCTOR (at most MAX_NODES).
        """
        by_host = {h: [] for h in self.hosts}
        for _i in range(MAX_NODES):
            node = self.create_node(owner=PROJECT)
            host = self.conductor_of(node.uuid)
            self.assertIn(host, by_host)
            by_host[host].append(node.uuid)
            if min(len(v) for v in by_host.values()) >= MIN_PER_CONDUCTOR:
                return by_host
        self.fail('the hash ring gave %s' % {h: len(v)
                                             for h, v in by_host.items()})

    def deploy_all(self, uuids, image):
        for node_uuid in uuids:
            self.ironic.node.update(node_uuid, [
                {'op': 'add', 'path': '/instance_info/image_source',
                 'value': image.uuid}])
            self.ironic.node.set_provision_state(node_uuid, 'active')
        for node_uuid in uuids:
            self.wait(node_uuid, 'active')

    def assert_served_by(self, node_uuid, host, other, sha):
        """The node's disk is on ``host``'s gateway and only there."""
        iqn = self.exports.target_iqn(node_uuid)
        self.assertIn(iqn, self.tgtd_targets(host))
        target = self.boot_target(node_uuid)
        portal = self.gateway_portal(host)
        self.assertEqual(portal, target.properties['target_portal'])
        self.assertEqual(iqn, target.properties['target_iqn'])
        # The export as Ceph records it (Ironic's API masks the CHAP
        # secret), served by that conductor's tgtd.
        exp = self.manager(host).get_export(node_uuid)
        self.assertIsNotNone(exp, 'node %s is not exported on %s'
                             % (node_uuid, host))
        self.assertEqual(portal, exp.portal)
        path = iscsi.read_lun(portal, iqn, 1, exp.chap_username,
                              exp.chap_secret, dest=self.tmp)
        try:
            with open(path, 'rb') as f:
                data = f.read(test_ironic.IMAGE_SIZE)
        finally:
            os.unlink(path)
        self.assertEqual(sha, hashlib.sha256(data).hexdigest(),
                         'node %s read from %s' % (node_uuid, portal))

    def kill_conductor(self, host):
        """SIGKILL conductor ``host`` by its pid; restart it at cleanup."""
        info = self.hosts[host]
        svc = lab_services.get(info['name'])
        pid = svc.pid()
        self.assertEqual(info['pid'], pid)
        self.addCleanup(self._restart, info['name'])
        # Its whole process group, by its pid (the session it was started
        # in): ironic-conductor (Ironic 39.0.0) is a cotyledon manager
        # whose forked worker does the work, and a crash takes both.
        os.killpg(pid, signal.SIGKILL)
        service.wait_for(lambda: not service.pid_alive(pid), 10, 0.1,
                         'conductor pid %d to die' % pid)

    def _restart(self, name):
        st = lab_state.State()
        lab_services.get(name, st).start()
        lab_services.write_services(st)
        # The dead conductor's gateway still served the targets it had;
        # back, it hands them on (the ring moves some nodes back). Before
        # the nodes are deleted, no disk may stay open on both gateways
        # (RBD refuses to remove an open image): bounded, the deletes
        # then say what is left.
        hosts = sorted(self.hosts)
        deadline = time.monotonic() + RESTART_SETTLE
        while time.monotonic() < deadline:
            if not (self.tgtd_targets(hosts[0])
                    & self.tgtd_targets(hosts[1])):
                return
            time.sleep(2)

    def wait_for(self, predicate, what, timeout=TAKEOVER_WAIT):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail('timed out after %ss waiting for %s\n%s'
                          % (timeout, what, self.ironic_log()))
            time.sleep(1)

    # --- the test ---------------------------------------------------------

    def test_spread_then_take_over(self):
        image, sha = self.golden()
        by_host = self.spread_nodes()
        uuids = [u for v in by_host.values() for u in v]
        self.deploy_all(uuids, image)
        hosts = sorted(by_host)
        for host in hosts:
            other = [h for h in hosts if h != host][0]
            for node_uuid in by_host[host]:
                self.assert_served_by(node_uuid, host, other, sha)
                # Not exported twice: the other gateway has no target.
                self.assertNotIn(self.exports.target_iqn(node_uuid),
                                 self.tgtd_targets(other))

        victim, survivor = hosts
        moved = by_host[victim]
        self.kill_conductor(victim)
        # Ironic's ring drops the dead conductor after heartbeat_timeout.
        self.wait_for(lambda: all(self.conductor_of(u) == survivor
                                  for u in moved),
                      'the ring to give %s\'s nodes to %s' % (victim,
                                                              survivor))
        # The survivor takes them over: its gateway, its portal.
        portal = self.gateway_portal(survivor)
        self.wait_for(lambda: all(
            self.boot_target(u).properties['target_portal'] == portal
            and self.exports.target_iqn(u) in self.tgtd_targets(survivor)
            for u in moved), 'the take-over of %s by %s' % (moved, survivor))
        for node_uuid in moved:
            node = self.ironic.node.get(node_uuid)
            self.assertEqual('active', node.provision_state)
            self.assertIsNone(node.last_error)
            self.assert_served_by(node_uuid, survivor, victim, sha)
        # The survivor's own nodes did not move.
        for node_uuid in by_host[survivor]:
            self.assert_served_by(node_uuid, survivor, victim, sha)
