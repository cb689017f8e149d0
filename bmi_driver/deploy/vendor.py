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

"""The ``bmi`` vendor interface: snapshot a running node's disk.

``baremetal node passthru call <node> snapshot --arg name=<image name>
[--arg project=<project>] [--arg visibility=private|public]`` saves the
node's current disk as a new, independent golden image while the node keeps
running on its clone.  The call is asynchronous (HTTP 202); the outcome is
recorded in the node's history and in ``driver_internal_info/bmi_snapshot``.
"""

from ironic.common import exception as ironic_exc
from ironic.common.i18n import _
from ironic.common import states
from ironic.conductor import utils as manager_utils
from ironic.drivers import base
from oslo_log import log

from bmi_driver.common import ironic_errors
from bmi_driver.common import node_facts
from bmi_driver.conf import CONF
from bmi_driver.storage.ceph import library
from bmi_driver.storage import names
from bmi_driver.storage import rbd_iscsi

LOG = log.getLogger(__name__)

# Where the outcome of the last snapshot is recorded.
RESULT_KEY = 'bmi_snapshot'


def _snapshot_project(node, project):
    """The owner of a node's snapshot: as given, else the disk's project.

    The disk's: the project the node was deployed for (recorded with its
    deployment), not its lessee now: Ironic 39.0.0 lets a member of the
    owner project change the lessee of an ACTIVE node, and the disk still
    holds the data of the project it was deployed for.  A node deployed
    before that record: its project now.  A project given as '' stays ''
    (and is refused): only a project left out takes the default.
    """
    if project is not None:
        return project
    recorded = rbd_iscsi.recorded_for(node)
    if recorded is not None:
        return recorded.get('project') or CONF.bmi.default_project
    return node_facts.node_project(node) or CONF.bmi.default_project


class BMIVendorPassthru(base.VendorInterface):
    """Vendor passthru methods of BMI nodes."""

    def get_properties(self):
        return {}

    def validate(self, task, method=None, **kwargs):
        """Check a passthru call's arguments before it runs.

        :raises: InvalidParameterValue for an unknown method, a node that is
            not deployed, or bad arguments.
        :raises: MissingParameterValue when ``name`` is missing.
        """
        if method != 'snapshot':
            raise ironic_exc.InvalidParameterValue(
                _('Unknown vendor method %s; the bmi vendor interface has '
                  '"snapshot".') % method)
        node = task.node
        if node.provision_state != states.ACTIVE:
            raise ironic_exc.InvalidParameterValue(
                _('Node %(node)s is %(state)s: only a deployed (active) node '
                  'has a disk to snapshot.') %
                {'node': node.uuid, 'state': node.provision_state})
        name = kwargs.get('name')
        if not name:
            raise ironic_exc.MissingParameterValue(
                _('snapshot needs a name for the new image: '
                  '--arg name=<image name>.'))
        if not isinstance(name, str):
            raise ironic_exc.InvalidParameterValue(
                _('The image name must be a string.'))
        visibility = kwargs.get('visibility', 'private')
        if visibility not in names.VISIBILITIES:
            raise ironic_exc.InvalidParameterValue(
                _('visibility must be one of %(allowed)s, not %(value)r.') %
                {'allowed': ', '.join(names.VISIBILITIES),
                 'value': visibility})
        # Ironic passes the HTTP method along with the call's arguments.
        unknown = set(kwargs) - {'name', 'project', 'visibility',
                                 'http_method'}
        if unknown:
            raise ironic_exc.InvalidParameterValue(
                _('Unknown snapshot argument(s): %s; expected name, project '
                  'and visibility.') % ', '.join(sorted(unknown)))
        # The call is asynchronous (202): what can be refused is refused
        # here, synchronously, so the caller sees it (the name, its
        # project, and a name already taken, checked again when it runs).
        with ironic_errors.translated(
                'checking the snapshot\'s name', node.uuid,
                as_=ironic_exc.InvalidParameterValue):
            names.image_name(name)
            project = _snapshot_project(node, kwargs.get('project'))
            names.project(project)
            library.ImageLibrary().check_new_name(name, asker=project)

    @base.passthru(['POST'], async_call=True,
                   description=_('Save the node\'s current disk as a new '
                                 'golden image. Arguments: name, project '
                                 '(default: the project the node was '
                                 'deployed for), '
                                 'visibility (private or public).'))
    def snapshot(self, task, name, project=None, visibility='private',
                 **kwargs):
        """Snapshot the node's disk into a new golden image.

        ``kwargs`` takes what Ironic adds to the call (``http_method``).

        :raises: IronicException (InvalidParameterValue, StorageError) when
            the snapshot fails; recorded on the node.
        """
        node = task.node
        project = _snapshot_project(node, project)
        try:
            with ironic_errors.translated('taking a snapshot', node.uuid):
                image = library.ImageLibrary().snapshot_node(
                    node.uuid, name, project=project, visibility=visibility)
        except ironic_exc.IronicException as e:
            node.set_driver_internal_info(RESULT_KEY, {
                'name': name, 'status': 'error', 'error': str(e)})
            manager_utils.node_history_record(
                node, event=str(e), event_type='snapshot', error=True)
            node.save()
            raise
        node.set_driver_internal_info(RESULT_KEY, {
            'name': name, 'status': 'done', 'image': image.uuid})
        manager_utils.node_history_record(
            node, event=_('Disk saved as image %(name)s (%(uuid)s)') %
            {'name': name, 'uuid': image.uuid}, event_type='snapshot')
        node.save()
        LOG.info('Node %(node)s: disk saved as image %(name)s (%(uuid)s, '
                 'project %(project)s, %(visibility)s)',
                 {'node': node.uuid, 'name': name, 'uuid': image.uuid,
                  'project': project, 'visibility': visibility})
        return {'image': image.uuid, 'name': name}
