# The service under the real polkitd, for the tests where authorization is
# the point (test_polkit, test_files_polkit, test_volume_stream, test_batch):
# a private dbus-daemon of type "system", a polkitd of our own on it, the
# service on it with --system, the service's polkit actions installed where
# polkitd reads them, rules files of the test's own, and a client script
# run as nobody (through setpriv) that prints what came of its calls as
# JSON.  Everything is undone by the cleanups the caller runs.

import json
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

from conftest import BUS_NAME, PrivateBus, _running_daemons, daemon_binary, wait_until

POLKIT_NAME = 'org.freedesktop.PolicyKit1'
POLKITD = '/usr/lib/polkit-1/polkitd'
ACTIONS_DIR = '/usr/share/polkit-1/actions'
POLICY_NAME = 'org.libvirt.guestfs.policy'
RULES_DIR = '/etc/polkit-1/rules.d'
NOBODY_UID = 65534
# The service shuts its appliances down on exit: give it the time to.
STOP_TIMEOUT = 90.0


def fail(message):
    pytest.fail(message, pytrace=False)


class Process:
    """A daemon of ours with its output in a log file."""

    def __init__(self, args, env, what):
        self.what = what
        self.uris = [what]  # for the failure report of conftest
        self.log_file = tempfile.NamedTemporaryFile(prefix='lgd-test-%s-' % what,
                                                    suffix='.log', delete=False)
        self.process = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL,
                                        stdout=self.log_file, stderr=subprocess.STDOUT)

    def log(self):
        with open(self.log_file.name, errors='replace') as f:
            return f.read()

    def wait_owner(self, bus, name, timeout=30):
        try:
            wait_until(lambda: self.process.poll() is not None or bus.name_has_owner(name),
                       timeout, '%s to own %s' % (self.what, name))
        except AssertionError:
            raise AssertionError('%s did not own %s in %d s; its output:\n%s'
                                 % (self.what, name, timeout, self.log())) from None
        if self.process.poll() is not None:
            raise AssertionError('%s exited with status %d; its output:\n%s'
                                 % (self.what, self.process.returncode, self.log()))

    def stop(self, timeout=15, must_exit_cleanly=False):
        try:
            if self.process.poll() is not None:
                if must_exit_cleanly:
                    raise AssertionError('%s died during the test (status %d):\n%s'
                                         % (self.what, self.process.returncode, self.log()))
                return
            self.process.send_signal(signal.SIGTERM)
            try:
                status = self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError('%s did not exit within %d s of SIGTERM:\n%s'
                                     % (self.what, timeout, self.log())) from None
            if must_exit_cleanly:
                assert status == 0, ('%s exited with status %d on SIGTERM:\n%s'
                                     % (self.what, status, self.log()))
        finally:
            self.log_file.close()
            os.unlink(self.log_file.name)


def built_policy():
    """The merged policy next to the daemon in the build directory."""
    build_dir = os.path.dirname(os.path.dirname(daemon_binary()))
    path = os.path.join(build_dir, 'polkit', POLICY_NAME)
    if not os.path.isfile(path):
        fail('%s is missing: build the project (ninja) first' % path)
    return path


class PolicyInstall:
    """Puts the service's polkit actions where polkitd reads them, and
    puts back whatever was there before."""

    def __init__(self, source):
        self.target = os.path.join(ACTIONS_DIR, POLICY_NAME)
        self.backup = None
        self.added = False
        with open(source, 'rb') as f:
            wanted = f.read()
        if os.path.exists(self.target):
            with open(self.target, 'rb') as f:
                current = f.read()
            if current == wanted:
                return
            self.backup = current
        with open(self.target, 'wb') as f:
            f.write(wanted)
        os.chmod(self.target, 0o644)
        self.added = True

    def remove(self):
        if not self.added:
            return
        if self.backup is not None:
            with open(self.target, 'wb') as f:
                f.write(self.backup)
        else:
            os.unlink(self.target)


