# Authorization on the system bus with the real polkitd: a private
# dbus-daemon of type "system", a polkitd of our own on it, the service on
# it with --system, and a caller that is not root (nobody, through
# setpriv).  The test installs the service's polkit actions and its own
# rules, and removes them at the end.
#
# The appliances run against the real libvirtd (qemu:///system) under TCG.

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from types import SimpleNamespace

import pytest
from gi.repository import Gio, GLib

from conftest import (BUS_NAME, DOMAIN_IFACE, OBJECT_MANAGER_IFACE, PROPERTIES_IFACE,
                      ROOT_PATH, SYSTEM_URI, LibvirtObjects,
                      _running_daemons, appliance_domains, call_method,
                      daemon_binary, ensure_libvirtd_running, unique_name,
                      wait_until)
from images import ImageSet

POLKIT_NAME = 'org.freedesktop.PolicyKit1'
POLKITD = '/usr/lib/polkit-1/polkitd'
ACTIONS_DIR = '/usr/share/polkit-1/actions'
POLICY_NAME = 'org.libvirt.guestfs.policy'
RULES_DIR = '/etc/polkit-1/rules.d'
RULE_FILE = os.path.join(RULES_DIR, '10-lgd-test.rules')
ERROR = 'org.libvirt.GuestFS.Error.'
NOBODY_UID = 65534
# polkitd notices a changed rules file within a second or two.
RULE_RELOAD_TIMEOUT = 20.0
STOP_TIMEOUT = 90.0

SYSTEM_BUS_CONFIG = '''<!DOCTYPE busconfig PUBLIC
 "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%(socket)s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
'''

