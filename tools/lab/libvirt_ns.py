"""libvirtd inside the lab namespace, with all its state under a dir.

Standard library only. Checked against Debian 12's libvirt 9.0.0.

A root libvirtd keeps state at fixed paths (/run/libvirt/qemu with its
driver lock, /var/lib/libvirt, /etc/libvirt/qemu...), so a second one
on the machine (another lab, another helper) would collide. ``ip netns
exec`` already gives the daemon a mount namespace of its own whose
mounts do not propagate back; ``python3 libvirt_ns.py --exec`` binds
directories of the state dir over those paths in it and then execs
libvirtd. Nothing under /etc or /run is changed for anyone else, and
QEMU (a child) sees the same view. Clients reach the daemon at
``qemu+unix:///system?socket=<state>/run/libvirt-sock``.
"""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402

# path inside the daemon's mount namespace -> subdir of the state dir
BINDS = (('/etc/libvirt', 'etc'), ('/run/libvirt', 'run'),
         ('/var/lib/libvirt', 'lib'), ('/var/cache/libvirt', 'cache'),
         ('/var/log/libvirt', 'log'))

QEMU_CONF = '''\
# No systemd, no cgroups, root-owned taps and files: see field notes.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
'''

LIBVIRTD_CONF = '''\
listen_tls = 0
listen_tcp = 0
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
'''


def uri(state):
    return 'qemu+unix:///system?socket=%s' % os.path.join(
        os.path.abspath(state), 'run', 'libvirt-sock')


def start(ns, state):
    """Start libvirtd in ``ns``; idempotent. Returns the client URI."""
    state = os.path.abspath(state)
    for _, sub in BINDS:
        os.makedirs(os.path.join(state, sub), exist_ok=True)
    etc = os.path.join(state, 'etc')
    if not os.path.exists(os.path.join(etc, 'qemu.conf')):
        for name in ('libvirt.conf', 'virtlogd.conf', 'virtlockd.conf'):
            shutil.copy('/etc/libvirt/' + name, etc)
        os.makedirs(os.path.join(etc, 'qemu'), exist_ok=True)
        with open(os.path.join(etc, 'qemu.conf'), 'w') as f:
            f.write(QEMU_CONF)
        with open(os.path.join(etc, 'libvirtd.conf'), 'w') as f:
            f.write(LIBVIRTD_CONF)
    argv = [sys.executable, os.path.abspath(__file__), '--exec', state,
            'libvirtd', '-f', '/etc/libvirt/libvirtd.conf',
            '-p', '/run/libvirt/libvirtd.pid']
    netns.spawn(ns, argv, os.path.join(state, 'libvirtd.pid'),
                os.path.join(state, 'libvirtd.out'))
    sock = os.path.join(state, 'run', 'libvirt-sock')
    netns.wait_unix(sock, 30, 'libvirtd')
    return uri(state)


def stop(state):
    netns.stop_pid(os.path.join(os.path.abspath(state), 'libvirtd.pid'))


def virsh(state, *args, ns=None):
    argv = ['virsh', '-c', uri(state)] + list(args)
    if ns:
        return netns.run(ns, argv).stdout
    return subprocess.run(argv, check=True, capture_output=True,
                          text=True).stdout


def _exec(state, argv):
    # Runs inside ip netns exec's private mount namespace (checked: a
    # bind mount made here is invisible in the root mount namespace).
    if netns.in_root_mount_ns():
        sys.exit('refusing to bind over /etc/libvirt in the root mount '
                 'namespace')
    for target, sub in BINDS:
        os.makedirs(target, exist_ok=True)
        subprocess.run(['mount', '--bind', os.path.join(state, sub),
                        target], check=True)
    os.execvp(argv[0], argv)


if __name__ == '__main__':
    if sys.argv[1:2] == ['--exec']:
        _exec(sys.argv[2], sys.argv[3:])
