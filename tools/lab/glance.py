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

"""A real Glance (glance 31.0.0, OpenStack 2025.2) on the lab's Ceph.

Its venv is ``<state>/glance/venv`` (``tools/install-deps.sh``; Glance's
dependencies are kept apart from Ironic's), its database a sqlite file in
its state directory, its one store glance_store's ``rbd`` driver on the
lab's ``images`` pool (``[ceph] glance_pool``) as its own cephx user
``client.glance`` (``profile rbd`` on that pool only; keyring 0600).

There is no Keystone.  Two glance-api processes serve one database and
one store, each with its own paste pipeline (``glance-api-paste.ini``
written here):

``users`` (127.0.0.1:9292)
    ``versionnegotiation context rootapp``: Glance's own ContextMiddleware
    without authtoken.  The caller says who it is as authtoken would have
    told Glance: ``X-Identity-Status: Confirmed``, ``X-Project-Id``,
    ``X-User-Id``, ``X-Roles``; anonymous requests are refused (401).  The
    tests act as several projects this way, and Glance's own policies
    (2025.2 defaults) decide what each may do.
``service`` (127.0.0.1:9293)
    ``versionnegotiation unauthenticated-context rootapp``: every request
    is an admin's, as for a standalone Ironic (``auth_type = none``).  The
    plugin reads Glance here: it must see every project's images to decide
    visibility itself.

Both listen inside the lab's network namespace only.  ``info()`` (in
services.json) says where they are.
"""

import json
import os
import subprocess
import time

from tools.lab import service
from tools.lab import state as lab_state

GLANCE_USER = 'glance'
USERS_PORT = 9292
SERVICE_PORT = 9293

_PASTE = """\
# Written by tools/lab/glance.py: no authtoken (the lab has no Keystone).
[composite:glance-api-users]
paste.composite_factory = glance.api:root_app_factory
/: api
/healthcheck: healthcheck

[composite:glance-api-service]
paste.composite_factory = glance.api:root_app_factory
/: api
/healthcheck: healthcheck

[composite:api]
paste.composite_factory = glance.api:pipeline_factory
users = versionnegotiation context rootapp
service = versionnegotiation unauthenticated-context rootapp

[composite:rootapp]
paste.composite_factory = glance.api:root_app_factory
/: apiversions
/v2: apiv2app

[app:apiversions]
paste.app_factory = glance.api.versions:create_resource

[app:apiv2app]
paste.app_factory = glance.api.v2.router:API.factory

[app:healthcheck]
paste.app_factory = oslo_middleware:Healthcheck.app_factory
backends = disable_by_file
disable_by_file_path = {state}/healthcheck_disable

[filter:versionnegotiation]
paste.filter_factory = \
glance.api.middleware.version_negotiation:VersionNegotiationFilter.factory

[filter:context]
paste.filter_factory = glance.api.middleware.context:ContextMiddleware.factory

[filter:unauthenticated-context]
paste.filter_factory = \
glance.api.middleware.context:UnauthenticatedContextMiddleware.factory
"""

_CONF = """\
# Written by tools/lab/glance.py.
[DEFAULT]
bind_host = 127.0.0.1
bind_port = {port}
workers = 0
log_file = {log}
debug = false
# The plugin reads where an image's bytes are (rbd://fsid/pool/image/snap)
# and publishes images whose location is an RBD snapshot.
show_image_direct_url = true
show_multiple_locations = true
# ceph: Glance's own store (uploads).  bmi: the pool of bmi's golden
# images, read-only (client.glance's caps): Glance 31.0.0 accepts an rbd://
# location only in the pool of a configured store (its url_prefix
# rbd://<fsid>/<pool>/), so the images bmi publishes there
# ([glance] publish_images) need a store of their own.
enabled_backends = ceph:rbd, bmi:rbd
# The two disk formats the plugin clones (raw) or converts (the rest).
disk_formats = raw,qcow2,vmdk,vdi,vhdx,iso,ami,ari,aki,vhd,ploop
image_cache_dir = {state}/image-cache-{flavor}

[glance_store]
default_backend = ceph

[ceph]
rbd_store_pool = {pool}
rbd_store_user = {user}
rbd_store_ceph_conf = {ceph_conf}
rbd_store_chunk_size = 8
rados_connect_timeout = 10

[bmi]
store_description = bmi's golden images (read-only, published by bmi)
rbd_store_pool = {bmi_pool}
rbd_store_user = {user}
rbd_store_ceph_conf = {ceph_conf}
rbd_store_chunk_size = 8
rados_connect_timeout = 10

[os_glance_staging_store]
filesystem_store_datadir = {state}/staging

[os_glance_tasks_store]
filesystem_store_datadir = {state}/tasks

[database]
connection = sqlite:///{state}/glance.sqlite

[paste_deploy]
flavor = {flavor}
config_file = {state}/glance-api-paste.ini

[oslo_concurrency]
lock_path = {state}/locks
{policy}"""

