# Job objects (issue 12, item 3): every long operation is published at
# /org/libvirt/GuestFS/jobs/N with org.libvirt.GuestFS.Job while it runs,
# carries the caller's job-id option, shows its progress, can be
# cancelled, and says Completed before it vanishes.
#
# On the "files" domain of filesenv.py, against the real libvirtd with a
# real appliance under TCG: an appliance launch, a 256 MiB Upload, then a
# Download of it into a pipe that the test reads slowly and cancels half
# way; TarOut, TarIn and Volume.Upload with their progress, and a TarOut
# cancelled half way.  Then, under the real polkitd (polkitstack.py): a
# launch started by root that nobody may not cancel, and root may; and a
# launch waiting for the only appliance slot, cancelled while it waits.

import io
import os
import tarfile
import threading
import time
from types import SimpleNamespace

import pytest
from gi.repository import Gio, GLib

from client import (ERROR_PREFIX, FILES_IFACE, MANAGER_IFACE, MANAGER_PATH, MIB, DOMAIN_IFACE,
                    BUS_NAME, VOLUME_IFACE, DBusError, PipeWriter,
                    GuestFSClient, PendingCall, call_method, dbus_error, expect_error,
                    pump, s, sha256, sha256_file, t, u, wait_until)
from conftest import SYSTEM_URI, SignalRecorder
from filesenv import env_for
from polkitstack import CALL_CLIENT, RuleFile, assert_denied, call_as_nobody

JOB_IFACE = 'org.libvirt.GuestFS.Job'
JOBS_PREFIX = '/org/libvirt/GuestFS/jobs/'
BIG_PATH = '/srv/jobs-big.bin'
BIG_SIZE = 256 * MIB
# the appliance boots in 15-40 s under TCG, more on a loaded machine
LAUNCH_TIMEOUT = 600.0
# a cancelled transfer ends within this; it ends at once, really
PROMPT = 30.0
# Cancel is for the uid that started the job; the rule lets root manage
# (and so start appliances) on the polkit stack, and nobody gets nothing.
RULE_FILE = RuleFile('50-lgd-test-jobs.rules')
RULE = '''
polkit.addRule(function(action, subject) {
    if ((action.id == "org.libvirt.guestfs.manage" ||
         action.id == "org.libvirt.guestfs.volume-read") && subject.user == "root")
        return polkit.Result.YES;
    return polkit.Result.NOT_HANDLED;
});
'''


class JobRecorder(SignalRecorder):
    """Also records the jobs' Completed signals, and (through note()) the
    replies of calls, in the order they came."""

    MEMBERS = SignalRecorder.MEMBERS + ('Completed',)

    def note(self, what, path, args=()):
        self.signals.append(SimpleNamespace(member=what, path=path, args=args))

    def jobs_added(self):
        """{path: Job properties} of every job that appeared."""
        return {s.path: s.args[0][JOB_IFACE] for s in self.signals
                if s.member == 'InterfacesAdded' and s.path.startswith(JOBS_PREFIX)
                and JOB_IFACE in s.args[0]}

    def job_with_id(self, job_id, operation):
        """The (path, properties) of the job of operation with job_id."""
        found = [(path, props) for path, props in self.jobs_added().items()
                 if props['JobId'] == job_id and props['Operation'] == operation]
        assert len(found) <= 1, found
        return found[0] if found else None

    def completed(self, path):
        return [s.args for s in self.signals if s.member == 'Completed' and s.path == path]

    def index(self, member, path):
        for i, signal in enumerate(self.signals):
            if signal.member == member and signal.path == path:
                return i
        raise AssertionError('no %s for %s in %r' % (member, path, self.signals))


class NotedCall(PendingCall):
    """A PendingCall whose reply is noted in recorder as 'reply' when it
    is dispatched, in the order of the signals around it."""

    def __init__(self, recorder, *args, **kwargs):
        self.recorder = recorder
        super().__init__(*args, **kwargs)

    def _on_reply(self, connection, result):
        self.recorder.note('reply', None)
        super()._on_reply(connection, result)


@pytest.fixture(scope='module')
def env(private_bus):
    yield from env_for(private_bus, files=True, volume=True)


@pytest.fixture
def recorder(env):
    rec = JobRecorder(env.bus.connection)
    yield rec
    rec.close()


