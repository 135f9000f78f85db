# Fixtures for the integration tests: a private dbus-daemon, the built
# libvirt-guestfs-dbus on it, a small client for its API, a recorder of the
# signals it emits, and clean-up of whatever the tests create in libvirt.
#
# Run with /usr/bin/python3 (the Debian interpreter, which has gi and libvirt):
#   LGD_DAEMON=build/src/libvirt-guestfs-dbus /usr/bin/python3 -m pytest -v tests/integration

import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass

import pytest
from gi.repository import Gio, GLib

BUS_NAME = 'org.libvirt.GuestFS'
ROOT_PATH = '/org/libvirt/GuestFS'
MANAGER_PATH = ROOT_PATH + '/Manager'
MANAGER_IFACE = 'org.libvirt.GuestFS.Manager'
DOMAIN_IFACE = 'org.libvirt.GuestFS.Domain'
VOLUME_IFACE = 'org.libvirt.GuestFS.Volume'
OBJECT_MANAGER_IFACE = 'org.freedesktop.DBus.ObjectManager'
PROPERTIES_IFACE = 'org.freedesktop.DBus.Properties'
ERROR_PREFIX = 'org.libvirt.GuestFS.Error.'

SIGNAL_TIMEOUT = 10.0
DAEMON_START_TIMEOUT = 30.0
DAEMON_STOP_TIMEOUT = 15.0

SOURCE_DIR = os.path.dirname(os.path.abspath(__file__))
TOP_SOURCE_DIR = os.path.dirname(os.path.dirname(SOURCE_DIR))


# --- Object paths, computed independently of the daemon -------------------

def escape_path_element(text):
    """What g_dbus_escape_object_path() does: every byte of the UTF-8
    encoding other than an ASCII letter or digit becomes _xx."""
    out = []
    for byte in text.encode('utf-8'):
        char = chr(byte)
        if char.isascii() and char.isalnum():
            out.append(char)
        else:
            out.append('_%02x' % byte)
    return ''.join(out)


def unescape_path_element(element):
    """The inverse of escape_path_element (g_dbus_unescape_object_path)."""
    data = bytearray()
    i = 0
    while i < len(element):
        if element[i] == '_':
            data.append(int(element[i + 1:i + 3], 16))
            i += 3
        else:
            data.append(ord(element[i]))
            i += 1
    return data.decode('utf-8')


def connection_element(uri):
    """driver:///word -> driver_word; any other URI is escaped whole."""
    match = re.fullmatch(r'([A-Za-z0-9]+):///([A-Za-z0-9]+)', uri)
    if match:
        return '%s_%s' % match.groups()
    return escape_path_element(uri)


def domain_path(uri, uuid):
    return '%s/%s/domain/%s' % (ROOT_PATH, connection_element(uri),
                                escape_path_element(uuid))


def volume_path(uri, key):
    return '%s/%s/volume/%s' % (ROOT_PATH, connection_element(uri),
                                escape_path_element(key))


# --- Waiting ---------------------------------------------------------------

def wait_until(condition, timeout=SIGNAL_TIMEOUT, what='the condition'):
    """Dispatch D-Bus events until condition() returns a true value, which
    is returned.  Fails after timeout seconds."""
    context = GLib.MainContext.default()
    deadline = time.monotonic() + timeout
    while True:
        while context.pending():
            context.iteration(False)
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError('timed out after %.0f s waiting for %s'
                                 % (timeout, what))
        # Block until the next event, or for at most 50 ms so that
        # conditions on the world outside D-Bus are re-checked too.
        wakeup = GLib.timeout_source_new(50)
        wakeup.set_callback(lambda *args: False)
        wakeup.attach(context)
        context.iteration(True)
        wakeup.destroy()


# --- A client for the service ---------------------------------------------

class DBusError(Exception):
    """A D-Bus error reply, with its error name."""

    def __init__(self, name, message):
        super().__init__('%s: %s' % (name, message))
        self.name = name


