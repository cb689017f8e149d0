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

"""The interface every iSCSI export backend implements.

A backend knows one kind of target daemon (tgt today; LIO or an NVMe-oF
target could follow) and nothing of nodes, Ceph metadata or Ironic: the
:class:`~bmi_driver.storage.export.manager.ExportManager` decides *what*
must be served and hands the backend an :class:`ExportTarget`; the backend
makes the daemon serve exactly that.  Every method is idempotent.
"""

import abc
import dataclasses


@dataclasses.dataclass(frozen=True)
class ExportTarget:
    """What one target must serve (and what a node's clone records).

    ``luns`` maps LUN numbers (1 and up; LUN 0 is the controller) to RBD
    ``pool/image`` specs.  ``initiator_address`` (an address or
    ``network/prefix``) accepts only initiators from there, and then
    ``initiator_iqn`` is recorded but not bound: tgt 1.0.85 accepts a login
    that matches *either* its address or its name ACL (measured), and a
    name is whatever the initiator says.  Without an address,
    ``initiator_iqn`` None accepts any initiator that passes CHAP;
    ``chap_username`` None disables CHAP.
    """

    iqn: str
    luns: dict
    initiator_iqn: str = None
    initiator_address: str = None
    chap_username: str = None
    chap_secret: str = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True)
class ServedTarget:
    """What the target daemon serves for one target, as it reports it.

    ``luns`` maps LUN numbers (without the controller LUN 0) to backing
    store paths; ``accounts`` are the incoming CHAP users bound to it;
    ``acl`` the initiator names and addresses it accepts; ``sessions`` the
    number of logged-in initiators.

    ``uncertain``: tgtd serves this target (its own list of targets says
    so) but what its listing shows for it cannot be told from what an
    initiator wrote there (:mod:`~bmi_driver.storage.export.tgt_show`):
    ``luns``, ``accounts``, ``acl`` and ``sessions`` are then empty, and
    nothing may be concluded, or changed, from them.
    """

    tid: int
    iqn: str
    luns: dict = dataclasses.field(default_factory=dict)
    accounts: tuple = ()
    acl: tuple = ()
    sessions: int = 0
    uncertain: bool = False


# What ensure_target() did.
CREATED = 'created'
UPDATED = 'updated'
UNCHANGED = 'unchanged'


class ExportBackend(abc.ABC):
    """A local iSCSI target daemon."""

    @abc.abstractmethod
    def check(self):
        """Raise TargetDaemonUnavailable unless the daemon answers."""

    @abc.abstractmethod
    def list_targets(self):
        """Every target the daemon serves (ours or not): [ServedTarget]."""

    def get_target(self, iqn):
        """The served target named ``iqn``, or None."""
        for target in self.list_targets():
            if target.iqn == iqn:
                return target
        return None

    @abc.abstractmethod
    def ensure_target(self, target, replace=False):
        """Make the daemon serve ``target`` exactly; idempotent.

        The ACL: ``initiator_address`` when set, else ``initiator_iqn``,
        else any initiator.

        Creates the target when missing and converges an existing one (its
        LUNs, CHAP account and initiator ACL).  A target created by this
        call is removed again when a later step fails.  With ``replace``
        (a new deployment: a new secret, perhaps a new image of the same
        name), an existing target is removed and created anew instead.

        :returns: ``(ServedTarget, CREATED | UPDATED | UNCHANGED)``
        """

    @abc.abstractmethod
    def remove_target(self, iqn, chap_username=None):
        """Stop serving ``iqn`` (with its sessions) and drop its account.

        A missing target is not an error.
        """