def job_properties(api, path):
    return api.get_all_properties(path, JOB_IFACE)


def assert_job_gone(api, path):
    assert not any(p.startswith(JOBS_PREFIX) for p in api.get_managed_objects()), \
        api.get_managed_objects().keys()
    assert path not in api.get_managed_objects()


def check_finished_job(recorder, path, success):
    """The job said Completed once, with success or a message, then
    vanished."""
    completed = recorder.completed(path)
    assert len(completed) == 1, completed
    assert completed[0][0] is success, completed
    if success:
        assert completed[0][1] == '', completed
    else:
        assert completed[0][1], 'Completed(false) without a message'
    assert recorder.index('Completed', path) < recorder.index('InterfacesRemoved', path)


def job_history(recorder, path, props):
    """The job at path that appeared with props: (its last properties,
    every BytesDone it showed, in order), from its PropertiesChanged."""
    final = dict(props)
    done = [props['BytesDone']]
    for changes in recorder.changed(path, JOB_IFACE):
        final.update(changes)
        if 'BytesDone' in changes:
            done.append(changes['BytesDone'])
    return final, done


# --- validation ---------------------------------------------------------------------

def test_job_id_is_validated_before_anything(env):
    api, obj = env.api, env.files
    r, w = os.pipe()
    try:
        expect_error('InvalidArgument', api.fd_call, obj, 'Download', '/etc/hostname', w,
                     {'job-id': s('x' * 256)}, contains='job-id')
        expect_error('InvalidArgument', api.fd_call, obj, 'Download', '/etc/hostname', w,
                     {'job-id': u(1)}, contains='job-id')
        expect_error('InvalidArgument', api.start_appliance, obj,
                     {'job-id': s('y' * 1000)}, contains='job-id')
    finally:
        os.close(r)
        os.close(w)
    # nothing was started: no appliance, no job
    assert api.state(obj) == 'stopped'
    assert not [p for p in api.get_managed_objects() if p.startswith(JOBS_PREFIX)]


# --- an appliance launch ------------------------------------------------------------

def test_launch_is_a_job(env, recorder):
    api, obj = env.api, env.files
    call = NotedCall(recorder, env.bus.connection, obj, DOMAIN_IFACE, 'StartAppliance',
                     GLib.Variant('(a{sv})', ({'job-id': GLib.Variant('s', 'launch-1')},)))
    found = wait_until(lambda: recorder.job_with_id('launch-1', 'appliance-launch'), 60,
                       'the launch job')
    path, props = found
    assert path.startswith(JOBS_PREFIX)
    assert props['Operation'] == 'appliance-launch'
    assert props['Objects'] == [obj]
    assert props['StartedByUid'] == os.getuid()
    assert props['Cancelable'] is True
    assert props['Progress'] == -1.0
    assert props['ExpectedEndTime'] == 0
    call.wait(LAUNCH_TIMEOUT)
    recorder.flush()
    assert api.state(obj) == 'running'
    wait_until(lambda: recorder.completed(path), 10, 'Completed of ' + path)
    recorder.wait_removed(path, JOB_IFACE)
    check_finished_job(recorder, path, True)
    assert recorder.index('Completed', path) < recorder.index('reply', None)
    assert_job_gone(api, path)


# --- a transfer: progress, then Cancel ----------------------------------------------

def zeros(size, chunk=4 * MIB):
    block = bytes(chunk)
    while size > 0:
        yield block[:min(size, chunk)]
        size -= chunk


def test_upload_job(env, recorder):
    api, obj = env.api, env.files
    writer = api.transfer_in(obj, 'Upload', BIG_PATH, zeros(BIG_SIZE),
                             {'size': t(BIG_SIZE), 'job-id': s('upload-1')})
    assert writer.size == BIG_SIZE and not writer.broken
    recorder.note('reply', None)
    path, props = wait_until(lambda: recorder.job_with_id('upload-1', 'files-upload'), 10,
                             'the upload job')
    assert props['Operation'] == 'files-upload'
    assert props['Objects'] == [obj]
    assert props['StartedByUid'] == os.getuid()
    wait_until(lambda: recorder.completed(path), 10, 'Completed of ' + path)
    recorder.wait_removed(path, JOB_IFACE)
    check_finished_job(recorder, path, True)
    # the last values were sent before Completed, and BytesDone grew
    final, done = job_history(recorder, path, props)
    assert (final['BytesDone'], final['BytesTotal'], final['Progress']) == \
        (BIG_SIZE, BIG_SIZE, 1.0), final
    assert done == sorted(done) and len(set(done)) > 2, done
    assert api.stat(obj, BIG_PATH)['size'] == BIG_SIZE
    # a write needs a read-write appliance: its launch was a job of its
    # own, with the caller's job-id, done before the upload was
    launch = recorder.job_with_id('upload-1', 'appliance-launch')
    assert launch is not None, recorder.jobs_added()
    check_finished_job(recorder, launch[0], True)
    assert recorder.index('Completed', launch[0]) < recorder.index('Completed', path)


