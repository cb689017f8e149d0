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

"""A HIL-compatible test server (see ``server.py``), helpers to run it, and
its lab service (``HILEmulator``: ``python -m tools.lab start hil``).

From a test::

    from tools.lab import hil_emulator

    pid, url = hil_emulator.start_process(7001, '/tmp/x/hil.json', seed={
        'projects': ['p1'],
        'nodes': {'node1': {'nics': [{'label': 'eth0',
                                      'macaddr': '52:54:00:00:00:01',
                                      'switch': 'sw0', 'port': 'gi1/0/1'}]}},
        'networks': {'bmi-provisioning': {'owner': 'admin', 'access': []}}})
    ...
    hil_emulator.stop_process(pid)

The seed format is described in ``server.normalize_state``. ``Admin``
sets up and inspects a running server (its admin and debug routes).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import requests

from tools import lab
from tools.lab import service

# Children started here, so that stop_process can reap them.
_CHILDREN = {}


def start_process(port, state_path, seed=None, action_delay=None,
                  log_path=None, timeout=30):
    """Start ``python -m tools.lab.hil_emulator`` on 127.0.0.1:port.

    :param seed: a seed dict, or the path of a seed file; when given it
        replaces whatever ``state_path`` holds.
    :param log_path: file for the server's output (default: discarded).
    :returns: (pid, url) once the server accepts connections.
    :raises: RuntimeError if it exits or does not listen within timeout.
    """
    if seed is not None:
        if not isinstance(seed, dict):
            with open(seed) as f:
                seed = json.load(f)
        with open(state_path, 'w') as f:
            json.dump(seed, f)
    argv = [sys.executable, '-m', 'tools.lab.hil_emulator',
            '--port', str(port), '--state', state_path]
    if action_delay is not None:
        argv += ['--action-delay', str(action_delay)]
    out = open(log_path, 'ab') if log_path else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(argv, cwd=lab.REPO, stdout=out,
                                stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL,
                                start_new_session=True)
    finally:
        if log_path:
            out.close()
    _CHILDREN[proc.pid] = proc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _CHILDREN.pop(proc.pid, None)
            raise RuntimeError('HIL test server exited with %s (log: %s)'
                               % (proc.returncode, log_path))
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=1):
                return proc.pid, 'http://127.0.0.1:%d' % port
        except OSError:
            time.sleep(0.1)
    stop_process(proc.pid)
    raise RuntimeError('HIL test server did not listen on port %d within '
                       '%s s' % (port, timeout))


def _alive(pid):
    proc = _CHILDREN.get(pid)
    if proc is not None:
        return proc.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_process(pid, timeout=10):
    """Stop a server started by start_process (or the script) by pid."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        _CHILDREN.pop(pid, None)
        return
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    proc = _CHILDREN.pop(pid, None)
    if proc is not None:
        proc.wait()


class Admin(object):
    """A running server's admin side, for test set-up and assertions.

    :param url: the server's root URL, e.g. http://127.0.0.1:7000
    :param auth: (user, password) of an admin under database auth.
    """

    def __init__(self, url, auth=None, timeout=10):
        self.url = url.rstrip('/')
        self.auth = auth
        self.timeout = timeout

    def _call(self, method, path, body=None):
        resp = requests.request(
            method, self.url + path, auth=self.auth, timeout=self.timeout,
            data=None if body is None else json.dumps(body))
        if resp.status_code >= 400:
            raise RuntimeError('%s %s: HTTP %d %s' % (
                method, path, resp.status_code, resp.text[:300]))
        return json.loads(resp.text) if resp.text else None

    def state(self):
        """The whole state (see server.normalize_state)."""
        return self._call('GET', '/_debug/state')

    def networks(self, node):
        """{nic label: {channel: network}} of a node."""
        nics = self.state()['nodes'][node]['nics']
        return {label: nic['networks'] for label, nic in nics.items()}

    def project(self, node):
        return self.state()['nodes'][node]['project']

    def put_project(self, name):
        """Create a project unless it exists."""
        if name not in self.state()['projects']:
            self._call('PUT', '/v0/project/%s' % name)

    def put_network(self, name, owner='admin', access='', net_id=''):
        """Create a network unless it exists (access '': public)."""
        if name not in self.state()['networks']:
            self._call('PUT', '/v0/network/%s' % name,
                       {'owner': owner, 'access': access, 'net_id': net_id})

    def put_node(self, name, node):
        """Create or replace a node given as in the seed (nics cabled)."""
        self._call('PUT', '/_debug/node/%s' % name, node)

    def fail_switch(self, switch, fail=True):
        """Make the next actions on the switch's nics end in ERROR."""
        self._call('PUT', '/_debug/switch/%s' % switch, {'fail': fail})

    def set_action_delay(self, seconds):
        self._call('PUT', '/_debug/action_delay', {'seconds': seconds})


class HILEmulator(service.Service):
    """The HIL test server as a lab service, in ``state_dir``.

    State in ``hil-state.json`` (a ``seed`` file replaces it at start),
    log in ``hil.log``, pid in ``hil.pid``; ``env.json`` says
    ``{"url": ..., "pid": N, "state_file": ...}``.
    """

    name = 'hil'

    def __init__(self, state_dir, port=None, seed=None, start_timeout=30):
        super().__init__(state_dir)
        self.port = int(port or os.environ.get('BMI_HIL_PORT', 7000))
        self.seed = seed
        self.start_timeout = start_timeout

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.port

    @property
    def state_file(self):
        return os.path.join(self.state_dir, 'hil-state.json')

    @property
    def env_path(self):
        return os.path.join(self.state_dir, 'env.json')

    def info(self):
        return dict(super().info(), url=self.url)

    def start(self):
        pid = self.pid()
        if pid is not None:
            self.log('already running (pid %d)', pid)
            return
        os.makedirs(self.state_dir, exist_ok=True)
        try:
            with socket.create_connection(('127.0.0.1', self.port),
                                          timeout=1):
                raise service.ServiceError(
                    'port %d is taken by another process: set BMI_HIL_PORT'
                    % self.port)
        except OSError:
            pass  # nothing listens: good
        try:
            pid, url = start_process(self.port, self.state_file,
                                     seed=self.seed, log_path=self.log_path,
                                     timeout=self.start_timeout)
        except (RuntimeError, ValueError) as e:
            raise service.ServiceError('the HIL test server did not start: '
                                       '%s (see %s)' % (e, self.log_path))
        with open(self.pidfile, 'w') as f:
            f.write('%d\n' % pid)
        with open(self.env_path, 'w') as f:
            json.dump({'url': url, 'pid': pid,
                       'state_file': self.state_file}, f)
        self.log('HIL test server on %s (pid %d)', url, pid)

    def stop(self):
        pid = self.pid()
        if pid is not None:
            stop_process(pid)
            self.log('stopped (pid %d)', pid)
        self._forget()
        try:
            os.unlink(self.env_path)
        except FileNotFoundError:
            pass
