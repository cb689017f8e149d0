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

"""What every lab service is: a process (or a few) with a pid file.

A service knows its state directory, starts in the background with its
pid recorded there, says whether it runs (by that pid, never by name) and
stops by that pid. ``start`` is a no-op while it runs; ``stop`` is a no-op
when it does not. ``info()`` is what ``services.json`` records about it.

A new service (a network namespace, Open vSwitch, dnsmasq, nginx, the real
HIL...) subclasses ``Service``, sets ``name``, implements ``start`` and,
where TERM is not the way to stop it, ``stop``; then it is added to
``tools.lab.services.SERVICES``. Within ``start``:

* a daemon that stays in the foreground: ``self.spawn(argv)`` records its
  pid in ``pidfile``;
* one that daemonizes and writes its own pid file (``ovsdb-server
  --pidfile=...``, ``dnsmasq --pid-file=...``, ``nginx``'s ``pid``): point
  it at ``self.pidfile`` (or override ``pidfile``) and ``self.run(argv)``;
* a service with no process (a network namespace): override
  ``is_running`` and ``stop``; ``pid`` may stay None.

``netns``: when set (a namespace name), ``spawn`` and ``run`` execute
``argv`` inside that namespace (``ip netns exec NS ...``), so a whole lab
can live in one network namespace.
"""

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

from tools import lab


class ServiceError(Exception):
    """A service could not start or stop; the text says why."""


def http_answers(url):
    """Whether a server answers ``url`` with anything but a 5xx."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500
    except (urllib.error.URLError, OSError):
        return False


def wait_for(predicate, timeout, interval=0.2, what='condition'):
    """Poll ``predicate`` until it returns a true value; return that.

    :raises: ServiceError after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise ServiceError('timed out after %ss waiting for %s'
                               % (timeout, what))
        time.sleep(interval)


def pid_alive(pid):
    """Whether process ``pid`` runs; a zombie child of ours is reaped."""
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child: ask the kernel
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def read_pid(path):
    """The pid recorded in ``path`` if that process runs, else None."""
    try:
        with open(path) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def stop_pid(pid, timeout=10, group=False, sig=signal.SIGTERM):
    """Stop ``pid``: ``sig``, then SIGKILL after ``timeout`` seconds.

    ``group``: signal its process group. Returns True if it had to kill.
    """
    def send(s):
        try:
            if group:
                os.killpg(pid, s)
            else:
                os.kill(pid, s)
        except ProcessLookupError:
            pass
    send(sig)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        send(signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), 10, 0.1,
                 'pid %d to die' % pid)
        return True
    return False


class Service(object):
    """A lab service whose pid is ``<state_dir>/<pid_name>.pid``."""

    #: the name the CLI and services.json know it by
    name = None
    #: pid file name (without .pid); defaults to ``name``
    pid_name = None
    #: seconds between TERM and KILL
    stop_timeout = 10
    #: signal the whole process group (the service runs in its own session)
    stop_group = False

    def __init__(self, state_dir, netns=None):
        self.state_dir = os.path.abspath(state_dir)
        self.netns = netns

    def __repr__(self):
        return '<%s %s>' % (type(self).__name__, self.state_dir)

    # -- bookkeeping -----------------------------------------------------
    @property
    def pidfile(self):
        return os.path.join(self.state_dir,
                            '%s.pid' % (self.pid_name or self.name))

    @property
    def log_path(self):
        return os.path.join(self.state_dir, '%s.log' % self.name)

    def pid(self):
        """The running service's pid, or None."""
        return read_pid(self.pidfile)

    def is_running(self):
        return self.pid() is not None

    def info(self):
        """What services.json says about this service."""
        return {'running': self.is_running(), 'pid': self.pid(),
                'state_dir': self.state_dir}

    def log(self, fmt, *args):
        lab.say(self.name, fmt % args if args else fmt)

    # -- start / stop ----------------------------------------------------
    def start(self):
        raise NotImplementedError

    def stop(self):
        """Stop the recorded pid (TERM, then KILL); forget it."""
        pid = self.pid()
        if pid is not None:
            if stop_pid(pid, self.stop_timeout, group=self.stop_group):
                self.log('pid %d ignored TERM: killed', pid)
            else:
                self.log('stopped (pid %d)', pid)
        self._forget()

    def _forget(self):
        try:
            os.unlink(self.pidfile)
        except FileNotFoundError:
            pass

    def argv(self, argv):
        """``argv`` as run: inside ``netns`` when there is one."""
        argv = [str(a) for a in argv]
        if self.netns:
            return ['ip', 'netns', 'exec', self.netns] + argv
        return argv

    def run(self, argv, env=None, cwd=None, check=True, timeout=60):
        """Run a command to completion (in ``netns``).

        Its output is appended to the service's log. Returns the
        CompletedProcess.

        :raises: ServiceError if ``check`` and it fails.
        """
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        with open(self.log_path, 'ab') as out:
            proc = subprocess.run(self.argv(argv), stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=subprocess.STDOUT,
                                  env=env, cwd=cwd, timeout=timeout)
        if check and proc.returncode:
            raise ServiceError('%s failed (exit code %d): see %s'
                               % (argv[0], proc.returncode, self.log_path))
        return proc

    def spawn(self, argv, env=None, cwd=None, log_path=None):
        """Start ``argv`` (in ``netns``) in a session of its own.

        Its output goes to its log, its pid to ``pidfile``. Returns the
        Popen object.
        """
        argv = self.argv(argv)
        os.makedirs(self.state_dir, exist_ok=True)
        log_path = log_path or self.log_path
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        with open(log_path, 'ab') as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    env=env, cwd=cwd, start_new_session=True)
        with open(self.pidfile, 'w') as f:
            f.write('%d\n' % proc.pid)
        return proc

    def check_alive(self):
        """Raise ServiceError if the recorded process has exited."""
        if not self.is_running():
            raise ServiceError('%s exited: see %s'
                               % (self.name, self.log_path))
        return True