class SlowReader(threading.Thread):
    """Reads a pipe 256 KiB every 0.1 s (2.5 MiB/s, 100 s for the file)
    until its end."""

    def __init__(self, fd):
        super().__init__(daemon=True)
        self.fd = fd
        self.size = 0
        self.eof = False

    def run(self):
        try:
            while True:
                data = os.read(self.fd, 256 * 1024)
                if not data:
                    self.eof = True
                    return
                self.size += len(data)
                time.sleep(0.1)
        finally:
            os.close(self.fd)


def fd_call_async(env, recorder, target, iface, method, args, fd):
    """method(args) with fd as its handle 0, sent on the recorder's
    connection without waiting, so that the reply is ordered with the
    job's signals; the reply (or error) is noted in recorder as 'reply'
    when it comes.  fd stays the caller's: the message has a copy."""
    outcome = {}
    fd_list = Gio.UnixFDList.new()
    fd_list.append(fd)

    def done(connection, result):
        try:
            connection.call_with_unix_fd_list_finish(result)
            outcome['reply'] = True
        except GLib.Error as error:
            outcome['error'] = dbus_error(error) or error
        recorder.note('reply', None)
        # the message went long ago: our copy of the fd goes too
        for copy in fd_list.steal_fds():
            os.close(copy)

    env.bus.connection.call_with_unix_fd_list(
        BUS_NAME, target, iface, method, args, None, Gio.DBusCallFlags.NONE,
        int(LAUNCH_TIMEOUT * 1000), fd_list, None, done)
    return outcome


def cancel_job_call(env, recorder, outcome, path, what):
    """Cancels the job at path of the fd call whose outcome fd_call_async()
    returned: the call fails with Cancelled, the job ends (Completed with
    success false) before that reply and leaves the ObjectManager.  Returns
    the seconds from Cancel to the reply."""
    cancelled_at = time.monotonic()
    call_method(env.bus.connection, path, JOB_IFACE, 'Cancel', GLib.Variant('(a{sv})', ({},)))
    wait_until(lambda: 'reply' in outcome or 'error' in outcome, PROMPT, f'the {what} reply')
    ended_after = time.monotonic() - cancelled_at
    error = outcome.get('error')
    assert isinstance(error, DBusError), outcome
    assert error.name == ERROR_PREFIX + 'Cancelled', error
    wait_until(lambda: recorder.removed(path), 10, 'InterfacesRemoved of ' + path)
    check_finished_job(recorder, path, False)
    assert recorder.index('Completed', path) < recorder.index('reply', None)
    return ended_after


def download_async(env, path, fd, options, recorder, volume=False):
    """Files.Download(path, fd) (or, with volume, Volume.Download(fd) of
    the volume object path) sent without waiting; the reply (or error) is
    noted in recorder as 'reply' when it comes."""
    if volume:
        target, iface, args = path, VOLUME_IFACE, GLib.Variant('(ha{sv})', (0, options))
    else:
        target, iface, args = env.files, FILES_IFACE, GLib.Variant('(sha{sv})',
                                                                   (path, 0, options))
    return fd_call_async(env, recorder, target, iface, 'Download', args, fd)


