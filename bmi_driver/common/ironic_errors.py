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

"""Map bmi_driver's exceptions to Ironic's at the interface boundary.

The one module besides the interfaces that imports Ironic.  The library
(``bmi_driver.storage``, the ``bmi_driver.network`` library modules,
``bmi_driver.common.node_facts``) raises
:class:`bmi_driver.exception.BmiException` subclasses.  Ironic's conductor
only understands its own exceptions: ``InvalidParameterValue`` turns into a
clear API error during validation, ``StorageError`` and ``NetworkError``
into a ``last_error`` on the node.  The messages are the library's, which
never carry secrets.
"""

import contextlib

from ironic.common import exception as ironic_exc
from oslo_log import log

from bmi_driver import exception

LOG = log.getLogger(__name__)

# Most specific first: the first matching entry wins.
_MAPPING = (
    (exception.NodeFactMissing, ironic_exc.MissingParameterValue),
    (exception.ConfigDriveError, ironic_exc.InstanceDeployFailure),
    (exception.InvalidInput, ironic_exc.InvalidParameterValue),
    (exception.ImageNotFound, ironic_exc.InvalidParameterValue),
    (exception.ImageNotVisible, ironic_exc.InvalidParameterValue),
    (exception.ImageUnsealed, ironic_exc.InvalidParameterValue),
    (exception.ImageExists, ironic_exc.InvalidParameterValue),
    (exception.HILError, ironic_exc.NetworkError),
    (exception.NeutronError, ironic_exc.NetworkError),
    (exception.BmiException, ironic_exc.StorageError),
)


def ironic_class(exc):
    """Return the Ironic exception class for a bmi_driver exception."""
    return next(ironic_cls for bmi_cls, ironic_cls in _MAPPING
                if isinstance(exc, bmi_cls))


def to_ironic(exc, default=None, prefix=''):
    """Return the Ironic exception matching a bmi_driver exception.

    :param exc: a :class:`bmi_driver.exception.BmiException`.
    :param default: Ironic exception class that overrides the mapping
        (for example ``InvalidParameterValue`` during validation).
    :param prefix: text put before the library's message.
    :returns: an instance of an Ironic exception with the same message.
    """
    cls = default or ironic_class(exc)
    # Every Ironic exception takes a ready message as first argument.
    return cls(prefix + str(exc))


@contextlib.contextmanager
def translated(what, node=None, as_=None):
    """Re-raise bmi_driver errors raised in the block as Ironic's.

    :param what: a short description of the operation, for the message,
        e.g. ``'attaching the disk'``.
    :param node: the node's UUID (or None), for the message.
    :param as_: force this Ironic exception class (see :func:`to_ironic`).
    :raises: the Ironic exception matching a bmi_driver one.
    """
    try:
        yield
    except exception.BmiException as e:
        prefix = (('Node %(node)s: %(what)s failed: ' %
                   {'node': node, 'what': what}) if node else
                  ('%s failed: ' % what.capitalize()))
        new = to_ironic(e, default=as_, prefix=prefix)
        LOG.debug('%(what)s for node %(node)s raised %(cls)s: %(err)s',
                  {'what': what, 'node': node,
                   'cls': type(e).__name__, 'err': e})
        raise new from e


@contextlib.contextmanager
def as_ironic():
    """Re-raise bmi_driver errors raised in the block as Ironic's.

    The message stays the library's, word for word: for what
    :mod:`bmi_driver.common.node_facts` says about a node, which already
    names the node.

    :raises: the Ironic exception matching a bmi_driver one.
    """
    try:
        yield
    except exception.BmiException as e:
        raise to_ironic(e) from e
