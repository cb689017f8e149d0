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

"""``python -m tools.lab start|stop|status|render|exec [SERVICE...]``.

``start`` creates the lab's network namespace first (from the root mount
namespace, where ``ip netns add`` must run) and then re-executes itself
inside it, so that every service starts there. ``stop`` stops them by
pid from anywhere and deletes the namespace when run outside it.
``exec -- CMD...`` runs a command inside the namespace (the functional
tests, the demo's scenario, a shell).
"""

import argparse
import os
import sys

from tools.lab import labnet
from tools.lab import netns
from tools.lab import service
from tools.lab import services
from tools.lab import state as lab_state


def in_lab_netns(argv):
    """Re-run ``python -m tools.lab ARGV`` inside the lab's namespace."""
    cmd = [sys.executable, '-m', 'tools.lab'] + list(argv)
    os.execvp('ip', netns.cmd(labnet.NETNS, cmd))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['exec']:
        cmd = argv[2:] if argv[1:2] == ['--'] else argv[1:]
        if not cmd:
            print('usage: python -m tools.lab exec -- CMD...',
                  file=sys.stderr)
            return 2
        if not netns.exists(labnet.NETNS):
            print('error: the lab namespace %s does not exist: start the '
                  'lab first' % labnet.NETNS, file=sys.stderr)
            return 1
        if labnet.inside():
            os.execvp(cmd[0], cmd)
        os.execvp('ip', netns.cmd(labnet.NETNS, cmd))
    parser = argparse.ArgumentParser(
        prog='python -m tools.lab',
        description='Start or stop the lab services, each inside the '
                    'network namespace %s and stopped by its recorded pid. '
                    'State in $BMI_STATE (default .state/); services.json '
                    'says where they are.' % labnet.NETNS)
    parser.add_argument('action', choices=('start', 'stop', 'status',
                                           'render'))
    parser.add_argument('services', nargs='*', metavar='SERVICE',
                        help='of: %s (default: all)'
                             % ', '.join(services.SERVICES))
    parser.add_argument('--ironic-conf', action='append', default=[],
                        metavar='FILE',
                        help='extra configuration file for Ironic, after '
                             'ours (its settings win); repeatable')
    args = parser.parse_args(argv)
    st = lab_state.State()
    opts = services.Options(args.ironic_conf)
    try:
        if args.action == 'start':
            names = args.services or list(services.default())
            # Before the namespace: a refused start changes nothing.
            services.check_no_conflict(st)
            if not labnet.inside():
                if 'netns' in names or not netns.exists(labnet.NETNS):
                    services.start(['netns'], st, opts)
                rest = [a for a in argv if a != 'netns']
                if names == ['netns']:
                    return 0
                in_lab_netns(rest)
            services.start([n for n in names if n != 'netns'], st, opts)
        elif args.action == 'stop':
            errors = services.stop(args.services or None, st)
            for e in errors:
                print('stop %s' % e, file=sys.stderr)
            return 1 if errors else 0
        elif args.action == 'status':
            # Exit code 0 when every named service (default: the lab
            # BMI_LAB_CONDUCTORS selects) runs, 3 otherwise, 4 when the
            # other lab runs (services.conflicting): the scripts that
            # start a lab unless one runs (tools/bench, tools/soak.sh,
            # tools/demo.sh) then stop and leave it alone.
            rc = 0
            for name in args.services or list(services.default()):
                svc = services.get(name, st)
                running = svc.is_running()
                pid = svc.pid()
                print('%s: %s' % (name, ('running (pid %d)' % pid if pid
                                         else 'running') if running
                                  else 'stopped'))
                rc = rc if running else 3
            others = [] if args.services else services.conflicting(st)
            if others:
                print('the other lab runs: %s' % ', '.join(others))
                return 4
            return rc
        else:
            ir = services.get('ironic', st, opts)
            ir.write_conf()
            print('\n'.join(ir.conf_files[:2]))
    except (ValueError, RuntimeError, OSError, service.ServiceError) as e:
        print('error: %s' % e, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
