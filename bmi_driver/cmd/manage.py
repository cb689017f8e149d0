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

"""``bmi-manage``: the operator's command line for bmi_driver.

A cliff application: commands come from the ``bmi_driver.manage.commands``
entry point namespace (``image import`` is ``image_import``), output is
``-f table|json|value|...``, and configuration is read from
``--config-file`` (default ``/etc/bmi/bmi.conf`` when it exists).
"""

import os
import sys
import warnings

from cliff import app
from cliff import commandmanager
from oslo_config import cfg

from bmi_driver.conf import CONF

DEFAULT_CONFIG = '/etc/bmi/bmi.conf'


class BMIManage(app.App):

    def __init__(self):
        super().__init__(
            description='Manage bmi_driver golden images and iSCSI exports.',
            version=_version(),
            command_manager=commandmanager.CommandManager(
                'bmi_driver.manage.commands'),
            deferred_help=True)

    def build_option_parser(self, description, version, argparse_kwargs=None):
        parser = super().build_option_parser(description, version,
                                             argparse_kwargs)
        parser.add_argument(
            '--config-file', action='append', default=[],
            metavar='PATH',
            help='bmi.conf to read; may be given more than once '
                 '(default: %s if it exists).' % DEFAULT_CONFIG)
        return parser

    def initialize_app(self, argv):
        files = self.options.config_file
        if not files and os.path.exists(DEFAULT_CONFIG):
            files = [DEFAULT_CONFIG]
        for path in files:
            if not os.path.isfile(path):
                raise cfg.ConfigFilesNotFoundError([path])
        CONF(args=[], project='bmi', default_config_files=files)


def _version():
    try:
        from importlib import metadata
        return metadata.version('bmi-driver')
    except Exception:
        return 'unknown'


def main(argv=None):
    # futurist (under tooz) imports eventlet when it is installed, as it is
    # next to Ironic, and eventlet warns about itself on import: noise an
    # operator can do nothing about, and errors must stay one line.
    warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
    try:
        return BMIManage().run(sys.argv[1:] if argv is None else argv)
    except cfg.Error as e:
        print('bmi-manage: %s' % e, file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
