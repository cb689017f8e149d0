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

"""The real guest booted by Nova's own ironic driver on a Neutron port.

``NovaGuestScenario`` is ``tools.lab.guest.GuestScenario`` with Nova's
path instead of ``baremetal node deploy``:

* the Debian image is a Glance image of the node's project; the node is
  enrolled as the other scenarios do (``hil`` network interface, HIL's
  admin allocates it to the project) and set up for Nova
  (``tools.lab.nova.prepare_node``: resource class, power state);
* the project's Neutron ``vlan`` network, a subnet and a port, made in
  the lab's Neutron; Nova 34.0.0's ``IronicDriver`` (through
  ``tools.lab.nova.Harness``, network source ``neutron``) attaches that
  port as the instance's VIF and spawns with a key pair and user-data,
  its config drive built by Nova's ConfigDriveBuilder;
* while ACTIVE: the VIF is recorded on the boot nic's Ironic port, HIL has
  the node's boot nic on ``neutron-<network id>`` (tagged, beside the
  project's boot network, native), the switch agrees, the Neutron port is
  bound to the node, and Nova's ``network_data.json`` (read from the
  config drive in Ceph) carries the port's id, the boot nic's MAC and the
  port's fixed address;
* cloud-init's marker carries the instance's uuid and the SSH login works
  as in GuestScenario (over the address the iBFT set: the guest's
  cloud-init leaves the boot nic alone, tools/demo/build-debian.sh);
* Nova's destroy then leaves nothing: ``check_nothing_left`` (clone,
  config drive, scratch disks, target, VolumeTarget, HIL attachments,
  switch VLANs, boot files) plus the VIF's HIL network and the Neutron
  port's binding.
"""

import contextlib
import json
import tempfile
import time

from tools.lab import guest
from tools.lab import nova

# The Neutron subnet of the instance's network. Its addresses exist only
# in Neutron and in the config drive (the guest does not apply them), so
# any range will do; it is not the boot network's.
SUBNET = '10.82.0.0/24'


