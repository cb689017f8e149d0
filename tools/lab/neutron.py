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
``tools/lab/neutron-constraints.txt``): neutron, gunicorn and PyMySQL, and
this checkout installed editable (``pip install --no-deps -e``) for
bmi_driver's own ML2 mechanism driver ``bmi_hil``
(:mod:`bmi_driver.network.ml2_hil`).  No agents.

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
  unix socket only).  The migrations take about 35 s, so the migrated
  schema is dumped once per Neutron version and loaded at every start
  (about 1 s): a fresh database each run, as the other services have.
* With ``auth_strategy = noauth`` every caller without a project is an
  elevated (admin) context; but 29.0.0's default policy lets only the
  ``service`` role set ``binding:profile`` (what Ironic's service user
  has).  The lab's policy file makes the elevated noauth caller a service
  (``service_api``): it is the plugin's, as in a cloud.
* No message bus: ``transport_url = fake://`` (oslo.messaging's in-process
  driver).  The RPC casts to agents then reach nobody, and there are no
  agents; ``dhcp_agent_notification = false`` or creating a network
  fails (the DHCP notifier indexes an empty agent list).
* What binds a ``vnic_type=baremetal`` port with no agents: nothing in
  tree.  networking-baremetal's ``baremetal`` mechanism driver is an agent
  driver (``SimpleAgentMechanismDriverBase``): it binds only for a host
  that ironic-neutron-agent reports (over RPC, so RabbitMQ), and then sets
  the port ACTIVE without touching a switch when local_link_information
  names no device it manages.  networking-generic-switch binds without an
  agent but configures the switch itself (netmiko/SSH to a device in its
  own config): a second controller of the ports HIL owns.
  Tried (outside the lab, in a private network namespace, with RabbitMQ
  3.10, neutron-rpc-server and a real Ironic API): ironic-neutron-agent
  8.1.0 reported the node's agent (``Baremetal Node``, bridge_mappings of
  its ports' physical_network) within 5 s, and the port still ended
  ``binding_failed``: 8.1.0's ``try_to_bind_segment_for_agent`` returns
  False when no link of local_link_information is a device it manages
  ("let other drivers bind it"), although its comment says such a port
  "will be bound".  So ACTIVE needs a mechanism driver that owns the
  switch (not HIL's design) or one of our own.
* Resolution: bmi_driver ships that driver, ``bmi_hil``
  (:mod:`bmi_driver.network.ml2_hil`, entry point
  ``neutron.ml2.mechanism_drivers``).  It binds ``baremetal`` ports on
  VLAN segments of the physnets in ``[ml2_bmi_hil] physical_networks``
  (here ``lab``) as networking-generic-switch binds (``vif_type`` =
  ``other``), committed ACTIVE at once (``set_binding(..., status=
  ACTIVE)``), and configures no switch: the ``hil`` interface binds only
  after HIL connected the nic.  ``[ml2] mechanism_drivers = bmi_hil``
  alone (networking-baremetal is no longer installed), and Ironic's
  ``[neutron] fail_on_port_binding_failure`` keeps its default (true): a
  port that is not ACTIVE fails the deploy.
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
transport_url = fake://
dhcp_agent_notification = false
state_path = {state}
log_file = {log}
debug = false
api_workers = 1

[database]
connection = {db}

[oslo_concurrency]
lock_path = {state}/locks

[oslo_policy]
policy_file = {state}/policy.yaml

[ml2]
type_drivers = vlan
project_network_types = vlan
mechanism_drivers = bmi_hil
extension_drivers = port_security

[ml2_type_vlan]
network_vlan_ranges = {physnet}:{first}:{last}

# bmi_driver's ML2 driver (bmi_driver/network/ml2_hil.py): HIL owns the
# switch ports of this physnet.
[ml2_bmi_hil]
physical_networks = {physnet}
"""


class NeutronDB(multi.MariaDB):
    """Neutron's own MariaDB (its socket in its state dir)."""

    name = 'neutron-db'
    db_name = 'neutron'
    db_user = 'neutron'


class Neutron(service.Service):
    """neutron's API under gunicorn, ML2/vlan with bmi_hil, own MariaDB."""

    name = 'neutron'
    stop_timeout = 20

    def __init__(self, state_dir, venv=None):
        super().__init__(state_dir)
        self.venv = venv or os.path.join(self.state_dir, 'venv')
        self.db = NeutronDB(os.path.join(self.state_dir, 'db'))

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % PORT

    @property
    def conf_path(self):
        return os.path.join(self.state_dir, 'neutron.conf')

    def is_running(self):
        return super().is_running() and self.db.is_running()

    def info(self):
        return dict(super().info(), running=self.is_running(), url=self.url,
                    physnet=PHYSNET, vlan_range=list(VLAN_RANGE))

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
        if service.http_answers(self.url + '/'):
            raise service.ServiceError('something else answers on %s'
                                       % self.url)
        os.makedirs(os.path.join(self.state_dir, 'locks'), mode=0o700,
                    exist_ok=True)
        self.db.start()
        try:
            self._start_api()
        except Exception:
            self.stop()
            raise
        self.log('Neutron on %s (ML2 vlan %s:%d-%d, bmi_hil, noauth)',
                 self.url, PHYSNET, *VLAN_RANGE)

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
                                 first=VLAN_RANGE[0], last=VLAN_RANGE[1]))
        self._schema()
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
        self.db.stop()
