# The authorization matrix: every method of the Manager, of domain objects
# (Domain, Inspector, Files) and of volume objects (Volume), called by a
# caller that is not root (nobody, through setpriv) through the real
# polkitd, on a private system bus (polkitstack.py).  What each method
# asks polkit for is read from introspection/*.xml (the annotations
# org.libvirt.GuestFS.PolkitAction, .WhenOption and .PerObject, described
# in org.libvirt.GuestFS.Manager.xml); ROWS below says how to call each
# method and what a granted call must give.  A method of the XML without
# an annotation or a row, or a row without a method, fails the first test.
#
# In order:
#   - without a rule of ours (the policy's defaults, auth_admin_keep),
#     every method that needs authorization is refused with NotAuthorized
#     naming its action, and nothing starts: ApplianceState stays
#     "stopped" (no PropertiesChanged either), no guestfs-* domain of our
#     images appears, the disk image and the volume keep their bytes,
#     size and mtime, a sink gets no byte and a source is not read, and
#     the service holds no more fds or threads than before;
#     methods annotated "none" work;
#   - with a rule granting every action but the one annotated, the call
#     is still refused, with the same checks: the service asks for that
#     action and no other;
#   - with a rule granting exactly the annotated action (and refusing the
#     others), the call works: real reads, writes under a scratch
#     directory, transfers through pipes, appliances started and stopped.
#     The actions are granted in an order that needs one appliance launch
#     for the domain and one for the volume.
#
# The rules of this module decide for its own objects only (by domain
# UUID and volume key) and say NO to every other action there, so rules
# of other modules running at the same time change nothing here once ours
# is written; the file sorts before theirs.  polkitd reloads a changed
# rule on its own schedule: each version of the rule flips the answer for
# a probe domain without disks (StopAppliance on it does nothing), and the
# test waits until the probe shows the new version.
#
# The session bus, where only the bus owner may call, is covered by
# test_session_user.py::test_other_users_are_refused (a caller of another
# uid refused); it is not repeated here.
#
# The appliances run against the real libvirtd (qemu:///system) under TCG.

import glob
import hashlib
import json
import os
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from client import (DOMAIN_IFACE, ERROR_PREFIX, FILES_IFACE, INSPECTOR_IFACE, MANAGER_IFACE,
                    MANAGER_PATH, VOLUME_IFACE, DBusError, Files, sha256_file,
                    wait_until)
from conftest import (SYSTEM_URI, TOP_SOURCE_DIR, LibvirtObjects, SignalRecorder,
                      appliance_domains, ensure_libvirtd_running, state_changes, unique_name)
from filesenv import make_tar, tar_listing
from images import MIB, ImageSet, files_root
from polkitstack import RULES_DIR, RuleFile, wait_for_rules

# Before the other modules' 10-lgd-test-*.rules: for this module's objects
# this rule always decides.
RULE = RuleFile('05-lgd-test-authz-matrix.rules')

ACTION_ANNOTATION = 'org.libvirt.GuestFS.PolkitAction'
WHEN_OPTION_ANNOTATION = 'org.libvirt.GuestFS.PolkitAction.WhenOption'
PER_OBJECT_ANNOTATION = 'org.libvirt.GuestFS.PolkitAction.PerObject'
NO_ACTION = 'none'
NOT_AUTHORIZED = ERROR_PREFIX + 'NotAuthorized'

# The object each interface is called on.
TARGETS = {MANAGER_IFACE: 'manager', DOMAIN_IFACE: 'domain', INSPECTOR_IFACE: 'domain',
           FILES_IFACE: 'domain', VOLUME_IFACE: 'volume'}
# Interfaces of objects that exist only while something runs, with the
# module that checks their methods' authorization instead.
ELSEWHERE = {
    # Job.Cancel: allowed to the uid that started the job, else manage
    'org.libvirt.GuestFS.Job': 'test_jobs.py::test_cancel_by_another_user_needs_manage',
}

A = 'org.libvirt.guestfs.'
# The order the actions are granted in: writes first launch the domain's
# read-write appliance, which the reads then use (reads take any
# appliance), and manage stops it; then the volume's the same way.
GRANT_ORDER = [A + 'write', A + 'inspect', A + 'read', A + 'manage', A + 'volume-write',
               A + 'volume-read']

CLIENT_TIMEOUT = 1500


# --- What the XML says ---------------------------------------------------------------------

