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

"""Benchmark of the iSCSI export (one run; prints figures and ratios).

  .venv/bin/python tools/bench_export.py [--nodes 20] [--size-mib 1024]
      [--lun-counts 1,10,100] [--tgtd-threads 16] [--env .state/services.json]
      [--client-conf KEY=VALUE] [--compare KEY=VALUE[,KEY=VALUE]]
      [--target-param NAME=VALUE] [--depth 8] [--rounds 3]
      [--skip export,read,luns]

Runs its own tgtd (free control and portal ports on 127.0.0.1, stopped at
the end) against the Ceph cluster of the services file, and measures:

1. export + unexport of one node: raw tgtadm calls (the minimum: target,
   LUN, LUN parameters, account, bind, ACL, then delete target and
   account; through processutils like the backend) vs the tgt backend vs
   the ExportManager (which also reads and records the export in the
   clone's RBD metadata);
2. sequential read of a SIZE clone: ``qemu-img bench`` (1 MiB reads, 8
   in flight) through the iSCSI LUN vs straight from librbd, alternated,
   with the CPU seconds per GiB of qemu-img, tgtd (by thread) and the
   OSD on each side; ``--compare`` adds an iSCSI side whose LUN's rados
   client has other librbd settings, measured in the same run;
3. tgtd's threads and RSS with 1, 10 and 100 RBD LUNs.

Everything it creates in Ceph is named bench-<random> and removed.
"""

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)

from oslo_concurrency import processutils  # noqa: E402
import rados  # noqa: E402
import rbd  # noqa: E402

from bmi_driver.conf import CONF  # noqa: E402
from bmi_driver.storage.ceph import library as images  # noqa: E402
from bmi_driver.storage.export import base  # noqa: E402
from bmi_driver.storage.export import manager as export  # noqa: E402
from bmi_driver.storage.export import tgt  # noqa: E402
from tools import benchlib  # noqa: E402

MiB = 1024 * 1024


def log(msg, *args):
    print(msg % args if args else msg, flush=True)


class Tgtd:
    def __init__(self, threads, log_dir):
        self.threads = threads
        self.log_path = os.path.join(log_dir, 'tgtd.log')
        self.control_port = next(p for p in range(900, 1000)
                                 if not self.answers(p))
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            self.portal_port = s.getsockname()[1]
        self.proc = None

    @staticmethod
    def answers(port):
        return subprocess.run(['tgtadm', '-C', str(port), '--lld', 'iscsi',
                               '--mode', 'system', '--op', 'show'],
                              capture_output=True).returncode == 0

    def tgtadm(self, *args):
        # Through processutils, as the backend must: the comparison is of
        # what the backend calls, not of the process launcher.
        processutils.execute('tgtadm', '-C', str(self.control_port),
                             '--lld', 'iscsi', *[str(a) for a in args])

    def start(self):
        with open(self.log_path, 'ab') as logf:
            self.proc = subprocess.Popen(
                ['tgtd', '-f', '-t', str(self.threads), '-C',
                 str(self.control_port), '--iscsi',
                 'portal=127.0.0.1:%d' % self.portal_port],
                stdout=logf, stderr=logf)
        for _ in range(100):
            if self.answers(self.control_port):
                return
            time.sleep(0.1)
        raise RuntimeError('tgtd did not start, see %s' % self.log_path)

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        show = subprocess.run(['tgtadm', '-C', str(self.control_port),
                               '--lld', 'iscsi', '--mode', 'target', '--op',
                               'show'], capture_output=True, text=True)
        for t in tgt.parse_targets(show.stdout):
            self.tgtadm('--mode', 'target', '--op', 'delete', '--force',
                        '--tid', t.tid)
        subprocess.run(['tgtadm', '-C', str(self.control_port), '--lld',
                        'iscsi', '--mode', 'system', '--op', 'delete'],
                       capture_output=True)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def usage(self):
        status = {}
        with open('/proc/%d/status' % self.proc.pid) as f:
            for line in f:
                key, _sep, value = line.partition(':')
                status[key] = value.strip()
        return int(status['Threads']), int(status['VmRSS'].split()[0])


