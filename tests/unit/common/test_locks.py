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

"""The tooz locks, on the default file backend (a temporary directory)."""

import contextlib
import os
import threading
import time

import fixtures
import tenacity

from bmi_driver.common import locks
from bmi_driver import exception
from tests import base


class LocksTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.addCleanup(locks.reset)

    def test_default_backend_under_state_path(self):
        with locks.lock('a'):
            pass
        self.assertTrue(os.path.isdir(os.path.join(self.state_dir,
                                                   'locks')))

    def test_serializes_threads(self):
        inside = []
        overlaps = []

        def work():
            with locks.lock('shared'):
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(1)
                time.sleep(0.01)
                inside.pop()

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual([], overlaps)

    def test_other_names_do_not_wait(self):
        with locks.lock('one'):
            with locks.lock('two', timeout=1):
                pass

    def _hold(self, name):
        """Hold lock ``name`` in another thread until the test ends."""
        held = threading.Event()
        done = threading.Event()

        def holder():
            with locks.lock(name):
                held.set()
                done.wait(10)

        t = threading.Thread(target=holder)
        t.start()
        self.addCleanup(t.join)
        self.addCleanup(done.set)
        held.wait(10)

    def test_timeout(self):
        self._hold('busy')
        e = self.assertRaises(exception.LockTimeout, locks.lock('busy',
                                                                0.1)
                              .__enter__)
        self.assertIn('busy', str(e))

    def test_released_on_error(self):
        def fail():
            with locks.lock('x'):
                raise ValueError()

        self.assertRaises(ValueError, fail)
        with locks.lock('x', timeout=0.1):
            pass

    def test_bad_backend(self):
        self.config(backend_url='nosuchdriver://user:pw@host',
                    group='coordination')
        e = self.assertRaises(exception.CoordinationError,
                              locks.lock('x').__enter__)
        self.assertNotIn('pw', str(e))

    def test_backend_unreachable_at_start_is_a_coordination_error(self):
        # tooz 9.1.0's etcd3gw driver asks etcd for its membership lease in
        # start(), whose errors tooz does not translate: etcd3gw's own
        # ConnectionFailedError (an Exception) came out of lock().
        from etcd3gw import exceptions as etcd3gw_exc

        class Coord:
            def start(self, start_heart=False):
                raise etcd3gw_exc.ConnectionFailedError('refused')

        self.config(backend_url='etcd3+http://user:pw@host:2379',
                    group='coordination')
        self.useFixture(fixtures.MockPatch(
            'tooz.coordination.get_coordinator', return_value=Coord()))
        e = self.assertRaises(exception.CoordinationError,
                              locks.lock('x').__enter__)
        self.assertIn('ConnectionFailedError', str(e))
        self.assertNotIn('pw', str(e))
        self.assertEqual({}, locks._coordinators)
        self.assertEqual(0, len(locks._local))

    def test_threads_of_a_process_queue_locally(self):
        # One thread at a time reaches the backend's lock: the others wait
        # on a local lock, which wakes them at once (tooz's etcd3gw lock
        # polls about once a second).
        real = locks._backend_lock
        at_backend = []
        overlaps = []

        def backend_lock(name, timeout, left):
            at_backend.append(name)
            if len(at_backend) > 1:
                overlaps.append(name)
            try:
                with real(name, timeout, left):
                    yield
            finally:
                at_backend.pop()

        self.useFixture(fixtures.MockPatchObject(
            locks, '_backend_lock',
            contextlib.contextmanager(backend_lock)))

        def work():
            with locks.lock('queued'):
                time.sleep(0.005)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual([], overlaps)
        self.assertEqual(0, len(locks._local))

    def test_local_wait_counts_against_the_timeout(self):
        self._hold('slow')
        t0 = time.monotonic()
        self.assertRaises(exception.LockTimeout,
                          locks.lock('slow', 0.2).__enter__)
        self.assertLess(time.monotonic() - t0, 2)

    def test_backend_out_of_time_is_a_lock_timeout(self):
        # tooz 9.1.0's etcd3gw lock ends its retries with tenacity's error.
        class Lock:
            def acquire(self, blocking):
                raise tenacity.RetryError(None)

        class Coord:
            def get_lock(self, name):
                return Lock()

        self.useFixture(fixtures.MockPatchObject(
            locks, '_coordinator', return_value=Coord()))
        self.assertRaises(exception.LockTimeout,
                          locks.lock('x', 0.1).__enter__)
        self.assertEqual(0, len(locks._local))

    def test_a_lock_lost_while_held_is_told_at_release(self):
        # tooz 9.1.0's etcd3gw lock: release() answers False when the
        # lease expired meanwhile.
        class Lock:
            def acquire(self, blocking):
                return True

            def release(self):
                return False

        class Coord:
            def get_lock(self, name):
                return Lock()

        self.useFixture(fixtures.MockPatchObject(
            locks, '_coordinator', return_value=Coord()))
        logger = self.useFixture(fixtures.FakeLogger())
        with locks.lock('export-x', 0.1):
            pass
        self.assertIn('Lock export-x was no longer held when released',
                      logger.output)

    def test_local_lock_never_asks_the_backend(self):
        # A backend that cannot even start: the local lock does not care.
        self.config(backend_url='nosuchdriver://host', group='coordination')
        with locks.local_lock('tid', timeout=1):
            pass
        self.assertEqual(0, len(locks._local))

    def test_local_lock_serializes_threads_and_times_out(self):
        # The same queue as lock()'s: a name held by lock() waits too.
        self._hold('tid')
        self.assertRaises(exception.LockTimeout,
                          locks.local_lock('tid', 0.1).__enter__)
        with locks.local_lock('other', timeout=0.1):
            pass
