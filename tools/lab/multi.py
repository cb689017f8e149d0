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

"""The multi-conductor lab (issue 12): Ironic the way a cloud runs it.

Selected by ``BMI_LAB_CONDUCTORS=2`` (``conductors()``); the default lab
stays the single Ironic all-in-one on sqlite. In this mode the lab runs,
all inside the lab's namespace:

* ``mariadb``: MariaDB 10.11 (Debian), Ironic's database, on a unix
  socket only (``--skip-networking``); database ``ironic`` made afresh at
  every start, its user's password in a 0600 file;
* ``etcd``: etcd 3.4 (Debian) on 127.0.0.1:2379, the plugin's tooz
  backend (``etcd3+http``, the etcd3gw driver), fresh at every start;
* ``tgtd-K``: conductor K's own gateway: ``tgtd -C K`` (its own
  management socket), portals 127.0.0.K:3260 (the lab's own initiators)
  and 10.78.N.K:3260 on every project boot network;
* ``ironic-api``: ``ironic-api`` alone, JSON-RPC to the conductors;
* ``conductor-K``: ``ironic-conductor`` with ``[DEFAULT] host``
  ``127.0.1.K``, its JSON-RPC server on ``[json_rpc] host_ip`` 127.0.1.K
  and the default port 8089, so that Ironic knows it as plain
  ``127.0.1.K`` (``conductor_host()`` says why no other port). Its own
  ``bmi.conf``: its tgtd's control port and portal, etcd for locks, the
  registry that gives every conductor's gateway per project.

``services.json`` says under ``multi`` where each is (``info()``).
"""

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from tools import lab
from tools.lab import config
from tools.lab import labnet
from tools.lab import service
from tools.lab import state as lab_state

API_PORT = 6385
ETCD_PORT = 2379
ETCD_PEER_PORT = 2380
# Ironic 39.0.0's default [json_rpc] port; every conductor keeps it (on
# an address of its own): see conductor_host().
JSON_RPC_PORT = 8089
DB_NAME = 'ironic'
DB_USER = 'ironic'
# The plugin's repair timing in this lab: its nodes are all Ironic's (no
# test makes clones behind Ironic's back here, unlike the all-in-one
# lab's functional suite), so a deleted node's leftovers may go after a
# short grace, and the soak (tools/lab/soak.py) settles within its
# SOAK_SETTLE. Production defaults: 30 s, 300 s, 60 s, 60 s.
REPAIR_TIMING = {
    'bmi': [('reconcile_interval', 5), ('orphan_grace', 15)],
    'ceph': [('sweep_interval', 15)],
    'hil': [('cleanup_interval', 15)],
}


def repair_timing():
    """The plugin's repair timing for this lab's conductors.

    ``REPAIR_TIMING`` (the soak's and tests/multi's), or the production
    defaults with ``BMI_LAB_REPAIR_TIMING=default``: ``tools/bench`` starts
    the lab so, because the periodic reconcile every 5 s (each run asks
    the gateway for every target of every ACTIVE node it serves) is a
    test's setting that an operator does not use, and Ironic's fake
    deploy, which the bench compares with, has no periodic at all.
    """
    value = os.environ.get('BMI_LAB_REPAIR_TIMING') or 'lab'
    if value == 'default':
        return {}
    if value != 'lab':
        raise ValueError('BMI_LAB_REPAIR_TIMING=%r: "lab" or "default"'
                         % value)
    return REPAIR_TIMING


def conductors():
    """How many conductors the lab runs: ``$BMI_LAB_CONDUCTORS``, 1."""
    value = os.environ.get('BMI_LAB_CONDUCTORS') or '1'
    try:
        n = int(value)
    except ValueError:
        raise ValueError('BMI_LAB_CONDUCTORS=%r is not a number' % value)
    if not 1 <= n <= 2:
        raise ValueError('BMI_LAB_CONDUCTORS=%d: the lab runs 1 or 2 '
                         'conductors' % n)
    return n


def conductor_address(k):
    """Conductor K's ``[DEFAULT] host`` and JSON-RPC address: 127.0.1.K.

    Ironic 39.0.0's JSON-RPC client dials a conductor at its host name,
    and both conductors share the namespace's loopback: each has an
    address of its own there (all of 127/8 is local), so both listen on
    the same port.
    """
    return '127.0.1.%d' % int(k)


