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

"""Run the HIL test server.

    python -m tools.lab.hil_emulator --port N --state FILE

It listens on 127.0.0.1 only. FILE is loaded when it exists (a seed, or the
state a previous run left) and rewritten after every change. Stop it with
SIGTERM or SIGINT.
"""

import argparse
import json
import signal
import sys

from tools.lab.hil_emulator import server


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tools.lab.hil_emulator',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--port', type=int, default=7000,
                        help='TCP port on 127.0.0.1 (0: any free port)')
    parser.add_argument('--state', required=True, metavar='FILE.json',
                        help='state file: loaded if present, then kept up '
                             'to date')
    parser.add_argument('--seed', metavar='SEED.json',
                        help='seed used when the state file does not exist')
    parser.add_argument('--action-delay', type=float,
                        help='seconds before a networking action is '
                             'applied (overrides the state file)')
    parser.add_argument('--verbose', action='store_true',
                        help='log every request to stderr')
    args = parser.parse_args(argv)

    seed = None
    if args.seed:
        with open(args.seed) as f:
            seed = json.load(f)
    httpd = server.HILServer(port=args.port, seed=seed,
                             state_path=args.state, verbose=args.verbose)
    if args.action_delay is not None:
        with httpd.hil.lock:
            httpd.hil.state['action_delay'] = args.action_delay
            httpd.hil.save()

    def _stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print('HIL test server on %s (state %s)' % (httpd.url, args.state),
          flush=True)
    try:
        httpd.serve_forever(poll_interval=0.5)
    finally:
        httpd.server_close()
        httpd.hil.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
