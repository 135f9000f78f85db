# A bound on every wait of a transfer (issue 11, "Hostile callers", item
# 2): a client that passes a pipe and then neither reads nor writes it,
# nor closes it, gets org.libvirt.GuestFS.Error.Cancelled once it has made
# no progress for --transfer-idle-timeout seconds, and the appliance it
# held is free for others.  The pipes are blocking, as os.pipe() makes
# them and as most clients pass them: a read or write on one waits for
# ever unless the service bounds it.
#
# Files.Download, TarOut, Upload and TarIn on the "files" domain's
# appliance, then a call on the "data" domain with --max-appliances 1,
# then Volume.Download and Upload (libvirt streams), which run one at a
# time with --max-volume-transfers 1.  Against the real
# libvirtd (qemu:///system) with real appliances under TCG; the set-up is
# filesenv.py's, and the tests run in file order.

import fcntl
import os
import select
import tarfile
import threading
import time

import pytest
from gi.repository import GLib

from client import MIB, VOLUME_IFACE, call_with_fds, expect_error, sha256, sha256_file
from filesenv import env_for, names

# --transfer-idle-timeout
IDLE = 3
# Generous, and no timing is asserted with it: the appliance boots first
# (15-40 s under TCG, more on a loaded machine); without a bound the call
# would never return and the test fails when this runs out.
CALL_TIMEOUT = 300.0
# --idle-timeout: the appliance of the files domain stops this long after
# its last call, which frees the only slot for the data domain.
APPLIANCE_IDLE = 10
NO_PROGRESS = 'made no progress for %d s' % IDLE


@pytest.fixture(scope='module')
def env(private_bus):
    """The files and data domains, and a volume, on a service that runs
    one appliance and one volume transfer at a time."""
    yield from env_for(private_bus, files=True, data=True, volume=True,
                       idle_timeout=APPLIANCE_IDLE,
                       extra_args=['--transfer-idle-timeout', str(IDLE),
                                   '--max-appliances', '1',
                                   '--max-volume-transfers', '1'])


class Pipe:
    """A blocking pipe whose ends the test closes at the end (the service
    must not wait for that)."""

    def __init__(self):
        self.r, self.w = os.pipe()
        assert os.get_blocking(self.r) and os.get_blocking(self.w)

    def close(self):
        for fd in (self.r, self.w):
            if fd is not None:
                os.close(fd)
        self.r = self.w = None


def stalled_fd_call(env, method, path, options=None):
    """Files.<method>(path, a blocking pipe the test never reads nor
    writes) must fail with Cancelled, naming the idle timeout."""
    pipe = Pipe()
    theirs = pipe.r if method in ('Upload', 'TarIn') else pipe.w
    try:
        return expect_error('Cancelled', env.api.fd_call, env.files, method, path, theirs,
                            options, timeout=CALL_TIMEOUT, contains=NO_PROGRESS)
    finally:
        pipe.close()


# --- Files ---------------------------------------------------------------------------

def test_download_into_a_pipe_never_read(env):
    # 2 MiB: far more than a pipe holds
    assert len(env.root.two_mib) > 1 * MIB
    stalled_fd_call(env, 'Download', '/srv/data/two-mib.bin')
    stalled_fd_call(env, 'TarOut', '/srv/data')
    # the appliance serves on
    assert env.api.read_file(env.files, '/srv/data/two-mib.bin') == env.root.two_mib


def test_slow_reader_that_keeps_up_is_served(env):
    """The bound is on a client that makes no progress, not on a long
    transfer: a reader that takes a while to drain each pipeful, but never
    as long as the idle timeout, gets everything."""
    pipe = Pipe()
    fcntl.fcntl(pipe.r, fcntl.F_SETPIPE_SZ, 256 * 1024)
    os.set_blocking(pipe.r, False)  # the test's end: the service's is the other
    got = []
    done = threading.Event()

    def reader():
        while not done.is_set():
            time.sleep(IDLE / 2)
            try:
                while True:
                    data = os.read(pipe.r, MIB)
                    if not data:
                        return
                    got.append(data)
            except BlockingIOError:
                pass

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        env.api.fd_call(env.files, 'Download', '/srv/data/two-mib.bin', pipe.w,
                        timeout=CALL_TIMEOUT)
        os.close(pipe.w)
        thread.join(CALL_TIMEOUT)
        assert not thread.is_alive(), 'the pipe did not reach end of file'
    finally:
        done.set()
        if thread.is_alive():
            os.close(pipe.w)
        os.close(pipe.r)
    elapsed = time.monotonic() - started
    assert sha256(b''.join(got)) == sha256(env.root.two_mib)
    # it took longer than the idle timeout: the bound is not on the whole
    assert elapsed > 2 * IDLE, 'the transfer took only %.1f s' % elapsed


def test_upload_from_a_pipe_never_written(env):
    before = names(env.api.read_dir(env.files, '/srv/data'))
    stalled_fd_call(env, 'Upload', '/srv/data/upload-never')
    expect_error('NotFound', env.api.stat, env.files, '/srv/data/upload-never')
    # an announced size that never comes
    stalled_fd_call(env, 'Upload', '/srv/data/upload-never',
                    {'size': GLib.Variant('t', 4096)})
    expect_error('NotFound', env.api.stat, env.files, '/srv/data/upload-never')
    stalled_fd_call(env, 'TarIn', '/srv/data')
    assert names(env.api.read_dir(env.files, '/srv/data')) == before