def conductor_host(k):
    """Conductor K's name in Ironic: ``127.0.1.K``, its ``[DEFAULT] host``.

    Not ``<host>:<port>``: Ironic 39.0.0 registers a conductor whose
    ``[json_rpc] port`` is not 8089 as ``<host>:<port>``
    (``BaseConductorManager.prepare_host`` rewrites ``self.host``), but
    its ``TaskManager`` reserves nodes as ``CONF.host`` alone
    (``conductor/task_manager.py``, ``Node.reserve(context, CONF.host,
    ...)``). The restarted conductor then clears the reservations of
    ``<host>:<port>`` only (``clear_node_reservations_for_conductor``),
    and ``_check_orphan_nodes`` looks for those of offline conductors by
    their registered ``<host>:<port>``: a node a killed conductor had
    reserved stays locked by ``<host>`` for ever (HTTP 409). On the
    default port both names are the same: every conductor keeps 8089 on
    its own address (``[json_rpc] host_ip``), as a cloud with one
    conductor per machine does (README, "Several conductors and
    gateways").
    """
    return conductor_address(k)


def json_rpc_port(k):
    """Conductor K's JSON-RPC port: Ironic's default for all of them."""
    return JSON_RPC_PORT


def hosts(n):
    return [conductor_host(k) for k in range(1, n + 1)]


def tgtd_portal(k):
    """tgtd-K's portal for the lab's own initiators (127.0.0.K)."""
    return '127.0.0.%d:3260' % int(k)


def _get(url, timeout=5):
    req = urllib.request.Request(
        url, headers={'X-OpenStack-Ironic-API-Version': 'latest'})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read()


class MariaDB(service.Service):
    """MariaDB on a unix socket in its state dir; database ``db_name``."""

    name = 'mariadb'
    stop_timeout = 60
    #: the database and its user (the lab's Neutron has its own server)
    db_name = DB_NAME
    db_user = DB_USER

    @property
    def datadir(self):
        return os.path.join(self.state_dir, 'data')

    @property
    def socket(self):
        return os.path.join(self.state_dir, 'mysqld.sock')

    @property
    def password_file(self):
        return os.path.join(self.state_dir, '%s.password' % self.db_user)

    def database_url(self):
        """SQLAlchemy's URL for Ironic (PyMySQL); it holds the password."""
        password = labnet.secret_file(self.password_file)
        return ('mysql+pymysql://%s:%s@localhost/%s?unix_socket=%s'
                '&charset=utf8' % (self.db_user, urllib.parse.quote(password),
                                   self.db_name, self.socket))

    def info(self):
        return dict(super().info(), socket=self.socket, database=self.db_name,
                    user=self.db_user, password_file=self.password_file)

    def _client(self, sql, check=True):
        """Run ``sql`` as MariaDB's root (unix socket auth), on stdin."""
        proc = subprocess.run(
            ['mariadb', '--no-defaults', '--socket=' + self.socket,
             '-u', 'root', '--batch'], input=sql, capture_output=True,
            text=True, timeout=60)
        if check and proc.returncode:
            # Not the SQL: it may hold the password.
            raise service.ServiceError('mariadb client failed: %s'
                                       % proc.stderr.strip()[-500:])
        return proc

    def start(self):
        if self.is_running():
            return
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        if not os.path.isdir(os.path.join(self.datadir, 'mysql')):
            shutil.rmtree(self.datadir, ignore_errors=True)
            self.run(['mariadb-install-db', '--no-defaults',
                      '--datadir=' + self.datadir, '--user=root',
                      '--auth-root-authentication-method=socket',
                      '--skip-test-db'], timeout=120)
        # Conductors and the API each keep a pool of connections.
        self.spawn(['mariadbd', '--no-defaults', '--user=root',
                    '--datadir=' + self.datadir, '--socket=' + self.socket,
                    '--pid-file=' + os.path.join(self.state_dir,
                                                 'mariadbd.pid'),
                    '--skip-networking', '--max-connections=500',
                    '--innodb-buffer-pool-size=128M',
                    '--innodb-flush-log-at-trx-commit=2',
                    '--log-error=' + os.path.join(self.state_dir,
                                                  'error.log')])
        service.wait_for(
            lambda: self.check_alive() and self._client(
                'SELECT 1;', check=False).returncode == 0,
            60, 0.3, 'MariaDB to answer on %s' % self.socket)
        password = labnet.secret_file(self.password_file)
        # A fresh database every run, as HIL's is. The password reaches
        # the client on stdin only.
        self._client(
            "DROP DATABASE IF EXISTS {db};\n"
            "CREATE DATABASE {db} CHARACTER SET utf8;\n"
            "CREATE USER IF NOT EXISTS '{user}'@'localhost';\n"
            "ALTER USER '{user}'@'localhost' IDENTIFIED BY '{pw}';\n"
            "GRANT ALL PRIVILEGES ON {db}.* TO '{user}'@'localhost';\n"
            "FLUSH PRIVILEGES;\n".format(db=self.db_name, user=self.db_user,
                                         pw=password))
        self.log('MariaDB on %s, database %s', self.socket, self.db_name)


