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


"""A client of HIL's REST API (``/v0``) on keystoneauth1.

The session, authentication and adapter come from the ``[hil]`` group
(``auth_type`` none, http_basic or a Keystone plugin; the HIL URL is
``endpoint_override`` or ``url``). HIL's error bodies (``{"type", "msg"}``)
become the ``HIL*`` exceptions of :mod:`bmi_driver.exception`.

Nic operations are asynchronous in HIL: they answer 202 and a ``status_id``
that this client polls until DONE or ERROR, within ``[hil] action_timeout``.
A 409 BlockedError while another action is pending on the nic is waited out
and retried; a BlockedError that can never clear (see
:func:`blocked_is_permanent`) fails at once with HIL's message.

Every nic operation is idempotent and lets HIL decide: the client always
sends the connect or detach and reads HIL's refusal ("already attached",
"not attached"), because HIL checks for a pending action on the nic before
anything else. So an action that landed after an earlier call gave up (a
timeout) is found by the next operation on that nic: it waits for it, then
does what it was asked from HIL's state, not from a local record.

Names (nodes, nics, networks, projects) are data: checked against HIL's own
rule (:func:`check_name`) and percent-encoded in every URL path.
"""

import json
import re
import time
import urllib.parse

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from oslo_log import log
import tenacity

from bmi_driver.conf import CONF
from bmi_driver import exception

LOG = log.getLogger(__name__)

GROUP = 'hil'

NATIVE = 'vlan/native'
_API = '/v0'

_ERRORS_BY_STATUS = {
    400: exception.HILBadRequest,
    401: exception.HILAuthError,
    403: exception.HILAuthError,
    404: exception.HILNotFound,
    409: exception.HILConflict,
}

# Longest piece of a non-JSON error body quoted in an exception.
_MAX_BODY = 300


# --- names -----------------------------------------------------------------
# HIL 8c6de221 has no rule for names on the server (plain db.String
# columns); its own client library (hil/client/base.py, _find_reserved)
# refuses every character outside [A-Za-z0-9 /$_.+!*'(),-], and '/'. We take
# that set without the space, refuse '..' (a path segment to the server's
# routing or to a proxy in front of it) and bound the length. A name that
# passes is still percent-encoded (quote, safe='') in URL paths.
_NAME_RE = re.compile(r"^[A-Za-z0-9$_.+!*'(),-]+$")
MAX_NAME_LENGTH = 255
NAME_KINDS = ('node', 'nic', 'network', 'project')


def check_name(kind, value):
    """Refuse a HIL name that is not plain data.

    :param kind: 'node', 'nic', 'network' or 'project', for the message.
    :returns: the name.
    :raises: HILInvalidName
    """
    def refuse(reason):
        shown = value
        if isinstance(value, str) and len(value) > 64:
            shown = value[:64] + '...'
        raise exception.HILInvalidName(kind=kind, value=shown, reason=reason)

    if not isinstance(value, str) or not value:
        refuse('a HIL name is a non-empty string')
    if len(value) > MAX_NAME_LENGTH:
        refuse('longer than %d characters' % MAX_NAME_LENGTH)
    if not _NAME_RE.match(value):
        bad = sorted({c for c in value if not _NAME_RE.match(c)})
        refuse("HIL names hold only letters, digits and $_.+!*'(),- "
               "(found %s)" % ', '.join(repr(c) for c in bad))
    if '..' in value:
        refuse("'..' is not allowed")
    return value


def _path(*parts):
    """A URL path of literal segments, each percent-encoded."""
    return '/' + '/'.join(urllib.parse.quote(str(p), safe='') for p in parts)


# --- HIL's refusals ----------------------------------------------------------
# HIL answers 409 BlockedError both for "try again later" and for refusals
# that never clear. These are the BlockedError texts of HIL 8c6de221
# (hil/api.py, hil/ext/switches/common.py, hil/ext/network_allocators/
# vlan_pool.py) that waiting cannot clear. They are matched case-blind, on
# collapsed whitespace, without trailing punctuation, as prefixes (a later
# HIL may add detail after them).
_PERMANENT_BLOCKS = (
    # The switch rule (check_native_networks): a tagged VLAN needs a native
    # one on the nic, and the native one goes last.
    'please attach a native network first',
    'please remove all trunked vlans before removing the native vlan',
    # project_detach_node
    'node attached to a network',
    "node's obm is enabled",
    # project_connect_node
    'node is already owned by a project',
    # node_connect_network; the caller reads the nic's state to tell.
    'the network is already attached to the nic',
    'the channel is already in use on the nic',
    # Power, network creation, deletions: not used by the plugin, not worth
    # waiting for either.
    'obm is not enabled',
    'network id is not available',
    'project has nodes still',
    'project still has',
    'project can still access networks',
    'network still connected to',
    'nic is on a node that belongs to a project',
    'the port is attached to a node',
)
# The transient ones of HIL 8c6de221: "A networking operation is already
# active on the nic." (check_pending_action, which connect_network and
# detach_network call before any other check of the nic), "Node has pending
# network actions" (detach_node), "There are pending actions on this
# network" (network deletion).
_TRANSIENT_MARKERS = ('already active', 'pending')

