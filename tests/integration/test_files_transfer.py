# The Files interface (issue 4), bulk transfers through file descriptors:
# Download and TarOut on the read-only appliance of the "files" domain,
# Upload (over 100 MiB through pipes, sources that end early, clients that
# go away), then the 'filesystem' option on a disk without an operating
# system, into which TarIn restores what TarOut gave.  Against the real
# libvirtd (qemu:///system) with real libguestfs appliances under TCG;
# the set-up is filesenv.py's, and the tests run in file order.

import io
import os
import socket
import stat
import tarfile
import tempfile
import time

import pytest

from client import (ERROR_PREFIX, MIB, RELEASE_TIMEOUT, DBusError, PipeReader, PipeWriter, b,
                    expect_error, pseudo_random_chunks, s, strv, t, u)
from filesenv import (BAD_PATHS, PROMPT_CANCEL, assert_entry, env_for, expected_listing,
                      names, tar_listing, tar_numeric_owners)

BIG_SIZE = 105 * MIB + 4321


@pytest.fixture(scope='module')
def env(private_bus):
    """The files and data domains."""
    yield from env_for(private_bus, files=True, data=True)


@pytest.fixture(scope='module')
def work(env):
    """/srv/work on the files domain, where the uploads go."""
    env.api.mkdir(env.files, '/srv/work')
    return '/srv/work'


# --- Bulk reads ------------------------------------------------------------------------

def test_download_through_pipe_file_and_socket(env):
    api, obj = env.api, env.files
    etc = {e.path: e for e in env.root.etc}
    assert api.download(obj, '/etc/motd') == etc['motd'].content
    assert api.download(obj, '/srv/data/two-mib.bin') == env.root.two_mib
    assert api.download(obj, env.root.tree_dir + '/empty-file') == b''

    # a regular file opened for writing only
    with tempfile.TemporaryFile() as f:
        fd = os.open('/proc/self/fd/%d' % f.fileno(), os.O_WRONLY)
        try:
            api.fd_call(obj, 'Download', '/srv/data/two-mib.bin', fd)
        finally:
            os.close(fd)
        f.seek(0)
        assert f.read() == env.root.two_mib

    # a socket
    ours, theirs = socket.socketpair()
    reader = PipeReader(os.dup(ours.fileno()), keep=True)
    ours.close()
    reader.start()
    try:
        api.fd_call(obj, 'Download', '/etc/shadow', theirs.fileno())
    finally:
        theirs.close()
        reader.join(RELEASE_TIMEOUT)
    assert not reader.is_alive(), 'the socket did not reach end of file'
    assert reader.data() == etc['shadow'].content


def test_download_bad_input(env):
    api, obj = env.api, env.files
    expect_error('InvalidArgument', api.download, obj, '/etc')
    expect_error('InvalidArgument', api.download, obj, '/srv/special/fifo')
    expect_error('NotFound', api.download, obj, '/etc/no-such-file')
    for what, path in BAD_PATHS:
        expect_error('InvalidArgument', api.download, obj, path)
    expect_error('InvalidArgument', api.download, obj, '/etc/motd', {'offset': t(0)})

    # the read end of a pipe, where the service must write
    r, w = os.pipe()
    try:
        expect_error('InvalidArgument', api.fd_call, obj, 'Download', '/etc/motd', r)
        expect_error('InvalidArgument', api.fd_call, obj, 'TarOut', '/etc', r)
    finally:
        os.close(r)
        os.close(w)
    # a regular file opened for reading only
    with tempfile.NamedTemporaryFile() as f:
        fd = os.open(f.name, os.O_RDONLY)
        try:
            expect_error('InvalidArgument', api.fd_call, obj, 'Download', '/etc/motd', fd)
        finally:
            os.close(fd)
        assert os.path.getsize(f.name) == 0
    # a directory
    fd = os.open('/tmp', os.O_RDONLY | os.O_DIRECTORY)
    try:
        error = expect_error('InvalidArgument', api.fd_call, obj, 'Download', '/etc/motd', fd)
        assert 'directory' in str(error)
        expect_error('InvalidArgument', api.fd_call, obj, 'TarOut', '/etc', fd)
    finally:
        os.close(fd)
    # indexes that name no fd passed with the call
    r, w = os.pipe()
    try:
        expect_error('InvalidArgument', api.gio_fd_call, obj, 'Download', '/etc/motd', 0, [])
        expect_error('InvalidArgument', api.gio_fd_call, obj, 'Download', '/etc/motd', 1, [w])
        expect_error('InvalidArgument', api.gio_fd_call, obj, 'Download', '/etc/motd', 7, [w])
    finally:
        os.close(r)
        os.close(w)
    # and the service serves on
    assert api.read_file(obj, '/etc/hostname') == env.root.hostname.encode() + b'\n'