@dataclass
class Case:
    """One way of calling a method, and the action it asks for."""
    iface: str
    method: str
    in_types: list
    action: str                # an action id, NO_ACTION, or None (not annotated)
    variant: str = None        # 'KEY=VALUE' of a WhenOption clause
    per_object: bool = False

    @property
    def key(self):
        return (self.iface, self.method, self.variant)

    @property
    def name(self):
        short = self.iface.rsplit('.', 1)[1]
        return '%s.%s%s' % (short, self.method, ' [%s]' % self.variant if self.variant else '')

    @property
    def signature(self):
        return '(' + ''.join(self.in_types) + ')'


def policy_actions():
    with open(os.path.join(TOP_SOURCE_DIR, 'polkit', 'org.libvirt.guestfs.policy.in')) as f:
        return set(re.findall(r'<action id="([^"]+)"', f.read()))


def load_cases():
    """The cases of every method of introspection/*.xml, and the problems
    found in the annotations (for test_every_method_has_an_action_and_a_row)."""
    cases, problems = [], []
    files = sorted(glob.glob(os.path.join(TOP_SOURCE_DIR, 'introspection',
                                          'org.libvirt.GuestFS.*.xml')))
    if not files:
        problems.append('no introspection/org.libvirt.GuestFS.*.xml')
    for path in files:
        for iface in ET.parse(path).getroot().findall('interface'):
            iface_name = iface.get('name')
            if iface_name in ELSEWHERE:
                continue
            for method in iface.findall('method'):
                name = method.get('name')
                where = '%s.%s' % (iface_name, name)
                annotations = {}
                for a in method.findall('annotation'):
                    if a.get('name') in annotations:
                        problems.append('%s: %s given twice' % (where, a.get('name')))
                    annotations[a.get('name')] = a.get('value')
                in_types = [arg.get('type') for arg in method.findall('arg')
                            if arg.get('direction', 'in') == 'in']
                action = annotations.get(ACTION_ANNOTATION)
                if action is None:
                    problems.append('%s has no %s annotation' % (where, ACTION_ANNOTATION))
                per_object = annotations.get(PER_OBJECT_ANNOTATION, 'false')
                if per_object not in ('true', 'false'):
                    problems.append('%s: %s is %r' % (where, PER_OBJECT_ANNOTATION, per_object))
                cases.append(Case(iface_name, name, in_types, action,
                                  per_object=per_object == 'true'))
                for clause in annotations.get(WHEN_OPTION_ANNOTATION, '').split():
                    match = re.fullmatch(r'([a-z][a-z0-9-]*=[^:]+):(\S+)', clause)
                    if match is None:
                        problems.append('%s: cannot read the %s clause %r'
                                        % (where, WHEN_OPTION_ANNOTATION, clause))
                        continue
                    cases.append(Case(iface_name, name, in_types, match.group(2),
                                      variant=match.group(1),
                                      per_object=per_object == 'true'))
    return cases, problems


CASES, ANNOTATION_PROBLEMS = load_cases()


def cases_for(action):
    return sorted((c for c in CASES if c.action == action and c.key in ROWS),
                  key=lambda c: ROWS[c.key].order)


# --- How to call each method, and what a granted call gives -------------------------------

def opts(**values):
    """An options dict for the client: {key: [type, value]}; keys with '_'
    stand for '-'."""
    return {key.replace('_', '-'): value for key, value in values.items()}


HOSTNAME_PATH = '/etc/hostname'
SCRATCH = '/srv/authz-matrix'
WRITTEN = b'written by nobody through WriteFile\n'
UPLOADED = b'uploaded by nobody through a pipe\n' * 8
TAR_FILES = [('kept.txt', b'from the archive, kept\n'), ('removed.txt', b'removed later\n')]
VOLUME_DATA = bytes(range(256)) * 16   # 4 KiB, written at the start of the volume
ROOT_DEVICE = '/dev/sda'               # a whole-disk filesystem; Inspect must say so


@dataclass
class Row:
    args: object              # env -> the in-arguments, the fd as 0
    check: object             # (env, out) -> asserts what a granted call gave
    fd: str = None            # 'sink' or 'source'
    data: object = None       # a source's bytes
    order: int = 0            # in the phase that grants the action


def reply_is_empty(env, out):
    assert out.get('reply') == [], out


