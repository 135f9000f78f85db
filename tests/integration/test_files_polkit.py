# Authorization of the Files interface with the real polkitd: the service
# on a private system bus with a polkitd of its own (the set-up of
# polkitstack.py), and a caller that is not root (nobody, through setpriv).
# Reads need org.libvirt.guestfs.read, writes org.libvirt.guestfs.write,
# and rules can look at the guest path (action.lookup("path")).
#
# The appliances run against the real libvirtd (qemu:///system) under TCG.

import json
import time
from types import SimpleNamespace

import pytest

from client import ERROR_PREFIX, sha256_file
from conftest import (SYSTEM_URI, LibvirtObjects, appliance_domains, ensure_libvirtd_running,
                      unique_name)
from images import MIB, ImageSet, files_root
from polkitstack import RuleFile, assert_denied, wait_for_rules

# Not test_polkit's file: the two modules never share a rule.
RULE = RuleFile('10-lgd-test-files.rules')

# Runs as nobody: one call, and what came of it on stdout as JSON.  Modes:
#   call PATH METHOD SIGNATURE ARGS   a plain call (ARGS a JSON list; option
#                                     values as ["type", value]; data for
#                                     'ay' as a list of byte values)
#   upload PATH FILE-PATH HEX         Upload of the bytes through a pipe
#   download PATH FILE-PATH           Download of a small file through a pipe
CLIENT = r'''
import json, os, sys
from gi.repository import Gio, GLib

mode, address, obj = sys.argv[1:4]
IFACE = 'org.libvirt.GuestFS.Files'
result = {'uid': os.getuid(), 'euid': os.geteuid(), 'groups': os.getgroups()}


def options(raw):
    return {key: GLib.Variant(kind, value) for key, (kind, value) in raw.items()}


try:
    bus = Gio.DBusConnection.new_for_address_sync(
        address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
    if mode == 'call':
        method, signature, args = sys.argv[4:7]
        args = json.loads(args)
        args = [options(a) if isinstance(a, dict) else a for a in args]
        reply = bus.call_sync('org.libvirt.GuestFS', obj, IFACE, method,
                              GLib.Variant(signature, tuple(args)), None,
                              Gio.DBusCallFlags.NONE, 600000, None)
        result['reply'] = reply.unpack()
    elif mode == 'upload':
        path, data = sys.argv[4], bytes.fromhex(sys.argv[5])
        r, w = os.pipe()
        os.write(w, data)  # small: the pipe holds it all
        os.close(w)
        fds = Gio.UnixFDList.new()
        fds.append(r)
        os.close(r)
        try:
            bus.call_with_unix_fd_list_sync(
                'org.libvirt.GuestFS', obj, IFACE, 'Upload',
                GLib.Variant('(sha{sv})', (path, 0, {})), None, Gio.DBusCallFlags.NONE,
                600000, fds, None)
        finally:
            for fd in fds.steal_fds():
                os.close(fd)
        result['reply'] = []
    elif mode == 'download':
        path = sys.argv[4]
        r, w = os.pipe()
        fds = Gio.UnixFDList.new()
        fds.append(w)
        os.close(w)
        try:
            # small: the pipe holds it all, so the call returns unread
            bus.call_with_unix_fd_list_sync(
                'org.libvirt.GuestFS', obj, IFACE, 'Download',
                GLib.Variant('(sha{sv})', (path, 0, {})), None, Gio.DBusCallFlags.NONE,
                600000, fds, None)
        finally:
            for fd in fds.steal_fds():
                os.close(fd)
        data = b''
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
        os.close(r)
        result['reply'] = data.hex()
except GLib.Error as error:
    name = Gio.DBusError.get_remote_error(error)
    Gio.DBusError.strip_remote_error(error)
    result['error'] = name or 'local: ' + str(error)
    result['message'] = error.message
print(json.dumps(result, default=lambda value: repr(value)))
'''


READ_RULE = '''// lgd-test: nobody may read files (removed by the test)
polkit.addRule(function(action, subject) {
    if (action.id == "org.libvirt.guestfs.read" && subject.user == "nobody") {
        return polkit.Result.YES;
    }
});
'''

PATH_RULE = '''// lgd-test: nobody may read files, and change them under /srv (removed by the test)
polkit.addRule(function(action, subject) {
    if (subject.user != "nobody") {
        return polkit.Result.NOT_HANDLED;
    }
    if (action.id == "org.libvirt.guestfs.read") {
        return polkit.Result.YES;
    }
    if (action.id == "org.libvirt.guestfs.write" &&
        action.lookup("domain") == "%(domain)s" &&
        action.lookup("path").indexOf("/srv/") == 0) {
        return polkit.Result.YES;
    }
});
'''


