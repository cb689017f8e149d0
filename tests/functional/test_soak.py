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

"""The soak's leak census against the real lab (tools.lab.soak_census).

A node Ironic does not have (as after a node delete) gets a real clone,
config drive, target, CHAP account and lock file through the plugin's
own library and ExportManager; the soak's census must count each of them,
and count nothing once they are gone.
"""

import os
import random
import uuid

from bmi_driver.conf import CONF
from tests.functional import test_export
from tools.lab import soak
from tools.lab import soak_census as census


class SoakCensusTest(test_export.ExportTestCase):

    def census_of(self, node_uuid):
        lab = soak.Lab(self.env)
        # The plugin's tooz file locks of this test: [coordination]
        # backend_url is file://<[bmi] state_path>/locks here.
        lab.lock_dir = CONF.coordination.backend_url[len('file://'):]
        s = soak.Soak(lab, random.Random(0), soak.Tally(), op_timeout=30)
        s.known = {node_uuid}
        s.deleted = {node_uuid}
        leaked, silent = s.census()
        self.assertEqual([], silent)
        return [r for r in leaked if r.node == node_uuid]

    def test_leaks_of_a_deleted_node_are_counted(self):
        node_uuid = str(uuid.uuid4())
        self.lib.clone_for_node(node_uuid, self.golden()[0].uuid)
        self.addCleanup(self.remove_disk, node_uuid)
        self.lib.write_node_configdrive(node_uuid, b'config-2' * 512)
        self.addCleanup(self.lib.remove_node_configdrive, node_uuid)
        self.mgr.export_node(node_uuid)
        self.addCleanup(self.mgr.unexport_node, node_uuid)

        leaked = self.census_of(node_uuid)
        self.assertEqual(dict(census.summary([]), clone=1, configdrive=1,
                              target=1, account=1, lock_file=1),
                         census.summary(leaked), leaked)

        self.mgr.unexport_node(node_uuid)
        self.lib.remove_node_configdrive(node_uuid)
        self.remove_disk(node_uuid)
        # tooz's file driver keeps the lock file of export-<uuid>.
        leaked = self.census_of(node_uuid)
        self.assertEqual(['lock_file'], [r.kind for r in leaked])
        os.unlink(leaked[0].what)
        self.assertEqual([], self.census_of(node_uuid))