def test_download_progress_and_cancel(env, recorder):
    api, obj = env.api, env.files
    r, w = os.pipe()
    reader = SlowReader(r)
    reader.start()
    try:
        outcome = download_async(env, BIG_PATH, w, {'job-id': GLib.Variant('s', 'dl-1')},
                                 recorder)
    finally:
        os.close(w)  # the message holds its own copy
    path, props = wait_until(lambda: recorder.job_with_id('dl-1', 'files-download'),
                             LAUNCH_TIMEOUT, 'the download job')
    assert props['Operation'] == 'files-download'
    assert props['Objects'] == [obj]
    assert props['StartedByUid'] == os.getuid()
    assert props['Cancelable'] is True

    # BytesDone grows as the reader reads; the total is the file's size
    samples = []
    for _ in range(4):
        pump(1.0)
        samples.append(job_properties(api, path))
    done = [p['BytesDone'] for p in samples]
    assert all(a < b for a, b in zip(done, done[1:])), done
    last = samples[-1]
    assert last['BytesTotal'] == BIG_SIZE
    assert 0.0 < last['Progress'] < 1.0
    assert last['Rate'] > 0
    assert last['ExpectedEndTime'] > time.time() * 1e6
    assert 'reply' not in outcome and 'error' not in outcome

    # a bad option is refused, and the job goes on
    expect_error('InvalidArgument', call_method, env.bus.connection, path, JOB_IFACE,
                 'Cancel', GLib.Variant('(a{sv})', ({'force': GLib.Variant('b', True)},)))
    ended_after = cancel_job_call(env, recorder, outcome, path, 'Download')
    print('the download ended %.1f s after Cancel' % ended_after)
    assert_job_gone(api, path)
    # the service let go of the pipe: the reader sees its end, having got
    # less than the file
    reader.join(30)
    assert reader.eof and reader.size < BIG_SIZE, (reader.eof, reader.size)

    # a job that is gone cannot be cancelled any more
    with pytest.raises(DBusError) as info:
        call_method(env.bus.connection, path, JOB_IFACE, 'Cancel',
                    GLib.Variant('(a{sv})', ({},)))
    assert not info.value.name.startswith(ERROR_PREFIX + 'Cancelled'), info.value

    # the appliance is free for the next call, which has no job
    assert api.stat(obj, BIG_PATH)['size'] == BIG_SIZE
    assert not [p for p in api.get_managed_objects() if p.startswith(JOBS_PREFIX)]


def test_volume_download_progress_and_cancel(env, recorder):
    """A libvirt storage stream, no appliance: the same job, the same
    Cancel."""
    api, vol = env.api, env.volume
    size = os.path.getsize(env.volume_image)
    r, w = os.pipe()
    reader = SlowReader(r)
    reader.start()
    try:
        outcome = download_async(env, vol, w, {'job-id': GLib.Variant('s', 'vol-1')},
                                 recorder, volume=True)
    finally:
        os.close(w)
    path, props = wait_until(lambda: recorder.job_with_id('vol-1', 'volume-download'), 60,
                             'the volume download job')
    assert props['Objects'] == [vol]
    assert props['StartedByUid'] == os.getuid()
    samples = []
    for _ in range(3):
        pump(1.0)
        samples.append(job_properties(api, path))
    done = [p['BytesDone'] for p in samples]
    assert all(a < b for a, b in zip(done, done[1:])), done
    assert samples[-1]['BytesTotal'] == size
    assert 0.0 < samples[-1]['Progress'] < 1.0
    assert 'reply' not in outcome and 'error' not in outcome
    cancel_job_call(env, recorder, outcome, path, 'Download')
    reader.join(30)
    assert reader.eof and reader.size < size, (reader.eof, reader.size)
    assert_job_gone(api, path)


# --- TarOut, TarIn, Volume.Upload --------------------------------------------------

def wait_reply(outcome, what):
    wait_until(lambda: 'reply' in outcome or 'error' in outcome, LAUNCH_TIMEOUT, what)
    assert outcome.get('reply') is True, outcome


class PacedReader(threading.Thread):
    """Reads a pipe until its end, at most rate bytes a second on average
    (a pipe gives at most its capacity a read, so the pace is kept by
    sleeping, not by the size of the reads)."""

    def __init__(self, fd, rate):
        super().__init__(daemon=True)
        self.fd = fd
        self.rate = rate
        self.size = 0
        self.eof = False

    def run(self):
        start = time.monotonic()
        try:
            while True:
                data = os.read(self.fd, MIB)
                if not data:
                    self.eof = True
                    return
                self.size += len(data)
                ahead = self.size / self.rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
        finally:
            os.close(self.fd)