def _call(connection, path, iface, method, args=None, reply_type=None,
          destination=BUS_NAME):
    try:
        reply = connection.call_sync(
            destination, path, iface, method, args,
            GLib.VariantType(reply_type) if reply_type else None,
            Gio.DBusCallFlags.NONE, 30000, None)
    except GLib.Error as error:
        name = Gio.DBusError.get_remote_error(error)
        if name is None:
            raise
        Gio.DBusError.strip_remote_error(error)
        raise DBusError(name, error.message) from None
    return reply.unpack() if reply is not None else None


class GuestFSClient:
    """The service's API, as a client program would use it."""

    def __init__(self, connection):
        self.connection = connection

    def get_managed_objects(self):
        (objects,) = _call(self.connection, ROOT_PATH, OBJECT_MANAGER_IFACE,
                           'GetManagedObjects', None, '(a{oa{sa{sv}}})')
        return objects

    def objects_with(self, iface):
        """{path: properties} of the objects implementing iface."""
        return {path: ifaces[iface]
                for path, ifaces in self.get_managed_objects().items()
                if iface in ifaces}

    def get_property(self, path, iface, name):
        (value,) = _call(self.connection, path, PROPERTIES_IFACE, 'Get',
                         GLib.Variant('(ss)', (iface, name)), '(v)')
        return value

    def get_all_properties(self, path, iface):
        (values,) = _call(self.connection, path, PROPERTIES_IFACE, 'GetAll',
                          GLib.Variant('(s)', (iface,)), '(a{sv})')
        return values

    def manager_property(self, name):
        return self.get_property(MANAGER_PATH, MANAGER_IFACE, name)

    def lookup_domain(self, name_or_uuid):
        (path,) = _call(self.connection, MANAGER_PATH, MANAGER_IFACE,
                        'LookupDomain', GLib.Variant('(s)', (name_or_uuid,)),
                        '(o)')
        return path

    def lookup_volume(self, path_or_key):
        (path,) = _call(self.connection, MANAGER_PATH, MANAGER_IFACE,
                        'LookupVolume', GLib.Variant('(s)', (path_or_key,)),
                        '(o)')
        return path


# --- Signals ---------------------------------------------------------------

@dataclass
class Signal:
    member: str
    path: str
    args: tuple


