# The Files interface (issue 4), writes: bad arguments refused before
# they reach the guest, the first write relaunching the appliance
# read-write, WriteFile, Mkdir, Remove, Rename, Chmod, Chown and Symlink,
# how writes and inspection share the appliance, and writes that the guest
# refuses leaving the image unchanged.  Against the real libvirtd
# (qemu:///system) with real libguestfs appliances under TCG; the set-up
# is filesenv.py's, and the tests run in file order.

import difflib
import os
import stat
import subprocess
import tempfile

import pytest
from gi.repository import GLib

from client import MIB, ERROR_PREFIX, DBusError, b, expect_error, s, strv, u, wait_until
from conftest import SignalRecorder, state_changes
from filesenv import BAD_PATHS, env_for, make_tar, names, stopped_image_hash


@pytest.fixture(scope='module')
def env(private_bus):
    """The files domain."""
    yield from env_for(private_bus, files=True)


# --- Writes that must be refused before they reach the guest ----------------------------

def bad_write_calls(env, obj):
    """(error name, what, function) for writes whose arguments are wrong
    on their face."""
    api = env.api
    calls = []
    for what, path in BAD_PATHS:
        calls += [
            ('InvalidArgument', 'WriteFile ' + what, lambda p=path: api.write_file(obj, p, b'x')),
            ('InvalidArgument', 'Mkdir ' + what, lambda p=path: api.mkdir(obj, p)),
            ('InvalidArgument', 'Remove ' + what, lambda p=path: api.remove(obj, p)),
            ('InvalidArgument', 'Rename from ' + what,
             lambda p=path: api.rename(obj, p, '/srv/renamed')),
            ('InvalidArgument', 'Rename to ' + what,
             lambda p=path: api.rename(obj, '/etc/motd', p)),
            ('InvalidArgument', 'Chmod ' + what, lambda p=path: api.chmod(obj, p, 0o600)),
            ('InvalidArgument', 'Chown ' + what, lambda p=path: api.chown(obj, p, 1, 1)),
            ('InvalidArgument', 'Symlink ' + what,
             lambda p=path: api.symlink(obj, '/etc/motd', p)),
            ('InvalidArgument', 'Upload ' + what,
             lambda p=path: api.upload(obj, p, b'data')),
            ('InvalidArgument', 'TarIn ' + what,
             lambda p=path: api.tar_in(obj, p, make_tar([('f', b'x')]))),
        ]
    bogus = {'no-such-option': b(True)}
    calls += [
        ('InvalidArgument', 'WriteFile unknown option',
         lambda: api.write_file(obj, '/etc/motd', b'x', bogus)),
        ('InvalidArgument', 'WriteFile mode of the wrong type',
         lambda: api.write_file(obj, '/etc/motd', b'x', {'mode': GLib.Variant('i', 0o644)})),
        ('InvalidArgument', 'WriteFile create of the wrong type',
         lambda: api.write_file(obj, '/etc/motd', b'x', {'create': u(0)})),
        ('InvalidArgument', 'WriteFile an option of another method',
         lambda: api.write_file(obj, '/etc/motd', b'x', {'recursive': b(True)})),
        ('InvalidArgument', 'WriteFile mode beyond 07777',
         lambda: api.write_file(obj, '/etc/motd', b'x', {'mode': u(0o170000)})),
        ('InvalidArgument', 'Mkdir unknown option', lambda: api.mkdir(obj, '/srv/x', bogus)),
        ('InvalidArgument', 'Mkdir parents of the wrong type',
         lambda: api.mkdir(obj, '/srv/x', {'parents': s('yes')})),
        ('InvalidArgument', 'Mkdir mode beyond 07777',
         lambda: api.mkdir(obj, '/srv/x', {'mode': u(0o40755)})),
        ('InvalidArgument', 'Remove unknown option',
         lambda: api.remove(obj, '/etc/motd', bogus)),
        ('InvalidArgument', 'Remove recursive of the wrong type',
         lambda: api.remove(obj, '/srv/tree', {'recursive': u(1)})),
        ('InvalidArgument', 'Rename unknown option',
         lambda: api.rename(obj, '/etc/motd', '/etc/motd2', bogus)),
        ('InvalidArgument', 'Chmod with file type bits',
         lambda: api.chmod(obj, '/etc/motd', 0o170000)),
        ('InvalidArgument', 'Chmod beyond 07777', lambda: api.chmod(obj, '/etc/motd', 0o10000)),
        ('InvalidArgument', 'Chmod unknown option',
         lambda: api.chmod(obj, '/etc/motd', 0o600, bogus)),
        ('InvalidArgument', 'Chown unknown option',
         lambda: api.chown(obj, '/etc/motd', 1, 1, bogus)),
        ('InvalidArgument', 'Symlink unknown option',
         lambda: api.symlink(obj, 'motd', '/etc/motd3', bogus)),
        ('InvalidArgument', 'Upload size of the wrong type',
         lambda: api.upload(obj, '/etc/motd', b'data', {'size': u(4)})),
        ('InvalidArgument', 'Upload mode beyond 07777',
         lambda: api.upload(obj, '/etc/motd', b'data', {'mode': u(0o100644)})),
        ('InvalidArgument', 'Upload unknown option',
         lambda: api.upload(obj, '/etc/motd', b'data', {'append': b(True)})),
        ('InvalidArgument', 'TarIn unknown option',
         lambda: api.tar_in(obj, '/srv', make_tar([('f', b'x')]),
                            {'excludes': strv(['x'])})),
        ('InvalidArgument', 'WriteFile root of the wrong type',
         lambda: api.write_file(obj, '/etc/motd', b'x', {'root': b(True)})),
    ]
    # fds: opened the wrong way, a directory, an index out of range
    calls += [
        ('InvalidArgument', 'Upload from a pipe write end',
         lambda: wrong_end(api, obj, 'Upload', '/etc/motd', write_end=True)),
        ('InvalidArgument', 'TarIn from a pipe write end',
         lambda: wrong_end(api, obj, 'TarIn', '/srv', write_end=True)),
        ('InvalidArgument', 'Upload from a file opened for writing only',
         lambda: write_only_file(api, obj, 'Upload', '/etc/motd')),
        ('InvalidArgument', 'Upload from a directory',
         lambda: directory_fd(api, obj, 'Upload', '/etc/motd')),
        ('InvalidArgument', 'TarIn from a directory',
         lambda: directory_fd(api, obj, 'TarIn', '/srv')),
        ('InvalidArgument', 'Upload with no fd passed',
         lambda: api.gio_fd_call(obj, 'Upload', '/etc/motd', 0, [])),
        ('InvalidArgument', 'Upload with an index out of range',
         lambda: bad_index(api, obj, 'Upload', '/etc/motd')),
        ('InvalidArgument', 'TarIn with an index out of range',
         lambda: bad_index(api, obj, 'TarIn', '/srv')),
    ]
    return calls