class NovaGuestScenario(guest.GuestScenario):
    """Spawn the Debian guest through Nova's driver, then SSH."""

    # The flavor: with an ephemeral disk and swap (issue 14 part 3), which
    # bmi exports as further LUNs, formatted and labelled as Nova asks.
    FLAVOR = {'root_gb': 3, 'ephemeral_gb': 1, 'swap': 64}
    # What the guest shows of them (``_check_scratch``).
    SCRATCH_CMD = ('sudo -n findmnt -n -r -o SOURCE,LABEL /mnt || true; '
                   'echo --; sudo -n swapon --show=NAME,LABEL --noheadings '
                   '--raw; echo --; lsblk -n -r -o NAME,LABEL,FSTYPE,'
                   'MOUNTPOINT; grep -v "^#" /etc/fstab')

    def __init__(self, *args, harness=None, env=None, **kwargs):
        kwargs.setdefault('prefix', 'nguest')
        super().__init__(*args, **kwargs)
        self.harness = harness
        self.env = env
        self.neutron = nova.neutron(env)
        self.glance_images = []     # (proxy, id)
        self.instance = None
        self.neutron_net = None
        self.neutron_port = None
        self.vif_network = None     # its HIL network
        self.network_data = None    # Nova's network_data.json
        self.attached = None        # the boot nic's HIL networks, ACTIVE
        self.bound = None           # the Neutron port while ACTIVE
        # What the guest mounted at /mnt and swaps on: {'mnt': [source,
        # label], 'swap': [[name, label], ...]}.
        self.scratch = None

    def run(self):
        r = self.report
        node = self.nodes[0]
        with r.step('upload the Debian image to Glance as project %s'
                    % self.project):
            proxy, image_id = nova.upload_image(
                self.env, self.project, self.image_path,
                '%s-debian-%s' % (self.prefix, self.tag))
            self.glance_images.append((proxy, image_id))
            self.golden = image_id
            r.detail('Glance image %s' % image_id)
        with r.step('define a VM on the switch, enroll it in HIL and '
                    'Ironic, set it up for Nova'):
            self.enroll_all()
            nova.prepare_node(self.ironic, node.uuid)
            sched = self.harness.call(
                'schedule', node=node.uuid,
                extra_specs=nova.flavor()['extra_specs'])
            r.detail('placement inventory of %s (Nova\'s driver): %s'
                     % (node.name, sched['inventory']))
        with r.step('a Neutron vlan network, subnet and port of project %s'
                    % self.project):
            self._make_port()
        with r.step('Nova spawns %s on %s with Neutron port %s'
                    % (self.instance_uuid, node.name, self.neutron_port.id)):
            self._spawn(node)
        with r.step('the VIF on HIL, the switch and Neutron; Nova\'s '
                    'network_data.json'):
            self._check_vif(node)
        with r.step('cloud-init on %s applies Nova\'s config drive'
                    % node.name):
            self._wait_guest(node)
        with r.step('log in to %s over SSH' % node.name):
            self._ssh_login(node)
        with r.step("the flavor's ephemeral disk and swap in the guest"):
            self._check_scratch(node)
        with r.step('Nova destroys the instance'):
            self.harness.call('destroy', instance=self.instance)
            self.instance = None
            self.wait_state(node, 'available')
        with r.step('check that nothing is left'):
            self.check_nothing_left()

    # -- steps -----------------------------------------------------------
    def _make_port(self):
        physnet = self.env['services']['neutron']['physnet']
        net = self.neutron.create_network(
            name='%s-net-%s' % (self.prefix, self.tag),
            project_id=self.project, provider_network_type='vlan',
            provider_physical_network=physnet)
        self.neutron_net = net
        # The hil interface's rule (bmi_driver/network/hil_vifs.py): one
        # HIL network per Neutron network. Listed for the clean-up.
        self.vif_network = 'neutron-' + net.id
        self.networks.append(self.vif_network)
        self.neutron.create_subnet(network_id=net.id, cidr=SUBNET,
                                   ip_version=4, project_id=self.project)
        self.neutron_port = self.neutron.create_port(
            network_id=net.id, project_id=self.project,
            name='%s-port-%s' % (self.prefix, self.tag))
        self.report.detail(
            'Neutron network %s (vlan, segmentation id %s), port %s (MAC '
            '%s, %s)' % (net.id, net.provider_segmentation_id,
                         self.neutron_port.id,
                         self.neutron_port.mac_address,
                         self._fixed_ip(self.neutron_port)))

    @staticmethod
    def _fixed_ip(port):
        return (port.fixed_ips or [{}])[0].get('ip_address')

    def _spawn(self, node):
        self.key, public = self._make_key()
        node.console_offset = self.lab.console(node.vm).size()
        node.deploy_started = time.monotonic()
        node.powered_on = None
        node.to_marker = None
        # Nova's spawn returns once the node is ACTIVE; meanwhile the
        # power-on is watched as for the other scenarios.
        answer, _returned, _ = nova.spawn_beside(
            lambda: self.harness.call(
                'spawn', node=node.uuid, image=self.golden,
                flavor=nova.flavor(**self.FLAVOR),
                instance=self.instance_uuid, project_id=self.project,
                name=self.hostname, hostname=self.hostname,
                key={'name': 'bmi-guest-test', 'public_key': public},
                user_data=guest.USER_DATA,
                network={'source': 'neutron',
                         'ports': [self.neutron_port.id]}),
            lambda: self._wait_active(node), self.state_timeout)
        self.instance = answer['instance']
        self.report.detail('Nova instance %s on node %s (%s)' % (
            self.instance, node.uuid, answer['node']['provision_state']))

    def _check_vif(self, node):
        """The VIF where the hil interface puts it; Nova's network data."""
        port = self.neutron_port
        n = self._node(node)
        if n.instance_uuid != self.instance_uuid:
            raise RuntimeError('%s: instance %s, not %s' % (
                node.name, n.instance_uuid, self.instance_uuid))
        vifs = [v.id for v in self.ironic.node.vif_list(node.uuid)]
        if vifs != [port.id]:
            raise RuntimeError('%s: VIFs %s, not [%s]'
                               % (node.name, vifs, port.id))
        # The first VIF takes the PXE port (Ironic's preference): the boot
        # nic, tagged beside its boot network (native).
        nets = self.net.node_networks(node)
        self.attached = nets.get('boot', {})
        channels = [c for c, net in self.attached.items()
                    if net == self.vif_network]
        if channels != ['vlan/%d' % self.net.vlan(self.vif_network)]:
            raise RuntimeError('%s: HIL network %s is on %s of the boot '
                               'nic (HIL: %s)' % (node.name, self.vif_network,
                                                  channels, nets))
        self.net.check_switch_agrees(node)
        self.bound = self.neutron.get_port(port.id)
        if (self.bound.binding_host_id != node.uuid
                or self.bound.binding_vnic_type != 'baremetal'):
            raise RuntimeError('Neutron port %s: bound to %r (%s), not to '
                               'node %s' % (port.id,
                                            self.bound.binding_host_id,
                                            self.bound.binding_vnic_type,
                                            node.uuid))
        self.network_data = json.loads(self._config_drive_file(
            node, 'openstack/latest/network_data.json'))
        links = [(ln.get('vif_id'), ln.get('ethernet_mac_address'))
                 for ln in self.network_data.get('links', [])]
        addresses = [x.get('ip_address')
                     for x in self.network_data.get('networks', [])]
        if links != [(port.id, node.mac)] or addresses != [
                self._fixed_ip(port)]:
            raise RuntimeError('%s: Nova\'s network_data.json has links %s '
                               'and addresses %s, not [(%s, %s)] and %s' % (
                                   node.name, links, addresses, port.id,
                                   node.mac, self._fixed_ip(port)))
        self.report.detail(
            '%s: VIF %s on the boot nic, HIL network %s %s (VLAN %d); '
            'Neutron port bound to %s; network_data.json: link %s %s, '
            'address %s' % (node.name, port.id, self.vif_network,
                            channels[0], self.net.vlan(self.vif_network),
                            self.bound.binding_host_id, port.id, node.mac,
                            addresses[0]))

    def _check_scratch(self, node):
        """What is mounted at /mnt and swapped on, with their labels."""
        mnt, _, rest = self.run_on_guest(node, self.SCRATCH_CMD).partition(
            '--\n')
        swaps = rest.partition('--\n')[0]
        # What Nova's metadata told cloud-init (EC2 names first).
        meta = json.loads(self._config_drive_file(
            node, 'ec2/latest/meta-data.json'))
        self.report.detail('config drive: EC2 block-device-mapping %s'
                           % meta.get('block-device-mapping'))
        self.scratch = {'mnt': mnt.split(),
                        'swap': [ln.split() for ln in swaps.splitlines()
                                 if ln.strip()]}

    def _config_drive_file(self, node, name):
        """A file of the node's config drive, read from its RBD image."""
        with tempfile.TemporaryFile() as f:
            guest.copy_config_drive(node.uuid, f)
            f.seek(0)
            return nova.iso_file(f, name)

    def check_nothing_left(self):
        """GuestScenario's check, plus the VIF's HIL network and binding.

        :raises: RuntimeError naming what is left.
        """
        super().check_nothing_left()
        left = []
        if self.vif_network and self.net.network_exists(self.vif_network):
            left.append('HIL network %s' % self.vif_network)
        if self.neutron_port is not None:
            port = self.neutron.get_port(self.neutron_port.id)
            if port.binding_host_id or port.binding_profile:
                left.append('Neutron binding of port %s: host %r, profile '
                            '%s' % (port.id, port.binding_host_id,
                                    port.binding_profile))
        vifs = self.ironic.node.vif_list(self.nodes[0].uuid)
        if vifs:
            left.append('VIFs %s' % [v.id for v in vifs])
        if left:
            raise RuntimeError('left behind: %s' % '; '.join(left))
        self.report.detail('no HIL network %s, Neutron port %s unbound, '
                           'no VIF on the node' % (self.vif_network,
                                                   self.neutron_port.id))

    def cleanup(self):
        errors = []
        if self.instance:
            try:
                self.harness.call('destroy', instance=self.instance)
            except Exception as e:
                errors.append('Nova destroy: %s' % e)
            self.instance = None
        errors += super().cleanup()
        for what, delete, obj in (
                ('port', self.neutron.delete_port, self.neutron_port),
                ('network', self.neutron.delete_network, self.neutron_net)):
            if obj is None:
                continue
            try:
                delete(obj, ignore_missing=True)
            except Exception as e:
                errors.append('Neutron %s %s: %s' % (what, obj.id, e))
        self.neutron_port = self.neutron_net = None
        for proxy, image_id in self.glance_images:
            with contextlib.suppress(Exception):
                proxy.delete_image(image_id, ignore_missing=True)
        self.glance_images = []
        return errors
