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

"""tgtd's management protocol (tgt 1.0.85), against sockets of ours."""

import io
import json
import os
import socket
import struct
import threading
import time

import fixtures

from bmi_driver.storage.export import tgt_ipc
from tests import base as test_base
from tests.unit.storage.export import fakes


class WireTestCase(test_base.TestCase):

    def test_header_layout(self):
        # struct tgtadm_req of usr/tgtadm.h on x86_64: 120 bytes.
        data = tgt_ipc.pack('account', 'bind', tid=4, body=b'user=u\0')
        self.assertEqual(120 + 7, len(data))
        mode, op = struct.unpack_from('=ii', data)
        self.assertEqual((7, 3), (mode, op))
        self.assertEqual(b'iscsi', data[8:72].rstrip(b'\0'))
        length, tid = struct.unpack_from('=Ii', data, 72)
        self.assertEqual((127, 4), (length, tid))
        (lun,) = struct.unpack_from('=Q', data, 88)
        self.assertEqual(2 ** 64 - 1, lun)       # no --lun
        (force,) = struct.unpack_from('=I', data, 116)
        self.assertEqual(0, force)
        fields, body = tgt_ipc.unpack(data)
        self.assertEqual(('account', 'bind', 4, None, b'user=u\0'),
                         (fields['mode'], fields['op'], fields['tid'],
                          fields['lun'], body))

    def test_body_as_tgtadm_writes_it(self):
        self.assertEqual(b'', tgt_ipc.encode_body())
        self.assertEqual(b'path=p/i,bstype=rbd,bsopts=conf=/c;id=t\0',
                         tgt_ipc.encode_body([('path', 'p/i'),
                                              ('bstype', 'rbd'),
                                              ('bsopts', 'conf=/c;id=t')]))
        self.assertEqual(b'targetOps thin_provisioning=1,a=b,\0',
                         tgt_ipc.encode_body(
                             target_ops='thin_provisioning=1,a=b'))

    def test_comma_or_nul_refused(self):
        for value in ('a,b', 'a\0b'):
            e = self.assertRaises(ValueError, tgt_ipc.encode_body,
                                  [('password', value)])
            self.assertNotIn(value, str(e))

    def test_error_texts_are_tgtadm_s(self):
        self.assertEqual('this target already exists',
                         tgt_ipc.TgtdError(9).reason)
        self.assertEqual("can't find the account",
                         tgt_ipc.TgtdError(15).reason)
        self.assertEqual('error 99', tgt_ipc.TgtdError(99).reason)


class RequestTestCase(test_base.TestCase):

    def setUp(self):
        super().setUp()
        self.tgtd = fakes.FakeTgtd()
        self.path = tgt_ipc.socket_path(self.tgtd.serve(self), 0)

    def test_round_trip(self):
        self.assertEqual('', tgt_ipc.request(
            self.path, 'target', 'new', 5, tid=1,
            params=[('targetname', 'iqn.2026-11.x:y')]))
        out = tgt_ipc.request(self.path, 'target', 'show', 5)
        self.assertTrue(out.startswith('Target 1: iqn.2026-11.x:y\n'))
        e = self.assertRaises(tgt_ipc.TgtdError, tgt_ipc.request,
                              self.path, 'target', 'new', 5, tid=1,
                              params=[('targetname', 'iqn.2026-11.x:z')])
        self.assertEqual('this target already exists', e.reason)

    def test_closed_connection(self):
        self.tgtd.down = True
        e = self.assertRaises(tgt_ipc.Unreachable, tgt_ipc.request,
                              self.path, 'system', 'show', 5)
        self.assertIn('own uid and gid', str(e))

    def test_full_backlog_is_waited_out(self):
        # A unix socket with a timeout connects non-blocking: a full
        # listen backlog gives EAGAIN at once (50 parallel exports did),
        # which must be retried within the deadline, not reported.
        real = socket.socket.connect
        calls = []

        def connect(sock, address):
            calls.append(address)
            if len(calls) < 3:
                raise BlockingIOError(11, 'Resource temporarily unavailable')
            return real(sock, address)

        self.useFixture(fixtures.MonkeyPatch('socket.socket.connect',
                                             connect))
        self.assertEqual('', tgt_ipc.request(
            self.path, 'target', 'new', 5, tid=1,
            params=[('targetname', 'iqn.2026-11.x:y')]))
        self.assertEqual(3, len(calls))

    def test_full_backlog_past_the_deadline(self):
        def connect(sock, address):
            raise BlockingIOError(11, 'Resource temporarily unavailable')

        self.useFixture(fixtures.MonkeyPatch('socket.socket.connect',
                                             connect))
        e = self.assertRaises(tgt_ipc.Unreachable, tgt_ipc.request,
                              self.path, 'system', 'show', 0.2)
        self.assertIn('did not answer within', str(e))

    def test_missing_socket(self):
        self.assertRaises(tgt_ipc.Unreachable, tgt_ipc.request,
                          self.path + 'x', 'system', 'show', 5)

    def test_total_deadline(self):
        # A daemon that reads the request and answers a byte at a time,
        # slower than any per-read timeout would notice.
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, 's')
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)
        self.addCleanup(server.close)
        stop = threading.Event()

        def trickle():
            conn, _ = server.accept()
            with conn:
                conn.recv(4096)
                answer = tgt_ipc._RSP.pack(0, 8 + 1000)
                for byte in answer + b'x' * 1000:
                    if stop.wait(0.05):
                        return
                    try:
                        conn.send(bytes([byte]))
                    except OSError:
                        return

        thread = threading.Thread(target=trickle)
        thread.start()
        self.addCleanup(thread.join)
        self.addCleanup(stop.set)
        start = time.monotonic()
        e = self.assertRaises(tgt_ipc.Unreachable, tgt_ipc.request, path,
                              'target', 'show', 0.5)
        self.assertIn('within 0.5 seconds', str(e))
        self.assertLess(time.monotonic() - start, 2)

    def test_main_speaks_json(self):
        out = io.StringIO()
        tgt_ipc.main(io.StringIO(json.dumps({
            'path': self.path, 'timeout': 5, 'mode': 'account',
            'op': 'new', 'params': [['user', 'u'], ['password', 'pw']]})),
            out)
        self.assertEqual({'out': ''}, json.loads(out.getvalue()))
        self.assertEqual('pw', self.tgtd.accounts['u'])
        out = io.StringIO()
        tgt_ipc.main(io.StringIO(json.dumps({
            'path': self.path, 'timeout': 5, 'mode': 'account',
            'op': 'delete', 'params': [['user', 'v']]})), out)
        self.assertEqual({'error': 15}, json.loads(out.getvalue()))

    def test_main_asks_only_a_tgtd_socket(self):
        # Run as root for whoever the root helper lets in: no other
        # socket, no link to one, no relative or dotted path.
        tmp = self.useFixture(fixtures.TempDir()).path
        other = os.path.join(tmp, 'other.sock')
        sock = socket.socket(socket.AF_UNIX)
        self.addCleanup(sock.close)
        sock.bind(other)
        link = os.path.join(tmp, 'socket.7')
        os.symlink(other, link)
        plain = os.path.join(tmp, 'socket.8')
        open(plain, 'w').close()
        for path in (other, link, plain, 'socket.3',
                     os.path.join(tmp, '..', os.path.basename(tmp),
                                  'socket.7')):
            out = io.StringIO()
            tgt_ipc.main(io.StringIO(json.dumps({
                'path': path, 'timeout': 5, 'mode': 'target',
                'op': 'show'})), out)
            self.assertIn('unreachable', json.loads(out.getvalue()), path)
