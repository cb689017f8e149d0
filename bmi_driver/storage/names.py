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

"""Names the library accepts, checked before anything is changed.

- Image names: 1 to 63 characters, ASCII letters, digits, ``.``, ``_`` and
  ``-``, starting with a letter or digit.  Unique in the library.  A name
  that looks like a UUID is refused, so that a reference is never ambiguous.
- Project names: 1 to 64 characters of the same set (Keystone project IDs
  are 32 hex digits and fit).
- Visibility: ``private`` (the owning project only) or ``public``.
- Node identifiers: UUIDs.
- RBD references: ``pool/image`` or ``pool/image@snapshot``, each part made
  of the characters Ceph allows in names (no ``/``, ``@`` or blanks).
"""

import collections
import re

from oslo_utils import uuidutils

from bmi_driver import exception

_NAME_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]*')
IMAGE_NAME_MAX = 63
PROJECT_MAX = 64
VISIBILITIES = ('private', 'public')
_RBD_PART_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9._+:-]*')

RBDRef = collections.namedtuple('RBDRef', 'pool image snapshot')


def _check(kind, value, max_len):
    if not isinstance(value, str) or not value:
        raise exception.InvalidName(kind=kind, value=value,
                                    reason='must be a non-empty string')
    if len(value) > max_len:
        raise exception.InvalidName(
            kind=kind, value=value,
            reason='longer than %d characters' % max_len)
    if not _NAME_RE.fullmatch(value):
        raise exception.InvalidName(
            kind=kind, value=value,
            reason='use letters, digits, ".", "_" and "-", starting with '
                   'a letter or digit')
    return value


def image_name(value):
    """Check an image name; return it.

    :raises: InvalidName
    """
    _check('image name', value, IMAGE_NAME_MAX)
    if uuidutils.is_uuid_like(value):
        raise exception.InvalidName(
            kind='image name', value=value,
            reason='must not look like a UUID (UUIDs identify images)')
    return value


def project(value):
    """Check a project name; return it.

    :raises: InvalidName
    """
    return _check('project', value, PROJECT_MAX)


def visibility(value):
    """Check a visibility; return it.

    :raises: InvalidName
    """
    if value not in VISIBILITIES:
        raise exception.InvalidName(
            kind='visibility', value=value,
            reason='must be one of %s' % ', '.join(VISIBILITIES))
    return value


def node_uuid(value, reason='not a UUID'):
    """A node UUID, lower case; ``reason`` says why else it is refused.

    :raises: InvalidName when ``value`` is not a UUID string.
    """
    if not isinstance(value, str) or not uuidutils.is_uuid_like(value):
        raise exception.InvalidName(kind='node UUID', value=value,
                                    reason=reason)
    return value.lower()


def rbd_ref(value):
    """Parse ``pool/image[@snapshot]`` into an :class:`RBDRef`.

    :raises: InvalidName
    """
    if not isinstance(value, str):
        raise exception.InvalidName(kind='RBD reference', value=value,
                                    reason='must be a string')
    pool, sep, rest = value.partition('/')
    image, _, snap = rest.partition('@')
    parts = [pool, image] + ([snap] if '@' in rest else [])
    if not sep or not all(p and _RBD_PART_RE.fullmatch(p) for p in parts):
        raise exception.InvalidName(
            kind='RBD reference', value=value,
            reason='expected pool/image or pool/image@snapshot')
    return RBDRef(pool, image, snap or None)
