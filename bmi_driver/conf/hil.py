"""The ``[hil]`` group: the HIL client and the ``hil`` network interface."""

from oslo_config import cfg

GROUP = 'hil'

opts = [
    cfg.StrOpt('provisioning_network',
               default='bmi-provisioning',
               help='HIL network that every deployed node\'s boot nic joins '
                    '(native VLAN): it carries iSCSI to the node\'s disk.'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return (GROUP, opts)
