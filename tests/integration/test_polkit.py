# Authorization on the system bus with the real polkitd: a private
# dbus-daemon of type "system", a polkitd of our own on it, the service on
# it with --system, and a caller that is not root (nobody, through
# setpriv), all set up by polkitstack.py.  The test installs the service's
# polkit actions and its own rules, and removes them at the end.
#
# The appliances run against the real libvirtd (qemu:///system) under TCG.

import time
from types import SimpleNamespace

import pytest

from client import DOMAIN_IFACE, ERROR_PREFIX, OBJECT_MANAGER_IFACE, ROOT_PATH
from conftest import (SYSTEM_URI, LibvirtObjects, appliance_domains, ensure_libvirtd_running,
                      unique_name)
from images import ImageSet
from polkitstack import CALL_CLIENT, RuleFile, assert_denied, call_as_nobody, wait_for_rules

RULE = RuleFile('10-lgd-test.rules')

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
def pk(polkit):
    """The private system bus with polkitd and the service, two domains
    (one with a Debian image, one without disks), and a way to call the
    service as nobody."""
    polkit.check(RULE)
    ensure_libvirtd_running()
    images = ImageSet.create()
    polkit.add_cleanup(images.remove)
    env = SimpleNamespace(images=images, markers=polkit.markers)
    env.markers.append(images.dir)
    root = images.debian_root()
    env.root = root
    virt = LibvirtObjects()
    polkit.add_cleanup(virt.cleanup)
    env.conn = virt.conn
    env.dom_name = unique_name('pk')
    env.other_name = unique_name('pk-nodisk')
    env.markers.append(virt.define_domain(env.dom_name,
                                          disks=[(root.path, 'raw')]).UUIDString())
    virt.define_domain(env.other_name, disks=[])

    stack = polkit.start(['--connect', SYSTEM_URI, '--force-tcg', '--idle-timeout', '900'],
                         CALL_CLIENT, rule=RULE)
    env.stack = stack
    env.bus = stack.bus
    env.dom = stack.service.client.lookup_domain(env.dom_name)
    env.other = stack.service.client.lookup_domain(env.other_name)
    return env


def state(env, path):
    return env.stack.service.client.state(path)


def as_nobody(env, path, iface, method, signature='', args=()):
    return call_as_nobody(env.stack, path, iface, method, signature, args)


def inspect_as_nobody(env, path):
    return as_nobody(env, path, 'org.libvirt.GuestFS.Inspector', 'Inspect',
                     '(a{sv})', [{}])


def start_as_nobody(env, path):
    return as_nobody(env, path, DOMAIN_IFACE, 'StartAppliance', '(a{sv})', [{}])


def assert_debian(report, env):
    assert 'reply' in report, report
    (systems,) = report['reply']
    assert len(systems) == 1, systems
    system = systems[0]
    assert (system['distro'], system['major-version'], system['minor-version'],
            system['hostname']) == ('debian', 12, 5, env.root.hostname), system


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
        return None if report.get('error') == ERROR_PREFIX + 'NotAuthorized' else report
    report = wait_for_rules(granted, 'the rule granting inspect to nobody')
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
    assert report.get('error') == ERROR_PREFIX + 'Failed', report

    RULE.write(DOMAIN_RULE % {'uri': SYSTEM_URI, 'domain': pk.dom_name})

    def denied_elsewhere():
        report = inspect_as_nobody(pk, pk.other)
        return report if report.get('error') == ERROR_PREFIX + 'NotAuthorized' else None
    wait_for_rules(denied_elsewhere, 'the rule on the domain name')

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
        return report if report.get('error') == ERROR_PREFIX + 'NotAuthorized' else None
    wait_for_rules(denied, 'the removal of the rule')
    assert_denied(start_as_nobody(pk, pk.dom))