def state_is(wanted):
    """The call returned, and left ApplianceState at wanted (the client
    reads it right after the reply)."""
    def check(env, out):
        assert out.get('reply') == [], out
        assert out.get('state-after') == wanted, out
    return check


def check_lookup_domain(env, out):
    assert out.get('reply') == [env.dom], out


def check_lookup_volume(env, out):
    assert out.get('reply') == [env.vol], out


def sink_data(out):
    """The bytes a sink got, or for a large one (size, sha256)."""
    assert out.get('reply') == [], out
    sink = out.get('sink')
    assert isinstance(sink, dict), out
    return bytes.fromhex(sink['hex']) if 'hex' in sink else (sink['size'], sink['sha256'])


def assert_debian(env, systems):
    assert len(systems) == 1, systems
    system = systems[0]
    assert (system['root'], system['distro'], system['major-version'],
            system['hostname']) == (ROOT_DEVICE, 'debian', 12, env.root.hostname), system


def check_inspect(env, out):
    assert 'reply' in out, out
    assert_debian(env, out['reply'][0])


def check_inspect_domains(env, out):
    assert 'reply' in out, out
    (results,) = out['reply']
    assert list(results) == [env.dom], results
    assert 'systems' in results[env.dom], results
    assert_debian(env, results[env.dom]['systems'])


def check_applications(env, out):
    assert 'reply' in out, out
    # the files root's dpkg database is empty
    assert out['reply'][0] == [], out


def check_icon(env, out):
    assert 'reply' in out, out
    icon = bytes(out['reply'][0])
    assert icon == b'' or icon.startswith(b'\x89PNG'), icon[:16]


def check_filesystems(env, out):
    assert 'reply' in out, out
    assert [(fs['device'], fs['type']) for fs in out['reply'][0]] == [(ROOT_DEVICE, 'ext4')], out


def check_usage(env, out):
    assert 'reply' in out, out
    usage = out['reply'][0]
    assert [u['device'] for u in usage] == [ROOT_DEVICE], out
    assert 0 < usage[0]['used'] < usage[0]['size'], usage


def check_read_dir(env, out):
    assert 'reply' in out, out
    names = sorted(entry['name'] for entry in out['reply'][0])
    assert names == sorted(e.path for e in env.root.etc if '/' not in e.path), names


def check_stat(env, out):
    assert 'reply' in out, out
    info = out['reply'][0]
    assert (info['name'], info['type'], info['size']) == (
        'hostname', 'regular', len(env.root.hostname) + 1), info


def check_read_file(env, out):
    assert 'reply' in out, out
    assert bytes(out['reply'][0]) == env.root.hostname.encode() + b'\n', out


def check_readlink(env, out):
    assert out.get('reply') == ['/usr/share/zoneinfo/Etc/UTC'], out


def check_download(env, out):
    motd = next(e for e in env.root.etc if e.path == 'motd')
    assert sink_data(out) == motd.content


def check_tar_out(env, out):
    listing = tar_listing(sink_data(out))
    assert listing.get('notes', (None,))[0] == 'regular', listing
    assert listing['notes'][5] == hashlib.sha256(b'notes\n').hexdigest(), listing


def check_source_read(env, out):
    assert out.get('reply') == [], out
    assert out.get('source-left') == 0, out


def check_volume_download(env, out):
    # the whole volume, as the file holds it (with what Upload wrote)
    assert sink_data(out) == (os.path.getsize(env.volume_file), sha256_file(env.volume_file))


def check_volume_upload(env, out):
    check_source_read(env, out)
    with open(env.volume_file, 'rb') as f:
        assert f.read(len(VOLUME_DATA)) == VOLUME_DATA


def tar_data():
    return make_tar(TAR_FILES)


