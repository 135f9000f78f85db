# Symbolic links followed safely (issue 10 item 2), against the real
# polkitd with a caller that is not root: a rule lets nobody read and write
# under /srv/allowed of one domain only, and no Files method may read or
# change anything outside it through a link there (a final link, a link in
# a parent directory, a dangling link, a loop, a link swapped between two
# calls, a link to / , a tar archive writing through a link).  Calls on
# links that stay inside work, and Debian's /etc/os-release (a link into
# /usr/lib) reads like any file.
#
# Real libvirtd (qemu:///system), one TCG appliance for the module.

import io
import json
import os
import tarfile
import tempfile
from types import SimpleNamespace

import pytest

from client import ERROR_PREFIX
from conftest import SYSTEM_URI, LibvirtObjects, ensure_libvirtd_running, unique_name
from images import MIB, ImageSet
from polkitstack import RuleFile, wait_for_rules

FILES_IFACE = 'org.libvirt.GuestFS.Files'
RULE = RuleFile('10-lgd-test-links.rules')
NOT_AUTHORIZED = ERROR_PREFIX + 'NotAuthorized'
OS_RELEASE = (b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
              b'VERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\n'
              b'ID=debian\n')

RULE_TEXT = '''// lgd-test: nobody may read and write /srv/allowed of one domain (removed by the test)
polkit.addRule(function(action, subject) {
    if (subject.user != "nobody" || action.lookup("domain") != "%(domain)s") {
        return polkit.Result.NOT_HANDLED;
    }
    // the root and filesystem options reach polkit too (issue 10 item 5)
    if (action.lookup("root") == "/dev/sdz" || action.lookup("filesystem") == "/dev/sdz") {
        return polkit.Result.NO;
    }
    var path = action.lookup("path");
    if ((action.id == "org.libvirt.guestfs.read" || action.id == "org.libvirt.guestfs.write")
        && (path == "/srv/allowed" || path.indexOf("/srv/allowed/") == 0)) {
        return polkit.Result.YES;
    }
});
'''

# Runs as nobody: one call, its outcome as JSON on stdout.  Modes:
#   call METHOD SIGNATURE ARGS     ARGS a JSON list, options as {key: [type, value]},
#                                  'ay' as a list of byte values
#   download PATH | tarout PATH    the bytes the service wrote into a pipe, in hex
#   upload PATH HEX | tarin PATH HEX   the bytes fed through a pipe
CLIENT = r'''
import json, os, sys, threading
from gi.repository import Gio, GLib

mode, address, obj = sys.argv[1:4]
IFACE = 'org.libvirt.GuestFS.Files'
result = {'uid': os.getuid(), 'euid': os.geteuid(), 'groups': os.getgroups()}


def options(raw):
    return {key: GLib.Variant(kind, value) for key, (kind, value) in raw.items()}


def call(method, signature, args, fds=None):
    return bus.call_with_unix_fd_list_sync(
        'org.libvirt.GuestFS', obj, IFACE, method, GLib.Variant(signature, tuple(args)),
        None, Gio.DBusCallFlags.NONE, 600000, fds, None)


try:
    bus = Gio.DBusConnection.new_for_address_sync(
        address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
    if mode == 'call':
        method, signature, args = sys.argv[4:7]
        args = [options(a) if isinstance(a, dict) else a for a in json.loads(args)]
        reply, _ = call(method, signature, args)
        result['reply'] = reply.unpack()
    elif mode in ('download', 'tarout'):
        r, w = os.pipe()
        chunks = []
        reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(r, 65536), b'')))
        reader.start()
        fds = Gio.UnixFDList.new()
        fds.append(w)
        os.close(w)
        try:
            call('Download' if mode == 'download' else 'TarOut', '(sha{sv})',
                 [sys.argv[4], 0, {}], fds)
        finally:
            for fd in fds.steal_fds():
                os.close(fd)
            reader.join()
            os.close(r)
        result['reply'] = b''.join(chunks).hex()
    elif mode in ('upload', 'tarin'):
        data = bytes.fromhex(sys.argv[5])
        r, w = os.pipe()
        writer = threading.Thread(target=lambda: (os.write(w, data), os.close(w)))
        writer.start()
        fds = Gio.UnixFDList.new()
        fds.append(r)
        os.close(r)
        try:
            call('Upload' if mode == 'upload' else 'TarIn', '(sha{sv})', [sys.argv[4], 0, {}], fds)
        finally:
            for fd in fds.steal_fds():
                os.close(fd)
            writer.join()
        result['reply'] = []
except GLib.Error as error:
    name = Gio.DBusError.get_remote_error(error)
    Gio.DBusError.strip_remote_error(error)
    result['error'] = name or 'local: ' + str(error)
    result['message'] = error.message
print(json.dumps(result, default=lambda value: repr(value)))
'''


