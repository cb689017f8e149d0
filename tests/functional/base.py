"""Functional tests: against the live services `make test` starts.

They read what the services are from the JSON file named by $BMI_TEST_ENV
(written by tools/services.sh). A missing service fails the test loudly: it
is never skipped.
"""

import json
import os
import uuid

from bmi_driver import conf as bmi_conf
from tests import base

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def load_env():
    path = os.environ.get('BMI_TEST_ENV',
                          os.path.join(_REPO, '.state', 'services.json'))
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise RuntimeError(
            'Functional tests need the live services: run them with '
            '`make test`, or `make services-start` first (%s: %s)'
            % (path, e.strerror))


class FunctionalTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.env = load_env()
        self.config(conf_file=self.env['ceph_conf'],
                    user=self.env['ceph_user'],
                    keyring=self.env['ceph_keyring'],
                    image_pool=self.env['image_pool'],
                    clone_pool=self.env['image_pool'],
                    glance_pool=self.env['glance_pool'],
                    group='ceph')

    def unique(self, prefix='t'):
        """A name no other test (or earlier run) uses."""
        return '%s-%s' % (prefix, uuid.uuid4().hex[:10])