class Cluster:
    """Admin access for setting up and removing bench images."""

    def __init__(self, conf, pool):
        self.cluster = rados.Rados(conffile=conf)
        self.cluster.connect(timeout=10)
        self.ioctx = self.cluster.open_ioctx(pool)
        self.pool = pool
        self.names = []

    def create(self, name, size, fill=False):
        rbd.RBD().create(self.ioctx, name, size, old_format=False,
                         features=rbd.RBD_FEATURE_LAYERING)
        self.names.append(name)
        if fill:
            chunk = os.urandom(4 * MiB)
            with rbd.Image(self.ioctx, name) as image:
                for offset in range(0, size, len(chunk)):
                    image.write(chunk, offset)
        return '%s/%s' % (self.pool, name)

    def snap_and_clone(self, parent, snap, child):
        with rbd.Image(self.ioctx, parent) as image:
            if snap not in [s['name'] for s in image.list_snaps()]:
                image.create_snap(snap)
                image.protect_snap(snap)
        rbd.RBD().clone(self.ioctx, parent, snap, self.ioctx, child,
                        features=rbd.RBD_FEATURE_LAYERING)
        self.names.append(child)
        return '%s/%s' % (self.pool, child)

    def cleanup(self):
        for name in reversed(self.names):
            try:
                with rbd.Image(self.ioctx, name) as image:
                    for s in image.list_snaps():
                        if image.is_protected_snap(s['name']):
                            image.unprotect_snap(s['name'])
                        image.remove_snap(s['name'])
                rbd.RBD().remove(self.ioctx, name)
            except rbd.ImageNotFound:
                pass
        self.ioctx.close()
        self.cluster.shutdown()


def timed(func, *args):
    t0 = time.perf_counter()
    result = func(*args)
    return time.perf_counter() - t0, result


def bench_export(tgtd, lib, cluster, golden, n):
    log('\n== 1. export + unexport of one node (%d nodes, median)', n)
    nodes = [str(uuid.uuid4()) for _ in range(n)]
    for node in nodes:
        lib.clone_for_node(node, golden.uuid)
    conf = CONF.iscsi.tgt_ceph_conf
    raw, backend_t, manager_t = [], [], []
    for i, node in enumerate(nodes):
        spec = '%s/node-%s' % (lib.clone_pool, node)
        iqn = 'iqn.2026-11.org.massopen.bench:%s' % node
        user = 'bench-%s' % node

        def raw_calls():
            tid = 1000 + i
            tgtd.tgtadm('--mode', 'target', '--op', 'new', '--tid', tid,
                        '--targetname', iqn)
            tgtd.tgtadm('--mode', 'logicalunit', '--op', 'new', '--tid', tid,
                        '--lun', 1, '--bstype', 'rbd', '--backing-store',
                        spec, '--bsopts', 'conf=%s;id=%s'
                        % (conf, CONF.iscsi.tgt_ceph_user))
            tgtd.tgtadm('--mode', 'logicalunit', '--op', 'update', '--tid',
                        tid, '--lun', 1, '--params', 'thin_provisioning=1')
            tgtd.tgtadm('--mode', 'account', '--op', 'new', '--user', user,
                        '--password', 'x' * 16)
            tgtd.tgtadm('--mode', 'account', '--op', 'bind', '--tid', tid,
                        '--user', user)
            tgtd.tgtadm('--mode', 'target', '--op', 'bind', '--tid', tid,
                        '--initiator-address', 'ALL')
            tgtd.tgtadm('--mode', 'target', '--op', 'delete', '--force',
                        '--tid', tid)
            tgtd.tgtadm('--mode', 'account', '--op', 'delete', '--user',
                        user)
        raw.append(timed(raw_calls)[0])

        mgr = export.ExportManager(library=lib)
        target = base.ExportTarget(iqn=iqn, luns={1: spec},
                                   chap_username=user, chap_secret='x' * 16)

        def backend_calls():
            mgr.backend.ensure_target(target)
            mgr.backend.remove_target(iqn, user)
        backend_t.append(timed(backend_calls)[0])

        def manager_calls():
            mgr.export_node(node)
            mgr.unexport_node(node)
        manager_t.append(timed(manager_calls)[0])
    for node in nodes:
        lib.remove_node_disk(node)
    r, b, m = (statistics.median(x) for x in (raw, backend_t, manager_t))
    log('raw tgtadm calls       %7.1f ms', r * 1000)
    log('tgt backend            %7.1f ms   ratio %.2fx (target <= 1.2x)',
        b * 1000, b / r)
    log('ExportManager (+Ceph)  %7.1f ms   ratio %.2fx (target <= 1.2x)',
        m * 1000, m / r)
    return {'raw_ms': r * 1000, 'backend_ms': b * 1000,
            'manager_ms': m * 1000}


