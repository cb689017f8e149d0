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

"""Formatting a node's scratch disks (ephemeral, swap) without a device.

The conductor never maps a kernel block device (``rbd map`` needs the
kernel module, root and a device that could be the wrong one): it runs
``mkfs``/``mkswap`` on a *sparse file* of the disk's size in a private
temporary directory, then copies only the file's data extents
(``SEEK_DATA``/``SEEK_HOLE``) into the new, blank RBD image, whose
unwritten objects read as zeros.  What is formatted is always a file this
module has just created, never something that exists already.

ext2/3/4 use ``lazy_itable_init`` (the guest's kernel initialises the
inode tables later, as for any fresh ext4) and no discard, so a 1 GiB
ext4 writes about 1 MiB of metadata; ``mkswap`` writes one page.
"""

import contextlib
import os
import shutil
import tempfile
import time

from oslo_concurrency import processutils
from oslo_log import log
from oslo_utils import units

from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.storage import layout

LOG = log.getLogger(__name__)

# File systems the ephemeral disk may get: the ones Nova 34.0.0 lists for
# [DEFAULT] default_ephemeral_format (nova/conf/compute.py) that Debian 12
# formats (ntfs needs ntfs-3g, absent here), plus vfat.
FORMATS = ('ext2', 'ext3', 'ext4', 'xfs', 'vfat')

_CHUNK = 4 * units.Mi
_PREFIX = 'bmi-scratch-'
# Formatting a sparse file takes seconds (lazy inode tables, no discard):
# a scratch directory an hour old is one a killed conductor left.
_STALE_S = 3600


def _mkfs_argv(fmt, label, path):
    if fmt == layout.SWAP:
        return ['mkswap', '-L', label, path]
    if fmt in ('ext2', 'ext3', 'ext4'):
        opts = 'lazy_itable_init=1,nodiscard'
        if fmt != 'ext2':
            opts += ',lazy_journal_init=1'
        return ['mkfs.' + fmt, '-F', '-q', '-L', label, '-E', opts, path]
    if fmt == 'xfs':
        # -K: no discard of a file that is all holes anyway.
        return ['mkfs.xfs', '-f', '-q', '-K', '-L', label, path]
    if fmt == 'vfat':
        return ['mkfs.vfat', '-n', label.upper()[:11], path]
    raise exception.InvalidInput(
        reason='unknown scratch disk format %r (known: %s, swap)'
        % (fmt, ', '.join(FORMATS)))


def _tmp_dir():
    # The plugin's own state directory when it exists: /tmp may be a
    # small tmpfs, and a sparse file there costs only its metadata anyway.
    path = CONF.bmi.state_path
    return path if path and os.path.isdir(path) else None


def _drop_stale(directory):
    """Remove the scratch directories a killed formatting left behind.

    Only this process's user's, and only directories (rmtree does not
    follow links inside them); best effort.
    """
    directory = directory or tempfile.gettempdir()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        if not entry.name.startswith(_PREFIX):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if (not entry.is_dir(follow_symlinks=False)
                    or st.st_uid != os.geteuid()
                    or now - st.st_mtime < _STALE_S):
                continue
            shutil.rmtree(entry.path)
        except OSError as e:
            LOG.warning('Could not remove the leftover scratch directory '
                        '%(path)s: %(err)s', {'path': entry.path, 'err': e})
            continue
        LOG.warning('Removed the leftover scratch directory %s (a '
                    'formatting that was interrupted)', entry.path)


@contextlib.contextmanager
def formatted_file(size, fmt, label):
    """A sparse file of ``size`` bytes holding a fresh ``fmt`` (or swap).

    Its private directory goes when done; one that a killed conductor
    left goes at a later formatting (:func:`_drop_stale`).

    :raises: InvalidInput for an unknown format.
    :raises: ScratchFormatError when the formatting tool fails.
    """
    argv = _mkfs_argv(fmt, label, '')
    _drop_stale(_tmp_dir())
    with tempfile.TemporaryDirectory(prefix=_PREFIX,
                                     dir=_tmp_dir()) as tmp:
        path = os.path.join(tmp, 'disk')
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
        argv[-1] = path
        try:
            processutils.execute(*argv)
        except (processutils.ProcessExecutionError, OSError) as e:
            raise exception.ScratchFormatError(
                fmt=fmt, reason=getattr(e, 'stderr', None) or str(e))
        yield path


def data_extents(fd, size):
    """(offset, length) of the data (not holes) of the open file ``fd``."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError:
            # ENXIO: no data after offset.
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end - start
        offset = end


def copy_extents(path, image):
    """Write the data extents of file ``path`` into the RBD ``image``.

    :returns: the number of bytes written.
    """
    written = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        for start, length in data_extents(fd, size):
            pos = start
            while pos < start + length:
                chunk = os.pread(fd, min(_CHUNK, start + length - pos), pos)
                if not chunk:
                    break
                image.write(chunk, pos)
                pos += len(chunk)
                written += len(chunk)
    finally:
        os.close(fd)
    image.flush()
    return written
