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

"""Benchmark Nova's path against a direct deploy of the same node (issue 14).

One node (``bmi``, fake power, ``noop`` network), one raw Glance image of
its project; per round, side by side:

* direct: what ``baremetal node deploy`` does (PATCH ``instance_info/
  image_source`` and ``root_gb``, then provision state ``active``, through
  ironicclient: the CLI's own start-up is not counted), to ACTIVE; then
  undeploy to AVAILABLE;
* Nova: ``spawn`` of Nova 34.0.0's ``IronicDriver`` through the harness
  (tools/lab/nova_harness.py: node claim, instance_info patch, validate,
  config drive built by Nova's ConfigDriveBuilder, provision, Nova's own
  polling every ``--poll`` seconds) until it returns with the node
  ACTIVE; then Nova's ``destroy`` until the node is AVAILABLE.

Prints medians and ratios (target <= 1.2x), writes them to
``.state/bench/summary.json`` (``nova``). No pass/fail.

    .venv/bin/python tools/bench_nova.py [--rounds 3] [--poll 1]

Needs the lab with Glance (tools/bench runs it inside the namespace).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from ironicclient import client as ir_client  # noqa: E402

from tools import benchlib  # noqa: E402
from tools.lab import nova  # noqa: E402
from tools.lab import state as lab_state  # noqa: E402

MiB = 1024 ** 2
WAIT = 300
POLL = 0.2

NODE = dict(driver='bmi', boot_interface='ipxe', deploy_interface='bmi',
            storage_interface='bmi', network_interface='noop',
            power_interface='fake', management_interface='fake',
            vendor_interface='bmi',
            properties={'capabilities': 'iscsi_boot:True'})


def wait(ironic, node_uuid, state):
    deadline = time.monotonic() + WAIT
    while True:
        n = ironic.node.get(node_uuid, fields=['provision_state',
                                               'target_provision_state',
                                               'last_error'])
        if n.provision_state == state and not n.target_provision_state:
            return
        if n.provision_state.endswith('failed') or (
                time.monotonic() > deadline):
            raise RuntimeError('node %s is %s, not %s: %s' % (
                node_uuid, n.provision_state, state, n.last_error))
        time.sleep(POLL)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=3)
    # Nova's [ironic] api_retry_interval is an IntOpt (nova 34.0.0):
    # 1 s at least; the direct path polls every POLL s.
    parser.add_argument('--poll', type=int, default=1,
                        help='Nova\'s [ironic] api_retry_interval (s)')
    args = parser.parse_args()
    env = benchlib.load_env()
    ironic_env = lab_state.read_env(env.get('ironic_state'), 'Ironic')
    ironic = ir_client.get_client('1', endpoint=ironic_env['url'],
                                  auth_type='none',
                                  os_ironic_api_version='latest')
    tag = uuid.uuid4().hex[:8]
    # A project of the lab's boot networks (per-project mode).
    project = 'tenant-a'
    tmp = tempfile.mkdtemp(prefix='bench-nova-')
    path = os.path.join(tmp, 'disk.raw')
    with open(path, 'wb') as f:
        f.write(os.urandom(8 * MiB))
    images, image = nova.upload_image(env, project, path, 'bench-' + tag)
    os.unlink(path)
    node = None
    harness = nova.from_services(env, poll_interval=args.poll)
    rows = {'direct': [], 'nova': [], 'direct_undeploy': [],
            'nova_destroy': []}
    try:
        harness.start()
        node = ironic.node.create(name='bench-nova-%s' % tag, **NODE)
        ironic.node.update(node.uuid, [
            {'op': 'add', 'path': '/lessee', 'value': project}])
        mac = '52:54:00:%02x:%02x:%02x' % tuple(os.urandom(3))
        ironic.port.create(node_uuid=node.uuid, address=mac)
        # Nova 34.0.0 builds no config drive without a VIF (see the
        # harness's StaticVIFs): one, as Neutron would describe the nic.
        network = {'source': 'static', 'vifs': [nova.static_vif(
            mac, '10.80.0.30')]}
        nova.prepare_node(ironic, node.uuid)
        ironic.node.set_provision_state(node.uuid, 'manage')
        wait(ironic, node.uuid, 'manageable')
        ironic.node.set_provision_state(node.uuid, 'provide')
        wait(ironic, node.uuid, 'available')
        flavor = nova.flavor(root_gb=1)
        for _r in range(args.rounds):
            t0 = time.monotonic()
            ironic.node.update(node.uuid, [
                {'op': 'add', 'path': '/instance_info/image_source',
                 'value': image},
                {'op': 'add', 'path': '/instance_info/root_gb',
                 'value': '1'}])
            ironic.node.set_provision_state(node.uuid, 'active')
            wait(ironic, node.uuid, 'active')
            rows['direct'].append(time.monotonic() - t0)
            t0 = time.monotonic()
            ironic.node.set_provision_state(node.uuid, 'deleted')
            wait(ironic, node.uuid, 'available')
            rows['direct_undeploy'].append(time.monotonic() - t0)

            t0 = time.monotonic()
            inst = harness.call('spawn', node=node.uuid, image=image,
                                flavor=flavor, project_id=project,
                                name='bench', network=network)['instance']
            rows['nova'].append(time.monotonic() - t0)
            t0 = time.monotonic()
            harness.call('destroy', instance=inst)
            wait(ironic, node.uuid, 'available')
            rows['nova_destroy'].append(time.monotonic() - t0)
    finally:
        harness.stop()
        if node is not None:
            try:
                n = ironic.node.get(node.uuid)
                if n.provision_state == 'active':
                    ironic.node.set_provision_state(node.uuid, 'deleted')
                    wait(ironic, node.uuid, 'available')
                ironic.node.delete(node.uuid)
            except Exception as e:
                print('cleanup: node %s: %s' % (node.uuid, e))
        images.delete_image(image, ignore_missing=True)

    med = {k: statistics.median(v) for k, v in rows.items()}
    print('Nova 34.0.0 IronicDriver (harness, poll %d s) vs direct deploy '
          'of the same node, %d rounds (median)' % (args.poll, args.rounds))
    print('  %-22s %-10s %-10s %s' % ('', 'direct', 'nova', 'ratio'))
    print('  %-22s %-10s %-10s %.2fx' % (
        'to ACTIVE', '%.2f s' % med['direct'], '%.2f s' % med['nova'],
        med['nova'] / med['direct']))
    print('  %-22s %-10s %-10s %.2fx' % (
        'to AVAILABLE', '%.2f s' % med['direct_undeploy'],
        '%.2f s' % med['nova_destroy'],
        med['nova_destroy'] / med['direct_undeploy']))
    print('  every round: %s' % ', '.join(
        '%s %s' % (k, ' '.join('%.2f' % x for x in v))
        for k, v in rows.items()))
    benchlib.write_summary('nova', {
        'poll_s': args.poll, 'rounds': args.rounds,
        'direct_to_active_s': round(med['direct'], 3),
        'nova_to_active_s': round(med['nova'], 3),
        'ratio_to_active': round(med['nova'] / med['direct'], 2),
        'direct_undeploy_s': round(med['direct_undeploy'], 3),
        'nova_destroy_s': round(med['nova_destroy'], 3)})
    return 0


if __name__ == '__main__':
    sys.exit(main())