def wrong_end(api, obj, method, path, write_end):
    r, w = os.pipe()
    try:
        api.fd_call(obj, method, path, w if write_end else r)
    finally:
        os.close(r)
        os.close(w)


def write_only_file(api, obj, method, path):
    with tempfile.NamedTemporaryFile() as f:
        f.write(b'some data')
        f.flush()
        fd = os.open(f.name, os.O_WRONLY)
        try:
            api.fd_call(obj, method, path, fd)
        finally:
            os.close(fd)


def directory_fd(api, obj, method, path):
    fd = os.open('/tmp', os.O_RDONLY | os.O_DIRECTORY)
    try:
        api.fd_call(obj, method, path, fd)
    finally:
        os.close(fd)


def bad_index(api, obj, method, path):
    r, w = os.pipe()
    try:
        os.write(w, b'data')
        os.close(w)
        w = None
        api.gio_fd_call(obj, method, path, 1, [r])
    finally:
        os.close(r)
        if w is not None:
            os.close(w)


def run_bad_writes(calls):
    failures = []
    for name, what, func in calls:
        try:
            func()
        except DBusError as error:
            if error.name != ERROR_PREFIX + name:
                failures.append('%s: expected %s, got %s' % (what, name, error))
        else:
            failures.append('%s: succeeded, expected %s' % (what, name))
    return failures


def test_bad_writes_refused_leave_image_unchanged(env):
    """Writes with bad arguments: each its error, and the disk image
    unchanged (hashed with no appliance holding it)."""
    before = stopped_image_hash(env, env.files, env.root.path)
    failures = run_bad_writes(bad_write_calls(env, env.files))
    after = stopped_image_hash(env, env.files, env.root.path)
    if after != before:
        failures.append('the image changed')
    assert not failures, '\n'.join(failures)


# --- Writes -------------------------------------------------------------------------------