class SignalRecorder:
    """Records InterfacesAdded/InterfacesRemoved (on the root object) and
    PropertiesChanged (on any object) sent by the service."""

    MEMBERS = ('InterfacesAdded', 'InterfacesRemoved', 'PropertiesChanged')

    def __init__(self, connection):
        self.connection = connection
        self.signals = []
        self._ids = [
            connection.signal_subscribe(
                BUS_NAME, None, member, None, None,
                Gio.DBusSignalFlags.NONE, self._on_signal)
            for member in self.MEMBERS
        ]
        # A round trip to the bus: once answered, the bus has processed our
        # AddMatch rules, so no signal sent from now on can be missed.
        _call(connection, '/org/freedesktop/DBus', 'org.freedesktop.DBus',
              'GetId', None, '(s)', destination='org.freedesktop.DBus')

    def _on_signal(self, connection, sender, path, iface, member, params,
                   *user_data):
        args = params.unpack()
        if member in ('InterfacesAdded', 'InterfacesRemoved'):
            # Reported for the object they are about, not the root.
            self.signals.append(Signal(member, args[0], args[1:]))
        else:
            self.signals.append(Signal(member, path, args))

    def close(self):
        for sub_id in self._ids:
            self.connection.signal_unsubscribe(sub_id)
        self._ids = []

    def clear(self):
        """Forgets what was recorded so far (after dispatching it)."""
        self.flush()
        self.signals = []

    def flush(self):
        """Dispatch what has arrived so far."""
        context = GLib.MainContext.default()
        while context.pending():
            context.iteration(False)

    # Queries over what was recorded so far.
    def added(self, path):
        """The interfaces dicts of every InterfacesAdded for path."""
        return [s.args[0] for s in self.signals
                if s.member == 'InterfacesAdded' and s.path == path]

    def removed(self, path):
        """The interface lists of every InterfacesRemoved for path."""
        return [s.args[0] for s in self.signals
                if s.member == 'InterfacesRemoved' and s.path == path]

    def changed(self, path, iface):
        """The changed-properties dicts of every PropertiesChanged of
        iface on path (invalidated properties are not values; ignored)."""
        return [s.args[1] for s in self.signals
                if s.member == 'PropertiesChanged' and s.path == path
                and s.args[0] == iface]

    def about(self, path):
        return [s for s in self.signals if s.path == path]

    # Waiting for what should come.
    def wait_added(self, path, iface, timeout=SIGNAL_TIMEOUT):
        """Waits for InterfacesAdded of iface on path; returns the
        properties it carried for iface."""
        def found():
            for ifaces in self.added(path):
                if iface in ifaces:
                    return ifaces
            return None
        return wait_until(found, timeout,
                          'InterfacesAdded(%s) for %s' % (iface, path))[iface]

    def wait_removed(self, path, iface, timeout=SIGNAL_TIMEOUT):
        wait_until(lambda: any(iface in ifaces for ifaces in self.removed(path)),
                   timeout, 'InterfacesRemoved(%s) for %s' % (iface, path))

    def wait_changed(self, path, iface, name, value, timeout=SIGNAL_TIMEOUT):
        """Waits for a PropertiesChanged on path setting name to value."""
        wait_until(lambda: any(changes.get(name, object()) == value
                               for changes in self.changed(path, iface)),
                   timeout, 'PropertiesChanged %s.%s = %r on %s'
                   % (iface, name, value, path))


# --- Processes ---------------------------------------------------------------