def proc_cpu(pid):
    """CPU seconds (user + system) of process ``pid`` by thread name.

    From /proc/PID/task/*/stat (fields 14 and 15, in clock ticks): tgtd's
    main loop, its bs_rbd workers and its rados clients' threads apart.
    """
    tick = os.sysconf('SC_CLK_TCK')
    by_name = {}
    task_dir = '/proc/%d/task' % pid
    for tid in os.listdir(task_dir):
        try:
            with open(os.path.join(task_dir, tid, 'stat')) as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        # comm is in parentheses and may hold spaces.
        name = stat[stat.index('(') + 1:stat.rindex(')')]
        if int(tid) == pid:
            name += ' (main)'
        fields = stat[stat.rindex(')') + 2:].split()
        by_name[name] = by_name.get(name, 0) + (
            int(fields[11]) + int(fields[12])) / tick
    return by_name


def cpu_delta(before, after):
    names = set(before) | set(after)
    return {n: after.get(n, 0) - before.get(n, 0) for n in names}


def qemu_read(source_args, size, block=MiB, depth=8, watch=None):
    """Sequential reads of the whole image with ``qemu-img bench``.

    Returns (MiB/s, CPU seconds): qemu-img's own, and of each process of
    ``watch`` (name -> pid) by thread name, over the whole run.
    """
    argv = (['qemu-img', 'bench', '-q', '-c', str(size // block), '-d',
             str(depth), '-s', str(block), '-t', 'none'] + source_args)
    watch = watch or {}
    before = {n: proc_cpu(pid) for n, pid in watch.items()}
    with tempfile.TemporaryFile('w+') as out:
        proc = subprocess.Popen(argv, stdout=out)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, argv)
        out.seek(0)
        text = out.read()
    cpu = {n: cpu_delta(before[n], proc_cpu(pid))
           for n, pid in watch.items()}
    cpu['qemu-img'] = {'qemu-img': usage.ru_utime + usage.ru_stime}
    # qemu-img's own figure: the reads only, not connecting.
    seconds = float(re.search(r'Run completed in ([0-9.]+) seconds',
                              text).group(1))
    return size / MiB / seconds, cpu


