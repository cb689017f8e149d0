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

"""The shared tgtd (tgt 1.0.85 with its RBD backing store)."""

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
                 extra_portals=()):
        super().__init__(state_dir)
        self.portal = (portal or os.environ.get('BMI_TGTD_PORTAL')
                       or lab_state.TGTD_PORTAL)
        # The nodes' portals: the gateway's address on each project boot
        # network (tgtd takes one --iscsi portal=, the rest through
        # tgtadm --mode portal --op new, tgt 1.0.85).
        self.extra_portals = list(extra_portals)
        # -t: fewer worker threads per LUN (each RBD LUN has its own rados
        # client, about 31 threads with tgtd's default).
        self.threads = int(threads or os.environ.get('BMI_TGTD_THREADS', 4))

    @property
    def log_path(self):
        return os.path.join(self.state_dir, 'log', 'tgtd.log')

    def info(self):
        return dict(super().info(), portal=self.portal,
                    portals=[self.portal] + self.extra_portals)

    def portals(self):
        """The portals tgtd listens on, as it says (``ADDR:PORT``)."""
        shown = _tgtadm('--mode', 'portal', '--op', 'show').stdout
        return re.findall(r'^Portal: (\S+),\d+\s*$', shown, re.M)

    @staticmethod
    def answers():
        """Whether a tgtd answers on the default control port."""
        return _tgtadm('--mode', 'system', '--op', 'show').returncode == 0

    def start(self):
        if self.is_running():
            return
        if self.answers():
            raise service.ServiceError(
                'a tgtd that is not ours already runs: stop it first')
        self.spawn(['tgtd', '-f', '-t', str(self.threads),
                    '--iscsi', 'portal=%s' % self.portal])
        service.wait_for(lambda: self.check_alive() and self.answers(), 5,
                         0.1, 'tgtd to answer (see %s)' % self.log_path)
        for portal in self.extra_portals:
            proc = _tgtadm('--mode', 'portal', '--op', 'new', '--param',
                           'portal=' + portal)
            if proc.returncode:
                self.stop()
                raise service.ServiceError('tgtd: portal %s: %s' % (
                    portal, (proc.stderr or proc.stdout).strip()))
        self.log('tgtd on %s', ', '.join(
            self.portals() or [self.portal] + self.extra_portals))

    def stop(self):
        pid = self.pid()
        if pid is not None:
            # SIGTERM is not reliable for tgtd, and it refuses to exit
            # while it has targets: delete them (closing their RBD images,
            # so no watch lingers), then ask it to exit.
            shown = _tgtadm('--mode', 'target', '--op', 'show').stdout
            for tid in re.findall(r'^Target (\d+):', shown, re.M):
                _tgtadm('--mode', 'target', '--op', 'delete', '--force',
                        '--tid', tid)
            _tgtadm('--mode', 'system', '--op', 'delete')
            try:
                service.wait_for(lambda: not service.pid_alive(pid), 5, 0.1)
            except service.ServiceError:
                service.stop_pid(pid, timeout=0, sig=9)
            self.log('stopped (pid %d)', pid)
        self._forget()