# The service endpoint's calls are allowed to its (admin) callers: with
# Glance 31.0.0's default policies, UnauthenticatedContextMiddleware's
# context (is_admin, but no role) gets 404 for another project's private
# image (checked in the lab).  Reads, and what publishing golden images
# needs ([glance] publish_images: create an image for its owner project,
# public or not, add its location, rename, delete it).
_SERVICE_POLICY = """\
# Written by tools/lab/glance.py: the service endpoint is the plugin's.
"context_is_admin": ""
"get_image": ""
"get_images": ""
"get_member": ""
"get_members": ""
"add_image": ""
"modify_image": ""
"publicize_image": ""
"communitize_image": ""
"set_image_location": ""
"get_image_location": ""
"delete_image": ""
"""


class _API(service.Service):
    """One glance-api process of one paste flavor."""

    stop_timeout = 15

    def __init__(self, state_dir, flavor, port, venv):
        super().__init__(state_dir)
        self.name = 'glance-api-' + flavor
        self.flavor = flavor
        self.port = port
        self.venv = venv

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.port

    @property
    def conf_path(self):
        return os.path.join(self.state_dir, 'glance-api-%s.conf'
                            % self.flavor)

    def write_conf(self, ceph_conf, pool):
        policy = ''
        if self.flavor == 'service':
            path = os.path.join(self.state_dir, 'service-policy.yaml')
            with open(path, 'w') as f:
                f.write(_SERVICE_POLICY)
            policy = '\n[oslo_policy]\npolicy_file = %s\n' % path
        with open(self.conf_path, 'w') as f:
            f.write(_CONF.format(port=self.port, log=self.log_path,
                                 state=self.state_dir, flavor=self.flavor,
                                 pool=pool, user=GLANCE_USER,
                                 ceph_conf=ceph_conf, policy=policy,
                                 bmi_pool=lab_state.IMAGE_POOL))

    def start(self):
        if self.is_running():
            return
        if service.http_answers(self.url + '/healthcheck'):
            raise service.ServiceError('something else answers on %s'
                                       % self.url)
        proc = self.spawn([os.path.join(self.venv, 'bin', 'glance-api'),
                           '--config-file', self.conf_path])
        deadline = time.monotonic() + 60
        while not service.http_answers(self.url + '/healthcheck'):
            if not service.pid_alive(proc.pid):
                self._forget()
                raise service.ServiceError('%s exited: see %s'
                                           % (self.name, self.log_path))
            if time.monotonic() > deadline:
                self.stop()
                raise service.ServiceError('%s did not answer within 60 s: '
                                           'see %s' % (self.name,
                                                       self.log_path))
            time.sleep(0.5)


