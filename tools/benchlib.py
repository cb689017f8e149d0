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

import json
import os

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


def summary_path():
    """``$BMI_STATE/bench/summary.json``: every benchmark's key figures."""
    return os.path.join(lab_state.state_root(), 'bench', 'summary.json')


def write_summary(key, value, path=None):
    """Set ``key`` of summary.json to ``value``, keeping the other keys.

    Each benchmark writes its own part (bench_deploy "deploy",
    bench_export "export" and "read"); the file is replaced atomically.
    Returns the whole summary.
    """
    path = path or summary_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        doc = {}
    doc[key] = value
    with open(path + '.tmp', 'w') as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write('\n')
    os.replace(path + '.tmp', path)
    return doc


def conductors(env):
    """How many conductors the lab runs (services.json).

    The all-in-one lab has one (``ironic``); a lab with several runs
    ``conductor*`` (or ``ironic-conductor*``) services. services.json
    keeps the entries of the other lab mode (not running): only running
    ones count.
    """
    names = [n for n, info in env.get('services', {}).items()
             if n.startswith(('conductor', 'ironic-conductor'))
             and info.get('running')]
    return len(names) or 1


def ironic_env(env):
    """The running Ironic's env.json (url, http_root, log, ...).

    The two-conductor lab's API keeps it in its own state dir, the
    all-in-one Ironic in ``ironic_state`` (as tools/lab/soak.py reads it).

    :raises: RuntimeError naming the command that starts it.
    """
    api = env.get('services', {}).get('ironic-api') or {}
    return lab_state.read_env(
        api['state_dir'] if api.get('running') else env.get('ironic_state'),
        'Ironic')
