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

"""``python -m tools.lab start|stop|status|render [SERVICE...]``."""

import argparse
import sys

from tools.lab import service
from tools.lab import services
from tools.lab import state as lab_state


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m tools.lab',
        description='Start or stop the lab services, each on 127.0.0.1 '
                    'and stopped by its recorded pid. State in $BMI_STATE '
                    '(default .state/); services.json says where they are.')
    parser.add_argument('action', choices=('start', 'stop', 'status',
                                           'render'))
    parser.add_argument('services', nargs='*', metavar='SERVICE',
                        help='of: %s (start default: %s; stop and status '
                             'default: all)'
                             % (', '.join(services.SERVICES),
                                ' '.join(services.DEFAULT)))
    parser.add_argument('--ironic-conf', action='append', default=[],
                        metavar='FILE',
                        help='extra configuration file for Ironic, after '
                             'ours (its settings win); repeatable')
    parser.add_argument('--hil-seed', metavar='JSON',
                        help='seed for the HIL test server (replaces its '
                             'state)')
    args = parser.parse_args(argv)
    st = lab_state.State()
    opts = services.Options(args.ironic_conf, args.hil_seed)
    try:
        if args.action == 'start':
            services.start(args.services or services.DEFAULT, st, opts)
        elif args.action == 'stop':
            errors = services.stop(args.services or None, st)
            for e in errors:
                print('stop %s' % e, file=sys.stderr)
            return 1 if errors else 0
        elif args.action == 'status':
            # Exit code 0 when every named service runs, 3 otherwise.
            rc = 0
            for name in args.services or list(services.SERVICES):
                pid = services.get(name, st).pid()
                print('%s: %s' % (name, 'running (pid %d)' % pid
                                  if pid else 'stopped'))
                rc = rc if pid else 3
            return rc
        else:
            ir = services.get('ironic', st, opts)
            ir.write_conf()
            print('\n'.join(ir.conf_files[:2]))
    except (ValueError, RuntimeError, service.ServiceError) as e:
        print('error: %s' % e, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