def test_tar_out(env):
    data = env.api.tar_out(env.files, env.root.tree_dir)
    assert tar_listing(data) == expected_listing(env.root.tree)
    # owners as numbers: no names in the archive
    for name, uname, gname in tar_numeric_owners(data):
        assert (uname, gname) == ('', ''), name
    env.tar_plain = data


def test_tar_out_compressed(env):
    expected = expected_listing(env.root.tree)
    gz = env.api.tar_out(env.files, env.root.tree_dir, {'compress': s('gzip')})
    assert gz[:2] == b'\x1f\x8b'
    assert tar_listing(gz, 'r:gz') == expected
    xz = env.api.tar_out(env.files, env.root.tree_dir, {'compress': s('xz')})
    assert xz[:6] == b'\xfd7zXZ\x00'
    assert tar_listing(xz, 'r:xz') == expected
    plain = env.api.tar_out(env.files, env.root.tree_dir, {'compress': s('none')})
    assert tar_listing(plain) == expected
    env.tar_gz, env.tar_xz = gz, xz


def test_tar_out_excludes(env):
    logs = ('skip.log', 'sub/skip.log')
    data = env.api.tar_out(env.files, env.root.tree_dir, {'excludes': strv(['*.log'])})
    assert tar_listing(data) == expected_listing(env.root.tree, leave_out=logs)
    data = env.api.tar_out(env.files, env.root.tree_dir,
                           {'excludes': strv(['./sub', '*.txt']), 'compress': s('gzip')})
    left_out = [e.path for e in env.root.tree
                if e.path == 'sub' or e.path.startswith('sub/') or e.path.endswith('.txt')]
    assert 'sub/nested.bin' in left_out and 'a.txt' in left_out
    assert tar_listing(data, 'r:gz') == expected_listing(env.root.tree, leave_out=left_out)
    env.tar_excluded = env.api.tar_out(env.files, env.root.tree_dir,
                                       {'excludes': strv(['*.log'])})


def test_tar_out_bad_input(env):
    api, obj = env.api, env.files
    expect_error('InvalidArgument', api.tar_out, obj, '/etc/hostname')
    expect_error('NotFound', api.tar_out, obj, '/no/such/dir')
    expect_error('InvalidArgument', api.tar_out, obj, '/etc', {'compress': s('bzip9')})
    expect_error('InvalidArgument', api.tar_out, obj, '/etc', {'compress': b(True)})
    expect_error('InvalidArgument', api.tar_out, obj, '/etc', {'excludes': s('*.log')})
    expect_error('InvalidArgument', api.tar_out, obj, '/etc', {'size': t(1)})
    for what, path in BAD_PATHS:
        expect_error('InvalidArgument', api.tar_out, obj, path)


# --- Bulk writes ---------------------------------------------------------------------------

def test_upload_download_round_trip(env):
    """Over 100 MiB up and back through pipes."""
    api, obj = env.api, env.files
    started = time.monotonic()
    writer = api.transfer_in(obj, 'Upload', '/srv/big.bin',
                             pseudo_random_chunks(BIG_SIZE, 1), {'size': t(BIG_SIZE)})
    up = time.monotonic() - started
    assert writer.size == BIG_SIZE and not writer.broken
    info = api.stat(obj, '/srv/big.bin')
    assert (info['type'], info['size'], info['mode'], info['uid'], info['gid']) == \
        ('regular', BIG_SIZE, stat.S_IFREG | 0o644, 0, 0)
    started = time.monotonic()
    reader = api.transfer_out(obj, 'Download', '/srv/big.bin', keep=False)
    down = time.monotonic() - started
    assert reader.size == BIG_SIZE
    assert reader.digest.hexdigest() == writer.digest.hexdigest()
    print('upload %.1f MiB/s, download %.1f MiB/s' % (BIG_SIZE / MIB / up,
                                                      BIG_SIZE / MIB / down))
    # and a piece of it through ReadFile
    expected = b''.join(pseudo_random_chunks(BIG_SIZE, 1))
    assert api.read_file(obj, '/srv/big.bin', {'offset': t(100 * MIB), 'length': t(4096)}) \
        == expected[100 * MIB:100 * MIB + 4096]
    env.big_digest = writer.digest.hexdigest()


