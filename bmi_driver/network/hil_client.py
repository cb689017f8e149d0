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
:func:`~bmi_driver.network.hil_api.blocked_is_permanent`) fails at once
with HIL's message.

Every nic operation is idempotent and lets HIL decide: the client always
sends the connect or detach and reads HIL's refusal ("already attached",
"not attached"), because HIL checks for a pending action on the nic before
anything else. So an action that landed after an earlier call gave up (a
timeout) is found by the next operation on that nic: it waits for it, then
does what it was asked from HIL's state, not from a local record.

Names (nodes, nics, networks, projects) are data: checked against HIL's own
rule (:func:`~bmi_driver.network.hil_api.check_name`) and percent-encoded
in every URL path. What HIL's answers mean (names, error bodies, refusal
texts) is :mod:`bmi_driver.network.hil_api`; this module sends the requests
and waits for the actions.
"""

import collections
import json
import time

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from oslo_log import log
import tenacity

from bmi_driver.conf import CONF
from bmi_driver import exception
from bmi_driver.network import hil_api

LOG = log.getLogger(__name__)

GROUP = 'hil'

# HIL's names and refusal texts live in hil_api; these stay reachable here
# for the callers of the client.
NATIVE = hil_api.NATIVE
MAX_NAME_LENGTH = hil_api.MAX_NAME_LENGTH
NAME_KINDS = hil_api.NAME_KINDS
check_name = hil_api.check_name
blocked_is_permanent = hil_api.blocked_is_permanent

_API = '/v0'


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
        # {status id: when HIL accepted the action} (see _wait_for_action).
        self._accepted = {}
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

        :param path: built with :func:`hil_api.path` (encoded segments).
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
            raise hil_api.error_from_response(resp)
        if not resp.text:
            return None
        try:
            return json.loads(resp.text)
        except ValueError:
            raise exception.HILError(
                msg='%s %s answered %d with a body that is not JSON: %s'
                    % (method, path, resp.status_code,
                       resp.text[:hil_api.MAX_BODY]),
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
            answer = self._request('POST', path, body)
            if isinstance(answer, dict) and answer.get('status_id'):
                self._accepted[answer['status_id']] = time.monotonic()
            return answer
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
        return self._request('GET', hil_api.path('nodes', which))

    def get_node(self, node):
        """HIL's view of a node: project, metadata, nics and networks.

        :raises: HILInvalidName (before any request); HILNodeNotFound when
            HIL does not know the node; HILNodeNotVisible when HIL holds it
            for a project this HIL user has no access to.
        """
        check_name('node', node)
        try:
            return self._request('GET', hil_api.path('node', node))
        except exception.HILNotFound as e:
            if hil_api.is_unknown_node(e.hil_msg, node):
                raise exception.HILNodeNotFound(
                    node=node, msg=e.hil_msg, status=e.status, type=e.type,
                    hil_msg=e.hil_msg)
            raise
        except exception.HILAuthError as e:
            # Not a wrong password ("Authentication failed..."): HIL says
            # the node belongs to a project we cannot see. It does not say
            # which, and nor do we.
            if hil_api.hil_says(e, hil_api.NO_PROJECT_ACCESS):
                raise exception.HILNodeNotVisible(
                    node=node, msg=e.hil_msg, status=e.status, type=e.type,
                    hil_msg=e.hil_msg)
            raise

    def get_network(self, network):
        check_name('network', network)
        return self._request('GET', hil_api.path('network', network))

    def ensure_network(self, network, project):
        """Make project-owned network ``network`` unless it exists.

        HIL 8c6de221 allocates the VLAN of a project-owned network from
        its pool itself: it refuses a chosen ``net_id`` ("Project-owned
        networks must use network ID allocation"); only an admin-owned
        network may name its VLAN.

        :returns: True if it was created now.
        :raises: HILConflict when it exists but is not ``project``'s own.
        """
        check_name('network', network)
        check_name('project', project)
        try:
            self._request('PUT', hil_api.path('network', network),
                          {'owner': project, 'access': project,
                           'net_id': ''})
            LOG.info('HIL: created network %(net)s of project %(project)s',
                     {'net': network, 'project': project})
            return True
        except exception.HILConflict:
            pass
        # Already there (or a race lost): it must be the project's alone.
        info = self.get_network(network)
        if info.get('owner') != project or (info.get('access') or []) != [
                project]:
            # Whose it is goes to the log only: the text reaches the API
            # user (last_error), and HIL names are global, so another
            # project (one with HIL credentials of its own) may have
            # taken the name.
            LOG.warning('HIL network %(net)s exists as owner %(owner)s, '
                        'access %(access)s, not as project %(project)s\'s '
                        'own', {'net': network, 'owner': info.get('owner'),
                                'access': info.get('access'),
                                'project': project})
            raise exception.HILConflict(
                msg='HIL network %s exists but is not project %s\'s own '
                    '(the conductor\'s log says whose)' % (network, project),
                status=409, type='DuplicateError')
        return False

    def delete_network_if_unused(self, network):
        """Delete ``network`` unless a nic (or a pending action) uses it.

        :returns: True if it was deleted now, False if it is still used or
            was gone already.
        """
        check_name('network', network)
        try:
            self._request('DELETE', hil_api.path('network', network))
        except exception.HILNotFound:
            return False
        except exception.HILConflict as e:
            LOG.debug('HIL network %(net)s kept: %(err)s',
                      {'net': network, 'err': e})
            return False
        LOG.info('HIL: deleted network %s (no nic uses it)', network)
        return True

    def get_action(self, status_id):
        return self._request('GET', hil_api.path('networking_action',
                                                 status_id))

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
                self._request('POST', hil_api.path('project', project,
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
        # The holder to the log only: the text reaches the API user.
        LOG.warning('HIL node %(node)s belongs to HIL project %(holder)s, '
                    'not %(project)s', {'node': node, 'holder': holder,
                                        'project': project})
        raise exception.HILConflict(
            msg='node %s belongs to another HIL project, not %s'
                % (node, project), status=409, type='BlockedError')

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
            self._post_action(
                hil_api.path('project', project, 'detach_node'),
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
        done = []
        self.connect_networks(node, [(nic, network, channel)], done)
        return bool(done)

    def connect_networks(self, node, changes, done):
        """Make several attachments, the nics side by side.

        ``changes``: [(nic, network, channel)], as :meth:`_side_by_side`
        runs them: one HIL sweep for every nic's next change. Appends
        (nic, network) to ``done`` for every change HIL made now, as each
        lands, for the caller's undo. After a failure nothing more is
        posted; the changes already posted are waited for (none is left
        pending unseen), then the first error is raised.

        :raises: as :meth:`connect_network`.
        """
        def post(change, deadline):
            nic, network, channel = change
            return self._post_connect(node, nic, network, channel or NATIVE,
                                      deadline)

        def wait(change, status_id, deadline):
            nic, network, channel = change
            self._wait_connected(node, nic, network, channel or NATIVE,
                                 status_id, deadline)

        error = None
        for (nic, network, _), outcome in self._side_by_side(
                changes, post, wait, keep_going=False):
            if isinstance(outcome, exception.HILError):
                if error is None:
                    error = outcome
                else:
                    LOG.warning('HIL: %(err)s (after an earlier failure: '
                                '%(first)s)', {'err': outcome,
                                               'first': error})
            elif outcome:
                done.append((nic, network))
        if error is not None:
            raise error

    def _side_by_side(self, changes, post, wait, keep_going):
        """Run nic changes in rounds; yield (change, outcome) as each ends.

        HIL takes one action per nic at a time, and serve-networks applies
        every nic's pending action in one sweep (every 2 s by default, HIL
        8c6de221): each round posts the next change of every nic, then
        waits for them all; one nic's changes keep their order.

        ``changes``: tuples whose first item is the nic; ``post(change,
        deadline)`` returns HIL's status id, or None when there is nothing
        to do; ``wait(change, status_id, deadline)`` returns once it is
        done. The outcome is True (changed now), False (nothing to do) or
        the HILError it failed with. Without ``keep_going``, the first
        failure stops the posting (what is posted is still waited for).
        """
        rounds = []
        per_nic = collections.Counter()
        for change in changes:
            nic = change[0]
            if per_nic[nic] == len(rounds):
                rounds.append([])
            rounds[per_nic[nic]].append(change)
            per_nic[nic] += 1
        failed = False
        for batch in rounds:
            posted = []
            for change in batch:
                deadline = self._deadline()
                try:
                    status_id = post(change, deadline)
                except exception.HILError as e:
                    failed = True
                    yield change, e
                    if keep_going:
                        continue
                    break
                if status_id is None:
                    yield change, False
                else:
                    posted.append((change, status_id, deadline))
            for change, status_id, deadline in posted:
                try:
                    wait(change, status_id, deadline)
                except exception.HILError as e:
                    failed = True
                    yield change, e
                else:
                    yield change, True
            if failed and not keep_going:
                return

    def _post_connect(self, node, nic, network, channel, deadline):
        """POST a connect; its status id, or None if already connected."""
        check_name('node', node)
        check_name('nic', nic)
        check_name('network', network)
        path = hil_api.path('node', node, 'nic', nic, 'connect_network')

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
            return None
        LOG.info('HIL: connecting %(node)s/%(nic)s to %(net)s on '
                 '%(channel)s (action %(id)s)',
                 {'node': node, 'nic': nic, 'net': network,
                  'channel': channel, 'id': status_id})
        return status_id

    def _wait_connected(self, node, nic, network, channel, status_id,
                        deadline):
        self._wait_for_action(
            status_id, 'connect_network', node, nic, deadline,
            lambda n: (n.get('networks') or {}).get(channel) == network)

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
        deadline = self._deadline()
        status_id = self._post_detach(node, nic, network, deadline)
        if status_id is None:
            return False
        self._wait_detached(node, nic, network, status_id, deadline)
        return True

    def detach_networks(self, node, pairs):
        """Detach (nic, network) pairs, the nics side by side; try all.

        As :meth:`_side_by_side` runs them: one HIL sweep for every nic's
        next detach, a nic's own in the given order (tagged VLANs before
        the native one: the caller's order).

        :returns: [(nic, network, HILError)] of the detaches that failed.
        """
        def post(pair, deadline):
            return self._post_detach(node, pair[0], pair[1], deadline)

        def wait(pair, status_id, deadline):
            self._wait_detached(node, pair[0], pair[1], status_id, deadline)

        return [(nic, network, outcome)
                for (nic, network), outcome in self._side_by_side(
                    pairs, post, wait, keep_going=True)
                if isinstance(outcome, exception.HILError)]

    def _post_detach(self, node, nic, network, deadline):
        """POST a detach; its status id, or None if nothing to detach."""
        check_name('node', node)
        check_name('nic', nic)
        check_name('network', network)
        path = hil_api.path('node', node, 'nic', nic, 'detach_network')

        def _detach():
            try:
                answer = self._post_action(path, {'network': network},
                                           'detach_network', node, nic)
            except exception.HILBadRequest as e:
                if hil_api.hil_says(e, hil_api.NOT_ATTACHED):
                    return None
                raise
            except exception.HILConflict as e:
                # HIL refuses any nic change of a node in no project; such
                # a node has no attachments (HIL's detach_node refuses a
                # node that has some).
                if (e.type == 'ProjectMismatchError'
                        and hil_api.hil_says(
                            e, hil_api.NODE_NOT_IN_PROJECT)):
                    return None
                raise
            return answer['status_id']

        status_id = self._retry_while_blocked(_detach, 'detach_network',
                                              node, nic, deadline)
        if status_id is None:
            LOG.debug('HIL: %(node)s/%(nic)s is not on %(net)s',
                      {'node': node, 'nic': nic, 'net': network})
            return None
        LOG.info('HIL: detaching %(node)s/%(nic)s from %(net)s (action '
                 '%(id)s)', {'node': node, 'nic': nic, 'net': network,
                             'id': status_id})
        return status_id

    def _wait_detached(self, node, nic, network, status_id, deadline):
        self._wait_for_action(
            status_id, 'detach_network', node, nic, deadline,
            lambda n: network not in (n.get('networks') or {}).values())

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

        # The first look one interval after HIL took the action: HIL
        # 8c6de221 queues it for serve-networks' next sweep (every 2 s by
        # default), so at once it is always PENDING, and each look costs
        # HIL a request (a password hash with its database auth). Actions
        # posted together (connect_networks) wait once: the others' time
        # has passed by the time the first is done.
        accepted = self._accepted.pop(status_id, None)
        if accepted is not None:
            time.sleep(max(0, min(accepted + self.poll_interval, deadline)
                           - time.monotonic()))
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
