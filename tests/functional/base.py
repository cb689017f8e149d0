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

"""Functional tests: against the live services `make test` starts.

They read what the services are from services.json (the lab's,
``tools.lab.state``; $BMI_TEST_ENV names another). A missing service fails
the test loudly: it is never skipped.
"""

import uuid

from tests import base
from tools.lab import state as lab_state

load_env = lab_state.load_services


class FunctionalTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.env = load_env()
        self.config(group='ceph', **lab_state.ceph_options(self.env))

    def unique(self, prefix='t'):
        """A name no other test (or earlier run) uses."""
        return '%s-%s' % (prefix, uuid.uuid4().hex[:10])