def test_upload_source_closed_half_way(env, work):
    """A source that ends before the announced size: Cancelled, and the
    old file stays whole."""
    api, obj = env.api, env.files
    before = names(api.read_dir(obj, '/srv'))
    with pytest.raises(DBusError) as info:
        api.transfer_in(obj, 'Upload', '/srv/big.bin', pseudo_random_chunks(BIG_SIZE, 2),
                        {'size': t(BIG_SIZE)}, close_after=BIG_SIZE // 2)
    assert info.value.name == ERROR_PREFIX + 'Cancelled', str(info.value)
    assert info.value.writer.size == BIG_SIZE // 2
    assert api.stat(obj, '/srv/big.bin')['size'] == BIG_SIZE
    reader = api.transfer_out(obj, 'Download', '/srv/big.bin', keep=False)
    assert reader.digest.hexdigest() == env.big_digest
    assert names(api.read_dir(obj, '/srv')) == before

    # a small file, and a source that ends at once
    api.write_file(obj, '/srv/work/small', b'old content\n', {'mode': u(0o600)})
    for close_after in (5, 0):
        with pytest.raises(DBusError) as info:
            api.transfer_in(obj, 'Upload', '/srv/work/small', [b'new content, longer\n'],
                            {'size': t(20)}, close_after=close_after)
        assert info.value.name == ERROR_PREFIX + 'Cancelled', str(info.value)
        assert api.read_file(obj, '/srv/work/small') == b'old content\n'
        assert api.stat(obj, '/srv/work/small')['mode'] == stat.S_IFREG | 0o600
    # a new file: not created
    with pytest.raises(DBusError) as info:
        api.transfer_in(obj, 'Upload', '/srv/work/never', [b'0123456789'],
                        {'size': t(100)})
    assert info.value.name == ERROR_PREFIX + 'Cancelled', str(info.value)
    expect_error('NotFound', api.stat, obj, '/srv/work/never')
    # no temporary files either
    assert 'never' not in names(api.read_dir(obj, '/srv/work'))
    assert not [n for n in names(api.read_dir(obj, '/srv/work')) if n.startswith('.')]
    assert not [n for n in names(api.read_dir(obj, '/srv')) if n.startswith('.')]


def test_upload_without_size_takes_what_comes(env, work):
    api, obj = env.api, env.files
    # without 'size', end of file ends the data
    api.upload(obj, '/srv/work/small', b'short\n')
    assert api.read_file(obj, '/srv/work/small') == b'short\n'
    # the replaced file keeps its mode
    assert api.stat(obj, '/srv/work/small')['mode'] == stat.S_IFREG | 0o600
    api.upload(obj, '/srv/work/uploaded', b'', {'size': t(0)})
    assert api.read_file(obj, '/srv/work/uploaded') == b''


def test_upload_options_and_sources(env, work):
    api, obj = env.api, env.files
    data = os.urandom(3 * MIB + 5)
    api.upload(obj, '/srv/work/up-opts', data,
               {'mode': u(0o640), 'uid': u(1000), 'gid': u(1001), 'size': t(len(data))})
    info = api.stat(obj, '/srv/work/up-opts')
    assert (info['mode'], info['uid'], info['gid'], info['size']) == \
        (stat.S_IFREG | 0o640, 1000, 1001, len(data))
    assert api.download(obj, '/srv/work/up-opts') == data
    # a replaced file keeps mode and owner
    api.upload(obj, '/etc/motd', b'uploaded motd\n')
    info = api.stat(obj, '/etc/motd')
    assert (info['mode'], info['uid'], info['gid']) == (stat.S_IFREG | 0o664, 1000, 1000)
    assert api.read_file(obj, '/etc/motd') == b'uploaded motd\n'
    # from a regular file (read to its end)
    with tempfile.TemporaryFile() as f:
        f.write(data[:100000])
        f.flush()
        fd = os.open('/proc/self/fd/%d' % f.fileno(), os.O_RDONLY)
        try:
            api.fd_call(obj, 'Upload', '/srv/work/from-file', fd)
        finally:
            os.close(fd)
    assert api.read_file(obj, '/srv/work/from-file') == data[:100000]
    # from a socket
    ours, theirs = socket.socketpair()
    writer = PipeWriter(os.dup(ours.fileno()), [data])
    ours.close()
    writer.start()
    try:
        api.fd_call(obj, 'Upload', '/srv/work/from-socket', theirs.fileno(),
                    {'size': t(len(data))})
    finally:
        theirs.close()
        writer.join(RELEASE_TIMEOUT)
    assert not writer.is_alive()
    assert api.download(obj, '/srv/work/from-socket') == data


def test_download_client_closes_early(env, work):
    """A client that closes its end: the transfer ends promptly with an
    error, and the service serves on."""
    api, obj = env.api, env.files
    started = time.monotonic()
    with pytest.raises(DBusError) as info:
        api.transfer_out(obj, 'Download', '/srv/big.bin', keep=False, close_after=1 * MIB)
    elapsed = time.monotonic() - started
    assert info.value.name == ERROR_PREFIX + 'Cancelled', str(info.value)
    assert info.value.reader.closed_early
    assert elapsed < PROMPT_CANCEL, 'the transfer went on for %.0f s' % elapsed
    # the same with TarOut
    with pytest.raises(DBusError) as info:
        api.transfer_out(obj, 'TarOut', '/srv', keep=False, close_after=1 * MIB)
    assert info.value.name == ERROR_PREFIX + 'Cancelled', str(info.value)
    # the service, and the appliance, serve on
    assert api.read_file(obj, '/srv/work/small') == b'short\n'
    assert api.download(obj, '/srv/work/up-opts')[:10] != b''
    reader = api.transfer_out(obj, 'Download', '/srv/big.bin', keep=False)
    assert reader.digest.hexdigest() == env.big_digest
    assert api.state(obj) == 'running'


# --- A disk without an operating system; TarIn from the files domain --------------------

def test_filesystem_option(env):
    api, obj = env.api, env.datadom
    part = env.data.partitions[0]
    fs = {'filesystem': s('/dev/sda1')}
    error = expect_error('InvalidArgument', api.read_dir, obj, '/')
    assert 'filesystem' in str(error)
    entries = api.read_dir(obj, '/', fs)
    assert set(names(entries)) == set(part.files) | {'lost+found'}
    assert api.read_file(obj, '/hello.txt', fs) == part.files['hello.txt'].encode()
    assert api.download(obj, '/big.bin', fs) == part.files['big.bin']
    # the vfat partition holds nothing
    assert api.read_dir(obj, '/', {'filesystem': s('/dev/sda2')}) == []
    # only the guest's filesystems: not a missing one, nor the appliance's own
    # disk (sdb, after the guest's one disk)
    for device in ('/dev/sdb1', '/dev/sdb', '/dev/sda3', 'sda1'):
        error = expect_error('InvalidArgument', api.read_dir, obj, '/',
                             {'filesystem': s(device)})
        assert device in str(error) and 'ListFilesystems' in str(error), error
    # an alias of the same partition is the same partition
    assert set(names(api.read_dir(obj, '/', {'filesystem': s('/dev/vda1')}))) == \
        set(part.files) | {'lost+found'}
    # and writes
    api.mkdir(obj, '/restore', fs)
    api.write_file(obj, '/restore/.keep', b'keep', fs)
    assert api.read_file(obj, '/restore/.keep', fs) == b'keep'
    api.remove(obj, '/restore/.keep', fs)
    assert api.read_dir(obj, '/restore', fs) == []
    assert names(api.read_dir(obj, '/', fs)) == sorted(set(part.files) |
                                                      {'lost+found', 'restore'})


def tar_in_and_compare(env, target, data, compress, expected, preserve=True):
    """TarIn of DATA into TARGET, which then holds EXPECTED; by default
    with the setuid and setgid bits of the tree (preserve-special)."""
    api, obj = env.api, env.datadom
    fs = {'filesystem': s('/dev/sda1')}
    api.mkdir(obj, target, fs)
    options = dict(fs, **{'preserve-special': b(preserve)})
    if compress is not None:
        options['compress'] = s(compress)
    api.tar_in(obj, target, data, options)
    copy = api.tar_out(obj, target, fs)
    assert tar_listing(copy) == expected
    return copy


# The tree holds a link to /etc/hostname: TarIn refuses archives with
# links out of the target (test_links has the rest), so the round trips
# below leave it out.
OUTSIDE_LINKS = ('link-abs',)


def without_members(data, compress, leave_out):
    """The tar archive DATA, compressed as COMPRESS says, less the members
    named in LEAVE_OUT (everything else as it was, PAX headers too)."""
    suffix = {None: '', 'none': '', 'gzip': 'gz', 'xz': 'xz'}[compress]
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data), mode='r:' + suffix) as source, \
            tarfile.open(fileobj=out, mode='w:' + suffix, format=tarfile.PAX_FORMAT) as copy:
        for member in source.getmembers():
            if os.path.normpath(member.name) not in leave_out:
                copy.addfile(member, source.extractfile(member) if member.isreg() else None)
    return out.getvalue()


