# Faults in the middle of a call (issue 11, item 6): the appliance's qemu
# killed with SIGKILL during a Download, and libvirtd restarted during an
# Inspect.  The call ends with a named error (ApplianceFailed or
# Unavailable), the next call works, and the service's open fds and
# threads come back to what they were before (read from /proc).
#
# Real appliances under TCG on qemu:///system; libvirtd is restarted, so
# this module never runs beside another.  Every libvirt object is named
# lgd-test-* and removed at the end.

import os
import signal
import threading
import time
from types import SimpleNamespace

import pytest

from client import MIB, ERROR_PREFIX, DBusError, Files, wait_until
from conftest import (CONNECTION_LOST_WARNINGS, SYSTEM_URI, Daemon, LibvirtObjects,
                      appliance_domains, appliance_qemu_pid, ensure_libvirtd_running,
                      unique_name)
from filesenv import service_args
from images import ImageSet
from test_reconnect import stop_libvirtd

BIG = 16 * MIB
# GLib's pools let idle threads go after 15 s; the service's counts are
# read until they are back, within this
SETTLE_TIMEOUT = 90.0
FAULT_ERRORS = (ERROR_PREFIX + 'ApplianceFailed', ERROR_PREFIX + 'Unavailable')


@pytest.fixture(scope='module')
def env(private_bus):
    ensure_libvirtd_running()
    images = ImageSet.create()
    virt = LibvirtObjects()
    daemon = None
    api = None
    try:
        root = images.debian_root()
        name = unique_name('faults')
        dom = virt.define_domain(name, disks=[(root.path, 'raw')])
        env = SimpleNamespace(images=images, virt=virt, root=root, name=name,
                              uuid=dom.UUIDString())
        env.markers = [images.dir, env.uuid]
        daemon = Daemon(private_bus, [SYSTEM_URI], service_args('--idle-timeout', '900'),
                        expected_warnings=CONNECTION_LOST_WARNINGS + [
                            r'Cannot connect to qemu:///system: .*\(will keep trying\)'])
        api = Files(private_bus.connection, private_bus.address)
        env.daemon, env.api = daemon, api
        env.path = api.lookup_domain(name)
        # a file big enough that a Download of it is still going when its
        # reader pauses, and a warm service (its libvirt connections,
        # pools and caches made) whose counts are the baseline
        env.big = os.urandom(BIG)
        api.upload(env.path, '/lgd-big', env.big)
        api.stop_appliance(env.path)
        assert api.download(env.path, '/lgd-big') == env.big
        api.stop_appliance(env.path)
        env.baseline = settled_counts(daemon.process.pid, None)
        yield env
    finally:
        errors = []
        if daemon is not None:
            ensure_libvirtd_running()
            daemon.shut_down(errors)
        if api is not None:
            api.close()
        virt.reconnect()
        virt.cleanup_after_service([images.dir], errors)
        images.remove()
        assert not errors, '\n'.join(errors)


def counts(pid):
    """(open fds, threads) of the process."""
    fds = len(os.listdir('/proc/%d/fd' % pid))
    with open('/proc/%d/status' % pid) as f:
        threads = next(int(line.split()[1]) for line in f if line.startswith('Threads:'))
    return fds, threads


def settled_counts(pid, baseline):
    """The counts once they stop changing (and, with a baseline, are back
    to it): threads of GLib's pools linger for a while after their work."""
    last = [None]

    def settled():
        now = counts(pid)
        if baseline is not None:
            return now[0] <= baseline[0] and now[1] <= baseline[1]
        same = now == last[0]
        last[0] = now
        return same

    def poll():
        time.sleep(1)
        return settled()

    wait_until(poll, SETTLE_TIMEOUT,
               'the service\'s fds and threads to settle (baseline %s, now %s)'
               % (baseline, counts(pid)))
    return counts(pid)


def lookup_or_none(api, name):
    try:
        return api.lookup_domain(name)
    except DBusError:
        return None


def our_appliance(env):
    names = appliance_domains(env.virt.conn, env.markers)
    return names[0] if len(names) == 1 else None


def test_qemu_killed_during_download(env):
    """The reader pauses after the first MiB; the appliance's qemu is
    killed; the reader goes on: the Download ends with ApplianceFailed
    (not a short success), and the next call works."""
    api = env.api
    api.start_appliance(env.path)
    name = wait_until(lambda: our_appliance(env), 60, 'the appliance to run')
    r, w = os.pipe()
    outcome = {}

    def download():
        try:
            api.fd_call(env.path, 'Download', '/lgd-big', w)
        except DBusError as error:
            outcome['error'] = error
        else:
            outcome['ok'] = True
        finally:
            os.close(w)

    caller = threading.Thread(target=download, daemon=True)
    caller.start()
    received = 0
    while received < MIB:
        received += len(os.read(r, 65536))
    # the service is blocked on the pipe now: kill the appliance
    os.kill(appliance_qemu_pid(name), signal.SIGKILL)
    while os.read(r, MIB):
        pass
    os.close(r)
    caller.join(120)
    assert not caller.is_alive(), 'the Download did not end'
    assert 'ok' not in outcome, 'a Download whose appliance was killed succeeded'
    assert outcome['error'].name in FAULT_ERRORS, outcome['error']
    wait_until(lambda: our_appliance(env) is None, 60, 'the killed appliance to go')

    assert api.download(env.path, '/lgd-big') == env.big
    api.stop_appliance(env.path)
    settled_counts(env.daemon.process.pid, env.baseline)


def test_libvirtd_restarted_during_inspect(env):
    """libvirtd goes away while an Inspect launches the appliance: the call
    ends with ApplianceFailed or Unavailable; once libvirtd is back and the
    service has reconnected, Inspect works."""
    api = env.api
    pending = api.inspect_async(env.path)
    wait_until(lambda: pending.done() or our_appliance(env) is not None, 120,
               'the appliance to be launching')
    assert not pending.done(), 'the Inspect ended before libvirtd could be stopped'
    stop_libvirtd()
    try:
        with pytest.raises(DBusError) as error:
            pending.wait(300)
        assert error.value.name in FAULT_ERRORS, error.value
    finally:
        ensure_libvirtd_running()
    path = wait_until(lambda: lookup_or_none(api, env.name), 60,
                      'the domain to be published again')
    (system,) = api.inspect(path)
    assert system['distro'] == 'debian'
    api.stop_appliance(path)
    settled_counts(env.daemon.process.pid, env.baseline)
