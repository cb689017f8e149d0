"""Network namespaces for the lab: create, delete, run and spawn inside.

Standard library only, importable on its own (``python3 netns.py``
runs a self-test). Checked against iproute2 6.1 (Debian 12).

Every private lab address lives inside a namespace made here; nothing
started through this module binds outside it. Daemons are started with
a pid file under a state directory and are stopped by that pid only.
"""

import os
import signal
import socket
import subprocess
import time

IP = '/usr/sbin/ip'
NETNS_DIR = '/run/netns'


def exists(name):
    """True if the named namespace exists (``ip netns add`` made it)."""
    return os.path.exists(os.path.join(NETNS_DIR, name))


def in_root_mount_ns():
    """False inside ``ip netns exec``.

    It unshares the mount namespace and makes every mount a slave: the
    /run/netns mount shows ``master:N`` there instead of ``shared:N``
    (/proc/1/ns is not readable in this container, so compare that).
    """
    with open('/proc/self/mountinfo') as f:
        for line in f:
            fields = line.split()
            if fields[4] == NETNS_DIR:
                return not any(x.startswith('master:') for x in
                               fields[6:fields.index('-')])
    return True   # no /run/netns mount yet: ip netns add makes it


def create(name):
    """Create namespace ``name`` with ``lo`` up; idempotent.

    Must run in the root mount namespace: ``ip netns add`` bind-mounts
    the namespace on /run/netns/NAME, and ``ip netns exec`` makes its
    mounts private (slave), so a namespace added from inside another
    one leaves only an empty file everywhere else ("setting the network
    namespace ... failed: Invalid argument").
    """
    if not exists(name):
        if not in_root_mount_ns():
            raise RuntimeError('create netns %s from the root mount '
                               'namespace, not inside ip netns exec'
                               % name)
        subprocess.run([IP, 'netns', 'add', name], check=True)
    # Without lo up, 127.0.0.1 inside the namespace is unreachable and
    # every service there that binds it fails to connect to itself.
    run(name, [IP, 'link', 'set', 'lo', 'up'])


