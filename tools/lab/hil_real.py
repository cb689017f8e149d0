"""The real HIL (CCI-MOC/hil 8c6de221, v0.4-46) for the lab.

Standard library only, importable on its own. ``python3 hil_real.py
STATE_DIR`` installs HIL, starts it inside a namespace and checks that
the API answers.

HIL is Python 2 only: it is installed from ``../shared/vendor`` into a
virtualenv made by pyenv's Python 2.7.18, with the py2 constraints file
(Flask 0.12.4, Werkzeug 0.9.6, SQLAlchemy 1.2.19, ...).

How HIL runs here (and why):

* As root, through a small wrapper (``lab_hil_admin.py``) that calls
  what ``hil-admin``'s ``main()`` calls minus ``ensure_not_root()``.
  HIL's ``ovs`` switch driver runs ``sudo ovs-vsctl ...``: as root this
  needs no sudoers rule, and pyenv's interpreter (under /root) stays
  unreadable to other users. A dedicated system user would need a
  sudoers drop-in and a copy of the interpreter: two more global files.
* The API under gunicorn 19.10 on a wsgi module equivalent to HIL's
  ``hil.wsgi``, which reads the fixed path ``/etc/hil.cfg``; ours reads
  ``$HIL_LAB_CONFIG`` so the lab writes nothing under /etc.
* ``create-admin-user`` takes the password on its command line; the
  wrapper reads it from stdin instead. Other users are created through
  the API (``PUT /v0/auth/basic/user/<name>``) by the admin. No password
  is ever in an argv.
"""

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
VENDOR = os.path.join(os.path.dirname(REPO), 'shared', 'vendor')
TARBALL = 'hil-8c6de221.tar.gz'
CONSTRAINTS = 'hil-py2-constraints.txt'
HIL_VERSION = '0.4.post46'
OVS_SWITCH_TYPE = 'http://schema.massopencloud.org/haas/v0/switches/ovs'


def python27():
    """pyenv's Python 2.7.18 (HIL does not run on Python 3)."""
    root = subprocess.run(['pyenv', 'root'], check=True,
                          capture_output=True, text=True).stdout.strip()
    path = os.path.join(root, 'versions', '2.7.18', 'bin', 'python')
    if not os.path.exists(path):
        raise RuntimeError('pyenv Python 2.7.18 missing: %s' % path)
    return path


def _venv(base):
    return os.path.join(base, 'hil-venv')


def installed(base):
    """True if ``install(base)`` completed before."""
    return os.path.exists(os.path.join(_venv(base), '.lab-installed'))


def install(base, vendor=VENDOR):
    """Install HIL into ``<base>/hil-venv``; cached. Returns the venv."""
    venv = _venv(base)
    if installed(base):
        return venv
    py = python27()
    tools = os.path.join(base, 'py2-virtualenv')
    pip_env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK='1')
    # virtualenv 20.22 dropped Python 2 support.
    subprocess.run([py, '-m', 'pip', 'install', '-q', '--target', tools,
                    'virtualenv<20.22'], check=True, env=pip_env)
    subprocess.run([py, '-m', 'virtualenv', '-q', '--clear', venv],
                   check=True, env=dict(pip_env, PYTHONPATH=tools))
    pip = os.path.join(venv, 'bin', 'pip')
    cons = os.path.join(vendor, CONSTRAINTS)
    src = os.path.join(base, 'hil-src')
    subprocess.run(['rm', '-rf', src], check=True)
    os.makedirs(src)
    subprocess.run(['tar', '-xzf', os.path.join(vendor, TARBALL), '-C', src,
                    '--strip-components=1'], check=True)
    # HIL's dependencies pinned by the constraints file, plus gunicorn
    # (pinned there too), then HIL itself without resolving again: its
    # setup.py asks for setuptools_scm and a git checkout otherwise.
    with open(cons) as f:
        reqs = [line.split('==')[0].strip() for line in f
                if '==' in line]
    subprocess.run([pip, 'install', '-q', '-c', cons] + reqs,
                   check=True, env=pip_env)
    subprocess.run([pip, 'install', '-q', '--no-build-isolation',
                    '--no-deps', src], check=True,
                   env=dict(pip_env,
                            SETUPTOOLS_SCM_PRETEND_VERSION=HIL_VERSION))
    _write_wrappers(venv)
    with open(os.path.join(venv, '.lab-installed'), 'w') as f:
        f.write(HIL_VERSION + '\n')
    return venv