def test_first_write_switches_to_read_write(env):
    api, obj = env.api, env.files
    # warm a read-only appliance first
    assert api.read_file(obj, '/etc/hostname') == env.root.hostname.encode() + b'\n'
    recorder = SignalRecorder(env.bus.connection)
    try:
        api.mkdir(obj, '/srv/work')
        wait_until(lambda: state_changes(recorder, obj)[-1:] == ['running'], 10,
                   'ApplianceState "running" after the relaunch')
        assert 'starting' in state_changes(recorder, obj), \
            'the first write did not relaunch the appliance read-write'
        info = api.stat(obj, '/srv/work')
        assert (info['type'], info['mode'], info['uid'], info['gid']) == \
            ('directory', stat.S_IFDIR | 0o755, 0, 0)
        recorder.clear()
        # later reads and writes use the read-write appliance as it is
        api.mkdir(obj, '/srv/work/tmp')
        assert api.read_file(obj, '/etc/hostname') == env.root.hostname.encode() + b'\n'
        assert state_changes(recorder, obj) == []
    finally:
        recorder.close()


def test_write_file_new(env):
    api, obj = env.api, env.files
    data = b'a new file\n' * 100
    api.write_file(obj, '/srv/work/new.txt', data)
    info = api.stat(obj, '/srv/work/new.txt')
    assert (info['type'], info['mode'], info['uid'], info['gid'], info['size']) == \
        ('regular', stat.S_IFREG | 0o644, 0, 0, len(data))
    assert api.read_file(obj, '/srv/work/new.txt') == data
    # bigger than one piece of libguestfs's protocol
    big = os.urandom(5 * MIB + 3)
    api.write_file(obj, '/srv/work/five-mib', big)
    assert api.read_file(obj, '/srv/work/five-mib') == big
    assert names(api.read_dir(obj, '/srv/work')) == ['five-mib', 'new.txt', 'tmp']


def test_write_file_empty(env):
    api, obj = env.api, env.files
    api.write_file(obj, '/srv/work/empty', b'')
    info = api.stat(obj, '/srv/work/empty')
    assert (info['type'], info['size'], info['mode']) == ('regular', 0, stat.S_IFREG | 0o644)
    assert api.read_file(obj, '/srv/work/empty') == b''
    # emptying a file
    api.write_file(obj, '/srv/work/emptied', b'something')
    api.write_file(obj, '/srv/work/emptied', b'')
    assert api.read_file(obj, '/srv/work/emptied') == b''
    api.remove(obj, '/srv/work/emptied')
    api.remove(obj, '/srv/work/empty')


def test_write_file_replace_keeps_mode_and_owner(env):
    api, obj = env.api, env.files
    before = {e['name'] for e in api.read_dir(obj, '/etc')}
    data = b'A new message of the day.\n'
    api.write_file(obj, '/etc/motd', data)
    info = api.stat(obj, '/etc/motd')
    assert (info['mode'], info['uid'], info['gid'], info['size']) == \
        (stat.S_IFREG | 0o664, 1000, 1000, len(data))
    assert api.read_file(obj, '/etc/motd') == data
    api.write_file(obj, '/etc/shadow', b'root:!:19000::::::\n')
    info = api.stat(obj, '/etc/shadow')
    assert (info['mode'], info['uid'], info['gid']) == (stat.S_IFREG | 0o640, 0, 42)
    # no temporary file left behind
    assert {e['name'] for e in api.read_dir(obj, '/etc')} == before


def test_write_file_options(env):
    api, obj = env.api, env.files
    api.write_file(obj, '/srv/work/opts', b'opts\n',
                   {'mode': u(0o600), 'uid': u(1234), 'gid': u(5678)})
    info = api.stat(obj, '/srv/work/opts')
    assert (info['mode'], info['uid'], info['gid']) == (stat.S_IFREG | 0o600, 1234, 5678)
    # set-id bits survive the owner change
    api.write_file(obj, '/srv/work/setid', b'#!/bin/sh\n',
                   {'mode': u(0o6755), 'uid': u(1000), 'gid': u(1000)})
    info = api.stat(obj, '/srv/work/setid')
    assert (info['mode'], info['uid'], info['gid']) == (stat.S_IFREG | 0o6755, 1000, 1000)
    # on a replaced file: what is given changes, the rest is kept
    api.write_file(obj, '/etc/shadow', b'root:*:1::::::\n', {'mode': u(0o600)})
    info = api.stat(obj, '/etc/shadow')
    assert (info['mode'], info['uid'], info['gid']) == (stat.S_IFREG | 0o600, 0, 42)
    api.write_file(obj, '/etc/shadow', b'root:*:2::::::\n', {'uid': u(7)})
    info = api.stat(obj, '/etc/shadow')
    assert (info['mode'], info['uid'], info['gid']) == (stat.S_IFREG | 0o600, 7, 42)
    assert api.read_file(obj, '/etc/shadow') == b'root:*:2::::::\n'


