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

"""Benchmark deploys of Glance images (issue 13), against the lab's Glance.

Prints figures and ratios (no pass/fail): the first clone of a 1 GiB
qcow2 Glance image (its conversion) against ``qemu-img convert`` of the
same RBD snapshot alone (target <= 1.1x; medians of --first-rounds
alternating runs, the cache dropped in between; where the first deploy's
time goes: each qemu-img run and a profile of the library), and later
clones of it (the cache) against clones of a raw Glance image (target
1.0x); written to summary.json's ``glance``.

    .venv/bin/python tools/bench_glance.py [--rounds N] [--first-rounds N]

Needs the lab with Glance (`python -m tools.lab start netns ceph glance`);
reads .state/services.json.  The images are uploaded through Glance's API.
"""

import argparse
import contextlib
import cProfile
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from keystoneauth1 import noauth  # noqa: E402
from keystoneauth1 import session as ks_session  # noqa: E402
import openstack.connection  # noqa: E402
from oslo_concurrency import processutils  # noqa: E402
import rados  # noqa: E402
import rbd  # noqa: E402

from bmi_driver.common import locks  # noqa: E402
from bmi_driver.conf import CONF  # noqa: E402
from bmi_driver.storage.ceph import glance_images  # noqa: E402
from bmi_driver.storage.ceph import library as images  # noqa: E402
from bmi_driver.storage.ceph import node_disks  # noqa: E402
from bmi_driver.storage.ceph import rbd_utils  # noqa: E402
from bmi_driver.storage.ceph import transfer  # noqa: E402
from bmi_driver.storage import glance_client  # noqa: E402
from bmi_driver.storage import layout  # noqa: E402
from tools import benchlib  # noqa: E402
from tools.lab import state as lab_state  # noqa: E402

GiB = 1024 ** 3
MiB = 1024 ** 2


def fmt(samples):
    return '%8.1f ms median  %8.1f ms mean  (n=%d)' % (
        statistics.median(samples) * 1e3, statistics.mean(samples) * 1e3,
        len(samples))


class _Timed:
    """A proxy that records every method call of ``target`` (a timeline).

    rbd's classes are Cython types (their methods cannot be patched and
    cProfile does not see them): the library's modules are given a proxy
    of the ``rbd`` module instead, whose ``RBD()`` and ``Image(...)`` are
    these.
    """

    def __init__(self, target, name, record):
        self._target = target
        self._name = name
        self._record = record

    def __getattr__(self, attr):
        value = getattr(self._target, attr)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            with self._record('%s.%s' % (self._name, attr)):
                return value(*args, **kwargs)
        return call

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        with self._record('%s.close' % self._name):
            return self._target.__exit__(*exc)


class _TimedRbd:
    """The ``rbd`` module, with RBD() and Image() timed."""

    def __init__(self, record):
        self._record = record

    def __getattr__(self, attr):
        return getattr(rbd, attr)

    def RBD(self):
        return _Timed(rbd.RBD(), 'RBD', self._record)

    def Image(self, ioctx, name, *args, **kwargs):
        what = 'Image(%s%s)' % (name, '@' + kwargs['snapshot']
                                if kwargs.get('snapshot') else '')
        with self._record('open ' + what):
            image = rbd.Image(ioctx, name, *args, **kwargs)
        return _Timed(image, what, self._record)