def test_upload_refused_target_does_not_wait_for_the_client(env):
    """An Upload whose target is refused (a directory) answers at once:
    the service does not start reading the client's pipe, so it does not
    wait the idle timeout for a client that never writes."""
    env.api.stat(env.files, '/srv/data')  # the appliance is up
    pipe = Pipe()
    try:
        started = time.monotonic()
        expect_error('InvalidArgument', env.api.fd_call, env.files, 'Upload', '/srv/data',
                     pipe.r, None, timeout=CALL_TIMEOUT, contains='not a regular file')
        elapsed = time.monotonic() - started
    finally:
        pipe.close()
    # the old code read the pipe first and answered after IDLE seconds
    assert elapsed < IDLE, 'the refusal took %.1f s, the idle timeout is %d s' % (elapsed, IDLE)


def test_tar_in_stalled_in_the_middle_of_an_entry(env):
    """A client that stops writing halfway through an entry is a stalled
    client (Cancelled), not a bad archive (InvalidArgument)."""
    before = names(env.api.read_dir(env.files, '/srv/data'))
    info = tarfile.TarInfo('stalled.bin')
    info.size = 64 * 1024
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    pipe = Pipe()
    try:
        # a header and part of its data, and then nothing, the pipe open
        os.write(pipe.w, header + b'x' * 1000)
        expect_error('Cancelled', env.api.fd_call, env.files, 'TarIn', '/srv/data', pipe.r,
                     None, timeout=CALL_TIMEOUT, contains=NO_PROGRESS)
    finally:
        pipe.close()
    assert names(env.api.read_dir(env.files, '/srv/data')) == before


def test_appliance_slot_is_freed(env):
    """With one appliance at a time, the data domain gets one once the
    files domain's appliance, which the stalled transfers used, has gone
    idle and stopped."""
    filesystems = env.api.list_filesystems(env.datadom)
    assert filesystems, 'the data domain has file systems'
    assert env.api.state(env.files) == 'stopped'


# --- Volumes (libvirt streams) ----------------------------------------------------

def volume_call(env, method, fd, options=None):
    call_with_fds(env.api.connection, env.volume, VOLUME_IFACE, method,
                  GLib.Variant('(ha{sv})', (0, options or {})), [fd], '()', CALL_TIMEOUT)


def test_volume_download_into_a_pipe_never_read(env):
    assert os.path.getsize(env.volume_image) > 1 * MIB
    pipe = Pipe()
    try:
        expect_error('Cancelled', volume_call, env, 'Download', pipe.w,
                     contains=NO_PROGRESS)
    finally:
        pipe.close()


def test_volume_upload_from_a_pipe_never_written(env):
    before = sha256_file(env.volume_image)
    for options in ({}, {'length': GLib.Variant('t', 4096)}):
        pipe = Pipe()
        try:
            expect_error('Cancelled', volume_call, env, 'Upload', pipe.r, options,
                         contains=NO_PROGRESS)
        finally:
            pipe.close()
    assert sha256_file(env.volume_image) == before
    # and the volume serves on: a download into a file gets it whole
    sink = os.path.join(env.images.dir, 'volume-copy')
    fd = os.open(sink, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        volume_call(env, 'Download', fd)
    finally:
        os.close(fd)
    assert sha256_file(sink) == before


class VolumeCall(threading.Thread):
    """volume_call in a thread, so that the test can drain a pipe
    meanwhile; the fd is the test's and stays open."""

    def __init__(self, env, method, fd):
        super().__init__(daemon=True)
        self.args = (env, method, fd)
        self.error = None
        self.finished = threading.Event()

    def run(self):
        try:
            volume_call(*self.args)
        except Exception as error:
            self.error = error
        self.finished.set()


def test_volume_transfers_wait_their_turn(env):
    """With --max-volume-transfers 1, a second transfer waits while the
    first runs (kept alive by a reader that drains the pipe every 1.5 s),
    and runs once the first has ended."""
    whole = sha256_file(env.volume_image)
    pipe = Pipe()
    os.set_blocking(pipe.r, False)  # the test's end
    first = VolumeCall(env, 'Download', pipe.w)
    first.start()
    ready, _, _ = select.select([pipe.r], [], [], CALL_TIMEOUT)
    assert ready, 'the first download sent nothing'
    stop = threading.Event()

    def drain():
        # one read a wake-up: enough progress to stay under the idle
        # timeout, too little for the local copy (which refills the pipe
        # as fast as it is read) to finish while the test looks
        while not stop.is_set():
            try:
                os.read(pipe.r, 64 * 1024)
            except BlockingIOError:
                pass
            stop.wait(IDLE / 2)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    sink = os.path.join(env.images.dir, 'volume-second')
    fd = os.open(sink, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        second = VolumeCall(env, 'Download', fd)
        second.start()
        # long enough for the whole volume many times over, and for the
        # first to be cut off had its reader not kept up
        assert not second.finished.wait(3 * IDLE), 'the second ran beside the first'
        assert os.path.getsize(sink) == 0
        assert not first.finished.is_set(), first.error
        # the first ends when its reader goes away; then the second runs
        stop.set()
        reader.join()
        pipe.close()
        assert first.finished.wait(CALL_TIMEOUT), 'the first did not end'
        assert second.finished.wait(CALL_TIMEOUT), 'the second did not run'
    finally:
        stop.set()
        reader.join()
        pipe.close()
        os.close(fd)
    assert first.error is not None and first.error.name.endswith('.Cancelled'), first.error
    assert second.error is None, second.error
    assert sha256_file(sink) == whole