def test_write_file_create_false(env):
    api, obj = env.api, env.files
    expect_error('NotFound', api.write_file, obj, '/srv/work/missing', b'x',
                 {'create': b(False)})
    expect_error('NotFound', api.stat, obj, '/srv/work/missing')
    api.write_file(obj, '/srv/work/new.txt', b'replaced\n', {'create': b(False)})
    assert api.read_file(obj, '/srv/work/new.txt') == b'replaced\n'
    api.write_file(obj, '/srv/work/created', b'created\n', {'create': b(True)})
    assert api.read_file(obj, '/srv/work/created') == b'created\n'


def test_write_file_append(env):
    api, obj = env.api, env.files
    api.write_file(obj, '/srv/work/log', b'one\n', {'mode': u(0o640), 'uid': u(1000)})
    api.write_file(obj, '/srv/work/log', b'two\n', {'append': b(True)})
    api.write_file(obj, '/srv/work/log', b'three\n', {'append': b(True), 'create': b(False)})
    assert api.read_file(obj, '/srv/work/log') == b'one\ntwo\nthree\n'
    info = api.stat(obj, '/srv/work/log')
    assert (info['mode'], info['uid'], info['gid']) == (stat.S_IFREG | 0o640, 1000, 0)
    # appending to a missing file creates it, unless create is false
    api.write_file(obj, '/srv/work/appended', b'first\n', {'append': b(True)})
    assert api.read_file(obj, '/srv/work/appended') == b'first\n'
    expect_error('NotFound', api.write_file, obj, '/srv/work/no-append', b'x',
                 {'append': b(True), 'create': b(False)})
    expect_error('NotFound', api.stat, obj, '/srv/work/no-append')
    big = os.urandom(3 * MIB)
    api.write_file(obj, '/srv/work/appended', big, {'append': b(True)})
    assert api.read_file(obj, '/srv/work/appended') == b'first\n' + big


def test_mkdir(env):
    api, obj = env.api, env.files
    expect_error('NotFound', api.mkdir, obj, '/srv/work/a/b/c')
    api.mkdir(obj, '/srv/work/a/b/c', {'parents': b(True), 'mode': u(0o750)})
    info = api.stat(obj, '/srv/work/a/b/c')
    assert (info['type'], info['mode']) == ('directory', stat.S_IFDIR | 0o750)
    assert api.stat(obj, '/srv/work/a/b')['type'] == 'directory'
    # parents: an existing directory is fine; without, it is an error
    api.mkdir(obj, '/srv/work/a/b/c', {'parents': b(True)})
    expect_error('InvalidArgument', api.mkdir, obj, '/srv/work/a/b/c')
    api.mkdir(obj, '/srv/work/private', {'mode': u(0o700)})
    assert api.stat(obj, '/srv/work/private')['mode'] == stat.S_IFDIR | 0o700
    api.mkdir(obj, '/srv/work/sticky', {'mode': u(0o1777), 'parents': b(False)})
    assert api.stat(obj, '/srv/work/sticky')['mode'] == stat.S_IFDIR | 0o1777
    # a file in the way
    expect_error('InvalidArgument', api.mkdir, obj, '/srv/work/new.txt')
    assert api.read_file(obj, '/srv/work/new.txt') == b'replaced\n'


