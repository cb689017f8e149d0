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

"""A real Neutron (neutron 29.0.0) API for the ``hil`` interface's VIFs.

Its venv is ``<state>/neutron/venv`` (``tools/install-deps.sh``, pinned by
``tools/lab/neutron-constraints.txt``): neutron, networking-baremetal (its
``baremetal`` ML2 mechanism driver and its ironic-neutron-agent), gunicorn
and PyMySQL.  No L2, DHCP or L3 agent: the switch is HIL's.

What was found, checked against neutron 29.0.0 / networking-baremetal 8.1.0
/ gunicorn 27.0.1 on Debian 12 (December 2026):

* There is no ``neutron-server`` any more: the API is the WSGI application
  ``neutron.wsgi.api:application``, served here by gunicorn on 127.0.0.1
  inside the lab's namespace.  Neutron parses ``sys.argv`` when the app is
  imported (``server.boot_server``) and refuses gunicorn's arguments: a
  one-line wrapper clears them; the config comes from
  ``OS_NEUTRON_CONFIG_FILES``.  gunicorn 27 opens a control socket in
  ``$HOME/.gunicorn`` (shared by every gunicorn of the machine):
  ``--no-control-socket``.
* sqlite does not work: ``neutron-db-manage upgrade heads`` fails with
  "No support for ALTER of constraints in SQLite dialect".  Neutron gets a
  MariaDB of its own (:class:`NeutronDB`, Debian's ``mariadb-server``,
  unix socket only).  The migrations take 10-35 s, so the migrated
  schema is dumped once per Neutron version and loaded at every start: a
  fresh database each run, as the other services have.
* With ``auth_strategy = noauth`` every caller without a project is an
  elevated (admin) context; but 29.0.0's default policy lets only the
  ``service`` role set ``binding:profile`` (what Ironic's service user
  has).  The lab's policy file makes the elevated noauth caller a service
  (``service_api``): it is the plugin's, as in a cloud.
* What binds a ``vnic_type=baremetal`` port: nothing in tree without an
  agent.  networking-baremetal's ``baremetal`` mechanism driver is an agent
  driver (``SimpleAgentMechanismDriverBase``): it binds only for a host
  that ironic-neutron-agent reports, with the segment's physnet among the
  physical_network of the node's Ironic ports, and then sets the port
  ACTIVE without touching a switch when local_link_information names no
  device it manages.  networking-generic-switch binds without an agent but
  configures the switch itself (netmiko/SSH to a device of its own
  config): a second controller of the ports HIL owns.  So the lab runs
  ironic-neutron-agent (:class:`BaremetalAgent`, after Ironic: it lists
  Ironic's ports) and, for its state reports, RabbitMQ
  (:class:`RabbitMQ`, Debian's ``rabbitmq-server``) and
  ``neutron-rpc-server``.  Without the agent (``python -m tools.lab start``
  without ``neutron-agent``) ports end ``binding_failed``.
* RabbitMQ 3.10 (Debian 12): ``rabbitmq-server`` starts ``epmd -daemon``,
  which outlives the broker; the lab starts ``epmd`` itself in the
  foreground (by pid) on 127.0.0.1 first.  Its cookie is read from
  ``$HOME``: HOME is the broker's state dir.
* ``dhcp_agent_notification = false``: with no DHCP agent, creating a
  network fails otherwise (the DHCP notifier indexes an empty agent list).
"""

import json
import os
import subprocess
import time
import urllib.error
import urllib.request

from tools.lab import multi
from tools.lab import service

PORT = 9696
AMQP_PORT = 5672
RABBIT_NODE = 'bmi@localhost'
_RABBIT_BIN = '/usr/lib/rabbitmq/bin'
# HIL's VLAN pool in the lab (tools/lab/hil_real.py write_config): the
# physnet's range, so that a Neutron segmentation id is a VLAN HIL could
# carry.  HIL 8c6de221 allocates a project network's VLAN itself, though
# (see bmi_driver/network/hil_vifs.py).
PHYSNET = 'lab'
VLAN_RANGE = (1001, 1099)

