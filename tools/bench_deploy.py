#!/usr/bin/env python3
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

"""Benchmark deploys through Ironic: bmi vs Ironic's fake deploy.

Prints figures and ratios (no pass/fail), one run, side by side:

* time to ACTIVE for N = 1, 10, 50, 100 nodes deployed at once through the API
  with the ``bmi`` deploy interface (clone + iSCSI export + VolumeTarget +
  iPXE script, fake power) and with Ironic's ``fake`` deploy interface
  (fake-hardware) on the same conductor(s), and their ratio (target
  <= 1.3x; 100 nodes ACTIVE in under 10 s), written with the undeploy
  times to ``.state/bench/summary.json`` (``deploy``);
* undeploy time (to AVAILABLE, cleaning included) for the same N;
* time to ACTIVE of one node whose image is 1 GiB vs 10 GiB (the clone is
  copy-on-write: the size should not matter);
* time to ACTIVE and undeploy of ``bmi`` nodes with the ``hil`` network
  interface (the real HIL moving real Open vSwitch ports onto the
  provisioning VLAN, nodes registered by HIL's admin) against the ``noop``
  network interface, for N = 1 and 4 (``--hil-sizes``); and ``hil+2``,
  the same with two tenant networks, one per nic (as Nova's two VIFs).

    .venv/bin/python tools/bench_deploy.py [--sizes 1,10,50,100] [--rounds 3]

Needs the lab (`make services-start`) and runs inside its namespace
(`tools/bench` does that: `python -m tools.lab exec -- ...`); reads
$BMI_TEST_ENV (default .state/services.json) and the Ironic all-in-one's
env.json. Everything it creates (nodes, images) is removed at the end.
"""

import argparse
from concurrent import futures
import os
import statistics
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from ironicclient import client as ir_client  # noqa: E402
import rbd  # noqa: E402

from bmi_driver.storage.ceph import library as images  # noqa: E402
from bmi_driver.storage.ceph import rbd_utils  # noqa: E402
from tools import benchlib  # noqa: E402
from tools.lab import e2e  # noqa: E402

GiB = 1024 ** 3
WAIT = benchlib.WAIT
# API callers at once, as several Nova computes (or users) would be: the
# requests of N nodes one after the other would measure the bench's own
# round trips (about 40 ms each, 4 s for 100 nodes), not the deploys.
CALLERS = 8

BMI_NODE = dict(driver='bmi', boot_interface='ipxe', deploy_interface='bmi',
                storage_interface='bmi', network_interface='noop',
                power_interface='fake', management_interface='fake',
                vendor_interface='bmi',
                properties={'capabilities': 'iscsi_boot:True'})
FAKE_NODE = dict(driver='fake-hardware', boot_interface='fake',
                 deploy_interface='fake', storage_interface='noop',
                 network_interface='noop', power_interface='fake',
                 management_interface='fake', vendor_interface='fake')


def load_env():
    env = benchlib.load_env()
    try:
        env['ironic'] = benchlib.ironic_env(env)
    except RuntimeError as e:
        sys.exit(str(e))
    return env