def test_remove(env):
    api, obj = env.api, env.files
    api.write_file(obj, '/srv/work/a/file', b'x')
    api.write_file(obj, '/srv/work/a/b/deep', b'y')
    # a file
    api.remove(obj, '/srv/work/created')
    expect_error('NotFound', api.stat, obj, '/srv/work/created')
    # a non-empty directory without recursive: an error, and nothing removed
    expect_error('InvalidArgument', api.remove, obj, '/srv/work/a')
    assert names(api.read_dir(obj, '/srv/work/a')) == ['b', 'file']
    assert names(api.read_dir(obj, '/srv/work/a/b')) == ['c', 'deep']
    expect_error('InvalidArgument', api.remove, obj, '/srv/work/a', {'recursive': b(False)})
    assert api.read_file(obj, '/srv/work/a/b/deep') == b'y'
    # an empty directory
    api.remove(obj, '/srv/work/a/b/c')
    assert names(api.read_dir(obj, '/srv/work/a/b')) == ['deep']
    # recursive
    api.remove(obj, '/srv/work/a', {'recursive': b(True)})
    expect_error('NotFound', api.stat, obj, '/srv/work/a')
    # a symbolic link, not what it points to
    api.symlink(obj, '/srv/work/new.txt', '/srv/work/to-new')
    api.remove(obj, '/srv/work/to-new')
    expect_error('NotFound', api.stat, obj, '/srv/work/to-new')
    assert api.read_file(obj, '/srv/work/new.txt') == b'replaced\n'
    # a link to a directory, even with recursive, leaves the directory
    api.symlink(obj, '/srv/work/private', '/srv/work/to-private')
    api.write_file(obj, '/srv/work/private/keep', b'keep')
    api.remove(obj, '/srv/work/to-private', {'recursive': b(True)})
    assert api.read_file(obj, '/srv/work/private/keep') == b'keep'
    expect_error('NotFound', api.remove, obj, '/srv/work/no-such-file')


def test_rename(env):
    api, obj = env.api, env.files
    api.write_file(obj, '/srv/work/r1', b'one', {'mode': u(0o600), 'uid': u(1000)})
    api.rename(obj, '/srv/work/r1', '/srv/work/r2')
    expect_error('NotFound', api.stat, obj, '/srv/work/r1')
    info = api.stat(obj, '/srv/work/r2')
    assert (info['mode'], info['uid']) == (stat.S_IFREG | 0o600, 1000)
    assert api.read_file(obj, '/srv/work/r2') == b'one'
    # over an existing file, which is replaced
    api.write_file(obj, '/srv/work/r3', b'three')
    api.rename(obj, '/srv/work/r2', '/srv/work/r3')
    assert api.read_file(obj, '/srv/work/r3') == b'one'
    expect_error('NotFound', api.stat, obj, '/srv/work/r2')
    # a directory, into another one
    api.rename(obj, '/srv/work/private', '/srv/work/tmp/moved')
    assert names(api.read_dir(obj, '/srv/work/tmp/moved')) == ['keep']
    expect_error('NotFound', api.rename, obj, '/srv/work/no-such', '/srv/work/other')
    expect_error('NotFound', api.stat, obj, '/srv/work/other')


def test_chmod(env):
    api, obj = env.api, env.files
    api.chmod(obj, '/srv/work/r3', 0o4750)
    assert api.stat(obj, '/srv/work/r3')['mode'] == stat.S_IFREG | 0o4750
    api.chmod(obj, '/srv/work/r3', 0)
    assert api.stat(obj, '/srv/work/r3')['mode'] == stat.S_IFREG
    api.chmod(obj, '/srv/work/tmp', 0o2711)
    assert api.stat(obj, '/srv/work/tmp')['mode'] == stat.S_IFDIR | 0o2711
    expect_error('InvalidArgument', api.chmod, obj, '/srv/work/r3', 0o170000)
    assert api.stat(obj, '/srv/work/r3')['mode'] == stat.S_IFREG
    expect_error('NotFound', api.chmod, obj, '/srv/work/no-such', 0o644)


def test_chown(env):
    api, obj = env.api, env.files
    api.chown(obj, '/srv/work/r3', 1000, 1001)
    info = api.stat(obj, '/srv/work/r3')
    assert (info['uid'], info['gid']) == (1000, 1001)
    api.chown(obj, '/srv/work/tmp', 4000000, 65534)
    info = api.stat(obj, '/srv/work/tmp')
    assert (info['uid'], info['gid']) == (4000000, 65534)
    # a symbolic link itself changes, not its target
    api.symlink(obj, 'r3', '/srv/work/to-r3')
    api.chown(obj, '/srv/work/to-r3', 2000, 2001)
    info = api.stat(obj, '/srv/work/to-r3')
    assert (info['type'], info['uid'], info['gid']) == ('symlink', 2000, 2001)
    info = api.stat(obj, '/srv/work/r3')
    assert (info['uid'], info['gid']) == (1000, 1001)
    expect_error('NotFound', api.chown, obj, '/srv/work/no-such', 0, 0)


