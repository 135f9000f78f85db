# The Files interface (issue 4), reads: ReadDir, Stat, ReadFile and
# Readlink on the read-only appliance of the "files" domain, then a running
# domain (reads served, writes refused), the read size limit, and a
# storage volume.  Against the real libvirtd (qemu:///system) with real
# libguestfs appliances under TCG; the set-up is filesenv.py's.

import stat

import pytest

from client import (DOMAIN_IFACE, ERROR_PREFIX, MIB, VOLUME_IFACE, DBusError, b, expect_error,
                    s, sha256_file, t, u, wait_until)
from conftest import PrivateBus, SignalRecorder, state_changes
from filesenv import (BAD_PATHS, assert_entry, env_for, make_tar, names, start_service,
                      stop_service, tar_listing)


@pytest.fixture(scope='module')
def env(private_bus):
    """The files, run and maxread domains, and a volume."""
    yield from env_for(private_bus, files=True, run=True, maxread=True, volume=True)


# --- Reads, on the read-only appliance -----------------------------------------------

def test_read_dir_etc(env):
    entries = env.api.read_dir(env.files, '/etc')
    expected = {e.path: e for e in env.root.etc if '/' not in e.path}
    assert names(entries) == sorted(expected)
    for info in entries:
        assert_entry(info, expected[info['name']])
    assert env.api.state(env.files) == 'running'


def test_read_dir_tree_and_special_files(env):
    entries = env.api.read_dir(env.files, env.root.tree_dir)
    expected = {e.path: e for e in env.root.tree if e.path != '.' and '/' not in e.path}
    assert names(entries) == sorted(expected)
    for info in entries:
        assert_entry(info, expected[info['name']])
    # entries are not followed: a link to a directory is a symlink
    assert {i['name']: i['type'] for i in entries}['link-dir'] == 'symlink'

    entries = env.api.read_dir(env.files, '/srv/special')
    expected = {e.path: e for e in env.root.special}
    assert names(entries) == sorted(expected)
    for info in entries:
        assert_entry(info, expected[info['name']])

    entries = env.api.read_dir(env.files, '/')
    assert {'etc', 'srv', 'bin', 'usr', 'lost+found'} <= set(names(entries))
    assert [e['name'] for e in entries if e['name'] in ('.', '..')] == []


def test_stat(env):
    etc = {e.path: e for e in env.root.etc}
    assert_entry(env.api.stat(env.files, '/etc/motd'), etc['motd'])
    assert_entry(env.api.stat(env.files, '/etc/ssh/sshd_config'), etc['ssh/sshd_config'])
    # without follow-symlinks (the default, or false): the link itself
    link = env.api.stat(env.files, '/etc/motd.link')
    assert_entry(link, etc['motd.link'])
    assert env.api.stat(env.files, '/etc/motd.link',
                        {'follow-symlinks': b(False)}) == link
    # followed: the file it points to, under the link's name
    followed = env.api.stat(env.files, '/etc/motd.link', {'follow-symlinks': b(True)})
    assert_entry(followed, etc['motd'], name='motd.link')
    # a directory, through a link to it
    tree = {e.path: e for e in env.root.tree}
    followed = env.api.stat(env.files, env.root.tree_dir + '/link-dir',
                            {'follow-symlinks': b(True)})
    assert_entry(followed, tree['sub'], name='link-dir')
    # a dangling link: fine as itself, missing when followed
    assert_entry(env.api.stat(env.files, env.root.tree_dir + '/link-dangling'),
                 tree['link-dangling'])
    expect_error('NotFound', env.api.stat, env.files, env.root.tree_dir + '/link-dangling',
                 {'follow-symlinks': b(True)})
    info = env.api.stat(env.files, '/etc')
    assert (info['name'], info['type'], stat.S_IFMT(info['mode'])) == \
        ('etc', 'directory', stat.S_IFDIR)


