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

"""The one-node Ceph cluster: ``tools/ceph-cluster.sh`` does the work.

Ceph's bootstrap is a sequence of its own command-line tools
(monmaptool, ceph-mon --mkfs, ceph-osd --mkfs, ceph auth ...); the script
stays a script because a shell is natural for that, and this service only
calls it. Its daemons daemonize themselves and record their pid files in
the cluster directory (``mon.a.pid``, ``osd.0.pid``, ``mgr.x.pid``);
``ceph-cluster.sh stop`` stops them by those pids.
"""

import os
import subprocess

from tools import lab
from tools.lab import service

SCRIPT = os.path.join(lab.REPO, 'tools', 'ceph-cluster.sh')


class Ceph(service.Service):
    name = 'ceph'
    pid_name = 'mon.a'
    DAEMONS = ('mon.a', 'osd.0', 'mgr.x')

    def _run(self, action):
        proc = subprocess.run([SCRIPT, action, self.state_dir])
        if proc.returncode:
            raise service.ServiceError('%s %s failed (exit code %d)'
                                       % (SCRIPT, action, proc.returncode))

    def is_running(self):
        return all(service.read_pid(os.path.join(self.state_dir,
                                                 '%s.pid' % d))
                   for d in self.DAEMONS)

    def start(self):
        # The script re-uses a cluster that is there and starts what is
        # not running.
        self._run('start')

    def stop(self):
        self._run('stop')

    def wipe(self):
        self._run('wipe')
