"""The ``[iscsi]`` group: how node disks are exported."""

from oslo_config import cfg

GROUP = 'iscsi'

opts = [
    cfg.StrOpt('export_backend',
               default='tgt',
               help='Export backend, by its name in the '
                    '"bmi_driver.export_backends" entry point namespace.'),
    cfg.StrOpt('iqn_prefix',
               default='iqn.2026-11.org.massopen.bmi',
               help='Prefix of the target IQNs: <prefix>:<node uuid>.'),
    cfg.HostAddressOpt('portal_address',
                       default='127.0.0.1',
                       help='Address that nodes use to reach the target. '
                            'May differ from the one the conductor uses.'),
    cfg.PortOpt('portal_port',
                default=3260,
                help='iSCSI port nodes connect to.'),
    cfg.BoolOpt('chap',
                default=True,
                help='Give every export its own random CHAP credentials. '
                     'Switch off only in labs.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return (GROUP, opts)