def test_symlink(env):
    api, obj = env.api, env.files
    api.symlink(obj, 'r3', '/srv/work/rel-link')
    api.symlink(obj, '/etc/hostname', '/srv/work/abs-link')
    api.symlink(obj, 'does/not/exist', '/srv/work/dangling')
    assert api.readlink(obj, '/srv/work/rel-link') == 'r3'
    assert api.readlink(obj, '/srv/work/abs-link') == '/etc/hostname'
    assert api.readlink(obj, '/srv/work/dangling') == 'does/not/exist'
    info = api.stat(obj, '/srv/work/dangling')
    assert (info['type'], info['link-target'], info['size']) == \
        ('symlink', 'does/not/exist', len('does/not/exist'))
    # the link exists and points at r3, whose content it reads
    assert api.read_file(obj, '/srv/work/rel-link') == b'one'
    assert api.read_file(obj, '/srv/work/r3') == b'one'
    entries = {e['name']: e for e in api.read_dir(obj, '/srv/work')}
    assert entries['abs-link']['link-target'] == '/etc/hostname'
    assert entries['abs-link']['type'] == 'symlink'
    # an existing path is not replaced
    expect_error('InvalidArgument', api.symlink, obj, 'elsewhere', '/srv/work/r3')
    assert api.stat(obj, '/srv/work/r3')['type'] == 'regular'
    expect_error('NotFound', api.symlink, obj, 'x', '/srv/work/no/such/dir/link')


# --- Writes and inspection ----------------------------------------------------------

def test_write_drops_inspection(env):
    api, obj = env.api, env.files
    (system,) = api.inspect(obj)
    assert system['hostname'] == env.root.hostname
    assert api.inspect(obj) == [system]
    # a fresh appliance for the write: Files calls on the appliance that
    # just inspected are the next test's matter
    api.stop_appliance(obj)
    api.write_file(obj, '/etc/hostname', b'lgd-renamed-host\n')
    (system,) = api.inspect(obj)
    assert system['hostname'] == 'lgd-renamed-host'
    # an Upload is a write too
    api.stop_appliance(obj)
    api.upload(obj, '/etc/hostname', b'lgd-uploaded-host\n')
    # what was uploaded is there, before inspection reads it
    assert api.read_file(obj, '/etc/hostname') == b'lgd-uploaded-host\n'
    (system,) = api.inspect(obj)
    assert system['hostname'] == 'lgd-uploaded-host'


def test_files_after_inspect(env):
    """Inspect and Files calls share the appliance: an inspection run on
    it leaves Files calls working."""
    api, obj = env.api, env.files
    api.stop_appliance(obj)
    api.write_file(obj, '/etc/hostname', b'lgd-files-host\n')  # drops the cached result
    assert api.state(obj) == 'running'
    (system,) = api.inspect(obj)                # inspects on the running appliance
    assert system['hostname'] == 'lgd-files-host'
    failures = []
    for what, func, expected in (
            ('ReadFile', lambda: api.read_file(obj, '/etc/hostname'), b'lgd-files-host\n'),
            ('ReadDir', lambda: 'hostname' in names(api.read_dir(obj, '/etc')), True),
            ('WriteFile', lambda: api.write_file(obj, '/srv/work/after-inspect', b'x'), None),
            ('Stat', lambda: api.stat(obj, '/srv/work/after-inspect')['size'], 1)):
        try:
            got = func()
        except DBusError as error:
            failures.append('%s after Inspect: %s' % (what, error))
        else:
            if got != expected:
                failures.append('%s after Inspect: %r, expected %r' % (what, got, expected))
    assert not failures, '\n'.join(failures)


# --- Writes that the guest refuses -----------------------------------------------------

