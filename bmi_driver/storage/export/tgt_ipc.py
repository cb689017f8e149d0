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

"""tgtd's management socket, spoken directly (what ``tgtadm`` does).

Why not ``tgtadm``: it takes a CHAP secret only as ``--password <secret>``
on its command line (tgt 1.0.85, usr/tgtadm.c: no file, no stdin), where
every local user reads it in ``/proc/<pid>/cmdline``.  A request sent on
the socket is seen by tgtd alone.

The protocol, checked against tgt 1.0.85 (usr/tgtadm.h, usr/tgtadm.c,
usr/mgmt.c, as Debian 12 ships it): connect to the unix socket
``/var/run/tgtd/socket.<control port>``; send ``struct tgtadm_req`` (120
bytes on x86_64, ``len`` = header + body) and a body of ``key=value``
pairs joined by ``,`` and ended by a NUL; read ``struct tgtadm_rsp``
(``err``, ``len``) and ``len - 8`` bytes of text (``show``).  tgtd accepts
only peers of its own uid and gid (SO_PEERCRED) and closes the others.

``python -I -m bmi_driver.storage.export.tgt_ipc`` reads one request as JSON
on stdin and answers JSON on stdout: the same client run through a root
helper when the conductor does not run as tgtd's user, the secret still on
no command line.
"""

import json
import os
import re
import socket
import stat
import struct
import sys
import time

MODES = {'system': 0, 'target': 1, 'logicalunit': 2, 'portal': 3, 'lld': 4,
         'session': 5, 'connection': 6, 'account': 7}
OPS = {'new': 0, 'delete': 1, 'show': 2, 'bind': 3, 'unbind': 4,
       'update': 5, 'stats': 6, 'start': 7, 'stop': 8}

# enum tgtadm_errno, with tgtadm's own texts (usr/tgtadm.c
# tgtadm_strerror): callers match on them as they did on tgtadm's stderr.
ERRORS = ('success', 'unknown error', 'out of memory',
          "can't find the driver", "can't find the target",
          "can't find the logical unit", "can't find the session",
          "can't find the connection", "can't find the binding",
          'this target already exists',
          'this logical unit number already exists',
          'this binding already exists',
          'this access control rule already exists',
          'this access control rule does not exist',
          'this account already exists', "can't find the account",
          'too many accounts', 'invalid request',
          'this target already has an outgoing account',
          'this target is still active', 'this logical unit is still active',
          'this driver is busy', "this operation isn't supported",
          'unknown parameter', 'this device has Prevent Removal set')

# struct tgtadm_req: mode, op, lld[64], len, tid, sid, lun, cid, host_no,
# device_type, ac_dir, pack, force.  No padding on x86_64 (sid at 80).
_REQ = struct.Struct('=ii64sIiQQIIIIII')
_RSP = struct.Struct('=II')
assert _REQ.size == 120 and _RSP.size == 8

NO_LUN = 2 ** 64 - 1        # tgtadm's "no --lun"
NO_TID = -1                 # tgtadm's "no --tid" (and GLOBAL_TID)
# Larger answers are refused (a `show` of thousands of targets is far less).
MAX_RESPONSE = 64 * 1024 * 1024
DEFAULT_SOCKET = '/var/run/tgtd/socket'


class Unreachable(Exception):
    """tgtd cannot be asked (no socket, refused, closed, timed out)."""


class TgtdError(Exception):
    """tgtd answered an error; ``reason`` is tgtadm's text for it."""

    def __init__(self, code):
        self.code = code
        self.reason = (ERRORS[code] if 0 <= code < len(ERRORS)
                       else 'error %d' % code)
        super().__init__(self.reason)


def socket_path(base, control_port):
    return '%s.%d' % (base or DEFAULT_SOCKET, control_port)


