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

"""The periodic reconcile of the bmi deploy interface (deploy/heal.py).

Ironic's database is real (its unit-test sqlite), the export manager is
real, on the fake tgtd (its management socket) and an in-memory clone
pool; only the conductor's hash ring is given as the set of nodes it maps
here.
"""

import os
from unittest import mock

import fixtures
from ironic.common import states
from ironic import objects
from ironic.tests.unit.objects import utils as obj_utils

from bmi_driver.common import locks
from bmi_driver.conf import CONF
from bmi_driver.deploy import heal
from bmi_driver import exception
from bmi_driver.storage.export import manager as export
from bmi_driver.storage import layout
from bmi_driver.storage import rbd_iscsi
from tests.unit.deploy import base
from tests.unit.storage.export import fakes

# Captured before BMITestCase mocks the class.
RealManager = export.ExportManager
OTHER = '0a6c1c8e-7d7b-4d0f-8d0e-3c1f7e9b2a10'
GONE = '11111111-2222-4333-8444-555555555555'


class FakeConductor:
    """What heal asks of Ironic 39's conductor manager: its DB and ring."""

    def __init__(self, dbapi, mine=None, conductor_id=None):
        self.dbapi = dbapi
        self.mine = mine
        self.conductor = mock.Mock(id=conductor_id)

    def _mapped_to_this_conductor(self, node_uuid, driver, group):
        return self.mine is None or node_uuid in self.mine

    def iter_nodes(self, fields=None, **kwargs):
        columns = ['uuid', 'driver', 'conductor_group'] + list(fields or ())
        for row in self.dbapi.get_nodeinfo_list(columns=columns, **kwargs):
            if self._mapped_to_this_conductor(*row[:3]):
                yield row