ROWS = {
    # Manager
    (MANAGER_IFACE, 'LookupDomain', None): Row(lambda env: [env.dom_name],
                                               check_lookup_domain),
    (MANAGER_IFACE, 'LookupVolume', None): Row(lambda env: [env.volume_file],
                                               check_lookup_volume),
    (MANAGER_IFACE, 'InspectDomains', None): Row(
        lambda env: [[env.dom], {}], check_inspect_domains, order=10),

    # Domain: started read-write by the write phase, kept (read-only start
    # takes any appliance) and stopped by the manage phase
    (DOMAIN_IFACE, 'StartAppliance', 'read-only=false'): Row(
        lambda env: [opts(read_only=['b', False])], state_is('running'),
        order=0),
    (DOMAIN_IFACE, 'StartAppliance', None): Row(
        lambda env: [{}], state_is('running'), order=0),
    (DOMAIN_IFACE, 'StopAppliance', None): Row(
        lambda env: [], state_is('stopped'), order=1),

    # Inspector
    (INSPECTOR_IFACE, 'Inspect', None): Row(lambda env: [{}], check_inspect, order=0),
    (INSPECTOR_IFACE, 'ListApplications', None): Row(
        lambda env: [ROOT_DEVICE, {}], check_applications, order=1),
    (INSPECTOR_IFACE, 'GetIcon', None): Row(lambda env: [ROOT_DEVICE, {}], check_icon, order=2),
    (INSPECTOR_IFACE, 'ListFilesystems', None): Row(
        lambda env: [{}], check_filesystems, order=3),
    (INSPECTOR_IFACE, 'DiskUsage', None): Row(lambda env: [{}], check_usage, order=4),

    # Files: reads
    (FILES_IFACE, 'ReadDir', None): Row(lambda env: ['/etc', {}], check_read_dir),
    (FILES_IFACE, 'Stat', None): Row(lambda env: [HOSTNAME_PATH, {}], check_stat),
    (FILES_IFACE, 'ReadFile', None): Row(lambda env: [HOSTNAME_PATH, {}], check_read_file),
    (FILES_IFACE, 'Readlink', None): Row(lambda env: ['/etc/localtime', {}], check_readlink),
    (FILES_IFACE, 'Download', None): Row(lambda env: ['/etc/motd', 0, {}], check_download,
                                         fd='sink'),
    (FILES_IFACE, 'TarOut', None): Row(lambda env: ['/srv/tree/shared', 0, {}], check_tar_out,
                                       fd='sink'),

    # Files: writes, under a scratch directory; what they did is read
    # back afterwards (check_writes)
    (FILES_IFACE, 'Mkdir', None): Row(lambda env: [SCRATCH, {}], reply_is_empty, order=1),
    (FILES_IFACE, 'WriteFile', None): Row(
        lambda env: [SCRATCH + '/written.txt', list(WRITTEN), {}], reply_is_empty, order=2),
    (FILES_IFACE, 'Upload', None): Row(
        lambda env: [SCRATCH + '/uploaded.txt', 0, {}], check_source_read, fd='source',
        data=UPLOADED, order=3),
    (FILES_IFACE, 'TarIn', None): Row(
        lambda env: [SCRATCH, 0, {}], check_source_read, fd='source', data=tar_data(),
        order=4),
    (FILES_IFACE, 'Chmod', None): Row(
        lambda env: [SCRATCH + '/written.txt', 0o600, {}], reply_is_empty, order=5),
    (FILES_IFACE, 'Chown', None): Row(
        lambda env: [SCRATCH + '/written.txt', 65534, 65534, {}], reply_is_empty, order=6),
    (FILES_IFACE, 'Symlink', None): Row(
        lambda env: ['written.txt', SCRATCH + '/link', {}], reply_is_empty, order=7),
    (FILES_IFACE, 'Rename', None): Row(
        lambda env: [SCRATCH + '/link', SCRATCH + '/link2', {}], reply_is_empty, order=8),
    (FILES_IFACE, 'Remove', None): Row(
        lambda env: [SCRATCH + '/removed.txt', {}], reply_is_empty, order=9),

    # Volume: Upload before the volume's appliance holds it (InUse then),
    # read-write start, then the reads, read-only start (the read-write
    # appliance serves it) and stop
    (VOLUME_IFACE, 'Upload', None): Row(
        lambda env: [0, {}], check_volume_upload, fd='source', data=VOLUME_DATA, order=0),
    (VOLUME_IFACE, 'StartAppliance', 'read-only=false'): Row(
        lambda env: [opts(read_only=['b', False])], state_is('running'),
        order=1),
    (VOLUME_IFACE, 'Download', None): Row(lambda env: [0, {}], check_volume_download,
                                          fd='sink', order=0),
    (VOLUME_IFACE, 'StartAppliance', None): Row(
        lambda env: [{}], state_is('running'), order=1),
    (VOLUME_IFACE, 'StopAppliance', None): Row(
        lambda env: [], state_is('stopped'), order=2),
}


# --- The client, run as nobody --------------------------------------------------------------