def check_socket_path(path):
    """Refuse a path that is not a tgtd socket (what :func:`main` asks).

    Run as root by the root helper, for a caller that may be anyone the
    helper lets in: it connects only to ``<absolute dir>/socket.<port>``
    that is a socket itself, not a link to another one.

    :raises: Unreachable
    """
    if (not os.path.isabs(path) or os.path.normpath(path) != path
            or not re.fullmatch(r'socket\.\d+', os.path.basename(path))):
        raise Unreachable('%r is not a tgtd socket path' % path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise Unreachable('no tgtd socket %s' % path)
    if not stat.S_ISSOCK(mode):
        raise Unreachable('%s is not a socket' % path)


def encode_body(params=(), target_ops=None):
    """The request body: ``k=v`` pairs, then tgtadm's ``targetOps``.

    :raises: ValueError for a value that would change the request's
        meaning (a ``,`` or a NUL).
    """
    parts = []
    for key, value in params:
        value = str(value)
        if ',' in value or '\0' in value or '\0' in key:
            raise ValueError('tgtd request parameter %s: "," and NUL are '
                             'not allowed in its value' % key)
        parts.append('%s=%s' % (key, value))
    text = ','.join(parts)
    if target_ops is not None:
        if '\0' in target_ops:
            raise ValueError('NUL in tgtd LUN parameters')
        # As tgtadm writes --params: the trailing ',' ends the last one.
        text += '%stargetOps %s,' % (',' if text else '', target_ops)
    return (text + '\0').encode() if text else b''


def pack(mode, op, lld='iscsi', tid=NO_TID, sid=0, lun=NO_LUN, cid=0,
         host_no=0, force=False, body=b''):
    header = _REQ.pack(MODES[mode], OPS[op], lld.encode(),
                       _REQ.size + len(body), tid, sid, lun, cid, host_no,
                       0, 0, 0, 1 if force else 0)
    return header + body


def unpack(data):
    """Decode a request (for tests and fakes): (fields dict, body)."""
    (mode, op, lld, length, tid, sid, lun, cid, host_no, _dev, _ac, _pk,
     force) = _REQ.unpack_from(data)
    names = {v: k for k, v in MODES.items()}
    ops = {v: k for k, v in OPS.items()}
    return ({'mode': names[mode], 'op': ops[op],
             'lld': lld.rstrip(b'\0').decode(), 'len': length, 'tid': tid,
             'sid': sid, 'lun': None if lun == NO_LUN else lun, 'cid': cid,
             'host_no': host_no, 'force': bool(force)},
            data[_REQ.size:length])


def _recv_exactly(sock, count, deadline):
    data = bytearray()
    while len(data) < count:
        _set_timeout(sock, deadline)
        chunk = sock.recv(min(count - len(data), 1 << 20))
        if not chunk:
            raise Unreachable('tgtd closed the connection (it accepts only '
                              'requests from its own uid and gid)')
        data += chunk
    return bytes(data)


def _set_timeout(sock, deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout()
    sock.settimeout(left)


def _connect(path, deadline):
    """A socket connected to ``path``, retried until ``deadline``.

    A unix socket with a timeout is non-blocking: when tgtd's listen
    backlog is full (measured: 50 exports in parallel against tgt 1.0.85)
    connect() fails at once with EAGAIN, where tgtadm's blocking connect
    waits. Wait here too, in short steps, a fresh socket each time.
    """
    pause = 0.005
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            _set_timeout(sock, deadline)
            sock.connect(path)
            return sock
        except BlockingIOError:
            sock.close()
            if time.monotonic() + pause > deadline:
                raise socket.timeout()
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
        except BaseException:
            sock.close()
            raise


def request(path, mode, op, timeout, params=(), target_ops=None, **fields):
    """Send one request to the tgtd at ``path``; return its text answer.

    ``timeout`` bounds the whole exchange.

    :raises: Unreachable, TgtdError, ValueError (bad parameter).
    """
    data = pack(mode, op, body=encode_body(params, target_ops), **fields)
    deadline = time.monotonic() + timeout
    sock = None
    try:
        try:
            sock = _connect(path, deadline)
            _set_timeout(sock, deadline)
            sock.sendall(data)
            err, length = _RSP.unpack(_recv_exactly(sock, _RSP.size,
                                                    deadline))
            if err:
                raise TgtdError(err)
            if length < _RSP.size or length - _RSP.size > MAX_RESPONSE:
                raise Unreachable('tgtd answered a malformed length %d'
                                  % length)
            body = _recv_exactly(sock, length - _RSP.size, deadline)
        except socket.timeout:
            raise Unreachable('tgtd did not answer within %s seconds'
                              % timeout)
        except FileNotFoundError:
            raise Unreachable('no tgtd socket %s' % path)
        except OSError as e:
            raise Unreachable('%s: %s' % (path, e.strerror or e))
    finally:
        if sock is not None:
            sock.close()
    return body.split(b'\0', 1)[0].decode('utf-8', 'replace')


def main(stdin=None, stdout=None):
    """One request as JSON on stdin, the answer as JSON on stdout.

    In: ``{"path", "timeout", "mode", "op", "params": [[k, v]...],
    "target_ops", "fields": {...}}``.  Out: ``{"out": text}``, ``{"error":
    code}`` (tgtd's) or ``{"unreachable": reason}``.  Exit status 0 for
    all three: the caller reads the answer.
    """
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    req = json.load(stdin)
    try:
        check_socket_path(req['path'])
        out = {'out': request(req['path'], req['mode'], req['op'],
                              req['timeout'],
                              params=[tuple(p) for p in req.get('params',
                                                                [])],
                              target_ops=req.get('target_ops'),
                              **req.get('fields', {}))}
    except TgtdError as e:
        out = {'error': e.code}
    except Unreachable as e:
        out = {'unreachable': str(e)}
    json.dump(out, stdout)
    return 0


if __name__ == '__main__':  # pragma: no cover - run by the root helper
    sys.exit(main())