class RuleFile:
    """A rules file of one test module (never shared between modules, so
    that no module sees another's rules), replaced at once on write."""

    def __init__(self, name):
        self.path = os.path.join(RULES_DIR, name)
        # polkitd reads only *.rules: the temporary name is ignored
        self.temporary = os.path.join(RULES_DIR, '.%s.tmp' % name)

    def write(self, text):
        with open(self.temporary, 'w') as f:
            f.write(text)
        os.chmod(self.temporary, 0o644)
        os.rename(self.temporary, self.path)

    def remove(self):
        for path in (self.path, self.temporary):
            if os.path.exists(path):
                os.unlink(path)


def check_prerequisites(rule=None):
    """Fails (never skips) when something the stack needs is missing, or
    when another run is using RULE."""
    if rule is not None and os.path.exists(rule.path):
        fail('%s exists: another test run is using it' % rule.path)
    for tool in ('setpriv', 'dbus-daemon', POLKITD):
        if shutil.which(tool) is None:
            fail('%s is missing' % tool)
    return built_policy()


def run_cleanups(cleanups):
    """Runs CLEANUPS last first, all of them; returns their errors."""
    errors = []
    for cleanup in reversed(cleanups):
        try:
            cleanup()
        except Exception as error:
            errors.append('%s: %s' % (getattr(cleanup, '__name__', cleanup), error))
    return errors


class Stack:
    """The system bus, polkitd and the service (started with --system
    --verbose and SERVICE_ARGS), the policy installed and RULE (if any)
    removed at the end, and CLIENT_SOURCE written where nobody can run it.
    Whatever is started is undone by CLEANUPS, also when starting fails
    half-way.  check_prerequisites(RULE) comes first; a rule written before
    this applies from polkitd's start."""

    def __init__(self, cleanups, service_args, client_source, client_name='client.py',
                 rule=None):
        if rule is not None:
            cleanups.append(rule.remove)
        install = PolicyInstall(built_policy())
        cleanups.append(install.remove)

        self.bus = PrivateBus(system=True)
        cleanups.append(self.bus.stop)
        self.clean_env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin',
                          'DBUS_SYSTEM_BUS_ADDRESS': self.bus.address, 'LANG': 'C.UTF-8'}
        polkitd = Process([POLKITD, '--no-debug'], self.clean_env, 'polkitd')
        cleanups.append(polkitd.stop)
        polkitd.wait_owner(self.bus, POLKIT_NAME)

        service = Process([daemon_binary(), '--system', '--verbose'] + list(service_args),
                          dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus.address),
                          'libvirt-guestfs-dbus --system')
        _running_daemons.append(service)

        def stop_service():
            _running_daemons.remove(service)
            service.stop(timeout=STOP_TIMEOUT, must_exit_cleanly=True)
        cleanups.append(stop_service)
        service.wait_owner(self.bus, BUS_NAME)
        self.service = service

        self.client = os.path.join(self.bus.dir, client_name)
        with open(self.client, 'w') as f:
            f.write(client_source)
        os.chmod(self.client, 0o644)
        self.client_env = dict(self.clean_env, HOME='/nonexistent',
                               PYTHONDONTWRITEBYTECODE='1')

    def run_as_nobody(self, args, timeout=660):
        """Runs the client as nobody with ARGS; returns its JSON report,
        after checking that it ran as nobody with no other group."""
        result = subprocess.run(
            ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups',
             '/usr/bin/python3', self.client] + [str(arg) for arg in args],
            env=self.client_env, cwd='/', stdin=subprocess.DEVNULL, capture_output=True,
            text=True, timeout=timeout)
        assert result.returncode == 0, 'the client failed:\n%s%s' % (result.stdout,
                                                                     result.stderr)
        report = json.loads(result.stdout)
        assert report['uid'] == NOBODY_UID, report
        assert report.get('euid', NOBODY_UID) == NOBODY_UID, report
        assert report.get('groups', []) in ([], [NOBODY_UID]), report
        return report
