# Authorization has a bound and tells a refusal from a failure (issue 11,
# items 2 and 3): with the real polkitd on a private system bus
# (polkitstack.py) and a caller that is not root, a polkitd that never
# answers (stopped with SIGSTOP) gets the call refused with NotAuthorized
# saying so after --auth-timeout, while the service keeps answering
# others; a polkitd that is gone gets AuthorizationFailed, which is not a
# refusal; a caller with --max-calls-per-caller calls in progress gets
# Busy at once for the next; and either way nothing starts.  No appliance
# is needed: the calls never get past authorization.

import json
import os
import signal
import subprocess
from types import SimpleNamespace

import pytest

from client import (DOMAIN_IFACE, ERROR_PREFIX, INSPECTOR_IFACE, MANAGER_IFACE, MANAGER_PATH,
                    DBusError)
from conftest import (SYSTEM_URI, LibvirtObjects, appliance_domains, ensure_libvirtd_running,
                      unique_name, wait_until)
from polkitstack import (CALL_CLIENT, POLKIT_NAME, POLKITD, NOBODY_UID, Process,
                         assert_denied, call_as_nobody)

AUTH_TIMEOUT = 3
MAX_CALLS = 3
# The nobody client's own D-Bus timeout is 600 s: the service must answer
# long before that.
CLIENT_TIMEOUT = 120


@pytest.fixture(scope='module')
def env(polkit):
    polkit.check()
    ensure_libvirtd_running()
    virt = LibvirtObjects()
    polkit.add_cleanup(virt.cleanup)
    env = SimpleNamespace(conn=virt.conn, name=unique_name('authb'))
    env.uuid = virt.define_domain(env.name, disks=[]).UUIDString()
    polkit.markers.append(env.uuid)
    # libpolkit's own warning when polkitd, stopped, answers the check that
    # timed out before it gets to the cancellation of that check
    env.stack = polkit.start(['--connect', SYSTEM_URI, '--force-tcg',
                              '--auth-timeout', str(AUTH_TIMEOUT),
                              '--max-calls-per-caller', str(MAX_CALLS)], CALL_CLIENT,
                             expected_warnings=[r'Error cancelling authorization check: '
                                                r'.*No such cancellation_id'])
    env.api = env.stack.service.client
    env.path = env.api.lookup_domain(env.name)
    env.polkit = polkit
    return env


def inspect_as_nobody(env):
    return call_as_nobody(env.stack, env.path, INSPECTOR_IFACE, 'Inspect', '(a{sv})', [{}])


def assert_nothing_started(env):
    assert env.api.state(env.path) == 'stopped'
    assert not appliance_domains(env.conn, [env.uuid])


def test_denied_without_a_rule(env):
    """The baseline: polkitd answers, and says no."""
    report = inspect_as_nobody(env)
    assert_denied(report)
    assert 'no answer' not in report['message'], report
    assert_nothing_started(env)


def test_polkitd_that_never_answers(env):
    """A stopped polkitd: the call is refused after the timeout, with a
    message that says why; meanwhile the service answers other calls
    (the check holds no thread and not the main loop)."""
    polkitd = env.stack.polkitd.process
    os.kill(polkitd.pid, signal.SIGSTOP)
    try:
        caller = subprocess.Popen(
            ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups',
             '/usr/bin/python3', env.stack.client, env.stack.bus.address, env.path,
             INSPECTOR_IFACE, 'Inspect', '(a{sv})', json.dumps([{}])],
            env=env.stack.client_env, cwd='/', stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # while nobody's check waits on polkitd, root is served
            for _ in range(3):
                assert env.api.get_property(MANAGER_PATH, MANAGER_IFACE, 'Version')
            out, err = caller.communicate(timeout=CLIENT_TIMEOUT)
        finally:
            if caller.poll() is None:
                caller.kill()
                caller.wait()
    finally:
        os.kill(polkitd.pid, signal.SIGCONT)
    assert caller.returncode == 0, out + err
    report = json.loads(out)
    assert report['uid'] == NOBODY_UID, report
    assert report.get('error') == ERROR_PREFIX + 'NotAuthorized', report
    assert 'no answer within %d s' % AUTH_TIMEOUT in report['message'], report
    assert_nothing_started(env)
    # polkitd, running again, answers the next call
    assert_denied(inspect_as_nobody(env))


def test_calls_per_caller_bounded(env):
    """With MAX_CALLS of its calls waiting on a stopped polkitd, a caller's
    next call is refused with Busy at once; another caller is not; once
    they have ended, the caller is admitted again."""
    polkitd = env.stack.polkitd.process
    os.kill(polkitd.pid, signal.SIGSTOP)
    try:
        waiting = [env.api.inspect_async(env.path) for _ in range(MAX_CALLS)]
        refused = env.api.inspect_async(env.path)
        wait_until(refused.done, AUTH_TIMEOUT * 10, 'the reply to the call beyond the bound')
        assert not any(call.done() for call in waiting)
        with pytest.raises(DBusError) as error:
            refused.wait()
        assert error.value.name == ERROR_PREFIX + 'Busy', error.value
        assert '%d calls in progress' % MAX_CALLS in str(error.value), error.value
        # nobody's bound is its own: its call waits for polkit like root's
        report = inspect_as_nobody(env)
        assert report.get('error') == ERROR_PREFIX + 'NotAuthorized', report
        for call in waiting:
            with pytest.raises(DBusError) as error:
                call.wait(AUTH_TIMEOUT * 10)
            assert error.value.name == ERROR_PREFIX + 'NotAuthorized', error.value
    finally:
        os.kill(polkitd.pid, signal.SIGCONT)
    # admitted again (root, whom polkit authorizes, stops what is stopped)
    env.api.stop_appliance(env.path)
    assert_nothing_started(env)


def test_polkitd_gone(env):
    """No polkitd: AuthorizationFailed, not NotAuthorized; once polkitd is
    back, calls are decided again."""
    # its Process stops it again at the end, which is then a no-op
    env.stack.polkitd.process.terminate()
    env.stack.polkitd.process.wait(15)
    wait_until(lambda: not env.stack.bus.name_has_owner(POLKIT_NAME), 30,
               'polkitd to leave the bus')
    for method in ('Inspect', 'ListFilesystems'):
        report = call_as_nobody(env.stack, env.path, INSPECTOR_IFACE, method,
                                '(a{sv})', [{}])
        assert report.get('error') == ERROR_PREFIX + 'AuthorizationFailed', report
        assert 'Could not check authorization' in report['message'], report
    report = call_as_nobody(env.stack, env.path, DOMAIN_IFACE, 'StartAppliance',
                            '(a{sv})', [{}])
    assert report.get('error') == ERROR_PREFIX + 'AuthorizationFailed', report
    assert_nothing_started(env)

    polkitd = Process([POLKITD, '--no-debug'], env.stack.clean_env, 'polkitd')
    env.polkit.add_cleanup(polkitd.stop)
    polkitd.wait_owner(env.stack.bus, POLKIT_NAME)
    assert_denied(inspect_as_nobody(env))
    assert_nothing_started(env)
