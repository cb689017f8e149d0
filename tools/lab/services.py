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

"""The services the CLI knows, in start order, and services.json.

``SERVICES`` maps a name to a factory ``f(state, options) -> Service``;
``DEFAULT`` is what ``make test`` and ``make demo`` need: the single
Ironic all-in-one on sqlite with the one tgtd; ``MULTI`` the
multi-conductor lab's (``BMI_LAB_CONDUCTORS=2``, ``tools.lab.multi``:
MariaDB, etcd, a tgtd per conductor, ironic-api and the conductors), which
``default()`` picks by that variable. A stop without names stops every
service of both (each one by its pid, a no-op when it does not run).
``start`` starts the named services in registry order and rewrites
services.json after each one; ``stop`` stops them in reverse order (users
first, what they use last, the namespace at the very end). A new service
is one more entry here.

Every service but ``netns`` runs inside the lab's network namespace
(``tools.lab.labnet.NETNS``); ``python -m tools.lab start`` creates it
and re-executes itself there (``__main__``).
"""

import collections

from tools.lab import ceph
from tools.lab import glance
from tools.lab import ironic
from tools.lab import labnet
from tools.lab import multi
from tools.lab import neutron
from tools.lab import state as lab_state
from tools.lab import tgtd
from tools.lab import vmlab


class Options(object):
    """Start options given on the command line (or by a caller)."""

    def __init__(self, ironic_conf=()):
        self.ironic_conf = list(ironic_conf)


def _libvirtd(st, opts):
    return vmlab.Libvirtd(st.path('libvirt'), netns=labnet.NETNS)


def _gateways():
    return multi.conductors()


def _tgtd(k):
    """Conductor K's gateway: tgtd -C K on 127.0.0.K and 10.78.N.K."""
    def factory(st, opts):
        return tgtd.Tgtd(
            st.path('tgtd-%d' % k), portal=multi.tgtd_portal(k),
            control_port=k, name='tgtd-%d' % k, extra_portals=[
                n.gateway_portal(k) for n in sorted(
                    labnet.boot_networks(st.root).values(),
                    key=lambda n: n.index)])
    return factory


def _conductor(k):
    def factory(st, opts):
        return multi.Conductor(st.path('ironic-multi'), st.services_json, k,
                               n=_gateways())
    return factory


SERVICES = collections.OrderedDict([
    ('netns', lambda st, opts: labnet.Netns(st.root)),
    ('ceph', lambda st, opts: ceph.Ceph(st.ceph_dir)),
    # Glance's rbd store is the lab's images pool: after ceph.
    ('glance', lambda st, opts: glance.Glance(st.path('glance'),
                                              st.ceph_dir)),
    # The hil interface's VIFs (issue 14): a Neutron API on its own
    # MariaDB; the bmi.conf of ironic points at it.
    ('neutron', lambda st, opts: neutron.Neutron(st.path('neutron'))),
    ('ovs', lambda st, opts: labnet.OVS(st.ovs_dir)),
    ('hil', lambda st, opts: labnet.HIL(st.hil_dir, state_root=st.root)),
    # The gateway's addresses are on the project boot networks' VLANs,
    # which HIL allocates: after hil. tgtd listens on those addresses.
    ('gateway', lambda st, opts: labnet.Gateway(
        st.path('gateway'), st.ovs_dir, st.hil_dir, st.root,
        gateways=_gateways())),
    ('http', lambda st, opts: labnet.HttpBoot(st.path('gateway'), st.root,
                                              gateways=_gateways())),
    ('tgtd', lambda st, opts: tgtd.Tgtd(st.root, extra_portals=[
        n.portal for n in sorted(labnet.boot_networks(st.root).values(),
                                 key=lambda n: n.index)])),
    # Its bmi.conf is made from services.json: ceph, hil and tgtd first.
    ('ironic', lambda st, opts: ironic.IronicAIO(
        st.ironic_dir, services_json=st.services_json,
        extra_conf=opts.ironic_conf)),
    # The multi-conductor lab (tools.lab.multi).
    ('mariadb', lambda st, opts: multi.MariaDB(st.path('mariadb'))),
    ('etcd', lambda st, opts: multi.Etcd(st.path('etcd'))),
    ('tgtd-1', _tgtd(1)),
    ('tgtd-2', _tgtd(2)),
    ('ironic-api', lambda st, opts: multi.IronicApi(
        st.path('ironic-multi'), st.services_json, n=_gateways())),
    ('conductor-1', _conductor(1)),
    ('conductor-2', _conductor(2)),
    ('libvirtd', _libvirtd),
    ('sushy', lambda st, opts: vmlab.Sushy(
        st.path('sushy'), _libvirtd(st, opts).uri, netns=labnet.NETNS)),
])
_MULTI_ONLY = ('mariadb', 'etcd', 'tgtd-1', 'tgtd-2', 'ironic-api',
               'conductor-1', 'conductor-2')
