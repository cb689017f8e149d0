"""Base test case for bmi_driver's unit and functional tests."""

import fixtures
from oslo_config import fixture as config_fixture
from oslotest import base

from bmi_driver import conf as bmi_conf


class TestCase(base.BaseTestCase):
    """A test with its own view of the configuration, reset afterwards."""

    def setUp(self):
        super().setUp()
        self.conf_fixture = self.useFixture(
            config_fixture.Config(bmi_conf.CONF))
        self.config = self.conf_fixture.config
        self.state_dir = self.useFixture(fixtures.TempDir()).path
        self.config(state_path=self.state_dir, group='bmi')
