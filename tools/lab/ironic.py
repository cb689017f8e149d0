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

"""Ironic all-in-one (API + conductor in one ``ironic`` process) with the
bmi plugin, for the functional tests, the benchmarks and the demo.

``start`` writes ``ironic.conf`` and ``bmi.conf`` (``tools.lab.config``,
the latter from services.json) in its directory, runs ironic-dbsync,
starts ``ironic`` in a session of its own (pid in ``ironic.pid``, log in
``ironic.log``), waits until the API answers and the conductor offers the
bmi hardware type, and writes ``env.json``::

    {"url": ..., "pid": N, "conf": [files], "http_root": ..., "log": ...}

Extra configuration files come after ours (their settings win).
"""

import json
import os
import re
import time
import urllib.error
import urllib.request

from tools import lab
from tools.lab import config
from tools.lab import labnet
from tools.lab import service
from tools.lab import state as lab_state

# The conductor failed although the API runs: the log says so.
_CONDUCTOR_FAILED = re.compile(
    rb'Failed to register hardware types|'
    rb'Child [0-9]+ (killed by signal|exited with status)')


def _get(url):
    req = urllib.request.Request(
        url, headers={'X-OpenStack-Ironic-API-Version': 'latest'})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.read()


def _answers(url):
    try:
        _get(url)
        return True
    except (urllib.error.URLError, OSError):
        return False


