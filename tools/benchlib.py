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

"""What the benchmarks share: the services' description and [ceph] setup.

Both come from the lab (``tools.lab.state``): this module only adapts
them to a benchmark that parses no configuration file.
"""

from bmi_driver.conf import CONF
from tools import lab
from tools.lab import state as lab_state

REPO = lab.REPO


def env_path():
    """The services.json the lab wrote (or $BMI_TEST_ENV)."""
    return lab_state.services_path()


def load_env(path=None):
    return lab_state.load_services(path)


def configure_ceph(env):
    """Parse no config file; point [ceph] at the services' cluster."""
    CONF([], project='bmi', default_config_files=[])
    lab_state.configure(CONF, env, groups=('ceph',))
