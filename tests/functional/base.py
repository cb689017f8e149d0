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