class IronicAIO(service.Service):
    name = 'ironic'
    stop_group = True

    def __init__(self, state_dir, services_json=None, port=None,
                 hil_url=None, extra_conf=(), debug=None,
                 start_timeout=None, stop_timeout=None):
        super().__init__(state_dir)
        self.services_json = services_json
        self.port = int(port or os.environ.get('BMI_IRONIC_PORT', 6385))
        self.hil_url = hil_url
        self.extra_conf = [os.path.abspath(p) for p in extra_conf]
        if debug is None:
            debug = os.environ.get('BMI_IRONIC_DEBUG', 'false') == 'true'
        self.debug = debug
        self.start_timeout = int(
            start_timeout or os.environ.get('BMI_IRONIC_START_TIMEOUT', 180))
        self.stop_timeout = int(
            stop_timeout or os.environ.get('BMI_IRONIC_STOP_TIMEOUT', 30))

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.port

    @property
    def conf_files(self):
        return [os.path.join(self.state_dir, 'ironic.conf'),
                os.path.join(self.state_dir, 'bmi.conf')] + self.extra_conf

    @property
    def boot_networks_file(self):
        return os.path.join(self.state_dir, 'boot-networks.json')

    @property
    def env_path(self):
        return os.path.join(self.state_dir, 'env.json')

    def info(self):
        return dict(super().info(), url=self.url)

    def write_conf(self):
        """Render ironic.conf and bmi.conf from services.json."""
        env = lab_state.load_services(self.services_json)
        for key in ('ceph_conf', 'ceph_user', 'ceph_keyring',
                    'ceph_tgt_user', 'image_pool', 'glance_pool',
                    'tgtd_portal', 'state_dir'):
            if not env.get(key):
                raise service.ServiceError('services.json has no %s: start '
                                           'ceph and tgtd first' % key)
        for d in ('httpboot', 'tftpboot', 'images', 'master_images',
                  'locks', 'bmi'):
            os.makedirs(os.path.join(self.state_dir, d), exist_ok=True)
        os.makedirs(os.path.join(env['state_dir'], 'locks'), exist_ok=True)
        ironic_conf, bmi_conf = self.conf_files[:2]
        config.write(ironic_conf, config.ironic_conf(
            self.state_dir, self.port, self.debug),
            header='Written by tools.lab.ironic: Ironic all-in-one for '
                   "bmi_driver's lab.")
        # Per-project boot networks, the README's operator path: the
        # registry of the lab's projects (tools.lab.labnet).
        registry = labnet.write_registry(self.boot_networks_file,
                                         env['state_dir'])
        # The plugin's HIL user and its password: bmi.conf is 0600.
        config.write(bmi_conf, config.bmi_conf(
            env, os.path.join(self.state_dir, 'bmi'), self.hil_conf(env),
            boot_networks_file=registry,
            boot_file_group=labnet.HTTP_USER),
            header='Written by tools.lab.ironic from %s.'
                   % lab_state.services_path(self.services_json),
            mode=0o600)

    def hil_conf(self, env):
        """The plugin's HIL: the lab's real HIL, as its non-admin user.

        From HIL's env.json; ``hil_url`` overrides it (null auth).
        """
        if self.hil_url:
            return {'url': self.hil_url}
        hil = lab_state.read_env(env['hil_state'], 'HIL')
        with open(hil['user_password_file']) as f:
            password = f.read().strip()
        return {'url': hil['url'], 'username': hil['user'],
                'password': password}

    def start(self):
        pid = self.pid()
        if pid is not None:
            self.log('already running (pid %d, %s)', pid, self.url)
            return
        for extra in self.extra_conf:
            if not os.access(extra, os.R_OK):
                raise service.ServiceError('extra configuration file %s is '
                                           'not readable' % extra)
        os.makedirs(self.state_dir, exist_ok=True)
        self.write_conf()
        if _answers(self.url + '/'):
            raise service.ServiceError('something else already answers on '
                                       '%s' % self.url)
        conf_args = []
        for path in self.conf_files:
            conf_args += ['--config-file', path]
        dbsync = ('upgrade' if os.path.exists(
            os.path.join(self.state_dir, 'ironic.sqlite'))
            else 'create_schema')
        proc = self.spawn([os.path.join(lab.VENV_BIN, 'ironic-dbsync')]
                          + conf_args + [dbsync])
        if proc.wait():
            self._forget()
            raise service.ServiceError('ironic-dbsync %s failed: see %s'
                                       % (dbsync, self.log_path))
        log_from = os.path.getsize(self.log_path)
        # Ironic gives its threads 128 KiB stacks; librados' start-up (it
        # is loaded in a conductor thread with the bmi interfaces) needs
        # more: with 128 KiB the conductor dies of SIGSEGV in
        # libceph-common's get_global_options().
        env = dict(os.environ)
        env.setdefault('IRONIC_THREAD_STACK_SIZE', '2097152')
        proc = self.spawn([os.path.join(lab.VENV_BIN, 'ironic')] + conf_args,
                          env=env)
        try:
            self._wait_ready(proc.pid, log_from)
        except Exception:
            self.stop()
            raise
        with open(self.env_path, 'w') as f:
            json.dump({'url': self.url, 'pid': proc.pid,
                       'conf': self.conf_files,
                       'http_root': os.path.join(self.state_dir, 'httpboot'),
                       'boot_networks_file': self.boot_networks_file,
                       'log': self.log_path}, f, indent=2)
        self.log('Ironic on %s (pid %d, log %s)', self.url, proc.pid,
                 self.log_path)

    def _log_tail(self, lines=30):
        with open(self.log_path, 'rb') as f:
            return b''.join(f.readlines()[-lines:]).decode('utf-8',
                                                           'replace')

    def _wait_ready(self, pid, log_from):
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if not service.pid_alive(pid):
                raise service.ServiceError(
                    'ironic exited during start-up: see %s\n%s'
                    % (self.log_path, self._log_tail()))
            # The API outlives a conductor that could not start.
            with open(self.log_path, 'rb') as f:
                f.seek(log_from)
                m = _CONDUCTOR_FAILED.search(f.read())
            if m:
                raise service.ServiceError(
                    'the conductor did not start (%s): see %s'
                    % (m.group(0).decode(), self.log_path))
            # The conductor lists the hardware types it loaded once it has
            # registered; that is when nodes of type bmi can be enrolled.
            if self.offers_bmi():
                return
            time.sleep(1)
        raise service.ServiceError(
            'Ironic did not offer the bmi hardware type within %ss: see '
            '%s\n%s' % (self.start_timeout, self.log_path, self._log_tail()))

    def offers_bmi(self):
        try:
            drivers = json.loads(_get(self.url + '/v1/drivers?type=dynamic'))
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return any(d.get('name') == 'bmi'
                   for d in drivers.get('drivers', []))

    def stop(self):
        super().stop()
        try:
            os.unlink(self.env_path)
        except FileNotFoundError:
            pass
