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

"""The lab: the services bmi_driver's demo, functional tests and benchmarks
run against, on one machine.

    python -m tools.lab start [SERVICE...]    (default: ceph tgtd hil ironic)
    python -m tools.lab stop [SERVICE...]     (default: all)
    python -m tools.lab status [SERVICE...]
    python -m tools.lab render                (ironic.conf, bmi.conf only)

Modules:

* ``state``: where everything lives under ``$BMI_STATE`` (``.state/``),
  ``services.json`` (written and read here only) and its mapping to the
  plugin's ``[ceph]`` and ``[iscsi]`` options;
* ``config``: the one renderer of ``ironic.conf`` and ``bmi.conf``;
* ``service``: the ``Service`` base class (pid file, start, stop,
  is_running) and process helpers;
* ``ceph``, ``tgtd``, ``ironic``: Ceph (``tools/ceph-cluster.sh``), tgtd,
  Ironic all-in-one;
* ``hil_emulator``: the HIL test server and its service;
* ``vmlab``: libvirtd, sushy-tools and the HTTP boot server, and the VMs;
* ``e2e``: the demo's scenario (``python -m tools.lab.e2e``);
* ``nova_harness`` (run in Nova's own venv) and ``nova``, its client:
  Nova 34.0.0's ironic driver against the lab;
* ``services``: the registry of services the CLI knows, in start order.

Every server binds to 127.0.0.1 and is stopped by its recorded pid.
"""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
VENV = os.environ.get('BMI_VENV') or os.path.join(REPO, '.venv')
VENV_BIN = os.path.join(VENV, 'bin')


def say(who, text):
    """One progress line on stdout, as the bash scripts printed them."""
    print('[%s] %s' % (who, text), file=sys.stdout, flush=True)
