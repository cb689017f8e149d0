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

"""Fakes of the outside world for the export tests: tgtd and the library.

``FakeTgtd`` serves tgtd's management protocol on a real unix socket (in a
test's temporary directory): it decodes each request as tgtd 1.0.85 does,
keeps targets and accounts like it, answers with its error codes, and
prints ``show`` in its format (recorded from the real daemon).  ``calls``
records each request as the tgtadm command line that would have sent it,
so that tests read like tgtadm; nothing runs tgtadm.
"""

import collections
import dataclasses
import os
import socketserver
import threading

import fixtures

from bmi_driver import exception
from bmi_driver.storage.export import tgt_ipc

# Real output of `tgtadm --lld iscsi --mode target --op show` (tgt 1.0.85),
# with a logged-in initiator, two accounts (one outgoing) and two ACLs.
RECORDED_SHOW = """\
Target 1: iqn.2026-11.org.massopen.bmi:abc
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
        I_T nexus: 3
            Initiator: iqn.1993-08.org.debian:01:abc alias: none
            Connection: 0
                IP Address: 127.0.0.1
    LUN information:
        LUN: 0
            Type: controller
            SCSI ID: IET     00010000
            SCSI SN: beaf10
            Size: 0 MB, Block size: 1
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: null
            Backing store path: None
            Backing store flags: \n\
        LUN: 1
            Type: disk
            SCSI ID: IET     00010001
            SCSI SN: beaf11
            Size: 67 MB, Block size: 512
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: Yes
            Backing store type: rbd
            Backing store path: bmi-images/node-abc
            Backing store flags: \n\
    Account information:
        u1
        u2 (outgoing)
    ACL information:
        127.0.0.1
        iqn.1993-08.org.debian:01:abc
Target 2: iqn.2026-11.org.other:x
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
    LUN information:
        LUN: 0
            Type: controller
            SCSI ID: IET     00020000
            SCSI SN: beaf20
            Size: 0 MB, Block size: 1
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: null
            Backing store path: None
            Backing store flags: \n\
    Account information:
    ACL information:
        ALL
"""

_LUN_TMPL = """\
        LUN: %(lun)d
            Type: %(type)s
            SCSI ID: IET     %(tid)04x%(lun)04x
            Size: 0 MB, Block size: 1
            Backing store type: %(bstype)s
            Backing store path: %(path)s
            Backing store flags: \n"""


@dataclasses.dataclass
class _Target:
    tid: int
    iqn: str
    luns: dict = dataclasses.field(default_factory=dict)
    accounts: list = dataclasses.field(default_factory=list)
    acl: list = dataclasses.field(default_factory=list)
    sessions: int = 0
    # What its sessions' initiators sent as InitiatorAlias: tgtd prints
    # it verbatim, line breaks included (tgt_show.parse_targets).
    alias: str = 'none'


class _Fail(Exception):
    def __init__(self, code):
        self.code = code


# tgtadm's option of each request parameter (usr/tgtadm.c, 1.0.85).
_OPTION = {'targetname': '--targetname', 'initiator-name':
           '--initiator-name', 'initiator-address': '--initiator-address',
           'user': '--user', 'password': '--password',
           'path': '--backing-store', 'bstype': '--bstype',
           'bsopts': '--bsopts', 'bsoflags': '--bsoflags'}