# Other texts of HIL 8c6de221 the client reads: detach_network's 400
# BadArgumentError for a nic that is not on the network; get_or_404's "Node
# <name> does not exist."; auth.require_project_access's 401
# AuthorizationError, which is what a GET of another project's node
# answers with database or Keystone auth (it does not say "held by another
# project", nor which project); connect/detach_network's 409
# ProjectMismatchError for a free node.
_NOT_ATTACHED = 'the network is not attached to the nic'
_NO_PROJECT_ACCESS = 'you do not have access to the required project'
_NODE_NOT_IN_PROJECT = 'node not in project'


def _normalize(msg):
    return ' '.join(str(msg or '').lower().split()).rstrip(' .!')


def blocked_is_permanent(msg):
    """Whether a BlockedError text of HIL is a refusal that never clears.

    An unknown text (another HIL version, another switch driver) counts as
    transient: it is waited out, up to ``[hil] action_timeout``, and the
    timeout then quotes HIL's text. A 409 refusal changed nothing in HIL,
    so either choice leaves HIL as it was; waiting costs time, but giving
    up at once on a text that would have cleared abandons, for example, a
    detach at undeploy and leaves a tenant network on the nic. (Texts
    checked against HIL commit 8c6de221.)
    """
    text = _normalize(msg)
    if any(text.startswith(p) for p in _PERMANENT_BLOCKS):
        return True
    if not any(m in text for m in _TRANSIENT_MARKERS):
        LOG.warning('HIL answered a BlockedError this client does not know '
                    '(%r): treated as transient and waited out', msg)
    return False


# "Node <name> does not exist." (HIL 8c6de221); the name may come quoted
# (Python reprs, u'...'), as HIL quotes names in other messages.
_UNKNOWN_NODE_RE = re.compile(
    r"""^node\s+u?(['"]?)(?P<name>.+)\1\s+does not exist$""")


def _is_unknown_node(hil_msg, node):
    """Whether a 404 text says that HIL has no node ``node``.

    Not the 404 of an unknown user (database auth) or of another object:
    those must not pass for "the node is gone".
    """
    match = _UNKNOWN_NODE_RE.match(_normalize(hil_msg))
    return bool(match) and match.group('name') == node.lower()


def _hil_says(error, text):
    return _normalize(getattr(error, 'hil_msg', None)).startswith(text)


def _error_from_response(resp):
    """The HILError matching an error response of HIL."""
    type_ = None
    hil_msg = None
    try:
        body = json.loads(resp.text)
    except ValueError:
        body = None
    if isinstance(body, dict) and 'msg' in body:
        msg = hil_msg = str(body['msg'])
        type_ = body.get('type')
    else:
        text = (resp.text or '').strip()
        msg = text[:_MAX_BODY] or resp.reason or 'no message'
    if type_:
        msg = '%s (%s, HTTP %d)' % (msg, type_, resp.status_code)
    else:
        msg = '%s (HTTP %d)' % (msg, resp.status_code)
    cls = _ERRORS_BY_STATUS.get(resp.status_code, exception.HILError)
    return cls(msg=msg, status=resp.status_code, type=type_,
               hil_msg=hil_msg)