@pytest.fixture(scope='module')
def pkf(polkit):
    """The private system bus with polkitd and the service, a domain with
    the files root of images.py, and a way to call the service as nobody."""
    polkit.check(RULE)
    ensure_libvirtd_running()
    images = ImageSet.create()
    polkit.add_cleanup(images.remove)
    env = SimpleNamespace(images=images, markers=polkit.markers)
    env.markers.append(images.dir)
    env.root = files_root(images, size=64 * MIB)
    virt = LibvirtObjects()
    polkit.add_cleanup(virt.cleanup)
    env.conn = virt.conn
    env.dom_name = unique_name('pk-files')
    env.markers.append(virt.define_domain(env.dom_name,
                                          disks=[(env.root.path, 'raw')]).UUIDString())

    stack = polkit.start(['--connect', SYSTEM_URI, '--force-tcg', '--idle-timeout', '900'],
                         CLIENT, 'files-client.py', rule=RULE)
    env.stack = stack
    env.bus = stack.bus
    env.dom = stack.service.client.lookup_domain(env.dom_name)
    return env


def as_nobody(env, mode, *args):
    return env.stack.run_as_nobody([mode, env.bus.address, env.dom] + list(args))


def call(env, method, signature, *args):
    return as_nobody(env, 'call', method, signature, json.dumps(list(args)))


def read_file(env, path):
    return call(env, 'ReadFile', '(sa{sv})', path, {})


def write_file(env, path, data):
    return call(env, 'WriteFile', '(saya{sv})', path, list(data), {})


def read_dir(env, path):
    return call(env, 'ReadDir', '(sa{sv})', path, {})


def upload(env, path, data):
    return as_nobody(env, 'upload', path, data.hex())


def download(env, path):
    return as_nobody(env, 'download', path)


def data_of(report):
    assert 'reply' in report, report
    return bytes(report['reply'][0])


def state(env):
    return env.stack.service.client.state(env.dom)


def write_attempts(env):
    """Every write method as nobody, on paths under /etc."""
    return [
        ('WriteFile', lambda: write_file(env, '/etc/hostname', b'changed\n')),
        ('Mkdir', lambda: call(env, 'Mkdir', '(sa{sv})', '/etc/newdir', {})),
        ('Remove', lambda: call(env, 'Remove', '(sa{sv})', '/etc/motd', {})),
        ('Rename', lambda: call(env, 'Rename', '(ssa{sv})', '/etc/motd', '/etc/motd2', {})),
        ('Chmod', lambda: call(env, 'Chmod', '(sua{sv})', '/etc/shadow', 0o644, {})),
        ('Chown', lambda: call(env, 'Chown', '(suua{sv})', '/etc/shadow', 65534, 65534, {})),
        ('Symlink', lambda: call(env, 'Symlink', '(ssa{sv})', '/etc/shadow', '/etc/sh', {})),
        ('Upload', lambda: upload(env, '/etc/hostname', b'uploaded\n')),
    ]


def assert_writes_denied(env):
    failures = []
    for what, attempt in write_attempts(env):
        report = attempt()
        if report.get('error') != ERROR_PREFIX + 'NotAuthorized':
            failures.append('%s: %r' % (what, report))
    assert not failures, '\n'.join(failures)


# --- The tests, in order: no rule, a read rule, a rule on paths -------------------------

def test_denied_without_rule(pkf):
    assert state(pkf) == 'stopped'
    before = sha256_file(pkf.root.path)
    assert_denied(read_file(pkf, '/etc/hostname'))
    assert_denied(read_dir(pkf, '/etc'))
    assert_denied(call(pkf, 'Stat', '(sa{sv})', '/etc/hostname', {}))
    assert_denied(call(pkf, 'Readlink', '(sa{sv})', '/etc/localtime', {}))
    assert_denied(download(pkf, '/etc/hostname'))
    assert_writes_denied(pkf)
    # a denied call starts no appliance
    time.sleep(1)
    assert state(pkf) == 'stopped'
    assert appliance_domains(pkf.conn, pkf.markers) == []
    assert sha256_file(pkf.root.path) == before


def test_read_rule_grants_reads_only(pkf):
    RULE.write(READ_RULE)
    hostname = pkf.root.hostname.encode() + b'\n'

    def granted():
        report = read_file(pkf, '/etc/hostname')
        return None if report.get('error') == ERROR_PREFIX + 'NotAuthorized' else report
    report = wait_for_rules(granted, 'the rule granting read to nobody')
    assert data_of(report) == hostname
    etc = {e.path: e for e in pkf.root.etc if '/' not in e.path}
    report = read_dir(pkf, '/etc')
    assert 'reply' in report, report
    assert sorted(e['name'] for e in report['reply'][0]) == sorted(etc)
    report = call(pkf, 'Readlink', '(sa{sv})', '/etc/localtime', {})
    assert report.get('reply') == ['/usr/share/zoneinfo/Etc/UTC'], report
    report = download(pkf, '/etc/motd')
    assert bytes.fromhex(report.get('reply', '')) == etc['motd'].content, report
    assert state(pkf) == 'running'

    # writes stay denied, and touch nothing
    before = sha256_file(pkf.root.path)
    assert_writes_denied(pkf)
    assert_denied(write_file(pkf, '/srv/allowed.txt', b'not yet\n'))
    assert data_of(read_file(pkf, '/etc/hostname')) == hostname
    report = call(pkf, 'Stat', '(sa{sv})', '/srv/allowed.txt', {})
    assert report.get('error') == ERROR_PREFIX + 'NotFound', report
    assert sha256_file(pkf.root.path) == before