class FakeTgtd:
    """tgtd behind its management socket, in memory."""

    def __init__(self, control_port=0):
        self.control_port = control_port
        self.targets = {}
        self.accounts = {}
        self.discovery = []          # accounts bound without a tid
        self.lun_params = collections.defaultdict(list)
        self.calls = []
        self.raw = []                # the requests' bytes, as received
        self.changes = 0             # successful mutating calls
        self.down = False            # closes connections unanswered
        self.fail_lun_new = None     # error text for logicalunit new
        self.steal_tids = 0          # next N "target new" fail: tid taken
        self._lock = threading.Lock()

    # --- helpers for tests ----------------------------------------------

    def by_iqn(self, iqn):
        return next((t for t in self.targets.values() if t.iqn == iqn),
                    None)

    # --- the socket -----------------------------------------------------

    def serve(self, test):
        """Listen in ``test``'s temporary directory until it ends.

        :returns: the socket base path ([iscsi] tgtd_socket).
        """
        tmp = test.useFixture(fixtures.TempDir()).path
        base = os.path.join(tmp, 'socket')
        fake = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                fake._handle(self.request)

        server = socketserver.UnixStreamServer(
            tgt_ipc.socket_path(base, self.control_port), Handler)
        thread = threading.Thread(target=server.serve_forever,
                                  kwargs={'poll_interval': 0.05})
        thread.start()
        test.addCleanup(thread.join)
        test.addCleanup(server.server_close)
        test.addCleanup(server.shutdown)
        return base

    @staticmethod
    def _read(conn, count):
        data = b''
        while len(data) < count:
            chunk = conn.recv(count - len(data))
            if not chunk:
                raise EOFError()
            data += chunk
        return data

    def _handle(self, conn):
        try:
            header = self._read(conn, tgt_ipc._REQ.size)
            fields, _ = tgt_ipc.unpack(header)
            body = self._read(conn, fields['len'] - tgt_ipc._REQ.size)
        except EOFError:
            return
        if self.down:
            return  # as tgtd does with a peer it refuses
        self.raw.append(header + body)
        with self._lock:
            code, out = self.execute(fields, body)
        payload = out.encode() + b'\0' if out else b''
        conn.sendall(tgt_ipc._RSP.pack(code, tgt_ipc._RSP.size
                                       + len(payload)) + payload)

    def execute(self, fields, body):
        """Run one decoded request: (error code, text)."""
        assert body == b'' or body.endswith(b'\0'), body
        text = body[:-1].decode()
        params = {}
        target_ops = None
        if 'targetOps ' in text:
            text, _sep, target_ops = text.partition('targetOps ')
            text = text.rstrip(',')
            assert target_ops.endswith(','), target_ops
            target_ops = target_ops[:-1]
        for pair in filter(None, text.split(',')):
            key, _sep, value = pair.partition('=')
            params[key] = value
        args = {'--mode': fields['mode'], '--op': fields['op']}
        cmd = ['tgtadm', '-C', str(self.control_port), '--lld',
               fields['lld'], '--mode', fields['mode'], '--op',
               fields['op']]
        if fields['tid'] != tgt_ipc.NO_TID:
            args['--tid'] = str(fields['tid'])
            cmd += ['--tid', args['--tid']]
        if fields['lun'] is not None:
            args['--lun'] = str(fields['lun'])
            cmd += ['--lun', args['--lun']]
        for key, value in params.items():
            args[_OPTION[key]] = value
            cmd += [_OPTION[key], value]
        if target_ops is not None:
            args['--params'] = target_ops
            cmd += ['--params', target_ops]
        flags = set()
        if fields['force']:
            flags.add('--force')
            cmd.append('--force')
        self.calls.append(cmd)
        handler = getattr(self, '_%s_%s' % (fields['mode'], fields['op']))
        try:
            out = handler(args, flags)
        except _Fail as e:
            return e.code, ''
        if fields['op'] != 'show':
            self.changes += 1
        return 0, out

    @staticmethod
    def _fail(msg):
        text = msg[len('tgtadm: '):] if msg.startswith('tgtadm: ') else msg
        raise _Fail(tgt_ipc.ERRORS.index(text) if text in tgt_ipc.ERRORS
                    else 1)

    def _target(self, args):
        tid = int(args['--tid'])
        if tid not in self.targets:
            self._fail("tgtadm: can't find the target")
        return self.targets[tid]

    def _system_show(self, args, flags):
        return 'System:\n    State: ready\n'

    def _lld_show(self, args, flags):
        # tgt 1.0.85 lld_show, as the lab's tgtd printed it (Debian's
        # build has iser, never initialised); in creation order there.
        out = ['LLDs:\n    iscsi: ready\n']
        out.extend('        Target %d: %s\n' % (t.tid, t.iqn)
                   for t in self.targets.values())
        out.append('    iser: error\n')
        return ''.join(out)

    def _target_show(self, args, flags):
        out = []
        for tid in sorted(self.targets):
            t = self.targets[tid]
            out.append('Target %d: %s\n' % (tid, t.iqn))
            out.append('    System information:\n        Driver: iscsi\n'
                       '        State: ready\n    I_T nexus information:\n')
            for n in range(t.sessions):
                out.append('        I_T nexus: %d\n            Initiator: '
                           'iqn.x:y alias: %s\n' % (n + 1, t.alias))
            out.append('    LUN information:\n')
            out.append(_LUN_TMPL % {'lun': 0, 'tid': tid, 'type':
                                    'controller', 'bstype': 'null',
                                    'path': 'None'})
            for lun in sorted(t.luns):
                out.append(_LUN_TMPL % {'lun': lun, 'tid': tid,
                                        'type': 'disk', 'bstype': 'rbd',
                                        'path': t.luns[lun]})
            out.append('    Account information:\n')
            out.extend('        %s\n' % a for a in t.accounts)
            out.append('    ACL information:\n')
            out.extend('        %s\n' % a for a in t.acl)
        return ''.join(out)

    def _target_new(self, args, flags):
        tid = int(args['--tid'])
        if self.steal_tids:
            self.steal_tids -= 1
            self.targets[tid] = _Target(tid, 'iqn.2026-11.org.other:thief%d'
                                        % tid)
            self._fail('tgtadm: this target already exists')
        if tid in self.targets or self.by_iqn(args['--targetname']):
            self._fail('tgtadm: this target already exists')
        self.targets[tid] = _Target(tid, args['--targetname'])
        return ''

    def _target_delete(self, args, flags):
        t = self._target(args)
        if t.sessions and '--force' not in flags:
            self._fail('tgtadm: this target is still active')
        del self.targets[t.tid]
        return ''

    def _target_bind(self, args, flags):
        t = self._target(args)
        entry = args.get('--initiator-name') or args['--initiator-address']
        if entry in t.acl:
            self._fail('tgtadm: this access control rule already exists')
        t.acl.append(entry)
        return ''

    def _target_unbind(self, args, flags):
        t = self._target(args)
        entry = args.get('--initiator-name') or args['--initiator-address']
        if entry not in t.acl:
            self._fail('tgtadm: this access control rule does not exist')
        t.acl.remove(entry)
        return ''

    def _logicalunit_new(self, args, flags):
        t = self._target(args)
        if self.fail_lun_new:
            self._fail('tgtadm: %s' % self.fail_lun_new)
        lun = int(args['--lun'])
        if lun in t.luns:
            self._fail('tgtadm: this logical unit number already exists')
        t.luns[lun] = args['--backing-store']
        return ''

    def _logicalunit_delete(self, args, flags):
        t = self._target(args)
        if t.luns.pop(int(args['--lun']), None) is None:
            self._fail("tgtadm: can't find the logical unit")
        return ''

    def _logicalunit_update(self, args, flags):
        t = self._target(args)
        self.lun_params[(t.tid, int(args['--lun']))].append(args['--params'])
        return ''

    def _account_new(self, args, flags):
        if args['--user'] in self.accounts:
            self._fail('tgtadm: this account already exists')
        self.accounts[args['--user']] = args['--password']
        return ''

    def _account_delete(self, args, flags):
        user = args['--user']
        if user not in self.accounts:
            self._fail("tgtadm: can't find the account")
        del self.accounts[user]
        if user in self.discovery:
            self.discovery.remove(user)
        for t in self.targets.values():
            if user in t.accounts:
                t.accounts.remove(user)
        return ''

    def _account_bind(self, args, flags):
        if '--tid' not in args:
            # Discovery authentication; tgtd 1.0.85's answers, measured.
            if args['--user'] not in self.accounts:
                self._fail("tgtadm: can't find the account")
            if args['--user'] in self.discovery:
                self._fail('tgtadm: this account already exists')
            self.discovery.append(args['--user'])
            return ''
        t = self._target(args)
        if args['--user'] not in self.accounts:
            self._fail("tgtadm: can't find the account")
        t.accounts.append(args['--user'])
        return ''

    def _account_unbind(self, args, flags):
        t = self._target(args)
        t.accounts.remove(args['--user'])
        return ''


