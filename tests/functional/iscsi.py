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

"""Real iSCSI initiators for functional tests (libiscsi-bin, qemu-img).

Every helper logs in like a node would: to ``portal`` (``'host:port'``),
target ``iqn``, with optional CHAP credentials and initiator name, and
gives up after ``timeout`` seconds.  A refused login raises
:class:`LoginRefused`; ``login_refused()`` turns that into a bool.

    from tests.functional import iscsi

    iscsi.lun_size(exp.portal, exp.target_iqn, 1, exp.chap_username,
                   exp.chap_secret, initiator_iqn)          # -> bytes
    path = iscsi.read_lun(exp.portal, exp.target_iqn, 1, ..., dest=tmpdir)
    iscsi.login_refused(exp.portal, exp.target_iqn)          # -> True

The CHAP secret goes on the tools' command lines (in the URL for libiscsi,
as a qemu secret object for qemu-img): fine for tests only.
"""

import hashlib
import os
import re
import socket
import struct
import subprocess
import uuid

DEFAULT_INITIATOR = 'iqn.2026-11.org.massopen.bmi.test:initiator'
TIMEOUT = 60


class LoginRefused(Exception):
    """The target refused the login (authentication, ACL or no target)."""


def url(portal, iqn, lun=1, chap_user=None, chap_secret=None):
    """``iscsi://[user%secret@]host:port/iqn/lun`` (libiscsi's form)."""
    creds = ''
    if chap_user:
        creds = '%s%%%s@' % (chap_user, chap_secret or '')
    return 'iscsi://%s%s/%s/%d' % (creds, portal, iqn, lun)


def _run(argv, timeout):
    proc = subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip()
        # The target answered the login with a failure status (not a
        # connection failure, which is an error of the test setup).
        if 'Failed to log in to target. Status:' in err:
            raise LoginRefused(err.splitlines()[-1])
        raise RuntimeError('%s failed (%d): %s'
                           % (argv[0], proc.returncode, err))
    return proc.stdout


def inquiry(portal, iqn, lun=1, chap_user=None, chap_secret=None,
            initiator_iqn=DEFAULT_INITIATOR, timeout=TIMEOUT):
    """SCSI INQUIRY of the LUN (``iscsi-inq``): its text output."""
    return _run(['iscsi-inq', '-i', initiator_iqn,
                 url(portal, iqn, lun, chap_user, chap_secret)], timeout)


def lun_size(portal, iqn, lun=1, chap_user=None, chap_secret=None,
             initiator_iqn=DEFAULT_INITIATOR, timeout=TIMEOUT):
    """Size in bytes of the LUN (``iscsi-readcapacity16``)."""
    out = _run(['iscsi-readcapacity16', '-i', initiator_iqn,
                url(portal, iqn, lun, chap_user, chap_secret)], timeout)
    match = re.search(r'^Total size:\s*(\d+)', out, re.M)
    if not match:
        raise RuntimeError('iscsi-readcapacity16 said: %s' % out)
    return int(match.group(1))


def read_lun(portal, iqn, lun=1, chap_user=None, chap_secret=None,
             initiator_iqn=DEFAULT_INITIATOR, dest=None, timeout=300):
    """Copy the whole LUN to a raw file with ``qemu-img convert``.

    :param dest: a directory (a new file is made in it) or a file path;
        default: the current directory.
    :returns: the path of the raw copy.
    """
    if dest is None or os.path.isdir(dest):
        dest = os.path.join(dest or '.', 'lun-%s.raw' % uuid.uuid4().hex[:8])
    host, _sep, port = portal.rpartition(':')
    opts = ['driver=iscsi', 'transport=tcp', 'portal=%s:%s' % (host, port),
            'target=%s' % iqn, 'lun=%d' % lun,
            'initiator-name=%s' % initiator_iqn]
    argv = ['qemu-img', 'convert', '-O', 'raw']
    if chap_user:
        argv += ['--object', 'secret,id=chap0,data=%s' % chap_secret]
        opts += ['user=%s' % chap_user, 'password-secret=chap0']
    argv += ['--image-opts', ','.join(opts), dest]
    _run(argv, timeout)
    return dest


def login_refused(portal, iqn, lun=1, chap_user=None, chap_secret=None,
                  initiator_iqn=DEFAULT_INITIATOR, timeout=TIMEOUT):
    """True when the target refuses this login, False when it accepts."""
    try:
        inquiry(portal, iqn, lun, chap_user, chap_secret, initiator_iqn,
                timeout)
    except LoginRefused:
        return True
    return False


class Session:
    """One iSCSI login held open, made PDU by PDU (RFC 7143, section 11.12).

    Written for what no initiator tool sends: any ``InitiatorAlias`` (a
    tenant's node controls its own iSCSI stack, so its login text is
    arbitrary; tgt prints it in ``show``).  CHAP (MD5) when credentials
    are given; no data is read.  ``close()`` drops the connection, which
    ends the session in tgtd.
    """

    def __init__(self, portal, iqn, chap_user=None, chap_secret=None,
                 initiator_iqn=DEFAULT_INITIATOR, alias='none',
                 timeout=TIMEOUT):
        host, port = portal.rsplit(':', 1)
        self.sock = socket.create_connection((host.strip('[]'), int(port)),
                                             timeout=timeout)
        try:
            self._login(iqn, chap_user, chap_secret, initiator_iqn, alias)
        except BaseException:
            self.sock.close()
            raise

    def _exchange(self, csg, nsg, transit, keys):
        data = b''.join(b'%s=%s\0' % (k.encode(), v.encode())
                        for k, v in keys)
        bhs = bytearray(48)
        bhs[0] = 0x43                               # immediate, Login
        bhs[1] = (0x80 if transit else 0) | csg << 2 | nsg
        bhs[5:8] = len(data).to_bytes(3, 'big')
        bhs[8:14] = bytes([0x80, 0, 0, 0x0b, 0x1d, 0x05])    # ISID
        struct.pack_into('>I', bhs, 16, 1)                   # ITT
        self.sock.sendall(bytes(bhs) + data + b'\0' * (-len(data) % 4))
        head = self._recv(48)
        length = int.from_bytes(head[5:8], 'big')
        body = self._recv(length + (-length % 4))[:length]
        if head[36] != 0:
            raise LoginRefused('login status %d/%d' % (head[36], head[37]))
        return dict(kv.split('=', 1) for kv in
                    body.decode(errors='replace').split('\0') if '=' in kv)

    def _recv(self, count):
        buf = b''
        while len(buf) < count:
            chunk = self.sock.recv(count - len(buf))
            if not chunk:
                raise LoginRefused('connection closed during the login')
            buf += chunk
        return buf

    def _login(self, iqn, chap_user, chap_secret, initiator_iqn, alias):
        first = [('InitiatorName', initiator_iqn),
                 ('InitiatorAlias', alias), ('TargetName', iqn),
                 ('SessionType', 'Normal')]
        if chap_user:
            self._exchange(0, 1, False, first + [('AuthMethod', 'CHAP')])
            got = self._exchange(0, 1, False, [('CHAP_A', '5')])
            challenge = bytes.fromhex(got['CHAP_C'][2:])
            response = hashlib.md5(bytes([int(got['CHAP_I'])])
                                   + chap_secret.encode()
                                   + challenge).hexdigest()
            self._exchange(0, 1, True, [('CHAP_N', chap_user),
                                        ('CHAP_R', '0x' + response)])
            first = []
        self._exchange(1, 3, True, first + [('HeaderDigest', 'None'),
                                            ('DataDigest', 'None')])

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
