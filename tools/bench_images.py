#!/usr/bin/env python3
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

"""Benchmark the golden-image library against raw librbd, side by side.

Prints figures and ratios (no pass/fail): clone + remove of a node disk
through the library vs the same with bare rbd calls on one open
connection (target: library <= 1.2x raw), and clone time for a 1 GiB vs a
10 GiB golden image (target: equal within noise).

    .venv/bin/python tools/bench_images.py [--rounds N]

Needs the services (`make services-start`); reads .state/services.json.
"""

import argparse
import os
import statistics
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

import rados  # noqa: E402
import rbd  # noqa: E402

from bmi_driver.storage.ceph import library as images  # noqa: E402
from bmi_driver.storage.ceph import rbd_utils  # noqa: E402
from tools import benchlib  # noqa: E402

GiB = 1024 ** 3


def timed(fn, rounds):
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


def fmt(samples):
    return '%7.1f ms median  %7.1f ms mean  (n=%d)' % (
        statistics.median(samples) * 1e3, statistics.mean(samples) * 1e3,
        len(samples))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=20)
    args = parser.parse_args()
    env = benchlib.load_env()
    benchlib.configure_ceph(env)
    lib = images.ImageLibrary()
    pool = env['image_pool']

    cluster = rados.Rados(conffile=env['ceph_conf'], rados_id='bmi',
                          conf={'keyring': env['ceph_keyring']})
    cluster.connect(timeout=10)
    ioctx = cluster.open_ioctx(pool)
    made = []
    try:
        # Two sparse golden images, by reference from raw RBD images (no
        # data to write: clone time must not depend on size anyway).
        golden = {}
        for size in (1, 10):
            raw = 'bench-raw-%dg-%s' % (size, uuid.uuid4().hex[:6])
            rbd.RBD().create(ioctx, raw, size * GiB,
                             features=rbd_utils.features())
            made.append(('raw', raw))
            with rbd.Image(ioctx, raw) as image:
                image.write(os.urandom(4 << 20), 0)
                image.create_snap('base')
                image.protect_snap('base')
            img = lib.import_rbd('%s/%s@base' % (pool, raw),
                                 'bench-%dg-%s' % (size, uuid.uuid4().hex[:6]))
            made.append(('golden', img.uuid))
            golden[size] = img

        src = golden[1]

        def raw_cycle():
            name = 'node-' + str(uuid.uuid4())
            rbd.RBD().clone(ioctx, src.rbd_name, 'golden', ioctx, name,
                            features=rbd_utils.features())
            rbd.RBD().remove(ioctx, name)

        def lib_cycle(img=src):
            node = str(uuid.uuid4())
            lib.clone_for_node(node, img.uuid)
            lib.remove_node_disk(node)

        # warm up both paths (connections, caches), then interleave
        raw_cycle()
        lib_cycle()
        raw_s, lib_s = [], []
        for _ in range(args.rounds):
            raw_s += timed(raw_cycle, 1)
            lib_s += timed(lib_cycle, 1)

        def clone_only(img):
            samples = []
            for _ in range(args.rounds):
                node = str(uuid.uuid4())
                t0 = time.perf_counter()
                lib.clone_for_node(node, img.uuid)
                samples.append(time.perf_counter() - t0)
                lib.remove_node_disk(node)
            return samples

        c1 = clone_only(golden[1])
        c10 = clone_only(golden[10])

        print('== golden-image library benchmark (pool %s) ==' % pool)
        print('clone+remove, raw librbd : %s' % fmt(raw_s))
        print('clone+remove, library    : %s' % fmt(lib_s))
        print('  ratio library/raw      : %.2fx  (target <= 1.2x)' % (
            statistics.median(lib_s) / statistics.median(raw_s)))
        print('clone, 1 GiB image       : %s' % fmt(c1))
        print('clone, 10 GiB image      : %s' % fmt(c10))
        print('  ratio 10 GiB/1 GiB     : %.2fx  (target: ~1.0x)' % (
            statistics.median(c10) / statistics.median(c1)))
    finally:
        for kind, name in reversed(made):
            try:
                if kind == 'golden':
                    lib.delete(name)
                else:
                    with rbd.Image(ioctx, name) as image:
                        image.unprotect_snap('base')
                        image.remove_snap('base')
                    rbd.RBD().remove(ioctx, name)
            except Exception as e:
                print('cleanup of %s failed: %s' % (name, e),
                      file=sys.stderr)
        ioctx.close()
        cluster.shutdown()


if __name__ == '__main__':
    main()
