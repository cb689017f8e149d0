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

"""[glance]: one section for Ironic and the plugin (issue 13)."""

from ironic.conf import glance as ironic_glance
from oslo_config import cfg

from bmi_driver.conf import glance
from bmi_driver.storage import glance_client
from tests import base


class GlanceGroupTest(base.TestCase):

    def _conf(self, *registrars):
        conf = cfg.ConfigOpts()
        for register in registrars:
            register(conf)
        conf([], project='bmi-test')
        return conf

    def test_with_ironic_in_either_order(self):
        # Ironic 39.0.0 registers the group with changed defaults: a
        # second register_*_conf_options call would raise.
        for order in ((ironic_glance.register_opts, glance.register_opts),
                      (glance.register_opts, ironic_glance.register_opts)):
            conf = self._conf(*order)
            self.assertEqual('image', conf.glance.service_type)
            self.assertIsNone(conf.glance.endpoint_override)
            self.assertIn('auth_type', conf.glance)

    def test_alone(self):
        conf = self._conf(glance.register_opts)
        self.assertEqual('image', conf.glance.service_type)
        for name in ('auth_type', 'endpoint_override', 'timeout',
                     'cafile', 'valid_interfaces'):
            self.assertIn(name, conf.glance)


class RBDURLTest(base.TestCase):

    def test_glance_store_urls(self):
        parse = glance_client.parse_rbd_url
        self.assertEqual('images/abc@snap',
                         parse('rbd://fsid-1/images/abc/snap'))
        self.assertEqual('images/a b@snap',
                         parse('rbd://f/images/a%20b/snap'))
        for url in (None, '', 'file:///var/lib/glance/images/x',
                    'rbd://f/images/abc', 'rbd://f/images//snap',
                    'swift+https://x/y', 'rbd://f/a/b/c/d'):
            self.assertIsNone(parse(url), url)
