# Authorization on the system bus with the real polkitd: a private
# dbus-daemon of type "system", a polkitd of our own on it, the service on
# it with --system, and a caller that is not root (nobody, through
# setpriv), all set up by polkitstack.py.  The test installs the service's
# polkit actions and its own rules, and removes them at the end.
#
# The appliances run against the real libvirtd (qemu:///system) under TCG.

import json
import os
import time
from types import SimpleNamespace

import pytest
from gi.repository import GLib

from conftest import (DOMAIN_IFACE, OBJECT_MANAGER_IFACE, PROPERTIES_IFACE, ROOT_PATH,
                      SYSTEM_URI, LibvirtObjects, appliance_domains, call_method,
                      ensure_libvirtd_running, unique_name)
from images import ImageSet
from polkitstack import RuleFile, Stack, check_prerequisites, run_cleanups

ERROR = 'org.libvirt.GuestFS.Error.'
# polkitd notices a changed rules file within a second or two.
RULE_RELOAD_TIMEOUT = 20.0
RULE = RuleFile('10-lgd-test.rules')

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
    check_prerequisites(RULE)
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

        stack = Stack(cleanups, ['--connect', SYSTEM_URI, '--force-tcg', '--idle-timeout', '900'],
                      CLIENT, rule=RULE)
        env.stack = stack
        env.bus = stack.bus
        env.dom = lookup_domain(env.bus, env.dom_name)
        env.other = lookup_domain(env.bus, env.other_name)
        yield env
    finally:
        errors = run_cleanups(cleanups)
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
        assert not os.path.exists(RULE.path)
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
    return env.stack.run_as_nobody([env.bus.address, path, iface, method, signature,
                                    json.dumps(list(args))])


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
    RULE.write(USER_RULE)

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

    RULE.write(DOMAIN_RULE % {'uri': SYSTEM_URI, 'domain': pk.dom_name})

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
    RULE.remove()

    def denied():
        report = inspect_as_nobody(pk, pk.dom)
        return report if report.get('error') == ERROR + 'NotAuthorized' else None
    wait_for_rules(pk, denied, 'the removal of the rule')
    assert_denied(start_as_nobody(pk, pk.dom))