class Breakdown:
    """Where the first deploy's time goes: a timeline of every step.

    Wraps ``processutils.execute`` (the library's one way to run
    qemu-img) to time each run by sub-command; gives the library's
    modules a timed ``rbd`` (every librbd call), times Glance's GET and
    the tooz lock; and profiles the call (cProfile) for the library's own
    Python.
    """

    def __init__(self):
        self.runs = []
        self.events = []
        self.profile = cProfile.Profile()

    @contextlib.contextmanager
    def record(self, what):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.events.append((what, t0 - self.t0,
                                time.perf_counter() - t0))

    def __call__(self, func, lib, *args):
        real = processutils.execute
        real_lock = locks.lock
        real_get = lib.glance.get_image
        timed = _TimedRbd(self.record)
        modules = (glance_images, node_disks, rbd_utils)

        def execute(*cmd, **kwargs):
            t0 = time.perf_counter()
            try:
                return real(*cmd, **kwargs)
            finally:
                name = ' '.join(c for c in cmd[:3] if not c.startswith('-'))
                self.runs.append((name, t0 - self.t0,
                                  time.perf_counter() - t0))

        @contextlib.contextmanager
        def lock(*a, **kw):
            with self.record('lock acquire'):
                cm = real_lock(*a, **kw)
                cm.__enter__()
            try:
                yield
            finally:
                with self.record('lock release'):
                    cm.__exit__(None, None, None)

        def get_image(*a, **kw):
            with self.record('Glance GET image'):
                return real_get(*a, **kw)
        processutils.execute = execute
        locks.lock = lock
        lib.glance.get_image = get_image
        for mod in modules:
            mod.rbd = timed
        try:
            self.t0 = time.perf_counter()
            result = self.profile.runcall(func, *args)
            self.total = time.perf_counter() - self.t0
            return result
        finally:
            processutils.execute = real
            locks.lock = real_lock
            del lib.glance.get_image
            for mod in modules:
                mod.rbd = rbd

    def report(self, alone):
        print('first deploy, where the time goes (%.1f ms), a timeline:'
              % (self.total * 1e3))
        busy = []
        rows = [('qemu-img ' + w, start, secs)
                for w, start, secs in self.runs] + self.events
        for what, start, secs in sorted(rows, key=lambda r: r[1]):
            print('  +%7.1f ms %8.1f ms  %s'
                  % (start * 1e3, secs * 1e3, what))
        for _what, start, secs in self.runs:
            busy.append((start, start + secs))
        # Runs that overlap (check beside convert) are not on the
        # critical path twice.
        covered, end = 0.0, 0.0
        for start, stop in sorted(busy):
            start = max(start, end)
            if stop > start:
                covered += stop - start
                end = stop
        rest = self.total - covered
        ceph = sum(secs for what, _s, secs in self.events
                   if not what.startswith(('lock', 'Glance')))
        print('  qemu-img not running: %.1f ms (librbd calls %.1f ms, '
              '%d of them); over convert alone: %+.1f ms'
              % (rest * 1e3, ceph * 1e3, len(self.events),
                 (self.total - alone) * 1e3))
        stats = pstats.Stats(self.profile)
        rows = []
        for (path, _line, func), (_cc, ncalls, _tt, cum, _callers) in (
                stats.stats.items()):
            if 'bmi_driver' in path:
                rows.append((cum, ncalls, '%s:%s' % (
                    os.path.basename(path), func)))
        print('  profile, cumulative (bmi_driver):')
        for cum, ncalls, name in sorted(rows, reverse=True)[:15]:
            print('    %8.1f ms %4d x %s' % (cum * 1e3, ncalls, name))


