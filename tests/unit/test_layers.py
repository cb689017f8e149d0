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

"""The layers of bmi_driver, and the direction of its imports.

Only the Ironic interfaces (and the one error-translation module) import
Ironic; the library below them (Ceph images, node disks, iSCSI export, HIL
client, node facts) imports none of them. The ML2 mechanism driver runs in
neutron-server, not in the conductor: it alone imports Neutron's libraries,
imports nothing of bmi_driver, and nothing of bmi_driver imports it.
"""

import ast
import os
import tempfile

from tests import base

_PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'bmi_driver')

# The modules allowed to import ironic: the hardware type, the interfaces,
# the deploy interface's periodic reconcile (deploy/heal.py) and the glue
# that maps bmi_driver's errors to Ironic's.
IRONIC_IMPORTERS = {
    'bmi_driver.common.ironic_errors',
    'bmi_driver.deploy.diskless',
    'bmi_driver.deploy.heal',
    'bmi_driver.deploy.hardware',
    'bmi_driver.deploy.vendor',
    'bmi_driver.network.hil',
    'bmi_driver.storage.rbd_iscsi',
}

# The modules allowed to import neutron_lib (or neutron): the ML2 mechanism
# driver bmi_hil, loaded by neutron-server.
NEUTRON_IMPORTERS = {
    'bmi_driver.network.ml2_hil',
}
_NEUTRON_PACKAGES = ('neutron', 'neutron_lib')

# The library: none of these may import an interface module.
LIBRARY_PREFIXES = (
    'bmi_driver.storage.ceph',
    'bmi_driver.storage.export',
    'bmi_driver.storage.layout',
    'bmi_driver.storage.names',
    'bmi_driver.network.boot_files',
    'bmi_driver.network.boot_networks',
    'bmi_driver.network.hil_api',
    'bmi_driver.network.hil_client',
    'bmi_driver.network.hil_node',
    'bmi_driver.network.hil_vifs',
    'bmi_driver.network.neutron_client',
    'bmi_driver.common.node_facts',
    'bmi_driver.common.locks',
    'bmi_driver.conf',
    'bmi_driver.exception',
)


def _modules():
    for root, _dirs, files in os.walk(_PACKAGE):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, os.path.dirname(_PACKAGE))
            module = rel[:-3].replace(os.sep, '.')
            if module.endswith('.__init__'):
                module = module[:-len('.__init__')]
            yield module, path


def _imports(path):
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            for alias in node.names:
                yield '%s.%s' % (node.module, alias.name)


def _is_under(name, prefix):
    return name == prefix or name.startswith(prefix + '.')


class LayersTestCase(base.TestCase):

    def test_modules_found(self):
        found = dict(_modules())
        self.assertTrue(IRONIC_IMPORTERS.issubset(found),
                        IRONIC_IMPORTERS - set(found))

    def test_only_the_interfaces_import_ironic(self):
        offenders = sorted(
            module for module, path in _modules()
            if module not in IRONIC_IMPORTERS
            and any(_is_under(name, 'ironic') for name in _imports(path)))
        self.assertEqual([], offenders,
                         'only the Ironic interfaces may import ironic')

    def test_the_library_imports_no_interface(self):
        interfaces = IRONIC_IMPORTERS
        offenders = []
        for module, path in _modules():
            if not any(_is_under(module, p) for p in LIBRARY_PREFIXES):
                continue
            for name in _imports(path):
                if any(_is_under(name, i) for i in interfaces):
                    offenders.append('%s imports %s' % (module, name))
        self.assertEqual([], offenders)

    def test_only_the_ml2_driver_imports_neutron(self):
        found = dict(_modules())
        self.assertTrue(NEUTRON_IMPORTERS.issubset(found),
                        NEUTRON_IMPORTERS - set(found))
        offenders = sorted(
            module for module, path in found.items()
            if module not in NEUTRON_IMPORTERS
            and any(_is_under(name, p) for name in _imports(path)
                    for p in _NEUTRON_PACKAGES))
        self.assertEqual([], offenders,
                         'only the ML2 mechanism driver may import '
                         'neutron_lib')

    def test_the_ml2_driver_stands_alone(self):
        # neutron-server loads it alone: no bmi_driver module (its CONF
        # would register the conductor's groups in Neutron's), and no
        # module of the conductor's side loads it.
        found = dict(_modules())
        offenders = []
        for module in NEUTRON_IMPORTERS:
            offenders.extend(
                '%s imports %s' % (module, name)
                for name in _imports(found[module])
                if _is_under(name, 'bmi_driver'))
        for module, path in found.items():
            offenders.extend(
                '%s imports %s' % (module, name)
                for name in _imports(path)
                if any(_is_under(name, m) for m in NEUTRON_IMPORTERS))
        self.assertEqual([], offenders)

    def test_storage_interface_imports_no_deploy_module(self):
        path = dict(_modules())['bmi_driver.storage.rbd_iscsi']
        self.assertEqual([], [n for n in _imports(path)
                              if _is_under(n, 'bmi_driver.deploy')])

    def test_the_check_sees_an_ironic_import(self):
        # The walk would catch both spellings.
        tree = list(_imports_of('import ironic.objects\n'
                                'from ironic.common import states\n'
                                'from neutron_lib.plugins.ml2 import api\n'))
        self.assertIn('ironic.objects', tree)
        self.assertIn('ironic.common', tree)
        self.assertIn('neutron_lib.plugins.ml2', tree)


def _imports_of(source):
    with tempfile.NamedTemporaryFile('w', suffix='.py') as f:
        f.write(source)
        f.flush()
        return list(_imports(f.name))