# Runs as nobody: the calls of a JSON file (path, iface, method, signature,
# args with options as {key: [type, value]}, and an optional fd: a pipe
# whose other end the client drains ('sink') or has filled ('source'));
# prints what came of each as JSON.  A sink's bytes come back in hex (or
# as size and sha256 when large); 'source-left' is how many bytes of a
# source the service did not read; 'state-after' the object's
# ApplianceState right after the reply (reading it needs no action).
CLIENT = r'''
import hashlib, json, os, sys, threading
from gi.repository import Gio, GLib

address, calls_file = sys.argv[1:3]
with open(calls_file) as f:
    calls = json.load(f)
report = {'uid': os.getuid(), 'euid': os.geteuid(), 'groups': os.getgroups(), 'results': []}
bus = Gio.DBusConnection.new_for_address_sync(
    address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
    | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)


class Reader(threading.Thread):
    def __init__(self, fd):
        super().__init__(daemon=True)
        self.fd = fd
        self.data = bytearray()

    def run(self):
        while True:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                break
            self.data += chunk
        os.close(self.fd)


def argument(value):
    if isinstance(value, dict):
        return {key: GLib.Variant(kind, v) for key, (kind, v) in value.items()}
    return value


for call in calls:
    out = {}
    args = [argument(a) for a in call['args']]
    fd = call.get('fd')
    fds = reader = kept = None
    if fd is not None:
        r, w = os.pipe()
        fds = Gio.UnixFDList.new()
        if fd['role'] == 'sink':
            fds.append(w)
            os.close(w)
            reader = Reader(r)
            reader.start()
        else:
            data = bytes.fromhex(fd['data'])
            assert len(data) <= 60000  # the pipe holds it all
            os.write(w, data)
            os.close(w)
            fds.append(r)
            kept = r
    try:
        params = GLib.Variant(call['signature'], tuple(args))
        if fds is None:
            reply = bus.call_sync('org.libvirt.GuestFS', call['path'], call['iface'],
                                  call['method'], params, None, Gio.DBusCallFlags.NONE,
                                  600000, None)
        else:
            reply, _ = bus.call_with_unix_fd_list_sync(
                'org.libvirt.GuestFS', call['path'], call['iface'], call['method'], params,
                None, Gio.DBusCallFlags.NONE, 600000, fds, None)
        out['reply'] = reply.unpack()
    except GLib.Error as error:
        name = Gio.DBusError.get_remote_error(error)
        Gio.DBusError.strip_remote_error(error)
        out['error'] = name or 'local: ' + str(error)
        out['message'] = error.message
    finally:
        if fds is not None:
            for x in fds.steal_fds():
                os.close(x)
    if reader is not None:
        reader.join(120)
        if reader.is_alive():
            out['sink'] = 'no end of file within 120 s'
        elif len(reader.data) <= 256 * 1024:
            out['sink'] = {'hex': bytes(reader.data).hex()}
        else:
            out['sink'] = {'size': len(reader.data),
                           'sha256': hashlib.sha256(reader.data).hexdigest()}
    if kept is not None:
        os.set_blocking(kept, False)
        left = 0
        try:
            while True:
                chunk = os.read(kept, 65536)
                if not chunk:
                    break
                left += len(chunk)
        except BlockingIOError:
            pass
        os.close(kept)
        out['source-left'] = left
    if call.get('state') is not None:
        try:
            value = bus.call_sync(
                'org.libvirt.GuestFS', call['path'], 'org.freedesktop.DBus.Properties', 'Get',
                GLib.Variant('(ss)', (call['state'], 'ApplianceState')), None,
                Gio.DBusCallFlags.NONE, 30000, None)
            out['state-after'] = value.unpack()[0]
        except GLib.Error as error:
            out['state-after'] = 'error: ' + error.message
    report['results'].append(out)
print(json.dumps(report, default=repr))
'''


def target_path(env, case):
    return {'manager': MANAGER_PATH, 'domain': env.dom, 'volume': env.vol}[TARGETS[case.iface]]


def client_call(env, case):
    row = ROWS[case.key]
    call = {'path': target_path(env, case), 'iface': case.iface, 'method': case.method,
            'signature': case.signature, 'args': row.args(env)}
    target = TARGETS[case.iface]
    if target != 'manager':
        call['state'] = VOLUME_IFACE if target == 'volume' else DOMAIN_IFACE
    if row.fd is not None:
        call['fd'] = {'role': row.fd, 'data': (row.data or b'').hex()}
    return call


