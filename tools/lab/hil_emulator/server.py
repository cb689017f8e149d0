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

"""A HIL-compatible REST server for tests and the demo.

Written from ``../shared/hil-api.md`` (HIL's API as the real server
behaves): nodes with nics, projects, networks with VLAN channels, the
asynchronous networking-action queue (one pending action per nic, applied
after ``action_delay`` seconds, ERROR when the nic's switch is marked
failing), HIL's error codes and ``{"type", "msg"}`` bodies, and null or
database (HTTP Basic) authentication. It is over 500 lines because it is
one emulator of one API: every route shares the state, its lock and the
error bodies.

State is a JSON document (see ``normalize_state`` for the seed format); it
is written back to the state file after every change, so a test can read
it, and it is also served to admins at ``GET /_debug/state``. The other
debug routes (admin only) mark a switch as failing and change the action
delay::

    PUT /_debug/switch/<switch>   {"fail": true|false}
    PUT /_debug/action_delay      {"seconds": 0.2}
    PUT /_debug/node/<node>       a node as in the seed (created or replaced)
"""

import base64
import binascii
import copy
import http.server
import json
import os
import re
import threading
import traceback
import uuid

NATIVE = 'vlan/native'
DEFAULT_VLANS = (1000, 1999)
DEFAULT_ACTION_DELAY = 0.5


class HILError(Exception):
    status = 500

    def __init__(self, msg):
        super().__init__(msg)
        self.msg = msg

    @property
    def type(self):
        return type(self).__name__


class ValidationError(HILError):
    status = 400


class BadArgumentError(HILError):
    status = 400


class AuthorizationError(HILError):
    status = 401


class NotFoundError(HILError):
    status = 404


class DuplicateError(HILError):
    status = 409


class BlockedError(HILError):
    status = 409


class ProjectMismatchError(HILError):
    status = 409


class IllegalStateError(HILError):
    status = 409


class AllocationError(HILError):
    status = 500


def _nics_by_label(nics):
    if isinstance(nics, dict):
        return {label: dict(nic) for label, nic in nics.items()}
    return {nic['label']: {k: v for k, v in nic.items() if k != 'label'}
            for nic in nics}


def normalize_state(seed):
    """Complete a seed document into the server's state.

    Seed format (every key optional)::

        {"auth": "null" | "database",
         "users": {"alice": {"password": "...", "admin": false,
                             "projects": ["p1"]}},
         "action_delay": 0.5,
         "vlan_range": [1000, 1999],
         "projects": ["p1"],
         "nodes": {"node1": {"project": null, "metadata": {"k": <any>},
                             "nics": [{"label": "nic1",
                                       "macaddr": "52:54:00:00:00:01",
                                       "switch": "sw0", "port": "gi1/0/1",
                                       "networks": {"vlan/native": "net"}}]}},
         "networks": {"net": {"owner": "admin" | <project>,
                              "access": [<project>, ...] (empty: public),
                              "net_id": "1001"}},
         "failing_switches": ["sw0"],
         "native_first_switches": ["sw0"]}

    ``native_first_switches``: switches with the rule of HIL's brocade
    and dellnos9 drivers (8c6de221; its ovs and mock drivers lack it): a
    tagged VLAN needs a native one first, and the native one goes last.

    ``nics`` may also be a dict keyed by label. A nic without ``switch``
    and ``port`` is not cabled. A network without ``net_id`` gets a VLAN
    from ``vlan_range``.
    """
    state = copy.deepcopy(seed or {})
    state.setdefault('auth', 'null')
    if state['auth'] not in ('null', 'database'):
        raise ValueError('auth must be "null" or "database"')
    state.setdefault('users', {})
    state.setdefault('action_delay', DEFAULT_ACTION_DELAY)
    state['vlan_range'] = list(state.get('vlan_range', DEFAULT_VLANS))
    state['projects'] = sorted(set(state.get('projects', [])))
    state['failing_switches'] = sorted(set(state.get('failing_switches',
                                                     [])))
    state['native_first_switches'] = sorted(set(state.get(
        'native_first_switches', [])))
    state.setdefault('actions', {})
    state['nodes'] = {name: normalize_node(node)
                      for name, node in state.get('nodes', {}).items()}
    networks = {}
    used = {n.get('net_id') for n in state.get('networks', {}).values()}
    for name, net in state.get('networks', {}).items():
        net = dict(net)
        net.setdefault('owner', 'admin')
        net['access'] = list(net.get('access') or [])
        if not net.get('net_id'):
            net['net_id'] = _free_vlan(state['vlan_range'], used)
            used.add(net['net_id'])
        net['net_id'] = str(net['net_id'])
        networks[name] = net
    state['networks'] = networks
    return state