def test_read_file(env):
    etc = {e.path: e for e in env.root.etc}
    for name in ('hostname', 'motd', 'shadow', 'os-release'):
        assert env.api.read_file(env.files, '/etc/' + name) == etc[name].content
    # a symbolic link is followed inside the guest, like virt-cat does
    # (test_links checks what polkit is told); no-follow refuses it
    assert env.api.read_file(env.files, '/etc/motd.link') == etc['motd'].content
    expect_error('InvalidArgument', env.api.read_file, env.files, '/etc/motd.link',
                 {'no-follow': b(True)}, contains=('no-follow',))
    assert env.api.read_file(env.files, env.root.tree_dir + '/empty-file') == b''

    data = env.root.two_mib
    size = len(data)
    path = '/srv/data/two-mib.bin'
    assert env.api.read_file(env.files, path) == data
    for offset, length in ((0, 10), (1000, 5000), (size - 10, 10), (123457, 1),
                           (1 * MIB + 7, 65536)):
        got = env.api.read_file(env.files, path, {'offset': t(offset), 'length': t(length)})
        assert got == data[offset:offset + length], (offset, length)
    # an offset alone reads to the end; a length alone from the start
    assert env.api.read_file(env.files, path, {'offset': t(size - 100)}) == data[-100:]
    assert env.api.read_file(env.files, path, {'length': t(100)}) == data[:100]
    assert env.api.read_file(env.files, path, {'length': t(0)}) == data
    # a length beyond the end reads what there is, as pread does
    assert env.api.read_file(env.files, path,
                             {'offset': t(size - 10), 'length': t(100)}) == data[-10:]
    assert env.api.read_file(env.files, path,
                             {'offset': t(5), 'length': t(2 ** 64 - 1)}) == data[5:]
    # the end itself is an empty read, not an error
    assert env.api.read_file(env.files, path, {'offset': t(size)}) == b''


def test_readlink(env):
    assert env.api.readlink(env.files, '/etc/localtime') == '/usr/share/zoneinfo/Etc/UTC'
    assert env.api.readlink(env.files, '/etc/motd.link') == 'motd'
    assert env.api.readlink(env.files, env.root.tree_dir + '/sub/link-up') == '../a.txt'
    assert env.api.readlink(env.files, env.root.tree_dir + '/link-dangling') == \
        'no/such/file'
    expect_error('InvalidArgument', env.api.readlink, env.files, '/etc/motd')
    expect_error('NotFound', env.api.readlink, env.files, '/etc/no-such-link')