def run_calls(env, calls):
    """Runs calls (client dicts) in one client as nobody; their results."""
    env.batches += 1
    calls_file = os.path.join(env.stack.bus.dir, 'calls-%d.json' % env.batches)
    with open(calls_file, 'w') as f:
        json.dump(calls, f)
    os.chmod(calls_file, 0o644)
    report = env.stack.run_as_nobody([env.stack.bus.address, calls_file],
                                     timeout=CLIENT_TIMEOUT)
    os.unlink(calls_file)
    assert len(report['results']) == len(calls), report
    return report['results']


def run_cases(env, cases):
    return run_calls(env, [client_call(env, case) for case in cases])


def refusal(case, out):
    """None when out is the refusal of case's action; else what is wrong."""
    if case.per_object:
        # the call works; the one object's entry is the refusal
        if 'reply' not in out or len(out['reply'][0]) != 1:
            return 'not one entry per object: %r' % out
        (out,) = out['reply'][0].values()
    if out.get('error') != NOT_AUTHORIZED:
        return 'not refused: %r' % out
    if case.action not in out.get('message', ''):
        return 'refused, but not for %s: %r' % (case.action, out)
    return None


def assert_refused(cases, results):
    failures = []
    for case, out in zip(cases, results):
        row = ROWS[case.key]
        problem = refusal(case, out)
        if problem is None and row.fd == 'sink' and out.get('sink') != {'hex': ''}:
            problem = 'refused, but the sink got %r' % out.get('sink')
        if problem is None and row.fd == 'source' and out.get('source-left') != len(row.data):
            problem = 'refused, but %d bytes of %d of the source were read' % (
                len(row.data) - out.get('source-left', 0), len(row.data))
        if problem is not None:
            failures.append('%s: %s' % (case.name, problem))
    return failures


def foreign_rules():
    """Rules files of other test modules (which could grant nobody
    something while no rule of ours decides)."""
    return sorted(name for name in os.listdir(RULES_DIR)
                  if 'lgd-test' in name and name != os.path.basename(RULE.path))


# --- Rules -----------------------------------------------------------------------------------

RULE_TEXT = '''// lgd-test: the authorization matrix (removed by the test), version %(version)d
polkit.addRule(function(action, subject) {
    if (subject.user != "nobody" || action.id.indexOf("org.libvirt.guestfs.") != 0) {
        return polkit.Result.NOT_HANDLED;
    }
    if (action.lookup("domain-uuid") == "%(probe)s") {
        return %(probe_result)s;
    }
    if (action.lookup("domain-uuid") != "%(domain)s" &&
        action.lookup("volume-key") != "%(volume)s") {
        return polkit.Result.NOT_HANDLED;
    }
    var granted = %(granted)s;
    return granted.indexOf(action.id) >= 0 ? polkit.Result.YES : polkit.Result.NO;
});
'''


def probe_call(env):
    return {'path': env.probe, 'iface': DOMAIN_IFACE, 'method': 'StopAppliance',
            'signature': '()', 'args': []}


def set_rule(env, granted):
    """Writes a rule granting nobody exactly the actions granted on our
    domain and volume, and waits until polkitd applies it."""
    env.rule_version += 1
    version = env.rule_version
    probe_granted = version % 2 == 1
    RULE.write(RULE_TEXT % {
        'version': version, 'probe': env.probe_uuid, 'domain': env.dom_uuid,
        'volume': env.volume_key, 'granted': json.dumps(sorted(granted)),
        'probe_result': 'polkit.Result.YES' if probe_granted else 'polkit.Result.NO'})

    def applied():
        (out,) = run_calls(env, [probe_call(env)])
        if probe_granted:
            return out if 'reply' in out else None
        # an explicit NO, not the defaults' "Authentication is required"
        if out.get('error') == NOT_AUTHORIZED and 'Not authorized for' in out.get('message', ''):
            return out
        return None
    wait_for_rules(applied, 'version %d of %s' % (version, RULE.path))


# --- Nothing started -------------------------------------------------------------------------

def file_marks(path):
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns, sha256_file(path))