# Python 2 code run by the venv's interpreter. It needs the config
# path in $HIL_LAB_CONFIG (hil.config.load() refuses a file readable by
# others).
_ADMIN_WRAPPER = '''\
"""hil-admin for the lab: HIL's main() without ensure_not_root().

HIL refuses root; the lab runs it as root so that its ovs driver's
"sudo ovs-vsctl" needs no sudoers rule. "create-admin-user-stdin NAME"
reads the password from stdin, never from the command line.
"""
import os
import sys

from hil import config, model
from hil.commands import admin


def main():
    config.setup(os.environ['HIL_LAB_CONFIG'])
    model.init_db()
    if sys.argv[1:2] == ['create-admin-user-stdin']:
        from hil.ext.auth.database import User
        from hil.flaskapp import app
        password = sys.stdin.readline().rstrip('\\n')
        with app.app_context():
            if User.query.filter_by(label=sys.argv[2]).first() is None:
                model.db.session.add(User(label=sys.argv[2],
                                          password=password,
                                          is_admin=True))
                model.db.session.commit()
        return
    admin.manager.run()


if __name__ == '__main__':
    main()
'''

_WSGI = '''\
"""HIL's hil.wsgi with the config path from $HIL_LAB_CONFIG."""
import os

from hil import api  # noqa: registers the request handlers
from hil import config, server, migrations

config.setup(os.environ['HIL_LAB_CONFIG'])
server.init()
migrations.check_db_schema()

from hil.rest import app as application  # noqa
'''


def _write_wrappers(venv):
    for name, text in (('lab_hil_admin.py', _ADMIN_WRAPPER),
                       ('lab_hil_wsgi.py', _WSGI)):
        with open(os.path.join(venv, name), 'w') as f:
            f.write(text)