def test_read_bad_input(env):
    api, obj = env.api, env.files
    assert len(BAD_PATHS[3][1]) > 5000
    for what, path in BAD_PATHS:
        for func in (api.read_dir, api.stat, api.read_file, api.readlink):
            error = expect_error('InvalidArgument', func, obj, path)
            assert str(error), what
    # missing files
    for func in (api.read_dir, api.stat, api.read_file, api.readlink):
        expect_error('NotFound', func, obj, '/etc/no-such-file')
        expect_error('NotFound', func, obj, '/no/such/dir/file')
    # a directory where a file is expected, and the other way round
    expect_error('InvalidArgument', api.read_file, obj, '/etc')
    expect_error('InvalidArgument', api.read_file, obj, env.root.tree_dir + '/link-dir')
    expect_error('InvalidArgument', api.read_file, obj, '/srv/special/fifo')
    expect_error('InvalidArgument', api.read_file, obj, '/srv/special/null')
    expect_error('InvalidArgument', api.read_dir, obj, '/etc/hostname')
    # absurd offsets
    size = len(env.root.two_mib)
    path = '/srv/data/two-mib.bin'
    for offset in (size + 1, 2 ** 31, 2 ** 63, 2 ** 64 - 1):
        expect_error('InvalidArgument', api.read_file, obj, path, {'offset': t(offset)})
        expect_error('InvalidArgument', api.read_file, obj, path,
                     {'offset': t(offset), 'length': t(10)})
    # unknown options, and known ones of the wrong type
    bogus = {'no-such-option': b(True)}
    for func in (api.read_dir, api.stat, api.read_file, api.readlink):
        expect_error('InvalidArgument', func, obj, '/etc/hostname', bogus)
        expect_error('InvalidArgument', func, obj, '/etc/hostname', {'root': u(1)})
        expect_error('InvalidArgument', func, obj, '/etc/hostname', {'filesystem': b(True)})
    expect_error('InvalidArgument', api.read_file, obj, path, {'offset': u(1)})
    expect_error('InvalidArgument', api.read_file, obj, path, {'length': s('10')})
    expect_error('InvalidArgument', api.stat, obj, '/etc/motd.link',
                 {'follow-symlinks': s('yes')})
    # an option of another method
    expect_error('InvalidArgument', api.read_dir, obj, '/etc', {'offset': t(0)})
    # a root that is not one
    for root in ('/dev/sdz', '/dev/sda1', ''):
        expect_error('InvalidArgument', api.read_file, obj, '/etc/hostname',
                     {'root': s(root)})
    expect_error('InvalidArgument', api.read_dir, obj, '/', {'filesystem': s('/dev/sdz9')})
    # and the right root works
    assert api.read_file(obj, '/etc/hostname', {'root': s('/dev/sda')}) == \
        env.root.hostname.encode() + b'\n'
    assert api.state(obj) == 'running'


# --- A running domain ------------------------------------------------------------------------

def running_write_calls(env, obj):
    api = env.api
    tar = make_tar([('f', b'x')])
    return [
        ('WriteFile', lambda: api.write_file(obj, '/etc/hostname', b'changed\n')),
        ('WriteFile append',
         lambda: api.write_file(obj, '/etc/hostname', b'more\n', {'append': b(True)})),
        ('Mkdir', lambda: api.mkdir(obj, '/srv-new', {'parents': b(True)})),
        ('Remove', lambda: api.remove(obj, '/etc/hostname')),
        ('Remove recursive', lambda: api.remove(obj, '/etc', {'recursive': b(True)})),
        ('Rename', lambda: api.rename(obj, '/etc/hostname', '/etc/hostname.old')),
        ('Chmod', lambda: api.chmod(obj, '/etc/hostname', 0o600)),
        ('Chown', lambda: api.chown(obj, '/etc/hostname', 1000, 1000)),
        ('Symlink', lambda: api.symlink(obj, '/etc/hostname', '/etc/hostname.link')),
        ('Upload', lambda: api.upload(obj, '/etc/hostname', b'uploaded\n')),
        ('Upload with size',
         lambda: api.upload(obj, '/etc/hostname', b'uploaded\n', {'size': t(9)})),
        ('TarIn', lambda: api.tar_in(obj, '/tmp', tar)),
    ]


def assert_writes_refused(env, obj):
    failures = []
    for what, func in running_write_calls(env, obj):
        try:
            func()
        except DBusError as error:
            if error.name != ERROR_PREFIX + 'DomainRunning':
                failures.append('%s: expected DomainRunning, got %s' % (what, error))
        else:
            failures.append('%s: succeeded on a running domain' % what)
    assert not failures, '\n'.join(failures)


