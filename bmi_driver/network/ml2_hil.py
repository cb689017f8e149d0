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

"""``bmi_hil``: the ML2 mechanism driver for the ports HIL carries.

It runs inside neutron-server, not in the conductor: ML2 loads it by the
entry point ``neutron.ml2.mechanism_drivers = bmi_hil`` (setup.cfg) when
``[ml2] mechanism_drivers`` names it.  Checked against Neutron 29.0.0 and
neutron-lib 5.0.1.

Why a driver of its own: the ``hil`` network interface puts a node's nics
on their networks through HIL (the Hardware Isolation Layer owns the
switch ports), then binds each VIF's Neutron port as Ironic 39.0.0's own
``neutron`` interface binds it (``binding:host_id`` = node UUID,
``binding:vnic_type`` = ``baremetal``, ``local_link_information``), and
only after HIL's connect succeeded (``HILNetwork.configure_tenant_networks``
and ``_plug_vif`` bind after ``_join``).  Nothing in Neutron's tree binds
such a port without an agent, networking-baremetal 8.1.0's driver binds
only for a host its ironic-neutron-agent reports and a switch it manages,
and networking-generic-switch would configure the switch itself, a second
controller of the ports HIL owns (tools/lab/neutron.py has the findings).
So this driver binds as networking-generic-switch does, ``vif_type`` =
``other`` with no vif details, and touches no switch: when the binding
reaches Neutron, HIL already has the nic on the network, so the port is
set ACTIVE at once (``PortContext.set_binding``'s ``status``, which ML2
commits with the binding in Neutron 29.0.0's ``_commit_port_binding``);
NGS instead holds a provisioning block until its switch is configured.
Unbinding and deleting have nothing to undo: HIL's detach is the ``hil``
interface's, before it unbinds.

It binds a port only when all of these hold, and otherwise leaves it to
the other mechanism drivers:

* ``binding:vnic_type`` is ``baremetal`` and the port has a host (what
  Ironic sets);
* the segment is a ``vlan`` segment (HIL carries VLANs, and the ``hil``
  interface refuses VIFs of other network types: a flat or VXLAN port was
  never put anywhere by HIL, so an ACTIVE would be untrue) of a physical
  network listed in ``[ml2_bmi_hil] physical_networks`` (the physnets
  whose switch ports HIL owns);
* if ``binding:profile`` names a ``physical_network`` (Ironic's
  ``neutron`` interface sends the Ironic port's), it is that segment's.

Its options are Neutron's (``[ml2_bmi_hil]`` in neutron-server's
configuration, e.g. ``ml2_conf.ini``), registered by the driver itself;
``etc/ml2_bmi_hil.conf.sample`` (namespace ``bmi_driver.ml2_hil``).  This
module imports neutron-lib and nothing of bmi_driver (neutron-server loads
only it), and nothing of bmi_driver imports it (tests/unit/test_layers.py).
"""

from neutron_lib.api.definitions import portbindings
from neutron_lib import constants as n_const
from neutron_lib.plugins.ml2 import api
from oslo_config import cfg
from oslo_log import log

LOG = log.getLogger(__name__)

GROUP = 'ml2_bmi_hil'

opts = [
    cfg.ListOpt('physical_networks', default=[],
                help='Physical networks whose switch ports HIL owns: the '
                     'bmi_hil mechanism driver binds baremetal ports on '
                     'VLAN segments of these physical networks only (the '
                     'hil network interface of bmi_driver has put the '
                     'nic on the network through HIL before it binds). '
                     'Empty: it binds nothing.'),
]

# The one network type HIL carries (bmi_driver/network/hil_vifs.py accepts
# only VLAN networks as VIFs).
NETWORK_TYPES = frozenset([n_const.TYPE_VLAN])


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    """For oslo-config-generator (namespace ``bmi_driver.ml2_hil``)."""
    return [(GROUP, opts)]


class HILMechanismDriver(api.MechanismDriver):
    """Binds baremetal ports on HIL's physical networks; no switch work."""

    def __init__(self, conf=None):
        # ML2's MechanismManager (Neutron 29.0.0) loads drivers through
        # stevedore with invoke_on_load and no arguments: Neutron's CONF.
        self._conf = conf if conf is not None else cfg.CONF
        self.physical_networks = frozenset()

    def initialize(self):
        register_opts(self._conf)
        self.physical_networks = frozenset(
            self._conf[GROUP].physical_networks)
        if self.physical_networks:
            LOG.info('bmi_hil binds baremetal ports on VLAN segments of '
                     'physical network(s) %s',
                     ', '.join(sorted(self.physical_networks)))
        else:
            LOG.warning('bmi_hil: [%s] physical_networks is empty: it '
                        'binds no port', GROUP)

    @property
    def connectivity(self):
        # A bare metal port without a fixed IP (a network without a
        # subnet) is bound only by an "l2" driver (Neutron 29.0.0's
        # MechanismManager._check_drivers_connectivity).
        return portbindings.CONNECTIVITY_L2

    def _segment(self, context):
        """The segment of ``segments_to_bind`` to bind to, or None."""
        port = context.current
        if port.get(portbindings.VNIC_TYPE) != portbindings.VNIC_BAREMETAL:
            return None
        if not context.host:
            return None
        profile = port.get(portbindings.PROFILE) or {}
        wanted = profile.get('physical_network')
        for segment in context.segments_to_bind or ():
            physnet = segment.get(api.PHYSICAL_NETWORK)
            if (segment.get(api.NETWORK_TYPE) in NETWORK_TYPES
                    and physnet in self.physical_networks
                    and (not wanted or wanted == physnet)):
                return segment
        return None

    def bind_port(self, context):
        """Bind a baremetal port to a VLAN segment of a HIL physnet.

        HIL has already connected the nic (the hil interface binds after
        HIL's connect), so the binding is committed ACTIVE. Anything else
        is left to the other drivers (no exception, no binding).
        """
        segment = self._segment(context)
        if segment is None:
            LOG.debug('bmi_hil does not bind port %(port)s (vnic_type '
                      '%(vnic)s, host %(host)s, segments %(segs)s)',
                      {'port': context.current.get('id'),
                       'vnic': context.current.get(portbindings.VNIC_TYPE),
                       'host': context.host,
                       'segs': [(s.get(api.NETWORK_TYPE),
                                 s.get(api.PHYSICAL_NETWORK))
                                for s in context.segments_to_bind or ()]})
            return
        context.set_binding(segment[api.ID], portbindings.VIF_TYPE_OTHER,
                            {}, status=n_const.PORT_STATUS_ACTIVE)
        LOG.info('bmi_hil bound port %(port)s for host %(host)s on '
                 '%(physnet)s VLAN %(vlan)s (HIL carries it)',
                 {'port': context.current.get('id'), 'host': context.host,
                  'physnet': segment.get(api.PHYSICAL_NETWORK),
                  'vlan': segment.get(api.SEGMENTATION_ID)})
