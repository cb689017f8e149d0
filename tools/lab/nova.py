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

"""Nova's own ironic driver for the tests and benchmarks: the client side.

``Harness`` starts ``tools/lab/nova_harness.py`` in Nova's venv
(``<state>/nova/venv``, tools/install-deps.sh) against the lab's Ironic
and Glance and speaks JSON lines with it (one request, one answer); it
stops the process by its pid. ``prepare_node`` sets a node up as an
operator does for Nova (README, "Nova").

Nothing here imports Nova: the harness runs in its own venv.
"""

import io
import json
import os
import subprocess
import tempfile
import threading
import time

from tools.lab import REPO
from tools.lab import state as lab_state

# The resource class the README's operator path gives bmi nodes, and the
# flavor's extra spec that asks placement for one such node (nova 34.0.0
# reports CUSTOM_<RC> with total 1 per node).
RESOURCE_CLASS = 'baremetal.bmi'
FLAVOR_RESOURCES = {'resources:CUSTOM_BAREMETAL_BMI': '1',
                    # Nova schedules on the custom class alone.
                    'resources:VCPU': '0', 'resources:MEMORY_MB': '0',
                    'resources:DISK_GB': '0'}


class HarnessError(Exception):
    """The harness answered an error (its type and message)."""

    def __init__(self, answer):
        self.answer = answer
        self.type = answer.get('type')
        super().__init__('%s: %s' % (answer.get('type'),
                                     answer.get('error')))


def nova_venv(state_root=None):
    return os.path.join(lab_state.state_root(state_root), 'nova', 'venv')


def nova_python(state_root=None):
    """Nova's venv's python; AssertionError (loud) when missing."""
    python = os.path.join(nova_venv(state_root), 'bin', 'python')
    if not os.access(python, os.X_OK):
        raise AssertionError('%s is missing: run tools/install-deps.sh'
                             % python)
    return python