def test_writes_on_running_domain(env):
    api, obj = env.api, env.run
    dom = env.conn.lookupByName(env.run_name)
    before = sha256_file(env.run_root.path)
    dom.create()
    try:
        wait_until(lambda: env.daemon.client.get_property(obj, DOMAIN_IFACE, 'Active'), 30,
                   'Active on ' + obj)
        # writes first: refused before any appliance starts
        assert_writes_refused(env, obj)
        assert api.state(obj) == 'stopped'
        assert sha256_file(env.run_root.path) == before

        # reads work on the running domain
        hostname = env.run_root.hostname.encode() + b'\n'
        assert api.read_file(obj, '/etc/hostname') == hostname
        assert 'hostname' in names(api.read_dir(obj, '/etc'))
        assert api.stat(obj, '/etc/hostname')['size'] == len(hostname)
        assert api.download(obj, '/etc/hostname') == hostname
        assert tar_listing(api.tar_out(obj, '/etc'))['hostname'][6] == len(hostname)
        assert api.state(obj) == 'running'

        # and writes are refused with the (read-only) appliance running too
        recorder = SignalRecorder(env.bus.connection)
        try:
            assert_writes_refused(env, obj)
            assert state_changes(recorder, obj) == []
        finally:
            recorder.close()
        assert api.read_file(obj, '/etc/hostname') == hostname
        assert dom.isActive() == 1
        assert sha256_file(env.run_root.path) == before
        api.stop_appliance(obj)
    finally:
        if dom.isActive():
            dom.destroy()
    assert sha256_file(env.run_root.path) == before


# --- The read size limit -----------------------------------------------------------------------

def test_max_read_size(env):
    """With --max-read-size 1 (MiB): ReadFile of a 2 MiB file is TooLarge
    and names Download, and WriteFile of more than 1 MiB names Upload."""
    bus = PrivateBus()  # its own bus: the module's service owns the name here
    daemon = None
    api = None
    errors = []
    try:
        daemon, api = start_service(bus, '--max-read-size', '1', '--idle-timeout', '900')
        obj = daemon.client.lookup_domain(env.maxread_name)
        fs = {'filesystem': s('/dev/sda1')}
        big = env.data.partitions[0].files['big.bin']
        assert len(big) == 2 * MIB
        before = sha256_file(env.maxread_image)

        error = expect_error('TooLarge', api.read_file, obj, '/big.bin', fs)
        assert 'Download' in str(error), str(error)
        error = expect_error('TooLarge', api.read_file, obj, '/big.bin',
                             dict(fs, offset=t(MIB - 1)))
        assert 'Download' in str(error), str(error)
        # within the limit
        assert api.read_file(obj, '/big.bin', dict(fs, offset=t(1000), length=t(4096))) == \
            big[1000:5096]
        assert api.read_file(obj, '/big.bin', dict(fs, length=t(MIB))) == big[:MIB]
        assert api.read_file(obj, '/big.bin', dict(fs, offset=t(MIB))) == big[MIB:]
        assert api.download(obj, '/big.bin', fs) == big

        error = expect_error('TooLarge', api.write_file, obj, '/new.bin', b'x' * (MIB + 1), fs)
        assert 'Upload' in str(error), str(error)
        api.stop_appliance(obj)
        assert sha256_file(env.maxread_image) == before
    finally:
        if daemon is not None:
            stop_service(daemon, api, errors)
        bus.stop()
    assert not errors, '\n'.join(errors)


# --- Volumes ------------------------------------------------------------------------------------

def test_files_on_volume(env):
    """Volume objects implement Files too."""
    api, obj = env.api, env.volume
    hostname = env.run_root.hostname.encode() + b'\n'
    assert api.read_file(obj, '/etc/hostname') == hostname
    assert 'hostname' in names(api.read_dir(obj, '/etc'))
    assert api.download(obj, '/etc/hostname') == hostname
    api.write_file(obj, '/etc/hostname', b'lgd-volume-host\n')
    assert api.read_file(obj, '/etc/hostname') == b'lgd-volume-host\n'
    info = api.stat(obj, '/etc/hostname')
    assert (info['mode'], info['uid'], info['gid']) == (stat.S_IFREG | 0o644, 0, 0)
    expect_error('InvalidArgument', api.read_file, obj, 'etc/hostname')
    expect_error('NotFound', api.read_file, obj, '/etc/no-such-file')
    api.stop_appliance(obj, VOLUME_IFACE)
