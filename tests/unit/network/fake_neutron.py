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

"""Neutron's HTTP API as the unit tests need it (the outside world).

requests_mock answers the routes the plugin uses (version discovery, GET
and PUT of ports, GET of networks) from a dict state; every other request
(the in-process HIL server) goes to the network.  A PUT that binds a
``baremetal`` port to a host makes it ACTIVE with ``binding:vif_type``
``other`` (what bmi_driver's ML2 driver bmi_hil does in Neutron 29.0.0
for a VLAN network of its physnets), unless ``binds`` is False
(binding_failed, no mechanism driver took it) or ``activates`` is False
(bound, but DOWN: a driver whose provisioning block never clears);
clearing ``binding:host_id`` makes it DOWN and unbound.
"""

import json
import re

import fixtures
import requests_mock

URL = 'http://neutron.test:9696'


class FakeNeutron(fixtures.Fixture):

    def __init__(self):
        super().__init__()
        self.networks = {}
        self.ports = {}
        self.binds = True
        self.activates = True
        self.puts = []

    def _setUp(self):
        m = requests_mock.Mocker(real_http=True)
        m.start()
        self.addCleanup(m.stop)
        m.get(URL, json={'versions': [{
            'id': 'v2.0', 'status': 'CURRENT',
            'links': [{'href': URL + '/v2.0/', 'rel': 'self'}]}]})
        m.get(re.compile(re.escape(URL) + r'/v2\.0/ports/[^/]+$'),
              json=self._get_port)
        m.put(re.compile(re.escape(URL) + r'/v2\.0/ports/[^/]+$'),
              json=self._put_port)
        m.get(re.compile(re.escape(URL) + r'/v2\.0/networks/[^/]+$'),
              json=self._get_network)

    def add_network(self, net_id, project, seg_id, net_type='vlan'):
        self.networks[net_id] = {
            'id': net_id, 'project_id': project, 'tenant_id': project,
            'provider:network_type': net_type,
            'provider:physical_network': 'physnet1',
            'provider:segmentation_id': seg_id}

    def add_port(self, port_id, network_id, project):
        self.ports[port_id] = {
            'id': port_id, 'network_id': network_id, 'project_id': project,
            'tenant_id': project, 'status': 'DOWN',
            'binding:host_id': '', 'binding:vnic_type': 'normal',
            'binding:profile': {}, 'binding:vif_type': 'unbound',
            'device_owner': '', 'device_id': ''}

    @staticmethod
    def _id(request):
        return request.path.rstrip('/').rsplit('/', 1)[-1]

    def _get_port(self, request, context):
        port = self.ports.get(self._id(request))
        if port is None:
            context.status_code = 404
            return {'NeutronError': {'type': 'PortNotFound',
                                     'message': 'Port not found'}}
        return {'port': port}

    def _get_network(self, request, context):
        net = self.networks.get(self._id(request))
        if net is None:
            context.status_code = 404
            return {'NeutronError': {'type': 'NetworkNotFound',
                                     'message': 'Network not found'}}
        return {'network': net}

    def _put_port(self, request, context):
        port = self.ports.get(self._id(request))
        if port is None:
            context.status_code = 404
            return {'NeutronError': {'type': 'PortNotFound',
                                     'message': 'Port not found'}}
        body = json.loads(request.body)['port']
        self.puts.append((port['id'], body))
        port.update(body)
        if not port['binding:host_id']:
            port.update(status='DOWN', **{'binding:vif_type': 'unbound'})
        elif port['binding:vnic_type'] == 'baremetal':
            if not self.binds:
                port.update(**{'binding:vif_type': 'binding_failed'})
            else:
                port.update(status='ACTIVE' if self.activates else 'DOWN',
                            **{'binding:vif_type': 'other'})
        return {'port': port}
