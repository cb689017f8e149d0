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

"""The option groups, their listing and the sample configuration."""

import configparser
import difflib
import importlib
import os
import pkgutil
import re
import sys

import fixtures
from oslo_concurrency import processutils
from oslo_config import cfg

from bmi_driver import conf as bmi_conf
from bmi_driver.conf import opts
from tests import base

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SAMPLE = os.path.join(_REPO, 'etc', 'bmi.conf.sample')
GENERATOR_CONF = os.path.join(_REPO, 'etc', 'bmi-config-generator.conf')
# The ML2 driver bmi_hil's options, for neutron-server's configuration.
ML2_SAMPLE = os.path.join(_REPO, 'etc', 'ml2_bmi_hil.conf.sample')
ML2_GENERATOR_CONF = os.path.join(_REPO, 'etc',
                                  'ml2-bmi-hil-config-generator.conf')

# Option names that hold a secret (not a path to one: keyfile, keyring).
_SECRET_NAME = re.compile(
    r'password|passwd|secret|token|credential|private_key|(^|_)key$')
_NOT_TEXT = (cfg.IntOpt, cfg.FloatOpt, cfg.BoolOpt, cfg.PortOpt)


def _conf_modules():
    """Every module of bmi_driver.conf that defines an option group."""
    found = []
    for info in pkgutil.iter_modules(bmi_conf.__path__):
        module = importlib.import_module('bmi_driver.conf.' + info.name)
        if hasattr(module, 'list_opts') and hasattr(module, 'GROUP'):
            found.append(module)
    return found


class ListOptsTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.listed = opts.list_opts()

    def test_every_group_listed_once(self):
        groups = [group for group, _opts in self.listed]
        self.assertEqual(len(groups), len(set(groups)))
        self.assertEqual(sorted(m.GROUP for m in _conf_modules()),
                         sorted(groups))
        self.assertTrue({'bmi', 'ceph', 'iscsi', 'coordination',
                         'hil'}.issubset(groups))

    def test_own_options_registered_and_listed(self):
        # (keystoneauth's plugin options of [hil] are listed for the sample
        # but registered only when the client loads its plugin.)
        listed = dict(self.listed)
        for module in _conf_modules():
            for opt in module.opts:
                self.assertIn(opt.dest, bmi_conf.CONF[module.GROUP],
                              '[%s] %s' % (module.GROUP, opt.dest))
                self.assertIn(opt.dest,
                              [o.dest for o in listed[module.GROUP]])

    def test_options_documented(self):
        for group, group_opts in self.listed:
            names = [o.dest for o in group_opts]
            self.assertEqual(len(names), len(set(names)), group)
            for opt in group_opts:
                self.assertTrue(opt.help, '[%s] %s has no help'
                                % (group, opt.dest))

    def test_secrets_are_secret(self):
        for group, group_opts in self.listed:
            for opt in group_opts:
                if isinstance(opt, _NOT_TEXT):
                    continue
                secret_name = _SECRET_NAME.search(opt.dest)
                url_with_credentials = (opt.dest.endswith('url') and
                                        'credential' in (opt.help or ''))
                if secret_name or url_with_credentials:
                    self.assertTrue(opt.secret, '[%s] %s must be secret=True'
                                    % (group, opt.dest))

    def test_known_secrets(self):
        secret = {(group, o.dest) for group, group_opts in self.listed
                  for o in group_opts if o.secret}
        self.assertTrue({('coordination', 'backend_url'),
                         ('hil', 'password')}.issubset(secret))

    def test_ceph_options(self):
        ceph = dict(self.listed)['ceph']
        self.assertTrue({'conf_file', 'user', 'keyring', 'image_pool',
                         'clone_pool', 'glance_pool', 'connect_timeout',
                         'op_timeout'}.issubset(o.dest for o in ceph))


class SampleConfigTestCase(base.TestCase):

    def _check_sample(self, sample, generator_conf):
        """``sample`` is what oslo-config-generator writes now."""
        generator = os.path.join(os.path.dirname(sys.executable),
                                 'oslo-config-generator')
        out = os.path.join(self.useFixture(fixtures.TempDir()).path,
                           os.path.basename(sample))
        processutils.execute(generator, '--config-file', generator_conf,
                             '--output-file', out, cwd=_REPO)
        with open(out) as f:
            generated = f.read()
        try:
            with open(sample) as f:
                committed = f.read()
        except FileNotFoundError:
            committed = ''
        name = os.path.relpath(sample, _REPO)
        if generated != committed:
            diff = ''.join(list(difflib.unified_diff(
                committed.splitlines(True), generated.splitlines(True),
                name, 'generated'))[:40])
            self.fail('%s is out of date: run make genconfig\n%s'
                      % (name, diff))

    def test_sample_up_to_date(self):
        """etc/bmi.conf.sample is what oslo-config-generator writes now."""
        self._check_sample(SAMPLE, GENERATOR_CONF)

    def test_ml2_sample_up_to_date(self):
        """etc/ml2_bmi_hil.conf.sample: bmi_hil's options, for Neutron."""
        self._check_sample(ML2_SAMPLE, ML2_GENERATOR_CONF)
        with open(ML2_SAMPLE) as f:
            self.assertIn('[ml2_bmi_hil]', f.read())


class IronicSnippetTestCase(base.TestCase):
    """What etc/ironic.conf.snippet tells operators to set."""

    def test_boot_configs_not_readable_by_all(self):
        # Ironic 39's [pxe] file_permission default (0o644) leaves every
        # node's CHAP secret readable by every local user of the host.
        parser = configparser.ConfigParser()
        parser.read(os.path.join(_REPO, 'etc', 'ironic.conf.snippet'))
        mode = int(parser.get('pxe', 'file_permission', fallback='0o644'),
                   0)
        self.assertEqual(0, mode & 0o007)
