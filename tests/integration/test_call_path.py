# The path every call takes (HACKING.md): what a client sees of it.
#
# - State a call changes reaches the bus before the call's reply: a
#   client that reads ApplianceState or OperatingSystems when StartAppliance
#   or Inspect returns sees the new value (a bus monitor records the order
#   in which the bus routed the messages).
# - An object that vanishes while calls are in flight on it (its session
#   busy launching, InspectDomains waiting on it) takes nothing down: the
#   calls end, the service keeps running and logs no critical. Under the
#   AddressSanitizer build this is the use-after-free check of the
#   session's life.
#
# Real appliances under TCG on qemu:///system; every libvirt object is
# named lgd-test-* and removed at the end.

import subprocess
import tempfile
import time

import pytest
from gi.repository import GLib

from conftest import (DOMAIN_IFACE, INSPECTOR_IFACE, MANAGER_IFACE, MANAGER_PATH,
                      SYSTEM_URI, Daemon, DBusError, LibvirtObjects, PendingCall,
                      _running_daemons, appliance_domains, call_method,
                      ensure_libvirtd_running, unique_name, wait_until)
from images import ImageSet

FILES_IFACE = 'org.libvirt.GuestFS.Files'
ERROR = 'org.libvirt.GuestFS.Error.'


@pytest.fixture(scope='module')
def images():
    ensure_libvirtd_running()
    images = ImageSet.create()
    try:
        images.root = images.debian_root()
        yield images
    finally:
        images.remove()


@pytest.fixture
def virt():
    virt = LibvirtObjects()
    try:
        yield virt
    finally:
        virt.reconnect()
        virt.cleanup()


@pytest.fixture
def service(private_bus, virt, images):
    """start(extra args) runs the service; it must stop cleanly and must
    not have logged a critical."""
    daemons = []

    def start(*extra):
        daemon = Daemon(private_bus, [SYSTEM_URI],
                        ['--force-tcg', '--idle-timeout', '600'] + list(extra))
        _running_daemons.append(daemon)
        daemons.append(daemon)
        return daemon

    yield start
    for daemon in daemons:
        _running_daemons.remove(daemon)
        log = daemon.log()
        daemon.stop()
        assert 'CRITICAL' not in log, log
    leftovers = appliance_domains(virt.conn, [images.dir])
    assert not leftovers, 'appliances left running: %s' % leftovers


def define(virt, images, what):
    """A domain on a copy of the Debian root image."""
    name = unique_name(what)
    image = images.copy(images.root.path, name + '.img')
    virt.define_domain(name, disks=[(image, 'raw')])
    return name


def lookup(connection, name):
    (path,) = call_method(connection, MANAGER_PATH, MANAGER_IFACE, 'LookupDomain',
                          GLib.Variant('(s)', (name,)), '(o)', timeout=30.0)
    return path


class BusMonitor:
    """dbus-monitor on the private bus: every message in the order the bus
    routed it, as (header line, body lines)."""

    def __init__(self, address):
        self.out = tempfile.NamedTemporaryFile(prefix='lgd-test-monitor-', mode='w+')
        # line-buffered, so that what the bus routed is in the file at once
        self.process = subprocess.Popen(['stdbuf', '-oL', 'dbus-monitor', '--address', address],
                                        stdout=self.out, stderr=subprocess.STDOUT)
        # it prints its own NameAcquired/NameLost once it monitors
        wait_until(lambda: self._read().strip() != '', 10, 'dbus-monitor to start')

    def _read(self):
        self.out.seek(0)
        return self.out.read()

    def messages(self):
        messages = []
        for line in self._read().splitlines():
            if line.startswith(('signal ', 'method call ', 'method return ', 'error ')):
                messages.append((line, []))
            elif messages:
                messages[-1][1].append(line)
        return messages

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.out.close()


@pytest.fixture
def monitor(private_bus):
    monitor = BusMonitor(private_bus.address)
    yield monitor
    monitor.stop()


def field(header, name):
    for word in header.replace(';', ' ').split():
        if word.startswith(name + '='):
            return word[len(name) + 1:]
    return None


def reply_index(messages, member, path):
    """Where the reply to the (one) call of member on path stands."""
    calls = [(field(h, 'sender'), field(h, 'serial')) for h, _ in messages
             if h.startswith('method call ') and field(h, 'member') == member
             and field(h, 'path') == path]
    assert len(calls) == 1, calls
    sender, serial = calls[0]
    for i, (header, _) in enumerate(messages):
        if (header.startswith(('method return ', 'error ')) and
                field(header, 'reply_serial') == serial and
                field(header, 'destination') == sender):
            return i
    raise AssertionError('no reply to %s on %s in the monitor output' % (member, path))


def has_reply(messages, member, path):
    try:
        reply_index(messages, member, path)
        return True
    except AssertionError:
        return False


def change_indexes(messages, path, needle):
    """Where PropertiesChanged signals of path that mention needle stand."""
    return [i for i, (header, body) in enumerate(messages)
            if header.startswith('signal ') and field(header, 'member') == 'PropertiesChanged'
            and field(header, 'path') == path and needle in '\n'.join(body)]


