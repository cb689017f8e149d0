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

"""bmi_driver's exceptions.

One base class with a ``_msg_fmt``, in the manner of Ironic's.  The library
(``storage``, ``network``) raises these; the Ironic glue maps them to
Ironic's own exceptions at the interface boundary.
"""

from oslo_log import log

LOG = log.getLogger(__name__)


class BmiException(Exception):
    """Base of every bmi_driver error.

    Subclasses set ``_msg_fmt``, a format string filled from the keyword
    arguments given to the constructor.  A message passed explicitly wins.
    """

    _msg_fmt = "An unknown error occurred."

    def __init__(self, message=None, **kwargs):
        self.kwargs = kwargs
        if not message:
            try:
                message = self._msg_fmt % kwargs
            except (KeyError, TypeError):
                # A programming error: say what was missing rather than hide
                # the real problem behind a formatting error.
                LOG.exception('Exception in string format operation for '
                              '%(cls)s, kwargs: %(kwargs)s',
                              {'cls': self.__class__.__name__,
                               'kwargs': sorted(kwargs)})
                message = self._msg_fmt
        self.message = message
        super().__init__(message)

    def __str__(self):
        return self.message


class InvalidInput(BmiException):
    _msg_fmt = "Invalid input: %(reason)s"


class InvalidName(InvalidInput):
    _msg_fmt = "Invalid %(kind)s %(value)r: %(reason)s"


# --- what Ironic's node says (bmi_driver.common.node_facts) ---------------
# The messages are complete sentences, given when raised.

class NodeFactMissing(BmiException):
    _msg_fmt = "A required field of the node is not set."


class NodeFactInvalid(InvalidInput):
    _msg_fmt = "A field of the node is not valid."


class BootNetworkConfigError(InvalidInput):
    _msg_fmt = "[bmi] boot_networks_file %(path)s is not valid: %(reason)s"


class BootNetworkMissing(InvalidInput):
    _msg_fmt = ("Project %(project)s has no boot network in [bmi] "
                "boot_networks_file %(path)s: in per-project mode a node "
                "boots only on its own project's boot network.")


class BootFilesError(BmiException):
    _msg_fmt = "The node's iPXE files cannot be published: %(reason)s"


class ConfigDriveError(BmiException):
    _msg_fmt = "The node's config drive cannot be used."


# --- Ceph and the image library -------------------------------------------

class CephError(BmiException):
    _msg_fmt = "Ceph operation failed: %(reason)s"


class CephConnectionError(CephError):
    _msg_fmt = ("Cannot connect to the Ceph cluster (conf %(conf)s, user "
                "%(user)s): %(reason)s")


class CephPoolNotFound(CephError):
    _msg_fmt = "Ceph pool %(pool)s does not exist."


class CephPoolFull(CephError):
    """A pool at (or near) its quota or out of space: writes would block."""
    _msg_fmt = "Ceph pool %(pool)s is full (quota or capacity): %(reason)s"


class CephUnhealthy(CephError):
    _msg_fmt = "The Ceph cluster is %(status)s: %(reason)s"


class ImageNotFound(BmiException):
    _msg_fmt = "Image %(image)s not found."


class ImageExists(BmiException):
    _msg_fmt = "An image named %(name)s already exists (%(image)s)."


class ImageInUse(BmiException):
    _msg_fmt = ("Image %(image)s has %(count)d clone(s) (%(clones)s); "
                "remove them first.")


class ImageBusy(BmiException):
    _msg_fmt = "Image %(image)s is busy (open elsewhere): %(reason)s"


class ImageNotVisible(BmiException):
    # The owner is kept (kwargs) for logs, never put in the message: the
    # caller is of another project and must not learn who owns the image.
    _msg_fmt = ("Image %(image)s is not visible to project %(project)s: it "
                "is private to another project.")


class ImageUnsealed(BmiException):
    _msg_fmt = ("Image %(image)s cannot be cloned: its snapshot golden is "
                "missing or not protected (an import, copy, node snapshot "
                "or delete was interrupted; the periodic sweep removes it).")


class ImageFormatError(InvalidInput):
    _msg_fmt = "%(path)s is not a usable disk image: %(reason)s"


class LocalFileError(InvalidInput):
    _msg_fmt = "%(path)s: %(reason)s"


class GlanceError(BmiException):
    _msg_fmt = "Glance cannot be asked about images: %(reason)s"


class GlanceImageUnusable(InvalidInput):
    """A Glance image bmi cannot boot: the message says why."""
    _msg_fmt = "Glance image %(image)s cannot be booted: %(reason)s"


class CloneNotFound(BmiException):
    _msg_fmt = "Node %(node)s has no disk clone (%(clone)s)."


class ScratchFormatError(BmiException):
    _msg_fmt = "Formatting a scratch disk as %(fmt)s failed: %(reason)s"


