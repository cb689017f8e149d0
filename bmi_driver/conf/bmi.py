"""The ``[bmi]`` group: how the plugin names and places what it creates."""

from oslo_config import cfg

GROUP = 'bmi'

opts = [
    cfg.StrOpt('state_path',
               default='/var/lib/bmi',
               help='Directory for the plugin\'s local state (lock files of '
                    'the default coordination backend, temporary files).'),
    cfg.StrOpt('default_project',
               default='admin',
               help='Project that owns images imported without --project.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return (GROUP, opts)
