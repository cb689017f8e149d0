"""What the benchmarks share: the services' description and [ceph] setup."""

import json
import os

from bmi_driver.conf import CONF

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def env_path():
    """The services.json that tools/services.sh wrote."""
    return os.environ.get('BMI_TEST_ENV',
                          os.path.join(REPO, '.state', 'services.json'))


def load_env(path=None):
    with open(path or env_path()) as f:
        return json.load(f)


def configure_ceph(env):
    """Parse no config file; point [ceph] at the services' cluster."""
    CONF([], project='bmi', default_config_files=[])
    for key, value in (('conf_file', env['ceph_conf']),
                       ('user', env['ceph_user']),
                       ('keyring', env['ceph_keyring']),
                       ('image_pool', env['image_pool']),
                       ('clone_pool', env['image_pool']),
                       ('glance_pool', env['glance_pool'])):
        CONF.set_override(key, value, group='ceph')