def osd_pid(ceph_conf):
    """The pid of the lab's ceph-osd (its pid file beside ceph.conf)."""
    try:
        with open(os.path.join(os.path.dirname(ceph_conf),
                               'osd.0.pid')) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def bench_read(tgtd, cluster, size_mib, depth=8, target_params=(),
               variants=(), make_conf=None, rounds=3):
    """Sequential reads: librbd vs iSCSI, alternated in one run.

    ``variants``: lists of librbd settings; each is one more iSCSI side,
    a target of its own on the same clone whose LUN's rados client reads
    ``make_conf(settings)`` (the default side's settings plus these), so
    that a setting is measured beside the default in the same run.
    """
    log('\n== 2. sequential read of a %d MiB clone (%d in flight)',
        size_mib, depth)
    size = size_mib * MiB
    name = 'bench-%s' % uuid.uuid4().hex[:8]
    log('writing %d MiB of data...', size_mib)
    cluster.create(name, size, fill=True)
    clone_spec = cluster.snap_and_clone(name, 'snap', name + '-clone')
    mgr_backend = tgt.TgtExportBackend()
    iqn = 'iqn.2026-11.org.massopen.bench:read-%s' % name
    iqns = [iqn]
    served, _status = mgr_backend.ensure_target(
        base.ExportTarget(iqn=iqn, luns={1: clone_spec}))
    for setting in target_params:
        # iSCSI session parameters the target offers (tgt 1.0.85
        # defaults: MaxBurstLength 262144, FirstBurstLength 65536,
        # MaxRecvDataSegmentLength 8192 for what the initiator sends).
        # MaxXmitDataSegmentLength, the size of the Data-In PDUs, is
        # replaced at login by the initiator's MaxRecvDataSegmentLength
        # (iscsid.c text_scan_login): 262144 from libiscsi 1.19.
        key, _sep, value = setting.partition('=')
        tgtd.tgtadm('--mode', 'target', '--op', 'update', '--tid',
                    served.tid, '--name', key.strip(), '--value',
                    value.strip())
    if target_params:
        log('target parameters: %s', ', '.join(target_params))
    user = CONF.iscsi.tgt_ceph_user
    # librbd at the cluster's own client settings (what a VM on librbd
    # gets); --client-conf and --compare change tgtd's LUNs only.
    rbd_src = ['rbd:%s:id=%s:conf=%s' % (clone_spec, user,
                                         CONF.ceph.conf_file)]

    def iscsi_src(target):
        return ['--image-opts',
                'driver=iscsi,transport=tcp,portal=127.0.0.1:%d,'
                'target=%s,lun=1,initiator-name=iqn.2026-11.org.massopen.'
                'bench:init' % (tgtd.portal_port, target)]
    sources = [('librbd', rbd_src), ('iSCSI', iscsi_src(iqn))]
    default_conf = CONF.iscsi.tgt_ceph_conf
    for i, settings in enumerate(variants, 1):
        variant_iqn = '%s-v%d' % (iqn, i)
        # The backend gives a LUN [iscsi] tgt_ceph_conf at its creation.
        CONF.set_override('tgt_ceph_conf', make_conf(settings, i), 'iscsi')
        try:
            mgr_backend.ensure_target(base.ExportTarget(
                iqn=variant_iqn, luns={1: clone_spec}))
        finally:
            CONF.set_override('tgt_ceph_conf', default_conf, 'iscsi')
        iqns.append(variant_iqn)
        sources.append(('iSCSI+v%d' % i, iscsi_src(variant_iqn)))
        log('iSCSI+v%d: the LUN\'s client adds %s', i, ', '.join(settings))
    watch = {'tgtd': tgtd.proc.pid}
    osd = osd_pid(CONF.ceph.conf_file)
    if osd:
        watch['ceph-osd'] = osd
    for _label, src in sources:
        qemu_read(src, size, depth=depth)  # warm up every side alike
    runs = {label: [] for label, _src in sources}
    cpus = {label: [] for label, _src in sources}
    for _ in range(rounds):  # alternate, so that load elsewhere hits all
        for label, src in sources:
            speed, cpu = qemu_read(src, size, depth=depth, watch=watch)
            runs[label].append(speed)
            cpus[label].append(cpu)
    results = {}
    gib = size / (1024 * MiB)
    for label, values in runs.items():
        results[label] = statistics.median(values)
        log('%-24s %7.1f MiB/s (median of %s)', label, results[label],
            ', '.join('%.0f' % v for v in values))
    # Where the 2 cores went: CPU seconds per GiB read, median of the
    # runs, per process (tgtd by thread name), every side in one table.
    log('CPU s per GiB read       %s', '  '.join(
        '%10s' % label for label in runs))
    cpu_rows = {}
    for label in runs:
        for cpu in cpus[label]:
            for proc, threads in cpu.items():
                cpu_rows.setdefault((proc, 'total'), {}).setdefault(
                    label, []).append(sum(threads.values()))
                if proc == 'tgtd':
                    for thread, secs in threads.items():
                        cpu_rows.setdefault((proc, thread), {}).setdefault(
                            label, []).append(secs)
    for (proc, thread), by_label in sorted(cpu_rows.items()):
        if thread != 'total' and max(
                max(v) for v in by_label.values()) < 0.05:
            continue
        log('  %-22s %s', proc if thread == 'total' else '  ' + thread,
            '  '.join('%10.2f' % (statistics.median(by_label[label]) / gib)
                      if label in by_label else '%10s' % '-'
                      for label in runs))
    ratios = {label: results[label] / results['librbd']
              for label in runs if label != 'librbd'}
    for label, ratio in ratios.items():
        log('ratio %-9s / librbd  %7.2fx (target >= 0.9x)', label, ratio)
    for target in iqns:
        mgr_backend.remove_target(target)
    summary = {'rbd_mib_s': results['librbd'],
               'iscsi_mib_s': results['iSCSI'], 'ratio': ratios['iSCSI'],
               'rbd_runs': runs['librbd'], 'iscsi_runs': runs['iSCSI']}
    if variants:
        summary['variants'] = [
            {'client_conf': list(settings),
             'iscsi_mib_s': results['iSCSI+v%d' % i],
             'ratio': ratios['iSCSI+v%d' % i]}
            for i, settings in enumerate(variants, 1)]
    return summary