def make_image(path):
    """A Debian-like root (inspection finds it) with /srv/allowed full of
    links, made the way Debian makes /etc/os-release: a link into /usr/lib."""
    with tempfile.TemporaryDirectory(prefix='lgd-test-links-') as tree:
        def write(rel, data, mode=0o644):
            full = os.path.join(tree, rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, 'wb') as f:
                f.write(data)
            os.chmod(full, mode)

        def link(rel, target):
            full = os.path.join(tree, rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            os.symlink(target, full)

        write('usr/lib/os-release', OS_RELEASE)
        link('etc/os-release', '../usr/lib/os-release')
        write('etc/debian_version', b'12.5\n')
        write('etc/hostname', b'lgd-links-host\n')
        write('etc/passwd', b'root:x:0:0:root:/root:/bin/sh\n')
        write('etc/shadow', b'root:*:19000:0:99999:7:::\n', 0o640)
        write('etc/fstab', b'LABEL=lgd-links / ext4 defaults 0 1\n')
        with open('/bin/ls', 'rb') as f:  # libguestfs reads the arch from an ELF
            write('bin/ls', f.read(), 0o755)
        write('srv/outside.txt', b'outside\n')
        write('srv/allowed/in.txt', b'inside\n')
        write('srv/allowed/sub/deep.txt', b'deep\n')
        link('srv/allowed/link-in', 'in.txt')
        link('srv/allowed/link-sub', 'sub')
        link('srv/allowed/link-etc', '/etc')
        link('srv/allowed/link-dotdot-etc', '../../etc')
        link('srv/allowed/link-passwd', '/etc/passwd')
        link('srv/allowed/link-outside', '../outside.txt')
        link('srv/allowed/up', '../..')
        link('srv/allowed/dangling', '/etc/lgd-missing')
        link('srv/allowed/loop', 'loop')
        link('srv/allowed/swap', 'in.txt')
        link('srv/allowed/rm-me', '/etc/passwd')
        subprocess_run(['mkfs.ext4', '-q', '-F', '-L', 'lgd-links', '-d', tree, path,
                        '%dk' % (32 * MIB // 1024)])
    os.chmod(path, 0o644)


def subprocess_run(args):
    import subprocess
    subprocess.run(args, check=True, stdin=subprocess.DEVNULL)


@pytest.fixture(scope='module')
def env(polkit):
    polkit.check(RULE)
    ensure_libvirtd_running()
    images = ImageSet.create()
    polkit.add_cleanup(images.remove)
    env = SimpleNamespace(markers=polkit.markers)
    env.markers.append(images.dir)
    env.image = images.path('links.img')
    make_image(env.image)
    virt = LibvirtObjects()
    polkit.add_cleanup(virt.cleanup)
    env.dom_name = unique_name('links')
    env.markers.append(virt.define_domain(env.dom_name,
                                          disks=[(env.image, 'raw')]).UUIDString())
    env.stack = polkit.start(['--connect', SYSTEM_URI, '--force-tcg', '--idle-timeout', '900'],
                             CLIENT, 'links-client.py', rule=RULE,
                             rule_text=RULE_TEXT % {'domain': env.dom_name})
    env.root = env.stack.service.client
    env.dom = env.root.lookup_domain(env.dom_name)
    # root, for what the test checks and sets up: polkit authorizes uid 0
    env.before = outside_state(env)

    def granted():
        report = read_file(env, '/srv/allowed/in.txt')
        return None if report.get('error') == NOT_AUTHORIZED else report
    assert data_of(wait_for_rules(granted, 'the rule on /srv/allowed')) == b'inside\n'
    return env


def as_nobody(env, mode, *args):
    return env.stack.run_as_nobody([mode, env.stack.bus.address, env.dom] + list(args))


def call(env, method, signature, *args):
    return as_nobody(env, 'call', method, signature, json.dumps(list(args)))


def read_file(env, path, options=None):
    return call(env, 'ReadFile', '(sa{sv})', path, options or {})


def data_of(report):
    assert 'reply' in report, report
    return bytes(report['reply'][0])


def root_call(env, method, signature, *args):
    from gi.repository import GLib
    return env.root.call(env.dom, FILES_IFACE, method, GLib.Variant(signature, args))


def outside_state(env):
    """What nobody may neither see nor change, read as root: /etc's
    listing, and the content, mode and owner of the files there and of
    /srv/outside.txt."""
    (entries,) = root_call(env, 'ReadDir', '(sa{sv})', '/etc', {})
    state = {'listing': sorted(e['name'] for e in entries)}
    for path in ('/etc/hostname', '/etc/passwd', '/etc/shadow', '/srv/outside.txt',
                 '/usr/lib/os-release'):
        (info,) = root_call(env, 'Stat', '(sa{sv})', path, {})
        (data,) = root_call(env, 'ReadFile', '(sa{sv})', path, {})
        state[path] = (info['mode'], info['uid'], info['gid'], bytes(data))
    return state


def tar_of(*members):
    """An uncompressed tar archive: (name, content or None for a directory,
    or ('link', target))."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w', format=tarfile.GNU_FORMAT) as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, content[1]
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


# Every Files method, through links that lead out of /srv/allowed: each
# must be refused (NotAuthorized, or InvalidArgument for archives) and
# change nothing.  (method, how it is called)
def escapes(env):
    a = '/srv/allowed'
    opts = {}
    return [
        ('ReadDir parent link', lambda: call(env, 'ReadDir', '(sa{sv})', a + '/link-etc', opts)),
        ('ReadDir ..', lambda: call(env, 'ReadDir', '(sa{sv})', a + '/link-dotdot-etc', opts)),
        ('ReadDir link to /', lambda: call(env, 'ReadDir', '(sa{sv})', a + '/up', opts)),
        ('Stat parent link', lambda: call(env, 'Stat', '(sa{sv})', a + '/link-etc/shadow', opts)),
        ('Stat final link followed', lambda: call(env, 'Stat', '(sa{sv})', a + '/link-passwd',
                                                  {'follow-symlinks': ['b', True]})),
        ('ReadFile final link', lambda: read_file(env, a + '/link-passwd')),
        ('ReadFile parent link', lambda: read_file(env, a + '/link-etc/shadow')),
        ('ReadFile up', lambda: read_file(env, a + '/up/etc/hostname')),
        ('ReadFile relative link', lambda: read_file(env, a + '/link-outside')),
        ('ReadFile dangling', lambda: read_file(env, a + '/dangling')),
        ('Readlink parent link', lambda: call(env, 'Readlink', '(sa{sv})',
                                              a + '/link-etc/os-release', opts)),
        ('WriteFile final link', lambda: call(env, 'WriteFile', '(saya{sv})', a + '/link-passwd',
                                              list(b'owned\n'), opts)),
        ('WriteFile parent link', lambda: call(env, 'WriteFile', '(saya{sv})',
                                               a + '/link-etc/hostname', list(b'owned\n'), opts)),
        ('WriteFile append', lambda: call(env, 'WriteFile', '(saya{sv})', a + '/link-outside',
                                          list(b'more\n'), {'append': ['b', True]})),
        ('WriteFile dangling', lambda: call(env, 'WriteFile', '(saya{sv})', a + '/dangling',
                                            list(b'created\n'), opts)),
        ('Mkdir parents', lambda: call(env, 'Mkdir', '(sa{sv})', a + '/link-etc/n/d',
                                       {'parents': ['b', True]})),
        ('Mkdir', lambda: call(env, 'Mkdir', '(sa{sv})', a + '/link-etc/n', opts)),
        ('Remove parent link', lambda: call(env, 'Remove', '(sa{sv})', a + '/link-etc/hostname',
                                            opts)),
        ('Rename from', lambda: call(env, 'Rename', '(ssa{sv})', a + '/link-etc/hostname',
                                     a + '/stolen', opts)),
        ('Rename to', lambda: call(env, 'Rename', '(ssa{sv})', a + '/in.txt',
                                   a + '/link-etc/planted', opts)),
        ('Chmod final link', lambda: call(env, 'Chmod', '(sua{sv})', a + '/link-passwd', 0o666,
                                          opts)),
        ('Chmod parent link', lambda: call(env, 'Chmod', '(sua{sv})', a + '/link-etc/shadow',
                                           0o644, opts)),
        ('Chown parent link', lambda: call(env, 'Chown', '(suua{sv})', a + '/link-etc/shadow',
                                           65534, 65534, opts)),
        ('Symlink in parent link', lambda: call(env, 'Symlink', '(ssa{sv})', 'x',
                                                a + '/link-etc/planted-link', opts)),
        ('Download final link', lambda: as_nobody(env, 'download', a + '/link-passwd')),
        ('Download parent link', lambda: as_nobody(env, 'download', a + '/link-etc/shadow')),
        ('Upload final link', lambda: as_nobody(env, 'upload', a + '/link-passwd',
                                                b'owned\n'.hex())),
        ('Upload parent link', lambda: as_nobody(env, 'upload', a + '/link-etc/hostname',
                                                 b'owned\n'.hex())),
        ('TarOut link to /', lambda: as_nobody(env, 'tarout', a + '/up')),
        ('TarOut parent link', lambda: as_nobody(env, 'tarout', a + '/link-etc')),
        ('TarIn parent link', lambda: as_nobody(env, 'tarin', a + '/link-etc',
                                                tar_of(('planted', b'x\n')).hex())),
    ]


def test_nothing_escapes_through_links(env):
    failures = []
    for what, attempt in escapes(env):
        report = attempt()
        if report.get('error') != NOT_AUTHORIZED:
            failures.append('%s: %r' % (what, report))
    assert outside_state(env) == env.before
    assert not failures, 'not refused:\n' + '\n'.join(failures)


def test_archives_cannot_write_through_links(env):
    a = '/srv/allowed'
    archives = {
        'through a link on the disk': tar_of(('link-etc/planted', b'x\n')),
        'through a link of its own': tar_of(('l', ('link', '/etc')), ('l/planted', b'x\n')),
        'a link out of the target': tar_of(('out', ('link', '../../etc'))),
        'an absolute link elsewhere': tar_of(('abs', ('link', '/etc/passwd'))),
        'dot-dot': tar_of(('../planted', b'x\n')),
    }
    failures = []
    for what, data in archives.items():
        report = as_nobody(env, 'tarin', a, data.hex())
        if report.get('error') != ERROR_PREFIX + 'InvalidArgument':
            failures.append('%s: %r' % (what, report))
    assert outside_state(env) == env.before
    # and nothing of them reached the target either
    (entries,) = root_call(env, 'ReadDir', '(sa{sv})', a, {})
    names = {e['name'] for e in entries}
    assert not names & {'l', 'out', 'abs', 'planted'}, names
    assert not failures, 'not refused:\n' + '\n'.join(failures)


def test_links_inside_work(env):
    a = '/srv/allowed'
    assert data_of(read_file(env, a + '/link-in')) == b'inside\n'
    report = call(env, 'ReadDir', '(sa{sv})', a + '/link-sub', {})
    assert [e['name'] for e in report['reply'][0]] == ['deep.txt'], report
    report = as_nobody(env, 'download', a + '/link-sub/deep.txt')
    assert bytes.fromhex(report['reply']) == b'deep\n', report
    report = as_nobody(env, 'tarout', a + '/link-sub')
    names = tarfile.open(fileobj=io.BytesIO(bytes.fromhex(report['reply']))).getnames()
    assert './deep.txt' in names, names
    # a write through a link that stays inside changes its target
    report = call(env, 'WriteFile', '(saya{sv})', a + '/link-in', list(b'rewritten\n'), {})
    assert report.get('reply') == [], report
    assert data_of(read_file(env, a + '/in.txt')) == b'rewritten\n'
    # Stat, Readlink and Remove act on a link itself, wherever it points
    report = call(env, 'Stat', '(sa{sv})', a + '/link-passwd', {})
    assert report['reply'][0]['type'] == 'symlink', report
    report = call(env, 'Readlink', '(sa{sv})', a + '/link-passwd', {})
    assert report.get('reply') == ['/etc/passwd'], report
    report = call(env, 'Remove', '(sa{sv})', a + '/rm-me', {})
    assert report.get('reply') == [], report
    assert outside_state(env) == env.before


def test_no_follow_refuses_a_final_link(env):
    a = '/srv/allowed'
    for method, signature, args in (
            ('ReadFile', '(sa{sv})', [a + '/link-in']),
            ('ReadDir', '(sa{sv})', [a + '/link-sub']),
            ('Remove', '(sa{sv})', [a + '/link-in']),
            ('Chmod', '(sua{sv})', [a + '/link-in', 0o600])):
        report = call(env, method, signature, *args, {'no-follow': ['b', True]})
        assert report.get('error') == ERROR_PREFIX + 'InvalidArgument', (method, report)
        assert 'no-follow' in report['message'], report
    assert data_of(read_file(env, a + '/link-in')) == b'rewritten\n'


def test_loop_is_a_named_error(env):
    report = read_file(env, '/srv/allowed/loop')
    assert report.get('error', '').startswith(ERROR_PREFIX), report
    assert report['error'] != NOT_AUTHORIZED, report
    assert 'symbolic links' in report['message'], report


def test_link_swapped_between_calls(env):
    a = '/srv/allowed'
    assert data_of(read_file(env, a + '/swap')) == b'rewritten\n'
    # nobody may make a link to anywhere inside /srv/allowed and move it
    # over the one it read before: the next call goes by the new link
    report = call(env, 'Symlink', '(ssa{sv})', '/etc/shadow', a + '/swap-new', {})
    assert report.get('reply') == [], report
    report = call(env, 'Rename', '(ssa{sv})', a + '/swap-new', a + '/swap', {})
    assert report.get('reply') == [], report
    assert read_file(env, a + '/swap').get('error') == NOT_AUTHORIZED
    report = call(env, 'WriteFile', '(saya{sv})', a + '/swap', list(b'owned\n'), {})
    assert report.get('error') == NOT_AUTHORIZED, report
    assert outside_state(env) == env.before


def test_debian_os_release_reads_through_its_link(env):
    (data,) = root_call(env, 'ReadFile', '(sa{sv})', '/etc/os-release', {})
    assert bytes(data) == OS_RELEASE
    (info,) = root_call(env, 'Stat', '(sa{sv})', '/etc/os-release', {})
    assert (info['type'], info['link-target']) == ('symlink', '../usr/lib/os-release')


def test_root_and_filesystem_are_details(env):
    a = '/srv/allowed/in.txt'
    assert 'reply' in read_file(env, a)
    # the rule refuses these two values: only the details can tell it
    for option in ('root', 'filesystem'):
        report = read_file(env, a, {option: ['s', '/dev/sdz']})
        assert report.get('error') == NOT_AUTHORIZED, (option, report)
        report = read_file(env, a, {option: ['s', '/dev/sdy']})
        assert report.get('error') == ERROR_PREFIX + 'InvalidArgument', (option, report)


def test_directory_swapped_for_a_link(env):
    """What path resolution kept of a directory is not trusted once the
    guest's filesystem can change: a directory that a read-only appliance
    walked through, replaced by a link to /etc (a write, which relaunches
    the appliance read-write), is a link for the next call; the same swap
    within a read-write session, and on the read-only appliance after it,
    are seen as well."""
    a = '/srv/allowed/swapdir'
    (hostname,) = root_call(env, 'ReadFile', '(sa{sv})', '/etc/hostname', {})
    (etc_info,) = root_call(env, 'Stat', '(sa{sv})', '/etc/hostname', {})

    def make_directory():
        for report in (call(env, 'Mkdir', '(sa{sv})', a, {}),
                       call(env, 'WriteFile', '(saya{sv})', a + '/hostname',
                            list(b'inside\n'), {})):
            assert report.get('reply') == [], report

    def make_link():
        report = call(env, 'Remove', '(sa{sv})', a, {'recursive': ['b', True]})
        assert report.get('reply') == [], report
        report = call(env, 'Symlink', '(ssa{sv})', '/etc', a, {})
        assert report.get('reply') == [], report

    def through_link():
        # nobody may not reach /etc through it; root reads /etc's file
        for method, signature in (('ReadFile', '(sa{sv})'), ('Stat', '(sa{sv})')):
            report = call(env, method, signature, a + '/hostname', {})
            assert report.get('error') == NOT_AUTHORIZED, (method, report)
        (data,) = root_call(env, 'ReadFile', '(sa{sv})', a + '/hostname', {})
        assert bytes(data) == bytes(hostname)
        (info,) = root_call(env, 'Stat', '(sa{sv})', a + '/hostname', {})
        assert (info['size'], info['mode'], info['mtime']) == \
            (etc_info['size'], etc_info['mode'], etc_info['mtime'])

    make_directory()
    # a read-only appliance walks the directory, more than once
    env.root.stop_appliance(env.dom)
    for _ in range(3):
        assert data_of(read_file(env, a + '/hostname')) == b'inside\n'
        report = call(env, 'Stat', '(sa{sv})', a + '/hostname', {})
        assert report['reply'][0]['size'] == len(b'inside\n'), report
    make_link()  # relaunches read-write
    through_link()
    # back and forth within the read-write session
    report = call(env, 'Remove', '(sa{sv})', a, {})
    assert report.get('reply') == [], report
    make_directory()
    assert data_of(read_file(env, a + '/hostname')) == b'inside\n'
    make_link()
    through_link()
    # a fresh read-only appliance knows nothing of the old directory
    env.root.stop_appliance(env.dom)
    through_link()
    assert outside_state(env) == env.before
