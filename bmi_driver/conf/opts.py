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

"""Options for oslo-config-generator (entry point ``oslo.config.opts``)."""

from bmi_driver.conf import ceph
from bmi_driver.conf import coordination
from bmi_driver.conf import general
from bmi_driver.conf import glance
from bmi_driver.conf import hil
from bmi_driver.conf import iscsi
from bmi_driver.conf import neutron

_MODULES = (general, ceph, iscsi, coordination, hil, glance,
            neutron)


def list_opts():
    """Return ``[(group name, [options])]`` for every bmi_driver group."""
    return [m.list_opts() for m in _MODULES]