def glance_conn(url, project):
    sess = ks_session.Session(auth=noauth.NoAuth(), additional_headers={
        'X-Identity-Status': 'Confirmed', 'X-Project-Id': project,
        'X-User-Id': 'bench', 'X-Roles': 'admin,member,reader'})
    return openstack.connection.Connection(session=sess,
                                           image_endpoint_override=url)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=10)
    parser.add_argument('--first-rounds', type=int, default=3,
                        help='first deploys (each converts afresh)')
    args = parser.parse_args()
    env = benchlib.load_env()
    benchlib.configure_ceph(env)
    glance = (env.get('services') or {}).get('glance') or {}
    if not glance.get('running'):
        sys.exit('bench_glance: the lab\'s Glance is not running')
    for key, value in lab_state.glance_options(env).items():
        CONF.set_override(key, value, group='glance')
    lib = images.ImageLibrary(glance=glance_client.GlanceClient())
    conn = glance_conn(glance['url'], 'bench')
    tmp = tempfile.mkdtemp(prefix='bench-glance-')
    made, nodes = [], []
    cluster = rados.Rados(conffile=env['ceph_conf'], rados_id='bmi',
                          conf={'keyring': env['ceph_keyring']})
    cluster.connect(timeout=10)
    ioctx = cluster.open_ioctx(env['image_pool'])
    try:
        # 1 GiB with data in a quarter of it (an OS image is not full).
        raw = os.path.join(tmp, 'disk.raw')
        with open(raw, 'wb') as f:
            for i in range(0, GiB, 4 * MiB):
                if i % (16 * MiB) == 0:
                    f.seek(i)
                    f.write(os.urandom(4 * MiB))
            f.truncate(GiB)
        qcow2 = os.path.join(tmp, 'disk.qcow2')
        subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2',
                        raw, qcow2], check=True)
        ids = {}
        for fmt_name, path in (('raw', raw), ('qcow2', qcow2)):
            t0 = time.perf_counter()
            img = conn.image.create_image(
                name='bench-%s' % fmt_name, filename=path,
                disk_format=fmt_name, container_format='bare',
                visibility='public', allow_duplicates=True,
                validate_checksum=False)
            made.append(img.id)
            ids[fmt_name] = img.id
            print('upload %-5s to Glance: %.1f s' % (
                fmt_name, time.perf_counter() - t0))
        pool = env['glance_pool']

        def convert_alone():
            """qemu-img convert of the same snapshot into a scratch image."""
            scratch = 'bench-convert-%s' % uuid.uuid4().hex[:8]
            rbd.RBD().create(ioctx, scratch, GiB,
                             features=rbd_utils.features())
            try:
                t0 = time.perf_counter()
                # The library's own argv: the same options, the same
                # source and target pools.
                subprocess.run(transfer.convert_rbd_argv(
                    pool, ids['qcow2'], 'snap', 'qcow2', scratch),
                    check=True)
                return time.perf_counter() - t0
            finally:
                rbd.RBD().remove(ioctx, scratch)

        # Alternate, so that a warm cache or load elsewhere hits both; the
        # cache is dropped after each first deploy but the last.
        alones, firsts = [], []
        for r in range(args.first_rounds):
            alones.append(convert_alone())
            node = str(uuid.uuid4())
            nodes.append(node)
            breakdown = Breakdown()
            breakdown(lib.clone_for_node, lib, node, ids['qcow2'])
            firsts.append(breakdown.total)
            if r < args.first_rounds - 1:
                lib.remove_node_disk(node)
                nodes.remove(node)
                rbd_utils.destroy(ioctx, layout.cache_rbd_name(ids['qcow2']))
        alone = statistics.median(alones)
        first = statistics.median(firsts)

        def clones(image_id):
            samples = []
            for _ in range(args.rounds):
                n = str(uuid.uuid4())
                t0 = time.perf_counter()
                lib.clone_for_node(n, image_id)
                samples.append(time.perf_counter() - t0)
                lib.remove_node_disk(n)
            return samples
        clones(ids['raw'])  # warm up
        later = clones(ids['qcow2'])
        raw_s = clones(ids['raw'])

        print('== Glance image deploys (1 GiB, Glance pool %s) ==' % pool)
        print('qemu-img convert alone   : %s' % fmt(alones))
        print('first deploy (converts)  : %s' % fmt(firsts))
        print('  ratio first/convert    : %.2fx  (target <= 1.1x)'
              % (first / alone))
        print('later deploys (cache)    : %s' % fmt(later))
        print('raw Glance image deploys : %s' % fmt(raw_s))
        print('  ratio cache/raw        : %.2fx  (target 1.0x)' % (
            statistics.median(later) / statistics.median(raw_s)))
        breakdown.report(alone)
        benchlib.write_summary('glance', {
            'convert_alone_ms': alone * 1e3, 'first_deploy_ms': first * 1e3,
            'first_ratio': first / alone,
            'cached_ms': statistics.median(later) * 1e3,
            'raw_ms': statistics.median(raw_s) * 1e3,
            'cached_ratio': statistics.median(later)
            / statistics.median(raw_s)})
    finally:
        for node in nodes:
            try:
                lib.remove_node_disk(node)
            except Exception as e:
                print('cleanup: %s' % e, file=sys.stderr)
        for image_id in made:
            try:
                conn.image.delete_image(image_id, ignore_missing=True)
            except Exception as e:
                print('cleanup: %s' % e, file=sys.stderr)
        try:
            lib.sweep_glance_cache()
        except Exception as e:
            print('cleanup: %s' % e, file=sys.stderr)
        ioctx.close()
        cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