class Harness(object):
    """One harness process (one IronicDriver, its instances)."""

    def __init__(self, ironic_url, glance_url, log_file=None, python=None,
                 poll_interval=1, debug=False, neutron_url=None):
        self.python = python or nova_python()
        self.log_file = log_file or os.path.join(
            tempfile.mkdtemp(prefix='bmi-nova-log-'), 'nova-harness.log')
        self.argv = [self.python, '-m', 'tools.lab.nova_harness',
                     '--ironic-url', ironic_url, '--glance-url', glance_url,
                     '--log-file', self.log_file,
                     '--poll-interval', str(poll_interval)]
        if debug:
            self.argv.append('--debug')
        if neutron_url:
            # Nova's own Neutron calls (security groups) and the
            # ``neutron`` network source's default.
            self.argv += ['--neutron-url', neutron_url]
        self.proc = None

    def start(self):
        stderr = open(self.log_file + '.stderr', 'w')
        try:
            self.proc = subprocess.Popen(
                self.argv, cwd=REPO, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=stderr, text=True,
                env=dict(os.environ, PYTHONWARNINGS='ignore'))
        finally:
            stderr.close()
        first = self._read()
        if not first.get('ok'):
            self.stop()
            raise HarnessError(first)
        return self

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError('the Nova harness exited (rc %s): see %s'
                               % (self.proc.poll(), self.log_file))
        return json.loads(line)

    def call(self, op, **kwargs):
        """Send one request; return the answer or raise HarnessError."""
        if self.proc is None:
            raise RuntimeError('the Nova harness is not started')
        self.proc.stdin.write(json.dumps(dict(kwargs, op=op)) + '\n')
        self.proc.stdin.flush()
        answer = self._read()
        if not answer.pop('ok', False):
            raise HarnessError(answer)
        return answer

    def stop(self):
        """Close its stdin (it exits), else SIGKILL its pid."""
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)
        self.proc.stdout.close()
        self.proc = None

    def log_tail(self, lines=40):
        try:
            with open(self.log_file, errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except OSError:
            return ''

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def from_services(env, **kwargs):
    """A Harness against the lab's Ironic and Glance (services.json)."""
    ironic = lab_state.read_env(env['ironic_state'], 'Ironic')
    glance = (env.get('services') or {}).get('glance') or {}
    if not glance.get('running'):
        # Loud, never a skip: Nova's driver reads the image from Glance.
        raise AssertionError('the lab\'s Glance is not running: python -m '
                             'tools.lab start ... glance')
    return Harness(ironic['url'], glance['service_url'], **kwargs)


def spawn_beside(call, watch, timeout):
    """Run ``call()`` (Nova's spawn) in a thread while ``watch()`` runs here.

    Nova's spawn returns only once the node is ACTIVE, so whoever wants to
    see the node on its way there (its power-on, Ironic's ACTIVE) watches
    beside it. Returns (``call``'s answer, ``time.perf_counter()`` when it
    returned, ``watch``'s result); ``call``'s error is raised, and
    RuntimeError when it did not return within ``timeout`` seconds after
    ``watch`` ended.
    """
    result = {}

    def run():
        try:
            result['answer'] = call()
        except Exception as e:
            result['error'] = e
        result['returned'] = time.perf_counter()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        watched = watch()
    finally:
        thread.join(timeout)
    if 'error' in result:
        raise result['error']
    if 'answer' not in result:
        raise RuntimeError('Nova\'s spawn did not return in %ds' % timeout)
    return result['answer'], result['returned'], watched


def prepare_node(ironic, node_uuid, resource_class=RESOURCE_CLASS):
    """Set a node up for Nova as the README's operator does.

    Nova 34.0.0 schedules a node only through its resource class (one
    ``CUSTOM_<RC>`` per node in placement; without it the driver raises
    NoResourceClass), and writes ``instance_info`` (image_source, root_gb,
    project_id, ...) itself. ``ironic`` is an ironicclient v1 client.
    """
    ironic.node.update(node_uuid, [
        {'op': 'add', 'path': '/resource_class', 'value': resource_class}])
    # Nova reports a node without a power state as unavailable (reserved
    # in placement). Real hardware reports one at verify; Ironic 39.0.0's
    # fake power interface returns the state last set, none at first: the
    # operator sets it once.
    if ironic.node.get(node_uuid).power_state is None:
        ironic.node.set_power_state(node_uuid, 'off')
        deadline = time.monotonic() + 60
        while ironic.node.get(node_uuid).power_state is None:
            if time.monotonic() > deadline:
                raise RuntimeError('node %s reports no power state'
                                   % node_uuid)
            time.sleep(0.2)


def flavor(root_gb=1, ephemeral_gb=0, swap=0, name='bmi.small'):
    """A Nova flavor of the README's kind, as the harness takes it."""
    return {'name': name, 'flavorid': name, 'memory_mb': 1024, 'vcpus': 1,
            'root_gb': root_gb, 'ephemeral_gb': ephemeral_gb, 'swap': swap,
            'extra_specs': dict(FLAVOR_RESOURCES)}


def iso_file(iso, name):
    """One file of an ISO 9660 image (Rock Ridge, else Joliet names).

    ``iso``: a path or a binary file object (a config drive: Nova's
    ConfigDriveBuilder writes Rock Ridge and Joliet). pycdlib comes with
    Ironic 39.0.0 (its config drive code uses it).

    :raises: pycdlib's PyCdlibException when there is no such file.
    """
    import pycdlib
    reader = pycdlib.PyCdlib()
    if isinstance(iso, str):
        reader.open(iso)
    else:
        reader.open_fp(iso)
    try:
        buf = io.BytesIO()
        try:
            reader.get_file_from_iso_fp(buf, rr_path='/' + name)
        except pycdlib.pycdlibexception.PyCdlibException:
            reader.get_file_from_iso_fp(buf, joliet_path='/' + name)
        return buf.getvalue()
    finally:
        reader.close()


def iso_volume_id(iso_path):
    """The volume id of an ISO 9660 image (``config-2`` for Nova's)."""
    with open(iso_path, 'rb') as f:
        f.seek(16 * 2048)
        pvd = f.read(2048)
    return pvd[40:72].decode('ascii', 'replace').strip()


def neutron(env):
    """openstacksdk's network proxy on the lab's Neutron (noauth).

    A request without a project is an admin's there (tools/lab/neutron.py),
    so it may create networks and ports of any project.
    """
    from keystoneauth1 import noauth
    from keystoneauth1 import session as ks_session
    import openstack.connection
    info = (env.get('services') or {}).get('neutron') or {}
    if not info.get('running'):
        # Loud, never a skip: the VIFs are Neutron ports.
        raise AssertionError('the lab\'s Neutron is not running: python -m '
                             'tools.lab start ... neutron')
    return openstack.connection.Connection(
        session=ks_session.Session(auth=noauth.NoAuth()),
        network_endpoint_override=info['url']).network


def glance(env, project, roles='member,reader'):
    """openstacksdk's image proxy on the lab's Glance, as ``project``.

    The users endpoint takes the caller's identity from headers, as
    authtoken would have set them (tools/lab/glance.py).
    """
    from keystoneauth1 import noauth
    from keystoneauth1 import session as ks_session
    import openstack.connection
    url = ((env.get('services') or {}).get('glance') or {}).get('url')
    if not url:
        raise AssertionError('the lab\'s Glance is not running')
    sess = ks_session.Session(auth=noauth.NoAuth(), additional_headers={
        'X-Identity-Status': 'Confirmed', 'X-Project-Id': project,
        'X-User-Id': 'user-' + project, 'X-Roles': roles})
    return openstack.connection.Connection(
        session=sess, image_endpoint_override=url).image


def upload_image(env, project, path, name, disk_format='raw'):
    """Upload ``path`` to Glance as a private image of ``project``.

    Returns (image proxy, image id), the image active.
    """
    images = glance(env, project)
    img = images.create_image(
        name=name, filename=path, disk_format=disk_format,
        container_format='bare', visibility='private',
        allow_duplicates=True, validate_checksum=False)
    return images, img.id