def finished_job(recorder, job_id, operation, obj):
    """The job of a call that has returned: it appeared with the right
    Operation, Objects and StartedByUid, said Completed(true, "") before
    the reply and vanished.  Returns (its last properties, every BytesDone
    it showed, in order)."""
    found = recorder.job_with_id(job_id, operation)
    assert found is not None, recorder.jobs_added()
    path, props = found
    assert path.startswith(JOBS_PREFIX)
    assert props['Operation'] == operation
    assert props['Objects'] == [obj]
    assert props['StartedByUid'] == os.getuid()
    assert props['Cancelable'] is True
    recorder.wait_removed(path, JOB_IFACE)
    check_finished_job(recorder, path, True)
    assert recorder.index('Completed', path) < recorder.index('reply', None)
    final, done = job_history(recorder, path, props)
    assert done == sorted(done), done
    return final, done


def ensure_big_file(env):
    """BIG_PATH, which test_upload_job writes, for a test run on its own."""
    try:
        env.api.stat(env.files, BIG_PATH)
    except DBusError as error:
        assert error.name == ERROR_PREFIX + 'NotFound', error
        env.api.transfer_in(env.files, 'Upload', BIG_PATH, zeros(BIG_SIZE),
                            {'size': t(BIG_SIZE)})


def paced(data, chunk, pause):
    """data in chunks, with a pause after each: the job lasts long enough
    for its BytesDone to be seen growing, whatever the machine's speed."""
    for offset in range(0, len(data), chunk):
        yield data[offset:offset + chunk]
        time.sleep(pause)


def tar_out_async(env, recorder, make_reader, job_id):
    """Files.TarOut of /srv (the big file there) with job_id, sent with
    fd_call_async() into a pipe whose read end make_reader(fd) gets, as a
    thread started before the call.  Returns (reader, outcome)."""
    ensure_big_file(env)
    r, w = os.pipe()
    reader = make_reader(r)
    reader.start()
    try:
        outcome = fd_call_async(env, recorder, env.files, FILES_IFACE, 'TarOut',
                                GLib.Variant('(sha{sv})', ('/srv', 0, {'job-id': s(job_id)})),
                                w)
    finally:
        os.close(w)
    return reader, outcome


def test_tar_out_job(env, recorder):
    api, obj = env.api, env.files
    # 40 MiB/s at most: at least 6 s for the big file in the archive
    reader, outcome = tar_out_async(env, recorder, lambda r: PacedReader(r, 40 * MIB),
                                    'tar-out-1')
    wait_reply(outcome, 'the TarOut reply')
    reader.join(30)
    assert reader.eof and reader.size > BIG_SIZE, (reader.eof, reader.size)
    final, done = finished_job(recorder, 'tar-out-1', 'files-tar-out', obj)
    # an archive's size is not known before it is made: no total, no
    # progress fraction, but every byte the reader got is counted
    assert final['BytesDone'] == reader.size, (final, reader.size)
    assert (final['BytesTotal'], final['Progress']) == (0, -1.0), final
    assert len(set(done)) > 2, done
    assert not [p for p in api.get_managed_objects() if p.startswith(JOBS_PREFIX)]


