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

"""tgtd (tgt 1.0.85 with its RBD backing store).

The single lab runs one (``tgtd``, control port 0); the multi-conductor
lab one per conductor (``tgtd-1``, ``tgtd-2``: ``tgtd -C K``, each its own
management socket ``/var/run/tgtd/socket.K`` and its own portals), every
``tgtadm`` call of a service going to its own control port.
"""

import os
import re
import subprocess

from tools.lab import service
from tools.lab import state as lab_state


def _tgtadm(*args, control_port=None):
    argv = ['tgtadm', '--lld', 'iscsi']
    if control_port is not None:
        argv += ['-C', str(control_port)]
    return subprocess.run(argv + list(args), capture_output=True,
                          text=True)


class Tgtd(service.Service):
    name = 'tgtd'

    def __init__(self, state_dir, portal=None, threads=None,
                 extra_portals=(), control_port=0, name=None):
        super().__init__(state_dir)
        if name:
            self.name = name
        self.control_port = int(control_port)
        self.portal = (portal or os.environ.get('BMI_TGTD_PORTAL')
                       or lab_state.TGTD_PORTAL)
        # The nodes' portals: the gateway's address on each project boot
        # network (tgtd takes one --iscsi portal=, the rest through
        # tgtadm --mode portal --op new, tgt 1.0.85).
        self.extra_portals = list(extra_portals)
        # -t: fewer worker threads per LUN (each RBD LUN has its own rados
        # client, about 31 threads with tgtd's default). The lab keeps 4:
        # its scale tests export a hundred LUNs on two cores. The README
        # recommends -t 16 for a gateway (sequential reads 0.69x librbd
        # with -t 4, up to 0.87x with 16: doc/export.md); tools/bench_export
        # starts its own tgtd with 16.
        self.threads = int(threads or os.environ.get('BMI_TGTD_THREADS', 4))

    @property
    def log_path(self):
        return os.path.join(self.state_dir, 'log', '%s.log' % self.name)

    def info(self):
        return dict(super().info(), portal=self.portal,
                    portals=[self.portal] + self.extra_portals,
                    control_port=self.control_port)

    def tgtadm(self, *args):
        """``tgtadm --lld iscsi -C <our control port> ARGS``."""
        return _tgtadm(*args, control_port=self.control_port)

    def portals(self):
        """The portals tgtd listens on, as it says (``ADDR:PORT``)."""
        shown = self.tgtadm('--mode', 'portal', '--op', 'show').stdout
        return re.findall(r'^Portal: (\S+),\d+\s*$', shown, re.M)

    def targets(self):
        """The IQNs of the targets this tgtd serves."""
        shown = self.tgtadm('--mode', 'target', '--op', 'show').stdout
        return re.findall(r'^Target \d+: (\S+)\s*$', shown, re.M)

    def answers(self):
        """Whether a tgtd answers on our control port."""
        return self.tgtadm('--mode', 'system', '--op',
                           'show').returncode == 0

    def start(self):
        if self.is_running():
            return
        if self.answers():
            raise service.ServiceError(
                'a tgtd that is not ours already runs: stop it first')
        self.spawn(['tgtd', '-f', '-C', str(self.control_port),
                    '-t', str(self.threads),
                    '--iscsi', 'portal=%s' % self.portal])
        service.wait_for(lambda: self.check_alive() and self.answers(), 5,
                         0.1, 'tgtd to answer (see %s)' % self.log_path)
        for portal in self.extra_portals:
            proc = self.tgtadm('--mode', 'portal', '--op', 'new',
                               '--param', 'portal=' + portal)
            if proc.returncode:
                self.stop()
                raise service.ServiceError('tgtd: portal %s: %s' % (
                    portal, (proc.stderr or proc.stdout).strip()))
        self.log('tgtd -C %d on %s', self.control_port, ', '.join(
            self.portals() or [self.portal] + self.extra_portals))

    def stop(self):
        pid = self.pid()
        if pid is not None:
            # SIGTERM is not reliable for tgtd, and it refuses to exit
            # while it has targets: delete them (closing their RBD images,
            # so no watch lingers), then ask it to exit.
            shown = self.tgtadm('--mode', 'target', '--op', 'show').stdout
            for tid in re.findall(r'^Target (\d+):', shown, re.M):
                self.tgtadm('--mode', 'target', '--op', 'delete', '--force',
                            '--tid', tid)
            self.tgtadm('--mode', 'system', '--op', 'delete')
            try:
                service.wait_for(lambda: not service.pid_alive(pid), 5, 0.1)
            except service.ServiceError:
                service.stop_pid(pid, timeout=0, sig=9)
            self.log('stopped (pid %d)', pid)
        self._forget()
