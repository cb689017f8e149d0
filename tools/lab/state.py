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

"""Where the lab keeps its state, and ``services.json``.

``$BMI_STATE`` (default ``.state/`` in the checkout) holds:

* ``ceph/``: the one-node cluster (``ceph.conf``, keyrings, pid files);
* ``tgtd.pid``, ``log/tgtd.log``: the shared tgtd (portals 127.0.0.1:3260
  and the gateway's address on each project boot network);
* ``boot/<project>/``: each project's HTTP root (its nodes' iPXE files,
  published by the plugin, served on its boot network only);
* ``ironic/``: Ironic all-in-one (``ironic.conf``, ``bmi.conf``,
  ``env.json``, log, sqlite, http_root, ``boot-networks.json``: the
  plugin's ``[bmi] boot_networks_file``);
* ``hil/``: the real HIL (venv, ``hil.cfg``, sqlite, ``env.json``, the
  0600 password files), ``ovs/``: Open vSwitch's database and logs,
  ``gateway/``: dnsmasq and nginx, ``libvirt/``, ``sushy/``;
* ``demo/``: the demo's image and its VM lab (``demo/lab/``);
* ``locks/``: the plugin's tooz file locks;
* ``services.json``: what the services are, for the functional tests,
  the benchmarks, the demo and the renderer of ``bmi.conf``.

This module is the one place that writes ``services.json`` and the one
place that maps it to the plugin's options (``ceph_options``,
``iscsi_options``).
"""

import json
import os

from tools import lab

CEPH_USER = 'bmi'
CEPH_TGT_USER = 'tgt'
IMAGE_POOL = 'bmi-images'
GLANCE_POOL = 'images'
# tgtd's portal for the lab's own initiators: loopback inside the lab's
# namespace, out of every VM's reach. The nodes' portals are on their
# project boot networks (tools.lab.labnet.BOOT_NETWORKS, boot-networks.json).
TGTD_PORTAL = '127.0.0.1:3260'


def state_root(root=None):
    return os.path.abspath(root or os.environ.get('BMI_STATE')
                           or os.path.join(lab.REPO, '.state'))


class State(object):
    """The lab's state directory and the layout inside it."""

    def __init__(self, root=None):
        self.root = state_root(root)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    @property
    def ceph_dir(self):
        return self.path('ceph')

    @property
    def log_dir(self):
        return self.path('log')

    @property
    def locks_dir(self):
        return self.path('locks')

    @property
    def ironic_dir(self):
        return self.path('ironic')

    @property
    def hil_dir(self):
        return self.path('hil')

    @property
    def ovs_dir(self):
        return self.path('ovs')

    @property
    def demo_dir(self):
        return self.path('demo')

    @property
    def lab_dir(self):
        return self.path('demo', 'lab')

    @property
    def services_json(self):
        return self.path('services.json')

    def services(self, tgtd_portal=TGTD_PORTAL, tgtd_running=False,
                 extra=None):
        """The content of services.json (a dict)."""
        doc = {
            'state_dir': self.root,
            'ceph_conf': os.path.join(self.ceph_dir, 'ceph.conf'),
            'ceph_admin_keyring': os.path.join(
                self.ceph_dir, 'ceph.client.admin.keyring'),
            'ceph_user': CEPH_USER,
            'ceph_keyring': os.path.join(
                self.ceph_dir, 'ceph.client.%s.keyring' % CEPH_USER),
            'ceph_tgt_user': CEPH_TGT_USER,
            'image_pool': IMAGE_POOL,
            'glance_pool': GLANCE_POOL,
            'tgtd_portal': tgtd_portal,
            'tgtd_running': bool(tgtd_running),
            'ironic_state': self.ironic_dir,
            'hil_state': self.hil_dir,
        }
        doc.update(extra or {})
        return doc

    def write_services(self, **kwargs):
        """Write services.json (atomically); return what was written."""
        doc = self.services(**kwargs)
        os.makedirs(self.root, exist_ok=True)
        tmp = self.services_json + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write('\n')
        os.replace(tmp, self.services_json)
        return doc


def services_path(path=None):
    """services.json: ``path``, else $BMI_TEST_ENV, else the state's."""
    return (path or os.environ.get('BMI_TEST_ENV')
            or State().services_json)


def load_services(path=None):
    """Read services.json.

    :raises: RuntimeError that says how to start the services.
    """
    path = services_path(path)
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise RuntimeError(
            'The lab services are not running (%s: %s): start them with '
            '`make services-start` (python -m tools.lab start), or run '
            '`make test`' % (path, e.strerror)) from None


def read_env(service_dir, what='the service'):
    """A service's ``env.json`` (Ironic's, the HIL server's).

    :raises: RuntimeError naming the command that starts it.
    """
    path = os.path.join(service_dir or '', 'env.json')
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise RuntimeError('%s is not running (%s: %s): start it with '
                           '`python -m tools.lab start`'
                           % (what, path, e.strerror)) from None


def ceph_options(env):
    """services.json -> the plugin's ``[ceph]`` options (a dict)."""
    return {'conf_file': env['ceph_conf'],
            'user': env['ceph_user'],
            'keyring': env['ceph_keyring'],
            'image_pool': env['image_pool'],
            'clone_pool': env['image_pool'],
            'glance_pool': env['glance_pool']}


def glance_options(env):
    """services.json -> the plugin's ``[glance]`` options, or {}.

    The lab's Glance has no Keystone: auth_type none on its service
    endpoint, where every request is an admin's (tools/lab/glance.py).
    """
    glance = (env.get('services') or {}).get('glance') or {}
    if not glance.get('service_url'):
        return {}
    return {'auth_type': 'none',
            'endpoint_override': glance['service_url']}


def neutron_options(env):
    """services.json -> the plugin's ``[neutron]`` options, or {}.

    The lab's Neutron has no Keystone (noauth: tools/lab/neutron.py).
    Ironic's ``fail_on_port_binding_failure`` keeps its default (true):
    bmi_driver's ML2 driver ``bmi_hil`` binds the hil interface's ports
    ACTIVE, and a port it does not bind fails the deploy.
    """
    neutron = (env.get('services') or {}).get('neutron') or {}
    if not neutron.get('running'):
        return {}
    return {'auth_type': 'none', 'endpoint_override': neutron['url']}


def iscsi_options(env):
    """services.json -> the plugin's ``[iscsi]`` options for its tgtd."""
    host, port = env['tgtd_portal'].rsplit(':', 1)
    return {'portal_address': host,
            'portal_port': int(port),
            'tgt_ceph_user': env['ceph_tgt_user']}


def configure(conf, env, groups=('ceph',)):
    """Set ``conf``'s options of ``groups`` from services.json.

    As overrides: for tools that parse no configuration file.
    """
    mapping = {'ceph': ceph_options, 'iscsi': iscsi_options,
               'glance': glance_options}
    for group in groups:
        for key, value in mapping[group](env).items():
            conf.set_override(key, value, group=group)