def test_tar_in_job(env, recorder):
    api, obj = env.api, env.files
    payload = os.urandom(16 * MIB)
    note = b'written by TarIn\n'
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode='w', format=tarfile.PAX_FORMAT) as tar:
        for name, data in (('jobs-in/big.bin', payload), ('jobs-in/note.txt', note)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    archive = archive.getvalue()
    target = '/srv/jobs-tar-in'
    api.mkdir(obj, target)

    r, w = os.pipe()
    # 1 MiB every 0.15 s: about 2.5 s for the archive
    writer = PipeWriter(w, paced(archive, MIB, 0.15))
    writer.start()
    try:
        outcome = fd_call_async(env, recorder, obj, FILES_IFACE, 'TarIn',
                                GLib.Variant('(sha{sv})', (target, 0, {'job-id': s('tar-in-1')})),
                                r)
    finally:
        os.close(r)
    wait_reply(outcome, 'the TarIn reply')
    writer.join(30)
    assert writer.size == len(archive) and not writer.broken and writer.error is None
    final, done = finished_job(recorder, 'tar-in-1', 'files-tar-in', obj)
    # the whole archive was read (and checked) before it was unpacked
    assert final['BytesDone'] == len(archive), (final, len(archive))
    assert (final['BytesTotal'], final['Progress']) == (0, -1.0), final
    assert len(set(done)) > 2, done
    assert api.stat(obj, target + '/jobs-in/big.bin')['size'] == len(payload)
    assert api.read_file(obj, target + '/jobs-in/note.txt') == note
    assert not [p for p in api.get_managed_objects() if p.startswith(JOBS_PREFIX)]


def test_volume_upload_job(env, recorder):
    """The volume's own bytes written back over it: a real transfer
    through libvirt's storage stream that leaves the volume as it was."""
    api, vol = env.api, env.volume
    with open(env.volume_image, 'rb') as f:
        data = f.read()
    size = len(data)
    assert size >= 16 * MIB, size
    r, w = os.pipe()
    # 64 chunks whatever the size, 0.05 s apart: at least 3 s
    writer = PipeWriter(w, paced(data, max(MIB, size // 64), 0.05))
    writer.start()
    try:
        outcome = fd_call_async(env, recorder, vol, VOLUME_IFACE, 'Upload',
                                GLib.Variant('(ha{sv})', (0, {'length': t(size),
                                                              'job-id': s('vol-up-1')})),
                                r)
    finally:
        os.close(r)
    wait_reply(outcome, 'the Volume.Upload reply')
    writer.join(30)
    assert writer.size == size and not writer.broken and writer.error is None
    final, done = finished_job(recorder, 'vol-up-1', 'volume-upload', vol)
    assert (final['BytesDone'], final['BytesTotal'], final['Progress']) == \
        (size, size, 1.0), final
    assert len(set(done)) > 2, done
    assert sha256_file(env.volume_image) == sha256(data)
    assert not [p for p in api.get_managed_objects() if p.startswith(JOBS_PREFIX)]


def test_tar_out_cancel(env, recorder):
    api, obj = env.api, env.files
    # 2.5 MiB/s: 100 s for the archive
    reader, outcome = tar_out_async(env, recorder, SlowReader, 'tar-out-2')
    path, props = wait_until(lambda: recorder.job_with_id('tar-out-2', 'files-tar-out'),
                             LAUNCH_TIMEOUT, 'the TarOut job')
    assert props['Operation'] == 'files-tar-out'
    assert props['Objects'] == [obj]
    wait_until(lambda: job_properties(api, path)['BytesDone'] > MIB, 60,
               'the TarOut job moving bytes')
    assert 'reply' not in outcome and 'error' not in outcome
    cancel_job_call(env, recorder, outcome, path, 'TarOut')
    assert_job_gone(api, path)
    reader.join(30)
    assert reader.eof and reader.size < BIG_SIZE, (reader.eof, reader.size)
    # the appliance is free for the next call
    assert api.stat(obj, BIG_PATH)['size'] == BIG_SIZE


# --- InspectDomains -----------------------------------------------------------------

def test_inspect_domains_job(env, recorder):
    api, obj = env.api, env.files
    options = {'refresh': GLib.Variant('b', True), 'job-id': GLib.Variant('s', 'insp-1')}
    call = NotedCall(recorder, env.bus.connection, MANAGER_PATH, MANAGER_IFACE,
                     'InspectDomains', GLib.Variant('(aoa{sv})', ([obj], options)),
                     '(a{oa{sv}})')
    (results,) = call.wait(LAUNCH_TIMEOUT)
    assert results[obj]['systems'], results
    path, props = wait_until(lambda: recorder.job_with_id('insp-1', 'inspect-domains'), 10,
                             'the InspectDomains job')
    assert props['Objects'] == [obj]
    assert props['StartedByUid'] == os.getuid()
    assert props['BytesTotal'] == 1
    wait_until(lambda: recorder.removed(path), 10, 'InterfacesRemoved of ' + path)
    check_finished_job(recorder, path, True)
    final, _ = job_history(recorder, path, props)
    # domains, not bytes: no rate
    assert (final['BytesDone'], final['Progress'], final['Rate']) == (1, 1.0, 0), final
    assert recorder.index('Completed', path) < recorder.index('reply', None)


# --- Cancel by another user, under polkit -------------------------------------------

@pytest.fixture(scope='module')
def pk(env, polkit):
    polkit.check(RULE_FILE)
    # one appliance at a time: a second launch waits for the first's slot
    stack = polkit.start(['--connect', SYSTEM_URI, '--force-tcg', '--idle-timeout', '60',
                          '--max-appliances', '1'],
                         CALL_CLIENT, rule=RULE_FILE, rule_text=RULE)
    return SimpleNamespace(stack=stack, bus=stack.bus, api=GuestFSClient(stack.bus.connection))


def test_cancel_by_another_user_needs_manage(env, pk):
    # the module's own service lets go of the disks first
    env.api.stop_appliance(env.files)
    obj = env.files  # the same domain, the same object path on the other service
    rec = JobRecorder(pk.bus.connection)
    try:
        call = PendingCall(pk.bus.connection, obj, DOMAIN_IFACE, 'StartAppliance',
                           GLib.Variant('(a{sv})', ({'job-id': GLib.Variant('s', 'pk-1')},)))
        path, props = wait_until(lambda: rec.job_with_id('pk-1', 'appliance-launch'), 60,
                                 'the launch job')
        assert props['StartedByUid'] == 0
        report = call_as_nobody(pk.stack, path, JOB_IFACE, 'Cancel', '(a{sv})', [{}])
        assert_denied(report)
        assert 'org.libvirt.guestfs.manage' in report.get('message', ''), report
        # nobody's refusal changed nothing: the launch goes on
        assert not call.done()
        assert path in pk.api.get_managed_objects()
        # the user who started it may cancel it without any rule about Cancel
        call_method(pk.bus.connection, path, JOB_IFACE, 'Cancel',
                    GLib.Variant('(a{sv})', ({},)))
        with pytest.raises(DBusError) as info:
            call.wait(PROMPT + 60)
        assert info.value.name == ERROR_PREFIX + 'Cancelled', info.value
        wait_until(lambda: rec.completed(path), 10, 'Completed of ' + path)
        assert rec.completed(path)[0][0] is False
        rec.wait_removed(path, JOB_IFACE)
        assert pk.api.state(obj) in ('failed', 'stopped')
    finally:
        rec.close()


def test_cancel_while_waiting_for_a_slot(env, pk):
    env.api.stop_appliance(env.files)
    obj = env.files
    volume = wait_until(lambda: pk.api.try_lookup_volume(env.volume_image), 30,
                        'the volume object on the polkit service')
    # the files appliance takes the service's only slot and keeps it while it runs
    pk.api.call(obj, DOMAIN_IFACE, 'StartAppliance', GLib.Variant('(a{sv})', ({},)),
                timeout=LAUNCH_TIMEOUT)
    assert pk.api.state(obj) == 'running'
    rec = JobRecorder(pk.bus.connection)
    try:
        call = PendingCall(pk.bus.connection, volume, VOLUME_IFACE, 'StartAppliance',
                           GLib.Variant('(a{sv})', ({'job-id': GLib.Variant('s', 'slot-2')},)))
        path, props = wait_until(lambda: rec.job_with_id('slot-2', 'appliance-launch'), 60,
                                 'the waiting launch job')
        time.sleep(2)  # it waits for the slot; nothing else happens
        assert not call.done()
        assert pk.api.state(obj) == 'running'
        call_method(pk.bus.connection, path, JOB_IFACE, 'Cancel',
                    GLib.Variant('(a{sv})', ({},)))
        # well before the files appliance's idle timeout (60 s) could free the slot
        with pytest.raises(DBusError) as info:
            call.wait(PROMPT)
        assert info.value.name == ERROR_PREFIX + 'Cancelled', info.value
        assert 'slot' in info.value.message, info.value
        wait_until(lambda: rec.completed(path), 10, 'Completed of ' + path)
        assert rec.completed(path)[0][0] is False
        rec.wait_removed(path, JOB_IFACE)
        assert pk.api.state(volume, VOLUME_IFACE) == 'stopped'
        # the slot's holder was not disturbed, and the queue is empty again
        assert pk.api.state(obj) == 'running'
        pk.api.stop_appliance(obj)
        pk.api.call(volume, VOLUME_IFACE, 'StartAppliance', GLib.Variant('(a{sv})', ({},)),
                    timeout=LAUNCH_TIMEOUT)
        assert pk.api.state(volume, VOLUME_IFACE) == 'running'
        pk.api.stop_appliance(volume, VOLUME_IFACE)
    finally:
        rec.close()