def test_tar_in_refuses_links_out_of_the_target(env):
    api, obj = env.api, env.datadom
    fs = {'filesystem': s('/dev/sda1')}
    api.mkdir(obj, '/restore/refused', fs)
    expect_error('InvalidArgument', api.tar_in, obj, '/restore/refused', env.tar_plain, fs,
                 contains=('link-abs', 'nothing was written'))
    assert names(api.read_dir(obj, '/restore/refused', fs)) == []


def test_tar_in_tree_into_other_domain(env):
    expected = expected_listing(env.root.tree, leave_out=OUTSIDE_LINKS)
    tar_in_and_compare(env, '/restore/plain', without_members(env.tar_plain, None, OUTSIDE_LINKS),
                       None, expected)
    # the same tree seen through the API
    api, obj = env.api, env.datadom
    fs = {'filesystem': s('/dev/sda1')}
    entries = {e['name']: e for e in api.read_dir(obj, '/restore/plain', fs)}
    for entry in env.root.tree:
        if entry.path == '.' or '/' in entry.path or entry.path in OUTSIDE_LINKS:
            continue
        assert_entry(entries.pop(entry.path), entry)
    assert entries == {}
    tree = {e.path: e for e in env.root.tree}
    for path in ('sub/nested.bin', 'sub/deeper', 'sub/link-up', 'shared/notes',
                 'sub/deeper/deep.txt'):
        assert_entry(api.stat(obj, '/restore/plain/' + path, fs), tree[path])
        if tree[path].kind == 'regular':
            assert api.read_file(obj, '/restore/plain/' + path, fs) == tree[path].content
    assert api.readlink(obj, '/restore/plain/link-rel', fs) == 'a.txt'


