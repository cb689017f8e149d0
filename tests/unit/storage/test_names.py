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

"""Names the library accepts."""

from bmi_driver import exception
from bmi_driver.storage import layout
from bmi_driver.storage import names
from tests import base

UUID = '1be26c0b-03f2-4d2d-ae87-c02d7f33c123'


class NamesTestCase(base.TestCase):

    def assert_invalid(self, check, value, kind, reason=''):
        e = self.assertRaises(exception.InvalidName, check, value)
        self.assertIsInstance(e, exception.InvalidInput)
        self.assertIn('Invalid %s %r' % (kind, value), str(e))
        self.assertIn(reason, str(e))

    def test_image_name(self):
        for good in ('a', 'Ubuntu-22.04_server', '9', 'x' * 63,
                     'a.b-c_d', '1be26c0b'):
            self.assertEqual(good, names.image_name(good))
        for bad, reason in [
                ('', 'non-empty'), (None, 'non-empty'), (7, 'non-empty'),
                ('x' * 64, 'longer than 63'), ('-a', 'starting with'),
                ('.hidden', 'starting'), ('_a', 'starting'),
                ('a b', 'letters'), ('a/b', 'letters'), ('a@b', 'letters'),
                ('é', 'letters'), ('a\nb', 'letters'), ('a:b', 'letters'),
                (UUID, 'must not look like a UUID'),
                (UUID.upper(), 'UUID'), (UUID.replace('-', ''), 'UUID')]:
            self.assert_invalid(names.image_name, bad, 'image name', reason)

    def test_project(self):
        for good in ('admin', 'a' * 64, 'b8e3c1d2f4a5467890abcdef12345678'):
            self.assertEqual(good, names.project(good))
        for bad in ('', 'a' * 65, 'a b', '-a', None, 'p/q'):
            self.assert_invalid(names.project, bad, 'project')

    def test_visibility(self):
        self.assertEqual('private', names.visibility('private'))
        self.assertEqual('public', names.visibility('public'))
        for bad in ('Private', 'shared', '', None):
            self.assert_invalid(names.visibility, bad, 'visibility',
                                'private, public')

    def test_node_uuid(self):
        self.assertEqual(UUID, names.node_uuid(UUID.upper()))
        for bad in ('node-1', '', None, UUID + 'x'):
            self.assert_invalid(names.node_uuid, bad, 'node UUID',
                                'not a UUID')

    def test_rbd_ref(self):
        self.assertEqual(('images', UUID, 'snap'),
                         names.rbd_ref('images/%s@snap' % UUID))
        ref = names.rbd_ref('bmi-images/img-1')
        self.assertEqual(('bmi-images', 'img-1', None), ref)
        self.assertEqual(('p', 'i', None), (ref._replace(pool='p',
                                                         image='i')))
        self.assertEqual('rbd.1:x+y', names.rbd_ref('p/rbd.1:x+y@s').image)
        for bad in ('images', 'images/', '/image', 'p/i@', 'p/@s',
                    'p/i@s@t', 'p/i/j', 'p q/i', 'p/i s', '', None, b'p/i'):
            self.assert_invalid(names.rbd_ref, bad, 'RBD reference')

    def test_trailing_newline_refused(self):
        """``$`` in a regular expression also matches before a final \\n."""
        self.assert_invalid(names.image_name, 'ubuntu\n', 'image name')
        self.assert_invalid(names.project, 'admin\n', 'project')
        self.assert_invalid(names.rbd_ref, 'images/x@snap\n',
                            'RBD reference')


class NodeImageNamesTestCase(base.TestCase):
    """layout: the names and LUNs of a node's images (issue 14)."""

    def test_names(self):
        node = '1be26c0b-03f2-4d2d-ae87-c02d7f33c123'
        for name, suffix in ((layout.node_rbd_name(node), ''),
                             (layout.configdrive_rbd_name(node), '-config'),
                             (layout.ephemeral_rbd_name(node), '-ephemeral'),
                             (layout.swap_rbd_name(node), '-swap')):
            self.assertEqual((node, suffix), layout.node_of_rbd_name(name))
        self.assertEqual((None, None), layout.node_of_rbd_name('img-x'))

    def test_target_luns(self):
        node = '1be26c0b-03f2-4d2d-ae87-c02d7f33c123'

        def part(name):
            return layout.NodeDisk(node_uuid=node, pool='p', rbd_name=name,
                                   size=1)
        disk = part('node-' + node)
        disk.swap = part('s')
        self.assertEqual({1: 'p/node-' + node, 4: 'p/s'},
                         layout.target_luns(disk))
        disk.configdrive, disk.ephemeral = part('c'), part('e')
        self.assertEqual({1: 'p/node-' + node, 2: 'p/c', 3: 'p/e',
                          4: 'p/s'}, layout.target_luns(disk))
