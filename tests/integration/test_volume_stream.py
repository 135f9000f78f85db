# Raw volume data through libvirt storage volume streams (issue 5):
# org.libvirt.GuestFS.Volume.Download and Upload, with file descriptors,
# against the real libvirtd, both over its local socket (qemu:///system)
# and over TCP.
#
# The TCP connection: libvirt 9.0 on Debian 12 has no virtproxyd, and
# restarting the shared libvirtd with --listen would disturb other test
# runs (a second libvirtd cannot share the qemu driver's state either). So
# the test runs a forwarder of its own: it listens on 127.0.0.1 (an
# ephemeral port, loopback only) and joins every TCP connection to
# libvirtd's UNIX socket, which is what virtproxyd does. The service then
# talks libvirt's RPC protocol over TCP to qemu+tcp://127.0.0.1:PORT/system
# with no authentication of the transport (libvirtd sees a local root
# peer). The forwarder can also be slowed, stopped or killed, which is how
# the tests lose a connection in the middle of a transfer.

import os
import re
import select
import signal
import socket
import subprocess
import threading
import time

import pytest
from gi.repository import Gio, GLib

from client import (ERROR_PREFIX, VOLUME_IFACE, DBusError, call_with_fds, expect_error, sha256,
                    sha256_file, wait_until)
from conftest import (CONNECTION_LOST_WARNINGS, SYSTEM_URI, LibvirtObjects,
                      ensure_libvirtd_running, unique_name, volume_path)

MiB = 1 << 20
GiB = 1 << 30
LIBVIRT_SOCKET = '/run/libvirt/libvirt-sock'
TRANSFER_TIMEOUT = 300.0
# How long a transfer may take to notice that its client or its libvirt
# connection went away ("promptly"); keepalive gives up after ~20 s.
PROMPT = 15.0
KEEPALIVE_LIMIT = 60.0

FORWARDER = r'''
import socket, sys, threading, time
target, rate = sys.argv[1], int(sys.argv[2])
server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('127.0.0.1', 0))
server.listen(64)
print(server.getsockname()[1], flush=True)

def pump(src, dst, rate):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            if rate:
                time.sleep(len(data) / rate)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

while True:
    client, _ = server.accept()
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(target)
    except OSError:
        client.close()
        continue
    threading.Thread(target=pump, args=(client, upstream, 0), daemon=True).start()
    threading.Thread(target=pump, args=(upstream, client, rate), daemon=True).start()
'''