class Etcd(service.Service):
    """etcd 3.4 on the namespace's 127.0.0.1, one member, fresh data."""

    name = 'etcd'

    @property
    def client_url(self):
        return 'http://127.0.0.1:%d' % ETCD_PORT

    @property
    def tooz_url(self):
        # tooz's etcd3gw driver; etcd 3.4 serves the /v3/ gateway.
        return 'etcd3+http://127.0.0.1:%d?api_version=v3' % ETCD_PORT

    def info(self):
        return dict(super().info(), url=self.client_url,
                    tooz_url=self.tooz_url)

    def healthy(self):
        try:
            return json.loads(_get(self.client_url + '/health')).get(
                'health') == 'true'
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def start(self):
        if self.is_running():
            return
        data = os.path.join(self.state_dir, 'data')
        shutil.rmtree(data, ignore_errors=True)
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        peer = 'http://127.0.0.1:%d' % ETCD_PEER_PORT
        self.spawn(['etcd', '--name', 'lab', '--data-dir', data,
                    '--listen-client-urls', self.client_url,
                    '--advertise-client-urls', self.client_url,
                    '--listen-peer-urls', peer,
                    '--initial-advertise-peer-urls', peer,
                    '--initial-cluster', 'lab=' + peer,
                    '--initial-cluster-state', 'new'])
        service.wait_for(lambda: self.check_alive() and self.healthy(), 60,
                         0.3, 'etcd to be healthy on %s' % self.client_url)
        self.log('etcd on %s', self.client_url)


class _IronicProcess(service.Service):
    """What the API and the conductors share: the multi state dir."""

    stop_group = True
    stop_timeout = 30

    def __init__(self, multi_dir, services_json, n=2, debug=None):
        self.multi_dir = os.path.abspath(multi_dir)
        self.services_json = services_json
        self.n = int(n)
        if debug is None:
            debug = os.environ.get('BMI_IRONIC_DEBUG', 'false') == 'true'
        self.debug = debug
        super().__init__(self.state_dir_for())

    def state_dir_for(self):
        return self.multi_dir

    @property
    def ironic_conf(self):
        return os.path.join(self.multi_dir, 'ironic.conf')

    @property
    def boot_networks_file(self):
        return os.path.join(self.multi_dir, 'boot-networks.json')

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % API_PORT

    def env(self):
        return lab_state.load_services(self.services_json)

    def write_ironic_conf(self):
        env = self.env()
        db = MariaDB(env['services']['mariadb']['state_dir'])
        for d in ('httpboot', 'tftpboot', 'images', 'master_images',
                  'locks'):
            os.makedirs(os.path.join(self.multi_dir, d), exist_ok=True)
        # The database URL holds its password: 0600.
        config.write(self.ironic_conf, config.multi_ironic_conf(
            self.multi_dir, db.database_url(), API_PORT, self.debug),
            header='Written by tools.lab.multi: what the API and the '
                   'conductors share.', mode=0o600)

    def _spawn_ironic(self, command, conf_files):
        argv = [os.path.join(lab.VENV_BIN, command)]
        for path in conf_files:
            argv += ['--config-file', path]
        env = dict(os.environ)
        # As IronicAIO: librados needs more than Ironic's 128 KiB stacks.
        env.setdefault('IRONIC_THREAD_STACK_SIZE', '2097152')
        return self.spawn(argv, env=env)

    def _log_tail(self, lines=30):
        try:
            with open(self.log_path, 'rb') as f:
                return b''.join(f.readlines()[-lines:]).decode(
                    'utf-8', 'replace')
        except OSError:
            return ''


class IronicApi(_IronicProcess):
    """``ironic-api`` on 127.0.0.1:6385; runs ironic-dbsync first."""

    name = 'ironic-api'

    @property
    def env_path(self):
        return os.path.join(self.multi_dir, 'env.json')

    def info(self):
        return dict(super().info(), url=self.url,
                    conf=[self.ironic_conf], log=self.log_path)

    def answers(self):
        try:
            _get(self.url + '/')
            return True
        except (urllib.error.URLError, OSError):
            return False

    def start(self):
        if self.is_running():
            return
        if self.answers():
            raise service.ServiceError('something else already answers on '
                                       '%s' % self.url)
        os.makedirs(self.multi_dir, exist_ok=True)
        self.write_ironic_conf()
        # MariaDB's database is made afresh at its start.
        version = subprocess.run(
            [os.path.join(lab.VENV_BIN, 'ironic-dbsync'), '--config-file',
             self.ironic_conf, 'version'], capture_output=True, text=True)
        dbsync = ('create_schema' if version.stdout.strip() in ('', 'None')
                  else 'upgrade')
        proc = self.spawn([os.path.join(lab.VENV_BIN, 'ironic-dbsync'),
                           '--config-file', self.ironic_conf, dbsync])
        if proc.wait():
            self._forget()
            raise service.ServiceError('ironic-dbsync %s failed: see %s'
                                       % (dbsync, self.log_path))
        proc = self._spawn_ironic('ironic-api', [self.ironic_conf])
        try:
            service.wait_for(lambda: self.check_alive() and self.answers(),
                             120, 0.5, 'ironic-api on %s (see %s)'
                             % (self.url, self.log_path))
        except service.ServiceError:
            self.stop()
            raise
        with open(self.env_path, 'w') as f:
            json.dump({'url': self.url, 'pid': proc.pid,
                       'conf': [self.ironic_conf],
                       'http_root': os.path.join(self.multi_dir, 'httpboot'),
                       'boot_networks_file': self.boot_networks_file,
                       'log': self.log_path,
                       'conductors': hosts(self.n)}, f, indent=2)
        self.log('ironic-api on %s (pid %d, log %s)', self.url, proc.pid,
                 self.log_path)

    def stop(self):
        super().stop()
        try:
            os.unlink(self.env_path)
        except FileNotFoundError:
            pass


