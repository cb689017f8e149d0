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

"""A node's iPXE files, published into its project's own HTTP root.

Ironic's ``ipxe`` boot interface (Ironic 39.0, common/pxe_utils.py) writes
every node's files into the one ``[deploy] http_root``: ``<node
uuid>/config`` (the ``sanboot`` script, with the target's CHAP user and
secret), ``pxelinux.cfg/<mac, dashes>`` (a symlink to it) and
``boot.ipxe``, which chains ``pxelinux.cfg/${mac:hexhyp}`` by a relative
path.  In per-project mode that directory is served to nobody's node;
this module copies exactly one node's files into its project's
``http_root`` (served only on that project's gateway address), and
removes them again.  Copies, not links: the project's root may live on
another file system, and its files get their own mode and group.

Nothing here imports Ironic: paths and MAC addresses are given.
"""

import grp
import os
import tempfile

from oslo_log import log

from bmi_driver import exception

LOG = log.getLogger(__name__)

PXE_DIR = 'pxelinux.cfg'
CONFIG = 'config'
_DIR_MODE = 0o755


def mac_file_name(mac):
    """``52-54-00-...``: the name iPXE's ``${mac:hexhyp}`` asks for."""
    return mac.replace(':', '-').lower()


def _inside(path, root):
    path, root = os.path.realpath(path), os.path.realpath(root)
    return path == root or path.startswith(root.rstrip('/') + '/')


def check_roots(shared_root, project_root):
    """Refuse a project root that the shared root's server would serve.

    :raises: BootNetworkConfigError
    """
    if _inside(project_root, shared_root) or _inside(shared_root,
                                                     project_root):
        raise exception.BootNetworkConfigError(
            path=project_root,
            reason='the http_root of a project must be apart from [deploy] '
                   'http_root %s (neither inside the other)' % shared_root)


def _group_id(group):
    if not group:
        return -1
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise exception.BootFilesError(
            reason='[bmi] boot_file_group %s does not exist' % group)


def _copy(source, dest, mode, gid):
    """Copy ``source`` to ``dest`` atomically with ``mode`` and ``gid``."""
    with open(source, 'rb') as f:
        data = f.read()
    directory = os.path.dirname(dest)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.bmi-')
    try:
        # Mode and group before any byte is written: never readable by
        # more than it should be, not even for a moment.
        os.fchmod(fd, mode)
        if gid != -1:
            os.fchown(fd, -1, gid)
        with os.fdopen(fd, 'wb') as out:
            fd = None
            out.write(data)
        os.replace(tmp, dest)
    except BaseException:
        if fd is not None:
            os.close(fd)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _mkdir(path):
    try:
        os.mkdir(path, _DIR_MODE)
    except FileExistsError:
        pass


def publish(shared_root, project_root, node_uuid, macs, boot_script,
            mode=0o640, group=None):
    """Copy one node's iPXE files from ``shared_root`` to ``project_root``.

    ``<node uuid>/config``, ``pxelinux.cfg/<mac>`` for each of ``macs``
    that Ironic linked, and ``boot_script`` (``boot.ipxe``).  Idempotent:
    files are replaced atomically.

    :raises: BootNetworkConfigError when the roots overlap.
    :raises: BootFilesError when a file of Ironic's is missing or cannot be
        copied (nothing of this node is left published then).
    """
    check_roots(shared_root, project_root)
    gid = _group_id(group)
    config = os.path.join(shared_root, node_uuid, CONFIG)
    try:
        if not os.path.isdir(project_root):
            raise exception.BootFilesError(
                reason='the http_root %s of the node\'s project does not '
                       'exist' % project_root)
        if not os.path.isfile(config):
            raise exception.BootFilesError(
                reason='Ironic wrote no %s' % config)
        _mkdir(os.path.join(project_root, node_uuid))
        _mkdir(os.path.join(project_root, PXE_DIR))
        _copy(config, os.path.join(project_root, node_uuid, CONFIG), mode,
              gid)
        published = []
        for mac in macs:
            name = mac_file_name(mac)
            source = os.path.join(shared_root, PXE_DIR, name)
            # Only an entry that leads to this node's own config. Ironic
            # 39.0.0 links only pxe_enabled ports (pxe_utils.
            # _link_mac_pxe_configs) and removes only the links of the
            # node's current ports: a MAC taken from another node keeps
            # that node's link, whose config (its CHAP secret) must not
            # be copied into this node's project.
            if (os.path.exists(source)
                    and os.path.samefile(source, config)):
                _copy(config, os.path.join(project_root, PXE_DIR, name),
                      mode, gid)
                published.append(name)
            elif os.path.lexists(source):
                LOG.warning('Node %(node)s: %(path)s is not linked to its '
                            'boot config: not published',
                            {'node': node_uuid, 'path': source})
        if not published:
            raise exception.BootFilesError(
                reason='Ironic linked no %s/<mac> for MACs %s'
                       % (PXE_DIR, ', '.join(macs) or '(none)'))
        script = os.path.join(shared_root, boot_script)
        if not os.path.isfile(script):
            raise exception.BootFilesError(
                reason='Ironic wrote no %s' % script)
        # The chain script holds no secret: readable by the server alone
        # all the same, as the rest.
        _copy(script, os.path.join(project_root, boot_script), mode, gid)
    except (OSError, exception.BootFilesError) as e:
        withdraw(project_root, node_uuid, macs)
        if isinstance(e, exception.BootFilesError):
            raise
        raise exception.BootFilesError(
            reason='cannot publish into %s: %s'
                   % (project_root, e.strerror or e))
    LOG.info('Node %(node)s: iPXE files published into %(root)s '
             '(%(macs)s)', {'node': node_uuid, 'root': project_root,
                            'macs': ', '.join(published)})