def test_tar_in_drops_setuid_unless_asked(env):
    expected = expected_listing(env.root.tree, leave_out=OUTSIDE_LINKS)
    for path, entry in expected.items():
        if entry[0] in ('regular', 'directory'):
            expected[path] = (entry[0], entry[1] & ~0o6000) + entry[2:]
    assert expected != expected_listing(env.root.tree, leave_out=OUTSIDE_LINKS)
    tar_in_and_compare(env, '/restore/plain-bits',
                       without_members(env.tar_plain, None, OUTSIDE_LINKS), None, expected,
                       preserve=False)


def test_tar_in_compressed(env):
    expected = expected_listing(env.root.tree, leave_out=OUTSIDE_LINKS)
    for target, data, compress in (('/restore/gz', env.tar_gz, 'gzip'),
                                   ('/restore/xz', env.tar_xz, 'xz'),
                                   ('/restore/none', env.tar_plain, 'none')):
        tar_in_and_compare(env, target, without_members(data, compress, OUTSIDE_LINKS), compress,
                           expected)
    tar_in_and_compare(env, '/restore/excluded',
                       without_members(env.tar_excluded, None, OUTSIDE_LINKS), None,
                       expected_listing(env.root.tree,
                                        leave_out=('skip.log', 'sub/skip.log') + OUTSIDE_LINKS))


def test_tar_in_bad_archive(env):
    api, obj = env.api, env.datadom
    fs = {'filesystem': s('/dev/sda1')}
    api.mkdir(obj, '/restore/bad', fs)
    # not what the compress option says
    with pytest.raises(DBusError) as info:
        api.tar_in(obj, '/restore/bad', env.tar_plain, dict(fs, compress=s('gzip')))
    assert info.value.name.startswith(ERROR_PREFIX), str(info.value)
    with pytest.raises(DBusError) as info:
        api.tar_in(obj, '/restore/bad', b'this is not a tar archive' * 100, fs)
    assert info.value.name.startswith(ERROR_PREFIX), str(info.value)
    # the service serves on
    assert api.read_file(obj, '/hello.txt', fs) == \
        env.data.partitions[0].files['hello.txt'].encode()
    env.api.stop_appliance(obj)
