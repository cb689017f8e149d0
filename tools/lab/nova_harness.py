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

"""Nova 34.0.0's own ``IronicDriver``, in-process, against the lab.

Runs in Nova's venv (``<state>/nova/venv``, tools/install-deps.sh, pinned
by tools/lab/nova-constraints.txt), never in the project's: it imports
Nova and the standard library only.  ``tools.lab.nova.Harness`` (the
project's venv) starts it and speaks JSON lines with it: one request per
line on stdin (``{"op": "spawn", ...}``), one answer per line on stdout
(``{"ok": true, ...}`` or ``{"ok": false, "error": ..., "type": ...}``).
Nova's own log goes to ``--log-file``.

What is Nova's, unchanged: ``nova.virt.ironic.driver.IronicDriver``
(spawn, power off/on, reboot, rebuild, destroy, attach/detach interface,
update_provider_tree) talking to the lab's Ironic through openstacksdk
(``[ironic] auth_type = none`` and an endpoint override, as a standalone
Ironic is reached); the image's metadata read from the lab's Glance by
``nova.image.glance.API`` (its service endpoint: no Keystone, every
request is an admin's); the instance's system metadata from the image as
the compute manager derives it; the config drive built by Nova's
``ConfigDriveBuilder`` (genisoimage) from Nova's ``InstanceMetadata``.

What is stubbed, because it needs Nova's database, conductor or
placement, all of them named in ``_NoNovaDatabase``: ``Instance.save``
and ``Instance.refresh`` (the harness holds the one copy of each
instance), ``Instance.get_bdms`` (no block device mappings: boot from an
image), and the placement scheduler (``schedule``: the node's inventory,
as the driver reports it, must offer each ``resources:<RC>=1`` of the
flavor, unreserved).

The instance's network_info comes from a pluggable source (``network``
in the spawn request): ``{"source": "none"}`` (no Neutron: an empty
NetworkInfo, and no security groups, which Nova would ask Neutron for;
Nova 34.0.0 then cannot build a config drive, see ``NoNetwork``), or
``{"source": "neutron", "ports": [ids], "url": ...}`` (the ports read
from a real Neutron; see ``NeutronPorts``).

A request with ``"timeline": true`` answers, beside its result, the
wall-clock spans of the driver's steps and of its Ironic, Glance and
Neutron calls during it (``Timeline``: measurement only, each callable is
wrapped for that request and restored after; tools/bench_nova.py prints
them against the conductor's log).
"""

import argparse
import base64
import contextlib
import functools
import json
import os
import sys
import tempfile
import time
import traceback
import uuid

_CONF_TEMPLATE = """\
# Written by tools/lab/nova_harness.py for one harness process.
[DEFAULT]
host = {host}
state_path = {state}
log_file = {log}
debug = {debug}
default_ephemeral_format = {ephemeral_format}

[ironic]
# A standalone Ironic (noauth), as the field notes say (nova 34.0.0).
auth_type = none
endpoint_override = {ironic_url}
# The driver polls Ironic every api_retry_interval seconds.
api_retry_interval = {interval}
api_max_retries = {retries}

[glance]
endpoint_override = {glance_url}
num_retries = 1

[oslo_concurrency]
lock_path = {state}/locks
{neutron}"""

# Nova's Neutron client (security groups, and what the lead's Neutron
# source needs): a noauth Neutron as the lab runs it.
_NEUTRON_CONF = """
[neutron]
auth_type = none
endpoint_override = {url}
"""


class HarnessError(Exception):
    pass