def test_rule_on_path(pkf):
    RULE.write(PATH_RULE % {'domain': pkf.dom_name})
    data = b'written by nobody\n'

    def granted():
        report = write_file(pkf, '/srv/allowed.txt', data)
        return None if report.get('error') == ERROR_PREFIX + 'NotAuthorized' else report
    report = wait_for_rules(granted, 'the rule on the path')
    assert report.get('reply') == [], report
    assert data_of(read_file(pkf, '/srv/allowed.txt')) == data

    # the other write methods under /srv
    for report in (
            call(pkf, 'Mkdir', '(sa{sv})', '/srv/newdir', {}),
            upload(pkf, '/srv/newdir/uploaded', b'uploaded by nobody\n'),
            call(pkf, 'Chmod', '(sua{sv})', '/srv/newdir/uploaded', 0o600, {}),
            call(pkf, 'Chown', '(suua{sv})', '/srv/newdir/uploaded', 65534, 65534, {}),
            call(pkf, 'Symlink', '(ssa{sv})', 'uploaded', '/srv/newdir/link', {}),
            call(pkf, 'Rename', '(ssa{sv})', '/srv/newdir/link', '/srv/newdir/link2', {})):
        assert report.get('reply') == [], report
    report = call(pkf, 'Stat', '(sa{sv})', '/srv/newdir/uploaded', {})
    info = report['reply'][0]
    assert (info['mode'] & 0o7777, info['uid'], info['gid']) == (0o600, 65534, 65534)
    report = call(pkf, 'Readlink', '(sa{sv})', '/srv/newdir/link2', {})
    assert report.get('reply') == ['uploaded'], report
    assert data_of(read_file(pkf, '/srv/newdir/uploaded')) == b'uploaded by nobody\n'

    # elsewhere: still denied, and nothing changed
    assert_writes_denied(pkf)
    assert data_of(read_file(pkf, '/etc/hostname')) == pkf.root.hostname.encode() + b'\n'
    report = call(pkf, 'Stat', '(sa{sv})', '/etc/newdir', {})
    assert report.get('error') == ERROR_PREFIX + 'NotFound', report


def test_rule_on_path_is_not_escaped(pkf):
    """A rule that allows writes under /srv allows no write elsewhere:
    not by renaming out of /srv, not with '..', not through a link."""
    hostname = pkf.root.hostname.encode() + b'\n'
    failures = []
    report = call(pkf, 'Rename', '(ssa{sv})', '/srv/allowed.txt', '/etc/from-srv', {})
    if report.get('error') != ERROR_PREFIX + 'NotAuthorized':
        failures.append('Rename /srv/allowed.txt -> /etc/from-srv: %r' % report)
    report = write_file(pkf, '/srv/../etc/hostname', b'dot-dot\n')
    if report.get('error') not in (ERROR_PREFIX + 'NotAuthorized', ERROR_PREFIX + 'InvalidArgument'):
        failures.append('WriteFile /srv/../etc/hostname: %r' % report)
    # nobody may make a link under /srv to /etc; writing through it must
    # not reach /etc
    report = call(pkf, 'Symlink', '(ssa{sv})', '/etc', '/srv/etc-link', {})
    assert report.get('reply') == [], report
    report = write_file(pkf, '/srv/etc-link/hostname', b'through a link\n')
    if 'reply' in report:
        failures.append('WriteFile /srv/etc-link/hostname (a link to /etc) succeeded')
    assert data_of(read_file(pkf, '/etc/hostname')) == hostname, \
        '/etc/hostname was changed by nobody:\n' + '\n'.join(failures)
    report = call(pkf, 'Stat', '(sa{sv})', '/etc/from-srv', {})
    assert report.get('error') == ERROR_PREFIX + 'NotFound', \
        'a file was renamed into /etc by nobody:\n' + '\n'.join(failures)
    assert not failures, '\n'.join(failures)


def test_rule_removed_denies_again(pkf):
    RULE.remove()

    def denied():
        report = read_file(pkf, '/srv/allowed.txt')
        return report if report.get('error') == ERROR_PREFIX + 'NotAuthorized' else None
    wait_for_rules(denied, 'the removal of the rule')
    assert_denied(write_file(pkf, '/srv/allowed.txt', b'again\n'))