DEFAULT = tuple(n for n in SERVICES if n not in _MULTI_ONLY)
# No VMs: the multi-conductor tests, the soak and the bench use fake
# power (libvirtd and sushy may still be started by name).
MULTI = tuple(n for n in SERVICES
              if n not in ('tgtd', 'ironic', 'libvirtd', 'sushy',
                           'neutron'))


def default():
    """The services of the lab ``BMI_LAB_CONDUCTORS`` selects."""
    return MULTI if multi.conductors() > 1 else DEFAULT


# What the all-in-one runs that the multi-conductor lab cannot run beside
# it: Ironic's API port (6385) and tgtd's portals on the lab's networks
# (port 3260) are taken by the one lab's services and wanted by the other's.
_DEFAULT_ONLY = ('tgtd', 'ironic')


def conflicting(st=None):
    """Running services of the lab ``BMI_LAB_CONDUCTORS`` does not select.

    One lab at a time: a multi-conductor lab started beside a running
    all-in-one (or the reverse) fails half way (its tgtd's portal is
    taken) and stops nothing of the other.
    """
    st = st or lab_state.State()
    other = _DEFAULT_ONLY if multi.conductors() > 1 else _MULTI_ONLY
    return [name for name in other if get(name, st).is_running()]


def get(name, st=None, opts=None):
    """The service ``name`` of the lab state ``st``."""
    try:
        factory = SERVICES[name]
    except KeyError:
        raise ValueError('unknown service %r (known: %s)'
                         % (name, ', '.join(SERVICES))) from None
    return factory(st or lab_state.State(), opts or Options())


def write_services(st):
    """Rewrite services.json from what runs now.

    ``multi``: the multi-conductor lab, for its tests: ``conductors`` (how
    many run in this mode), ``api`` (Ironic's URL), ``hosts`` {conductor
    host: {name, pid, running, log, conf, tgtadm_control_port, portal,
    tgtd: its tgtd's info}}.
    """
    t = get('tgtd', st)
    infos = {name: get(name, st).info() for name in SERVICES}
    n = multi.conductors()
    hosts = {}
    for k in (1, 2):
        c = infos['conductor-%d' % k]
        hosts[c['host']] = dict(c, name='conductor-%d' % k,
                                tgtd=dict(infos['tgtd-%d' % k],
                                          name='tgtd-%d' % k))
    extra = {'services': infos,
             'multi': {'conductors': n, 'api': infos['ironic-api']['url'],
                       'hosts': hosts}}
    return st.write_services(tgtd_portal=t.portal,
                             tgtd_running=t.is_running(), extra=extra)


def _ordered(names):
    for n in names:
        if n not in SERVICES:
            raise ValueError('unknown service %r (known: %s)'
                             % (n, ', '.join(SERVICES)))
    return [n for n in SERVICES if n in names]


def start(names=None, st=None, opts=None):
    st = st or lab_state.State()
    names = names or default()
    check_no_conflict(st)
    write_services(st)
    for name in _ordered(names):
        get(name, st, opts).start()
        write_services(st)


def check_no_conflict(st=None):
    """:raises: RuntimeError when the other lab runs (:func:`conflicting`)."""
    others = conflicting(st)
    if others:
        raise RuntimeError(
            'the %s lab runs (%s): one lab at a time; stop it first '
            '(python -m tools.lab stop) or select it with BMI_LAB_CONDUCTORS'
            % ('all-in-one' if multi.conductors() > 1 else
               'multi-conductor', ', '.join(others)))


def stop(names=None, st=None):
    """Stop ``names`` (default: all), each by its pid.

    Every one is tried even when an earlier one fails. Returns the errors.
    """
    st = st or lab_state.State()
    errors = []
    for name in reversed(_ordered(names or list(SERVICES))):
        try:
            get(name, st).stop()
        except Exception as e:
            errors.append('%s: %s' % (name, e))
    write_services(st)
    return errors
