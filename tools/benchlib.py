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

"""What the benchmarks share: the services, [ceph], timing, summary.json.

The services' description and [ceph] come from the lab
(``tools.lab.state``): this module only adapts them to a benchmark that
parses no configuration file.  ``wait_states`` is the one way the
benchmarks time a provision transition (bench_deploy's N nodes at once,
bench_nova's direct deploy beside Nova's spawn).
"""

import json
import os
import time

from bmi_driver.conf import CONF
from tools import lab
from tools.lab import state as lab_state

REPO = lab.REPO

# The longest pause between two looks at the nodes' states. Shorter while
# a transition is young: the pause is at most POLL_FRACTION of the time
# elapsed, so that polling neither hides nor adds more than that (at
# N=1 a fixed 0.2 s would be a good part of the figure), and a long
# transition is not slowed by an API busy answering the bench.
POLL = 0.2
POLL_MIN = 0.01
POLL_FRACTION = 0.02
WAIT = 600


def wait_states(ironic, nodes, state, started, timeout=WAIT,
                clock=time.perf_counter, sleep=time.sleep):
    """Seconds from ``started`` until every node of ``nodes`` is ``state``.

    ``started``: a ``clock()`` value taken before the request that began
    the transition. One node list per look (not a GET per node), paced
    as POLL* say.

    :param ironic: an ironicclient v1 client.
    :raises: RuntimeError naming a node whose state ends in ``failed``,
        or how many are not ``state`` after ``timeout`` seconds.
    """
    pending = set(nodes)
    deadline = clock() + timeout
    while True:
        for node in ironic.node.list(
                fields=['uuid', 'provision_state', 'last_error'], limit=0):
            if node.uuid not in pending:
                continue
            if node.provision_state == state:
                pending.discard(node.uuid)
            elif (node.provision_state or '').endswith('failed'):
                raise RuntimeError('node %s: %s: %s' % (
                    node.uuid, node.provision_state, node.last_error))
        now = clock()
        if not pending:
            return now - started
        if now > deadline:
            raise RuntimeError('%d node(s) not %s after %ds'
                               % (len(pending), state, timeout))
        sleep(min(POLL, max(POLL_MIN, (now - started) * POLL_FRACTION)))


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
