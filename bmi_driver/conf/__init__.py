"""bmi_driver's configuration: one module per option group.

Importing this package registers every group on oslo.config's global
``CONF``, which is also Ironic's when the plugin runs in a conductor.
"""

from oslo_config import cfg

from bmi_driver.conf import ceph
from bmi_driver.conf import coordination
from bmi_driver.conf import general
from bmi_driver.conf import hil
from bmi_driver.conf import iscsi

CONF = cfg.CONF

for _module in (general, ceph, coordination, hil, iscsi):
    _module.register_opts(CONF)
