# The installed service starts under its own sandbox: the built daemon runs
# inside the sandbox that systemd makes of the generated unit
# (data/libvirt-guestfs-dbus.service), rebuilt with bubblewrap by
# unitsandbox.py because systemd is not PID 1 where the tests run, as root
# on a private bus of type system with a polkitd of its own, with
# ExecStart='s arguments plus --force-tcg and --verbose.  An Inspect of a
# Debian-like domain on qemu:///system must succeed through it, shut off
# and running (two appliance boots, both reading the disks through an NBD
# socket in the run directory); the sandbox must really be strict, and
# without RuntimeDirectory= the daemon must fail to start in it.

import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
from types import SimpleNamespace

import pytest
from gi.repository import GLib

from conftest import (BUS_NAME, DOMAIN_IFACE, INSPECTOR_IFACE, MANAGER_IFACE, MANAGER_PATH,
                      SYSTEM_URI, LibvirtObjects, PrivateBus,
                      _running_daemons, appliance_domains, cache_file, call_method,
                      daemon_binary, ensure_libvirtd_running, unique_name, wait_until)
from images import ImageSet
from polkitstack import (POLKIT_NAME, POLKITD, PolicyInstall, Process, built_policy,
                         run_cleanups)
from unitsandbox import UnitSandbox, built_unit, read_unit

# ExecStart= plus what the tests need: KVM hangs on the test machines.
TEST_ARGS = ['--force-tcg', '--verbose']
START_TIMEOUT = 30.0
# The service shuts its appliance down on SIGTERM before it exits.
STOP_TIMEOUT = 90.0
CAP_SYS_ADMIN = 21


def fail(message):
    pytest.fail(message, pytrace=False)


class SandboxedService:
    """The daemon under bwrap, with its output in a log file.  bwrap does
    not pass signals on, so SIGTERM goes to the daemon itself, whose pid
    bwrap reports on --info-fd; bwrap exits with the daemon's status."""

    def __init__(self, sandbox, bus, extra_args=()):
        self.what = 'libvirt-guestfs-dbus in its sandbox'
        self.uris = [self.what]  # for the failure report of conftest
        self.log_file = tempfile.NamedTemporaryFile(prefix='lgd-test-sandbox-',
                                                    suffix='.log', delete=False)
        env = dict(sandbox.env, DBUS_SYSTEM_BUS_ADDRESS=bus.address)
        info_read, info_write = os.pipe()
        self.args = sandbox.daemon_command(daemon_binary(), TEST_ARGS + list(extra_args),
                                           info_fd=info_write)
        try:
            self.process = subprocess.Popen(
                self.args, env=env, cwd='/', umask=sandbox.umask, pass_fds=(info_write,),
                stdin=subprocess.DEVNULL, stdout=self.log_file, stderr=subprocess.STDOUT)
        finally:
            os.close(info_write)
        with os.fdopen(info_read) as info:
            text = info.read()
        self.pid = json.loads(text)['child-pid'] if text.strip() else None

    def log(self):
        with open(self.log_file.name, errors='replace') as f:
            return f.read()

    def wait_exit(self, timeout=START_TIMEOUT):
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError('%s did not exit in %.0f s:\n%s'
                                 % (self.what, timeout, self.log())) from None

    def wait_owner(self, bus):
        try:
            wait_until(lambda: self.process.poll() is not None
                       or bus.name_has_owner(BUS_NAME), START_TIMEOUT,
                       'the service to own ' + BUS_NAME)
        except AssertionError:
            raise AssertionError('%s did not own %s in %.0f s:\n%s'
                                 % (self.what, BUS_NAME, START_TIMEOUT, self.log())) from None
        if self.process.poll() is not None:
            raise AssertionError('%s exited with status %d before owning %s:\n%s'
                                 % (self.what, self.process.returncode, BUS_NAME, self.log()))

    def stop(self):
        """SIGTERM; the daemon must exit with status 0."""
        try:
            if self.process.poll() is not None:
                raise AssertionError('%s died (status %d):\n%s'
                                     % (self.what, self.process.returncode, self.log()))
            os.kill(self.pid, signal.SIGTERM)
            status = self.wait_exit(STOP_TIMEOUT)
            assert status == 0, ('%s exited with status %d on SIGTERM:\n%s'
                                 % (self.what, status, self.log()))
        finally:
            self.close()

    def close(self):
        if self.process.poll() is None:
            self.process.kill()  # --die-with-parent takes the daemon along
            self.process.wait()
        self.log_file.close()
        if os.path.exists(self.log_file.name):
            os.unlink(self.log_file.name)