@dataclasses.dataclass
class FakeDisk:
    node_uuid: str
    pool: str
    rbd_name: str
    size: int = 1 << 30
    parent: str = 'bmi-images/golden@snap'
    metadata: dict = dataclasses.field(default_factory=dict)
    configdrive: 'FakeDisk' = None

    @property
    def spec(self):
        return '%s/%s' % (self.pool, self.rbd_name)


class FakeLibrary:
    """The image library's node-disk calls, in memory."""

    def __init__(self):
        self.disks = {}
        self.calls = []

    def add_disk(self, node_uuid, configdrive=False):
        disk = FakeDisk(node_uuid, 'bmi-images', 'node-%s' % node_uuid)
        if configdrive:
            disk.configdrive = FakeDisk(node_uuid, 'bmi-images',
                                        'node-%s-config' % node_uuid)
        self.disks[node_uuid] = disk
        return disk

    def get_node_disk(self, node_uuid):
        self.calls.append(('get_node_disk', node_uuid))
        disk = self.disks.get(node_uuid)
        if disk is None:
            raise exception.CloneNotFound(node=node_uuid,
                                          clone='node-%s' % node_uuid)
        return dataclasses.replace(disk, metadata=dict(disk.metadata))

    def list_cloneless_scratch(self):
        return {}

    def list_node_disks(self):
        self.calls.append(('list_node_disks',))
        return [self.get_node_disk(n) for n in sorted(self.disks)]

    def set_node_metadata(self, node_uuid, metadata):
        self.calls.append(('set_node_metadata', node_uuid))
        self.get_node_disk(node_uuid)
        self.disks[node_uuid].metadata.update(metadata)

    def remove_node_disk(self, node_uuid, stale_watch=False):
        self.calls.append(('remove_node_disk', node_uuid))
        self.stale_watch = stale_watch
        self.disks.pop(node_uuid, None)

    def remove_node_metadata(self, node_uuid, keys):
        self.calls.append(('remove_node_metadata', node_uuid))
        self.get_node_disk(node_uuid)
        for key in keys:
            self.disks[node_uuid].metadata.pop(key, None)
