"""The ``[coordination]`` group: tooz, for locks shared by processes."""

from oslo_config import cfg

GROUP = 'coordination'

opts = [
    cfg.StrOpt('backend_url',
               default='file://$bmi.state_path/locks',
               secret=True,
               help='tooz backend URL for the plugin\'s locks. The default '
                    'file backend serves one host; use a shared backend '
                    '(etcd3+http://, redis://) when several conductors '
                    'export from the same gateway. May embed credentials, '
                    'so it is never logged.'),
    cfg.IntOpt('lock_timeout',
               default=60, min=1,
               help='Seconds to wait for a lock before failing.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return (GROUP, opts)