def unit_without(service, *keys):
    return {key: values for key, values in service.items() if key not in keys}


@pytest.fixture(scope='module')
def env():
    """The generated unit, two Debian-like domains on qemu:///system, and
    a private system bus with a polkitd of its own (the caller is root, as
    the test is).  The sandboxes' run and cache directories live under
    fresh roots in /run and /var/cache (see UnitSandbox), removed at the
    end."""
    for tool in ('bwrap', 'dbus-daemon', 'systemd-analyze', POLKITD):
        if shutil.which(tool) is None:
            fail('%s is missing (bwrap: package bubblewrap)' % tool)
    ensure_libvirtd_running()
    cleanups = []
    env = SimpleNamespace()
    try:
        env.unit_path = built_unit(daemon_binary())
        env.service = read_unit(env.unit_path)['Service']
        env.runtime_root = tempfile.mkdtemp(prefix='lgd-test-sandbox-', dir='/run')
        cleanups.append(lambda: shutil.rmtree(env.runtime_root))
        env.cache_root = tempfile.mkdtemp(prefix='lgd-test-sandbox-', dir='/var/cache')
        cleanups.append(lambda: shutil.rmtree(env.cache_root))
        for root in (env.runtime_root, env.cache_root):
            os.chmod(root, 0o755)  # as /run and /var/cache are: qemu traverses them

        env.images = ImageSet.create()
        cleanups.append(env.images.remove)
        env.root = env.images.debian_root()
        virt = LibvirtObjects()
        cleanups.append(virt.cleanup)
        env.conn = virt.conn
        env.dom_name = unique_name('sandbox')
        env.uuid = virt.define_domain(env.dom_name, disks=[(env.root.path, 'raw')]).UUIDString()
        # a copy: the running domain holds its disk's write lock
        running_image = env.images.copy(env.root.path, 'running-root.img')
        env.running_name = unique_name('sandbox-run')
        running = virt.define_domain(env.running_name, disks=[(running_image, 'raw')])
        env.markers = [env.images.dir, env.uuid, running.UUIDString()]

        # polkitd refuses to answer for actions it does not know, even for
        # root (whom it then allows everything)
        install = PolicyInstall(built_policy())
        cleanups.append(install.remove)
        env.bus = PrivateBus(system=True)
        cleanups.append(env.bus.stop)
        polkitd = Process([POLKITD, '--no-debug'],
                          {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C.UTF-8',
                           'DBUS_SYSTEM_BUS_ADDRESS': env.bus.address}, 'polkitd')
        cleanups.append(polkitd.stop)
        polkitd.wait_owner(env.bus, POLKIT_NAME)
        yield env
    finally:
        errors = run_cleanups(cleanups)
        try:
            conn = LibvirtObjects().conn
            leftovers = appliance_domains(conn, getattr(env, 'markers', []))
            for name in leftovers:
                conn.lookupByName(name).destroy()
            if leftovers:
                errors.append('appliances left running: %s' % ', '.join(leftovers))
            conn.close()
        except Exception as error:
            errors.append('checking for appliances: %s' % error)
        assert not errors, '\n'.join(errors)


def sandbox(env, service=None):
    return UnitSandbox(env.service if service is None else service,
                       env.runtime_root, env.cache_root)


def test_unit_verifies(env):
    """systemd's own parser accepts the unit (ExecStart= pointing at the
    built daemon: verify checks that the command exists)."""
    with open(env.unit_path) as f:
        text = f.read()
    installed = sandbox(env).exec_start[0]
    with tempfile.TemporaryDirectory(prefix='lgd-test-unit-') as tmp:
        copy = os.path.join(tmp, os.path.basename(env.unit_path))
        with open(copy, 'w') as f:
            f.write(text.replace(installed, daemon_binary()))
        r = subprocess.run(['systemd-analyze', 'verify', copy], capture_output=True, text=True)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr


def test_unit_declares_its_directories(env):
    assert env.service.get('RuntimeDirectory') == ['libvirt-guestfs-dbus']
    assert env.service.get('CacheDirectory') == ['libvirt-guestfs-dbus']
    assert env.service.get('ProtectSystem') == ['strict']


# Run inside the sandbox: tries to write in each place and prints what
# happened, as JSON.
PROBE = r'''
import errno, json, os, sys
result = {}
for directory in sys.argv[1:]:
    path = os.path.join(directory, '.lgd-test-probe-%d' % os.getpid())
    try:
        with open(path, 'w') as f:
            f.write('x')
        os.unlink(path)
        result[directory] = 'ok'
    except OSError as error:
        result[directory] = errno.errorcode.get(error.errno, str(error.errno))
try:
    with open('/proc/sys/kernel/hostname', 'w') as f:
        f.write('lgd-test')
    result['sysctl'] = 'ok'
except OSError as error:
    result['sysctl'] = errno.errorcode.get(error.errno, str(error.errno))
result['env'] = {k: os.environ.get(k) for k in ('RUNTIME_DIRECTORY', 'CACHE_DIRECTORY')}
print(json.dumps(result))
'''


def test_sandbox_is_strict(env):
    """Only what the unit declares is writable inside: /tmp, /var/tmp and
    the directories systemd makes; every other place is read-only, kernel
    tunables included."""
    box = sandbox(env)
    runtime = box.env['RUNTIME_DIRECTORY']
    cache = box.env['CACHE_DIRECTORY']
    allowed = ['/tmp', '/var/tmp', runtime, cache]
    denied = ['/etc', '/usr/lib', '/var/lib/libvirt/images', '/var/cache', '/run',
              '/run/libvirt', '/root', env.images.dir]
    r = subprocess.run(box.command(['/usr/bin/python3', '-c', PROBE] + allowed + denied),
                       env=box.env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert {d: result[d] for d in allowed} == {d: 'ok' for d in allowed}
    assert {d: result[d] for d in denied} == {d: 'EROFS' for d in denied}
    assert result['sysctl'] == 'EROFS'
    assert result['env'] == {'RUNTIME_DIRECTORY': runtime, 'CACHE_DIRECTORY': cache}
    assert runtime == os.path.join(env.runtime_root, 'libvirt-guestfs-dbus')
    assert cache == os.path.join(env.cache_root, 'libvirt-guestfs-dbus')


def test_without_runtime_directory_the_service_cannot_start(env):
    """The unit as it was before RuntimeDirectory=: /run is read-only and
    the daemon cannot make its run directory.  On a fresh boot that is
    /run/libvirt-guestfs-dbus; here a service run outside may have made
    that one, so --run-dir names the directory RuntimeDirectory= would
    have made, which does not exist without it."""
    service = unit_without(env.service, 'RuntimeDirectory', 'RuntimeDirectoryMode')
    box = sandbox(env, service)
    assert 'RUNTIME_DIRECTORY' not in box.env
    run_dir = os.path.join(env.runtime_root, 'libvirt-guestfs-dbus')
    shutil.rmtree(run_dir, ignore_errors=True)
    daemon = SandboxedService(box, env.bus, ['--run-dir', run_dir])
    try:
        status = daemon.wait_exit()
        output = daemon.log()
    finally:
        daemon.close()
    assert status != 0, output
    assert re.search('Cannot create %s: Read-only file system' % re.escape(run_dir),
                     output), output
    assert not os.path.exists(run_dir)


@pytest.fixture(scope='module')
def service(env):
    """The daemon in the sandbox of the unit as it is, for the rest of the
    module; at the end it must exit with status 0 on SIGTERM, having hit
    no read-only file system, and leave no appliance running."""
    box = sandbox(env)
    daemon = SandboxedService(box, env.bus)
    _running_daemons.append(daemon)
    ok = False
    try:
        daemon.wait_owner(env.bus)
        env.box = box
        env.runtime = box.env['RUNTIME_DIRECTORY']
        env.cache = box.env['CACHE_DIRECTORY']
        yield daemon
        ok = True
    finally:
        _running_daemons.remove(daemon)
        output = daemon.log()
        if ok:
            daemon.stop()
        else:
            daemon.close()
    assert 'Read-only file system' not in output, output
    assert not appliance_domains(env.conn, env.markers)


def call(env, path, iface, method, signature=None, args=None, reply=None, timeout=600):
    return call_method(env.bus.connection, path, iface, method,
                       GLib.Variant(signature, args) if signature else None, reply,
                       timeout=timeout)


def lookup_domain(env, name):
    (path,) = call(env, MANAGER_PATH, MANAGER_IFACE, 'LookupDomain', '(s)', (name,), '(o)',
                   timeout=30)
    return path


def inspect(env, path):
    (systems,) = call(env, path, INSPECTOR_IFACE, 'Inspect', '(a{sv})', ({},), '(aa{sv})')
    assert len(systems) == 1, systems
    system = systems[0]
    assert (system.get('distro'), system.get('major-version'), system.get('hostname')) == \
        ('debian', env.root.major, env.root.hostname), systems


def test_service_starts_with_systemds_directories(env, service):
    """The daemon runs the built binary without new privileges or the
    capabilities the unit drops, and uses the directories systemd made."""
    with open('/proc/%d/status' % service.pid) as f:
        status = dict(line.split(':\t', 1) for line in f.read().splitlines())
    assert status['NoNewPrivs'].strip() == '1'
    assert not int(status['CapEff'], 16) & (1 << CAP_SYS_ADMIN)
    assert os.readlink('/proc/%d/exe' % service.pid) == daemon_binary()
    assert ('runtime files in %s, inspection cache in %s' % (env.runtime, env.cache)
            in service.log()), service.log()
    assert os.stat(env.runtime).st_mode & 0o7777 == 0o755


def test_inspect_in_the_sandbox(env, service):
    """An Inspect boots an appliance through libvirt (its overlays in /tmp,
    the supermin appliance in /var/tmp) and answers; the result is cached
    where CacheDirectory= says.  The shut-off domain's disks are served to
    the appliance by a qemu-storage-daemon that the service starts, inside
    the sandbox, on a socket in the run directory."""
    path = lookup_domain(env, env.dom_name)
    inspect(env, path)
    assert os.path.isfile(cache_file(env.cache, SYSTEM_URI, env.uuid)), os.listdir(env.cache)
    shares = [name for name in os.listdir(env.runtime)
              if name.startswith('share-' + env.uuid + '-')]
    assert len(shares) == 2, os.listdir(env.runtime)   # its directory and pid file
    share = os.path.join(env.runtime, min(shares))
    assert os.path.isdir(share) and os.path.isfile(share + '.pid'), shares
    call(env, path, DOMAIN_IFACE, 'StopAppliance')
    wait_until(lambda: not os.path.exists(share), 30, 'the removal of ' + share)
    assert not os.path.exists(share + '.pid')


def test_inspect_running_domain_in_the_sandbox(env, service):
    """A running domain is read through a backup job whose NBD socket the
    domain's qemu, outside the sandbox, makes in the run directory: the
    daemon makes a directory for it there and hands it to qemu's user."""
    dom = env.conn.lookupByName(env.running_name)
    dom.create()
    try:
        path = lookup_domain(env, env.running_name)
        inspect(env, path)
        backup = os.path.join(env.runtime, 'backup-' + dom.UUIDString())
        assert os.path.isdir(backup), os.listdir(env.runtime)
        assert stat.S_ISSOCK(os.stat(os.path.join(backup, 'nbd.sock')).st_mode)
        assert os.stat(backup).st_uid == pwd.getpwnam('libvirt-qemu').pw_uid
        call(env, path, DOMAIN_IFACE, 'StopAppliance')
        wait_until(lambda: not os.path.exists(backup), 30, 'the removal of ' + backup)
    finally:
        dom.destroy()
