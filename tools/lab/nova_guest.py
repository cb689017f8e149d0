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

"""The real guest booted by Nova's own ironic driver (issue 14).

``NovaGuestScenario`` is ``tools.lab.guest.GuestScenario`` with Nova's
path instead of ``baremetal node deploy``: the Debian image is a Glance
image of the node's project, the node is set up for Nova (resource
class, ``tools.lab.nova.prepare_node``), and Nova 34.0.0's
``IronicDriver`` (through ``tools.lab.nova.Harness``) spawns the
instance with a key pair and user-data, its config drive built by Nova's
ConfigDriveBuilder; cloud-init's marker must carry the instance's uuid
and the SSH login works as in GuestScenario; Nova's destroy then leaves
nothing (``check_nothing_left``).
"""

import contextlib
import threading
import time

from tools.lab import guest
from tools.lab import nova


class NovaGuestScenario(guest.GuestScenario):
    """Spawn the Debian guest through Nova's driver, then SSH."""

    def __init__(self, *args, harness=None, env=None, **kwargs):
        kwargs.setdefault('prefix', 'nguest')
        super().__init__(*args, **kwargs)
        self.harness = harness
        self.env = env
        self.glance_images = []     # (proxy, id)
        self.instance = None

    def run(self):
        r = self.report
        node = self.nodes[0]
        with r.step('upload the Debian image to Glance as project %s'
                    % self.project):
            images, image_id = nova.upload_image(
                self.env, self.project, self.image_path,
                '%s-debian-%s' % (self.prefix, self.tag))
            self.glance_images.append((images, image_id))
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
        with r.step('Nova spawns %s on %s (config drive by Nova)'
                    % (self.instance_uuid, node.name)):
            self._spawn(node)
        with r.step('cloud-init on %s applies Nova\'s config drive'
                    % node.name):
            self._wait_guest(node)
        with r.step('log in to %s over SSH' % node.name):
            self._ssh_login(node)
        with r.step('Nova destroys the instance'):
            self.harness.call('destroy', instance=self.instance)
            self.instance = None
            self.wait_state(node, 'available')
        with r.step('check that nothing is left'):
            self.check_nothing_left()

    def _spawn(self, node):
        self.key, public = self._make_key()
        node.console_offset = self.lab.console(node.vm).size()
        node.deploy_started = time.monotonic()
        node.powered_on = None
        node.to_marker = None
        result = {}

        def spawn():
            try:
                result['answer'] = self.harness.call(
                    'spawn', node=node.uuid, image=self.golden,
                    flavor=nova.flavor(root_gb=3),
                    instance=self.instance_uuid, project_id=self.project,
                    name=self.hostname, hostname=self.hostname,
                    key={'name': 'bmi-guest-test', 'public_key': public},
                    user_data=guest.USER_DATA,
                    # Static: one VIF as Neutron would describe the boot
                    # nic's port (the guest's cloud-init leaves its
                    # network as the iBFT set it).
                    network={'source': 'static', 'vifs': [
                        nova.static_vif(node.mac, '10.80.0.20')]})
            except Exception as e:
                result['error'] = e
        # Nova's spawn returns once the node is ACTIVE; meanwhile the
        # power-on is watched as for the other scenarios.
        thread = threading.Thread(target=spawn, daemon=True)
        thread.start()
        try:
            self._wait_active(node)
        finally:
            thread.join(self.state_timeout)
        if 'error' in result:
            raise result['error']
        if thread.is_alive() or 'answer' not in result:
            raise RuntimeError('Nova\'s spawn did not return')
        self.instance = result['answer']['instance']
        self.report.detail('Nova instance %s on node %s (%s)' % (
            self.instance, node.uuid,
            result['answer']['node']['provision_state']))

    def cleanup(self):
        errors = []
        if self.instance:
            try:
                self.harness.call('destroy', instance=self.instance)
            except Exception as e:
                errors.append('Nova destroy: %s' % e)
            self.instance = None
        errors += super().cleanup()
        for images, image_id in self.glance_images:
            with contextlib.suppress(Exception):
                images.delete_image(image_id, ignore_missing=True)
        self.glance_images = []
        return errors
