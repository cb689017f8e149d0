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

"""What the ``hil`` network interface asks Neutron about a VIF.

openstacksdk's network proxy on a keystoneauth1 session loaded from the
``[neutron]`` group (:mod:`bmi_driver.conf.neutron`), as Ironic 39.0.0's
``ironic/common/neutron.py`` builds its client (``Connection(session=...,
oslo_conf=CONF)``: the adapter options, ``endpoint_override`` included, are
read from the same group).  Checked against openstacksdk 4.22.0 and
Neutron 29.0.0.

A VIF is a Neutron port id (what Nova's ironic driver attaches).  The port
is bound as Ironic's own ``neutron`` network interface binds it
(``add_ports_to_network`` / ``plug_port_to_tenant_network`` in Ironic
39.0.0): ``binding:host_id`` = the node's UUID, ``binding:vnic_type`` =
``baremetal``, ``binding:profile`` = ``{"local_link_information":
[<the Ironic port's local_link_connection>]}``, ``device_owner`` =
``baremetal:none``; unbound by clearing host and profile.
"""

import time

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
import openstack
from openstack import exceptions as sdk_exc
from oslo_log import log

from bmi_driver.conf import CONF
from bmi_driver.conf import neutron as neutron_conf
from bmi_driver import exception

LOG = log.getLogger(__name__)

GROUP = neutron_conf.GROUP

VNIC_BAREMETAL = 'baremetal'
DEVICE_OWNER = 'baremetal:none'
ACTIVE = 'ACTIVE'
# Ironic 39.0.0 (common/neutron.py wait_for_port_status) gives up early on
# this vif_type: no mechanism driver bound the port.
BINDING_FAILED = 'binding_failed'

_POLL = 0.5


def _error(what, e):
    status = getattr(e, 'status_code', None) or getattr(e, 'http_status',
                                                        None)
    return exception.NeutronError(msg='%s: %s' % (what, e), status=status)


class NeutronClient(object):
    """Neutron's ports and networks, as the hil interface needs them.

    :param network: an openstacksdk network proxy (``conn.network``).
    """

    def __init__(self, network=None):
        self._conn = None
        self._network = network

    @property
    def network(self):
        """The proxy, made at first use (it runs version discovery)."""
        if self._network is None:
            self._network = self._load()
        return self._network

    def _load(self):
        try:
            auth = ks_loading.load_auth_from_conf_options(CONF, GROUP)
            session = ks_loading.load_session_from_conf_options(
                CONF, GROUP, auth=auth)
        except (ks_exc.NoMatchingPlugin, ks_exc.MissingRequiredOptions,
                ks_exc.OptionError, TypeError) as e:
            raise exception.NeutronError(
                msg='invalid [neutron] authentication options: %s' % e)
        self._conn = openstack.connection.Connection(session=session,
                                                     oslo_conf=CONF)
        try:
            return self._conn.network
        except (sdk_exc.SDKException, ks_exc.ClientException) as e:
            self.close()
            raise _error('cannot reach Neutron', e)

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def get_port(self, port_id):
        """The port as a dict (openstacksdk's attribute names).

        :raises: NeutronPortNotFound, NeutronError
        """
        try:
            return self.network.get_port(port_id).to_dict(computed=False)
        except sdk_exc.NotFoundException:
            raise exception.NeutronPortNotFound(port=port_id, status=404)
        except (sdk_exc.SDKException, ks_exc.ClientException) as e:
            raise _error('reading port %s' % port_id, e)

    def get_network(self, network_id):
        """The network as a dict; ``provider:*`` need an admin caller.

        :raises: NeutronError
        """
        try:
            return self.network.get_network(network_id).to_dict(
                computed=False)
        except (sdk_exc.SDKException, ks_exc.ClientException) as e:
            raise _error('reading network %s' % network_id, e)

    def _update(self, port_id, attrs, what):
        try:
            return self.network.update_port(port_id, **attrs).to_dict(
                computed=False)
        except sdk_exc.NotFoundException:
            raise exception.NeutronPortNotFound(port=port_id, status=404)
        except (sdk_exc.SDKException, ks_exc.ClientException) as e:
            raise _error('%s port %s' % (what, port_id), e)

    def bind(self, port_id, host_id, local_link, device_id=None):
        """Bind the port to a bare metal node, as Ironic's neutron does.

        :param host_id: the Ironic node's UUID.
        :param local_link: the Ironic port's local_link_connection (dict).
        """
        attrs = {'binding_host_id': host_id,
                 'binding_vnic_type': VNIC_BAREMETAL,
                 'binding_profile': {
                     'local_link_information': [dict(local_link or {})]},
                 'device_owner': DEVICE_OWNER}
        if device_id:
            attrs['device_id'] = device_id
        return self._update(port_id, attrs, 'binding')

    def unbind(self, port_id):
        """Clear the binding; a port that is gone counts as unbound.

        :returns: False if Neutron has no such port.
        """
        try:
            self._update(port_id, {'binding_host_id': '',
                                   'binding_profile': {}}, 'unbinding')
        except exception.NeutronPortNotFound:
            LOG.info('Neutron port %s is gone: nothing to unbind', port_id)
            return False
        return True

    def wait_active(self, port_id, timeout):
        """Wait until the port's status is ACTIVE.

        :returns: the port; a port still not ACTIVE after ``timeout``
            seconds is returned as it is (the caller decides).
        :raises: NeutronError when no mechanism driver bound the port
            (``binding:vif_type`` binding_failed).
        """
        deadline = time.monotonic() + timeout
        while True:
            port = self.get_port(port_id)
            if port.get('status') == ACTIVE:
                return port
            check_bound(port)
            if time.monotonic() >= deadline:
                return port
            time.sleep(_POLL)


def check_bound(port):
    """Refuse a port that no mechanism driver bound.

    ML2 (Neutron 29.0.0) binds within the update that sets the host, so
    the update's answer already says so.

    :param port: a port dict (openstacksdk's attribute names).
    :raises: NeutronError when ``binding:vif_type`` is binding_failed.
    """
    if port.get('binding_vif_type') == BINDING_FAILED:
        raise exception.NeutronError(
            msg='no mechanism driver bound port %s (binding:vif_type '
                'binding_failed, host %s)'
                % (port.get('id'), port.get('binding_host_id')))


def get_client():
    """A NeutronClient configured from the ``[neutron]`` options."""
    return NeutronClient()
