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

"""Connections, retries and error mapping of rbd_utils."""

from unittest import mock

from bmi_driver import exception
from bmi_driver.storage.ceph import rbd_utils
from tests.unit.storage.ceph import fake_rbd
from tests.unit.storage.ceph.fake_rbd import rados
from tests.unit.storage.ceph.fake_rbd import rbd


class CephClientTestCase(fake_rbd.TestCase):

    def client(self, **kwargs):
        args = dict(conf_file='/etc/ceph/x.conf', user='bmi',
                    keyring='/etc/ceph/x.keyring', connect_timeout=5,
                    op_timeout=20)
        args.update(kwargs)
        client = rbd_utils.CephClient(**args)
        self.addCleanup(client.close)
        return client

    def test_connect_options(self):
        client = self.client()
        cluster = client.cluster
        self.assertEqual(('/etc/ceph/x.conf', 'bmi'),
                         (cluster.conffile, cluster.rados_id))
        self.assertEqual({'rados_mon_op_timeout': '20',
                          'rados_osd_op_timeout': '20',
                          'client_mount_timeout': '5',
                          'keyring': '/etc/ceph/x.keyring'}, cluster.conf)
        self.assertEqual('connected', cluster.state)
        self.assertNotIn('keyring', self.client(keyring=None).cluster.conf)

    def test_connect_timeout_passed(self):
        with mock.patch.object(rados.Rados, 'connect') as connect:
            self.client(connect_timeout=7)
        connect.assert_called_once_with(timeout=7)

    def test_connection_errors(self):
        for error, reason in [
                (rados.TimedOut, 'timed out (monitors unreachable?)'),
                (rados.InterruptedOrTimeoutError,
                 'timed out (monitors unreachable?)'),
                (rados.PermissionDeniedError, 'cephx authentication refused'),
                (rados.PermissionError, 'cephx authentication refused'),
                (rados.ObjectNotFound, 'configuration or keyring not found'),
                (rados.IOError, '[errno 5] injected failure of connect')]:
            self.cluster.inject('connect', error)
            e = self.assertRaises(exception.CephConnectionError, self.client)
            self.assertIn('Cannot connect to the Ceph cluster (conf '
                          '/etc/ceph/x.conf, user bmi): ' + reason, str(e))
            self.assertNotIn('x.keyring', str(e))
            # The half-made client is shut down.
            self.assertEqual('shutdown', self.cluster.clients[-1].state)

    def test_ioctx_opened_once_per_pool(self):
        client = self.client()
        self.assertIs(client.ioctx('bmi-images'), client.ioctx('bmi-images'))
        self.assertIsNot(client.ioctx('bmi-images'), client.ioctx('images'))
        self.assertEqual(2, self.cluster.count('open_ioctx'))
        e = self.assertRaises(exception.CephPoolNotFound, client.ioctx,
                              'nope')
        self.assertEqual('Ceph pool nope does not exist.', str(e))

    def test_close_despite_errors(self):
        client = self.client()
        ioctx = client.ioctx('bmi-images')
        with mock.patch.object(ioctx, 'close', side_effect=rados.IOError(
                'x', 5)), mock.patch.object(
                client.cluster, 'shutdown',
                side_effect=rados.Error('gone')) as shutdown:
            client.close()
        shutdown.assert_called_once_with()
        self.assertEqual({}, client._ioctxs)

    def test_bindings_missing(self):
        with mock.patch.object(rbd_utils, 'rados', None):
            e = self.assertRaises(exception.CephError, self.client)
        self.assertIn('python3-rados', str(e))


class ClientPoolTestCase(fake_rbd.TestCase):

    def test_client_reused(self):
        with self.clients.get() as first:
            pass
        with self.clients.get() as second:
            self.assertIs(first, second)
        self.assertEqual(1, self.cluster.count('connect'))

    def test_config_used(self):
        self.config(conf_file='/c.conf', user='bmi', keyring='/k',
                    connect_timeout=3, op_timeout=4, group='ceph')
        with self.clients.get() as client:
            self.assertEqual(('/c.conf', 'bmi'),
                             (client.conf_file, client.user))
            self.assertEqual('4', client.cluster.conf['rados_osd_op_timeout'])

    def test_concurrent_borrowers_get_their_own(self):
        with self.clients.get() as a, self.clients.get() as b:
            self.assertIsNot(a, b)
        with self.clients.get() as c, self.clients.get() as d:
            self.assertEqual({a, b}, {c, d})

    def test_at_most_max_idle_kept(self):
        pool = rbd_utils.ClientPool(max_idle=1)
        with pool.get() as a, pool.get() as b:
            pass
        self.assertEqual(1, len(self.cluster.connections))
        self.assertEqual(1, [a.cluster.state, b.cluster.state].count(
            'shutdown'))
        pool.clear()
        self.assertEqual([], self.cluster.connections)

    def test_idle_clients_kept_as_configured(self):
        self.config(idle_connections=3, group='ceph')
        pool = rbd_utils.ClientPool()
        with pool.get(), pool.get(), pool.get(), pool.get():
            pass
        self.assertEqual(3, len(self.cluster.connections))
        # The next burst of three connects nothing new.
        with pool.get(), pool.get(), pool.get():
            pass
        self.assertEqual(4, self.cluster.count('connect'))
        pool.clear()

    def test_client_dropped_after_transient_error(self):
        for error in (rados.TimedOut, rados.ConnectionShutdown,
                      rbd.ConnectionShutdown, rbd.Timeout):
            with self.clients.get() as client:
                pass

            def fail():
                with self.clients.get():
                    raise error('lost', 110)
            self.assertRaises(error, fail)
            self.assertEqual('shutdown', client.cluster.state)

    def test_client_kept_after_other_errors(self):
        def fail():
            with self.clients.get() as client:
                self.client = client
                raise rbd.ImageNotFound('x', 2)
        self.assertRaises(rbd.ImageNotFound, fail)
        with self.clients.get() as client:
            self.assertIs(self.client, client)

    def test_connection_error_not_pooled(self):
        self.cluster.reachable = False
        self.assertRaises(exception.CephConnectionError,
                          self.clients.get().__enter__)
        self.cluster.reachable = True
        with self.clients.get():
            pass
        self.assertEqual(1, len(self.cluster.connections))