# A bus that lets everybody do everything: %(type)s is session or system.
BUS_CONFIG = '''<!DOCTYPE busconfig PUBLIC
 "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>%(type)s</type>
  <listen>%(listen)s</listen>
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


class PrivateBus:
    """A dbus-daemon of our own, so tests never touch the real buses: a
    session bus, or with SYSTEM a bus of type system on a socket that
    every user can reach."""

    def __init__(self, system=False):
        self.dir = tempfile.mkdtemp(prefix='lgd-test-sysbus-' if system else 'lgd-test-bus-')
        if system:
            os.chmod(self.dir, 0o755)
            self.socket = os.path.join(self.dir, 'system_bus_socket')
            listen = 'unix:path=' + self.socket
        else:
            listen = 'unix:tmpdir=' + self.dir
        config = os.path.join(self.dir, 'bus.conf')
        with open(config, 'w') as f:
            f.write(BUS_CONFIG % {'type': 'system' if system else 'session', 'listen': listen})
        self.process = subprocess.Popen(
            ['dbus-daemon', '--config-file=' + config, '--nofork',
             '--print-address=1'],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        self.address = self.process.stdout.readline().strip()
        if not self.address:
            self.process.kill()
            raise AssertionError('dbus-daemon printed no address (exit %r)'
                                 % self.process.wait())
        self.connection = Gio.DBusConnection.new_for_address_sync(
            self.address,
            Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
            | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
            None, None)

    def name_has_owner(self, name):
        (owned,) = _call(self.connection, '/org/freedesktop/DBus',
                         'org.freedesktop.DBus', 'NameHasOwner',
                         GLib.Variant('(s)', (name,)), '(b)',
                         destination='org.freedesktop.DBus')
        return owned

    def stop(self):
        self.connection.close_sync(None)
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def daemon_binary():
    path = os.environ.get('LGD_DAEMON')
    if not path:
        pytest.fail('LGD_DAEMON is not set: point it at the built daemon, '
                    'e.g. LGD_DAEMON=build/src/libvirt-guestfs-dbus',
                    pytrace=False)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail('LGD_DAEMON=%s is not an executable file' % path,
                    pytrace=False)
    return os.path.abspath(path)


class Daemon:
    """libvirt-guestfs-dbus running on the private bus."""

    def __init__(self, bus, uris, extra_args=()):
        self.bus = bus
        self.uris = list(uris)
        args = [daemon_binary(), '--session', '--verbose']
        for uri in self.uris:
            args += ['--connect', uri]
        args += list(extra_args)
        self.args = args
        self.log_file = tempfile.NamedTemporaryFile(
            prefix='lgd-test-daemon-', suffix='.log', delete=False)
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=bus.address)
        self.process = subprocess.Popen(
            args, env=env, stdin=subprocess.DEVNULL,
            stdout=self.log_file, stderr=subprocess.STDOUT)
        self.client = GuestFSClient(bus.connection)
        try:
            self._wait_ready()
        except BaseException:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._remove_log()
            raise

    def _wait_ready(self):
        args, bus = self.args, self.bus
        try:
            wait_until(lambda: self.process.poll() is not None
                       or bus.name_has_owner(BUS_NAME),
                       DAEMON_START_TIMEOUT, 'the service to own ' + BUS_NAME)
        except AssertionError:
            raise AssertionError('%s did not own %s within %.0f s; its output:\n%s'
                                 % (' '.join(args), BUS_NAME,
                                    DAEMON_START_TIMEOUT, self.log())) from None
        if self.process.poll() is not None:
            raise AssertionError('%s exited with status %d before owning %s; '
                                 'its output:\n%s' % (' '.join(args),
                                                      self.process.returncode,
                                                      BUS_NAME, self.log()))

    def log(self):
        with open(self.log_file.name, errors='replace') as f:
            return f.read()

    def is_running(self):
        return self.process.poll() is None

    def stop(self):
        """SIGTERM, and the service must exit with status 0."""
        try:
            if self.process.poll() is not None:
                raise AssertionError('the service died during the test '
                                     '(status %d); its output:\n%s'
                                     % (self.process.returncode, self.log()))
            self.process.send_signal(signal.SIGTERM)
            try:
                status = self.process.wait(timeout=DAEMON_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError('the service did not exit within %.0f s of '
                                     'SIGTERM; its output:\n%s'
                                     % (DAEMON_STOP_TIMEOUT, self.log()))
            assert status == 0, ('the service exited with status %d on SIGTERM; '
                                 'its output:\n%s' % (status, self.log()))
        finally:
            self._remove_log()

    def _remove_log(self):
        self.log_file.close()
        if os.path.exists(self.log_file.name):
            os.unlink(self.log_file.name)


_running_daemons = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report shows the output of the services it ran."""
    outcome = yield
    report = outcome.get_result()
    if report.when == 'call' and report.failed:
        for daemon in _running_daemons:
            report.sections.append(('libvirt-guestfs-dbus output (%s)'
                                    % ' '.join(daemon.uris), daemon.log()))


@pytest.fixture(scope='session')
def private_bus():
    bus = PrivateBus()
    yield bus
    bus.stop()


@pytest.fixture
def start_daemon(private_bus):
    """start_daemon(uri, ..., extra_args=[...]) starts the service on the
    private bus and returns a Daemon (with .client).  Every daemon started
    is stopped at the end of the test, and must exit with status 0."""
    daemons = []

    def start(*uris, extra_args=()):
        daemon = Daemon(private_bus, uris, extra_args)
        daemons.append(daemon)
        _running_daemons.append(daemon)
        return daemon

    yield start
    errors = []
    for daemon in daemons:
        _running_daemons.remove(daemon)
        try:
            daemon.stop()
        except AssertionError as error:
            errors.append(str(error))
    assert not errors, '\n'.join(errors)


@pytest.fixture
def signals(private_bus):
    """A SignalRecorder listening from now on."""
    recorder = SignalRecorder(private_bus.connection)
    yield recorder
    recorder.close()


def pick(props, expected):
    """props restricted to the keys of expected, so that properties which
    later versions add to an interface do not matter; a property missing
    from props still makes the comparison with expected fail."""
    return {key: value for key, value in props.items() if key in expected}


def assert_dbus_error(name, func, *args):
    """func(*args) must fail with org.libvirt.GuestFS.Error.<name>."""
    with pytest.raises(DBusError) as info:
        func(*args)
    assert info.value.name == ERROR_PREFIX + name, str(info.value)
    return info.value


# --- libvirt, for the tests against the real libvirtd ---------------------

SYSTEM_URI = 'qemu:///system'
IMAGES_DIR = '/var/lib/libvirt/images'


def unique_name(what):
    """lgd-test-<what>-<random>: every libvirt object the tests create."""
    return 'lgd-test-%s-%s' % (what, secrets.token_hex(4))


def wait_for_libvirtd(timeout=30.0):
    """Returns a qemu:///system connection once libvirtd answers."""
    import libvirt
    deadline = time.monotonic() + timeout
    while True:
        try:
            return libvirt.open(SYSTEM_URI)
        except libvirt.libvirtError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def ensure_libvirtd_running():
    """Starts libvirtd if it is not running, and waits until it answers."""
    if subprocess.run(['pidof', 'libvirtd'], stdout=subprocess.DEVNULL).returncode != 0:
        os.makedirs('/var/log/libvirt', exist_ok=True)
        # A clean environment: nothing of the test run leaks into libvirtd.
        subprocess.run(['libvirtd', '-d'], check=True, cwd='/',
                       env={'PATH': '/usr/sbin:/usr/bin:/sbin:/bin'},
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    wait_for_libvirtd().close()


class LibvirtObjects:
    """Creates libvirt objects on qemu:///system and removes them all at
    the end of the test, even after a failure (or a libvirtd restart)."""

    def __init__(self):
        self.conn = wait_for_libvirtd()
        self.domains = []
        self.pools = []
        self.dirs = []

    def reconnect(self):
        try:
            self.conn.close()
        except Exception:
            pass
        self.conn = wait_for_libvirtd()

    def make_dir(self, what='dir'):
        path = os.path.join(IMAGES_DIR, unique_name(what))
        os.mkdir(path, 0o755)
        self.dirs.append(path)
        return path

    @staticmethod
    def make_image(path, fmt='qcow2', size='16M'):
        subprocess.run(['qemu-img', 'create', '-q', '-f', fmt, path, size],
                       check=True)
        return path

    def domain_xml(self, name, disks=(), extra_devices=''):
        disk_xml = ''.join(
            "<disk type='file' device='disk'>"
            "<driver name='qemu' type='%s'/><source file='%s'/>"
            "<target dev='vd%s' bus='virtio'/></disk>"
            % (fmt, path, 'abcdefgh'[i]) for i, (path, fmt) in enumerate(disks))
        # No OS: under TCG qemu runs the BIOS for ever, which is all we need.
        return ("<domain type='qemu'><name>%s</name>"
                "<memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                "<os><type>hvm</type></os>"
                "<devices>%s%s</devices></domain>"
                % (name, disk_xml, extra_devices))

    def define_domain(self, name, disks=(), extra_devices=''):
        self.domains.append(name)
        return self.conn.defineXML(self.domain_xml(name, disks, extra_devices))

    def create_transient_domain(self, name, disks=(), extra_devices=''):
        self.domains.append(name)
        return self.conn.createXML(self.domain_xml(name, disks, extra_devices), 0)

    def rename_domain(self, dom, new_name):
        self.domains.append(new_name)
        dom.rename(new_name, 0)

    def define_dir_pool(self, name, path):
        self.pools.append(name)
        return self.conn.storagePoolDefineXML(
            "<pool type='dir'><name>%s</name><target><path>%s</path></target>"
            "</pool>" % (name, path), 0)

    def cleanup(self):
        """Removes everything, trying every step; fails if any step did."""
        import libvirt
        errors = []

        def attempt(what, func, *args):
            try:
                func(*args)
            except libvirt.libvirtError as error:
                if error.get_error_code() not in (libvirt.VIR_ERR_NO_DOMAIN,
                                                  libvirt.VIR_ERR_NO_STORAGE_POOL):
                    errors.append('%s: %s' % (what, error))
            except OSError as error:
                errors.append('%s: %s' % (what, error))

        def remove_domain(name):
            dom = self.conn.lookupByName(name)
            if dom.isActive():
                dom.destroy()
            if dom.isPersistent():
                dom.undefine()

        def remove_pool(name):
            pool = self.conn.storagePoolLookupByName(name)
            if pool.isActive():
                pool.destroy()
            pool.undefine()

        self.reconnect()
        for name in self.domains:
            attempt('removing domain ' + name, remove_domain, name)
        for name in self.pools:
            attempt('removing pool ' + name, remove_pool, name)
        for path in self.dirs:
            if os.path.exists(path):
                attempt('removing ' + path, shutil.rmtree, path)
        self.conn.close()
        assert not errors, 'clean-up failed:\n' + '\n'.join(errors)


@pytest.fixture
def virt():
    """A LibvirtObjects on qemu:///system (libvirtd must be running)."""
    objects = LibvirtObjects()
    yield objects
    objects.cleanup()


@pytest.fixture
def system_service(start_daemon):
    """The service on qemu:///system, re-listing volumes every second."""
    return start_daemon(SYSTEM_URI, extra_args=['--volume-rescan-interval', '1'])


# --- Appliances (issue 3): long calls, libguestfs's appliance domains -----

INSPECTOR_IFACE = 'org.libvirt.GuestFS.Inspector'
# An appliance boots in 15-40 s under TCG, more when several boot at once.
APPLIANCE_CALL_TIMEOUT = 600.0


def call_method(connection, path, iface, method, args=None, reply_type=None,
                timeout=APPLIANCE_CALL_TIMEOUT, destination=BUS_NAME):
    """A method call with a long timeout; D-Bus errors raise DBusError."""
    try:
        reply = connection.call_sync(
            destination, path, iface, method, args,
            GLib.VariantType(reply_type) if reply_type else None,
            Gio.DBusCallFlags.NONE, int(timeout * 1000), None)
    except GLib.Error as error:
        name = Gio.DBusError.get_remote_error(error)
        if name is None:
            raise
        Gio.DBusError.strip_remote_error(error)
        raise DBusError(name, error.message) from None
    return reply.unpack() if reply is not None else None


class PendingCall:
    """A method call sent without waiting for its reply (the reply is
    dispatched by wait_until and friends, on the default main context)."""

    def __init__(self, connection, path, iface, method, args=None,
                 reply_type=None, timeout=APPLIANCE_CALL_TIMEOUT,
                 destination=BUS_NAME):
        self.what = '%s.%s on %s' % (iface, method, path)
        self.sent = time.monotonic()
        self.finished = None
        self._reply = None
        self._error = None
        connection.call(destination, path, iface, method, args,
                        GLib.VariantType(reply_type) if reply_type else None,
                        Gio.DBusCallFlags.NONE, int(timeout * 1000), None,
                        self._on_reply)

    def _on_reply(self, connection, result):
        try:
            self._reply = connection.call_finish(result)
        except GLib.Error as error:
            name = Gio.DBusError.get_remote_error(error)
            if name is None:
                self._error = error
            else:
                Gio.DBusError.strip_remote_error(error)
                self._error = DBusError(name, error.message)
        self.finished = time.monotonic()

    def done(self):
        return self.finished is not None

    def wait(self, timeout=APPLIANCE_CALL_TIMEOUT):
        """The unpacked reply; a D-Bus error raises DBusError."""
        wait_until(self.done, timeout, 'the reply to ' + self.what)
        if self._error is not None:
            raise self._error
        return self._reply.unpack() if self._reply is not None else None


APPLIANCE_PREFIX = 'guestfs-'


def appliance_domains(conn, markers=None):
    """Names of the running appliance domains (libguestfs's transient
    guestfs-XXXXXXXXXXXXXXXX domains) on a libvirt connection; with
    markers, only those whose definition contains one of them (an image
    path, a domain UUID), so that other users' appliances do not count."""
    import libvirt
    names = []
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        if not dom.name().startswith(APPLIANCE_PREFIX):
            continue
        if markers is not None:
            try:
                xml = dom.XMLDesc(0)
            except libvirt.libvirtError:
                continue  # gone meanwhile
            if not any(marker in xml for marker in markers):
                continue
        names.append(dom.name())
    return sorted(names)


def appliance_qemu_pid(name):
    """The pid of the qemu of a running libvirt domain of qemu:///system."""
    try:
        with open('/run/libvirt/qemu/%s.pid' % name) as f:
            return int(f.read().strip())
    except (FileNotFoundError, ValueError):
        return None


# --- The inspection cache and batch inspection (issue 6) --------------------

def cache_file(cache_dir, uri, object_id):
    """Where the service keeps the cached inspection of an object: one
    file per object, named after sha256(uri + "\\n" + UUID or volume key)."""
    import hashlib
    digest = hashlib.sha256(('%s\n%s' % (uri, object_id)).encode('utf-8')).hexdigest()
    return os.path.join(cache_dir, digest + '.inspection')


def pump(seconds, until=None):
    """Dispatches D-Bus events for up to seconds, or until until()."""
    context = GLib.MainContext.default()
    deadline = time.monotonic() + seconds
    while True:
        while context.pending():
            context.iteration(False)
        if until is not None and until():
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(0.05, remaining))


class ApplianceWatch:
    """Samples the running appliance domains (guestfs-*) whose definition
    names one of markers (image paths): which ones appeared since the
    watch was made, which of the markers each held, and the most that ran
    at once."""

    def __init__(self, conn, markers):
        self.conn = conn
        self.markers = list(markers)
        self.baseline = set(self._running())
        self.seen = {}           # name -> set of markers it named
        self.most_at_once = 0
        self.samples = 0

    def _running(self):
        import libvirt
        found = {}
        for dom in self.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            name = dom.name()
            if not name.startswith(APPLIANCE_PREFIX):
                continue
            try:
                xml = dom.XMLDesc(0)
            except libvirt.libvirtError:
                continue  # gone meanwhile
            held = {marker for marker in self.markers if marker in xml}
            if held:
                found[name] = held
        return found

    def sample(self):
        running = self._running()
        for name, held in running.items():
            if name not in self.baseline:
                self.seen.setdefault(name, set()).update(held)
        self.most_at_once = max(self.most_at_once, len(running))
        self.samples += 1
        return running

    def appeared(self):
        """Names of the appliances that appeared since the watch began."""
        return sorted(self.seen)

    def during(self, call, interval=0.5, timeout=APPLIANCE_CALL_TIMEOUT, after=0.0):
        """Samples every interval seconds until call.done() (a PendingCall
        or anything with done()), then for after more seconds."""
        deadline = time.monotonic() + timeout
        while not call.done():
            if time.monotonic() > deadline:
                raise AssertionError('no reply within %.0f s' % timeout)
            self.sample()
            pump(interval, call.done)
        self.sample()
        end = time.monotonic() + after
        while time.monotonic() < end:
            pump(min(interval, max(0.0, end - time.monotonic())))
            self.sample()
        return self