def write_config(base, vlan_first=1001, vlan_last=1099, log_level='info'):
    """Write ``<base>/hil.cfg`` (0600); returns its path."""
    path = os.path.join(base, 'hil.cfg')
    logdir = os.path.join(base, 'log')
    os.makedirs(logdir, exist_ok=True)
    text = '\n'.join([
        '[general]',
        'log_level = %s' % log_level,
        'log_dir = %s' % logdir,
        '',
        '[auth]',
        'require_authentication = True',
        '',
        '[headnode]',
        # Required by HIL's config schema, unused (no headnodes here).
        'trunk_nic = eth0',
        'base_imgs = none',
        'libvirt_endpoint = qemu:///system',
        '',
        '[client]',
        'endpoint = http://127.0.0.1:5000',
        '',
        '[database]',
        'uri = sqlite:///%s' % os.path.join(base, 'hil.db'),
        '',
        # No [network-daemon] sleep_time: HIL 8c6de221's config schema
        # wants an int where ConfigParser gives a str, so any value is
        # refused; serve-networks polls every 2 s (its default).
        '[extensions]',
        'hil.ext.auth.database =',
        'hil.ext.switches.ovs =',
        'hil.ext.network_allocators.vlan_pool =',
        '',
        '[hil.ext.network_allocators.vlan_pool]',
        'vlans = %d-%d' % (vlan_first, vlan_last),
        '',
    ])
    fd = os.open(path + '.tmp', os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    os.replace(path + '.tmp', path)
    return path


def _env(base):
    venv = _venv(base)
    env = {
        'PATH': os.path.join(venv, 'bin') + ':/usr/sbin:/usr/bin:/sbin:/bin',
        'HIL_LAB_CONFIG': os.path.join(base, 'hil.cfg'),
        'HOME': base,
        'LANG': 'C.UTF-8',
    }
    return env


def _admin(ns, base, args, stdin=None):
    venv = _venv(base)
    argv = [os.path.join(venv, 'bin', 'python'),
            os.path.join(venv, 'lab_hil_admin.py')] + list(args)
    return netns.run(ns, argv, env=_env(base), input=stdin, cwd=base)


def init_db(ns, base, admin_user, admin_password):
    """``hil-admin db create`` and the admin user; idempotent."""
    marker = os.path.join(base, 'hil.db')
    if not os.path.exists(marker):
        _admin(ns, base, ['db', 'create'])
        if not os.path.exists(marker):
            # HIL's db create exits 0 when it could not read its config.
            raise RuntimeError('hil-admin db create made no database')
    _admin(ns, base, ['create-admin-user-stdin', admin_user],
           stdin=admin_password + '\n')


def drop_db(base):
    """Remove HIL's sqlite database (HIL must be stopped)."""
    path = os.path.join(base, 'hil.db')
    if os.path.exists(path):
        os.unlink(path)


def _pidfiles(base):
    return (os.path.join(base, 'hil-api.pid'),
            os.path.join(base, 'hil-networks.pid'))


def start(ns, base, port, workers=2):
    """Start the API (gunicorn, 127.0.0.1:port inside ``ns``) and
    serve-networks, each with a pid file; idempotent. Returns the URL."""
    venv = _venv(base)
    api_pid, net_pid = _pidfiles(base)
    logdir = os.path.join(base, 'log')
    os.makedirs(logdir, exist_ok=True)
    netns.spawn(ns, [os.path.join(venv, 'bin', 'gunicorn'),
                     '--workers', str(workers),
                     '--bind', '127.0.0.1:%d' % port,
                     '--chdir', venv, 'lab_hil_wsgi:application'],
                api_pid, os.path.join(logdir, 'gunicorn.log'),
                env=_env(base), cwd=base)
    netns.spawn(ns, [os.path.join(venv, 'bin', 'python'),
                     os.path.join(venv, 'lab_hil_admin.py'),
                     'serve-networks'],
                net_pid, os.path.join(logdir, 'serve-networks.log'),
                env=_env(base), cwd=base)
    netns.wait_tcp(ns, '127.0.0.1', port, timeout=60)
    return 'http://127.0.0.1:%d' % port


def stop(base):
    """Stop both HIL processes by their pid files; idempotent."""
    for pidfile in _pidfiles(base):
        netns.stop_pid(pidfile)


class Client(object):
    """Minimal HIL REST client (urllib, HTTP Basic) for lab setup.

    The API listens inside the namespace: run this code inside it too
    (``ip netns exec``), or reach it through ``in_netns`` below.
    """

    def __init__(self, url, user, password):
        self.url = url.rstrip('/')
        token = base64.b64encode(
            ('%s:%s' % (user, password)).encode()).decode()
        self._auth = 'Basic ' + token

    def call(self, method, path, body=None, ok=(200, 202)):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + '/v0/' + path, data=data,
                                     method=method)
        req.add_header('Authorization', self._auth)
        # urllib labels any body as a form otherwise, which HIL refuses
        # (400 ValidationError).
        req.add_header('Content-Type', 'application/json')
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, text = resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        if status not in ok:
            raise HILError(status, method, path, text)
        return json.loads(text) if text.strip() else None

    def wait_action(self, status_id, timeout=60.0):
        """Poll a networking action until DONE; returns seconds taken."""
        t0 = time.monotonic()
        while True:
            st = self.call('GET', 'networking_action/' + status_id)
            if st['status'] == 'DONE':
                return time.monotonic() - t0
            if st['status'] == 'ERROR':
                raise HILError(500, 'GET', status_id, json.dumps(st))
            if time.monotonic() - t0 > timeout:
                raise TimeoutError('networking action %s: %s'
                                   % (status_id, st))
            time.sleep(0.2)

    def connect_network(self, node, nic, network, channel='vlan/native'):
        r = self.call('POST', 'node/%s/nic/%s/connect_network'
                      % (node, nic), {'network': network,
                                      'channel': channel})
        return r['status_id']

    def detach_network(self, node, nic, network):
        r = self.call('POST', 'node/%s/nic/%s/detach_network'
                      % (node, nic), {'network': network})
        return r['status_id']


