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

"""The names an iSCSI export is made of, checked (no I/O).

Target and initiator IQNs (RFC 3720/3722 forms), initiator addresses as
tgt matches them in an ACL, and the node UUID that ends a target's IQN.
:mod:`bmi_driver.storage.export.manager` checks every name with these
before it records or exports anything.
"""

import ipaddress
import re

from bmi_driver import exception
from bmi_driver.storage import names

# RFC 3720/3722: at most 223 bytes; we accept the plain ASCII subset.
IQN_MAX = 223
_IQN_RE = re.compile(r'^iqn\.[0-9]{4}-(0[1-9]|1[0-2])\.'
                     r'[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*'
                     r'[a-z0-9])?)*(:[a-z0-9.:_-]+)?$')
_EUI_RE = re.compile(r'^eui\.[0-9A-F]{16}$')
_NAA_RE = re.compile(r'^naa\.([0-9A-F]{16}|[0-9A-F]{32})$')


def check_iscsi_name(kind, value):
    """Check an iSCSI name (iqn., eui. or naa. format); return it.

    :raises: InvalidName
    """
    if not isinstance(value, str) or not value:
        raise exception.InvalidName(kind=kind, value=value,
                                    reason='must be a non-empty string')
    if len(value) > IQN_MAX:
        raise exception.InvalidName(kind=kind, value=value,
                                    reason='longer than %d bytes' % IQN_MAX)
    if not (_IQN_RE.match(value) or _EUI_RE.match(value)
            or _NAA_RE.match(value)):
        raise exception.InvalidName(
            kind=kind, value=value,
            reason='not an iSCSI name: expected iqn.yyyy-mm.reversed.domain'
                   '[:name] in lower case, eui.<16 hex> or naa.<16 or 32 '
                   'hex>')
    return value


def check_initiator_address(value):
    """An ACL address or network as tgt matches it; return it, or None.

    tgt 1.0.85 never matches a ``network/prefix`` whose host bits are set
    or whose prefix is the full length (/32, /128): the first is refused,
    the second given as the bare address.

    :raises: InvalidName
    """
    if value is None:
        return None
    try:
        network = ipaddress.ip_network(value, strict=True)
    except (TypeError, ValueError) as e:
        raise exception.InvalidName(kind='initiator address', value=value,
                                    reason=str(e))
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def check_node_uuid(value):
    """A node UUID, the last part of its target IQN; return it, lower.

    :raises: InvalidName
    """
    return names.node_uuid(
        value, reason='not a UUID (it names the node\'s iSCSI target)')
