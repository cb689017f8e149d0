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

"""The fault soak (issue 12 item 6): ``make soak``.

``python -m tools.lab.soak [--cycles N] [--seed S] ...``

Runs inside the lab's namespace against the running lab (services.json):
deploy / undeploy / rebuild cycles on fake-power ``bmi`` nodes (bmi deploy
and storage interfaces, the ``hil`` network interface on switch ports
that HIL's admin registered), while faults drawn from a seeded RNG hit the
real components:

``tgtd_kill``          kill -9 a gateway's tgtd, restart it as the lab does
``conductor_kill``     kill -9 a conductor (its process group; on the
                       all-in-one lab the ``ironic`` process) right after
                       the round's deploys/undeploys were asked, restart it
``osd_pause``          SIGSTOP ceph-osd by pid for a few seconds, SIGCONT
``hil_down``           stop the real HIL (API and serve-networks), start it
``hil_500``            HIL answers 500: its sqlite database is moved away
                       (HIL's SQLAlchemy opens the file per request and
                       finds no tables), then put back
``pool_quota``         ``ceph osd pool set-quota <clone pool> max_bytes 1``
                       for a few seconds, then 0 (no quota)
``node_delete``        an ACTIVE node put in maintenance and deleted; its
                       slot is re-enrolled (same UUID half of the time)

Every fault is undone in a ``finally`` and bounded in time. A round gives
each node slot one operation (a *cycle*); a node whose operation ends in
``deploy failed`` or ``error`` gets what Nova would do (undeploy, retried);
back to AVAILABLE it is *healed*, otherwise (``clean failed``,
maintenance, stuck) it needed a person: *operator*. After the rounds the
soak waits (bounded, ``SOAK_SETTLE``) for the plugin to settle, then
counts leaks (``tools.lab.soak_census``): clones, config drives, trashed
clones, targets and CHAP accounts on every gateway, VolumeTargets, boot
files, HIL attachments and lock files of nodes that are not ACTIVE or
that were deleted. An ACTIVE node whose target no gateway serves is an
operator case too (its disk is gone). Last line, exactly once::

    soak: cycles=N faults=F failed=X leaked=L healed=H operator=O

Exit code 0 only when leaked=0 and operator=0.

Environment: SOAK_CYCLES (200), SOAK_SEED (random, printed), SOAK_NODES
(4 slots), SOAK_FAULT_RATE (0.5 of the rounds), SOAK_FAULTS (comma list,
default all), SOAK_TIME (seconds for the rounds, 3600), SOAK_OP_TIMEOUT
(seconds per operation, 300), SOAK_SETTLE (seconds, 180).
"""

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid

from tools.lab import labnet
from tools.lab import service
from tools.lab import services as lab_services
from tools.lab import soak_census as census
from tools.lab import state as lab_state

FAULTS = ('tgtd_kill', 'conductor_kill', 'osd_pause', 'hil_down',
          'hil_500', 'pool_quota', 'node_delete')
FAILED_STATES = ('deploy failed', 'error', 'clean failed', 'rescue failed',
                 'inspect failed')
# What Nova does with a node whose instance failed: undeploy it.
NOVA_RECOVERS = ('deploy failed', 'error', 'active')
IQN_PREFIX = 'iqn.2026-11.org.massopen.bmi'   # [iscsi] iqn_prefix default
CHAP_USER_PREFIX = 'bmi-'                     # manager.CHAP_USER_PREFIX
POLL = 0.5
GiB = 1024 ** 3


def say(fmt, *args):
    print('soak: ' + (fmt % args if args else fmt), flush=True)


def oneline(text, limit=400):
    """An error (HIL's HTML pages, tracebacks) on one bounded line."""
    text = ' '.join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def env_int(name, default):
    return int(os.environ.get(name) or default)


def env_float(name, default):
    return float(os.environ.get(name) or default)