class NothingStarted:
    """Records what the service does to our objects meanwhile; check()
    fails if an appliance started, ApplianceState changed, the domain's
    image or the volume changed, or the service holds more fds or threads
    than before."""

    def __init__(self, env):
        self.env = env
        self.images = {path: file_marks(path) for path in (env.root.path, env.volume_file)}
        self.recorder = SignalRecorder(env.stack.bus.connection)
        self.pid = env.stack.service.process.pid
        self.counts = self.fds_and_threads()

    def fds_and_threads(self):
        return (len(os.listdir('/proc/%d/fd' % self.pid)),
                len(os.listdir('/proc/%d/task' % self.pid)))

    def check(self, what):
        problems = self.problems(what)
        assert not problems, '\n'.join(problems)

    def problems(self, what):
        env = self.env
        time.sleep(1)  # what a refused call might have set going
        problems = []
        for path, iface in ((env.dom, DOMAIN_IFACE), (env.vol, VOLUME_IFACE)):
            changes = state_changes(self.recorder, path, iface)
            if changes:
                problems.append('ApplianceState of %s went %s' % (path, changes))
            if env.state(path, iface) != 'stopped':
                problems.append('ApplianceState of %s is %s' % (path, env.state(path, iface)))
        running = appliance_domains(env.conn, env.markers)
        if running:
            problems.append('appliances running: %s' % running)
        for path, marks in self.images.items():
            if file_marks(path) != marks:
                problems.append('%s changed: %r -> %r' % (path, marks, file_marks(path)))
        self.recorder.close()
        # no fd a refused call passed is kept, no thread is left (a
        # thread that ends on its own is given a few seconds)
        try:
            wait_until(lambda: all(now <= before for now, before in
                                   zip(self.fds_and_threads(), self.counts)), 10,
                       'the service\'s fds and threads to settle')
        except AssertionError:
            problems.append('the service had %d fds and %d threads, now %d and %d'
                            % (self.counts + self.fds_and_threads()))
        return ['%s started something: %s' % (what, problem) for problem in problems]


# --- The module's objects --------------------------------------------------------------------

@pytest.fixture(scope='module')
def mx(polkit):
    """The private system bus with polkitd and the service, a domain with
    the files root of images.py, a probe domain without disks, a raw
    volume in a pool of our own, and a way to call the service as nobody."""
    polkit.check(RULE)
    ensure_libvirtd_running()
    images = ImageSet.create()
    polkit.add_cleanup(images.remove)
    env = SimpleNamespace(images=images, markers=polkit.markers, batches=0, rule_version=0)
    env.markers.append(images.dir)
    env.root = files_root(images, size=64 * MIB)
    virt = LibvirtObjects()
    polkit.add_cleanup(virt.cleanup)
    env.conn = virt.conn
    env.dom_name = unique_name('mx')
    dom = virt.define_domain(env.dom_name, disks=[(env.root.path, 'raw')])
    env.dom_uuid = dom.UUIDString()
    env.markers.append(env.dom_uuid)
    probe_name = unique_name('mx-probe')
    env.probe_uuid = virt.define_domain(probe_name, disks=[]).UUIDString()

    pool_dir = virt.make_dir('mx-pool')
    env.markers.append(pool_dir)
    env.volume_file = os.path.join(pool_dir, 'matrix.raw')
    with open(env.volume_file, 'wb') as f:
        f.write(os.urandom(MIB))
    os.chmod(env.volume_file, 0o644)
    pool = virt.define_dir_pool(unique_name('mx-pool'), pool_dir)
    pool.create(0)
    pool.refresh(0)
    env.volume_key = pool.storageVolLookupByName('matrix.raw').key()

    stack = polkit.start(['--connect', SYSTEM_URI, '--force-tcg', '--idle-timeout', '900',
                          '--write-grace', '900', '--volume-rescan-interval', '1'],
                         CLIENT, 'matrix-client.py', rule=RULE)
    env.stack = stack
    client = stack.service.client
    env.state = client.state
    env.dom = client.lookup_domain(env.dom_name)
    env.probe = client.lookup_domain(probe_name)
    env.vol = wait_until(lambda: client.try_lookup_volume(env.volume_key), 30,
                         'the volume object of ' + env.volume_file)
    # root's calls (polkit lets uid 0 do everything), to read back writes
    env.files = Files(stack.bus.connection, stack.bus.address)
    polkit.add_cleanup(env.files.close)
    return env


# --- The tests, in order ---------------------------------------------------------------------