class Harness(object):
    """One IronicDriver and the instances it spawned (by uuid)."""

    def __init__(self, args):
        self.args = args
        self.state = tempfile.mkdtemp(prefix='bmi-nova-')
        os.chmod(self.state, 0o700)
        conf_path = os.path.join(self.state, 'nova.conf')
        fd = os.open(conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(_CONF_TEMPLATE.format(
                host=args.host, state=self.state, log=args.log_file,
                debug='true' if args.debug else 'false',
                ironic_url=args.ironic_url, glance_url=args.glance_url,
                interval=args.poll_interval, retries=args.max_retries,
                ephemeral_format=args.ephemeral_format,
                neutron=(_NEUTRON_CONF.format(url=args.neutron_url)
                         if args.neutron_url else '')))
        # Imported here: only after the configuration exists.
        import nova.conf
        from nova import config as nova_config
        from nova import objects
        self.CONF = nova.conf.CONF
        nova_config.parse_args(['nova-harness', '--config-file', conf_path],
                               configure_db=False, init_rpc=False)
        # Nova's own log to --log-file (nova-compute's main does this).
        from oslo_log import log as logging
        logging.setup(self.CONF, 'nova')
        objects.register_all()
        _NoNovaDatabase.install()
        from nova import context as nova_context
        from nova.virt.ironic import driver as ironic_driver
        # The user's request context, as nova-api passes it on. Its token
        # goes to Glance (nova.image.glance sends the caller's token;
        # keystoneauth refuses to send a request without one): the lab's
        # Glance service endpoint has no authtoken and ignores it, so it
        # is a placeholder, not a credential.
        self.context = nova_context.RequestContext(
            user_id='nova-harness', project_id='nova-harness',
            is_admin=True, roles=['admin', 'member', 'reader'],
            auth_token='no-keystone-in-the-lab')
        # virtapi: the compute manager's callbacks (events, volume
        # waits); the driver's calls here never use it (nova 34.0.0).
        self.driver = ironic_driver.IronicDriver(virtapi=None)
        self.instances = {}
        self.networks = {}

    # -- helpers ---------------------------------------------------------
    def _instance(self, req):
        try:
            return self.instances[req['instance']]
        except KeyError:
            raise HarnessError('no instance %s in this harness'
                               % req.get('instance'))

    def _image_meta(self, image_id):
        """The image as the compute manager gets it: from Glance."""
        from nova.image import glance
        from nova import objects
        image = glance.API().get(self.context, image_id)
        return image, objects.ImageMeta.from_dict(image)

    def _node_view(self, node_id):
        node = self.driver.ironic_connection.get_node(node_id)
        return {'uuid': node.id, 'instance_uuid': node.instance_id,
                'provision_state': node.provision_state,
                'power_state': node.power_state,
                'instance_info': node.instance_info,
                'resource_class': node.resource_class}

    # -- operations ------------------------------------------------------
    def op_schedule(self, req):
        """Check the node as placement would see it; return its inventory.

        Nova's scheduler is not here: the driver's own
        ``update_provider_tree`` reports the node's inventory (raising
        NoResourceClass without a resource class) and the flavor's
        ``resources:<RC>=1`` extra specs must find it unreserved.
        """
        from nova.compute import provider_tree
        node_id = req['node']
        tree = provider_tree.ProviderTree()
        tree.new_root(node_id, node_id)
        self.driver.node_cache.pop(node_id, None)
        self.driver.update_provider_tree(tree, node_id)
        inventory = tree.data(node_id).inventory
        wanted = {k.split(':', 1)[1]: int(v)
                  for k, v in (req.get('extra_specs') or {}).items()
                  if k.startswith('resources:') and int(v) > 0}
        for rc, amount in wanted.items():
            inv = inventory.get(rc)
            if not inv or inv['total'] - inv['reserved'] < amount:
                node = self.driver.node_cache.get(node_id)
                raise HarnessError(
                    'node %s offers no %d of %s (inventory %s; power %s, '
                    'provision %s, maintenance %s, instance %s): '
                    'NoValidHost' % (
                        node_id, amount, rc, inventory,
                        getattr(node, 'power_state', None),
                        getattr(node, 'provision_state', None),
                        getattr(node, 'is_maintenance', None),
                        getattr(node, 'instance_id', None)))
        return {'inventory': inventory,
                'traits': sorted(tree.data(node_id).traits)}

    def _new_instance(self, req):
        """``req``'s instance, image, network_info and network source.

        As the compute API and manager make them before spawn (nova
        34.0.0), recorded in neither ``instances`` nor ``networks``.
        """
        from nova.compute import task_states
        from nova.compute import vm_states
        from nova import objects
        from nova import utils
        node_id = req['node']
        flavor = _flavor(req.get('flavor') or {})
        image, image_meta = self._image_meta(req['image'])
        inst_uuid = req.get('instance') or str(uuid.uuid4())
        project = req.get('project_id') or 'nova-project'
        user = req.get('user_id') or 'nova-user'
        name = req.get('name') or 'nova-%s' % inst_uuid[:8]
        inst = objects.Instance(context=self.context)
        inst.uuid = inst_uuid
        # Nova's database id: the EC2 ids and the metadata's launch index
        # derive from it; any integer will do without a database.
        inst.id = len(self.instances) + 1
        inst.node = node_id
        inst.host = self.CONF.host
        inst.project_id = project
        inst.user_id = user
        inst.display_name = name
        inst.hostname = req.get('hostname') or name
        inst.flavor = flavor
        inst.instance_type_id = flavor.id
        inst.image_ref = image_meta.id
        inst.config_drive = 'True' if req.get('config_drive', True) else ''
        inst.launch_index = 0
        inst.reservation_id = 'r-%s' % inst_uuid[:8]
        inst.launched_at = None
        inst.availability_zone = 'nova'
        inst.metadata = req.get('metadata') or {}
        # As the compute API records it at boot (nova 34.0.0).
        inst.system_metadata = utils.get_system_metadata_from_image(
            image, flavor)
        inst.vm_state = vm_states.BUILDING
        inst.task_state = task_states.SPAWNING
        inst.power_state = 0
        inst.user_data = (base64.b64encode(req['user_data'].encode())
                          .decode() if req.get('user_data') else None)
        key = req.get('key')
        inst.key_name = key['name'] if key else None
        inst.key_data = key['public_key'] if key else None
        inst.keypairs = objects.KeyPairList(objects=[objects.KeyPair(
            name=key['name'], public_key=key['public_key'], type='ssh',
            user_id=user)] if key else [])
        # Lazy-loaded from the database otherwise (EC2Ids, device
        # metadata, NUMA): what a plain instance has.
        inst.ec2_ids = objects.EC2Ids(
            instance_id='i-%08x' % inst.id, ami_id='ami-%08x' % 1,
            kernel_id=None, ramdisk_id=None)
        inst.device_metadata = None
        inst.numa_topology = None
        # The compute manager names the root device before spawn (nova
        # 34.0.0's _default_block_device_names): the node's iSCSI LUN is
        # a SCSI disk.
        inst.root_device_name = '/dev/sda'
        inst.default_ephemeral_device = None
        inst.default_swap_device = None
        net_source = network_source(req.get('network'),
                                    self.args.neutron_url)
        network_info = net_source.network_info(self.context, inst)
        inst.info_cache = objects.InstanceInfoCache(
            instance_uuid=inst_uuid, network_info=network_info)
        inst.obj_reset_changes()
        return inst, image_meta, network_info, net_source

    def op_spawn(self, req):
        from nova.compute import vm_states
        node_id = req['node']
        inst, image_meta, network_info, net_source = self._new_instance(req)
        inst_uuid = inst.uuid
        self.instances[inst_uuid] = inst
        self.networks[inst_uuid] = net_source
        # The compute manager (nova 34.0.0's _build_resources and
        # _build_and_run_instance, without its database and
        # notifications): prepare_for_spawn (claims the node), the VIFs
        # plugged (vif_attach) before block devices, spawn; on failure
        # clean_networks_preparation and failed_spawn_cleanup.
        self.driver.prepare_for_spawn(inst)
        try:
            self.driver.prepare_networks_before_block_device_mapping(
                inst, network_info)
            with net_source.active():
                self.driver.spawn(self.context, inst, image_meta,
                                  injected_files=[],
                                  admin_password=req.get('admin_password'),
                                  allocations={},
                                  network_info=network_info)
        except Exception:
            self.driver.clean_networks_preparation(inst, network_info)
            self.driver.failed_spawn_cleanup(inst)
            self.instances.pop(inst_uuid, None)
            raise
        inst.vm_state = vm_states.ACTIVE
        inst.task_state = None
        inst.power_state = 1
        inst.launched_at = _now()
        return {'instance': inst_uuid, 'node': self._node_view(node_id)}

    def op_power_off(self, req):
        inst = self._instance(req)
        self.driver.power_off(inst, timeout=req.get('timeout', 0))
        return {'node': self._node_view(inst.node)}

    def op_power_on(self, req):
        inst = self._instance(req)
        self.driver.power_on(self.context, inst,
                             inst.info_cache.network_info)
        return {'node': self._node_view(inst.node)}

    def op_reboot(self, req):
        inst = self._instance(req)
        self.driver.reboot(self.context, inst, inst.info_cache.network_info,
                           req.get('type', 'HARD'))
        return {'node': self._node_view(inst.node)}

    def op_rebuild(self, req):
        from nova.compute import task_states
        from nova.compute import vm_states
        inst = self._instance(req)
        image_id = req.get('image') or inst.image_ref
        _image, image_meta = self._image_meta(image_id)
        inst.image_ref = image_meta.id
        inst.task_state = task_states.REBUILDING
        inst.obj_reset_changes()
        with self.networks[inst.uuid].active():
            self.driver.rebuild(
                self.context, inst, image_meta, injected_files=[],
                admin_password=None, allocations={}, bdms=[],
                detach_block_devices=None, attach_block_devices=None,
                network_info=inst.info_cache.network_info,
                preserve_ephemeral=bool(req.get('preserve_ephemeral')))
        inst.vm_state = vm_states.ACTIVE
        inst.task_state = None
        return {'node': self._node_view(inst.node)}

    def op_attach_interface(self, req):
        inst = self._instance(req)
        source = self.networks[inst.uuid]
        vif = source.vif(self.context, req['port'])
        image_meta = inst.image_meta
        self.driver.attach_interface(self.context, inst, image_meta, vif)
        inst.info_cache.network_info.append(vif)
        return {'node': self._node_view(inst.node)}

    def op_detach_interface(self, req):
        inst = self._instance(req)
        nwinfo = inst.info_cache.network_info
        vifs = [v for v in nwinfo if v['id'] == req['port']]
        if not vifs:
            raise HarnessError('port %s is not on instance %s'
                               % (req['port'], inst.uuid))
        self.driver.detach_interface(self.context, inst, vifs[0])
        nwinfo.remove(vifs[0])
        return {'node': self._node_view(inst.node)}

    def op_destroy(self, req):
        from nova.compute import vm_states
        inst = self._instance(req)
        self.driver.destroy(self.context, inst,
                            inst.info_cache.network_info)
        inst.vm_state = vm_states.DELETED
        self.instances.pop(inst.uuid)
        self.networks.pop(inst.uuid, None)
        return {'node': self._node_view(inst.node)}

    def op_info(self, req):
        inst = self._instance(req)
        info = self.driver.get_info(inst, use_cache=False)
        return {'state': info.state, 'node': self._node_view(inst.node)}

    def op_ping(self, req):
        import nova.version
        return {'nova': nova.version.version_string()}

    def op_configdrive(self, req):
        """The config drive Nova's spawn would send, built by Nova.

        The instance is made as ``spawn`` makes it (same request fields)
        and Nova 34.0.0's own ``IronicDriver._generate_configdrive`` (what
        spawn calls: InstanceMetadata, ConfigDriveBuilder, gzip, base64)
        builds the drive; nothing is sent to Ironic and the instance is
        forgotten. tools/bench_nova.py deploys it directly, so that the
        config drive's own cost is told apart from Nova's.
        """
        inst, _image, network_info, net_source = self._new_instance(req)
        node = self.driver._get_node(req['node'])
        with net_source.active():
            value = self.driver._generate_configdrive(
                self.context, inst, node, network_info,
                extra_md=({'admin_pass': req['admin_password']}
                          if req.get('admin_password') else None),
                files=[])
        return {'instance': inst.uuid, 'configdrive': value}

    def handle(self, req):
        op = getattr(self, 'op_' + str(req.get('op')), None)
        if op is None:
            raise HarnessError('unknown op %r' % req.get('op'))
        if not req.get('timeline'):
            return op(req)
        with Timeline(self) as timeline:
            answer = op(req)
        return dict(answer, timeline=timeline.spans)


class Timeline(object):
    """The wall-clock spans of one request's steps (measurement only).

    While the ``with`` block runs, the driver methods of a spawn (nova
    34.0.0's names), the SDK calls it makes to Ironic, Nova's config drive
    builder, the security group lookup, the image read from Glance and
    the ports read from Neutron are wrapped: each call appends
    ``{"what", "start", "end"}`` (``time.time()``, to be read against the
    conductor's log) and returns what the callable returned. Everything
    is restored on exit.
    """

    DRIVER = ('prepare_for_spawn',
              'prepare_networks_before_block_device_mapping', 'spawn',
              'get_instance_driver_metadata', '_add_instance_info_to_node',
              '_add_volume_target_info', '_generate_configdrive',
              '_get_network_metadata', '_wait_for_active', 'destroy')
    IRONIC = ('get_node', 'nodes', 'update_node', 'patch_node',
              'validate_node', 'set_node_provision_state',
              'attach_vif_to_node', 'detach_vif_from_node', 'ports',
              'port_groups', 'volume_targets', 'volume_connectors')

    def __init__(self, harness):
        self.harness = harness
        self.spans = []
        self._saved = []

    def _wrap(self, owner, attr, label):
        original = getattr(owner, attr)
        spans = self.spans

        @functools.wraps(original)
        def timed(*args, **kwargs):
            span = {'what': label, 'start': time.time()}
            spans.append(span)
            try:
                result = original(*args, **kwargs)
                if label.startswith('ironic.') and hasattr(
                        result, '__next__'):
                    # A generator (ports, nodes): its requests run
                    # while it is read.
                    result = list(result)
                return result
            finally:
                span['end'] = time.time()
        had = attr in vars(owner)
        self._saved.append((owner, attr, had, vars(owner).get(attr)))
        setattr(owner, attr, timed)

    def __enter__(self):
        from nova.network import security_group_api
        from nova.virt import configdrive
        driver = self.harness.driver
        for name in self.DRIVER:
            self._wrap(driver, name, 'driver.' + name)
        conn = driver.ironic_connection
        for name in self.IRONIC:
            self._wrap(conn, name, 'ironic.' + name)
        self._wrap(configdrive.ConfigDriveBuilder, 'make_drive',
                   'ConfigDriveBuilder.make_drive (genisoimage)')
        self._wrap(security_group_api, 'get_instance_security_groups',
                   'neutron: security groups')
        self._wrap(NeutronPorts, 'network_info',
                   'neutron: ports to network_info')
        self._wrap(self.harness, '_image_meta', 'glance: image')
        return self

    def __exit__(self, *exc):
        for owner, attr, had, old in reversed(self._saved):
            if had:
                setattr(owner, attr, old)
            else:
                delattr(owner, attr)
        self._saved = []
        return False


def _now():
    from oslo_utils import timeutils
    return timeutils.utcnow()


def _flavor(spec):
    from nova import objects
    return objects.Flavor(
        id=spec.get('id', 1), flavorid=spec.get('flavorid', 'bmi'),
        name=spec.get('name', 'bmi'),
        memory_mb=spec.get('memory_mb', 1024), vcpus=spec.get('vcpus', 1),
        root_gb=spec.get('root_gb', 1),
        ephemeral_gb=spec.get('ephemeral_gb', 0),
        swap=spec.get('swap', 0), rxtx_factor=1.0, vcpu_weight=0,
        disabled=False, is_public=True, description=None,
        extra_specs=spec.get('extra_specs') or {})


class _NoNovaDatabase(object):
    """The stubs: what would need Nova's database or conductor.

    Each replaces one method of Nova's objects (nova 34.0.0) for this
    process only; nothing else of Nova is changed.
    """

    @staticmethod
    def _save(instance, expected_vm_state=None, expected_task_state=None):
        # Instance.save: writes to the cell database through the
        # conductor. The harness's object is the only copy: keep the
        # values, forget that they changed.
        instance.obj_reset_changes()

    @staticmethod
    def _refresh(instance, use_slave=False):
        # Instance.refresh: reloads from the database (the driver's
        # _wait_for_active calls it to see a concurrent delete). Nothing
        # else changes this process's instance.
        return None

    @staticmethod
    def _get_bdms(instance):
        # Instance.get_bdms: the block device mapping table. An instance
        # booted from a Glance image without volumes has none.
        from nova import objects
        return objects.BlockDeviceMappingList(objects=[])

    @classmethod
    def install(cls):
        from nova import objects
        objects.Instance.save = cls._save
        objects.Instance.refresh = cls._refresh
        objects.Instance.get_bdms = cls._get_bdms


class NoNetwork(object):
    """No Neutron: an empty NetworkInfo (``nova boot --nic none``).

    Nova's InstanceMetadata asks Neutron for the instance's security
    groups; without Neutron there are none.  Such an instance cannot have
    a config drive: Nova 34.0.0's IronicDriver subscripts the None that
    ``netutils.get_network_metadata`` returns for an empty NetworkInfo
    (``_get_network_metadata``: TypeError), so spawn with
    ``config_drive: false`` or with Neutron ports.
    """

    def network_info(self, context, instance):
        from nova.network import model
        return model.NetworkInfo([])

    def vif(self, context, port_id):
        raise HarnessError('no Neutron in this harness: cannot attach %s'
                           % port_id)

    @contextlib.contextmanager
    def active(self):
        """While the driver builds metadata: no security groups.

        Nova 34.0.0's InstanceMetadata lists them through Neutron's
        ports; without Neutron there are none to list.
        """
        from nova.network import security_group_api
        saved = security_group_api.get_instance_security_groups
        security_group_api.get_instance_security_groups = (
            lambda context, instance, detailed=False: [])
        try:
            yield
        finally:
            security_group_api.get_instance_security_groups = saved


class NeutronPorts(NoNetwork):
    """Given Neutron port ids: network_info from a real Neutron.

    Each port becomes a VIF as Nova's network API would build it from
    Neutron's port, network and subnets (address, fixed IPs, network id,
    segmentation), read with openstacksdk from ``url`` (noauth). The
    security groups come from Neutron too (Nova's own call). Run against
    the lab's Neutron by tests/functional/test_neutron_vifs.py.
    """

    def __init__(self, url, ports):
        self.url = url
        self.ports = list(ports)
        self._conn = None

    @property
    def conn(self):
        if self._conn is None:
            from keystoneauth1 import noauth
            from keystoneauth1 import session
            import openstack.connection
            self._conn = openstack.connection.Connection(
                session=session.Session(auth=noauth.NoAuth()),
                network_endpoint_override=self.url)
        return self._conn

    def vif(self, context, port_id):
        from nova.network import model
        port = self.conn.network.get_port(port_id)
        net = self.conn.network.get_network(port.network_id)
        subnets = []
        for fixed in port.fixed_ips or []:
            sn = self.conn.network.get_subnet(fixed['subnet_id'])
            subnets.append(model.Subnet(
                cidr=sn.cidr, gateway=model.IP(address=sn.gateway_ip,
                                               type='gateway'),
                ips=[model.FixedIP(address=fixed['ip_address'])],
                version=sn.ip_version))
        return model.VIF(
            id=port.id, address=port.mac_address,
            network=model.Network(id=net.id, label=net.name,
                                  subnets=subnets, bridge=None,
                                  meta={'mtu': net.mtu}),
            type=port.binding_vif_type or 'other',
            vnic_type=port.binding_vnic_type or 'baremetal',
            details=port.binding_vif_details or {},
            active=port.status == 'ACTIVE')

    def network_info(self, context, instance):
        from nova.network import model
        return model.NetworkInfo([self.vif(context, p) for p in self.ports])

    def active(self):
        # Nova's own Neutron calls (security groups) reach Neutron.
        return contextlib.nullcontext()


def network_source(spec, neutron_url=None):
    """The network_info source a spawn request names.

    ``neutron_url``: the Neutron of ``--neutron-url``, for a ``neutron``
    source that names none.
    """
    spec = spec or {'source': 'none'}
    if spec.get('source', 'none') == 'none':
        return NoNetwork()
    if spec['source'] == 'neutron':
        url = spec.get('url') or neutron_url
        if not url:
            raise HarnessError('network source neutron needs a url (or '
                               '--neutron-url)')
        return NeutronPorts(url, spec.get('ports') or [])
    raise HarnessError('unknown network source %r' % spec.get('source'))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--ironic-url', required=True)
    parser.add_argument('--glance-url', required=True)
    parser.add_argument('--log-file', required=True)
    parser.add_argument('--neutron-url',
                        help='a noauth Neutron (network source neutron)')
    parser.add_argument('--host', default='bmi-lab-compute')
    # [ironic] api_retry_interval is an IntOpt (nova 34.0.0).
    parser.add_argument('--poll-interval', type=int, default=1)
    parser.add_argument('--max-retries', type=int, default=240)
    parser.add_argument('--ephemeral-format', default='ext4')
    parser.add_argument('--debug', action='store_true')
    args = parser.parse_args(argv)
    # Answers only on the real stdout; anything printed goes to stderr.
    out = sys.stdout
    sys.stdout = sys.stderr
    try:
        harness = Harness(args)
    except Exception as e:
        out.write(json.dumps({'ok': False, 'error': str(e),
                              'type': type(e).__name__}) + '\n')
        out.flush()
        return 1
    out.write(json.dumps({'ok': True, 'ready': True}) + '\n')
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            answer = dict(harness.handle(req), ok=True)
        except Exception as e:
            answer = {'ok': False, 'error': str(e), 'type': type(e).__name__,
                      'trace': traceback.format_exc(limit=8)}
        out.write(json.dumps(answer, default=str) + '\n')
        out.flush()
    return 0


if __name__ == '__main__':
    sys.exit(main())