# Runs as nobody: one call, and what came of it on stdout as JSON.
CLIENT = r'''
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


def fail(message):
    pytest.fail(message, pytrace=False)


class SystemBus:
    """A dbus-daemon of type system, on a socket that every user can reach."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='lgd-test-sysbus-')
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, 'system_bus_socket')
        config = os.path.join(self.dir, 'system.conf')
        with open(config, 'w') as f:
            f.write(SYSTEM_BUS_CONFIG % {'socket': self.socket})
        self.process = subprocess.Popen(
            ['dbus-daemon', '--config-file=' + config, '--nofork', '--print-address=1'],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        self.address = self.process.stdout.readline().strip()
        if not self.address:
            self.process.kill()
            raise AssertionError('dbus-daemon printed no address (exit %r)'
                                 % self.process.wait())
        self.connection = Gio.DBusConnection.new_for_address_sync(
            self.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
            | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)

    def name_has_owner(self, name):
        (owned,) = call_method(self.connection, '/org/freedesktop/DBus',
                               'org.freedesktop.DBus', 'NameHasOwner',
                               GLib.Variant('(s)', (name,)), '(b)', timeout=10,
                               destination='org.freedesktop.DBus')
        return owned

    def stop(self):
        self.connection.close_sync(None)
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


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


def write_rule(text):
    """Replaces our rules file at once (polkitd reads only *.rules)."""
    temporary = os.path.join(RULES_DIR, '.10-lgd-test.rules.tmp')
    with open(temporary, 'w') as f:
        f.write(text)
    os.chmod(temporary, 0o644)
    os.rename(temporary, RULE_FILE)


def remove_rule():
    for path in (RULE_FILE, os.path.join(RULES_DIR, '.10-lgd-test.rules.tmp')):
        if os.path.exists(path):
            os.unlink(path)


USER_RULE = '''// lgd-test: nobody may inspect (removed by the test)
polkit.addRule(function(action, subject) {
    if (action.id == "org.libvirt.guestfs.inspect" && subject.user == "nobody") {
        return polkit.Result.YES;
    }
});
'''

DOMAIN_RULE = '''// lgd-test: nobody may inspect one domain (removed by the test)
polkit.addRule(function(action, subject) {
    if (action.id == "org.libvirt.guestfs.inspect" && subject.user == "nobody" &&
        action.lookup("connection") == "%(uri)s" &&
        action.lookup("domain") == "%(domain)s") {
        return polkit.Result.YES;
    }
});
'''


@pytest.fixture(scope='module')
def pk():
    """The private system bus with polkitd and the service, two domains
    (one with a Debian image, one without disks), and a way to call the
    service as nobody."""
    ensure_libvirtd_running()
    if os.path.exists(RULE_FILE):
        fail('%s exists: another test run is using it' % RULE_FILE)
    policy = built_policy()
    for tool in ('setpriv', 'dbus-daemon', POLKITD):
        if shutil.which(tool) is None:
            fail('%s is missing' % tool)

    images = ImageSet.create()
    cleanups = []
    env = SimpleNamespace(images=images, markers=[images.dir])
    try:
        root = images.debian_root()
        env.root = root
        virt = LibvirtObjects()
        cleanups.append(virt.cleanup)
        env.conn = virt.conn
        env.dom_name = unique_name('pk')
        env.other_name = unique_name('pk-nodisk')
        env.markers.append(virt.define_domain(env.dom_name,
                                              disks=[(root.path, 'raw')]).UUIDString())
        virt.define_domain(env.other_name, disks=[])

        install = PolicyInstall(policy)
        cleanups.append(install.remove)
        cleanups.append(remove_rule)

        bus = SystemBus()
        cleanups.append(bus.stop)
        env.bus = bus
        clean_env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin',
                     'DBUS_SYSTEM_BUS_ADDRESS': bus.address,
                     'LANG': 'C.UTF-8'}
        polkitd = Process([POLKITD, '--no-debug'], clean_env, 'polkitd')
        cleanups.append(polkitd.stop)
        polkitd.wait_owner(bus, POLKIT_NAME)

        service = Process([daemon_binary(), '--system', '--verbose',
                           '--connect', SYSTEM_URI, '--force-tcg',
                           '--idle-timeout', '900'],
                          dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address),
                          'libvirt-guestfs-dbus --system')
        _running_daemons.append(service)

        def stop_service():
            _running_daemons.remove(service)
            # Appliances are shut down on exit: give it the time to.
            service.stop(timeout=STOP_TIMEOUT, must_exit_cleanly=True)
        cleanups.append(stop_service)
        service.wait_owner(bus, BUS_NAME)
        env.service = service

        env.client = os.path.join(bus.dir, 'client.py')
        with open(env.client, 'w') as f:
            f.write(CLIENT)
        os.chmod(env.client, 0o644)
        env.client_env = dict(clean_env, HOME='/nonexistent',
                              PYTHONDONTWRITEBYTECODE='1')
        env.dom = lookup_domain(bus, env.dom_name)
        env.other = lookup_domain(bus, env.other_name)
        yield env
    finally:
        errors = []
        for cleanup in reversed(cleanups):
            try:
                cleanup()
            except Exception as error:
                errors.append('%s: %s' % (getattr(cleanup, '__name__', cleanup), error))
        try:
            conn = LibvirtObjects().conn
            leftovers = appliance_domains(conn, env.markers)
            for name in leftovers:
                conn.lookupByName(name).destroy()
            if leftovers:
                errors.append('appliances left running: %s' % ', '.join(leftovers))
            conn.close()
        except Exception as error:
            errors.append('checking for appliances: %s' % error)
        images.remove()
        assert not os.path.exists(RULE_FILE)
        assert not errors, '\n'.join(errors)


def lookup_domain(bus, name):
    (path,) = call_method(bus.connection, '/org/libvirt/GuestFS/Manager',
                          'org.libvirt.GuestFS.Manager', 'LookupDomain',
                          GLib.Variant('(s)', (name,)), '(o)', timeout=30)
    return path


def state(env, path):
    (value,) = call_method(env.bus.connection, path, PROPERTIES_IFACE, 'Get',
                           GLib.Variant('(ss)', (DOMAIN_IFACE, 'ApplianceState')),
                           '(v)', timeout=10)
    return value


def as_nobody(env, path, iface, method, signature='', args=()):
    """Calls the service as user nobody; returns the client's report:
    'reply' or 'error' (the D-Bus error name) and 'message'."""
    result = subprocess.run(
        ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups',
         '/usr/bin/python3', env.client, env.bus.address, path, iface, method,
         signature, json.dumps(list(args))],
        env=env.client_env, cwd='/', stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=660)
    assert result.returncode == 0, 'the client failed:\n%s%s' % (result.stdout,
                                                                 result.stderr)
    report = json.loads(result.stdout)
    assert report['uid'] == NOBODY_UID and report['euid'] == NOBODY_UID, report
    assert report['groups'] in ([], [NOBODY_UID]), report
    return report


def inspect_as_nobody(env, path):
    return as_nobody(env, path, 'org.libvirt.GuestFS.Inspector', 'Inspect',
                     '(a{sv})', [{}])


def start_as_nobody(env, path):
    return as_nobody(env, path, DOMAIN_IFACE, 'StartAppliance', '(a{sv})', [{}])


def assert_denied(report):
    assert report.get('error') == ERROR + 'NotAuthorized', report


def assert_debian(report, env):
    assert 'reply' in report, report
    (systems,) = report['reply']
    assert len(systems) == 1, systems
    system = systems[0]
    assert (system['distro'], system['major-version'], system['minor-version'],
            system['hostname']) == ('debian', 12, 5, env.root.hostname), system


def wait_for_rules(env, check, what):
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


# --- The tests, in order: no rule, a rule for the user, a rule on details -----

def test_client_is_not_root(pk):
    report = as_nobody(pk, ROOT_PATH, OBJECT_MANAGER_IFACE, 'GetManagedObjects')
    # Reading the object tree needs no authorization.
    assert 'reply' in report, report
    assert pk.dom in report['reply'][0]


def test_denied_without_rule(pk):
    assert state(pk, pk.dom) == 'stopped'
    before = appliance_domains(pk.conn, pk.markers)
    assert before == []

    assert_denied(inspect_as_nobody(pk, pk.dom))
    assert_denied(as_nobody(pk, pk.dom, 'org.libvirt.GuestFS.Inspector',
                            'ListFilesystems', '(a{sv})', [{}]))
    assert_denied(start_as_nobody(pk, pk.dom))
    assert_denied(inspect_as_nobody(pk, pk.other))

    # A denied call starts no appliance.
    time.sleep(1)
    assert state(pk, pk.dom) == 'stopped'
    assert appliance_domains(pk.conn, pk.markers) == []


def test_rule_grants_inspect(pk):
    write_rule(USER_RULE)

    def granted():
        report = inspect_as_nobody(pk, pk.dom)
        return None if report.get('error') == ERROR + 'NotAuthorized' else report
    report = wait_for_rules(pk, granted, 'the rule granting inspect to nobody')
    assert_debian(report, pk)
    assert state(pk, pk.dom) == 'running'
    assert len(appliance_domains(pk.conn, pk.markers)) == 1

    # The other methods of the inspect action are granted too.
    report = as_nobody(pk, pk.dom, 'org.libvirt.GuestFS.Inspector', 'ListFilesystems',
                       '(a{sv})', [{}])
    assert 'reply' in report, report
    assert [fs['device'] for fs in report['reply'][0]] == ['/dev/sda']

    # Managing appliances is another action, still not granted.
    assert_denied(start_as_nobody(pk, pk.dom))
    assert_denied(as_nobody(pk, pk.dom, DOMAIN_IFACE, 'StopAppliance'))
    assert state(pk, pk.dom) == 'running'


def test_rule_sees_domain_details(pk):
    # Before: the user rule lets nobody reach the domain without disks,
    # which fails on its own (no appliance is started for it).
    report = inspect_as_nobody(pk, pk.other)
    assert report.get('error') == ERROR + 'Failed', report

    write_rule(DOMAIN_RULE % {'uri': SYSTEM_URI, 'domain': pk.dom_name})

    def denied_elsewhere():
        report = inspect_as_nobody(pk, pk.other)
        return report if report.get('error') == ERROR + 'NotAuthorized' else None
    wait_for_rules(pk, denied_elsewhere, 'the rule on the domain name')

    # The domain the rule names is still granted.
    assert_debian(inspect_as_nobody(pk, pk.dom), pk)
    report = as_nobody(pk, pk.dom, 'org.libvirt.GuestFS.Inspector', 'DiskUsage',
                       '(a{sv})', [{}])
    assert 'reply' in report, report
    assert [u['device'] for u in report['reply'][0]] == ['/dev/sda']
    assert state(pk, pk.other) != 'running'


def test_rule_removed_denies_again(pk):
    remove_rule()

    def denied():
        report = inspect_as_nobody(pk, pk.dom)
        return report if report.get('error') == ERROR + 'NotAuthorized' else None
    wait_for_rules(pk, denied, 'the removal of the rule')
    assert_denied(start_as_nobody(pk, pk.dom))