class Bench:

    def __init__(self, env, callers=CALLERS):
        self.env = env
        self.ironic = self.client()
        self._local = threading.local()
        self.pool = futures.ThreadPoolExecutor(max_workers=callers)
        self.lib = images.ImageLibrary()
        self.tag = uuid.uuid4().hex[:8]
        self.nodes = []
        self.images = []
        self.rbd_bases = []

    def client(self):
        return ir_client.get_client(
            '1', endpoint=self.env['ironic']['url'], auth_type='none',
            os_ironic_api_version='latest')

    def _thread_client(self):
        # One client (and HTTP session) per caller thread.
        if getattr(self._local, 'ironic', None) is None:
            self._local.ironic = self.client()
        return self._local.ironic

    def each(self, func, items):
        """``func(client, item)`` for every item, CALLERS at a time."""
        return list(self.pool.map(
            lambda item: func(self._thread_client(), item), items))

    # --- images -----------------------------------------------------------

    def golden(self, size, visibility='private'):
        """A golden image of ``size`` bytes, made without copying data."""
        pool = self.env['image_pool']
        base = 'bench-base-%s-%d-%s' % (self.tag, size // GiB, visibility)
        with rbd_utils.ClientPool().get() as client:
            ioctx = client.ioctx(pool)
            rbd.RBD().create(ioctx, base, size, old_format=False,
                             features=rbd.RBD_FEATURE_LAYERING)
            self.rbd_bases.append(base)
            with rbd.Image(ioctx, base) as img:
                img.write(b'BMI-BENCH' * 100, 0)
        # The library snapshots it and clones the snapshot: no copy. The hil
        # nodes' one is public: their lessee (a lab project) must see it.
        image = self.lib.import_rbd('%s/%s' % (pool, base),
                                    'bench-%s-%dg-%s' % (
                                        self.tag, size // GiB, visibility),
                                    visibility=visibility)
        self.images.append(image.uuid)
        return image

    # --- nodes ------------------------------------------------------------

    def create_nodes(self, count, fields, image, hil_nodes=None,
                     hil_networks=None):
        """Create ``count`` nodes; return their UUIDs once available.

        ``hil_nodes``: e2e.Node objects registered in HIL, one per node
        (their boot nic is the Ironic port); ``hil_networks``: their
        instance_info/hil_networks (tenant networks).
        """
        def create(ironic, i):
            name = 'bench-%s-%s-%s-%d' % (
                self.tag, fields['driver'], fields['network_interface'], i)
            mac = '52:54:01:%02x:%02x:%02x' % tuple(os.urandom(3))
            # The operator owns the bench's nodes and images (a node with
            # no project may deploy public images only).
            patch = [{'op': 'add', 'path': '/owner', 'value': 'admin'},
                     {'op': 'add', 'path': '/instance_info/image_source',
                      'value': image.uuid}]
            if hil_nodes:
                name, mac = hil_nodes[i].name, hil_nodes[i].mac
                patch.append({'op': 'add', 'path': '/lessee',
                              'value': hil_nodes[i].project})
            if hil_networks:
                patch.append({'op': 'add',
                              'path': '/instance_info/hil_networks',
                              'value': hil_networks})
            node = ironic.node.create(name=name, **fields)
            self.nodes.append(node.uuid)
            ironic.node.update(node.uuid, patch)
            ironic.port.create(node_uuid=node.uuid, address=mac,
                               pxe_enabled=True)
            return node.uuid
        made = self.each(create, range(count))
        self.transition(made, 'manage', 'manageable')
        self.transition(made, 'provide', 'available')
        return made

    def transition(self, nodes, target, state):
        """Ask every node for ``target``; seconds until all are ``state``."""
        t0 = time.perf_counter()
        self.each(lambda ironic, node: ironic.node.set_provision_state(
            node, target), nodes)
        return benchlib.wait_states(self.ironic, nodes, state, t0, WAIT)

    def delete_nodes(self, nodes):
        self.each(lambda ironic, node: ironic.node.delete(node), nodes)
        for node in nodes:
            self.nodes.remove(node)

    # --- clean up ---------------------------------------------------------

    def cleanup(self):
        for node in list(self.nodes):
            try:
                state = self.ironic.node.get(node).provision_state
                if state in ('active', 'deploy failed'):
                    self.transition([node], 'deleted', 'available')
                self.ironic.node.delete(node)
            except Exception as e:
                print('cleanup: node %s: %s' % (node, e), file=sys.stderr)
        for ref in self.images:
            try:
                self.lib.delete(ref)
            except Exception as e:
                print('cleanup: image %s: %s' % (ref, e), file=sys.stderr)
        with rbd_utils.ClientPool().get() as client:
            ioctx = client.ioctx(self.env['image_pool'])
            for base in self.rbd_bases:
                try:
                    with rbd.Image(ioctx, base) as img:
                        for snap in list(img.list_snaps()):
                            if img.is_protected_snap(snap['name']):
                                img.unprotect_snap(snap['name'])
                            img.remove_snap(snap['name'])
                    rbd.RBD().remove(ioctx, base)
                except Exception as e:
                    print('cleanup: rbd %s: %s' % (base, e),
                          file=sys.stderr)
        self.pool.shutdown()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', default='1,10,50,100',
                        help='numbers of nodes deployed at once')
    parser.add_argument('--rounds', type=int, default=3,
                        help='rounds of the 1 GiB vs 10 GiB comparison')
    parser.add_argument('--hil-sizes', default='1,4',
                        help='numbers of nodes for hil vs noop')
    parser.add_argument('--callers', type=int, default=CALLERS,
                        help='API requests in flight at once')
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(',')]
    hil_sizes = [int(n) for n in args.hil_sizes.split(',') if n]

    env = load_env()
    benchlib.configure_ceph(env)
    bench = Bench(env, args.callers)
    try:
        small = bench.golden(1 * GiB)
        large = bench.golden(10 * GiB)

        print('Deploy and undeploy through Ironic (%s, %d conductor(s)), '
              'fake power, %d API callers'
              % (env['ironic']['url'], benchlib.conductors(env),
                 args.callers))
        print('%5s  %-6s %12s %12s %12s' % ('N', 'deploy', 'to ACTIVE',
                                            'per node', 'undeploy'))
        rows = []
        for count in sizes:
            figures = {}
            for label, fields in (('fake', FAKE_NODE), ('bmi', BMI_NODE)):
                nodes = bench.create_nodes(count, fields, small)
                deploy = bench.transition(nodes, 'active', 'active')
                undeploy = bench.transition(nodes, 'deleted', 'available')
                bench.delete_nodes(nodes)
                figures[label] = (deploy, undeploy)
                print('%5d  %-6s %10.2f s %10.3f s %10.2f s'
                      % (count, label, deploy, deploy / count, undeploy),
                      flush=True)
            rows.append((count, figures))
            # Row by row: a run cut short keeps what it measured.
            benchlib.write_summary('deploy', deploy_rows(rows, env))
        print()
        print('%5s  %18s  %18s'
              % ('N', 'deploy bmi/fake', 'undeploy bmi/fake'))
        for count, figures in rows:
            print('%5d  %17.2fx  %17.2fx' % (
                count, figures['bmi'][0] / figures['fake'][0],
                figures['bmi'][1] / figures['fake'][1]))
        print('summary: %s (%d conductor(s); targets: 100 ACTIVE < 10 s, '
              'bmi/fake <= 1.3x)' % (benchlib.summary_path(),
                                     benchlib.conductors(env)))

        print()
        print('One node, image size (clone is copy-on-write), %d rounds'
              % args.rounds)
        for image, label in ((small, '1 GiB'), (large, '10 GiB')):
            samples = []
            for _ in range(args.rounds):
                [node] = bench.create_nodes(1, BMI_NODE, image)
                samples.append(bench.transition([node], 'active', 'active'))
                bench.transition([node], 'deleted', 'available')
                bench.delete_nodes([node])
            print('%7s  to ACTIVE median %.2f s  (min %.2f, max %.2f)'
                  % (label, statistics.median(samples), min(samples),
                     max(samples)))
        if hil_sizes:
            # Public: the hil nodes have a project (lessee), the image
            # must be visible to it.
            bench_hil(bench, env, bench.golden(1 * GiB, 'public'),
                      hil_sizes)
    finally:
        bench.cleanup()