def guest_bad_write_calls(env, obj):
    """(error name, what, function) for writes whose arguments are fine
    on their face but wrong for what the guest holds."""
    api = env.api
    tar = make_tar([('f', b'x')])
    return [
        ('NotFound', 'WriteFile create=false on a missing file',
         lambda: api.write_file(obj, '/srv/work/missing', b'x', {'create': b(False)})),
        ('NotFound', 'WriteFile append create=false on a missing file',
         lambda: api.write_file(obj, '/srv/work/missing', b'x',
                                {'create': b(False), 'append': b(True)})),
        ('NotFound', 'WriteFile in a missing directory',
         lambda: api.write_file(obj, '/no/such/dir/file', b'x')),
        ('InvalidArgument', 'WriteFile on a directory',
         lambda: api.write_file(obj, '/etc', b'x')),
        ('InvalidArgument', 'WriteFile append on a directory',
         lambda: api.write_file(obj, '/etc', b'x', {'append': b(True)})),
        ('InvalidArgument', 'WriteFile on a fifo',
         lambda: api.write_file(obj, '/srv/special/fifo', b'x')),
        ('InvalidArgument', 'Upload on a directory', lambda: api.upload(obj, '/etc', b'x')),
        ('NotFound', 'Upload in a missing directory',
         lambda: api.upload(obj, '/no/such/dir/file', b'x')),
        ('NotFound', 'Mkdir without its parent', lambda: api.mkdir(obj, '/no/such/dir')),
        ('InvalidArgument', 'Mkdir on an existing file', lambda: api.mkdir(obj, '/etc/motd')),
        ('NotFound', 'Remove a missing file', lambda: api.remove(obj, '/srv/work/missing')),
        ('InvalidArgument', 'Remove a non-empty directory',
         lambda: api.remove(obj, '/srv/tree/sub')),
        ('NotFound', 'Rename a missing file',
         lambda: api.rename(obj, '/srv/work/missing', '/srv/work/other')),
        ('NotFound', 'Rename into a missing directory',
         lambda: api.rename(obj, '/etc/motd', '/no/such/dir/motd')),
        ('NotFound', 'Chmod a missing file', lambda: api.chmod(obj, '/srv/work/missing', 0o600)),
        ('NotFound', 'Chown a missing file', lambda: api.chown(obj, '/srv/work/missing', 1, 1)),
        ('NotFound', 'Symlink in a missing directory',
         lambda: api.symlink(obj, 'x', '/no/such/dir/link')),
        ('InvalidArgument', 'Symlink over an existing file',
         lambda: api.symlink(obj, 'x', '/etc/motd')),
        ('NotFound', 'TarIn into a missing directory',
         lambda: api.tar_in(obj, '/no/such/dir', tar)),
        ('InvalidArgument', 'TarIn into a file', lambda: api.tar_in(obj, '/etc/motd', tar)),
        ('InvalidArgument', 'TarIn with an unknown compression',
         lambda: api.tar_in(obj, '/srv/work', tar, {'compress': s('zstd9')})),
        ('InvalidArgument', 'WriteFile with a root that is not one',
         lambda: api.write_file(obj, '/etc/motd', b'x', {'root': s('/dev/sdz')})),
        ('InvalidArgument', 'Mkdir with a filesystem that does not exist',
         lambda: api.mkdir(obj, '/x', {'filesystem': s('/dev/sdz9')})),
    ]


def superblock_changes(before, after):
    """What dumpe2fs -h tells apart in two ext4 images, for the report."""
    def header(path):
        result = subprocess.run(['dumpe2fs', '-h', path], capture_output=True, text=True)
        return result.stdout.splitlines()
    old, new = header(before), header(after)
    return [line for line in difflib.unified_diff(old, new, lineterm='', n=0)
            if line[:1] in '+-' and line[:3] not in ('+++', '---')]


def test_bad_writes_in_guest(env):
    """Writes whose arguments are wrong for what the guest holds: each
    its error.  The image is compared by the next test."""
    env.files_before = stopped_image_hash(env, env.files, env.root.path)
    env.files_copy = env.images.copy(env.root.path, 'files-before-bad-writes.img')
    try:
        failures = run_bad_writes(guest_bad_write_calls(env, env.files))
    finally:
        env.files_after = stopped_image_hash(env, env.files, env.root.path)
    assert not failures, '\n'.join(failures)


def test_bad_writes_in_guest_leave_image_unchanged(env):
    if not hasattr(env, 'files_after'):
        pytest.fail('test_bad_writes_in_guest did not get to run its calls', pytrace=False)
    try:
        if env.files_after != env.files_before:
            changed = subprocess.run(['cmp', '-l', env.files_copy, env.root.path],
                                     capture_output=True, text=True).stdout.splitlines()
            pytest.fail('the image changed: %d bytes differ, in the blocks (KiB) %s; '
                        'dumpe2fs -h:\n%s' % (
                            len(changed),
                            sorted({(int(line.split()[0]) - 1) // 1024 for line in changed}),
                            '\n'.join(superblock_changes(env.files_copy, env.root.path))))
    finally:
        os.unlink(env.files_copy)