def pids_inside(name):
    """Pids of processes whose network namespace is ``name``."""
    out = subprocess.run([IP, 'netns', 'pids', name], check=False,
                         capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def delete(name):
    """Delete namespace ``name``; idempotent.

    Refuses while processes still run inside (they must be stopped by
    their own pid files first): deleting would only unlink the name,
    the namespace and its addresses would live on with them.
    """
    if not exists(name):
        return
    left = pids_inside(name)
    if left:
        raise RuntimeError('netns %s still has processes %s' % (name, left))
    subprocess.run([IP, 'netns', 'delete', name], check=True)


def cmd(name, argv):
    """The argv that runs ``argv`` inside namespace ``name``."""
    return [IP, 'netns', 'exec', name] + list(argv)


def run(name, argv, check=True, **kwargs):
    """Run ``argv`` inside ``name``; returns subprocess.CompletedProcess.

    ``capture_output=True`` and ``text=True`` are the defaults.
    """
    kwargs.setdefault('capture_output', True)
    kwargs.setdefault('text', True)
    proc = subprocess.run(cmd(name, argv), check=False, **kwargs)
    if check and proc.returncode != 0:
        raise RunError(proc)
    return proc


class RunError(subprocess.CalledProcessError):
    """A failed command; its message ends with the stderr tail."""

    def __init__(self, proc):
        super().__init__(proc.returncode, proc.args, proc.stdout,
                         proc.stderr)

    def __str__(self):
        tail = (self.stderr or '')
        if isinstance(tail, bytes):
            tail = tail.decode(errors='replace')
        return '%s: %s' % (super().__str__(), tail.strip()[-800:])


def read_pid(pidfile):
    """The pid in ``pidfile`` if that process is alive, else None."""
    try:
        with open(pidfile) as f:
            pid = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    # A zombie child of ours counts as dead.
    try:
        with open('/proc/%d/stat' % pid) as f:
            if f.read().rsplit(')', 1)[1].split()[0] == 'Z':
                os.waitpid(pid, os.WNOHANG)
                return None
    except (OSError, ChildProcessError):
        pass
    return pid


def spawn(name, argv, pidfile, logfile, env=None, stdin_data=None,
          cwd=None):
    """Start a foreground daemon ``argv`` inside ``name``; idempotent.

    The process runs in its own session (so a terminal's signals do not
    reach it), with stdout and stderr appended to ``logfile``; its pid
    goes to ``pidfile``. ``ip netns exec`` execs the command, so the pid
    is the daemon's own. ``stdin_data`` (bytes) is written to its stdin
    and then closed: the way to hand a secret without a command line.
    Returns the pid (the running one if already started).
    """
    pid = read_pid(pidfile)
    if pid:
        return pid
    os.makedirs(os.path.dirname(os.path.abspath(pidfile)), exist_ok=True)
    with open(logfile, 'ab') as log:
        proc = subprocess.Popen(
            cmd(name, argv), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if stdin_data is not None
            else subprocess.DEVNULL,
            env=env, cwd=cwd, start_new_session=True)
    if stdin_data is not None:
        proc.stdin.write(stdin_data)
        proc.stdin.close()
    tmp = pidfile + '.tmp'
    with open(tmp, 'w') as f:
        f.write('%d\n' % proc.pid)
    os.replace(tmp, pidfile)
    return proc.pid


def stop_pid(pidfile, timeout=10.0, sig=signal.SIGTERM):
    """Stop the process of ``pidfile`` (TERM, then KILL); idempotent."""
    pid = read_pid(pidfile)
    if pid:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while read_pid(pidfile) and time.monotonic() < deadline:
            time.sleep(0.05)
        if read_pid(pidfile):
            os.kill(pid, signal.SIGKILL)
            while read_pid(pidfile):
                time.sleep(0.05)
    try:
        os.unlink(pidfile)
    except FileNotFoundError:
        pass


def wait_tcp(name, host, port, timeout=30.0):
    """Wait until ``host:port`` accepts inside ``name``.

    bash's /dev/tcp is not used (no shell strings): python3 -c with fixed
    code instead.
    """
    code = ('import socket,sys;'
            's=socket.create_connection((sys.argv[1],int(sys.argv[2])),1)')
    deadline = time.monotonic() + timeout
    while True:
        if run(name, ['python3', '-c', code, host, str(port)],
               check=False).returncode == 0:
            return
        if time.monotonic() > deadline:
            raise TimeoutError('%s:%s not listening in %s' % (host, port,
                                                              name))
        time.sleep(0.2)


def wait_unix(path, timeout, what='the server'):
    """Wait until the unix socket ``path`` accepts a connection.

    The file appears at bind(), before listen(): a client in between
    gets ECONNREFUSED (met once in CI on 2 busy cores with ovsdb-server,
    and ovs-vsctl does not retry it), so the file existing is not enough.
    Path sockets do not belong to a network namespace: this connects
    from wherever it runs.
    """
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(path)
                return
            except (FileNotFoundError, ConnectionRefusedError):
                pass
        if time.monotonic() > deadline:
            raise TimeoutError('%s does not listen on %s' % (what, path))
        time.sleep(0.05)


def _selftest():
    import tempfile
    ns = 'bmi-netns-selftest'
    state = tempfile.mkdtemp(prefix='netns-selftest-')
    create(ns)
    create(ns)   # idempotent
    out = run(ns, [IP, '-o', 'addr', 'show', 'lo']).stdout
    assert '127.0.0.1' in out, out
    pidf = os.path.join(state, 'http.pid')
    spawn(ns, ['python3', '-m', 'http.server', '--bind', '127.0.0.1',
               '8089'], pidf, os.path.join(state, 'http.log'), cwd=state)
    wait_tcp(ns, '127.0.0.1', 8089)
    assert read_pid(pidf) in pids_inside(ns)
    stop_pid(pidf)
    delete(ns)
    assert not exists(ns)
    print('netns selftest OK (port 8089 served inside %s only)' % ns)


if __name__ == '__main__':
    _selftest()
