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

"""Locks shared by processes, through tooz: the one place that takes them.

The backend is ``[coordination] backend_url``: the default ``file://``
backend serializes the threads and processes of one host (enough when one
conductor drives its local tgtd); a shared backend (etcd3, redis) serializes
several hosts.  One tooz coordinator per backend URL and process is started
on first use and reused.

Usage::

    from bmi_driver.common import locks

    with locks.lock('export-<uuid>'):
        ...
"""

import contextlib
import os
import socket
import threading
import time
import uuid

from oslo_log import log
import tenacity
from tooz import coordination

from bmi_driver.conf import CONF
from bmi_driver import exception

LOG = log.getLogger(__name__)

_PREFIX = 'bmi-'
_coordinators = {}
_coordinators_lock = threading.Lock()


class _LocalLocks:
    """One ``threading.Lock`` per lock name in this process, while used.

    The threads of one process queue here, before the backend's lock: a
    waiter wakes the moment the holder releases. tooz's etcd3gw lock
    polls instead (tooz 9.1.0: tenacity's ``wait_exponential(max=1)``,
    about a second between tries and a new lease at each), so that a
    thread that met a held lock waited a second or more however short
    the holder's work. Only one thread per process then asks the
    backend, which still serializes the processes and hosts.
    """

    def __init__(self):
        self._guard = threading.Lock()
        self._locks = {}

    @contextlib.contextmanager
    def hold(self, name, timeout):
        """Hold ``name``'s local lock; yields the seconds left of timeout.

        :raises LockTimeout: not acquired within ``timeout`` seconds.
        """
        with self._guard:
            entry = self._locks.setdefault(name, [threading.Lock(), 0])
            entry[1] += 1
        try:
            t0 = time.monotonic()
            if not entry[0].acquire(timeout=max(timeout, 0)):
                raise exception.LockTimeout(name=name, timeout=timeout)
            try:
                yield max(timeout - (time.monotonic() - t0), 0)
            finally:
                entry[0].release()
        finally:
            with self._guard:
                entry[1] -= 1
                if not entry[1]:
                    # No holder, no waiter: forget it (one name per node).
                    del self._locks[name]

    def __len__(self):
        with self._guard:
            return len(self._locks)


_local = _LocalLocks()


def _file_backend_dir(url):
    if url.startswith('file://'):
        return url[len('file://'):].split('?', 1)[0]
    return None


def _coordinator():
    """The started tooz coordinator of this process for the backend URL."""
    url = CONF.coordination.backend_url
    key = (url, os.getpid())
    with _coordinators_lock:
        coord = _coordinators.get(key)
        if coord is not None:
            return coord
        path = _file_backend_dir(url)
        if path:
            os.makedirs(path, mode=0o700, exist_ok=True)
        member = '%s%s-%d-%s' % (_PREFIX, socket.gethostname(), os.getpid(),
                                 uuid.uuid4().hex[:8])
        try:
            coord = coordination.get_coordinator(url, member.encode())
            # The heartbeat keeps locks alive on backends with sessions
            # (etcd3, redis); the file backend has none.
            coord.start(start_heart=not path)
        except Exception as e:
            # Whatever the driver raises: ToozError, RuntimeError (stevedore
            # finds no driver for the scheme), and the client's own errors,
            # which start() does not translate (tooz 9.1.0's etcd3gw
            # driver grants its membership lease in _start(), outside
            # _translate_failures: an unreachable etcd raised etcd3gw's
            # ConnectionFailedError, which no caller catches).
            # The URL may embed credentials: name only the driver.
            raise exception.CoordinationError(
                reason='cannot start the %(driver)s backend: %(err)s'
                % {'driver': url.split(':', 1)[0],
                   'err': e.__class__.__name__})
        _coordinators[key] = coord
        return coord


@contextlib.contextmanager
def lock(name, timeout=None):
    """Hold the lock ``name`` for the ``with`` block.

    :param name: what is locked, e.g. ``'export-<uuid>'``.
    :param timeout: seconds to wait; default ``[coordination]
        lock_timeout``.
    :raises LockTimeout: when the lock was not acquired in time.
    :raises CoordinationError: when the backend fails.
    """
    if timeout is None:
        timeout = CONF.coordination.lock_timeout
    with _local.hold(name, timeout) as left:
        with _backend_lock(name, timeout, left):
            yield


@contextlib.contextmanager
def local_lock(name, timeout=None):
    """Hold ``name`` among the threads of this process only.

    For what a shared backend need not serialize: the caller copes with
    other processes itself (tgt's tid allocation retries a tid another
    allocator took), and a backend lock would cost each holder the
    backend's round trips (etcd3gw: a lease, a transaction, a release)
    while the others queue behind it.

    :raises LockTimeout: when the lock was not acquired in time.
    """
    if timeout is None:
        timeout = CONF.coordination.lock_timeout
    with _local.hold(name, timeout):
        yield


@contextlib.contextmanager
def _backend_lock(name, timeout, left):
    tooz_lock = _coordinator().get_lock((_PREFIX + name).encode())
    try:
        acquired = tooz_lock.acquire(blocking=left)
    except tenacity.RetryError:
        # tooz 9.1.0's etcd3gw lock, out of time (its retry's own error).
        acquired = False
    except coordination.ToozError as e:
        raise exception.CoordinationError(
            reason='cannot acquire lock %(name)s: %(err)s'
            % {'name': name, 'err': e.__class__.__name__})
    if not acquired:
        raise exception.LockTimeout(name=name, timeout=timeout)
    LOG.debug('Acquired lock %(name)s', {'name': name})
    try:
        yield
    finally:
        try:
            released = tooz_lock.release()
        except coordination.ToozError as e:
            # Sessions expire on their own: the lock is not held forever.
            LOG.warning('Could not release lock %(name)s: %(err)s',
                        {'name': name, 'err': e})
        else:
            if released is False:
                # tooz 9.1.0's etcd3gw lock answers False when its key is
                # no longer this holder's: its lease expired (the backend
                # out of the heartbeat's reach longer than the TTL), and
                # another holder may have worked beside this one.
                LOG.warning('Lock %(name)s was no longer held when '
                            'released: its lease expired while held',
                            {'name': name})
            else:
                LOG.debug('Released lock %(name)s', {'name': name})


def reset():
    """Stop every coordinator of this process (tests, shutdown)."""
    with _coordinators_lock:
        for coord in _coordinators.values():
            try:
                coord.stop()
            except coordination.ToozError:
                pass
        _coordinators.clear()
