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
its project, one Neutron port of the project as the instance's VIF (Nova
34.0.0 builds no config drive without one; ``noop`` drops it); per round,
side by side:

* direct: what ``baremetal node deploy`` does (PATCH ``instance_info/
  image_source`` and ``root_gb``, then provision state ``active``, through
  ironicclient: the CLI's own start-up is not counted), to ACTIVE; then
  undeploy to AVAILABLE;
* Nova: ``spawn`` of Nova 34.0.0's ``IronicDriver`` through the harness
  (tools/lab/nova_harness.py: node claim, VIF attach, instance_info
  patch, validate, config drive built by Nova's ConfigDriveBuilder,
  provision, Nova's own polling every ``--poll`` seconds) until it
  returns with the node ACTIVE, and, from the same start, until the
  bench sees the node ACTIVE in Ironic (the deploy itself, without Nova's
  polling interval); then Nova's ``destroy`` until the node is
  AVAILABLE.

* direct with a config drive: the same direct deploy carrying the config
  drive Nova builds for such an instance (the harness's ``configdrive``:
  Nova's own ``_generate_configdrive``, gzipped and base64'd as spawn
  sends it; ``baremetal node deploy --config-drive``), to ACTIVE and
  back: what the config drive costs bmi, told apart from what is Nova's.

Both transitions are timed by ``tools.benchlib.wait_states`` (as
bench_deploy's). Prints medians and ratios (target <= 1.2x), writes them
to ``.state/bench/summary.json`` (``nova``). No pass/fail.

With ``--timeline``, one more Nova spawn and one direct deploy with the
config drive, after the rounds, print where their time goes: the
harness's spans (Nova's steps and its Ironic, Glance and Neutron calls:
tools/lab/nova_harness.py ``Timeline``) and the conductor's log lines of
the node, on one clock from the request's start.

    .venv/bin/python tools/bench_nova.py [--rounds 3] [--poll 1] [--timeline]

Needs the all-in-one lab with Glance and Neutron (tools/bench runs it
inside the namespace).
"""

import argparse
import datetime
import os
import re
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

MiB = 1024 ** 2
WAIT = 300

NODE = dict(driver='bmi', boot_interface='ipxe', deploy_interface='bmi',
            storage_interface='bmi', network_interface='noop',
            power_interface='fake', management_interface='fake',
            vendor_interface='bmi',
            properties={'capabilities': 'iscsi_boot:True'})


def wait(ironic, node_uuid, state, started=None):
    """Seconds from ``started`` (perf_counter; default now) to ``state``."""
    if started is None:
        started = time.perf_counter()
    return benchlib.wait_states(ironic, [node_uuid], state, started, WAIT)


class Resources(object):
    """What the bench makes outside Ironic, removed at the end."""

    def __init__(self, env, project, tag):
        self.env = env
        self.project = project
        self.tag = tag
        self.neutron = nova.neutron(env)
        self.images = None
        self.image = None
        self.net = None
        self.port = None

    def make(self):
        tmp = tempfile.mkdtemp(prefix='bench-nova-')
        path = os.path.join(tmp, 'disk.raw')
        with open(path, 'wb') as f:
            f.write(os.urandom(8 * MiB))
        try:
            self.images, self.image = nova.upload_image(
                self.env, self.project, path, 'bench-' + self.tag)
        finally:
            os.unlink(path)
            os.rmdir(tmp)
        self.net = self.neutron.create_network(
            name='bench-nova-' + self.tag, project_id=self.project,
            provider_network_type='vlan',
            provider_physical_network=self.env['services']['neutron'][
                'physnet'])
        self.neutron.create_subnet(network_id=self.net.id,
                                   cidr='10.83.0.0/24', ip_version=4,
                                   project_id=self.project)
        self.port = self.neutron.create_port(network_id=self.net.id,
                                             project_id=self.project)

    def remove(self):
        for what, delete, obj in (('port', self.neutron.delete_port,
                                   self.port),
                                  ('network', self.neutron.delete_network,
                                   self.net)):
            if obj is not None:
                try:
                    delete(obj, ignore_missing=True)
                except Exception as e:
                    print('cleanup: Neutron %s %s: %s' % (what, obj.id, e))
        if self.image:
            self.images.delete_image(self.image, ignore_missing=True)


def spawn_timed(ironic, harness, node_uuid, timeline=None, **spawn):
    """Nova's spawn: (seconds until it returned, until Ironic's ACTIVE).

    The bench watches the node from the same start while the harness
    waits in Nova's own loop. ``timeline``: a dict that gets the
    harness's spans (``spans``) and the wall clock of the start
    (``start``).
    """
    if timeline is not None:
        timeline['start'] = time.time()
    t0 = time.perf_counter()
    answer, returned, active = nova.spawn_beside(
        lambda: harness.call('spawn', node=node_uuid,
                             timeline=timeline is not None, **spawn),
        lambda: wait(ironic, node_uuid, 'active', t0), WAIT)
    if timeline is not None:
        timeline['spans'] = answer.get('timeline') or []
        timeline['returned'] = timeline['start'] + returned - t0
    return returned - t0, active, answer['instance']


def deploy_direct(ironic, node_uuid, image, configdrive=None):
    """``baremetal node deploy`` (with ``--config-drive``): to ACTIVE (s)."""
    t0 = time.perf_counter()
    ironic.node.update(node_uuid, [
        {'op': 'add', 'path': '/instance_info/image_source',
         'value': image},
        {'op': 'add', 'path': '/instance_info/root_gb', 'value': '1'}])
    # bytes: ironicclient 6.3.0 takes a str for a file or directory name.
    ironic.node.set_provision_state(
        node_uuid, 'active',
        configdrive=configdrive.encode() if configdrive else None)
    return wait(ironic, node_uuid, 'active', t0)


def undeploy(ironic, node_uuid):
    t0 = time.perf_counter()
    ironic.node.set_provision_state(node_uuid, 'deleted')
    return wait(ironic, node_uuid, 'available', t0)


class ConductorLog(object):
    """The lines the conductor logs from now on (its log file)."""

    def __init__(self, path):
        self.path = path
        self.offset = os.path.getsize(path) if path else 0

    def lines(self, node_uuid):
        """[(wall clock, text)] of the lines since, naming the node.

        oslo.log's default format starts with the local time to the
        millisecond (``2026-12-02 05:10:11.123``).
        """
        if not self.path:
            return []
        with open(self.path, errors='replace') as f:
            f.seek(self.offset)
            text = f.read()
        found = []
        for line in text.splitlines():
            if node_uuid not in line:
                continue
            try:
                stamp = datetime.datetime.strptime(line[:23],
                                                   '%Y-%m-%d %H:%M:%S.%f')
            except ValueError:
                continue
            found.append((stamp.timestamp(), line[24:]))
        return found


def print_timeline(title, start, spans, log_lines, node_uuid, width=150):
    """One clock from ``start`` (wall): harness spans and log lines."""
    rows = [(sp['start'], '%+8.3f %+8.3f %6.3f  nova: %s' % (
        sp['start'] - start, sp.get('end', sp['start']) - start,
        sp.get('end', sp['start']) - sp['start'], sp['what']))
        for sp in spans]
    for stamp, text in log_lines:
        # The logger's name and the message: not the pid, the level,
        # the request context; the node's UUID is known.
        text = re.sub(r'^\d+ \w+ (\S+) \[[^]]*\] ', r'\1: ', text)
        text = text.replace(node_uuid, '<node>')
        rows.append((stamp, '%+8.3f %8s %6s  ironic: %s' % (
            stamp - start, '', '', text)))
    print('\n%s (s from the request; start, end, took)' % title)
    for _stamp, row in sorted(rows, key=lambda r: r[0]):
        print('  ' + row[:width])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=3)
    # Nova's [ironic] api_retry_interval is an IntOpt (nova 34.0.0):
    # 1 s at least; the direct path polls every POLL s.
    parser.add_argument('--poll', type=int, default=1,
                        help='Nova\'s [ironic] api_retry_interval (s)')
    parser.add_argument('--timeline', action='store_true',
                        help='print where one spawn\'s time goes')
    args = parser.parse_args()
    env = benchlib.load_env()
    ironic_env = benchlib.ironic_env(env)
    ironic = ir_client.get_client('1', endpoint=ironic_env['url'],
                                  auth_type='none',
                                  os_ironic_api_version='latest')
    tag = uuid.uuid4().hex[:8]
    # A project of the lab's boot networks (per-project mode).
    project = 'tenant-a'
    res = Resources(env, project, tag)
    node = None
    harness = nova.from_services(
        env, poll_interval=args.poll,
        neutron_url=env['services']['neutron']['url'])
    rows = {'direct': [], 'nova': [], 'nova_ironic_active': [],
            'direct_undeploy': [], 'nova_destroy': [],
            'direct_configdrive': [], 'direct_configdrive_undeploy': []}
    try:
        res.make()
        harness.start()
        node = ironic.node.create(name='bench-nova-%s' % tag, **NODE)
        ironic.node.update(node.uuid, [
            {'op': 'add', 'path': '/lessee', 'value': project}])
        mac = '52:54:00:%02x:%02x:%02x' % tuple(os.urandom(3))
        ironic.port.create(node_uuid=node.uuid, address=mac)
        nova.prepare_node(ironic, node.uuid)
        ironic.node.set_provision_state(node.uuid, 'manage')
        wait(ironic, node.uuid, 'manageable')
        ironic.node.set_provision_state(node.uuid, 'provide')
        wait(ironic, node.uuid, 'available')
        flavor = nova.flavor(root_gb=1)
        network = {'source': 'neutron', 'ports': [res.port.id]}
        spawn = dict(image=res.image, flavor=flavor, project_id=project,
                     name='bench', network=network)
        # What Nova's spawn sends for this instance (its own builder).
        configdrive = harness.call('configdrive', node=node.uuid,
                                   **spawn)['configdrive']
        for _r in range(args.rounds):
            rows['direct'].append(deploy_direct(ironic, node.uuid,
                                                res.image))
            rows['direct_undeploy'].append(undeploy(ironic, node.uuid))

            returned, active, inst = spawn_timed(
                ironic, harness, node.uuid, **spawn)
            rows['nova'].append(returned)
            rows['nova_ironic_active'].append(active)
            t0 = time.perf_counter()
            harness.call('destroy', instance=inst)
            rows['nova_destroy'].append(
                wait(ironic, node.uuid, 'available', t0))

            rows['direct_configdrive'].append(deploy_direct(
                ironic, node.uuid, res.image, configdrive))
            rows['direct_configdrive_undeploy'].append(
                undeploy(ironic, node.uuid))
        if args.timeline:
            log_path = ironic_env.get('log')
            log = ConductorLog(log_path)
            timeline = {}
            _ret, _act, inst = spawn_timed(ironic, harness, node.uuid,
                                           timeline=timeline, **spawn)
            print_timeline('One Nova spawn', timeline['start'],
                           timeline['spans'] + [{
                               'what': 'spawn returned',
                               'start': timeline['returned']}],
                           log.lines(node.uuid), node.uuid)
            harness.call('destroy', instance=inst)
            wait(ironic, node.uuid, 'available')
            log = ConductorLog(log_path)
            start = time.time()
            deploy_direct(ironic, node.uuid, res.image, configdrive)
            print_timeline('One direct deploy with the config drive',
                           start, [{'what': 'ACTIVE seen',
                                    'start': time.time()}],
                           log.lines(node.uuid), node.uuid)
            undeploy(ironic, node.uuid)
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
        res.remove()

    med = {k: statistics.median(v) for k, v in rows.items()}
    print('Nova 34.0.0 IronicDriver (harness, poll %d s) vs direct deploy '
          'of the same node, %d rounds (median)' % (args.poll, args.rounds))
    print('  %-34s %-10s %-10s %s' % ('', 'direct', 'nova', 'ratio'))
    print('  %-34s %-10s %-10s %.2fx' % (
        'to ACTIVE (Nova\'s spawn returned)', '%.2f s' % med['direct'],
        '%.2f s' % med['nova'], med['nova'] / med['direct']))
    print('  %-34s %-10s %-10s %.2fx' % (
        'to ACTIVE (Ironic, Nova\'s path)', '%.2f s' % med['direct'],
        '%.2f s' % med['nova_ironic_active'],
        med['nova_ironic_active'] / med['direct']))
    print('  %-34s %-10s %-10s %.2fx' % (
        'to AVAILABLE', '%.2f s' % med['direct_undeploy'],
        '%.2f s' % med['nova_destroy'],
        med['nova_destroy'] / med['direct_undeploy']))
    # The direct deploy with Nova's config drive: the config drive's
    # share (direct with / without), then what is left to Nova.
    print('  %-34s %-10s %-10s %.2fx' % (
        'to ACTIVE, direct + config drive', '%.2f s' % med['direct'],
        '%.2f s' % med['direct_configdrive'],
        med['direct_configdrive'] / med['direct']))
    print('  %-34s %-10s %-10s %.2fx' % (
        'to ACTIVE (Ironic), vs direct + cd',
        '%.2f s' % med['direct_configdrive'],
        '%.2f s' % med['nova_ironic_active'],
        med['nova_ironic_active'] / med['direct_configdrive']))
    print('  %-34s %-10s %-10s %.2fx' % (
        'to AVAILABLE, direct + config drive',
        '%.2f s' % med['direct_undeploy'],
        '%.2f s' % med['direct_configdrive_undeploy'],
        med['direct_configdrive_undeploy'] / med['direct_undeploy']))
    print('  every round: %s' % ', '.join(
        '%s %s' % (k, ' '.join('%.2f' % x for x in v))
        for k, v in rows.items()))
    benchlib.write_summary('nova', {
        'poll_s': args.poll, 'rounds': args.rounds,
        'direct_to_active_s': round(med['direct'], 3),
        'nova_to_active_s': round(med['nova'], 3),
        'ratio_to_active': round(med['nova'] / med['direct'], 2),
        'nova_ironic_active_s': round(med['nova_ironic_active'], 3),
        'ratio_ironic_active': round(
            med['nova_ironic_active'] / med['direct'], 2),
        'direct_undeploy_s': round(med['direct_undeploy'], 3),
        'nova_destroy_s': round(med['nova_destroy'], 3),
        'direct_configdrive_to_active_s': round(
            med['direct_configdrive'], 3),
        'ratio_configdrive_to_direct': round(
            med['direct_configdrive'] / med['direct'], 2),
        'ratio_ironic_active_to_direct_configdrive': round(
            med['nova_ironic_active'] / med['direct_configdrive'], 2),
        'direct_configdrive_undeploy_s': round(
            med['direct_configdrive_undeploy'], 3)})
    return 0


if __name__ == '__main__':
    sys.exit(main())