class HealTestCase(base.BMITestCase):

    def setUp(self):
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.config(backend_url='file://%s/locks' % tmp,
                    group='coordination')
        self.addCleanup(locks.reset)
        self.tgtd = fakes.FakeTgtd()
        self.config(tgtd_socket=self.tgtd.serve(self), group='iscsi')
        self.config(discovery_auth=False, group='iscsi')
        self.pool = fakes.FakeLibrary()
        self.lib.list_node_disks.side_effect = self.pool.list_node_disks
        self.cloneless = {}
        self.lib.list_cloneless_scratch.side_effect = (
            lambda: dict(self.cloneless))
        self.pool.remove_node_disk = mock.Mock(
            side_effect=self._remove_disk)
        self.real = RealManager(library=self.pool)
        export._MANAGER = self.real
        heal.reset()
        self.addCleanup(heal.reset)
        mine = self.dbapi.register_conductor({'hostname': 'this-one',
                                              'drivers': ['bmi']})
        self.other_id = self.dbapi.register_conductor(
            {'hostname': 'other', 'drivers': ['bmi']}).id
        self.conductor = FakeConductor(self.dbapi, conductor_id=mine.id)
        self.deployment = 'dep-1'
        self.node.provision_state = states.ACTIVE
        self.node.driver_internal_info = {
            rbd_iscsi.DEPLOYMENT: self.deployment}
        self.node.save()
        disk = self.pool.add_disk(self.node.uuid, configdrive=True)
        disk.metadata[layout.META_DEPLOYMENT] = self.deployment
        self.exp = self.real.export_node(self.node.uuid)

    def history(self, node=None):
        return [e.event for e in objects.NodeHistory.list_by_node_id(
            self.context, (node or self.node).id)]

    def run_once(self):
        heal.reconcile(self.conductor, self.context)

    def _run_at(self, now):
        """run_once() with the monotonic clock at ``now``."""
        with mock.patch.object(heal.time, 'monotonic', return_value=now):
            self.run_once()

    def test_tgtd_restart_is_healed_and_recorded(self):
        accounts = dict(self.tgtd.accounts)
        self.tgtd.targets.clear()
        self.tgtd.accounts.clear()
        self.run_once()
        target = self.tgtd.by_iqn(self.exp.target_iqn)
        self.assertEqual(self.exp.luns, target.luns)
        self.assertEqual(accounts, self.tgtd.accounts)
        self.assertEqual(self.exp, self.real.verify_export(self.node.uuid))
        [event] = self.history()
        self.assertIn('re-created', event)
        self.assertNotIn(self.exp.chap_secret, event)
        # Nothing to repair the second time: no new record.
        self.run_once()
        self.assertEqual(1, len(self.history()))

    def test_locked_node_is_not_touched(self):
        self.tgtd.targets.clear()
        self.node.reservation = 'another-conductor'
        self.node.save()
        self.run_once()
        self.assertIsNone(self.tgtd.by_iqn(self.exp.target_iqn))
        self.assertEqual([], self.history())

    def test_node_mapped_elsewhere_is_kept_until_taken_over(self):
        self.conductor.mine = set()
        self.node.conductor_affinity = self.conductor.conductor.id
        self.node.save()
        self.run_once()
        self.assertIsNotNone(self.tgtd.by_iqn(self.exp.target_iqn))

    def test_node_undeployed_elsewhere_before_the_take_over_is_removed(self):
        # The ring moved the node to another conductor, which undeployed it
        # before taking it over: its affinity still names this one.
        self.conductor.mine = set()
        self.node.conductor_affinity = self.conductor.conductor.id
        self.node.provision_state = states.AVAILABLE
        self.node.save()
        del self.pool.disks[self.node.uuid]
        self.run_once()
        self.assertIsNone(self.tgtd.by_iqn(self.exp.target_iqn))
        self.assertNotIn(self.exp.chap_username, self.tgtd.accounts)

    def test_node_mapped_here_not_yet_taken_over_is_not_exported(self):
        self.tgtd.targets.clear()
        self.node.conductor_affinity = self.other_id
        self.node.save()
        self.run_once()
        self.assertIsNone(self.tgtd.by_iqn(self.exp.target_iqn))

    def test_node_of_another_conductor_is_removed_from_this_gateway(self):
        self.conductor.mine = set()
        self.node.conductor_affinity = self.other_id
        self.node.save()
        self.run_once()
        self.assertIsNone(self.tgtd.by_iqn(self.exp.target_iqn))
        self.assertNotIn(self.exp.chap_username, self.tgtd.accounts)
        # Its record stays for the conductor that serves it now.
        self.assertEqual(self.exp.target_iqn,
                         self.pool.disks[self.node.uuid].metadata[
                             layout.META_IQN])

    def test_targets_of_diskless_and_busy_nodes(self):
        other = obj_utils.create_test_node(
            self.context, uuid=OTHER, driver='bmi', deploy_interface='bmi',
            provision_state=states.AVAILABLE)
        self.pool.add_disk(OTHER)
        leftover = self.real.export_node(OTHER)
        busy = self.real.target_iqn(OTHER)
        other.reservation = 'me'
        other.provision_state = states.DEPLOYING
        other.save()
        self.run_once()
        # Being deployed: its fresh target is never removed.
        self.assertIsNotNone(self.tgtd.by_iqn(busy))
        other.reservation = None
        other.provision_state = states.AVAILABLE
        other.save()
        self.run_once()
        self.assertIsNone(self.tgtd.by_iqn(leftover.target_iqn))
        self.assertIsNotNone(self.tgtd.by_iqn(self.exp.target_iqn))

    def test_clone_of_another_deployment_is_never_exported(self):
        self.pool.disks[self.node.uuid].metadata[
            layout.META_DEPLOYMENT] = 'an-old-one'
        self.tgtd.targets.clear()
        self.run_once()
        self.assertIsNone(self.tgtd.by_iqn(self.exp.target_iqn))
        [event] = self.history()
        self.assertIn('belongs to deployment an-old-one', event)

    def test_lost_disk_is_an_error_in_history(self):
        del self.pool.disks[self.node.uuid]
        self.run_once()
        [event] = objects.NodeHistory.list_by_node_id(self.context,
                                                      self.node.id)
        self.assertEqual('ERROR', event.severity)
        self.assertIn('rebuild', event.event)

    def test_tgtd_down_is_logged_not_raised(self):
        self.tgtd.down = True
        self.run_once()

    # --- nodes Ironic no longer has ----------------------------------------

    def _deleted_node(self):
        disk = self.pool.add_disk(GONE)
        disk.metadata[layout.META_DEPLOYMENT] = 'dep-gone'
        gone = self.real.export_node(GONE)
        root = CONF.deploy.http_root
        os.makedirs(os.path.join(root, GONE))
        os.makedirs(os.path.join(root, 'pxelinux.cfg'))
        with open(os.path.join(root, GONE, 'config'), 'w') as f:
            f.write('#!ipxe\nsanboot iscsi:...:%s\n' % GONE)
        os.symlink('../%s/config' % GONE,
                   os.path.join(root, 'pxelinux.cfg', '52-54-00-00-00-09'))
        return gone, root

    def test_deleted_node_leaves_nothing_after_the_grace(self):
        gone, root = self._deleted_node()
        self.config(orphan_grace=60, group='bmi')
        self.assertEqual([], heal.sweep_deleted(self.conductor, self.context,
                                                now=1000.0))
        self.assertIn(GONE, self.pool.disks)
        self.assertEqual([GONE], heal.sweep_deleted(
            self.conductor, self.context, now=1061.0))
        self.assertNotIn(GONE, self.pool.disks)
        self.assertIsNone(self.tgtd.by_iqn(gone.target_iqn))
        self.assertNotIn(gone.chap_username, self.tgtd.accounts)
        self.assertFalse(os.path.exists(os.path.join(root, GONE)))
        self.assertEqual([], os.listdir(os.path.join(root, 'pxelinux.cfg')))
        # The live node is untouched.
        self.assertIn(self.node.uuid, self.pool.disks)
        self.assertIsNotNone(self.tgtd.by_iqn(self.exp.target_iqn))

    def test_boot_files_that_could_not_go_keep_the_disk(self):
        # The disk is what makes a deleted node found again: removed before
        # its boot files, a failure to remove those was never retried.
        gone, root = self._deleted_node()
        self.config(orphan_grace=0, group='bmi')
        with mock.patch.object(
                heal.boot_files, 'withdraw_all', autospec=True,
                side_effect=exception.BootFilesError(
                    path=root, reason='Permission denied')):
            self.assertEqual([], heal.sweep_deleted(self.conductor,
                                                    self.context))
        self.assertIn(GONE, self.pool.disks)
        self.assertIsNotNone(self.tgtd.by_iqn(gone.target_iqn))
        self.assertEqual([GONE], heal.sweep_deleted(self.conductor,
                                                    self.context))
        self.assertFalse(os.path.exists(os.path.join(root, GONE)))
        self.assertNotIn(GONE, self.pool.disks)

    def test_node_enrolled_again_within_the_grace_is_kept(self):
        self._deleted_node()
        self.config(orphan_grace=60, group='bmi')
        heal.sweep_deleted(self.conductor, self.context, now=1000.0)
        obj_utils.create_test_node(self.context, uuid=GONE, driver='bmi',
                                   provision_state=states.ENROLL)
        self.assertEqual([], heal.sweep_deleted(
            self.conductor, self.context, now=2000.0))
        self.assertIn(GONE, self.pool.disks)

    def _recorded_hil(self, node_uuid, hil_node='hil-9'):
        self.pool.disks[node_uuid].metadata.update(layout.hil_record_metadata(
            {'node': hil_node, 'project': 'p1', 'connected': True}))
        release = mock.patch.object(heal.hil, 'release_deleted_node',
                                    autospec=True,
                                    return_value=([('eth0', 'boot')], True))
        self.addCleanup(release.stop)
        return release.start()

    def test_deleted_node_leaves_hil_before_its_clone_goes(self):
        self._deleted_node()
        release = self._recorded_hil(GONE)
        self.config(orphan_grace=0, group='bmi')
        self.assertEqual([GONE], heal.sweep_deleted(self.conductor,
                                                    self.context))
        release.assert_called_once_with(
            {'node': 'hil-9', 'project': 'p1', 'connected': True})
        self.assertNotIn(GONE, self.pool.disks)

    def test_hil_failure_keeps_the_clone_and_its_record(self):
        gone, _root = self._deleted_node()
        release = self._recorded_hil(GONE)
        release.side_effect = exception.HILUnreachable(url='u', reason='r')
        self.config(orphan_grace=0, group='bmi')
        self.assertEqual([], heal.sweep_deleted(self.conductor,
                                                self.context))
        self.assertIn(GONE, self.pool.disks)
        # HIL back: the next run finishes the job.
        release.side_effect = None
        self.assertEqual([GONE], heal.sweep_deleted(self.conductor,
                                                    self.context))
        self.assertNotIn(GONE, self.pool.disks)
        self.assertIsNone(self.tgtd.by_iqn(gone.target_iqn))

    def test_hil_failure_is_retried_without_a_new_grace(self):
        self._deleted_node()
        release = self._recorded_hil(GONE)
        self.config(orphan_grace=60, group='bmi')
        heal.sweep_deleted(self.conductor, self.context, now=1000.0)
        release.side_effect = exception.HILUnreachable(url='u', reason='r')
        self.assertEqual([], heal.sweep_deleted(self.conductor, self.context,
                                                now=1061.0))
        release.side_effect = None
        self.assertEqual([GONE], heal.sweep_deleted(
            self.conductor, self.context, now=1062.0))

    def test_node_enrolled_again_while_hil_releases_it_is_kept(self):
        # HIL may take minutes; a node enrolled again with this UUID and
        # deploying meanwhile has its new clone and boot files, which a
        # deploy makes without the export lock: not the sweep's.
        _gone, root = self._deleted_node()
        release = self._recorded_hil(GONE)

        def enrolled_meanwhile(record):
            obj_utils.create_test_node(self.context, uuid=GONE,
                                       driver='bmi',
                                       provision_state=states.DEPLOYING)
            return [], False
        release.side_effect = enrolled_meanwhile
        self.config(orphan_grace=0, group='bmi')
        self.assertEqual([], heal.sweep_deleted(self.conductor,
                                                self.context))
        self.assertIn(GONE, self.pool.disks)
        self.assertTrue(os.path.exists(os.path.join(root, GONE)))

    def test_node_swept_by_another_conductor_is_forgotten(self):
        self._deleted_node()
        self.config(orphan_grace=60, group='bmi')
        heal.sweep_deleted(self.conductor, self.context, now=1000.0)
        self.assertIn(GONE, heal._gone_since)
        self.real.remove_node(GONE)
        heal.sweep_deleted(self.conductor, self.context, now=1001.0)
        self.assertNotIn(GONE, heal._gone_since)

    def test_hil_is_released_under_the_export_lock(self):
        # Another conductor's sweep of the same node finds it held.
        self._deleted_node()
        release = self._recorded_hil(GONE)
        held = []

        def try_lock(record):
            try:
                with locks.lock('export-%s' % GONE, timeout=0):
                    held.append(False)
            except exception.LockTimeout:
                held.append(True)
            return [], False
        release.side_effect = try_lock
        self.config(orphan_grace=0, group='bmi')
        self.assertEqual([GONE], heal.sweep_deleted(self.conductor,
                                                    self.context))
        self.assertEqual([True], held)

    def test_node_another_conductor_is_sweeping_is_left_to_it(self):
        self._deleted_node()
        release = self._recorded_hil(GONE)
        self.config(orphan_grace=0, group='bmi')
        with locks.lock('export-%s' % GONE):
            self.assertEqual([], heal.sweep_deleted(self.conductor,
                                                    self.context))
        release.assert_not_called()
        self.assertIn(GONE, self.pool.disks)
        # Its sighting is kept: the next run goes on without a new grace.
        self.assertIn(GONE, heal._gone_since)

    def test_hil_node_of_another_ironic_node_is_left_to_it(self):
        self._deleted_node()
        release = self._recorded_hil(GONE, hil_node='reused')
        obj_utils.create_test_node(self.context, uuid=OTHER, driver='bmi',
                                   name='reused',
                                   provision_state=states.AVAILABLE)
        self.config(orphan_grace=0, group='bmi')
        self.assertEqual([GONE], heal.sweep_deleted(self.conductor,
                                                    self.context))
        release.assert_not_called()
        self.assertNotIn(GONE, self.pool.disks)

    def test_node_at_rest_leaves_hil_of_its_earlier_deployment(self):
        self._deleted_and_enrolled_again()
        release = self._recorded_hil(self.node.uuid)
        self.node.name = 'hil-9'
        self.node.save()
        self.config(orphan_grace=0, group='bmi')
        self.assertEqual([self.node.uuid], heal.sweep_at_rest(
            self.conductor, self.context))
        release.assert_called_once_with(
            {'node': 'hil-9', 'project': 'p1', 'connected': True})
        self.assertNotIn(self.node.uuid, self.pool.disks)

    def _remove_disk(self, node_uuid, stale_watch=False):
        self.pool.disks.pop(node_uuid, None)
        self.cloneless.pop(node_uuid, None)

    def test_scratch_disk_without_clone_is_swept(self):
        # A preserving rebuild failed (its ephemeral disk kept, no clone),
        # then the node was deleted without an undeploy.
        iqn = self.real.target_iqn(GONE)
        self.cloneless[GONE] = {layout.META_IQN: iqn,
                                layout.META_DEPLOYMENT: 'dep-x'}
        self.cloneless[OTHER] = {
            layout.META_IQN: 'iqn.2026-12.org.other:%s' % OTHER}
        self.config(orphan_grace=60, group='bmi')
        self.assertEqual([], heal.sweep_deleted(self.conductor, self.context,
                                                now=1000.0))
        self.assertEqual([GONE], heal.sweep_deleted(
            self.conductor, self.context, now=1061.0))
        # A watch left on it (a dead gateway's) is blocklisted, as at
        # undeploy.
        self.pool.remove_node_disk.assert_called_once_with(
            GONE, stale_watch=True)
        # Another Ironic's (its own IQN prefix) is not ours.
        self.assertEqual([OTHER], sorted(self.cloneless))

    def test_clone_of_another_ironic_is_kept(self):
        # Another deployment sharing the pool, with its own IQN prefix.
        disk = self.pool.add_disk(GONE)
        disk.metadata[layout.META_IQN] = 'iqn.2026-12.org.other:%s' % GONE
        self.config(orphan_grace=0, group='bmi')
        self.assertEqual([], heal.sweep_deleted(self.conductor, self.context))
        self.assertIn(GONE, self.pool.disks)

    def test_clone_without_its_export_record_is_still_swept(self):
        # Unexport (which drops the record) done, the disk's removal not:
        # the conductor died between them, then the node was deleted. The
        # owner stamp says the clone is ours.
        disk = self.pool.add_disk(GONE)
        disk.metadata[layout.META_OWNER] = self.real.iqn_prefix()
        self.config(orphan_grace=0, group='bmi')
        self.assertEqual([GONE], heal.sweep_deleted(self.conductor,
                                                    self.context))
        self.assertNotIn(GONE, self.pool.disks)

    def test_clone_owned_by_another_ironic_is_kept(self):
        disk = self.pool.add_disk(GONE)
        disk.metadata[layout.META_OWNER] = 'iqn.2026-12.org.other'
        self.config(orphan_grace=0, group='bmi')
        self.assertEqual([], heal.sweep_deleted(self.conductor, self.context))
        self.assertIn(GONE, self.pool.disks)

    def test_target_of_an_unknown_node_waits_for_the_grace(self):
        self.pool.add_disk(GONE)
        gone = self.real.export_node(GONE)
        del self.pool.disks[GONE]
        self.config(orphan_grace=3600, group='bmi')
        self.run_once()
        self.assertIsNotNone(self.tgtd.by_iqn(gone.target_iqn))
        self.config(orphan_grace=0, group='bmi')
        self.run_once()
        self.assertIsNone(self.tgtd.by_iqn(gone.target_iqn))
        self.assertNotIn(gone.chap_username, self.tgtd.accounts)

    def test_target_of_an_unknown_node_goes_once_the_grace_is_over(self):
        # Its clone went already (another conductor's sweep, or a delete
        # after an undeploy that tgtd did not answer): the sweep of deleted
        # nodes, which sees no disk of it, must not restart its grace.
        self.pool.add_disk(GONE)
        gone = self.real.export_node(GONE)
        del self.pool.disks[GONE]
        self.config(orphan_grace=60, group='bmi')
        self._run_at(1000.0)
        self.assertIsNotNone(self.tgtd.by_iqn(gone.target_iqn))
        self._run_at(1030.0)
        self.assertIsNotNone(self.tgtd.by_iqn(gone.target_iqn))
        self._run_at(1061.0)
        self.assertIsNone(self.tgtd.by_iqn(gone.target_iqn))
        self.assertNotIn(gone.chap_username, self.tgtd.accounts)
        # Forgotten once removed.
        self.assertEqual({}, heal._stray_since)

    def test_target_of_a_node_enrolled_again_restarts_its_grace(self):
        self.pool.add_disk(GONE)
        gone = self.real.export_node(GONE)
        del self.pool.disks[GONE]
        self.config(orphan_grace=60, group='bmi')
        self._run_at(1000.0)
        self.assertIn(GONE, heal._stray_since)
        # Enrolled again and being deployed: kept, and a later delete of it
        # gets a whole grace again.
        node = obj_utils.create_test_node(
            self.context, uuid=GONE, driver='bmi', deploy_interface='bmi',
            provision_state=states.DEPLOYING, reservation='other')
        self._run_at(1050.0)
        self.assertNotIn(GONE, heal._stray_since)
        node.destroy()
        self._run_at(1070.0)
        self.assertIsNotNone(self.tgtd.by_iqn(gone.target_iqn))

    # --- nodes at rest with an earlier deployment's leftovers --------------

    def _deleted_and_enrolled_again(self, state=states.AVAILABLE):
        """The ACTIVE node deleted in maintenance, its UUID enrolled again.

        Ironic 39.0.0's delete calls no interface: the clone, export and
        boot files of the old deployment stay, and the new node records no
        deployment.
        """
        root = CONF.deploy.http_root
        os.makedirs(os.path.join(root, self.node.uuid))
        os.makedirs(os.path.join(root, 'pxelinux.cfg'))
        with open(os.path.join(root, self.node.uuid, 'config'), 'w') as f:
            f.write('#!ipxe\nsanboot iscsi:...:%s\n' % self.node.uuid)
        os.symlink('../%s/config' % self.node.uuid,
                   os.path.join(root, 'pxelinux.cfg', '52-54-00-00-00-07'))
        old = self.node.uuid
        self.port.destroy()
        self.node.destroy()
        self.node = obj_utils.create_test_node(
            self.context, uuid=old, driver='bmi', deploy_interface='bmi',
            provision_state=state, driver_internal_info={})
        return root

    def test_earlier_deployment_of_a_node_at_rest_goes_after_the_grace(self):
        root = self._deleted_and_enrolled_again()
        self.config(orphan_grace=60, group='bmi')
        self.assertEqual([], heal.sweep_at_rest(self.conductor, self.context,
                                                now=1000.0))
        self.assertIn(self.node.uuid, self.pool.disks)
        self.assertEqual([self.node.uuid], heal.sweep_at_rest(
            self.conductor, self.context, now=1061.0))
        self.assertNotIn(self.node.uuid, self.pool.disks)
        self.assertIsNone(self.tgtd.by_iqn(self.exp.target_iqn))
        self.assertNotIn(self.exp.chap_username, self.tgtd.accounts)
        self.assertFalse(os.path.exists(os.path.join(root, self.node.uuid)))
        self.assertEqual([], os.listdir(os.path.join(root, 'pxelinux.cfg')))
        [event] = self.history()
        self.assertIn('earlier deployment', event)
        self.assertNotIn(self.exp.chap_secret, event)
        # Nothing left: nothing more to do.
        self.assertEqual([], heal.sweep_at_rest(
            self.conductor, self.context, now=2000.0))

    def test_boot_files_alone_of_a_node_at_rest_go_too(self):
        root = self._deleted_and_enrolled_again(state=states.MANAGEABLE)
        self._remove_disk(self.node.uuid)
        self.config(orphan_grace=0, group='bmi')
        self.assertEqual([self.node.uuid], heal.sweep_at_rest(
            self.conductor, self.context))
        self.assertFalse(os.path.exists(os.path.join(root, self.node.uuid)))

    def test_a_deploy_within_the_grace_keeps_its_disk(self):
        self._deleted_and_enrolled_again()
        self.config(orphan_grace=60, group='bmi')
        heal.sweep_at_rest(self.conductor, self.context, now=1000.0)
        # A deploy started meanwhile (Ironic holds the node) ...
        self.node.provision_state = states.DEPLOYING
        self.node.reservation = 'this-one'
        self.node.save()
        self.assertEqual([], heal.sweep_at_rest(
            self.conductor, self.context, now=1061.0))
        # ... and ended ACTIVE: never swept, the grace starts again.
        self.node.provision_state = states.ACTIVE
        self.node.reservation = None
        self.node.save()
        self.assertEqual([], heal.sweep_at_rest(
            self.conductor, self.context, now=1062.0))
        self.assertIn(self.node.uuid, self.pool.disks)

    def test_node_locked_at_the_removal_is_left_for_the_next_run(self):
        self._deleted_and_enrolled_again()
        self.config(orphan_grace=0, group='bmi')
        with mock.patch.object(heal.task_manager, 'acquire',
                               side_effect=heal.ironic_exc.NodeLocked(
                                   node=self.node.uuid, host='other')):
            self.assertEqual([], heal.sweep_at_rest(self.conductor,
                                                    self.context))
        self.assertIn(self.node.uuid, self.pool.disks)
        self.assertEqual([self.node.uuid], heal.sweep_at_rest(
            self.conductor, self.context))

    def test_node_at_rest_of_another_conductor_is_its_business(self):
        self._deleted_and_enrolled_again()
        self.conductor.mine = set()
        self.config(orphan_grace=0, group='bmi')
        self.assertEqual([], heal.sweep_at_rest(self.conductor,
                                                self.context))
        self.assertIn(self.node.uuid, self.pool.disks)

    def test_reconcile_sweeps_nodes_at_rest(self):
        self._deleted_and_enrolled_again()
        self.config(orphan_grace=0, group='bmi')
        self.run_once()
        self.assertNotIn(self.node.uuid, self.pool.disks)
        self.assertIsNone(self.tgtd.by_iqn(self.exp.target_iqn))