def deploy_rows(rows, env):
    """summary.json's ``deploy`` rows: [{n, conductors, bmi_s, ...}].

    ``rows``: [(N, {label: (to ACTIVE, to AVAILABLE)})].
    """
    conductors = benchlib.conductors(env)
    return [{'n': count, 'conductors': conductors,
             'bmi_s': figures['bmi'][0], 'fake_s': figures['fake'][0],
             'bmi_available_s': figures['bmi'][1],
             'fake_available_s': figures['fake'][1],
             'ratio': figures['bmi'][0] / figures['fake'][0]}
            for count, figures in rows]


def bench_hil(bench, env, image, sizes):
    """bmi with the real HIL (``hil``) vs ``noop``, side by side.

    And ``hil+2``: two tenant networks besides the boot network, one per
    nic (tagged on the boot nic, native on the other), as Nova's two VIFs.
    """
    net = e2e.LabNet(env)
    print()
    print('Network interface: the real HIL (ovs driver, serve-networks) '
          'vs noop, bmi deploy, fake power; hil+2: two tenant networks, '
          'one per nic')
    print('%5s  %-5s %12s %12s' % ('N', 'net', 'to ACTIVE', 'undeploy'))
    hil_fields = dict(BMI_NODE, network_interface='hil')
    # The nodes' project (e2e.Node's) owns both.
    tenant = ['bench-%s-t%d' % (bench.tag, i) for i in range(2)]
    for name in tenant:
        net.create_network(name, 'e2e')
    two = [{'network': tenant[0], 'nic': 'boot'},
           {'network': tenant[1], 'nic': 'tenant',
            'channel': 'vlan/native'}]
    try:
        for count in sizes:
            _bench_hil_rows(bench, net, image, count, hil_fields, two)
    finally:
        for name in tenant:
            for err in net.delete_network(name):
                print('cleanup: %s' % err, file=sys.stderr)


def _bench_hil_rows(bench, net, image, count, hil_fields, two):
    figures = {}
    nodes = [e2e.Node('bench-%s-h%d' % (bench.tag, i), 'e2e', i, 0xbe)
             for i in range(count)]
    try:
        for n in nodes:
            net.add_ports(n)
            net.register(n)
        for label, fields, hil_nodes, networks in (
                ('noop', BMI_NODE, None, None),
                ('hil', hil_fields, nodes, None),
                ('hil+2', hil_fields, nodes, two)):
            made = bench.create_nodes(count, fields, image, hil_nodes,
                                      networks)
            deploy = bench.transition(made, 'active', 'active')
            undeploy = bench.transition(made, 'deleted', 'available')
            bench.delete_nodes(made)
            figures[label] = deploy
            print('%5d  %-5s %10.2f s %10.2f s'
                  % (count, label, deploy, undeploy))
    finally:
        for n in nodes:
            for err in net.unregister(n):
                print('cleanup: %s' % err, file=sys.stderr)
    print('%5d  hil/noop to ACTIVE %.2fx (+%.2f s); hil+2 - hil %+.2f s'
          % (count, figures['hil'] / figures['noop'],
             figures['hil'] - figures['noop'],
             figures['hil+2'] - figures['hil']))


if __name__ == '__main__':
    main()