class HILError(Exception):
    def __init__(self, status, method, path, text):
        super(HILError, self).__init__('%s %s -> %s %s'
                                       % (method, path, status, text))
        self.status = status
        self.text = text


def _put_ok(client, path, body):
    """PUT that tolerates 409 Duplicate (idempotent setup)."""
    try:
        client.call('PUT', path, body)
    except HILError as e:
        if e.status != 409 or 'Duplicate' not in e.text:
            raise


def setup_lab(client, layout):
    """Admin-side setup from a layout dict; idempotent.

    layout = {
      'users': {'bmi': {'password': ..., 'projects': ['p1']}},
      'projects': ['p1', 'p2'],
      'switch': {'name': 'sw0', 'bridge': 'br-lab'},
      'nodes': {'node1': {'project': 'p1' | None, 'nics': {
                 'nic1': {'mac': '52:54:00:..', 'port': 'tap1'}}}},
      'networks': {'net-a': {'owner': 'p1', 'access': 'p1',
                             'net_id': ''}},
    }
    Users' passwords travel in request bodies only.
    """
    for p in layout.get('projects', []):
        _put_ok(client, 'project/' + p, None)
    for user, u in layout.get('users', {}).items():
        _put_ok(client, 'auth/basic/user/' + user,
                {'password': u['password'], 'is_admin': False})
        for p in u.get('projects', []):
            try:
                client.call('POST', 'auth/basic/user/%s/add_project' % user,
                            {'project': p})
            except HILError as e:
                if e.status != 409:
                    raise
    sw = layout['switch']
    _put_ok(client, 'switch/' + sw['name'],
            {'type': OVS_SWITCH_TYPE, 'ovs_bridge': sw['bridge']})
    for node, n in layout.get('nodes', {}).items():
        # HIL 0.4-46 registers nodes with an obmd endpoint; the lab has
        # no obmd, power goes through Ironic's Redfish instead.
        _put_ok(client, 'node/' + node,
                {'obmd': {'uri': 'http://127.0.0.1:1/node/' + node,
                          'admin_token': 'unused-' + node}})
        for nic, c in n['nics'].items():
            _put_ok(client, 'node/%s/nic/%s' % (node, nic),
                    {'macaddr': c['mac']})
            _put_ok(client, 'switch/%s/port/%s' % (sw['name'], c['port']),
                    None)
            try:
                client.call('POST', 'switch/%s/port/%s/connect_nic'
                            % (sw['name'], c['port']),
                            {'node': node, 'nic': nic})
            except HILError as e:
                if e.status != 409:
                    raise
        if n.get('project'):
            try:
                client.call('POST', 'project/%s/connect_node'
                            % n['project'], {'node': node})
            except HILError as e:
                if e.status != 409:
                    raise
    for net, spec in layout.get('networks', {}).items():
        _put_ok(client, 'network/' + net,
                {'owner': spec['owner'], 'access': spec['access'],
                 'net_id': spec.get('net_id', '')})


if __name__ == '__main__':
    t0 = time.monotonic()
    print(install(sys.argv[1]))
    print('install: %.1f s' % (time.monotonic() - t0))
