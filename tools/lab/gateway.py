"""Gateway services on a switch's internal port: dnsmasq DHCP, nginx.

Standard library only. Checked against Debian 12's dnsmasq-base 2.90
and nginx-light 1.22.1. Both run inside the lab namespace, bind only
the gateway address (``--bind-interfaces``, ``listen ADDR:PORT``), keep
every file under the state dir, and are stopped by pid.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402


def start_dnsmasq(ns, state, iface, first, last, boot_url, hosts=(),
                  name='dnsmasq', ra_prefix=None):
    """DHCP only (``--port=0`` turns DNS off) on ``iface``.

    ``hosts``: (mac, address) pairs given fixed leases. ``boot_url`` is
    handed as the boot file name (iPXE fetches an http:// URL itself).
    ``ra_prefix``: an IPv6 /64 of ``iface`` to send router advertisements
    for (no DHCPv6; router lifetime 0: not a default router).
    Returns the pid.
    """
    os.makedirs(state, exist_ok=True)
    argv = ['dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null',
            '--port=0', '--interface=' + iface, '--bind-interfaces',
            '--except-interface=lo',
            '--dhcp-range=%s,%s,255.255.255.0,10m' % (first, last),
            '--dhcp-boot=' + boot_url, '--log-dhcp',
            '--log-facility=' + os.path.join(state, name + '.log'),
            '--dhcp-leasefile=' + os.path.join(state, name + '.leases'),
            '--pid-file=' + os.path.join(state, name + '.dnsmasq-pid')]
    # No --dhcp-authoritative: a lab gateway answers only its own range.
    for mac, addr in hosts:
        argv.append('--dhcp-host=%s,%s' % (mac, addr))
    if ra_prefix:
        # dnsmasq 2.90: ra-param=<iface>,<interval>,<router lifetime>.
        argv += ['--enable-ra', '--dhcp-range=%s,ra-only,64' % ra_prefix,
                 '--ra-param=%s,60,0' % iface]
    # dnsmasq drops to user "dnsmasq" (uid 999 here): its lease and pid
    # files must be writable by it, or it exits at start.
    os.chmod(state, 0o755)
    return netns.spawn(ns, argv, os.path.join(state, name + '.pid'),
                       os.path.join(state, name + '.out'))


def start_nginx(ns, state, servers, name='nginx', user=None):
    """nginx with one server per ``(listen, root, allow)`` of ``servers``.

    ``listen`` is ``ADDR:PORT``, ``allow`` the one network (or None) whose
    clients it answers (403 to anyone else), no listings. A generated
    config keeps pid, logs and temp dirs under ``state`` (Debian's
    defaults are /run/nginx.pid and /var/lib/nginx); ``user``: the
    workers' user (and group). Returns the master's pid.
    """
    os.makedirs(state, exist_ok=True)
    tmp = os.path.join(state, name + '-tmp')
    os.makedirs(tmp, exist_ok=True)
    conf = os.path.join(state, name + '.conf')
    lines = ['daemon off;', 'worker_processes 1;']
    if user:
        lines.append('user %s %s;' % (user, user))
    lines += [
        'pid %s;' % os.path.join(state, name + '.nginx-pid'),
        'error_log %s info;' % os.path.join(state, name + '-error.log'),
        'events { worker_connections 64; }',
        'http {',
        '  access_log %s;' % os.path.join(state, name + '-access.log'),
        '  default_type application/octet-stream;',
    ]
    for kind in ('client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'):
        lines.append('  %s_temp_path %s;' % (kind, os.path.join(tmp, kind)))
    for listen, root, allow in servers:
        lines += [
            '  server {',
            '    listen %s;' % listen,
            '    root %s;' % root,
            # Off is nginx's default; said here because boot files of
            # one node must never be listed to another (issue 11).
            '    autoindex off;',
            '    index nonexistent-index;',
        ]
        if allow:
            # The gateway takes packets for any of its addresses on any
            # port (weak host model): a node of another boot network can
            # reach this address, so only this network's clients are
            # answered (rp_filter drops forged source addresses).
            lines += ['    allow %s;' % allow, '    deny all;']
        lines.append('  }')
    lines += ['}', '']
    with open(conf, 'w') as f:
        f.write('\n'.join(lines))
    return netns.spawn(ns, ['nginx', '-c', conf, '-e',
                            os.path.join(state, name + '-error.log')],
                       os.path.join(state, name + '.pid'),
                       os.path.join(state, name + '.out'))


def stop(state, name):
    """Stop dnsmasq or nginx ``name`` started with ``state``."""
    netns.stop_pid(os.path.join(state, name + '.pid'))
