"""Options for oslo-config-generator (entry point ``oslo.config.opts``)."""

from bmi_driver.conf import ceph
from bmi_driver.conf import coordination
from bmi_driver.conf import general
from bmi_driver.conf import hil
from bmi_driver.conf import iscsi

_MODULES = (general, ceph, iscsi, coordination, hil)


def list_opts():
    """Return ``[(group name, [options])]`` for every bmi_driver group."""
    return [m.list_opts() for m in _MODULES]
