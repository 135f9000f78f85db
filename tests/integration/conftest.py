# Fixtures for the integration tests: a private dbus-daemon, the built
# libvirt-guestfs-dbus on it (in a clean environment, its output checked
# for warnings at the end), a recorder of the signals it emits, the polkit
# stack, and clean-up of whatever the tests create in libvirt.  The client
# side of the API is client.py.
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

from client import (APPLIANCE_CALL_TIMEOUT, BUS_NAME, DOMAIN_IFACE, ROOT_PATH, SIGNAL_TIMEOUT,
                    GuestFSClient, call_method, dispatch, pump, wait_until)
# Modules written against the older conftest import these from here; new
# code imports them from client.
from client import (INSPECTOR_IFACE, MANAGER_IFACE, MANAGER_PATH, VOLUME_IFACE,  # noqa: F401
                    DBusError, PendingCall)

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
        call_method(connection, '/org/freedesktop/DBus', 'org.freedesktop.DBus',
                    'GetId', None, '(s)', timeout=30, destination='org.freedesktop.DBus')

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
        dispatch()

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



def state_changes(recorder, path, iface=DOMAIN_IFACE):
    """The ApplianceState values that recorder saw path take, in order."""
    recorder.flush()
    return [changes['ApplianceState'] for changes in recorder.changed(path, iface)
            if 'ApplianceState' in changes]

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
        (owned,) = call_method(self.connection, '/org/freedesktop/DBus',
                               'org.freedesktop.DBus', 'NameHasOwner',
                               GLib.Variant('(s)', (name,)), '(b)', timeout=30,
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


# What the service's environment holds: nothing of the caller's (so that,
# say, LIBGUESTFS_BACKEND_SETTINGS cannot stand in for --force-tcg), only
# what the tests choose, and the sanitizers' settings of a sanitizer build.
DAEMON_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
PASSED_THROUGH = ('ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS')


def daemon_environment(home, **bus_addresses):
    """HOME and the XDG directories under home, and bus_addresses
    (DBUS_SESSION_BUS_ADDRESS= or DBUS_SYSTEM_BUS_ADDRESS=)."""
    env = {'PATH': DAEMON_PATH, 'HOME': home, 'LANG': 'C.UTF-8',
           'XDG_CACHE_HOME': os.path.join(home, 'cache'),
           'XDG_CONFIG_HOME': os.path.join(home, 'config'),
           'XDG_DATA_HOME': os.path.join(home, 'data'),
           # a critical is a bug: it aborts the service, and the test fails
           'G_DEBUG': 'fatal-criticals'}
    env.update(bus_addresses)
    for name in PASSED_THROUGH:
        if name in os.environ:
            env[name] = os.environ[name]
    return env


# What must not appear in the service's output: GLib warnings and
# criticals, and the reports of the sanitizers.
LOG_PROBLEM = re.compile(r'\b(WARNING|CRITICAL) \*\*|ERROR: AddressSanitizer|runtime error:'
                         r'|ERROR: LeakSanitizer')

# The warnings of a service whose libvirt connection goes away, for the
# tests that make that happen (src/lgd-connection.c).
CONNECTION_LOST_WARNINGS = [
    r'connection to libvirt lost; withdrawing its objects and reconnecting',
    r'cannot connect \(will keep trying\)']


def log_problems(text, expected=()):
    """The lines of text that LOG_PROBLEM finds, but for those matching one
    of the expected regular expressions (warnings a test provokes)."""
    return [line for line in text.splitlines()
            if LOG_PROBLEM.search(line) and not any(re.search(p, line) for p in expected)]


class Daemon:
    """libvirt-guestfs-dbus running on a private bus (a session bus, or
    with system a bus of type system), in a clean environment.  Its output
    must hold no warning, critical nor sanitizer report but those of
    expected_warnings (regular expressions), which stop() checks."""

    def __init__(self, bus, uris, extra_args=(), system=False, expected_warnings=(),
                 stop_timeout=DAEMON_STOP_TIMEOUT):
        self.bus = bus
        self.uris = list(uris)
        self.expected_warnings = list(expected_warnings)
        self.stop_timeout = stop_timeout
        args = [daemon_binary(), '--system' if system else '--session', '--verbose']
        for uri in self.uris:
            args += ['--connect', uri]
        args += list(extra_args)
        self.args = args
        self.home = tempfile.mkdtemp(prefix='lgd-test-home-')
        self.log_file = tempfile.NamedTemporaryFile(
            prefix='lgd-test-daemon-', suffix='.log', delete=False)
        address = {'DBUS_SYSTEM_BUS_ADDRESS' if system else 'DBUS_SESSION_BUS_ADDRESS':
                   bus.address}
        self.process = subprocess.Popen(
            args, env=daemon_environment(self.home, **address),
            stdin=subprocess.DEVNULL, stdout=self.log_file, stderr=subprocess.STDOUT)
        self.client = GuestFSClient(bus.connection)
        try:
            self._wait_ready()
        except BaseException:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._remove_log()
            raise
        _running_daemons.append(self)

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

    def stop_appliances(self):
        """Stops the appliances, so that the service exits promptly."""
        if self.is_running():
            self.client.stop_appliances()

    def shut_down(self, errors):
        """Stops the appliances, then the service (as stop()); what fails
        goes to errors."""
        try:
            self.stop_appliances()
        except Exception as error:  # the service may have died
            errors.append('stopping appliances: %s' % error)
        try:
            self.stop()
        except AssertionError as error:
            errors.append(str(error))

    def stop(self):
        """SIGTERM: the service must exit with status 0, and its output hold
        no unexpected warning, critical or sanitizer report."""
        if self in _running_daemons:
            _running_daemons.remove(self)
        try:
            if self.process.poll() is not None:
                raise AssertionError('the service died during the test '
                                     '(status %d); its output:\n%s'
                                     % (self.process.returncode, self.log()))
            self.process.send_signal(signal.SIGTERM)
            try:
                status = self.process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError('the service did not exit within %.0f s of '
                                     'SIGTERM; its output:\n%s'
                                     % (self.stop_timeout, self.log()))
            assert status == 0, ('the service exited with status %d on SIGTERM; '
                                 'its output:\n%s' % (status, self.log()))
            problems = log_problems(self.log(), self.expected_warnings)
            assert not problems, ('the service (%s) logged warnings, criticals or '
                                  'sanitizer reports:\n%s'
                                  % (' '.join(self.args), '\n'.join(problems)))
        finally:
            self._remove_log()

    def _remove_log(self):
        self.log_file.close()
        if os.path.exists(self.log_file.name):
            os.unlink(self.log_file.name)
        shutil.rmtree(self.home, ignore_errors=True)


_running_daemons = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report shows the output of the services it ran."""
    outcome = yield
    report = outcome.get_result()
    if report.when == 'call' and report.failed:
        for daemon in _running_daemons:
            report.sections.append(('libvirt-guestfs-dbus output (%s)'
                                    % ' '.join(daemon.args[1:]), daemon.log()))


def pytest_sessionfinish(session, exitstatus):
    """A skipped test, or an expected failure, fails the run: meson (and
    so tools/check) only sees the exit status."""
    reporter = session.config.pluginmanager.get_plugin('terminalreporter')
    if reporter is None:
        return
    counts = {what: len(reporter.stats.get(what, []))
              for what in ('skipped', 'xfailed', 'xpassed')}
    if any(counts.values()):
        reporter.ensure_newline()
        reporter.write_line('FAILED: %s: every test must run and pass' % ', '.join(
            '%d %s' % (n, what) for what, n in counts.items() if n), red=True, bold=True)
        if session.exitstatus == 0:
            session.exitstatus = 1


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

    def start(*uris, extra_args=(), expected_warnings=()):
        daemon = Daemon(private_bus, uris, extra_args, expected_warnings=expected_warnings)
        daemons.append(daemon)
        return daemon

    yield start
    errors = []
    for daemon in daemons:
        try:
            daemon.stop()
        except AssertionError as error:
            errors.append(str(error))
    assert not errors, '\n'.join(errors)


@pytest.fixture(scope='module')
def polkit():
    """A polkitstack.Stacks: start() puts up the system bus, polkitd and
    the service (with a rules file of the module's own); everything is
    undone at the end of the module, after add_cleanup()'s functions."""
    from polkitstack import Stacks
    stacks = Stacks()
    yield stacks
    stacks.finish()


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

    def cleanup_after_service(self, markers, errors):
        """At the end of a module, once its service has stopped: destroys
        the appliances of markers it left running, then removes
        everything; errors go to errors."""
        self.reconnect()
        destroy_leftover_appliances(self.conn, markers, errors)
        try:
            self.cleanup()
        except AssertionError as error:
            errors.append(str(error))

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


# --- Appliances ----------------------------------------------------------------

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



def destroy_leftover_appliances(conn, markers, errors):
    """Destroys the appliances of markers still running (the service
    should have shut them down on exit), and says so in errors."""
    import libvirt
    leftovers = appliance_domains(conn, markers)
    for name in leftovers:
        try:
            conn.lookupByName(name).destroy()
        except libvirt.libvirtError:
            pass  # gone meanwhile
    if leftovers:
        errors.append('appliances left running after the service exited: %s'
                      % ', '.join(leftovers))

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
        self.most_new_at_once = 0  # of those that appeared since
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
        self.most_new_at_once = max(self.most_new_at_once,
                                    len(set(running) - set(self.baseline)))
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
