"""Base test case for bmi_driver's unit and functional tests."""

import logging
import sys

import fixtures
from oslo_config import fixture as config_fixture
from oslotest import base

from bmi_driver import conf as bmi_conf


def enable_loggers():
    """Undo what Ironic's database fixture does to this process's loggers.

    Its first use in a process (``ironic.tests.unit.db.base``, Ironic 39)
    runs alembic, whose ``env.py`` calls ``logging.config.fileConfig()``:
    that disables every logger made so far (``disable_existing_loggers``),
    bmi_driver's among them, so that every later test of the worker saw
    no log line at all, and its checks that a secret is never logged
    passed on nothing.
    """
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if (isinstance(logger, logging.Logger)
                and logger.name.startswith('bmi_driver')):
            logger.disabled = False
    # Not its console handler on the root logger, nor logging's last
    # resort (stderr) instead: the tests' own handlers (fixtures.FakeLogger)
    # capture what they check, and the rest goes nowhere, as before.
    root = logging.getLogger()
    for handler in list(root.handlers):
        if (type(handler) is logging.StreamHandler
                and handler.stream is sys.stderr):
            root.removeHandler(handler)
    if not any(isinstance(h, logging.NullHandler) for h in root.handlers):
        root.addHandler(logging.NullHandler())


class TestCase(base.BaseTestCase):
    """A test with its own view of the configuration, reset afterwards."""

    def setUp(self):
        super().setUp()
        enable_loggers()
        self.conf_fixture = self.useFixture(
            config_fixture.Config(bmi_conf.CONF))
        self.config = self.conf_fixture.config
        self.state_dir = self.useFixture(fixtures.TempDir()).path
        self.config(state_path=self.state_dir, group='bmi')
