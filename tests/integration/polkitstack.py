# The service under the real polkitd, for the tests where authorization is
# the point (test_polkit, test_files_polkit, test_volume_stream, test_batch):
# a private dbus-daemon of type "system", a polkitd of our own on it, the
# service on it with --system, the service's polkit actions installed where
# polkitd reads them, rules files of the test's own, and a client script
# run as nobody (through setpriv) that prints what came of its calls as
# JSON.  Modules get it from conftest's polkit fixture (a Stacks), which
# undoes everything at the end of the module.

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import (Daemon, LibvirtObjects, PrivateBus, daemon_binary,
                      destroy_leftover_appliances, wait_until)

POLKIT_NAME = 'org.freedesktop.PolicyKit1'
POLKITD = '/usr/lib/polkit-1/polkitd'
ACTIONS_DIR = '/usr/share/polkit-1/actions'
POLICY_NAME = 'org.libvirt.guestfs.policy'
RULES_DIR = '/etc/polkit-1/rules.d'
NOBODY_UID = 65534
# The service shuts its appliances down on exit: give it the time to.
STOP_TIMEOUT = 90.0
# polkitd notices a changed rules file within a second or two.
RULE_RELOAD_TIMEOUT = 20.0
ERROR_PREFIX = 'org.libvirt.GuestFS.Error.'


def fail(message):
    pytest.fail(message, pytrace=False)


class Process:
    """polkitd, with its output in a log file."""

    def __init__(self, args, env, what):
        self.what = what
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

    def stop(self, timeout=15):
        try:
            if self.process.poll() is not None:
                return
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError('%s did not exit within %d s of SIGTERM:\n%s'
                                     % (self.what, timeout, self.log())) from None
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
    """The system bus, polkitd and the service (a conftest.Daemon started
    with --system --verbose and SERVICE_ARGS), the policy installed, and
    CLIENT_SOURCE written where nobody can run it.  Whatever is started is
    undone by CLEANUPS, also when starting fails half-way.  Made by
    Stacks.start()."""

    def __init__(self, cleanups, service_args, client_source, client_name='client.py',
                 expected_warnings=()):
        install = PolicyInstall(built_policy())
        cleanups.append(install.remove)

        self.bus = PrivateBus(system=True)
        cleanups.append(self.bus.stop)
        self.clean_env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin',
                          'DBUS_SYSTEM_BUS_ADDRESS': self.bus.address, 'LANG': 'C.UTF-8'}
        polkitd = Process([POLKITD, '--no-debug'], self.clean_env, 'polkitd')
        cleanups.append(polkitd.stop)
        polkitd.wait_owner(self.bus, POLKIT_NAME)
        self.polkitd = polkitd

        self.service = Daemon(self.bus, [], service_args, system=True,
                              expected_warnings=expected_warnings, stop_timeout=STOP_TIMEOUT)
        cleanups.append(self.service.stop)

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


class Stacks:
    """What conftest's polkit fixture gives a module: start() checks the
    prerequisites, writes the module's rule (before polkitd starts, which
    then applies it at once) and puts up a Stack; add_cleanup() registers
    what the module built before (images, libvirt objects), to be undone
    after the stacks; finish() undoes it all, checks that no appliance of
    markers is left running and that the rule is gone, and fails on any
    error."""

    def __init__(self):
        self.cleanups = []
        self.markers = []
        self.rules = []

    def add_cleanup(self, func):
        self.cleanups.append(func)

    def check(self, rule=None):
        """Fails at once (before images are built) when start() would."""
        check_prerequisites(rule)

    def start(self, service_args, client_source, client_name='client.py', rule=None,
              rule_text=None, expected_warnings=()):
        check_prerequisites(rule)
        if rule is not None:
            self.rules.append(rule)
            self.cleanups.append(rule.remove)
            if rule_text is not None:
                rule.write(rule_text)
        return Stack(self.cleanups, service_args, client_source, client_name,
                     expected_warnings=expected_warnings)

    def finish(self):
        errors = run_cleanups(self.cleanups)
        if self.markers:
            try:
                conn = LibvirtObjects().conn
                destroy_leftover_appliances(conn, self.markers, errors)
                conn.close()
            except Exception as error:
                errors.append('checking for appliances: %s' % error)
        for rule in self.rules:
            if os.path.exists(rule.path):
                errors.append('%s is still there' % rule.path)
        assert not errors, '\n'.join(errors)


# Runs as nobody: one call (address, path, iface, method, signature and the
# arguments as a JSON list), and what came of it on stdout as JSON.
CALL_CLIENT = r'''
import json, os, sys
from gi.repository import Gio, GLib

address, path, iface, method, signature, args = sys.argv[1:7]
result = {'uid': os.getuid(), 'euid': os.geteuid(), 'groups': os.getgroups()}
try:
    bus = Gio.DBusConnection.new_for_address_sync(
        address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
    params = GLib.Variant(signature, tuple(json.loads(args))) if signature else None
    reply = bus.call_sync('org.libvirt.GuestFS', path, iface, method, params,
                          None, Gio.DBusCallFlags.NONE, 600000, None)
    result['reply'] = reply.unpack()
except GLib.Error as error:
    name = Gio.DBusError.get_remote_error(error)
    Gio.DBusError.strip_remote_error(error)
    result['error'] = name or 'local: ' + str(error)
    result['message'] = error.message
print(json.dumps(result, default=lambda value: repr(value)))
'''


def call_as_nobody(stack, path, iface, method, signature='', args=()):
    """Calls the service of stack (started with CALL_CLIENT) as user
    nobody; returns the client's report: 'reply' or 'error' (the D-Bus
    error name) and 'message'."""
    return stack.run_as_nobody([stack.bus.address, path, iface, method, signature,
                                json.dumps(list(args))])


def assert_denied(report):
    """A report of the nobody client: the call was denied."""
    assert report.get('error') == ERROR_PREFIX + 'NotAuthorized', report


def wait_for_rules(check, what):
    """Calls check() until it returns a report (not None): polkitd reloads
    rules on its own schedule."""
    deadline = time.monotonic() + RULE_RELOAD_TIMEOUT
    while True:
        report = check()
        if report is not None:
            return report
        if time.monotonic() > deadline:
            raise AssertionError('polkitd did not apply %s within %.0f s'
                                 % (what, RULE_RELOAD_TIMEOUT))
        time.sleep(0.5)