class RetryTestCase(fake_rbd.TestCase):

    def setUp(self):
        super().setUp()
        self.attempts = 0

    def op(self, *errors):
        @rbd_utils.retry_transient
        def operation(arg, kw=None):
            self.attempts += 1
            if self.attempts <= len(errors):
                raise errors[self.attempts - 1]
            return arg, kw
        return operation

    def test_transient_errors_retried(self):
        op = self.op(rados.TimedOut('t', 110), rbd.Timeout('t', 110),
                     rbd.ConnectionShutdown('c', 108))
        self.assertEqual((1, 2), op(1, kw=2))
        self.assertEqual(4, self.attempts)

    def test_gives_up_with_a_clear_error(self):
        self.config(connect_retries=2, group='ceph')
        op = self.op(*[rados.ConnectionShutdown('lost', 108)] * 5)
        e = self.assertRaises(exception.CephError, op, 1)
        self.assertEqual(3, self.attempts)
        self.assertIn('operation failed after 3 attempts', str(e))

    def test_no_retries(self):
        self.config(connect_retries=0, group='ceph')
        op = self.op(rbd.Timeout('t', 110))
        self.assertRaises(exception.CephError, op, 1)
        self.assertEqual(1, self.attempts)

    def test_other_errors_not_retried(self):
        for error in (rbd.ImageNotFound('x', 2), exception.ImageBusy(
                image='x', reason='y'), ValueError('bug')):
            self.attempts = 0
            self.assertRaises(type(error), self.op(error), 1)
            self.assertEqual(1, self.attempts)

    def test_waits_grow_from_the_configured_interval(self):
        self.config(connect_retry_interval=0.5, connect_retries=3,
                    group='ceph')
        sleeps = []
        with mock.patch('tenacity.nap.time.sleep', sleeps.append):
            op = self.op(*[rbd.Timeout('t', 110)] * 3)
            self.assertEqual((1, None), op(1))
        self.assertEqual(3, len(sleeps))
        self.assertEqual(sorted(sleeps), sleeps)
        self.assertGreaterEqual(sleeps[0], 0.5)


class ErrorMappingTestCase(fake_rbd.TestCase):

    def test_map_rbd_error(self):
        for error, cls, text in [
                (rbd.ImageNotFound('x', 2), exception.ImageNotFound,
                 'Image img not found.'),
                (rbd.ImageBusy('watchers', 16), exception.ImageBusy,
                 'Image img is busy (open elsewhere): [errno 16] watchers'),
                (rbd.ImageHasSnapshots('s', 39), exception.ImageBusy,
                 'Image img is busy (open elsewhere): it still has '
                 'snapshots'),
                (rbd.PermissionError('p', 1), exception.CephError,
                 'Ceph operation failed: permission denied on img for user '
                 'bmi'),
                (rados.PermissionError('p', 1), exception.CephError,
                 'permission denied on img'),
                (rados.PermissionDeniedError('p', 13), exception.CephError,
                 'permission denied on img'),
                (rbd.IOError('disk', 5), exception.CephError,
                 'Ceph operation failed: img: [errno 5] disk')]:
            mapped = rbd_utils.map_rbd_error(error, 'img')
            self.assertIs(cls, type(mapped))
            self.assertIn(text, str(mapped))

    def test_ceph_errors(self):
        def raising(error):
            with rbd_utils.ceph_errors('img'):
                raise error
        self.assertRaises(exception.ImageNotFound, raising,
                          rbd.ImageNotFound('x', 2))
        self.assertRaises(exception.CephError, raising, rados.IOError('x', 5))
        # Ours and unrelated errors pass; transient ones are left to the
        # retry.
        for error in (exception.ImageInUse(image='i', count=1, clones='c'),
                      KeyError('k'), rbd.Timeout('t', 110),
                      rados.TimedOut('t', 110)):
            self.assertRaises(type(error), raising, error)
