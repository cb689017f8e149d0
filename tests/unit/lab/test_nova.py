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

"""Unit tests of the Nova harness's client (tools/lab/nova.py).

The harness process (Nova's venv) is the outside world here: a small
script that speaks the same JSON lines stands in for it.
"""

import os
import re
import sys
import threading

import fixtures

from tests import base
from tools.lab import nova

_FAKE = """#!%s
import json, sys
print(json.dumps({'ok': True, 'ready': True}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    if req['op'] == 'spawn':
        print(json.dumps({'ok': True, 'instance': 'i-1',
                          'node': {'uuid': req['node']}}), flush=True)
    elif req['op'] == 'exit':
        sys.exit(3)
    else:
        print(json.dumps({'ok': False, 'type': 'NoResourceClass',
                          'error': 'no resource class'}), flush=True)
"""


class HarnessClientTest(base.TestCase):

    def setUp(self):
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.fake = os.path.join(tmp, 'fake-harness')
        with open(self.fake, 'w') as f:
            f.write(_FAKE % sys.executable)
        os.chmod(self.fake, 0o700)
        self.harness = nova.Harness('http://127.0.0.1:6385',
                                    'http://127.0.0.1:9293',
                                    log_file=os.path.join(tmp, 'h.log'),
                                    python=self.fake)
        self.harness.start()
        self.addCleanup(self.harness.stop)

    def test_answer_without_ok(self):
        answer = self.harness.call('spawn', node='n-1', image='img')
        self.assertEqual({'instance': 'i-1', 'node': {'uuid': 'n-1'}},
                         answer)

    def test_error_carries_its_type(self):
        err = self.assertRaises(nova.HarnessError, self.harness.call,
                                'schedule', node='n-1')
        self.assertEqual('NoResourceClass', err.type)
        self.assertIn('no resource class', str(err))

    def test_exit_is_an_error_naming_the_log(self):
        err = self.assertRaises(RuntimeError, self.harness.call, 'exit')
        self.assertIn('h.log', str(err))

    def test_stop_twice(self):
        self.harness.stop()
        self.harness.stop()
        self.assertRaises(RuntimeError, self.harness.call, 'ping')


class FlavorTest(base.TestCase):

    def test_flavor_asks_for_one_node_of_the_resource_class(self):
        specs = nova.flavor()['extra_specs']
        self.assertEqual('1', specs['resources:CUSTOM_BAREMETAL_BMI'])
        # The name Nova 34.0.0 derives from the node's resource class:
        # upper case, every character but a letter or digit an '_'.
        self.assertEqual(
            'CUSTOM_' + re.sub('[^A-Z0-9]', '_',
                               nova.RESOURCE_CLASS.upper()),
            [k.split(':')[1] for k, v in specs.items() if v == '1'][0])


class SpawnBesideTest(base.TestCase):
    """nova.spawn_beside: Nova's spawn in a thread, the watcher here."""

    def test_answer_end_and_watch(self):
        seen = threading.Event()

        def call():
            # The watcher runs while the call waits.
            self.assertTrue(seen.wait(5))
            return {'instance': 'i-1'}
        answer, returned, watched = nova.spawn_beside(
            call, lambda: seen.set() or 'active', 5)
        self.assertEqual({'instance': 'i-1'}, answer)
        self.assertEqual('active', watched)
        self.assertIsInstance(returned, float)

    def test_call_error_is_raised(self):
        def call():
            raise nova.HarnessError({'type': 'NoValidHost', 'error': 'x'})
        self.assertRaisesRegex(nova.HarnessError, 'NoValidHost',
                               nova.spawn_beside, call, lambda: None, 5)

    def test_watch_error_wins_and_the_thread_is_joined(self):
        def watch():
            raise RuntimeError('not ACTIVE')
        self.assertRaisesRegex(RuntimeError, 'not ACTIVE',
                               nova.spawn_beside, lambda: {}, watch, 5)

    def test_no_return_in_time(self):
        release = threading.Event()
        self.addCleanup(release.set)
        self.assertRaisesRegex(
            RuntimeError, 'did not return in 0s', nova.spawn_beside,
            lambda: release.wait(10), lambda: None, 0.05)


class TimelineTest(base.TestCase):
    """The harness's Timeline (stdlib only, Nova not needed for _wrap)."""

    def test_wrapped_calls_are_timed_and_restored(self):
        from tools.lab import nova_harness

        class Conn(object):
            def get_node(self, node_id):
                return {'id': node_id}

            def ports(self, node):
                yield from ('p1', 'p2')

        conn = Conn()
        timeline = nova_harness.Timeline(harness=None)
        timeline._wrap(conn, 'get_node', 'ironic.get_node')
        timeline._wrap(conn, 'ports', 'ironic.ports')
        self.assertEqual({'id': 'n1'}, conn.get_node('n1'))
        # A generator is read inside its span.
        self.assertEqual(['p1', 'p2'], conn.ports(node='n1'))
        timeline.__exit__(None, None, None)
        self.assertEqual(['ironic.get_node', 'ironic.ports'],
                         [s['what'] for s in timeline.spans])
        for span in timeline.spans:
            self.assertLessEqual(span['start'], span['end'])
        # The instance's attributes are gone again: the class's methods.
        self.assertNotIn('get_node', vars(conn))
        self.assertNotIn('ports', vars(conn))