def _read(path):
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError:
        return None


def _entries(directory):
    try:
        return sorted(os.listdir(directory))
    except OSError:
        return []


def _copies_of(root, config):
    """The ``pxelinux.cfg`` files of ``root`` that are copies of ``config``.

    Regular files only (Ironic's own entries are links); a config names
    its node's target, so no other node's file has the same bytes.
    """
    if not config:
        return []
    pxe_dir = os.path.join(root, PXE_DIR)
    found = []
    for name in _entries(pxe_dir):
        path = os.path.join(pxe_dir, name)
        if (not os.path.islink(path) and os.path.isfile(path)
                and _read(path) == config):
            found.append(path)
    return found


def withdraw(project_root, node_uuid, macs):
    """Remove one node's files from ``project_root``; missing is fine.

    ``boot.ipxe`` stays: the project's other nodes chain it too.

    :raises: BootFilesError when a file cannot be removed.
    """
    paths = [os.path.join(project_root, PXE_DIR, mac_file_name(m))
             for m in macs]
    config = os.path.join(project_root, node_uuid, CONFIG)
    # And the copies published for MACs the node no longer has: Ironic
    # 39.0.0 lets a port's address change on an ACTIVE node in
    # maintenance, and such a copy would stay served to the project.
    paths.extend(p for p in _copies_of(project_root, _read(config))
                 if p not in paths)
    paths.append(config)
    errors = []
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            errors.append('%s: %s' % (path, e.strerror or e))
    try:
        os.rmdir(os.path.join(project_root, node_uuid))
    except FileNotFoundError:
        pass
    except OSError as e:
        errors.append('%s: %s' % (node_uuid, e.strerror or e))
    if errors:
        raise exception.BootFilesError(
            reason='cannot remove from %s: %s' % (project_root,
                                                  '; '.join(errors)))
    LOG.debug('Node %(node)s: iPXE files withdrawn from %(root)s',
              {'node': node_uuid, 'root': project_root})


def withdraw_all(root, node_uuid):
    """Remove every boot file of ``node_uuid`` from ``root``, MACs unknown.

    For a node Ironic no longer has (deleted, its ports gone): its
    ``<uuid>/`` directory, and each ``pxelinux.cfg`` entry that links into
    it (Ironic's shared ``http_root``) or is a copy of its ``config`` (a
    project's root).  Missing is fine.

    :returns: the number of files removed.
    :raises: BootFilesError when a file cannot be removed.
    """
    node_dir = os.path.join(root, node_uuid)
    config = _read(os.path.join(node_dir, CONFIG))
    doomed = []
    pxe_dir = os.path.join(root, PXE_DIR)
    for name in _entries(pxe_dir):
        path = os.path.join(pxe_dir, name)
        if os.path.islink(path) and node_uuid in os.readlink(path):
            doomed.append(path)
    doomed.extend(_copies_of(root, config))
    try:
        doomed.extend(os.path.join(node_dir, name)
                      for name in sorted(os.listdir(node_dir)))
    except OSError:
        pass
    errors = []
    removed = 0
    for path in doomed:
        try:
            os.unlink(path)
            removed += 1
        except FileNotFoundError:
            pass
        except OSError as e:
            errors.append('%s: %s' % (path, e.strerror or e))
    try:
        os.rmdir(node_dir)
    except FileNotFoundError:
        pass
    except OSError as e:
        errors.append('%s: %s' % (node_dir, e.strerror or e))
    if errors:
        raise exception.BootFilesError(
            reason='cannot remove from %s: %s' % (root, '; '.join(errors)))
    if removed:
        LOG.info('Node %(node)s: %(n)d boot file(s) removed from %(root)s',
                 {'node': node_uuid, 'n': removed, 'root': root})
    return removed