class Glance(service.Service):
    """glance-api (users and service pipelines) on the lab's Ceph."""

    name = 'glance'
    pid_name = 'glance-api-users'

    def __init__(self, state_dir, ceph_dir, venv=None):
        super().__init__(state_dir)
        self.ceph_dir = os.path.abspath(ceph_dir)
        self.venv = venv or os.path.join(self.state_dir, 'venv')
        self.apis = [_API(self.state_dir, 'users', USERS_PORT, self.venv),
                     _API(self.state_dir, 'service', SERVICE_PORT,
                          self.venv)]

    @property
    def keyring(self):
        return os.path.join(self.state_dir,
                            'ceph.client.%s.keyring' % GLANCE_USER)

    @property
    def ceph_conf(self):
        return os.path.join(self.state_dir, 'ceph.conf')

    def is_running(self):
        return all(api.is_running() for api in self.apis)

    def info(self):
        return dict(super().info(), running=self.is_running(),
                    url=self.apis[0].url, service_url=self.apis[1].url,
                    ceph_user=GLANCE_USER, pool=lab_state.GLANCE_POOL,
                    # What a caller of the users endpoint sends instead of
                    # a Keystone token (see the module's docstring).
                    identity_headers=['X-Identity-Status', 'X-Project-Id',
                                      'X-User-Id', 'X-Roles'])

    def _ceph(self, *args):
        admin_conf = os.path.join(self.ceph_dir, 'ceph.conf')
        proc = subprocess.run(['ceph', '-c', admin_conf] + list(args),
                              capture_output=True, text=True, timeout=60)
        if proc.returncode:
            raise service.ServiceError('ceph %s failed: %s' % (
                ' '.join(args[:2]), proc.stderr.strip()))
        return proc.stdout

    def _ceph_user(self):
        """client.glance, least privilege; 0600 keyring.

        ``profile rbd`` on Glance's pool; ``profile rbd-read-only`` on
        bmi's image pool: Glance serves downloads of the golden images bmi
        publishes there ([glance] publish_images) but cannot change them,
        so a user's delete in Glance never removes bmi's bytes (Glance
        31.0.0 deletes a location's RBD image, in the location's pool).
        """
        pool = lab_state.GLANCE_POOL
        caps = ['mon', 'profile rbd', 'osd',
                'profile rbd pool=%s, profile rbd-read-only pool=%s'
                % (pool, lab_state.IMAGE_POOL)]
        # Made without caps, then given them: get-or-create refuses other
        # caps than an existing user's (a lab started before this change).
        key = self._ceph('auth', 'get-or-create', 'client.' + GLANCE_USER,
                         '--format', 'json')
        self._ceph('auth', 'caps', 'client.' + GLANCE_USER, *caps)
        secret = json.loads(key)[0]['key']
        fd = os.open(self.keyring, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600)
        with os.fdopen(fd, 'w') as f:
            f.write('[client.%s]\n\tkey = %s\n' % (GLANCE_USER, secret))
        os.chmod(self.keyring, 0o600)
        # The lab cluster's ceph.conf, with this user's keyring.
        with open(os.path.join(self.ceph_dir, 'ceph.conf')) as f:
            text = f.read()
        with open(self.ceph_conf, 'w') as f:
            f.write(text.rstrip('\n') + '\n\n[client.%s]\nkeyring = %s\n'
                    % (GLANCE_USER, self.keyring))

    def start(self):
        if self.is_running():
            self.log('already running (%s)', self.apis[0].url)
            return
        glance_api = os.path.join(self.venv, 'bin', 'glance-api')
        if not os.access(glance_api, os.X_OK):
            raise service.ServiceError(
                '%s is missing: run tools/install-deps.sh' % glance_api)
        for sub in ('staging', 'tasks', 'locks'):
            os.makedirs(os.path.join(self.state_dir, sub), mode=0o700,
                        exist_ok=True)
        self._ceph_user()
        with open(os.path.join(self.state_dir, 'glance-api-paste.ini'),
                  'w') as f:
            f.write(_PASTE.format(state=self.state_dir))
        for api in self.apis:
            api.write_conf(self.ceph_conf, lab_state.GLANCE_POOL)
        self.run([os.path.join(self.venv, 'bin', 'glance-manage'),
                  '--config-file', self.apis[0].conf_path, 'db_sync'],
                 timeout=300)
        try:
            for api in self.apis:
                api.start()
        except Exception:
            self.stop()
            raise
        self.log('Glance on %s (users) and %s (service)', self.apis[0].url,
                 self.apis[1].url)

    def stop(self):
        for api in reversed(self.apis):
            api.stop()