def _alive(pid):
    """Whether ``pid`` runs (a zombie nobody reaped does not)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (OSError, IndexError):
        return False


def at_rest(node):
    """Whether Ironic is done with the node for now.

    A failed state keeps its target (Ironic 39.0.0: ``deploy failed``
    keeps ``active``), so a failed state is at rest whatever its target.
    """
    return (node.provision_state in FAILED_STATES
            or not node.target_provision_state)


def fine(node):
    """AVAILABLE or ACTIVE, at rest, not in maintenance."""
    return (node.provision_state in ('available', 'active')
            and not node.target_provision_state and not node.maintenance)


def _wait_dead(pid, timeout=15):
    service.wait_for(lambda: not _alive(pid), timeout, 0.05,
                     'pid %d to die' % pid)


class Tally(object):
    """The figures of the last line."""

    def __init__(self):
        self.cycles = self.faults = self.failed = 0
        self.healed = self.operator = self.leaked = 0

    def line(self):
        return ('soak: cycles=%d faults=%d failed=%d leaked=%d healed=%d '
                'operator=%d' % (self.cycles, self.faults, self.failed,
                                 self.leaked, self.healed, self.operator))

    def ok(self):
        return self.leaked == 0 and self.operator == 0


class Lab(object):
    """The running lab as services.json describes it.

    Gateways: every service named ``tgtd`` or ``tgtd-*``; conductors:
    every ``conductor*`` / ``ironic-conductor*`` service, else the
    all-in-one ``ironic``. Each is restarted through the lab's own
    service object (``tools.lab.services.get``).
    """

    def __init__(self, env=None):
        self.env = env or lab_state.load_services()
        self.st = lab_state.State(self.env['state_dir'])
        svcs = self.env.get('services', {})
        # services.json keeps the entries of the other lab mode too (not
        # running): only what runs is a fault's target.
        running = {n for n, info in svcs.items() if info.get('running')}
        self.gateways = sorted(n for n in running if n == 'tgtd'
                               or n.startswith('tgtd-'))
        self.conductors = sorted(n for n in running if n.startswith(
            ('conductor', 'ironic-conductor'))) or ['ironic']
        self.has_hil = bool(svcs.get('hil', {}).get('running'))
        # The two-conductor lab's API keeps its env.json (url, http_root)
        # in its own state dir; the all-in-one Ironic in ironic_state.
        api = svcs.get('ironic-api') or {}
        ironic = lab_state.read_env(
            api['state_dir'] if api.get('running')
            else self.env['ironic_state'], 'Ironic')
        self.ironic_url = ironic['url']
        self.http_roots = [ironic['http_root']] + [
            n.http_root for n in labnet.boot_networks(
                self.env['state_dir']).values()]
        self.lock_dir = os.path.join(self.env['state_dir'], 'locks')
        self.pool = self.env['image_pool']

    def service(self, name):
        return lab_services.get(name, self.st)

    def info(self, name):
        return self.env.get('services', {}).get(name, {})

    def tgtadm(self, gateway, *args):
        argv = ['tgtadm', '--lld', 'iscsi']
        port = self.info(gateway).get('control_port')
        if port:
            argv += ['-C', str(port)]
        return subprocess.run(argv + list(args), capture_output=True,
                              text=True, timeout=60)

    def ceph(self, *args, fmt_json=False, timeout=60):
        argv = ['ceph', '-c', self.env['ceph_conf']] + list(args)
        if fmt_json:
            argv += ['--format', 'json']
        proc = subprocess.run(argv, capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode:
            raise RuntimeError('%s: %s' % (' '.join(argv[3:]),
                                           proc.stderr.strip()))
        return json.loads(proc.stdout) if fmt_json else proc.stdout

    def rbd(self, *args, timeout=60):
        argv = ['rbd', '-c', self.env['ceph_conf'], '--format', 'json',
                '-p', self.pool] + list(args)
        proc = subprocess.run(argv, capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode:
            raise RuntimeError('rbd %s: %s' % (' '.join(args),
                                               proc.stderr.strip()))
        return json.loads(proc.stdout or '[]')

    def restart(self, name):
        """Start service ``name`` again after it died."""
        svc = self.service(name)
        svc._forget()   # its pid file names a dead (maybe zombie) pid
        svc.start()
        lab_services.write_services(self.st)


class Faults(object):
    """The faults; each ``inject`` returns once the fault is undone."""

    def __init__(self, lab, rng, soak):
        self.lab = lab
        self.rng = rng
        self.soak = soak

    def inject(self, kind):
        return getattr(self, kind)()

    def tgtd_kill(self):
        gw = self.rng.choice(self.lab.gateways)
        pid = self.lab.service(gw).pid()
        if pid is None:
            return 'no %s runs' % gw
        os.kill(pid, signal.SIGKILL)
        _wait_dead(pid)
        self.soak.tgtd_killed = True
        time.sleep(self.rng.uniform(0, 2))
        self.lab.restart(gw)
        return '%s pid %d killed, restarted' % (gw, pid)

    def conductor_kill(self):
        name = self.rng.choice(self.lab.conductors)
        pid = self.lab.service(name).pid()
        if pid is None:
            return 'no %s runs' % name
        # Its own session (tools.lab.service.spawn): the whole group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        _wait_dead(pid)
        in_flight = self.soak.in_flight()
        t0 = time.monotonic()
        self.lab.restart(name)
        return '%s pid %d killed during %s, restarted in %.1f s' % (
            name, pid, in_flight or 'nothing', time.monotonic() - t0)

    def osd_pause(self):
        path = os.path.join(self.lab.st.ceph_dir, 'osd.0.pid')
        pid = service.read_pid(path)
        if pid is None:
            return 'no ceph-osd runs'
        hold = self.rng.uniform(2, 8)
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(hold)
        finally:
            os.kill(pid, signal.SIGCONT)
        return 'ceph-osd pid %d stopped for %.1f s' % (pid, hold)

    def hil_down(self):
        if not self.lab.has_hil:
            return 'no HIL in this lab'
        from tools.lab import hil_real
        hold = self.rng.uniform(2, 10)
        base = self.lab.info('hil')['state_dir']
        hil_real.stop(base)    # the processes only; the database stays
        try:
            time.sleep(hold)
        finally:
            self.lab.restart('hil')
        return 'HIL stopped for %.1f s' % hold

    def hil_500(self):
        if not self.lab.has_hil:
            return 'no HIL in this lab'
        hold = self.rng.uniform(2, 10)
        db = os.path.join(self.lab.info('hil')['state_dir'], 'hil.db')
        away = db + '.soak-away'
        os.rename(db, away)
        try:
            answer = self._hil_answer()
            time.sleep(hold)
        finally:
            # HIL's sqlite made an empty file meanwhile: replace it.
            os.replace(away, db)
        what = 'HIL database away for %.1f s, HIL answered %s' % (hold,
                                                                  answer)
        if not self.lab.service('hil').is_running():
            # serve-networks exits when its database goes away.
            self.lab.restart('hil')
            what += ' (HIL restarted)'
        return what

    def _hil_answer(self):
        """What HIL answers now (an HTTP status), as its admin."""
        from tools.lab import hil_real
        if self.soak.net is None:
            return 'unknown'
        try:
            self.soak.net.admin.call('GET', 'projects')
            return 200
        except hil_real.HILError as e:
            return e.status
        except OSError as e:
            return 'nothing (%s)' % e

    def pool_quota(self):
        hold = self.rng.uniform(3, 10)
        pool = self.lab.pool
        self.lab.ceph('osd', 'pool', 'set-quota', pool, 'max_bytes', '1')
        try:
            time.sleep(hold)
        finally:
            self.lab.ceph('osd', 'pool', 'set-quota', pool, 'max_bytes',
                          '0')
        return 'quota max_bytes=1 on %s for %.1f s' % (pool, hold)

    def node_delete(self):
        return self.soak.delete_active_node()


class Slot(object):
    """A node of the soak: its Ironic UUID, MAC, HIL node."""

    def __init__(self, index, hil_node=None):
        self.index = index
        self.hil_node = hil_node
        self.uuid = None
        self.mac = (hil_node.mac if hil_node else
                    '52:54:02:b5:%02x:%02x' % (index // 256, index % 256))
        self.op = None           # (operation, wanted state, started)
        self.failure = None      # the open failure (text)


class Soak(object):

    def __init__(self, lab, rng, tally, op_timeout=300):
        from ironicclient import client as ir_client
        self.lab = lab
        self.rng = rng
        self.tally = tally
        self.op_timeout = op_timeout
        self.ironic = ir_client.get_client(
            '1', endpoint=lab.ironic_url, auth_type='none',
            os_ironic_api_version='latest')
        self.tag = uuid.uuid4().hex[:6]
        self.slots = []
        self.retired = []        # slots of nodes that needed a person
        self.deleted = set()     # UUIDs Ironic no longer has
        self.macs = {}           # MAC -> node UUID, for boot files
        self.known = set()       # every UUID the soak made
        self.image = None
        self.library = None
        self.base = None
        self.net = None
        self.hil_nodes = []
        self.tgtd_killed = False

    # --- API calls that outlive a conductor restart --------------------
    def api(self, fn, *args, **kwargs):
        """Call the API; retry while it does not answer (restart)."""
        deadline = time.monotonic() + self.op_timeout
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                name = type(e).__name__
                if (name not in ('ConnectFailure', 'ConnectionRefused',
                                 'ServiceUnavailable', 'ConnectionError',
                                 'Conflict', 'NodeLocked')
                        or time.monotonic() > deadline):
                    raise
                time.sleep(1)

    def why(self, n):
        """Why node ``n`` failed: its last_error, else its history's newest.

        Ironic 39.0.0's power sync clears ``last_error`` on a node at rest
        whose power state matches (``_clear_last_error_if_needed`` in
        conductor/manager.py, with ``[conductor]node_history`` on, the
        default), failed states included: a failure read a sync later has
        no ``last_error``, and its message is in the node's history only.
        """
        if n.last_error:
            return oneline(n.last_error)
        try:
            events = self.ironic.node.get_history_list(n.uuid, detail=True)
        except Exception as e:
            return 'None (its history unreadable: %s)' % oneline(e, 120)
        errors = [e for e in events if e.get('severity') == 'ERROR']
        if not errors:
            return 'None (no error in its history)'
        newest = max(errors, key=lambda e: e.get('created_at') or '')
        return 'None; its history: %s (%s)' % (
            oneline(newest.get('event')), newest.get('event_type'))

    def node(self, node_uuid):
        return self.api(self.ironic.node.get, node_uuid,
                        fields=['uuid', 'provision_state', 'maintenance',
                                'target_provision_state', 'last_error',
                                'reservation'])

    # --- set up ---------------------------------------------------------
    def setup(self, count):
        from bmi_driver.storage.ceph import library
        from bmi_driver.storage.ceph import rbd_utils
        from bmi_driver.storage.ceph.rbd_utils import rbd
        from tools import benchlib
        benchlib.configure_ceph(self.lab.env)
        self.base = 'soak-base-' + self.tag
        with rbd_utils.ClientPool().get() as client:
            ioctx = client.ioctx(self.lab.pool)
            rbd.RBD().create(ioctx, self.base, GiB, old_format=False,
                             features=rbd.RBD_FEATURE_LAYERING)
            with rbd.Image(ioctx, self.base) as img:
                img.write(b'BMI-SOAK' * 128, 0)
        self.library = library.ImageLibrary()
        # Public: a hil node's lessee (a lab project) must see it.
        self.image = self.library.import_rbd(
            '%s/%s' % (self.lab.pool, self.base), 'soak-' + self.tag,
            visibility='public').uuid
        if self.lab.has_hil:
            from tools.lab import e2e
            self.net = e2e.LabNet(self.lab.env)
        for i in range(count):
            hil_node = None
            if self.net is not None:
                from tools.lab import e2e
                hil_node = e2e.Node('soak-%s-%d' % (self.tag, i), 'e2e', i,
                                    0xb5)
                self.net.add_ports(hil_node)
                self.net.register(hil_node)
                self.hil_nodes.append(hil_node)
            slot = Slot(i, hil_node)
            self.enroll(slot)
            self.slots.append(slot)

    def enroll(self, slot, node_uuid=None):
        fields = dict(driver='bmi', boot_interface='ipxe',
                      deploy_interface='bmi', storage_interface='bmi',
                      network_interface='hil' if slot.hil_node else 'noop',
                      power_interface='fake', management_interface='fake',
                      vendor_interface='bmi',
                      properties={'capabilities': 'iscsi_boot:True'})
        if node_uuid:
            fields['uuid'] = node_uuid
        # The hil network interface finds the HIL node by the Ironic
        # node's name.
        name = (slot.hil_node.name if slot.hil_node else 'soak-%s-%d-%s'
                % (self.tag, slot.index, uuid.uuid4().hex[:4]))
        node = self.api(self.ironic.node.create, name=name, **fields)
        slot.uuid = node.uuid
        self.known.add(node.uuid)
        self.deleted.discard(node.uuid)
        self.macs[slot.mac] = node.uuid
        patch = [{'op': 'add', 'path': '/owner', 'value': 'admin'},
                 {'op': 'add', 'path': '/instance_info/image_source',
                  'value': self.image}]
        if slot.hil_node:
            patch.append({'op': 'add', 'path': '/lessee',
                          'value': slot.hil_node.project})
        self.api(self.ironic.node.update, node.uuid, patch)
        self.api(self.ironic.port.create, node_uuid=node.uuid,
                 address=slot.mac, pxe_enabled=True)
        for target, state in (('manage', 'manageable'),
                              ('provide', 'available')):
            self.api(self.ironic.node.set_provision_state, node.uuid,
                     target)
            self.wait_state(node.uuid, state)

    def wait_state(self, node_uuid, state, timeout=None):
        """Wait until the node is ``state`` with nothing pending.

        Returns the node; it may be in another, stable state (failed).
        """
        deadline = time.monotonic() + (timeout or self.op_timeout)
        while True:
            n = self.node(node_uuid)
            stable = at_rest(n)
            if stable and (n.provision_state == state
                           or n.provision_state in FAILED_STATES
                           or n.provision_state in ('available', 'active',
                                                    'manageable')):
                return n
            if time.monotonic() > deadline:
                return n
            time.sleep(POLL)

    # --- rounds ---------------------------------------------------------
    def in_flight(self):
        return ', '.join(sorted({s.op[0] for s in self.slots if s.op}))

    def start_ops(self):
        for slot in self.slots:
            n = self.node(slot.uuid)
            state = n.provision_state
            if state == 'available':
                kwargs = {}
                if self.rng.random() < 0.5:
                    from tools.lab import e2e
                    # Bytes: ironicclient 5.x takes a str for a path.
                    kwargs['configdrive'] = e2e.config_drive(
                        'soak %s %d\n' % (self.tag, self.tally.cycles)
                    ).encode()
                op = ('deploy', 'active', 'active', kwargs)
            elif state == 'active':
                op = self.rng.choice([
                    ('undeploy', 'deleted', 'available', {}),
                    ('rebuild', 'rebuild', 'active', {})])
            else:
                if slot.failure is None and at_rest(n):
                    # Came to rest elsewhere (an enroll's cleaning that
                    # failed, say): a failure of its own.
                    self.tally.failed += 1
                    slot.failure = 'at rest in %s%s: %s' % (
                        state, ' (maintenance)' if n.maintenance else '',
                        self.why(n))
                    say('FAILED node %s %s', slot.uuid, slot.failure)
                continue
            name, target, wanted, kwargs = op
            self.tally.cycles += 1
            try:
                if name == 'deploy':
                    # As Nova does before each deploy: Ironic 39.0.0
                    # clears instance_info at undeploy.
                    self.api(self.ironic.node.update, slot.uuid, [
                        {'op': 'add', 'path': '/instance_info/image_source',
                         'value': self.image}])
                self.api(self.ironic.node.set_provision_state, slot.uuid,
                         target, **kwargs)
            except Exception as e:
                # Refused (validate failed, HIL unreachable...): a failure
                # with its message; recover() judges what it left.
                self.tally.failed += 1
                slot.failure = '%s refused: %s' % (name, oneline(e))
                say('FAILED node %s %s', slot.uuid, slot.failure)
                continue
            slot.op = (name, wanted, time.monotonic())

    def finish_ops(self):
        for slot in self.slots:
            if not slot.op:
                continue
            name, wanted, started = slot.op
            left = max(5, self.op_timeout - (time.monotonic() - started))
            n = self.wait_state(slot.uuid, wanted, timeout=left)
            slot.op = None
            if n.provision_state == wanted and fine(n):
                continue
            self.tally.failed += 1
            slot.failure = '%s: %s%s: %s' % (
                name, n.provision_state,
                ' (maintenance)' if n.maintenance else '',
                self.why(n))
            say('FAILED node %s %s', slot.uuid, slot.failure)

    def recover(self):
        """What Nova would do with failed nodes; the rest needs a person."""
        for slot in list(self.slots):
            if slot.failure is None:
                continue
            n = self.node(slot.uuid)
            for _attempt in range(3):
                if fine(n) or not at_rest(n) or n.maintenance or (
                        n.provision_state not in NOVA_RECOVERS):
                    break
                try:
                    self.api(self.ironic.node.set_provision_state,
                             slot.uuid, 'deleted')
                except Exception as e:
                    say('undeploy of node %s refused: %s', slot.uuid, e)
                n = self.wait_state(slot.uuid, 'available')
            if fine(n):
                self.tally.healed += 1
                say('healed node %s (%s)', slot.uuid, oneline(slot.failure,
                                                              120))
                slot.failure = None
                continue
            self.tally.operator += 1
            say('OPERATOR node %s is %s%s after %s: %s', slot.uuid,
                n.provision_state, ' (maintenance)' if n.maintenance
                else '', slot.failure, self.why(n))
            # Out of rotation, counted once; a fresh node takes its slot.
            slot.failure = None
            self.retired.append(slot.uuid)
            fresh = Slot(slot.index + 1000 * (len(self.retired)),
                         slot.hil_node)
            if slot.hil_node is None:
                self.enroll(fresh)
                self.slots[self.slots.index(slot)] = fresh
            else:
                # Its HIL node (its switch ports) stays with the failed
                # node, whose attachments are to be counted.
                self.slots.remove(slot)

    def delete_active_node(self):
        active = [s for s in self.slots
                  if self.node(s.uuid).provision_state == 'active'
                  and not s.op]
        if not active:
            return 'no ACTIVE node to delete'
        slot = self.rng.choice(active)
        old = slot.uuid
        self.tally.cycles += 1
        self.api(self.ironic.node.set_maintenance, old, True,
                 maint_reason='soak: node delete in maintenance')
        self.api(self.ironic.node.delete, old)
        self.deleted.add(old)
        self.macs.pop(slot.mac, None)
        same = self.rng.random() < 0.5
        self.enroll(slot, node_uuid=old if same else None)
        return ('ACTIVE node %s deleted in maintenance, slot re-enrolled '
                'as %s' % (old, 'the same UUID' if same else slot.uuid))

    def _remove_base(self):
        from bmi_driver.storage.ceph import rbd_utils
        from bmi_driver.storage.ceph.rbd_utils import rbd
        with rbd_utils.ClientPool().get() as client:
            ioctx = client.ioctx(self.lab.pool)
            with rbd.Image(ioctx, self.base) as img:
                for snap in list(img.list_snaps()):
                    if img.is_protected_snap(snap['name']):
                        img.unprotect_snap(snap['name'])
                    img.remove_snap(snap['name'])
            rbd.RBD().remove(ioctx, self.base)

    # --- census ---------------------------------------------------------
    def census(self):
        """(leaks, silent): leaked rows and ACTIVE nodes with no target."""
        seen = []
        names = self.lab.rbd('ls')
        seen += census.rbd_names(names, self.lab.pool)
        with contextlib.suppress(RuntimeError):
            seen += census.rbd_trash(self.lab.rbd('trash', 'ls'),
                                     self.lab.pool)
        for gw in self.lab.gateways:
            seen += census.targets(self.lab.tgtadm(
                gw, '--mode', 'target', '--op', 'show').stdout, gw,
                IQN_PREFIX)
            seen += census.accounts(self.lab.tgtadm(
                gw, '--mode', 'account', '--op', 'show').stdout, gw,
                CHAP_USER_PREFIX)
        seen += census.volume_targets(
            [{'node_uuid': v.node_uuid, 'uuid': v.uuid}
             for v in self.api(self.ironic.volume_target.list, limit=0,
                               fields=['uuid', 'node_uuid'])])
        for root in self.lab.http_roots:
            seen += census.boot_files(root, self.macs)
        seen += census.lock_files(self.lab.lock_dir)
        nodes = {}
        for n in self.api(self.ironic.node.list, limit=0,
                          fields=['uuid', 'provision_state']):
            if n.uuid in self.known:
                nodes[n.uuid] = n.provision_state
        if self.net is not None:
            for hn in self.hil_nodes:
                # The HIL node belongs to the last Ironic node enrolled
                # with its MAC (a retired one keeps it).
                owner = self.macs.get(hn.mac)
                if owner:
                    seen += census.hil_attachments(
                        self.net.admin.call('GET', 'node/' + hn.name),
                        owner)
        leaked = census.leaks(seen, nodes, self.deleted - set(nodes))
        served = {r.node for r in seen if r.kind == 'target'}
        silent = sorted(u for u, s in nodes.items()
                        if s == 'active' and u not in served)
        return leaked, silent

    def settle(self, timeout):
        """Wait (bounded) for the plugin to converge; the final census."""
        deadline = time.monotonic() + timeout
        while True:
            listed = self.api(self.ironic.node.list, limit=0,
                              fields=['uuid', 'provision_state',
                                      'target_provision_state'])
            busy = [n.uuid for n in listed
                    if n.uuid in self.known and not at_rest(n)
                    and n.uuid not in self.retired]
            leaked, silent = self.census()
            if (not busy and not leaked and not silent) or \
                    time.monotonic() > deadline:
                return leaked, silent, busy
            time.sleep(5)

    # --- clean up (after the count) ------------------------------------
    def cleanup(self):
        errors = []
        for node_uuid in sorted(self.known - self.deleted):
            try:
                n = self.node(node_uuid)
                if n.provision_state in NOVA_RECOVERS \
                        and not n.maintenance:
                    self.api(self.ironic.node.set_provision_state,
                             node_uuid, 'deleted')
                    self.wait_state(node_uuid, 'available', timeout=120)
                self.api(self.ironic.node.set_maintenance, node_uuid, True)
                self.api(self.ironic.node.delete, node_uuid)
            except Exception as e:
                errors.append('node %s: %s' % (node_uuid, e))
        for hn in self.hil_nodes:
            try:
                errors += self.net.unregister(hn)
            except Exception as e:
                errors.append('HIL node %s: %s' % (hn.name, e))
        if self.image and self.library is not None:
            try:
                self.library.delete(self.image)
            except Exception as e:
                errors.append('image %s: %s' % (self.image, e))
        if self.base:
            try:
                self._remove_base()
            except Exception as e:
                errors.append('rbd %s: %s' % (self.base, e))
        return errors


def run(args, tally):
    rng = random.Random(args.seed)
    lab = Lab()
    faults = [f for f in args.faults if f]
    say('seed=%d cycles=%d nodes=%d fault rate %.2f, faults %s; gateways '
        '%s, conductors %s, HIL %s', args.seed, args.cycles, args.nodes,
        args.fault_rate, ','.join(faults), ','.join(lab.gateways),
        ','.join(lab.conductors), 'yes' if lab.has_hil else 'no')
    soak = Soak(lab, rng, tally, op_timeout=args.op_timeout)
    try:
        soak.setup(args.nodes)
        deadline = time.monotonic() + args.time
        rnd = 0
        # Faults are dealt from a shuffled deck of every kind, dealt again
        # when empty: a short soak meets each kind before any repeats.
        deck = []
        while tally.cycles < args.cycles:
            if time.monotonic() > deadline:
                say('time budget of %ds spent after %d cycles',
                    args.time, tally.cycles)
                break
            rnd += 1
            fault = None
            if faults and rng.random() < args.fault_rate:
                if not deck:
                    deck = rng.sample(faults, len(faults))
                fault = deck.pop()
            if fault == 'node_delete':
                # On a node at rest (ACTIVE): before the round's
                # operations, which would give it one.
                tally.faults += 1
                try:
                    what = soak_fault(Faults(lab, rng, soak), fault)
                except Exception as e:
                    what = 'could not be injected: %s' % e
                say('round %d fault %s: %s', rnd, fault, what)
                fault = None
            soak.start_ops()
            if fault:
                time.sleep(rng.uniform(0, 0.5))
                tally.faults += 1
                t0 = time.monotonic()
                try:
                    what = soak_fault(Faults(lab, rng, soak), fault)
                except Exception as e:
                    what = 'could not be injected/undone: %s' % e
                say('round %d fault %s: %s (%.1f s)', rnd, fault, what,
                    time.monotonic() - t0)
            soak.finish_ops()
            soak.recover()
            if not soak.slots:
                say('no node slot left')
                break
        say('%d cycles done; settling (up to %ds)', tally.cycles,
            args.settle)
        leaked, silent, busy = soak.settle(args.settle)
        for node_uuid in busy:
            tally.operator += 1
            say('OPERATOR node %s still busy after settling', node_uuid)
        for node_uuid in silent:
            tally.operator += 1
            say('OPERATOR node %s is ACTIVE but no gateway serves its '
                'target', node_uuid)
        for row in leaked:
            say('LEAK %s of node %s: %s', row.kind, row.node, row.what)
        tally.leaked = len(leaked)
        say('leaks by kind: %s', ', '.join(
            '%s=%d' % kv for kv in census.summary(leaked).items()))
    finally:
        try:
            errors = soak.cleanup()
        except Exception as e:
            errors = ['%s: %s' % (type(e).__name__, e)]
        for err in errors:
            say('cleanup: %s', err)


def soak_fault(faults, kind):
    return faults.inject(kind)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m tools.lab.soak',
        description='Fault soak of the bmi plugin against the running lab.')
    parser.add_argument('--cycles', type=int,
                        default=env_int('SOAK_CYCLES', 200))
    parser.add_argument('--seed', type=int, default=env_int(
        'SOAK_SEED', random.SystemRandom().randrange(1 << 31)))
    parser.add_argument('--nodes', type=int,
                        default=env_int('SOAK_NODES', 4))
    parser.add_argument('--fault-rate', type=float,
                        default=env_float('SOAK_FAULT_RATE', 0.5))
    parser.add_argument('--faults', type=lambda s: s.split(','),
                        default=(os.environ.get('SOAK_FAULTS')
                                 or ','.join(FAULTS)).split(','))
    parser.add_argument('--time', type=int, default=env_int('SOAK_TIME',
                                                            3600))
    parser.add_argument('--op-timeout', type=int,
                        default=env_int('SOAK_OP_TIMEOUT', 300))
    parser.add_argument('--settle', type=int,
                        default=env_int('SOAK_SETTLE', 180))
    args = parser.parse_args(argv)
    unknown = set(f for f in args.faults if f) - set(FAULTS)
    if unknown:
        parser.error('unknown fault(s) %s (known: %s)'
                     % (', '.join(sorted(unknown)), ', '.join(FAULTS)))
    return args


def main(argv=None):
    args = parse_args(argv)
    tally = Tally()
    rc = 1
    try:
        run(args, tally)
        rc = 0 if tally.ok() else 1
    except Exception as e:
        say('aborted: %s: %s', type(e).__name__, e)
        # Nothing was counted after the abort: it needs a person.
        tally.operator += 1
    print(tally.line(), flush=True)
    return rc


if __name__ == '__main__':
    sys.exit(main())
