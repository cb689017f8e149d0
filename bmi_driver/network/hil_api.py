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

"""What HIL's API says, as data: names, channels, errors, refusals.

No I/O: the rule a HIL name must follow and the URL paths built from names;
HIL's error bodies (``{"type", "msg"}``) as the ``HIL*`` exceptions of
:mod:`bmi_driver.exception`; and HIL's refusal texts classified (a
BlockedError that clears or one that never does, "not attached", "does not
exist", "no access"). Every text is HIL commit 8c6de221's. The client that
sends the requests is :mod:`bmi_driver.network.hil_client`.
"""

import json
import re
import urllib.parse

from oslo_log import log

from bmi_driver import exception

LOG = log.getLogger(__name__)

NATIVE = 'vlan/native'

_ERRORS_BY_STATUS = {
    400: exception.HILBadRequest,
    401: exception.HILAuthError,
    403: exception.HILAuthError,
    404: exception.HILNotFound,
    409: exception.HILConflict,
}

# Longest piece of a non-JSON error body quoted in an exception.
MAX_BODY = 300


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


def path(*parts):
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
NOT_ATTACHED = 'the network is not attached to the nic'
NO_PROJECT_ACCESS = 'you do not have access to the required project'
NODE_NOT_IN_PROJECT = 'node not in project'


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


def is_unknown_node(hil_msg, node):
    """Whether a 404 text says that HIL has no node ``node``.

    Not the 404 of an unknown user (database auth) or of another object:
    those must not pass for "the node is gone".
    """
    match = _UNKNOWN_NODE_RE.match(_normalize(hil_msg))
    return bool(match) and match.group('name') == node.lower()


def hil_says(error, text):
    return _normalize(getattr(error, 'hil_msg', None)).startswith(text)


_TAG = re.compile(r'<[^>]*>')


def _words(body):
    """An error body as one line of words, HTML tags dropped.

    HIL 8c6de221 answers an unhandled error (its database gone, say: the
    soak's ``hil_500``) with Werkzeug 0.9.6's HTML page ``500 Internal
    Server Error``, which would otherwise go into a node's last_error tags
    and all.
    """
    return ' '.join(_TAG.sub(' ', body).split())


def error_from_response(resp):
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
        msg = _words(resp.text or '')[:MAX_BODY] or resp.reason or 'no message'
    if type_:
        msg = '%s (%s, HTTP %d)' % (msg, type_, resp.status_code)
    else:
        msg = '%s (HTTP %d)' % (msg, resp.status_code)
    cls = _ERRORS_BY_STATUS.get(resp.status_code, exception.HILError)
    return cls(msg=msg, status=resp.status_code, type=type_,
               hil_msg=hil_msg)