def test_properties_changed_before_reply(private_bus, virt, images, service, monitor):
    service()
    connection = private_bus.connection
    path = wait_published(connection, define(virt, images, 'order'))

    call_method(connection, path, DOMAIN_IFACE, 'StartAppliance',
                GLib.Variant('(a{sv})', ({},)), timeout=600.0)
    (systems,) = call_method(connection, path, INSPECTOR_IFACE, 'Inspect',
                             GLib.Variant('(a{sv})', ({},)), '(aa{sv})', timeout=600.0)
    assert systems and systems[0]['distro'] == 'debian'
    call_method(connection, path, DOMAIN_IFACE, 'StopAppliance', timeout=60.0)

    wait_until(lambda: has_reply(monitor.messages(), 'StopAppliance', path), 10,
               'the monitor to see the last reply')
    messages = monitor.messages()
    started = reply_index(messages, 'StartAppliance', path)
    running = change_indexes(messages, path, '"running"')
    assert running and running[0] < started, (
        'ApplianceState "running" (at %s) must reach the bus before the reply to '
        'StartAppliance (at %d)' % (running, started))
    inspected = reply_index(messages, 'Inspect', path)
    systems_changed = [i for i in change_indexes(messages, path, 'OperatingSystems')
                       if i > started]
    assert systems_changed and systems_changed[0] < inspected, (
        'OperatingSystems (at %s) must reach the bus before the reply to Inspect '
        '(at %d)' % (systems_changed, inspected))
    stopped = reply_index(messages, 'StopAppliance', path)
    assert [i for i in change_indexes(messages, path, '"stopped"') if inspected < i < stopped]


def ended(pending):
    """The reply, or the D-Bus error: either is fine, but it must be ours."""
    try:
        return pending.wait(600.0)
    except DBusError as error:
        assert error.name.startswith(ERROR), str(error)
        return error


@pytest.mark.parametrize('batch', ['--no-batch-inspection', '--batch-inspection'])
def test_undefine_while_calls_are_in_flight(private_bus, virt, images, service, batch):
    daemon = service(batch)
    connection = private_bus.connection
    name = define(virt, images, 'vanish')
    path = wait_published(connection, name)

    read = PendingCall(connection, path, FILES_IFACE, 'ReadDir',
                       GLib.Variant('(sa{sv})', ('/', {})), '(aa{sv})')
    batch_call = PendingCall(connection, MANAGER_PATH, MANAGER_IFACE, 'InspectDomains',
                             GLib.Variant('(aoa{sv})', ([path], {'refresh': GLib.Variant('b', True)})),
                             '(a{oa{sv}})')
    # the session is launching the appliance for ReadDir
    wait_until(lambda: call_method(connection, path, 'org.freedesktop.DBus.Properties',
                                   'Get', GLib.Variant('(ss)', (DOMAIN_IFACE, 'ApplianceState')),
                                   '(v)')[0] == 'starting', 60, 'the appliance to start')
    time.sleep(1)
    virt.conn.lookupByName(name).undefine()
    wait_until(lambda: not _published(connection, name), 30, 'the object to vanish')

    ended(read)
    result = ended(batch_call)
    if not isinstance(result, DBusError):
        assert list(result[0]) == [path]
    assert daemon.is_running()
    (version,) = call_method(connection, MANAGER_PATH, 'org.freedesktop.DBus.Properties',
                             'Get', GLib.Variant('(ss)', (MANAGER_IFACE, 'Version')), '(v)')
    assert version
    # the appliance of the vanished object stops
    wait_until(lambda: not appliance_domains(virt.conn, [images.dir]), 120,
               'the appliance of the vanished domain to stop')


def wait_published(connection, name):
    """The object path of domain name, once the service has published it."""
    wait_until(lambda: _published(connection, name), 30, 'the object of ' + name)
    return lookup(connection, name)


def _published(connection, name):
    try:
        lookup(connection, name)
        return True
    except DBusError as error:
        assert error.name == ERROR + 'NotFound', str(error)
        return False


def test_sigterm_cancels_launches(private_bus, virt, images):
    """SIGTERM while appliances launch: the launches are cancelled (their
    watchdogs destroy the appliances) rather than waited for, so the
    service exits within Daemon.stop()'s bound (15 s, less than a TCG
    launch takes) with status 0, and no appliance is left running."""
    daemon = Daemon(private_bus, [SYSTEM_URI], ['--force-tcg', '--idle-timeout', '600'])
    _running_daemons.append(daemon)
    try:
        connection = private_bus.connection
        names = [define(virt, images, 'term%d' % i) for i in range(2)]
        paths = [wait_published(connection, name) for name in names]
        # a shut-off domain's appliance reads its disks through a share
        # named after the domain's UUID
        markers = [images.dir] + [virt.conn.lookupByName(name).UUIDString() for name in names]
        calls = [PendingCall(connection, path, DOMAIN_IFACE, 'StartAppliance',
                             GLib.Variant('(a{sv})', ({},)), timeout=600.0) for path in paths]
        wait_until(lambda: len(appliance_domains(virt.conn, markers)) == 2
                   or any(call.done() for call in calls), 300,
                   'both appliances to be launching')
        assert not any(call.done() for call in calls), 'a launch ended before SIGTERM'
        daemon.stop()
    finally:
        if daemon in _running_daemons:
            _running_daemons.remove(daemon)
            daemon.process.kill()
    for call in calls:
        wait_until(call.done, 30, 'the end of ' + call.what)
    wait_until(lambda: not appliance_domains(virt.conn, markers), 30,
               'the cancelled appliances to go away')
