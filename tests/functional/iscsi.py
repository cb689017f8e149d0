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

import os
import re
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
