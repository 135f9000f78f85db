# Job objects (issue 12, item 3): every long operation is published at
# /org/libvirt/GuestFS/jobs/N with org.libvirt.GuestFS.Job while it runs,
# carries the caller's job-id option, shows its progress, can be
# cancelled, and says Completed before it vanishes.
#
# On the "files" domain of filesenv.py, against the real libvirtd with a
# real appliance under TCG: an appliance launch, a 256 MiB Upload, then a
# Download of it into a pipe that the test reads slowly and cancels half
# way.  Then, under the real polkitd (polkitstack.py): a launch started by
# root that nobody may not cancel, and root may.

import os
import threading
import time
from types import SimpleNamespace

import pytest
from gi.repository import Gio, GLib

from client import (ERROR_PREFIX, FILES_IFACE, MANAGER_IFACE, MANAGER_PATH, MIB, DOMAIN_IFACE,
                    BUS_NAME, VOLUME_IFACE, DBusError,
                    GuestFSClient, PendingCall, call_method, dbus_error, expect_error,
                    pump, s, t, u, wait_until)
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
    if (action.id == "org.libvirt.guestfs.manage" && subject.user == "root")
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
    final = dict(props)
    done = [props['BytesDone']]
    for changes in recorder.changed(path, JOB_IFACE):
        final.update(changes)
        if 'BytesDone' in changes:
            done.append(changes['BytesDone'])
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


def download_async(env, path, fd, options, recorder, volume=False):
    """Files.Download(path, fd) (or, with volume, Volume.Download(fd) of
    the volume object path) sent without waiting; the reply (or error) is
    noted in recorder as 'reply' when it comes."""
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

    if volume:
        target, iface, args = path, VOLUME_IFACE, GLib.Variant('(ha{sv})', (0, options))
    else:
        target, iface, args = env.files, FILES_IFACE, GLib.Variant('(sha{sv})',
                                                                   (path, 0, options))
    env.bus.connection.call_with_unix_fd_list(
        BUS_NAME, target, iface, 'Download', args, None, Gio.DBusCallFlags.NONE,
        int(LAUNCH_TIMEOUT * 1000), fd_list, None, done)
    return outcome


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
    cancelled_at = time.monotonic()
    call_method(env.bus.connection, path, JOB_IFACE, 'Cancel', GLib.Variant('(a{sv})', ({},)))
    wait_until(lambda: 'reply' in outcome or 'error' in outcome, PROMPT, 'the Download reply')
    print('the download ended %.1f s after Cancel' % (time.monotonic() - cancelled_at))
    error = outcome.get('error')
    assert isinstance(error, DBusError), outcome
    assert error.name == ERROR_PREFIX + 'Cancelled', error
    wait_until(lambda: recorder.removed(path), 10, 'InterfacesRemoved of ' + path)
    check_finished_job(recorder, path, False)
    assert recorder.index('Completed', path) < recorder.index('reply', None)
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
    call_method(env.bus.connection, path, JOB_IFACE, 'Cancel', GLib.Variant('(a{sv})', ({},)))
    wait_until(lambda: 'reply' in outcome or 'error' in outcome, PROMPT, 'the Download reply')
    error = outcome.get('error')
    assert isinstance(error, DBusError), outcome
    assert error.name == ERROR_PREFIX + 'Cancelled', error
    wait_until(lambda: recorder.removed(path), 10, 'InterfacesRemoved of ' + path)
    check_finished_job(recorder, path, False)
    assert recorder.index('Completed', path) < recorder.index('reply', None)
    reader.join(30)
    assert reader.eof and reader.size < size, (reader.eof, reader.size)
    assert_job_gone(api, path)


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
    final = dict(props)
    for changes in recorder.changed(path, JOB_IFACE):
        final.update(changes)
    # domains, not bytes: no rate
    assert (final['BytesDone'], final['Progress'], final['Rate']) == (1, 1.0, 0), final
    assert recorder.index('Completed', path) < recorder.index('reply', None)


# --- Cancel by another user, under polkit -------------------------------------------

@pytest.fixture(scope='module')
def pk(env, polkit):
    polkit.check(RULE_FILE)
    stack = polkit.start(['--connect', SYSTEM_URI, '--force-tcg', '--idle-timeout', '60'],
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