class Forwarder:
    """TCP on 127.0.0.1 to libvirtd's UNIX socket; rate (bytes/s) slows
    what flows from libvirtd to the client."""

    def __init__(self, rate=0):
        if not os.path.exists(LIBVIRT_SOCKET):
            pytest.fail('%s is missing: is libvirtd running?' % LIBVIRT_SOCKET,
                        pytrace=False)
        self.process = subprocess.Popen(
            ['/usr/bin/python3', '-c', FORWARDER, LIBVIRT_SOCKET, str(rate)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        port = self.process.stdout.readline().strip()
        if not port:
            self.stop()
            raise AssertionError('the forwarder did not start')
        self.uri = 'qemu+tcp://127.0.0.1:%s/system' % port

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
        self.process.wait()
        self.process.stdout.close()


@pytest.fixture(scope='module')
def forwarder():
    ensure_libvirtd_running()
    fwd = Forwarder()
    yield fwd
    fwd.stop()


# Options every call_fd of the running test passes: the 'local-stream'
# runs force libvirt's stream on the local connection (issue 14).
FORCED = {}
JOB_IFACE = 'org.libvirt.GuestFS.Job'
JOBS_PREFIX = '/org/libvirt/GuestFS/jobs/'


@pytest.fixture(params=['local', 'local-stream', 'tcp'])
def uri(request, forwarder):
    """Each test runs once per connection of the service: on the local one
    both ways the bytes can go (the service's own copy of the volume's
    file, the default there, and libvirt's stream), over TCP the stream."""
    FORCED.clear()
    if request.param == 'local-stream':
        FORCED['transport'] = GLib.Variant('s', 'libvirt-stream')
    yield SYSTEM_URI if request.param != 'tcp' else forwarder.uri
    FORCED.clear()


def expected_transport(uri):
    """What the Job and the log must say a transfer on uri took."""
    if uri == SYSTEM_URI and not FORCED:
        return 'local-copy'
    return 'libvirt-stream'


# Why a transfer on the local connection may go through libvirt's stream.
STREAM_REASONS = ("the caller asked for the libvirt stream",
                  "the volume's path is a symbolic link")


@pytest.fixture
def service(start_daemon, forwarder):
    daemon = start_daemon(SYSTEM_URI, forwarder.uri,
                          extra_args=['--volume-rescan-interval', '1'])
    yield daemon
    # every transfer on the local connection took the local copy unless
    # told otherwise or the volume is a link: none fell back unnoticed
    found = re.findall(r'(?:download of|upload to) volume (\S+) on %s: libvirt stream \((.*)\)'
                       % re.escape(SYSTEM_URI), daemon.log())
    assert all(reason in STREAM_REASONS for _, reason in found), found


# --- Volumes ------------------------------------------------------------------

def read_file(path):
    with open(path, 'rb') as f:
        return f.read()


def drop_cache(path):
    """Evicts the file's clean pages from the page cache."""
    os.sync()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def allocated(path):
    return os.stat(path).st_blocks * 512


class Volumes:
    """A started directory pool of lgd-test volumes, and their objects."""

    def __init__(self, virt, client):
        self.virt = virt
        self.client = client
        self.dir = virt.make_dir('vols')
        self.pool = virt.define_dir_pool(unique_name('pool'), self.dir)
        self.pool.create(0)

    def path(self, name):
        return os.path.join(self.dir, name)

    def add(self, name, data=b'', size=None, chunks=()):
        """A raw volume: data, then grown to size; chunks are (offset,
        bytes) written in place (the rest stays a hole)."""
        path = self.path(name)
        with open(path, 'wb') as f:
            f.write(data)
            if size is not None:
                f.truncate(size)
            for offset, chunk in chunks:
                f.seek(offset)
                f.write(chunk)
        return self._lookup(name)

    def add_qcow2(self, name, size='64M', backing=None):
        args = ['qemu-img', 'create', '-q', '-f', 'qcow2']
        if backing is not None:
            args += ['-b', backing, '-F', 'raw']
        subprocess.run(args + [self.path(name), size], check=True)
        return self._lookup(name)

    def _lookup(self, name):
        self.pool.refresh(0)
        return self.pool.storageVolLookupByName(name)

    def object(self, uri, vol):
        """The volume's object path on uri, once the service has it."""
        path = volume_path(uri, vol.key())
        wait_until(lambda: path in self.client.objects_with(VOLUME_IFACE), 30,
                   'volume %s on %s' % (vol.name(), uri))
        return path

    def scratch(self, name):
        """A path for a file of the test's own (a sink or a source),
        outside the pool's volumes."""
        return os.path.join(self.virt.make_dir('scratch'), name)


@pytest.fixture
def vols(virt, service):
    return Volumes(virt, service.client)


# --- Calls with a file descriptor ---------------------------------------------

def options(offset=None, length=None, sparse=None, **extra):
    opts = {key: value for key, value in extra.items()}
    if offset is not None:
        opts['offset'] = GLib.Variant('t', offset)
    if length is not None:
        opts['length'] = GLib.Variant('t', length)
    if sparse is not None:
        opts['sparse'] = GLib.Variant('b', sparse)
    return opts


def fd_list_of(fds):
    """A Gio.UnixFDList holding duplicates of fds: the caller may close
    its own at once."""
    fd_list = Gio.UnixFDList.new()
    for fd in fds:
        fd_list.append(fd)
    return fd_list


def call_fd(connection, path, method, fds=(), opts=None, handle=0,
            timeout=TRANSFER_TIMEOUT):
    """Volume.<method>(handle, opts) passing fds (a list of fds, which
    stay the caller's, or a Gio.UnixFDList, whose fds are closed here)."""
    opts = dict(FORCED, **(opts or {}))
    call_with_fds(connection, path, VOLUME_IFACE, method,
                  GLib.Variant('(ha{sv})', (handle, opts)), fds, '()', timeout)


class Background(threading.Thread):
    """A call_fd in a thread, so that the test can feed or drain a pipe.
    The fds are duplicated at once: the caller may close its own."""

    def __init__(self, connection, path, method, fds, opts=None):
        super().__init__(daemon=True)
        self.args = (connection, path, method, fd_list_of(fds), opts)
        self.error = None
        self.finished = None

    def run(self):
        try:
            call_fd(*self.args)
        except Exception as error:
            self.error = error
        self.finished = time.monotonic()

    def result(self, timeout):
        """The error (None on success), or a failure after timeout s."""
        self.join(timeout)
        assert not self.is_alive(), 'the call did not return within %.0f s' % timeout
        return self.error


def assert_error(name, func, *args, **kwargs):
    """client.expect_error, with the error as a string."""
    return str(expect_error(name, func, *args, **kwargs))


def download_file(conn, obj, dest, opts=None, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    fd = os.open(dest, flags, 0o644)
    try:
        call_fd(conn, obj, 'Download', [fd], opts)
    finally:
        os.close(fd)
    return read_file(dest)


def pipe_download(conn, obj, opts=None, while_blocked=None):
    """Download into a pipe the test drains, once while_blocked() (if
    given) has returned: until then nobody reads it.  Returns (what
    while_blocked returned, the bytes)."""
    r, w = os.pipe()
    call = Background(conn, obj, 'Download', [w], opts)
    os.close(w)
    chunks = []
    found = None
    try:
        call.start()
        if while_blocked is not None:
            found = while_blocked()
        while True:
            data = read_some(r, TRANSFER_TIMEOUT)
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(r)
    error = call.result(TRANSFER_TIMEOUT)
    if error is not None:
        raise error
    return found, b''.join(chunks)


def download_pipe(conn, obj, opts=None):
    """Download into a pipe the test drains; returns the bytes."""
    return pipe_download(conn, obj, opts)[1]


def upload_file(conn, obj, source, opts=None):
    fd = os.open(source, os.O_RDONLY)
    try:
        call_fd(conn, obj, 'Upload', [fd], opts)
    finally:
        os.close(fd)


def upload_pipe(conn, obj, data, opts=None):
    """Upload from a pipe the test fills."""
    r, w = os.pipe()
    call = Background(conn, obj, 'Upload', [r], opts)
    os.close(r)
    try:
        call.start()
        try:
            _write_all(w, data)
        except BrokenPipeError:
            pass  # the service stopped reading: its reply says why
    finally:
        os.close(w)
    error = call.result(TRANSFER_TIMEOUT)
    if error is not None:
        raise error


def read_some(fd, timeout):
    """os.read of up to 1 MiB, failing the test after timeout s instead of
    blocking for ever on a transfer that hangs."""
    ready, _, _ = select.select([fd], [], [], timeout)
    assert ready, 'no data nor end of file for %.0f s' % timeout
    return os.read(fd, MiB)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# --- The tests -------------------------------------------------------------------

def test_download_whole_raw_and_qcow2(vols, uri):
    conn = vols.client.connection
    raw_data = os.urandom(3 * MiB + 12345)
    raw = vols.add('disk.raw', raw_data)
    qcow2 = vols.add_qcow2('disk.qcow2', '64M')
    qcow2_bytes = read_file(vols.path('disk.qcow2'))
    assert 0 < len(qcow2_bytes) < 64 * MiB

    sink = vols.scratch('sink')
    # into a regular file and into a pipe, the bytes as stored, also when
    # they must come from the disk, not the page cache
    assert sha256(download_file(conn, vols.object(uri, raw), sink)) == sha256(raw_data)
    assert sha256(download_pipe(conn, vols.object(uri, raw))) == sha256(raw_data)
    for download in (lambda: download_pipe(conn, vols.object(uri, raw)),
                     lambda: download_file(conn, vols.object(uri, raw), sink)):
        drop_cache(vols.path('disk.raw'))
        assert sha256(download()) == sha256(raw_data)
    # a qcow2 volume gives its image file, not the guest's 64 MiB
    got = download_file(conn, vols.object(uri, qcow2), sink)
    assert sha256(got) == sha256_file(vols.path('disk.qcow2'))
    assert sha256(download_pipe(conn, vols.object(uri, qcow2))) == sha256(qcow2_bytes)
    # into another file system (tmpfs), where copy_file_range does not go
    shm = '/dev/shm/lgd-test-vs-%d' % os.getpid()
    try:
        assert sha256(download_file(conn, vols.object(uri, raw), shm)) == sha256(raw_data)
        got = download_file(conn, vols.object(uri, raw), shm, options(offset=5, length=MiB))
        assert got == raw_data[5:5 + MiB]
    finally:
        if os.path.exists(shm):
            os.unlink(shm)


def test_download_ranges(vols, uri):
    conn = vols.client.connection
    data = os.urandom(2 * MiB)
    obj = vols.object(uri, vols.add('ranges.raw', data))
    sink = vols.scratch('sink')

    for offset, length in [(0, 0), (4096, 0), (1000, 5000), (len(data) - 1, 1),
                           (len(data) - 1, 0), (123457, len(data) - 123457),
                           (len(data), 0)]:
        expected = data[offset:offset + length] if length else data[offset:]
        got = download_pipe(conn, obj, options(offset=offset, length=length))
        assert got == expected, (offset, length)
        got = download_file(conn, obj, sink, options(offset=offset, length=length))
        assert got == expected, (offset, length)

    # at the sink's position: after what the caller wrote already
    fd = os.open(sink, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        os.write(fd, b'header')
        call_fd(conn, obj, 'Download', [fd], options(offset=10, length=20))
    finally:
        os.close(fd)
    assert read_file(sink) == b'header' + data[10:30]


def test_bad_arguments(vols, uri):
    conn = vols.client.connection
    size = 1 * MiB
    data = os.urandom(size)
    obj = vols.object(uri, vols.add('bad.raw', data))
    before = sha256_file(vols.path('bad.raw'))
    sink = vols.scratch('sink')
    source = vols.scratch('source')
    with open(source, 'wb') as f:
        f.write(os.urandom(4096))
    wfd = os.open(sink, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    rfd = os.open(source, os.O_RDONLY)
    dirfd = os.open(vols.dir, os.O_RDONLY | os.O_DIRECTORY)
    r, w = os.pipe()
    try:
        # ranges: past the end, overflowing, checked before anything moves
        for opts in [options(offset=size + 1), options(offset=size, length=1),
                     options(length=size + 1), options(offset=1, length=size),
                     options(offset=4096, length=2 ** 64 - 1),
                     options(offset=2 ** 64 - 1, length=2 ** 64 - 1)]:
            message = assert_error('InvalidArgument', call_fd, conn, obj, 'Download',
                                   [wfd], opts)
            assert 'past the end of the volume (%d bytes)' % size in message
            assert_error('InvalidArgument', call_fd, conn, obj, 'Upload', [rfd], opts)
        assert os.fstat(wfd).st_size == 0
        assert os.lseek(rfd, 0, os.SEEK_CUR) == 0

        # options
        message = assert_error('InvalidArgument', call_fd, conn, obj, 'Download', [wfd],
                               {'ofset': GLib.Variant('t', 1)})
        assert "'ofset'" in message
        assert_error('InvalidArgument', call_fd, conn, obj, 'Download', [wfd],
                     {'offset': GLib.Variant('u', 1)})
        assert_error('InvalidArgument', call_fd, conn, obj, 'Upload', [rfd],
                     {'sparse': GLib.Variant('s', 'yes')})

        # handles and descriptors
        assert_error('InvalidArgument', call_fd, conn, obj, 'Download', [wfd], handle=1)
        assert_error('InvalidArgument', call_fd, conn, obj, 'Download', [], handle=0)
        assert_error('InvalidArgument', call_fd, conn, obj, 'Download', [wfd], handle=-1)
        assert_error('InvalidArgument', call_fd, conn, obj, 'Download', [rfd])
        assert_error('InvalidArgument', call_fd, conn, obj, 'Download', [r])
        assert_error('InvalidArgument', call_fd, conn, obj, 'Upload', [wfd])
        assert_error('InvalidArgument', call_fd, conn, obj, 'Upload', [w])
        message = assert_error('InvalidArgument', call_fd, conn, obj, 'Download', [dirfd])
        assert 'directory' in message
        assert_error('InvalidArgument', call_fd, conn, obj, 'Upload', [dirfd])

        # sparse needs a regular file
        message = assert_error('InvalidArgument', call_fd, conn, obj, 'Download', [w],
                               options(sparse=True))
        assert 'pipe' in message and 'holes' in message
        message = assert_error('InvalidArgument', call_fd, conn, obj, 'Upload', [r],
                               options(sparse=True))
        assert 'regular file' in message
        # a sparse upload must reach the volume's end (libvirt truncates)
        message = assert_error('InvalidArgument', call_fd, conn, obj, 'Upload', [rfd],
                               options(sparse=True))
        assert 'end of the volume' in message

        # a regular-file source too big for the room left, or too short for
        # the length asked: refused before writing
        message = assert_error('TooLarge', call_fd, conn, obj, 'Upload', [rfd],
                               options(offset=size - 100))
        assert_error('InvalidArgument', call_fd, conn, obj, 'Upload', [rfd],
                     options(length=8192))
    finally:
        for fd in (wfd, rfd, dirfd, r, w):
            os.close(fd)
    assert sha256_file(vols.path('bad.raw')) == before


def test_sparse_download_10g(vols, uri):
    conn = vols.client.connection
    size = 10 * GiB
    middle = os.urandom(MiB)
    tail = os.urandom(65536)
    vol = vols.add('sparse.raw', size=size,
                   chunks=[(3 * GiB, middle), (size - len(tail), tail)])
    assert allocated(vols.path('sparse.raw')) < 4 * MiB
    obj = vols.object(uri, vol)
    sink = vols.scratch('sink')
    # A sink with bytes of its own where the volume has holes: they must
    # read as zeros afterwards (punched), and take no space.
    with open(sink, 'wb') as f:
        f.write(b'\xff' * (4 * MiB))

    started = time.monotonic()
    fd = os.open(sink, os.O_WRONLY)
    try:
        call_fd(conn, obj, 'Download', [fd], options(sparse=True))
    finally:
        os.close(fd)
    elapsed = time.monotonic() - started

    st = os.stat(sink)
    assert st.st_size == size
    assert st.st_blocks * 512 < 4 * MiB, 'the sink allocates %d bytes' % (st.st_blocks * 512)
    with open(sink, 'rb') as f:
        assert f.read(4 * MiB) == bytes(4 * MiB)
        f.seek(3 * GiB)
        assert f.read(MiB) == middle
        f.seek(size - len(tail))
        assert f.read() == tail
        fd = f.fileno()
        assert os.lseek(fd, 0, os.SEEK_DATA) == 3 * GiB
        assert os.lseek(fd, 3 * GiB, os.SEEK_HOLE) == 3 * GiB + MiB
    # holes cross the wire as holes: no 10 GiB of zeros in this time
    assert elapsed < 30, 'a sparse 10 GiB download took %.1f s' % elapsed

    # a range that ends in a hole still gets its size
    fd = os.open(sink, os.O_WRONLY | os.O_TRUNC)
    try:
        call_fd(conn, obj, 'Download', [fd],
                options(offset=3 * GiB + MiB - 10, length=GiB, sparse=True))
    finally:
        os.close(fd)
    assert os.stat(sink).st_size == GiB
    with open(sink, 'rb') as f:
        assert f.read(20) == middle[-10:] + bytes(10)
        assert os.lseek(f.fileno(), 10, os.SEEK_HOLE) <= 4096

    # without sparse, the holes arrive as zeros, into a pipe or a file
    start = 3 * GiB - 3 * MiB
    got = download_pipe(conn, obj, options(offset=start, length=5 * MiB))
    assert got == bytes(3 * MiB) + middle + bytes(MiB)
    got = download_file(conn, obj, sink, options(offset=start, length=5 * MiB))
    assert got == bytes(3 * MiB) + middle + bytes(MiB)


def test_upload_round_trip(vols, uri):
    conn = vols.client.connection
    size = 4 * MiB
    vol = vols.add('rt.raw', b'\xaa' * size)
    obj = vols.object(uri, vol)
    volume_file = vols.path('rt.raw')
    source = vols.scratch('source')

    # the whole volume from a regular file
    data = bytearray(os.urandom(size))
    with open(source, 'wb') as f:
        f.write(data)
    upload_file(conn, obj, source)
    assert download_pipe(conn, obj) == data
    assert read_file(volume_file) == data

    # a range from a pipe; the rest is untouched
    piece = os.urandom(512 * 1024)
    upload_pipe(conn, obj, piece, options(offset=MiB, length=len(piece)))
    data[MiB:MiB + len(piece)] = piece
    assert download_pipe(conn, obj) == data

    # from a pipe, to its end, without a length
    piece = os.urandom(100000)
    upload_pipe(conn, obj, piece, options(offset=3 * MiB))
    data[3 * MiB:3 * MiB + len(piece)] = piece
    assert sha256(download_pipe(conn, obj)) == sha256(data)
    assert os.stat(volume_file).st_size == size

    # a pipe with more than fits: refused, and the volume does not grow
    assert_error('TooLarge', upload_pipe, conn, obj, os.urandom(300), options(offset=size - 200))
    assert os.stat(volume_file).st_size == size

    # a pipe that ends before the length: refused
    assert_error('InvalidArgument', upload_pipe, conn, obj, os.urandom(1000),
                 options(offset=0, length=5000))


def test_sparse_upload(vols, uri):
    conn = vols.client.connection
    size = 8 * MiB
    vol = vols.add('sp.raw', b'\xaa' * size)
    obj = vols.object(uri, vol)
    volume_file = vols.path('sp.raw')
    assert allocated(volume_file) >= size

    # a sparse source: holes, 512 KiB of data at 2 MiB, 4 KiB at the end
    source = vols.scratch('source')
    chunk, last = os.urandom(512 * 1024), os.urandom(4096)
    with open(source, 'wb') as f:
        f.truncate(size)
        f.seek(2 * MiB)
        f.write(chunk)
        f.seek(size - len(last))
        f.write(last)
    upload_file(conn, obj, source, options(sparse=True))
    assert sha256_file(volume_file) == sha256_file(source)
    assert sha256(download_pipe(conn, obj)) == sha256_file(source)
    # the holes are holes in the volume now, where the old bytes were
    assert allocated(volume_file) < 2 * MiB
    assert os.stat(volume_file).st_size == size

    # from an offset to the end: what comes before is kept
    with open(volume_file, 'r+b') as f:
        f.write(b'\xbb' * MiB)
    head = read_file(volume_file)[:MiB]
    source2 = vols.scratch('source2')
    with open(source2, 'wb') as f:
        f.truncate(size - MiB)
        f.seek(3 * MiB)
        f.write(chunk)
    upload_file(conn, obj, source2, options(offset=MiB, sparse=True))
    assert read_file(volume_file) == head + read_file(source2)


def test_upload_to_volume_in_use(vols, virt, uri):
    conn = vols.client.connection
    size = 4 * MiB
    base = vols.add('base.raw', os.urandom(size))
    direct = vols.add('direct.raw', os.urandom(size))
    overlay = vols.add_qcow2('overlay.qcow2', str(size), backing=vols.path('base.raw'))
    source = vols.scratch('source')
    with open(source, 'wb') as f:
        f.write(os.urandom(size))

    name = unique_name('vs-inuse')
    dom = virt.define_domain(name, disks=[(vols.path('direct.raw'), 'raw'),
                                          (vols.path('overlay.qcow2'), 'qcow2')])
    dom.create()
    assert dom.isActive()
    sums = {vol.name(): sha256_file(vols.path(vol.name())) for vol in (base, direct)}

    # the disk itself
    message = assert_error('InUse', upload_file, conn, vols.object(uri, direct), source)
    assert name in message and 'vda' in message
    # a volume in the disk's backing chain (libvirt reports it live)
    message = assert_error('InUse', upload_file, conn, vols.object(uri, base), source)
    assert name in message and 'backing chain' in message
    # the overlay itself, by pipe with a range
    assert_error('InUse', upload_pipe, conn, vols.object(uri, overlay), os.urandom(4096),
                 options(offset=0, length=4096))
    for vol in (base, direct):
        assert sha256_file(vols.path(vol.name())) == sums[vol.name()]
    # reading a volume in use is allowed
    assert sha256(download_pipe(conn, vols.object(uri, direct))) == sums['direct.raw']

    # once the domain is off, the same upload goes through
    dom.destroy()
    upload_file(conn, vols.object(uri, direct), source)
    assert sha256_file(vols.path('direct.raw')) == sha256_file(source)


def test_client_closes_early(vols, service, uri):
    conn = vols.client.connection
    size = 64 * MiB
    data = os.urandom(size)
    obj = vols.object(uri, vols.add('early.raw', data))

    # the reader goes away after a little
    r, w = os.pipe()
    call = Background(conn, obj, 'Download', [w])
    os.close(w)
    call.start()
    got = b''
    while len(got) < 256 * 1024:
        got += read_some(r, PROMPT)
    os.close(r)
    error = call.result(PROMPT)
    assert isinstance(error, DBusError) and error.name == ERROR_PREFIX + 'Cancelled', error
    assert got == data[:len(got)]

    # the writer goes away before the length it promised
    r, w = os.pipe()
    call = Background(conn, obj, 'Upload', [r], options(length=size))
    os.close(r)
    call.start()
    os.write(w, b'\0' * 4096)
    os.close(w)
    error = call.result(PROMPT)
    assert isinstance(error, DBusError) and error.name == ERROR_PREFIX + 'InvalidArgument', error
    assert 'ended after 4096 of' in str(error)
    after = read_file(vols.path('early.raw'))
    assert len(after) == size and after[4096:] == data[4096:]
    assert after[:4096] in (bytes(4096), data[:4096])

    # the service goes on serving (the first 4096 bytes are the aborted
    # upload's zeros or the old data, depending on whether they reached
    # the volume before the abort: read what is there)
    assert service.is_running()
    assert download_pipe(conn, obj, options(offset=5, length=1000)) == after[5:1005]
    assert download_pipe(conn, obj, options(offset=4096, length=1000)) == data[4096:5096]


@pytest.mark.parametrize('how', ['killed', 'stalled'])
def test_connection_lost_mid_transfer(virt, start_daemon, how):
    """The forwarder dies (the connection closes) or stops answering (only
    keepalive notices) in the middle of a download: an error, not a hang."""
    slow = Forwarder(rate=4 * MiB)
    try:
        # No periodic volume rescans on the stalled connection: they are
        # made from the service's main loop, which they would block until
        # the connection dies, and libvirt's keepalive timers run there.
        daemon = start_daemon(slow.uri, extra_args=['--volume-rescan-interval', '3600'],
                              expected_warnings=CONNECTION_LOST_WARNINGS)
        vols = Volumes(virt, daemon.client)
        conn = vols.client.connection
        size = 64 * MiB
        data = os.urandom(size)
        # (the pool's refresh event publishes the volume)
        obj = vols.object(slow.uri, vols.add('lost.raw', data))

        r, w = os.pipe()
        call = Background(conn, obj, 'Download', [w])
        os.close(w)
        call.start()
        got = bytearray()
        while len(got) < MiB:
            got += read_some(r, PROMPT)
        lost = time.monotonic()
        slow.process.send_signal(signal.SIGKILL if how == 'killed' else signal.SIGSTOP)
        limit = PROMPT if how == 'killed' else KEEPALIVE_LIMIT
        try:
            while True:
                chunk = read_some(r, limit)
                if not chunk:
                    break
                got += chunk
        finally:
            os.close(r)
        error = call.result(limit)
        assert isinstance(error, DBusError), 'the download did not fail: %r' % error
        assert error.name == ERROR_PREFIX + 'Unavailable', error
        assert 'connection' in str(error), error
        assert len(got) < size and bytes(got) == data[:len(got)]
        assert call.finished - lost < limit, 'noticed after %.1f s' % (call.finished - lost)
        assert daemon.is_running()
    finally:
        slow.stop()


# --- Which way the bytes went (issue 14) -------------------------------------

def job_of(client, job_id):
    """The (path, properties) of the job with job_id, or None."""
    for path, ifaces in client.get_managed_objects().items():
        props = ifaces.get(JOB_IFACE)
        if path.startswith(JOBS_PREFIX) and props and props['JobId'] == job_id:
            return path, props
    return None


def transport_of_blocked_download(vols, obj, job_id, size, opts=None):
    """Starts a Download into a pipe nobody reads yet, reads the Transport
    of its job, then drains the pipe: (transport, bytes)."""
    found, data = pipe_download(
        vols.client.connection, obj,
        dict(FORCED, **(opts or {}), **{'job-id': GLib.Variant('s', job_id)}),
        lambda: wait_until(lambda: (job_of(vols.client, job_id) or (None, {}))[1]
                           .get('Transport'), 30, 'the Transport of job ' + job_id))
    assert len(data) == size
    return found, data


def test_transport_is_reported(vols, service, uri):
    conn = vols.client.connection
    data = os.urandom(8 * MiB)
    obj = vols.object(uri, vols.add('which.raw', data))
    want = expected_transport(uri)

    transport, got = transport_of_blocked_download(vols, obj, 'which-1', len(data))
    assert transport == want
    assert got == data
    line = 'download of volume %s on %s: %s' % (
        vols.path('which.raw'), uri,
        'local copy' if want == 'local-copy' else 'libvirt stream')
    assert line in service.log()

    # an upload says so too
    upload_pipe(conn, obj, data[:4096], options(offset=0, length=4096))
    line = 'upload to volume %s on %s: %s' % (
        vols.path('which.raw'), uri,
        'local copy' if want == 'local-copy' else 'libvirt stream')
    assert line in service.log()

    # asking for the local copy where there is none
    if uri != SYSTEM_URI:
        r, w = os.pipe()
        try:
            message = assert_error('NotSupported', call_fd, conn, obj, 'Download', [w],
                                   {'transport': GLib.Variant('s', 'local-copy')})
        finally:
            os.close(r)
            os.close(w)
        assert 'not to this host' in message
    # a value it does not know, before anything moves
    r, w = os.pipe()
    try:
        message = assert_error('InvalidArgument', call_fd, conn, obj, 'Download', [w],
                               {'transport': GLib.Variant('s', 'carrier-pigeon')})
        assert "'transport'" in message
    finally:
        os.close(r)
        os.close(w)


def test_symbolic_link_volume_is_not_opened(vols, service, uri):
    """A pool directory may hold a link to a host file, which libvirt
    lists as a volume. The service's own copy never follows it: the bytes
    go through libvirt's stream, as before (the link's target here is a
    decoy file of the test's own)."""
    conn = vols.client.connection
    decoy = vols.scratch('decoy')
    decoy_data = os.urandom(MiB)
    with open(decoy, 'wb') as f:
        f.write(decoy_data)
    os.chmod(decoy, 0o600)
    os.symlink(decoy, vols.path('link.raw'))
    obj = vols.object(uri, vols._lookup('link.raw'))
    before = os.stat(decoy)

    transport, got = transport_of_blocked_download(vols, obj, 'link-1', len(decoy_data))
    assert transport == 'libvirt-stream'
    assert got == decoy_data
    if uri == SYSTEM_URI and not FORCED:
        assert 'libvirt stream (the volume\'s path is a symbolic link)' in service.log()
        message = assert_error('NotSupported', download_pipe, conn, obj,
                               {'transport': GLib.Variant('s', 'local-copy')})
        assert 'symbolic link' in message
        source = vols.scratch('source')
        with open(source, 'wb') as f:
            f.write(os.urandom(MiB))
        assert_error('NotSupported', upload_file, conn, obj, source,
                     {'transport': GLib.Variant('s', 'local-copy')})
    after = os.stat(decoy)
    assert read_file(decoy) == decoy_data
    assert (after.st_mode, after.st_uid, after.st_gid, after.st_mtime_ns) == \
        (before.st_mode, before.st_uid, before.st_gid, before.st_mtime_ns)


def test_cancel_mid_transfer(vols, uri):
    """Job.Cancel ends a download whose sink is full and an upload whose
    source is empty, on either path, promptly."""
    conn = vols.client.connection
    data = os.urandom(16 * MiB)
    obj = vols.object(uri, vols.add('cancel.raw', data))
    for method in ('Download', 'Upload'):
        job_id = 'cancel-' + method
        r, w = os.pipe()
        mine, theirs = (r, w) if method == 'Download' else (w, r)
        call = Background(conn, obj, method, [theirs],
                          dict(FORCED, **{'job-id': GLib.Variant('s', job_id)}))
        os.close(theirs)
        try:
            call.start()
            if method == 'Download':
                read_some(mine, PROMPT)  # the copy has begun
            else:
                os.write(mine, b'\1' * 4096)
            path, props = wait_until(lambda: job_of(vols.client, job_id), 30, job_id)
            wait_until(lambda: job_of(vols.client, job_id)[1]['Transport'], 30,
                       'the Transport of ' + job_id)
            assert job_of(vols.client, job_id)[1]['Transport'] == expected_transport(uri)
            cancelled = time.monotonic()
            call_with_fds(conn, path, JOB_IFACE, 'Cancel', GLib.Variant('(a{sv})', ({},)),
                          [], '()', 30)
            error = call.result(PROMPT)
        finally:
            os.close(mine)
        assert isinstance(error, DBusError), error
        assert error.name == ERROR_PREFIX + 'Cancelled', error
        assert call.finished - cancelled < PROMPT
    after = read_file(vols.path('cancel.raw'))
    assert len(after) == len(data) and after[4096:] == data[4096:]


def test_sockets(vols, uri):
    """A socket as sink and as source: read and write with every wait
    bounded, on either path."""
    conn = vols.client.connection
    data = os.urandom(3 * MiB + 7)
    obj = vols.object(uri, vols.add('sock.raw', data))

    mine, theirs = socket.socketpair()
    with mine:
        call = Background(conn, obj, 'Download', [theirs.fileno()], options(offset=7))
        theirs.close()
        call.start()
        chunks = []
        while True:
            chunk = read_some(mine.fileno(), TRANSFER_TIMEOUT)
            if not chunk:
                break
            chunks.append(chunk)
        assert call.result(TRANSFER_TIMEOUT) is None
    assert b''.join(chunks) == data[7:]

    piece = os.urandom(MiB)
    mine, theirs = socket.socketpair()
    with mine:
        call = Background(conn, obj, 'Upload', [theirs.fileno()],
                          options(offset=MiB, length=len(piece)))
        theirs.close()
        call.start()
        mine.sendall(piece)
        assert call.result(TRANSFER_TIMEOUT) is None
    assert read_file(vols.path('sock.raw')) == data[:MiB] + piece + data[2 * MiB:]


# --- Authorization under the real polkitd ------------------------------------

# Runs as nobody: a Download into a pipe and an Upload from one, and what
# came of them as JSON.
NOBODY_CLIENT = r'''
import json, os, sys
from gi.repository import Gio, GLib

address, path = sys.argv[1:3]
bus = Gio.DBusConnection.new_for_address_sync(
    address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
    | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
result = {'uid': os.getuid()}
for method in ('Download', 'Upload'):
    r, w = os.pipe()
    if method == 'Upload':
        os.write(w, b'x' * 4096)
    fds = Gio.UnixFDList.new()
    fds.append(w if method == 'Download' else r)
    try:
        bus.call_with_unix_fd_list_sync(
            'org.libvirt.GuestFS', path, 'org.libvirt.GuestFS.Volume', method,
            GLib.Variant('(ha{sv})', (0, {})), None, Gio.DBusCallFlags.NONE, 60000, fds,
            None)
        result[method] = 'ok'
    except GLib.Error as error:
        result[method] = Gio.DBusError.get_remote_error(error) or str(error)
    for fd in fds.steal_fds():
        os.close(fd)
    os.close(w)
    os.set_blocking(r, False)
    try:
        result[method + '-bytes'] = len(os.read(r, 65536))
    except BlockingIOError:
        result[method + '-bytes'] = 0
    os.close(r)
print(json.dumps(result))
'''


@pytest.fixture(scope='module')
def pk_volumes(forwarder, polkit):
    """A private system bus with polkitd and the service on it (--system,
    both connections), the service's polkit actions installed, and a
    volume."""
    polkit.check()
    virt = LibvirtObjects()
    polkit.add_cleanup(virt.cleanup)
    directory = virt.make_dir('pk-vols')
    pool = virt.define_dir_pool(unique_name('pk-pool'), directory)
    pool.create(0)
    volume_file = os.path.join(directory, 'pk.raw')
    with open(volume_file, 'wb') as f:
        f.write(os.urandom(MiB))
    pool.refresh(0)
    vol = pool.storageVolLookupByName('pk.raw')

    stack = polkit.start(['--connect', SYSTEM_URI, '--connect', forwarder.uri,
                          '--volume-rescan-interval', '1'],
                         NOBODY_CLIENT, 'volume-client.py')
    return {'stack': stack, 'bus': stack.bus, 'vol': vol, 'file': volume_file}


def test_not_root_is_denied(pk_volumes, uri):
    env = pk_volumes
    path = volume_path(uri, env['vol'].key())
    bus = env['bus']

    def published():
        return path in env['stack'].service.client.get_managed_objects()
    wait_until(published, 30, 'the volume on ' + uri)
    before = sha256_file(env['file'])

    report = env['stack'].run_as_nobody([bus.address, path], timeout=120)
    assert report['Download'] == ERROR_PREFIX + 'NotAuthorized', report
    assert report['Upload'] == ERROR_PREFIX + 'NotAuthorized', report
    assert report['Download-bytes'] == 0, report   # nothing was sent
    assert report['Upload-bytes'] == 4096, report  # nothing was read
    assert sha256_file(env['file']) == before

    # root, on the same bus, is let through: the denial was polkit's
    assert download_pipe(bus.connection, path, options(length=4096)) == \
        read_file(env['file'])[:4096]