def bench_luns(tgtd, cluster, counts):
    log('\n== 3. tgtd threads and RSS by number of RBD LUNs (-t %d)',
        tgtd.threads)
    parent = 'bench-%s' % uuid.uuid4().hex[:8]
    cluster.create(parent, 64 * MiB)
    backend = tgt.TgtExportBackend()
    made = 0
    rows = []
    threads0, rss0 = tgtd.usage()
    log('%6s %8s %10s %14s', 'LUNs', 'threads', 'RSS MiB', 'per LUN KiB')
    log('%6d %8d %10.1f %14s', 0, threads0, rss0 / 1024, '-')
    for count in counts:
        while made < count:
            spec = cluster.snap_and_clone(parent, 'snap',
                                          '%s-%d' % (parent, made))
            backend.ensure_target(base.ExportTarget(
                iqn='iqn.2026-11.org.massopen.bench:lun-%d' % made,
                luns={1: spec}))
            made += 1
        time.sleep(1)
        threads, rss = tgtd.usage()
        rows.append({'luns': count, 'threads': threads, 'rss_kib': rss})
        log('%6d %8d %10.1f %14.0f', count, threads, rss / 1024,
            (rss - rss0) / count)
    for i in range(made):
        backend.remove_target('iqn.2026-11.org.massopen.bench:lun-%d' % i)
    return rows