class _Blocked(Exception):
    """HIL answered a transient BlockedError: an action is pending."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


class HILClient(object):
    """HIL's API, as the ``hil`` network interface needs it.

    :param adapter: a keystoneauth1 Adapter whose endpoint is the HIL root
        URL; by default loaded from the ``[hil]`` options.
    """

    def __init__(self, adapter=None):
        self.poll_interval = CONF.hil.action_poll_interval
        self.action_timeout = CONF.hil.action_timeout
        self.adapter = adapter or self._load_adapter()
        self.url = self.adapter.endpoint_override or CONF.hil.url

    @staticmethod
    def _load_adapter():
        url = CONF.hil.endpoint_override or CONF.hil.url
        if not url:
            raise exception.HILError(
                msg='no HIL URL configured: set [hil] url (or '
                    'endpoint_override)')
        try:
            auth = ks_loading.load_auth_from_conf_options(CONF, GROUP)
            session = ks_loading.load_session_from_conf_options(
                CONF, GROUP, auth=auth)
            return ks_loading.load_adapter_from_conf_options(
                CONF, GROUP, session=session, auth=auth,
                endpoint_override=url.rstrip('/'))
        except (ks_exc.NoMatchingPlugin, ks_exc.MissingRequiredOptions,
                ks_exc.OptionError, TypeError) as e:
            raise exception.HILError(
                msg='invalid [hil] authentication options: %s' % e)

    # --- plumbing ---

    def _request(self, method, path, body=None):
        """Send one request; return the decoded JSON answer (or None).

        :param path: built with :func:`_path` (encoded segments).
        """
        kwargs = {'raise_exc': False}
        if body is not None:
            kwargs['json'] = body
        try:
            resp = self.adapter.request(_API + path, method, **kwargs)
        except ks_exc.ConnectionError as e:
            raise exception.HILUnreachable(url=self.url, reason=e)
        except ks_exc.HttpError as e:
            # Raised by a Keystone auth plugin getting its token.
            raise exception.HILAuthError(
                msg='Keystone: %s' % e.message, status=e.http_status)
        except (ks_exc.MissingAuthPlugin, ks_exc.EndpointNotFound,
                ks_exc.AuthorizationFailure, ks_exc.DiscoveryFailure) as e:
            # The auth plugin could not get a token (Keystone unreachable,
            # no usable identity endpoint, ...).
            raise exception.HILAuthError(msg='Keystone: %s' % e)
        except ks_exc.ClientException as e:
            raise exception.HILError(msg='%s %s: %s' % (method, path, e))
        if resp.status_code >= 400:
            raise _error_from_response(resp)
        if not resp.text:
            return None
        try:
            return json.loads(resp.text)
        except ValueError:
            raise exception.HILError(
                msg='%s %s answered %d with a body that is not JSON: %s'
                    % (method, path, resp.status_code,
                       resp.text[:_MAX_BODY]),
                status=resp.status_code)

    def _deadline(self):
        """When an operation begun now must be over."""
        return time.monotonic() + self.action_timeout

    @staticmethod
    def _until(deadline):
        """A tenacity stop condition: past the deadline."""
        return tenacity.stop_after_delay(max(0, deadline - time.monotonic()))

    def _retry_while_blocked(self, func, action, node, nic, deadline):
        """Call ``func`` until it does not raise _Blocked, or the deadline."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Blocked),
            wait=tenacity.wait_fixed(self.poll_interval),
            stop=self._until(deadline),
            reraise=True)
        try:
            return retrying(func)
        except _Blocked as e:
            LOG.warning('HIL kept %(node)s/%(nic)s blocked for %(action)s: '
                        '%(err)s', {'node': node, 'nic': nic,
                                    'action': action, 'err': e.error})
            raise exception.HILTimeout(
                'HIL networking action %(action)s on %(node)s/%(nic)s did '
                'not finish within %(timeout)s seconds: HIL kept answering '
                '"%(msg)s"' % {'action': action, 'node': node, 'nic': nic,
                               'timeout': self.action_timeout,
                               'msg': e.error.hil_msg or e.error},
                action=action, node=node, nic=nic,
                timeout=self.action_timeout, status=409,
                type='BlockedError', hil_msg=e.error.hil_msg)

    def _post_action(self, path, body, action, node, nic):
        """POST a change; a BlockedError is _Blocked or HILRefused."""
        try:
            return self._request('POST', path, body)
        except exception.HILConflict as e:
            if e.type != 'BlockedError':
                raise
            if blocked_is_permanent(e.hil_msg):
                raise exception.HILRefused(
                    action=action, node=node, nic=nic, msg=e.hil_msg,
                    status=e.status, type=e.type, hil_msg=e.hil_msg)
            raise _Blocked(e)

    # --- nodes and projects ---

    def list_nodes(self, which='all'):
        """Names of HIL's nodes: ``which`` is 'all' or 'free'."""
        if which not in ('all', 'free'):
            raise ValueError('which must be "all" or "free", not %r'
                             % (which,))
        return self._request('GET', _path('nodes', which))

    def get_node(self, node):
        """HIL's view of a node: project, metadata, nics and networks.

        :raises: HILInvalidName (before any request); HILNodeNotFound when
            HIL does not know the node; HILNodeNotVisible when HIL holds it
            for a project this HIL user has no access to.
        """
        check_name('node', node)
        try:
            return self._request('GET', _path('node', node))
        except exception.HILNotFound as e:
            if _is_unknown_node(e.hil_msg, node):
                raise exception.HILNodeNotFound(
                    node=node, msg=e.hil_msg, status=e.status, type=e.type,
                    hil_msg=e.hil_msg)
            raise
        except exception.HILAuthError as e:
            # Not a wrong password ("Authentication failed..."): HIL says
            # the node belongs to a project we cannot see. It does not say
            # which, and nor do we.
            if _hil_says(e, _NO_PROJECT_ACCESS):
                raise exception.HILNodeNotVisible(
                    node=node, msg=e.hil_msg, status=e.status, type=e.type,
                    hil_msg=e.hil_msg)
            raise

    def get_network(self, network):
        check_name('network', network)
        return self._request('GET', _path('network', network))

    def get_action(self, status_id):
        return self._request('GET', _path('networking_action', status_id))

    def connect_node(self, project, node):
        """Allocate a free node to a project (no-op when already there).

        :returns: True if the node was connected now, False if it already
            was in the project.
        :raises: HILConflict if another project holds the node.
        """
        check_name('project', project)
        holder = self.get_node(node).get('project')
        if holder == project:
            return False
        if holder is None:
            try:
                self._request('POST', _path('project', project,
                                            'connect_node'),
                              {'node': node})
                LOG.info('HIL: connected node %(node)s to project '
                         '%(project)s', {'node': node, 'project': project})
                return True
            except exception.HILConflict:
                # Lost a race: look at who won.
                holder = self.get_node(node).get('project')
                if holder == project:
                    return False
        raise exception.HILConflict(
            msg='node %s belongs to HIL project %s, not %s'
                % (node, holder, project), status=409, type='BlockedError')

    def detach_node(self, project, node):
        """Free a node from a project (no-op when it is not in it).

        Waits for pending networking actions of the node to end.

        :raises: HILRefused at once if the node still has network
            attachments or its OBM enabled.
        """
        check_name('project', project)

        def _detach():
            info = self.get_node(node)
            if info.get('project') != project:
                return False
            attached = sorted('%s:%s' % (n['label'], net)
                              for n in info.get('nics', [])
                              for net in n.get('networks', {}).values())
            if attached:
                raise exception.HILRefused(
                    action='detach_node', node=node, nic='*',
                    msg='Node attached to a network (%s)'
                        % ', '.join(attached),
                    status=409, type='BlockedError')
            self._post_action(_path('project', project, 'detach_node'),
                              {'node': node}, 'detach_node', node, '*')
            LOG.info('HIL: detached node %(node)s from project %(project)s',
                     {'node': node, 'project': project})
            return True

        return self._retry_while_blocked(_detach, 'detach_node', node, '*',
                                         self._deadline())

    # --- nic networking ---

    def _nic(self, node, nic):
        for n in self.get_node(node).get('nics', []):
            if n.get('label') == nic:
                return n
        raise exception.HILNotFound(
            msg='node %s has no nic %s' % (node, nic), status=404,
            type='NotFoundError')

    def nic_networks(self, node, nic):
        """{channel: network} of a nic, as HIL has it now."""
        return self._nic(node, nic).get('networks') or {}

    def connect_network(self, node, nic, network, channel=NATIVE):
        """Attach a nic to a network on a channel and wait until done.

        The connect is always sent: HIL refuses it while an action is
        pending on the nic (waited out), and says "already attached" when
        it is (then the nic's state tells whether that is success).

        :returns: True if HIL made the change now, False if the nic already
            was on that network on that channel.
        :raises: HILInvalidName; HILConflict if the nic has the network on
            another channel or the channel holds another network;
            HILRefused for a switch rule (no tagged VLAN without a native
            one); HILActionFailed if the switch failed; HILTimeout.
        """
        channel = channel or NATIVE
        check_name('node', node)
        check_name('nic', nic)
        check_name('network', network)
        deadline = self._deadline()
        path = _path('node', node, 'nic', nic, 'connect_network')

        def _connect():
            try:
                answer = self._post_action(
                    path, {'network': network, 'channel': channel},
                    'connect_network', node, nic)
            except exception.HILRefused as refused:
                # HIL checked for a pending action first: this is the
                # nic's settled state.
                networks = self.nic_networks(node, nic)
                current = networks.get(channel)
                if current == network:
                    return None
                if current is not None:
                    raise exception.HILConflict(
                        msg='channel %s of %s/%s already carries network %s'
                            % (channel, node, nic, current),
                        status=409, type='BlockedError',
                        hil_msg=refused.hil_msg)
                for other_channel, name in networks.items():
                    if name == network:
                        raise exception.HILConflict(
                            msg='network %s is already on %s/%s, on channel '
                                '%s instead of %s' % (network, node, nic,
                                                      other_channel,
                                                      channel),
                            status=409, type='BlockedError',
                            hil_msg=refused.hil_msg)
                raise
            return answer['status_id']

        status_id = self._retry_while_blocked(_connect, 'connect_network',
                                              node, nic, deadline)
        if status_id is None:
            LOG.debug('HIL: %(node)s/%(nic)s already on %(net)s '
                      '(%(channel)s)', {'node': node, 'nic': nic,
                                        'net': network, 'channel': channel})
            return False
        LOG.info('HIL: connecting %(node)s/%(nic)s to %(net)s on '
                 '%(channel)s (action %(id)s)',
                 {'node': node, 'nic': nic, 'net': network,
                  'channel': channel, 'id': status_id})
        self._wait_for_action(
            status_id, 'connect_network', node, nic, deadline,
            lambda n: (n.get('networks') or {}).get(channel) == network)
        return True

    def detach_network(self, node, nic, network):
        """Detach a network from a nic and wait until done.

        The detach is always sent, also when the nic does not show the
        network: an earlier connect that gave up may still be pending, and
        HIL refuses the detach until it has landed (waited out), then the
        detach undoes it. HIL's "not attached" is success.

        :returns: True if HIL made the change now, False if the network was
            not attached (or the node is free: a free node has none).
        :raises: HILInvalidName, HILRefused (the switch rule: tagged VLANs
            before the native one), HILActionFailed, HILTimeout.
        """
        check_name('node', node)
        check_name('nic', nic)
        check_name('network', network)
        deadline = self._deadline()
        path = _path('node', node, 'nic', nic, 'detach_network')

        def _detach():
            try:
                answer = self._post_action(path, {'network': network},
                                           'detach_network', node, nic)
            except exception.HILBadRequest as e:
                if _hil_says(e, _NOT_ATTACHED):
                    return None
                raise
            except exception.HILConflict as e:
                # HIL refuses any nic change of a node in no project; such
                # a node has no attachments (HIL's detach_node refuses a
                # node that has some).
                if (e.type == 'ProjectMismatchError'
                        and _hil_says(e, _NODE_NOT_IN_PROJECT)):
                    return None
                raise
            return answer['status_id']

        status_id = self._retry_while_blocked(_detach, 'detach_network',
                                              node, nic, deadline)
        if status_id is None:
            LOG.debug('HIL: %(node)s/%(nic)s is not on %(net)s',
                      {'node': node, 'nic': nic, 'net': network})
            return False
        LOG.info('HIL: detaching %(node)s/%(nic)s from %(net)s (action '
                 '%(id)s)', {'node': node, 'nic': nic, 'net': network,
                             'id': status_id})
        self._wait_for_action(
            status_id, 'detach_network', node, nic, deadline,
            lambda n: network not in (n.get('networks') or {}).values())
        return True

    def _wait_for_action(self, status_id, action, node, nic, deadline,
                         reached):
        """Poll an action until DONE; raise on ERROR or past the deadline.

        ``reached(nic_info)`` tells whether the nic is in the state the
        action was to bring, for when HIL has dropped the status record
        (it does when the nic's next action is queued).
        """
        def _status():
            try:
                return self.get_action(status_id).get('status')
            except exception.HILNotFound:
                return 'DONE' if reached(self._nic(node, nic)) else 'ERROR'

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda s: s == 'PENDING'),
            wait=tenacity.wait_fixed(self.poll_interval),
            stop=self._until(deadline),
            retry_error_callback=lambda state: state.outcome.result())
        status = retrying(_status)
        if status == 'DONE':
            LOG.debug('HIL action %(id)s done (%(left).1f s to spare)',
                      {'id': status_id,
                       'left': deadline - time.monotonic()})
            return
        if status == 'PENDING':
            # The action stays queued in HIL and may land later; the next
            # connect or detach of this nic waits for it and reconciles.
            raise exception.HILTimeout(action=action, node=node, nic=nic,
                                       timeout=self.action_timeout)
        if status == 'ERROR':
            msg = ('HIL could not apply the change to the switch port '
                   '(action %s)' % status_id)
        else:
            msg = 'unexpected action status %r (action %s)' % (status,
                                                               status_id)
        raise exception.HILActionFailed(action=action, node=node, nic=nic,
                                        msg=msg)


def get_client():
    """A HILClient configured from the ``[hil]`` options."""
    return HILClient()