def test_every_method_has_an_action_and_a_row():
    problems = list(ANNOTATION_PROBLEMS)
    declared = policy_actions()
    for case in CASES:
        if case.iface not in TARGETS:
            problems.append('%s: no object to call %s on (TARGETS)' % (case.name, case.iface))
        if case.action is not None and case.action != NO_ACTION and case.action not in declared:
            problems.append('%s: %s is not an action of the policy' % (case.name, case.action))
        if case.key not in ROWS:
            problems.append('%s has no row in ROWS' % case.name)
        elif case.variant is not None:
            key, value = case.variant.split('=', 1)
            options = ROWS[case.key].args(SimpleNamespace())[-1]
            given = options.get(key, [None, None])[1]
            if str(given).lower() != value:
                problems.append('%s: its row does not pass %s' % (case.name, case.variant))
        if case.action == NO_ACTION and case.per_object:
            problems.append('%s: PerObject without an action' % case.name)
    known = {case.key for case in CASES}
    for key in ROWS:
        if key not in known:
            problems.append('row %r: no such method (or option clause) in the XML' % (key,))
    used = {case.action for case in CASES} - {None, NO_ACTION}
    if set(GRANT_ORDER) != used:
        problems.append('GRANT_ORDER %s is not the actions the XML names, %s'
                        % (GRANT_ORDER, sorted(used)))
    if declared != used:
        problems.append('actions of the policy no method asks for: %s'
                        % sorted(declared - used))
    assert not problems, '\n'.join(problems)


def test_methods_without_authorization_work(mx):
    cases = [c for c in CASES if c.action == NO_ACTION]
    assert cases, 'no method is annotated "none"'
    nothing = NothingStarted(mx)
    for case, out in zip(cases, run_cases(mx, cases)):
        ROWS[case.key].check(mx, out)
    nothing.check('a method that needs no authorization')


def test_refused_without_rule(mx):
    assert not os.path.exists(RULE.path)
    cases = [c for c in CASES if c.action not in (None, NO_ACTION) and c.key in ROWS]
    nothing = NothingStarted(mx)
    failures = assert_refused(cases, run_cases(mx, cases))
    failures += nothing.problems('a call refused without a rule')
    assert not failures, ('refusals without a rule (other modules\' rules present: %s):\n%s'
                          % (foreign_rules(), '\n'.join(failures)))


def test_other_actions_do_not_grant(mx):
    nothing = NothingStarted(mx)
    failures = []
    for action in GRANT_ORDER:
        set_rule(mx, set(GRANT_ORDER) - {action})
        cases = cases_for(action)
        failures += ['with every action but %s granted: %s' % (action, failure)
                     for failure in assert_refused(cases, run_cases(mx, cases))]
    failures += nothing.problems('a call refused with the other actions granted')
    assert not failures, '\n'.join(failures)


@pytest.mark.parametrize('action', GRANT_ORDER)
def test_granted_action_works(mx, action):
    set_rule(mx, {action})
    cases = cases_for(action)
    assert cases, 'no method asks for %s' % action
    started = time.monotonic()
    results = run_cases(mx, cases)
    elapsed = time.monotonic() - started
    failures = []
    for case, out in zip(cases, results):
        try:
            ROWS[case.key].check(mx, out)
        except AssertionError as error:
            failures.append('%s: %s' % (case.name, error))
    assert not failures, ('with only %s granted (calls took %.0f s):\n%s'
                          % (action, elapsed, '\n'.join(failures)))
    if action == A + 'write':
        check_writes(mx)


def check_writes(env):
    """What the write phase did, read back as root."""
    files, dom = env.files, env.dom
    assert files.read_file(dom, SCRATCH + '/written.txt') == WRITTEN
    info = files.stat(dom, SCRATCH + '/written.txt')
    assert (info['mode'] & 0o7777, info['uid'], info['gid']) == (0o600, 65534, 65534), info
    assert files.read_file(dom, SCRATCH + '/uploaded.txt') == UPLOADED
    assert files.read_file(dom, SCRATCH + '/kept.txt') == TAR_FILES[0][1]
    assert files.readlink(dom, SCRATCH + '/link2') == 'written.txt'
    for gone in ('/link', '/removed.txt'):
        with pytest.raises(DBusError) as error:
            files.stat(dom, SCRATCH + gone)
        assert error.value.name == ERROR_PREFIX + 'NotFound', error.value