def normalize_node(node):
    """Complete a seed node: {"project", "metadata", "nics"}."""
    node = copy.deepcopy(node)
    node.setdefault('project', None)
    node.setdefault('metadata', {})
    nics = _nics_by_label(node.get('nics', {}))
    for nic in nics.values():
        nic.setdefault('macaddr', None)
        nic.setdefault('switch', None)
        nic.setdefault('port', None)
        nic['networks'] = dict(nic.get('networks') or {})
        nic.setdefault('current_action', None)
    node['nics'] = nics
    return node


def _free_vlan(vlan_range, used):
    for vlan in range(vlan_range[0], vlan_range[1] + 1):
        if str(vlan) not in used:
            return str(vlan)
    raise AllocationError('No more networks')


class HILState(object):
    """HIL's database and its networking-action daemon, in memory."""

    def __init__(self, seed=None, path=None):
        self.lock = threading.RLock()
        self.path = path
        self.state = normalize_state(seed)
        self._timers = {}
        self.closed = False
        with self.lock:
            for status_id, action in self.state['actions'].items():
                if action['status'] == 'PENDING':
                    self._schedule(status_id)
            self.save()

    # --- persistence and the action daemon ---

    def save(self):
        if not self.path:
            return
        tmp = '%s.tmp' % self.path
        with open(tmp, 'w') as f:
            json.dump(self.state, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def snapshot(self):
        with self.lock:
            return copy.deepcopy(self.state)

    def close(self):
        with self.lock:
            self.closed = True
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()

    def _schedule(self, status_id):
        timer = threading.Timer(self.state['action_delay'], self._apply,
                                [status_id])
        timer.daemon = True
        self._timers[status_id] = timer
        timer.start()

    def _apply(self, status_id):
        with self.lock:
            self._timers.pop(status_id, None)
            action = self.state['actions'].get(status_id)
            if self.closed or not action or action['status'] != 'PENDING':
                return
            nic = self.state['nodes'][action['node']]['nics'][action['nic']]
            nic['current_action'] = None
            if nic['switch'] in self.state['failing_switches']:
                action['status'] = 'ERROR'
            else:
                networks = nic['networks']
                if action['new_network'] is None:
                    networks.pop(action['channel'], None)
                else:
                    networks[action['channel']] = action['new_network']
                action['status'] = 'DONE'
            self.save()

    def _queue(self, node, label, network, channel):
        nic = self.state['nodes'][node]['nics'][label]
        # HIL keeps one status record per nic: the last one.
        for old in [k for k, a in self.state['actions'].items()
                    if a['node'] == node and a['nic'] == label]:
            del self.state['actions'][old]
        status_id = str(uuid.uuid4())
        self.state['actions'][status_id] = {
            'status': 'PENDING', 'node': node, 'nic': label,
            'type': 'modify_port', 'channel': channel,
            'new_network': network}
        nic['current_action'] = status_id
        self._schedule(status_id)
        self.save()
        return status_id

    # --- authentication ---

    def authenticate(self, header):
        """The caller: (name, is_admin, projects)."""
        if self.state['auth'] == 'null':
            return ('admin', True, set())
        if not header or not header.startswith('Basic '):
            raise AuthorizationError('Authentication required')
        try:
            raw = base64.b64decode(header[6:], validate=True).decode()
            name, password = raw.split(':', 1)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise AuthorizationError('Malformed Authorization header')
        user = self.state['users'].get(name)
        if user is None:
            raise NotFoundError('user %r does not exist' % name)
        if user.get('password') != password:
            raise AuthorizationError('Invalid password for user %r' % name)
        return (name, bool(user.get('admin')), set(user.get('projects', [])))


class _Caller(object):
    def __init__(self, name, admin, projects):
        self.name = name
        self.admin = admin
        self.projects = projects

    def require_admin(self):
        if not self.admin:
            raise AuthorizationError('This operation is administrator-only.')

    def has_project(self, project):
        return self.admin or project in self.projects

    def require_project(self, project):
        if not self.has_project(project):
            raise AuthorizationError(
                'You do not have access to the required project.')


def _schema(body, required=(), optional=()):
    """Check a JSON body: an object with exactly these string fields."""
    if not isinstance(body, dict):
        raise ValidationError('Expected a JSON object')
    missing = [k for k in required if k not in body]
    extra = [k for k in body if k not in required and k not in optional]
    if missing or extra:
        raise ValidationError('Missing keys %s, unexpected keys %s'
                              % (missing, extra))
    for key, value in body.items():
        if not isinstance(value, (str, bool)):
            raise ValidationError('%r must be a string' % key)
    return body


class API(object):
    """HIL's routes over a HILState. Handlers return (status, body)."""

    ROUTES = [
        ('GET', r'/v0/nodes/(free|all)', 'list_nodes'),
        ('GET', r'/v0/node/([^/]+)', 'show_node'),
        ('PUT', r'/v0/node/([^/]+)', 'register_node'),
        ('DELETE', r'/v0/node/([^/]+)', 'delete_node'),
        ('PUT', r'/v0/node/([^/]+)/nic/([^/]+)', 'register_nic'),
        ('DELETE', r'/v0/node/([^/]+)/nic/([^/]+)', 'delete_nic'),
        ('GET', r'/v0/projects', 'list_projects'),
        ('PUT', r'/v0/project/([^/]+)', 'create_project'),
        ('DELETE', r'/v0/project/([^/]+)', 'delete_project'),
        ('GET', r'/v0/project/([^/]+)/nodes', 'project_nodes'),
        ('GET', r'/v0/project/([^/]+)/networks', 'project_networks'),
        ('POST', r'/v0/project/([^/]+)/connect_node', 'connect_node'),
        ('POST', r'/v0/project/([^/]+)/detach_node', 'detach_node'),
        ('GET', r'/v0/networks', 'list_networks'),
        ('PUT', r'/v0/network/([^/]+)', 'create_network'),
        ('GET', r'/v0/network/([^/]+)', 'show_network'),
        ('DELETE', r'/v0/network/([^/]+)', 'delete_network'),
        ('GET', r'/v0/network/([^/]+)/attachments', 'network_attachments'),
        ('POST', r'/v0/node/([^/]+)/nic/([^/]+)/connect_network',
         'connect_network'),
        ('POST', r'/v0/node/([^/]+)/nic/([^/]+)/detach_network',
         'detach_network'),
        ('GET', r'/v0/networking_action/([^/]+)', 'show_action'),
        ('GET', r'/_debug/state', 'debug_state'),
        ('PUT', r'/_debug/switch/([^/]+)', 'debug_switch'),
        ('PUT', r'/_debug/action_delay', 'debug_action_delay'),
        ('PUT', r'/_debug/node/([^/]+)', 'debug_put_node'),
    ]

    def __init__(self, hil_state):
        self.hil = hil_state
        self.routes = [(m, re.compile(p + r'/?$'), getattr(self, h))
                       for m, p, h in self.ROUTES]

    def dispatch(self, method, path, auth_header, body):
        """Answer one request: (status, JSON-able body or None)."""
        with self.hil.lock:
            known_path = False
            for route_method, regex, handler in self.routes:
                match = regex.match(path)
                if not match:
                    continue
                known_path = True
                if route_method != method:
                    continue
                caller = _Caller(*self.hil.authenticate(auth_header))
                return handler(caller, body, *match.groups())
            if known_path:
                return 405, {'type': 'MethodNotAllowed',
                             'msg': 'Method not allowed'}
            return 404, {'type': 'NotFound', 'msg': 'No such route'}

    # --- helpers ---

    @property
    def st(self):
        return self.hil.state

    def _node(self, name):
        try:
            return self.st['nodes'][name]
        except KeyError:
            raise NotFoundError('Node %r does not exist.' % name)

    def _nic(self, node, label):
        try:
            return self._node(node)['nics'][label]
        except KeyError:
            raise NotFoundError('Nic %r does not exist on node %r.'
                                % (label, node))

    def _network(self, name):
        try:
            return self.st['networks'][name]
        except KeyError:
            raise NotFoundError('Network %r does not exist.' % name)

    def _project(self, name):
        if name not in self.st['projects']:
            raise NotFoundError('Project %r does not exist.' % name)
        return name

    @staticmethod
    def _no_body(body):
        if body is not None:
            raise ValidationError('This request takes no body')

    def _network_visible(self, caller, net):
        return (caller.admin or not net['access']
                or any(caller.has_project(p) for p in net['access'])
                or (net['owner'] != 'admin'
                    and caller.has_project(net['owner'])))

    # --- nodes ---

    def list_nodes(self, caller, body, which):
        self._no_body(body)
        nodes = self.st['nodes']
        names = [n for n in nodes
                 if which == 'all' or nodes[n]['project'] is None]
        return 200, sorted(names)

    def show_node(self, caller, body, name):
        self._no_body(body)
        node = self._node(name)
        if node['project'] is not None:
            caller.require_project(node['project'])
        nics = []
        for label in sorted(node['nics']):
            nic = node['nics'][label]
            shown = {'label': label, 'macaddr': nic['macaddr'],
                     'networks': dict(nic['networks'])}
            if caller.admin:
                shown['port'] = nic['port']
                shown['switch'] = nic['switch']
            nics.append(shown)
        metadata = {k: json.dumps(v) for k, v in node['metadata'].items()}
        return 200, {'name': name, 'project': node['project'],
                     'metadata': metadata, 'nics': nics}

    def register_node(self, caller, body, name):
        # HIL 8c6de221 registers nodes with the external obmd daemon's
        # endpoint (there is no "obm" type any more).
        obmd = body.get('obmd') if isinstance(body, dict) else None
        if (not isinstance(body, dict) or set(body) - {'obmd', 'metadata'}
                or not isinstance(obmd, dict)
                or set(obmd) != {'uri', 'admin_token'}
                or not all(isinstance(v, str) for v in obmd.values())
                or not isinstance(body.get('metadata', {}), dict)):
            raise ValidationError('Expected {"obmd": {"uri": ..., '
                                  '"admin_token": ...}, "metadata": {...}}')
        caller.require_admin()
        if name in self.st['nodes']:
            raise DuplicateError('Node %r already exists.' % name)
        self.st['nodes'][name] = normalize_node(
            {'metadata': body.get('metadata', {})})
        self.hil.save()
        return 200, None

    def delete_node(self, caller, body, name):
        self._no_body(body)
        caller.require_admin()
        node = self._node(name)
        if node['project'] is not None:
            raise BlockedError('Node %r is part of project %r; remove from '
                               'project before deleting'
                               % (name, node['project']))
        if node['nics']:
            raise BlockedError('Node %r has nics; remove them before '
                               'deleting %r.' % (name, name))
        del self.st['nodes'][name]
        self.hil.save()
        return 200, None

    def register_nic(self, caller, body, name, label):
        body = _schema(body, required=('macaddr',))
        caller.require_admin()
        node = self._node(name)
        if label in node['nics']:
            raise DuplicateError('Nic %r already exists on node %r.'
                                 % (label, name))
        node['nics'][label] = normalize_node(
            {'nics': {label: {'macaddr': body['macaddr']}}})['nics'][label]
        self.hil.save()
        return 200, None

    def delete_nic(self, caller, body, name, label):
        self._no_body(body)
        caller.require_admin()
        nic = self._nic(name, label)
        if nic['networks'] or nic['current_action']:
            raise BlockedError('Nic %r of node %r has network attachments '
                               'or a pending action.' % (label, name))
        del self._node(name)['nics'][label]
        self.hil.save()
        return 200, None

    # --- projects ---

    def list_projects(self, caller, body):
        self._no_body(body)
        caller.require_admin()
        return 200, sorted(self.st['projects'])

    def create_project(self, caller, body, name):
        if body:
            _schema(body)
        caller.require_admin()
        if name in self.st['projects']:
            raise DuplicateError('Project %r already exists.' % name)
        self.st['projects'] = sorted(self.st['projects'] + [name])
        self.hil.save()
        return 200, None

    def delete_project(self, caller, body, name):
        if body:
            _schema(body)
        caller.require_admin()
        self._project(name)
        if any(n['project'] == name for n in self.st['nodes'].values()):
            raise BlockedError('Project has nodes still')
        if any(n['owner'] == name for n in self.st['networks'].values()):
            raise BlockedError('Project still has networks')
        if any(name in n['access'] for n in self.st['networks'].values()):
            raise BlockedError('Project can still access networks')
        self.st['projects'].remove(name)
        self.hil.save()
        return 200, None

    def project_nodes(self, caller, body, name):
        self._no_body(body)
        self._project(name)
        caller.require_project(name)
        return 200, sorted(n for n, node in self.st['nodes'].items()
                           if node['project'] == name)

    def project_networks(self, caller, body, name):
        self._no_body(body)
        self._project(name)
        caller.require_project(name)
        return 200, sorted(n for n, net in self.st['networks'].items()
                           if name in net['access'] or net['owner'] == name)

    def connect_node(self, caller, body, project):
        body = _schema(body, required=('node',))
        self._project(project)
        caller.require_project(project)
        node = self._node(body['node'])
        if node['project'] is not None:
            raise BlockedError('Node is already owned by a project.')
        node['project'] = project
        self.hil.save()
        return 200, None

    def detach_node(self, caller, body, project):
        body = _schema(body, required=('node',))
        self._project(project)
        caller.require_project(project)
        node = self._node(body['node'])
        if node['project'] != project:
            raise NotFoundError('Node not in project')
        if any(nic['networks'] for nic in node['nics'].values()):
            raise BlockedError('Node attached to a network')
        if any(nic['current_action'] for nic in node['nics'].values()):
            raise BlockedError('Node has pending network actions')
        node['project'] = None
        self.hil.save()
        return 200, None

    # --- networks ---

    def list_networks(self, caller, body):
        # As HIL 8c6de221: a dict by name, open to everyone; a non-admin
        # sees the public networks only.
        self._no_body(body)
        return 200, {name: {'network_id': net['net_id'],
                            'projects': sorted(net['access']) or None}
                     for name, net in sorted(self.st['networks'].items())
                     if caller.admin or not net['access']}

    def create_network(self, caller, body, name):
        body = _schema(body, required=('owner', 'access', 'net_id'))
        if name in self.st['networks']:
            raise DuplicateError('Network %r already exists.' % name)
        owner, access, net_id = body['owner'], body['access'], body['net_id']
        if owner == 'admin':
            caller.require_admin()
        else:
            self._project(owner)
            caller.require_project(owner)
        if access:
            self._project(access)
        if net_id:
            caller.require_admin()
            if not re.match(r'^[0-9]+$', net_id) or not (
                    1 <= int(net_id) <= 4094):
                raise BadArgumentError('Invalid VLAN id %r' % net_id)
            if any(n['net_id'] == net_id
                   for n in self.st['networks'].values()):
                raise DuplicateError('VLAN %s is already in use' % net_id)
        else:
            used = {n['net_id'] for n in self.st['networks'].values()}
            net_id = _free_vlan(self.st['vlan_range'], used)
        self.st['networks'][name] = {'owner': owner,
                                     'access': [access] if access else [],
                                     'net_id': net_id}
        self.hil.save()
        return 200, None

    def _connected_nodes(self, name):
        connected = {}
        for node_name, node in sorted(self.st['nodes'].items()):
            for label, nic in sorted(node['nics'].items()):
                if name in nic['networks'].values():
                    connected.setdefault(node_name, []).append(label)
        return connected

    def show_network(self, caller, body, name):
        self._no_body(body)
        net = self._network(name)
        if not self._network_visible(caller, net):
            raise AuthorizationError('You do not have access to the '
                                     'network %r.' % name)
        return 200, {'name': name,
                     'channels': [NATIVE, 'vlan/%s' % net['net_id']],
                     'owner': net['owner'],
                     'access': sorted(net['access']) or None,
                     'connected-nodes': self._connected_nodes(name)}

    def network_attachments(self, caller, body, name):
        self._no_body(body)
        net = self._network(name)
        if not self._network_visible(caller, net):
            raise AuthorizationError('You do not have access to the '
                                     'network %r.' % name)
        return 200, {node: {'project': self.st['nodes'][node]['project'],
                            'nics': nics}
                     for node, nics in self._connected_nodes(name).items()}

    def delete_network(self, caller, body, name):
        net = self._network(name)
        if net['owner'] == 'admin':
            caller.require_admin()
        else:
            caller.require_project(net['owner'])
        if self._connected_nodes(name):
            raise BlockedError('Network still connected to nodes')
        if any(a['status'] == 'PENDING' and a['new_network'] == name
               for a in self.st['actions'].values()):
            raise BlockedError('Network has pending actions')
        del self.st['networks'][name]
        self.hil.save()
        return 200, None

    # --- nic networking ---

    def connect_network(self, caller, body, node_name, label):
        body = _schema(body, required=('network',), optional=('channel',))
        node = self._node(node_name)
        nic = self._nic(node_name, label)
        net = self._network(body['network'])
        if node['project'] is None:
            raise ProjectMismatchError('Node not in project')
        caller.require_project(node['project'])
        if not nic['switch'] or not nic['port']:
            raise NotFoundError('No port is connected to given nic.')
        if nic['current_action']:
            raise BlockedError(
                'A networking operation is already active on the nic.')
        if net['access'] and node['project'] not in net['access']:
            raise ProjectMismatchError(
                'Project does not have access to given network.')
        if body['network'] in nic['networks'].values():
            raise BlockedError('The network is already attached to the nic.')
        channel = body.get('channel') or NATIVE
        if channel in nic['networks']:
            raise BlockedError('The channel is already in use on the nic.')
        if channel not in (NATIVE, 'vlan/%s' % net['net_id']):
            raise BadArgumentError(
                'Channel %r, is not legal for this network.' % channel)
        # Checked last, as HIL does (after the channel's legality).
        if (channel != NATIVE and NATIVE not in nic['networks']
                and nic['switch'] in self.st.get('native_first_switches',
                                                 [])):
            raise BlockedError('Please attach a native network first')
        status_id = self.hil._queue(node_name, label, body['network'],
                                    channel)
        return 202, {'status_id': status_id}

    def detach_network(self, caller, body, node_name, label):
        body = _schema(body, required=('network',))
        node = self._node(node_name)
        self._network(body['network'])
        nic = self._nic(node_name, label)
        if node['project'] is None:
            raise ProjectMismatchError('Node not in project')
        caller.require_project(node['project'])
        if nic['current_action']:
            raise BlockedError(
                'A networking operation is already active on the nic.')
        channels = [c for c, n in nic['networks'].items()
                    if n == body['network']]
        if not channels:
            raise BadArgumentError('The network is not attached to the nic.')
        if (channels[0] == NATIVE and len(nic['networks']) > 1
                and nic['switch'] in self.st.get('native_first_switches',
                                                 [])):
            raise BlockedError('Please remove all trunked Vlans before '
                               'removing the native vlan')
        status_id = self.hil._queue(node_name, label, None, channels[0])
        return 202, {'status_id': status_id}

    def show_action(self, caller, body, status_id):
        self._no_body(body)
        try:
            action = self.st['actions'][status_id]
        except KeyError:
            raise NotFoundError('Networking action %r does not exist.'
                                % status_id)
        caller.require_project(self.st['nodes'][action['node']]['project'])
        return 200, dict(action)

    # --- debug (admin only) ---

    def debug_state(self, caller, body):
        caller.require_admin()
        return 200, self.hil.snapshot()

    def debug_switch(self, caller, body, switch):
        caller.require_admin()
        if not isinstance(body, dict) or not isinstance(body.get('fail'),
                                                        bool):
            raise ValidationError('Expected {"fail": true|false}')
        failing = set(self.st['failing_switches'])
        if body['fail']:
            failing.add(switch)
        else:
            failing.discard(switch)
        self.st['failing_switches'] = sorted(failing)
        self.hil.save()
        return 200, None

    def debug_put_node(self, caller, body, name):
        """Create or replace a node from a seed document (nics cabled)."""
        caller.require_admin()
        if not isinstance(body, dict) or set(body) - {'project', 'metadata',
                                                      'nics'}:
            raise ValidationError('Expected a seed node: {"project", '
                                  '"metadata", "nics"}')
        try:
            node = normalize_node(body)
        except (KeyError, TypeError, AttributeError) as e:
            raise ValidationError('Malformed nics: %s' % e)
        if node['project'] is not None:
            self._project(node['project'])
        for nic in node['nics'].values():
            for network in nic['networks'].values():
                self._network(network)
        old = self.st['nodes'].get(name)
        if old and any(n['current_action'] for n in old['nics'].values()):
            raise BlockedError('Node %r has pending network actions' % name)
        self.st['nodes'][name] = node
        self.hil.save()
        return 200, None

    def debug_action_delay(self, caller, body):
        caller.require_admin()
        seconds = body.get('seconds') if isinstance(body, dict) else None
        if not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValidationError('Expected {"seconds": <number >= 0>}')
        self.st['action_delay'] = seconds
        self.hil.save()
        return 200, None


class Handler(http.server.BaseHTTPRequestHandler):
    """HTTP front end: parse, dispatch to the API, answer as HIL does."""

    protocol_version = 'HTTP/1.1'
    server_version = 'hil-test-server'

    def log_message(self, fmt, *args):
        if self.server.verbose:
            super().log_message(fmt, *args)

    def _answer(self, status, body, headers=()):
        data = b'' if body is None else json.dumps(body).encode()
        self.send_response(status)
        # The real HIL labels its JSON text/html.
        self.send_header('Content-Type', 'text/html; charset=utf-8')
        self.send_header('Content-Length', str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        length = int(self.headers.get('Content-Length') or 0)
        raw = self.rfile.read(length) if length else b''
        try:
            body = None
            if raw:
                if self.command == 'GET':
                    raise ValidationError('GET requests take no body')
                ctype = self.headers.get('Content-Type', '')
                if ctype.startswith('application/x-www-form-urlencoded'):
                    raise ValidationError('The request body must be JSON')
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise ValidationError('The request body is not JSON')
            status, answer = self.server.api.dispatch(
                self.command, self.path.split('?', 1)[0],
                self.headers.get('Authorization'), body)
        except HILError as e:
            headers = ()
            if isinstance(e, AuthorizationError):
                headers = (('WWW-Authenticate', 'Basic realm="hil"'),)
            self._answer(e.status, {'type': e.type, 'msg': e.msg}, headers)
            return
        except Exception:
            # HIL's 500s are not always JSON: neither are ours.
            data = traceback.format_exc().encode()
            self.send_response(500)
            self.send_header('Content-Type', 'text/plain')
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self._answer(status, answer)

    do_GET = do_PUT = do_POST = do_DELETE = _handle


class HILServer(http.server.ThreadingHTTPServer):
    """The server, runnable in a thread of a test or as a process.

    :param seed: a seed document (see ``normalize_state``); ignored when
        ``state_path`` names an existing file, which is then loaded.
    :param state_path: JSON file the state is saved to after each change.
    """

    daemon_threads = True

    def __init__(self, port=0, seed=None, state_path=None, verbose=False):
        if state_path and os.path.exists(state_path):
            with open(state_path) as f:
                seed = json.load(f)
        self.hil = HILState(seed, state_path)
        self.api = API(self.hil)
        self.verbose = verbose
        super().__init__(('127.0.0.1', port), Handler)

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.server_address[1]

    # A Python API for in-process tests.

    def start(self):
        self._thread = threading.Thread(target=self.serve_forever,
                                        kwargs={'poll_interval': 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()
        self.hil.close()

    def snapshot(self):
        return self.hil.snapshot()

    def fail_switch(self, switch, fail=True):
        self.api.debug_switch(_Caller('admin', True, set()),
                              {'fail': fail}, switch)