class ScratchDiskMismatch(BmiException):
    """A preserved ephemeral disk cannot serve the new request."""
    _msg_fmt = ("Node %(node)s: its preserved ephemeral disk %(disk)s "
                "%(reason)s; rebuild without preserve_ephemeral to replace "
                "it (its data is lost), or ask for the same size.")


# --- iSCSI export ----------------------------------------------------------

class ExportError(BmiException):
    _msg_fmt = "iSCSI export failed: %(reason)s"


class ExportBackendNotFound(ExportError):
    _msg_fmt = "iSCSI export backend %(name)s could not be loaded: %(reason)s"


class TargetDaemonUnavailable(ExportError):
    _msg_fmt = "The iSCSI target daemon is not reachable: %(reason)s"


class TargetNotFound(ExportError):
    _msg_fmt = "No iSCSI target for %(name)s."


class ExportNotServed(ExportError):
    _msg_fmt = ("The iSCSI export of node %(node)s is not served by the "
                "target daemon: %(reason)s")


class StaleDisk(BmiException):
    _msg_fmt = ("The disk %(clone)s of node %(node)s belongs to deployment "
                "%(found)s, not to the node's deployment %(expected)s: it is "
                "never reused nor exported.")


# --- HIL -------------------------------------------------------------------

class HILError(BmiException):
    """An error answered by HIL, or a failure to talk to it.

    ``status`` is the HTTP status (None when HIL was not reached), ``type``
    HIL's error class name from its JSON body.
    """
    _msg_fmt = "HIL error: %(msg)s"

    def __init__(self, message=None, status=None, type=None, hil_msg=None,
                 **kwargs):
        self.status = status
        self.type = type
        # HIL's own "msg", unchanged: what refusals are classified by.
        self.hil_msg = hil_msg
        super().__init__(message, **kwargs)


class HILUnreachable(HILError):
    _msg_fmt = "HIL at %(url)s is unreachable: %(reason)s"


class HILAuthError(HILError):
    _msg_fmt = "HIL refused the credentials: %(msg)s"


class HILNotFound(HILError):
    _msg_fmt = "HIL: %(msg)s"


class HILConflict(HILError):
    _msg_fmt = "HIL: %(msg)s"


class HILBadRequest(HILError):
    _msg_fmt = "HIL: %(msg)s"


class HILNodeUnfit(InvalidInput):
    """HIL's view of a node does not allow what is asked (no HILError).

    Raised by :mod:`bmi_driver.network.hil_node` with a complete sentence:
    a port that is no HIL nic, no boot nic, an uncabled nic, a boot network
    that is not the project's own, a tenant network that cannot be joined.
    Not a HILError: HIL answered, and what it said rules the node out.
    """
    _msg_fmt = "%(reason)s"


class HILInvalidName(InvalidName, HILError):
    """A HIL node, nic, network or project name that is not plain data.

    Raised before any request is sent.  An InvalidInput, so that the
    interfaces turn it into Ironic's InvalidParameterValue.
    """
    _msg_fmt = "Invalid HIL %(kind)s name %(value)r: %(reason)s"


class HILNodeNotFound(HILNotFound):
    _msg_fmt = "HIL does not know node %(node)s: %(msg)s"


class HILNodeNotVisible(HILAuthError):
    _msg_fmt = ("HIL node %(node)s is not visible to this HIL user: HIL holds "
                "it for a project this user has no access to (another "
                "project). HIL said: %(msg)s")


class HILRefused(HILConflict):
    """A 409 BlockedError that waiting does not clear."""
    _msg_fmt = "HIL refused %(action)s on %(node)s/%(nic)s: %(msg)s"


class HILActionFailed(HILError):
    _msg_fmt = ("HIL networking action %(action)s on %(node)s/%(nic)s ended "
                "in ERROR: %(msg)s")


class HILTimeout(HILError):
    _msg_fmt = ("HIL networking action %(action)s on %(node)s/%(nic)s did "
                "not finish within %(timeout)s seconds.")


# --- Neutron (the VIFs of the hil network interface) ----------------------

class NeutronError(BmiException):
    """Neutron answered an error, or could not be reached."""
    _msg_fmt = "Neutron: %(msg)s"

    def __init__(self, message=None, status=None, **kwargs):
        self.status = status
        super().__init__(message, **kwargs)


class NeutronPortNotFound(NeutronError):
    _msg_fmt = "Neutron has no port %(port)s"


class VifRefused(InvalidInput):
    """A VIF the node may not have.

    Another project's port or network, a network type HIL cannot carry,
    a conflict with instance_info's tenant networks.
    """
    _msg_fmt = "%(reason)s"


# --- Coordination --------------------------------------------------------

class CoordinationError(BmiException):
    _msg_fmt = "Coordination backend error: %(reason)s"


class LockTimeout(CoordinationError):
    _msg_fmt = "Could not acquire lock %(name)s within %(timeout)s seconds."
