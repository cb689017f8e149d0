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
A 409 while another action is pending on the nic is waited out and retried.
Every operation is idempotent: connecting what is already connected the same
way, or detaching what is not attached, succeeds without a request to
change anything.
"""

import json
import time

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


class _Blocked(Exception):
    """HIL answered BlockedError: an action is pending; try again later."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


def _error_from_response(resp):
    """The HILError matching an error response of HIL."""
    type_ = None
    try:
        body = json.loads(resp.text)
    except ValueError:
        body = None
    if isinstance(body, dict) and 'msg' in body:
        msg = str(body['msg'])
        type_ = body.get('type')
    else:
        text = (resp.text or '').strip()
        msg = text[:_MAX_BODY] or resp.reason or 'no message'
    if type_:
        msg = '%s (%s, HTTP %d)' % (msg, type_, resp.status_code)
    else:
        msg = '%s (HTTP %d)' % (msg, resp.status_code)
    cls = _ERRORS_BY_STATUS.get(resp.status_code, exception.HILError)
    return cls(msg=msg, status=resp.status_code, type=type_)


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
        """Send one request; return the decoded JSON answer (or None)."""
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
            raise exception.HILTimeout(action=action, node=node, nic=nic,
                                       timeout=self.action_timeout)

    def _post_action(self, path, body):
        try:
            return self._request('POST', path, body)
        except exception.HILConflict as e:
            if e.type == 'BlockedError':
                raise _Blocked(e)
            raise

    # --- nodes and projects ---

    def list_nodes(self, which='all'):
        """Names of HIL's nodes: ``which`` is 'all' or 'free'."""
        return self._request('GET', '/nodes/%s' % which)

    def get_node(self, node):
        """HIL's view of a node: project, metadata, nics and networks."""
        return self._request('GET', '/node/%s' % node)

    def get_network(self, network):
        return self._request('GET', '/network/%s' % network)

    def get_action(self, status_id):
        return self._request('GET', '/networking_action/%s' % status_id)

    def connect_node(self, project, node):
        """Allocate a free node to a project (no-op when already there).

        :returns: True if the node was connected now, False if it already
            was in the project.
        :raises: HILConflict if another project holds the node.
        """
        holder = self.get_node(node).get('project')
        if holder == project:
            return False
        if holder is None:
            try:
                self._request('POST', '/project/%s/connect_node' % project,
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

        :raises: HILConflict if the node still has network attachments.
        """
        def _detach():
            info = self.get_node(node)
            if info.get('project') != project:
                return False
            attached = sorted('%s:%s' % (n['label'], net)
                              for n in info.get('nics', [])
                              for net in n.get('networks', {}).values())
            if attached:
                raise exception.HILConflict(
                    msg='node %s still has network attachments (%s)'
                        % (node, ', '.join(attached)),
                    status=409, type='BlockedError')
            self._post_action('/project/%s/detach_node' % project,
                              {'node': node})
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

    def connect_network(self, node, nic, network, channel=NATIVE):
        """Attach a nic to a network on a channel and wait until done.

        :returns: True if HIL made the change now, False if the nic already
            was on that network on that channel.
        :raises: HILConflict if the nic has the network on another channel
            or the channel holds another network; HILActionFailed if the
            switch failed; HILTimeout.
        """
        channel = channel or NATIVE
        deadline = self._deadline()

        def _connect():
            networks = self._nic(node, nic).get('networks') or {}
            current = networks.get(channel)
            if current == network:
                return None
            if current is not None:
                raise exception.HILConflict(
                    msg='channel %s of %s/%s already carries network %s'
                        % (channel, node, nic, current),
                    status=409, type='BlockedError')
            for other_channel, name in networks.items():
                if name == network:
                    raise exception.HILConflict(
                        msg='network %s is already on %s/%s, on channel %s '
                            'instead of %s' % (network, node, nic,
                                               other_channel, channel),
                        status=409, type='BlockedError')
            answer = self._post_action(
                '/node/%s/nic/%s/connect_network' % (node, nic),
                {'network': network, 'channel': channel})
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

        :returns: True if HIL made the change now, False if the network was
            not attached.
        :raises: HILActionFailed, HILTimeout.
        """
        deadline = self._deadline()

        def _detach():
            networks = self._nic(node, nic).get('networks') or {}
            if network not in networks.values():
                return None
            try:
                answer = self._post_action(
                    '/node/%s/nic/%s/detach_network' % (node, nic),
                    {'network': network})
            except exception.HILBadRequest:
                # Detached meanwhile ("not attached"): check again.
                networks = self._nic(node, nic).get('networks') or {}
                if network not in networks.values():
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