class Conductor(_IronicProcess):
    """``ironic-conductor`` K, with its own bmi.conf and gateway."""

    start_timeout = 180

    def __init__(self, multi_dir, services_json, k, n=2, debug=None):
        self.k = int(k)
        self.name = 'conductor-%d' % self.k
        super().__init__(multi_dir, services_json, n, debug)

    def state_dir_for(self):
        return os.path.join(self.multi_dir, 'conductor-%d' % self.k)

    @property
    def host(self):
        return conductor_host(self.k)

    @property
    def conf_files(self):
        return [self.ironic_conf,
                os.path.join(self.state_dir, 'conductor.conf'),
                os.path.join(self.state_dir, 'bmi.conf')]

    def info(self):
        return dict(super().info(), host=self.host,
                    json_rpc_port=json_rpc_port(self.k),
                    conf=self.conf_files, log=self.log_path,
                    tgtd='tgtd-%d' % self.k,
                    tgtadm_control_port=self.k,
                    portal=tgtd_portal(self.k))

    def write_conf(self):
        env = self.env()
        self.write_ironic_conf()
        os.makedirs(os.path.join(self.state_dir, 'bmi'), exist_ok=True)
        os.makedirs(os.path.join(env['state_dir'], 'locks'), exist_ok=True)
        config.write(self.conf_files[1], config.conductor_conf(
            conductor_address(self.k), json_rpc_port(self.k)),
            header='Written by tools.lab.multi: conductor %d.' % self.k)
        registry = labnet.write_registry(self.boot_networks_file,
                                         env['state_dir'], hosts(self.n))
        etcd = env['services']['etcd']
        if not etcd.get('running'):
            raise service.ServiceError('etcd does not run: start it first')
        address, port = tgtd_portal(self.k).rsplit(':', 1)
        config.write(self.conf_files[2], config.bmi_conf(
            env, os.path.join(self.state_dir, 'bmi'),
            self._hil_conf(env), boot_networks_file=registry,
            boot_file_group=labnet.HTTP_USER,
            iscsi={'portal_address': address, 'portal_port': int(port),
                   'tgtadm_control_port': self.k},
            coordination_url=etcd['tooz_url'], extra=repair_timing()),
            header='Written by tools.lab.multi: conductor %d\'s plugin.'
                   % self.k, mode=0o600)

    @staticmethod
    def _hil_conf(env):
        hil = lab_state.read_env(env['hil_state'], 'HIL')
        with open(hil['user_password_file']) as f:
            password = f.read().strip()
        return {'url': hil['url'], 'username': hil['user'],
                'password': password}

    def offers_bmi(self):
        """Whether the API lists this conductor among the bmi hosts."""
        try:
            drivers = json.loads(_get(self.url + '/v1/drivers?type=dynamic'))
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return any(d.get('name') == 'bmi' and self.host in d.get('hosts', ())
                   for d in drivers.get('drivers', []))

    def start(self):
        if self.is_running():
            return
        os.makedirs(self.state_dir, exist_ok=True)
        self.write_conf()
        proc = self._spawn_ironic('ironic-conductor', self.conf_files)
        deadline = time.monotonic() + self.start_timeout
        while not self.offers_bmi():
            if not service.pid_alive(proc.pid) or (
                    time.monotonic() > deadline):
                self.stop()
                raise service.ServiceError(
                    '%s did not register with the bmi hardware type: see '
                    '%s\n%s' % (self.name, self.log_path, self._log_tail()))
            time.sleep(1)
        self.log('%s as host %s (pid %d, tgtd -C %d, log %s)', self.name,
                 self.host, proc.pid, self.k, self.log_path)
