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

"""Unit tests of the gateway's dnsmasq command line (no daemon runs)."""

import fixtures

from tests import base
from tools.lab import gateway


class DnsmasqTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.spawn = self.useFixture(fixtures.MockPatchObject(
            gateway.netns, 'spawn', return_value=42)).mock

    def argv(self, **kwargs):
        self.assertEqual(42, gateway.start_dnsmasq(
            'ns', self.state_dir, 'gw-p', '10.78.1.100', '10.78.1.199',
            'http://10.78.1.1/boot.ipxe', **kwargs))
        return self.spawn.call_args[0][1]

    def test_dhcp_only_by_default(self):
        argv = self.argv()
        self.assertIn('--port=0', argv)
        self.assertIn('--dhcp-boot=http://10.78.1.1/boot.ipxe', argv)
        self.assertNotIn('--enable-ra', argv)

    def test_router_advertisements_without_a_default_router(self):
        # iPXE's IPv6 autoconfiguration ends at the first answer.
        argv = self.argv(ra_prefix='fd00:78:1::')
        self.assertIn('--enable-ra', argv)
        self.assertIn('--dhcp-range=fd00:78:1::,ra-only,64', argv)
        self.assertIn('--ra-param=gw-p,60,0', argv)
        # No DHCPv6 addresses: the range is RA only.
        self.assertEqual(2, sum(a.startswith('--dhcp-range=') for a in argv))