_WSGI = """\
# Written by tools/lab/neutron.py: neutron 29.0.0 parses sys.argv when its
# WSGI app is imported; gunicorn's arguments are not Neutron's.
import sys
sys.argv[1:] = []
from neutron.wsgi.api import application  # noqa
"""

_POLICY = """\
# Written by tools/lab/neutron.py: noauth's elevated caller (the plugin,
# no project) may do what Ironic's service user does (binding:profile).
"service_api": "role:service or is_admin:True"
"""

_CONF = """\
# Written by tools/lab/neutron.py.
[DEFAULT]
core_plugin = ml2
service_plugins =
auth_strategy = noauth
api_paste_config = {state}/api-paste.ini
transport_url = {transport_url}
dhcp_agent_notification = false
state_path = {state}
log_file = {log}
debug = false
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 1

[database]
connection = {db}

[oslo_concurrency]
lock_path = {state}/locks

[oslo_policy]
policy_file = {state}/policy.yaml

[ml2]
type_drivers = vlan
project_network_types = vlan
mechanism_drivers = baremetal
extension_drivers = port_security

[ml2_type_vlan]
network_vlan_ranges = {physnet}:{first}:{last}
"""


def _answers(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500
    except (urllib.error.URLError, OSError):
        return False


class NeutronDB(multi.MariaDB):
    """Neutron's own MariaDB (its socket in its state dir)."""

    name = 'neutron-db'
    db_name = 'neutron'
    db_user = 'neutron'


class _Epmd(service.Service):
    """Erlang's port mapper, in the foreground, on 127.0.0.1."""

    name = 'epmd'

    def start(self):
        self.spawn(['epmd', '-address', '127.0.0.1'])


class RabbitMQ(service.Service):
    """RabbitMQ for the agent's state reports (127.0.0.1 only)."""

    name = 'rabbitmq'
    stop_timeout = 30

    def __init__(self, state_dir):
        super().__init__(state_dir)
        self.epmd = _Epmd(state_dir)

    @property
    def url(self):
        return 'rabbit://guest:guest@127.0.0.1:%d/' % AMQP_PORT

    def _env(self):
        st = self.state_dir
        return dict(
            os.environ, HOME=st, RABBITMQ_NODENAME=RABBIT_NODE,
            RABBITMQ_NODE_IP_ADDRESS='127.0.0.1',
            RABBITMQ_NODE_PORT=str(AMQP_PORT), ERL_EPMD_ADDRESS='127.0.0.1',
            RABBITMQ_MNESIA_BASE=os.path.join(st, 'mnesia'),
            RABBITMQ_LOG_BASE=os.path.join(st, 'log'),
            RABBITMQ_PID_FILE=os.path.join(st, 'beam.pid'),
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(st, 'plugins'),
            RABBITMQ_CONFIG_FILE=os.path.join(st, 'rabbitmq'),
            RABBITMQ_ADVANCED_CONFIG_FILE=os.path.join(st, 'advanced.config'),
            RABBITMQ_CONF_ENV_FILE=os.path.join(st, 'rabbitmq-env.conf'),
            # The distribution port too: 127.0.0.1.
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=(
                '-kernel inet_dist_use_interface {127,0,0,1}'))

    def _ctl(self, *args):
        return subprocess.run(
            [os.path.join(_RABBIT_BIN, 'rabbitmqctl'), '-n', RABBIT_NODE]
            + list(args), env=self._env(), capture_output=True, text=True,
            timeout=60)

    def start(self):
        if self.is_running():
            return
        server = os.path.join(_RABBIT_BIN, 'rabbitmq-server')
        if not os.access(server, os.X_OK):
            raise service.ServiceError(
                '%s is missing: run tools/install-deps.sh' % server)
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        with open(os.path.join(self.state_dir, 'plugins'), 'w') as f:
            f.write('[].\n')
        open(os.path.join(self.state_dir, 'rabbitmq-env.conf'), 'w').close()
        self.epmd.start()
        self.spawn([server], env=self._env())
        service.wait_for(
            lambda: self.check_alive() and self._ctl(
                'status').returncode == 0,
            90, 0.5, 'RabbitMQ to answer')
        self.log('RabbitMQ on 127.0.0.1:%d', AMQP_PORT)

    def stop(self):
        if self.is_running():
            self._ctl('shutdown')
        super().stop()
        self.epmd.stop()


class _RPCServer(service.Service):
    """neutron-rpc-server: the agents' state reports reach ML2 there."""

    name = 'neutron-rpc-server'


class Neutron(service.Service):
    """neutron's API under gunicorn, ML2/vlan, on its own MariaDB."""

    name = 'neutron'
    stop_timeout = 20

    def __init__(self, state_dir, venv=None):
        super().__init__(state_dir)
        self.venv = venv or os.path.join(self.state_dir, 'venv')
        self.db = NeutronDB(os.path.join(self.state_dir, 'db'))
        self.rabbit = RabbitMQ(os.path.join(self.state_dir, 'rabbitmq'))
        self.rpc = _RPCServer(self.state_dir)

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % PORT

    @property
    def conf_path(self):
        return os.path.join(self.state_dir, 'neutron.conf')

    def is_running(self):
        return (super().is_running() and self.db.is_running()
                and self.rabbit.is_running() and self.rpc.is_running())

    def info(self):
        return dict(super().info(), running=self.is_running(), url=self.url,
                    physnet=PHYSNET, vlan_range=list(VLAN_RANGE),
                    conf=self.conf_path, venv=self.venv)

    def _version(self):
        out = subprocess.run(
            [os.path.join(self.venv, 'bin', 'python'), '-c',
             'import importlib.metadata as m; print(m.version("neutron"))'],
            capture_output=True, text=True, timeout=60, check=True)
        return out.stdout.strip()

    def _schema(self):
        """A migrated database: the cached dump, else the migrations."""
        dump = os.path.join(self.state_dir, 'schema-%s.sql'
                            % self._version())
        root = ['--no-defaults', '--socket=' + self.db.socket, '-u', 'root']
        if os.path.exists(dump):
            with open(dump, 'rb') as f:
                subprocess.run(['mariadb'] + root + [self.db.db_name],
                               stdin=f, check=True, timeout=120,
                               capture_output=True)
            return
        self.run([os.path.join(self.venv, 'bin', 'neutron-db-manage'),
                  '--config-file', self.conf_path, 'upgrade', 'heads'],
                 timeout=600)
        with open(dump + '.tmp', 'wb') as f:
            subprocess.run(['mariadb-dump'] + root + [self.db.db_name],
                           stdout=f, check=True, timeout=120)
        os.replace(dump + '.tmp', dump)

    def start(self):
        if self.is_running():
            self.log('already running (%s)', self.url)
            return
        gunicorn = os.path.join(self.venv, 'bin', 'gunicorn')
        if not os.access(gunicorn, os.X_OK):
            raise service.ServiceError(
                '%s is missing: run tools/install-deps.sh' % gunicorn)
        if _answers(self.url + '/'):
            raise service.ServiceError('something else answers on %s'
                                       % self.url)
        os.makedirs(os.path.join(self.state_dir, 'locks'), mode=0o700,
                    exist_ok=True)
        self.db.start()
        try:
            self.rabbit.start()
            self._start_api()
        except Exception:
            self.stop()
            raise
        self.log('Neutron on %s (ML2 vlan %s:%d-%d, noauth)', self.url,
                 PHYSNET, *VLAN_RANGE)

    def _start_api(self):
        paste = os.path.join(self.venv, 'etc', 'neutron', 'api-paste.ini')
        with open(paste) as f:
            text = f.read()
        with open(os.path.join(self.state_dir, 'api-paste.ini'), 'w') as f:
            f.write(text)
        with open(os.path.join(self.state_dir, 'lab_neutron_wsgi.py'),
                  'w') as f:
            f.write(_WSGI)
        with open(os.path.join(self.state_dir, 'policy.yaml'), 'w') as f:
            f.write(_POLICY)
        # It holds the database password: 0600.
        fd = os.open(self.conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(_CONF.format(state=self.state_dir, log=self.log_path,
                                 db=self.db.database_url(), physnet=PHYSNET,
                                 first=VLAN_RANGE[0], last=VLAN_RANGE[1],
                                 transport_url=self.rabbit.url))
        self._schema()
        self.rpc.spawn([os.path.join(self.venv, 'bin', 'neutron-rpc-server'),
                        '--config-file', self.conf_path],
                       log_path=os.path.join(self.state_dir, 'rpc.log'))
        env = dict(os.environ, OS_NEUTRON_CONFIG_FILES=self.conf_path)
        proc = self.spawn(
            [os.path.join(self.venv, 'bin', 'gunicorn'),
             '--no-control-socket', '--chdir', self.state_dir,
             '--bind', '127.0.0.1:%d' % PORT, '--workers', '1',
             '--timeout', '120', 'lab_neutron_wsgi:application'],
            env=env, log_path=os.path.join(self.state_dir,
                                           'gunicorn.log'))
        deadline = time.monotonic() + 120
        while not self._ready():
            if not service.pid_alive(proc.pid):
                self._forget()
                raise service.ServiceError('neutron exited: see %s'
                                           % self.log_path)
            if time.monotonic() > deadline:
                raise service.ServiceError('neutron did not answer within '
                                           '120 s: see %s' % self.log_path)
            time.sleep(0.5)

    def _ready(self):
        """The API answers (the plugin is loaded: networks list)."""
        try:
            with urllib.request.urlopen(self.url + '/v2.0/networks',
                                        timeout=5) as resp:
                return 'networks' in json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def stop(self):
        super().stop()
        self.rpc.stop()
        self.rabbit.stop()
        self.db.stop()


_AGENT_CONF = """\
# Written by tools/lab/neutron.py.
[DEFAULT]
transport_url = {transport_url}
log_file = {log}
debug = false

[AGENT]
# Seconds between two reports of every node's agent (default 30): a node
# enrolled by a test is bindable this soon.
report_interval = 2

[ironic]
auth_type = none
endpoint_override = {ironic}

[neutron]
auth_type = none
endpoint_override = {neutron}
"""


class BaremetalAgent(service.Service):
    """ironic-neutron-agent: reports an agent per Ironic node to Neutron.

    After Ironic (it lists Ironic's ports: a node's physnets are the
    physical_network of its ports).
    """

    name = 'neutron-agent'

    def __init__(self, state_dir, neutron_dir, services_json):
        super().__init__(state_dir)
        self.neutron = Neutron(neutron_dir)
        self.services_json = services_json

    def start(self):
        if self.is_running():
            return
        from tools.lab import state as lab_state
        env = lab_state.load_services(self.services_json)
        ironic = env['services']['ironic']
        if not (ironic.get('running') and self.neutron.is_running()):
            raise service.ServiceError('neutron-agent needs ironic and '
                                       'neutron running')
        conf = os.path.join(self.state_dir, 'agent.conf')
        with open(conf, 'w') as f:
            f.write(_AGENT_CONF.format(
                transport_url=self.neutron.rabbit.url, log=self.log_path,
                ironic=ironic['url'], neutron=self.neutron.url))
        self.spawn([os.path.join(self.neutron.venv, 'bin',
                                 'ironic-neutron-agent'),
                    '--config-file', conf],
                   log_path=os.path.join(self.state_dir, 'agent.out'))
        time.sleep(1)
        self.check_alive()
        self.log('ironic-neutron-agent for %s', ironic['url'])