def tgt_ceph_conf(conf, user, settings, work, sub='tgt-conf'):
    """The ceph.conf of the LUNs: ``conf``, plus ``settings`` if any.

    They go to the ``[client.<user>]`` section of a copy, which wins over
    ``[client]`` for that user alone (Ceph 16).
    """
    if not settings:
        return conf
    # Named ceph.conf: Ceph 16 takes $cluster from the file's name, and
    # the keyring path is .../$cluster.$name.keyring (a ceph-tgt.conf
    # made tgtd look for ceph-tgt.client.tgt.keyring: "unknown error").
    os.makedirs(os.path.join(work, sub), exist_ok=True)
    path = os.path.join(work, sub, 'ceph.conf')
    with open(conf) as src, open(path, 'w') as dst:
        dst.write(src.read())
        dst.write('\n[client.%s]\n' % user)
        for setting in settings:
            key, _sep, value = setting.partition('=')
            dst.write('%s = %s\n' % (key.strip(), value.strip()))
    log('LUNs use %s: %s', path, ', '.join(settings))
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--env', default=benchlib.env_path())
    parser.add_argument('--nodes', type=int, default=20)
    parser.add_argument('--size-mib', type=int, default=1024)
    parser.add_argument('--lun-counts', default='1,10,100')
    # The README's gateway setting (-t 4 read 0.69x librbd, -t 16
    # 0.79-0.87x on the lab machine).
    parser.add_argument('--tgtd-threads', type=int, default=16)
    parser.add_argument('--client-conf', action='append', default=[],
                        metavar='KEY=VALUE',
                        help='a librbd setting for the LUNs\' rados client '
                             '(e.g. rbd_readahead_max_bytes=4194304), in a '
                             'copy of the cluster\'s ceph.conf; repeatable')
    parser.add_argument('--read-key', default='read',
                        help='summary.json key of the read figures (a '
                             'variant\'s own key keeps the default\'s)')
    parser.add_argument('--target-param', action='append', default=[],
                        metavar='NAME=VALUE',
                        help='an iSCSI parameter of the read target '
                             '(tgtadm --mode target --op update --name '
                             'NAME --value VALUE), e.g. '
                             'MaxXmitDataSegmentLength=262144; repeatable')
    parser.add_argument('--compare', action='append', default=[],
                        metavar='KEY=VALUE[,KEY=VALUE]',
                        help='one more iSCSI side in the same run, its '
                             'LUN\'s client with these librbd settings '
                             'added; repeatable')
    parser.add_argument('--rounds', type=int, default=3,
                        help='alternated reads per side (median)')
    parser.add_argument('--depth', type=int, default=8,
                        help='reads in flight (qemu-img bench -d)')
    parser.add_argument('--skip', default='',
                        help='comma-separated parts to skip: export,read,'
                             'luns')
    args = parser.parse_args()
    env = benchlib.load_env(args.env)
    skip = set(filter(None, args.skip.split(',')))

    benchlib.configure_ceph(env)
    work = tempfile.mkdtemp(prefix='bench-export-')
    CONF.set_override('state_path', work, 'bmi')
    tgtd = Tgtd(args.tgtd_threads, work)
    CONF.set_override('tgtadm_control_port', tgtd.control_port, 'iscsi')
    CONF.set_override('portal_port', tgtd.portal_port, 'iscsi')
    CONF.set_override('tgt_ceph_user', env['ceph_tgt_user'], 'iscsi')
    CONF.set_override('tgt_ceph_conf', tgt_ceph_conf(
        env['ceph_conf'], env['ceph_tgt_user'], args.client_conf, work),
        'iscsi')
    CONF.set_override('iqn_prefix', 'iqn.2026-11.org.massopen.bench', 'iscsi')

    lib = images.ImageLibrary()
    cluster = Cluster(env['ceph_conf'], env['image_pool'])
    golden = None
    results = {}
    tgtd.start()
    log('own tgtd: control port %d, portal 127.0.0.1:%d, -t %d, log %s',
        tgtd.control_port, tgtd.portal_port, tgtd.threads, tgtd.log_path)
    try:
        if 'export' not in skip:
            path = os.path.join(work, 'golden.raw')
            with open(path, 'wb') as f:
                f.write(os.urandom(4 * MiB))
            golden = lib.import_file(path, 'bench-%s' % uuid.uuid4().hex[:8])
            results['export'] = bench_export(tgtd, lib, cluster, golden,
                                             args.nodes)
        if 'read' not in skip:
            variants = [[kv for kv in c.split(',') if kv]
                        for c in args.compare]

            def make_conf(settings, i):
                return tgt_ceph_conf(
                    env['ceph_conf'], env['ceph_tgt_user'],
                    args.client_conf + settings, work, 'tgt-conf-v%d' % i)
            results['read'] = bench_read(
                tgtd, cluster, args.size_mib, args.depth, args.target_param,
                variants, make_conf, args.rounds)
            results['read']['client_conf'] = args.client_conf
            results['read']['target_params'] = args.target_param
            results['read']['depth'] = args.depth
        if 'luns' not in skip:
            counts = [int(c) for c in args.lun_counts.split(',')]
            results['luns'] = bench_luns(tgtd, cluster, counts)
    finally:
        tgtd.stop()
        if golden is not None:
            lib.delete(golden.uuid)
        cluster.cleanup()
    log('\n%s', json.dumps(results, sort_keys=True))
    for key, name in (('export', 'export'), ('read', args.read_key)):
        if key in results:
            benchlib.write_summary(name, dict(
                results[key], tgtd_threads=args.tgtd_threads))
    log('summary: %s', benchlib.summary_path())


if __name__ == '__main__':
    main()
