# OS inspection and appliance sessions against the real libvirtd
# (qemu:///system) with real libguestfs appliances under TCG.
#
# Appliances take 15-40 s to boot, so this module shares them: the images
# are built once, one service runs for the whole module (with a long idle
# timeout), and the tests run in file order so that later tests reuse the
# appliance an earlier one warmed.  Every libvirt object is named
# lgd-test-* and removed at the end, even after a failure.

import os
import signal
import time
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import libvirt
import pytest
from gi.repository import GLib

from client import (DOMAIN_IFACE, ERROR_PREFIX, VOLUME_IFACE, DBusError, GuestFSClient,
                    dispatch, expect_error, wait_until)
from conftest import (SYSTEM_URI, Daemon, LibvirtObjects, PrivateBus, SignalRecorder,
                      appliance_domains, appliance_qemu_pid,
                      ensure_libvirtd_running, state_changes, unique_name)
from images import MIB, ImageSet

# How long a property Get or GetManagedObjects may take while appliances
# boot (the requirement: the main loop never waits on libguestfs).
PROMPT = 1.0


# --- The shared set-up ---------------------------------------------------------

def service_args(*extra):
    # KVM hangs on this machine: appliances run under TCG.
    return ['--force-tcg', '--volume-rescan-interval', '1'] + list(extra)


@pytest.fixture(scope='module')
def env(private_bus):
    """Images, domains and a pool in libvirt, and the service (one for the
    whole module) on the private bus."""
    ensure_libvirtd_running()
    images = ImageSet.create()
    virt = None
    daemon = None
    markers = [images.dir]
    try:
        env = SimpleNamespace(images=images, markers=markers)
        env.root = images.debian_root()
        env.data = images.data_disk()
        env.blank = images.blank_disk()
        env.running_image = images.copy(env.root.path, 'running-root.img')
        env.missing_image = images.path('missing.img')
        pool_dir = images.path('pool')
        os.mkdir(pool_dir, 0o755)
        os.chmod(pool_dir, 0o755)
        env.volume_image = images.copy(env.root.path, 'pool/debian-volume.img')

        virt = LibvirtObjects()
        env.virt = virt
        env.conn = virt.conn

        def domain(what, disks):
            name = unique_name(what)
            dom = virt.define_domain(name, disks=disks)
            markers.append(dom.UUIDString())
            return name

        env.deb_name = domain('deb', [(env.root.path, 'raw'), (env.data.path, 'raw')])
        env.blank_name = domain('blank', [(env.blank.path, 'raw')])
        env.nodisk_name = domain('nodisk', [])
        env.missing_name = domain('missing', [(env.missing_image, 'raw')])
        env.running_name = domain('run', [(env.running_image, 'raw')])
        env.pool_name = unique_name('pool')
        pool = virt.define_dir_pool(env.pool_name, pool_dir)
        pool.create(0)

        daemon = Daemon(private_bus, [SYSTEM_URI],
                        service_args('--idle-timeout', '900'))
        env.daemon = daemon
        env.bus = private_bus
        env.api = GuestFSClient(private_bus.connection)
        env.deb = env.api.lookup_domain(env.deb_name)
        env.blank_dom = env.api.lookup_domain(env.blank_name)
        env.nodisk = env.api.lookup_domain(env.nodisk_name)
        env.missing = env.api.lookup_domain(env.missing_name)
        env.running = env.api.lookup_domain(env.running_name)
        env.volume = wait_until(lambda: env.api.try_lookup_volume(env.volume_image),
                                30, 'the volume object of ' + env.volume_image)
        yield env
    finally:
        errors = []
        if daemon is not None:
            daemon.shut_down(errors)
        if virt is not None:
            virt.cleanup_after_service(markers, errors)
        images.remove()
        assert not errors, '\n'.join(errors)


def ours(env):
    """The running appliances of our images and domains."""
    return appliance_domains(env.conn, env.markers)


def assert_debian(system, root, expected_root='/dev/sda'):
    assert system['root'] == expected_root
    assert system['type'] == 'linux'
    assert system['distro'] == 'debian'
    assert system['major-version'] == root.major
    assert system['minor-version'] == root.minor
    # libguestfs names a Debian product after /etc/debian_version
    assert system['product-name'] in (root.product_name, '%d.%d' % (root.major, root.minor))
    assert system['hostname'] == root.hostname
    assert system['arch'] == root.arch
    assert system['osinfo'] == 'debian12'
    assert system['package-format'] == 'deb'
    assert system['package-management'] == 'apt'
    assert system['mountpoints'] == {'/': expected_root}


@pytest.fixture(scope='module')
def cold(env):
    """The first Inspect of the Debian domain (its appliance not running),
    with the ApplianceState changes it caused."""
    recorder = SignalRecorder(env.bus.connection)
    try:
        state_before = env.api.state(env.deb)
        started = time.monotonic()
        systems = env.api.inspect(env.deb)
        duration = time.monotonic() - started
        # The state is published from the main loop: the reply may come first.
        wait_until(lambda: 'running' in state_changes(recorder, env.deb), 10,
                   'ApplianceState "running" on ' + env.deb)
        return SimpleNamespace(
            systems=systems, duration=duration, state_before=state_before,
            states=state_changes(recorder, env.deb),
            appliances=set(ours(env)))
    finally:
        recorder.close()


# --- Inspecting a shut-off domain ----------------------------------------------

def test_appliances_start_stopped(env):
    for path in (env.deb, env.blank_dom, env.nodisk, env.missing, env.running):
        assert env.api.state(path) == 'stopped', path
    assert env.api.state(env.volume, VOLUME_IFACE) == 'stopped'


def test_inspect_finds_debian(env, cold):
    assert len(cold.systems) == 1, cold.systems
    assert_debian(cold.systems[0], env.root)


def test_first_call_launches_appliance(env, cold):
    assert cold.state_before == 'stopped'
    assert cold.states == ['starting', 'running']
    assert env.api.state(env.deb) == 'running'
    # One appliance, kept warm after the call.
    assert len(cold.appliances) == 1, cold.appliances


def test_appliance_domain_is_not_published(env, cold):
    (appliance,) = cold.appliances
    assert appliance in ours(env)
    names = [ifaces[DOMAIN_IFACE]['Name']
             for ifaces in env.api.managed_objects().values() if DOMAIN_IFACE in ifaces]
    assert env.deb_name in names
    assert not [name for name in names if name.startswith('guestfs-')], names
    expect_error('NotFound', env.api.lookup_domain, appliance)


def test_appliance_boots_uncompressed_kernel(env, cold):
    """Under --force-tcg the appliance boots an uncompressed copy of the
    host's kernel (qemu enters it through PVH, skipping the emulated
    decompressor), from an appliance built in a cache directory of the
    service's own, not in the one libguestfs's tools share."""
    (appliance,) = cold.appliances
    root = ET.fromstring(env.conn.lookupByName(appliance).XMLDesc(0))
    kernel = root.findtext('os/kernel')
    own_dir = '/var/tmp/.libvirt-guestfs-dbus-%d' % os.geteuid()
    assert kernel.startswith(own_dir + '/.guestfs-%d/' % os.geteuid()), kernel
    with open(kernel, 'rb') as f:
        assert f.read(4) == b'\x7fELF', kernel
    unpacked = [n for n in os.listdir(own_dir) if n.startswith('vmlinux-')]
    assert len(unpacked) == 1, unpacked
    version = unpacked[0][len('vmlinux-'):]
    assert os.path.exists('/boot/vmlinuz-' + version)
    assert os.path.getsize(kernel) == os.path.getsize(os.path.join(own_dir, unpacked[0]))
    # the directory and the unpacked kernel are root's, writable by no one else
    for path in (own_dir, os.path.join(own_dir, unpacked[0])):
        st = os.lstat(path)
        assert st.st_uid == os.geteuid() and not st.st_mode & 0o022, (path, oct(st.st_mode))


def test_list_applications(env, cold):
    root = cold.systems[0]['root']
    apps = env.api.list_applications(env.deb, root)
    by_name = {app['name']: app for app in apps}
    # The package whose status is "deinstall ok config-files" is not listed.
    assert sorted(by_name) == sorted(pkg.name for pkg in env.root.packages)
    assert len(apps) == len(env.root.packages)
    for pkg in env.root.packages:
        app = by_name[pkg.name]
        assert app['epoch'] == pkg.epoch, app
        assert app['version'] == pkg.version, app
        assert app.get('release', '') == pkg.release, app
        assert app['arch'] == pkg.arch, app
        assert app['summary'] == pkg.summary, app
        assert app['description'] == pkg.description, app
        assert app.get('url', '') == pkg.url, app


def test_get_icon(env, cold):
    root = cold.systems[0]['root']
    # The favicon comes first unless the caller says otherwise.
    assert env.api.get_icon(env.deb, root) == env.root.favicon
    assert env.api.get_icon(env.deb, root, {'favicon': GLib.Variant('b', True)}) \
        == env.root.favicon
    icon = env.api.get_icon(env.deb, root, {'favicon': GLib.Variant('b', False)})
    assert icon[:8] == b'\x89PNG\r\n\x1a\n'
    assert icon == env.root.icon
    assert env.api.get_icon(env.deb, root, {'highquality': GLib.Variant('b', True)}) \
        == env.root.icon


def expected_filesystems(env):
    data = {p.number: p for p in env.data.partitions}
    return {
        '/dev/sda': {'type': 'ext4', 'label': env.root.label, 'uuid': env.root.uuid,
                     'size': env.root.size},
        '/dev/sdb1': {'type': 'ext4', 'label': data[1].label, 'uuid': data[1].uuid,
                      'size': data[1].size},
        '/dev/sdb2': {'type': 'vfat', 'label': data[2].label, 'uuid': data[2].uuid,
                      'size': data[2].size},
    }


def test_list_filesystems(env, cold):
    filesystems = env.api.list_filesystems(env.deb)
    found = {fs['device']: {key: fs.get(key) for key in ('type', 'label', 'uuid', 'size')}
             for fs in filesystems}
    assert len(filesystems) == len(found)
    assert found == expected_filesystems(env)


def test_disk_usage(env, cold):
    usage = {u['device']: u for u in env.api.disk_usage(env.deb)}
    expected = expected_filesystems(env)
    assert sorted(usage) == sorted(expected)
    for device, u in usage.items():
        # statvfs counts the filesystem's blocks: a little less than the device
        assert expected[device]['size'] * 0.7 < u['size'] <= expected[device]['size'], u
        assert 0 <= u['used'] < u['size'], u
        assert u['available'] <= u['size'] - u['used'], u
        assert u['inodes-free'] <= u['inodes'], u
    for device in ('/dev/sda', '/dev/sdb1'):
        assert usage[device]['used'] > 0
        assert usage[device]['inodes'] > 0
        assert usage[device]['inodes-free'] < usage[device]['inodes']
    # data1 holds a 2 MiB file
    assert usage['/dev/sdb1']['used'] >= 2 * MIB


def test_unknown_root_is_invalid(env, cold):
    for root in ('/dev/sdz', '/dev/sdb1', ''):
        expect_error('InvalidArgument', env.api.list_applications, env.deb, root)
        expect_error('InvalidArgument', env.api.get_icon, env.deb, root)
    assert env.api.state(env.deb) == 'running'


def test_unknown_options_are_invalid(env, cold):
    root = cold.systems[0]['root']
    bogus = {'no-such-option': GLib.Variant('b', True)}
    expect_error('InvalidArgument', env.api.inspect, env.deb, bogus)
    expect_error('InvalidArgument', env.api.list_applications, env.deb, root, bogus)
    expect_error('InvalidArgument', env.api.get_icon, env.deb, root, bogus)
    expect_error('InvalidArgument', env.api.list_filesystems, env.deb, bogus)
    expect_error('InvalidArgument', env.api.disk_usage, env.deb, bogus)
    # A known option of the wrong type is no better.
    expect_error('InvalidArgument', env.api.get_icon, env.deb, root,
                 {'favicon': GLib.Variant('s', 'yes')})


def test_repeated_inspect_reuses_result(env, cold):
    recorder = SignalRecorder(env.bus.connection)
    try:
        assert env.api.state(env.deb) == 'running'
        assert env.api.inspect(env.deb) == cold.systems
        assert env.api.state(env.deb) == 'running'

        # Even without an appliance: the domain is shut off and its disk
        # files are unchanged, so the service answers from the last result.
        env.api.stop_appliance(env.deb)
        assert env.api.state(env.deb) == 'stopped'
        wait_until(lambda: state_changes(recorder, env.deb) == ['stopped'], 10,
                   'PropertiesChanged ApplianceState "stopped"')
        wait_until(lambda: not (set(ours(env)) & cold.appliances),
                   30, 'the appliance domain to go away')
        recorder.clear()
        appliances = set(ours(env))
        for _ in range(3):
            assert env.api.inspect(env.deb) == cold.systems
        assert env.api.state(env.deb) == 'stopped'
        assert state_changes(recorder, env.deb) == []
        assert set(ours(env)) == appliances
    finally:
        recorder.close()


def test_stop_appliance_when_stopped_does_nothing(env, cold):
    assert env.api.state(env.deb) == 'stopped'
    env.api.stop_appliance(env.deb)
    assert env.api.state(env.deb) == 'stopped'


def test_start_appliance_rejects_unknown_options(env):
    assert env.api.state(env.deb) == 'stopped'
    expect_error('InvalidArgument', env.api.start_appliance, env.deb,
                 {'no-such-option': GLib.Variant('b', True)})
    expect_error('InvalidArgument', env.api.start_appliance, env.deb,
                 {'read-only': GLib.Variant('s', 'yes')})
    assert env.api.state(env.deb) == 'stopped'


def test_start_appliance_prewarms(env):
    recorder = SignalRecorder(env.bus.connection)
    try:
        before = set(ours(env))
        env.api.start_appliance(env.deb, {'read-only': GLib.Variant('b', True)})
        # "Returns when the appliance runs."
        assert env.api.state(env.deb) == 'running'
        wait_until(lambda: state_changes(recorder, env.deb) == ['starting', 'running'],
                   10, 'PropertiesChanged ApplianceState "starting" then "running"')
        assert len(set(ours(env)) - before) == 1
        # Already running: nothing to do.
        env.api.start_appliance(env.deb)
        assert len(set(ours(env)) - before) == 1
        recorder.clear()
        fs = env.api.list_filesystems(env.deb)
        assert {f['device'] for f in fs} == set(expected_filesystems(env))
        assert state_changes(recorder, env.deb) == []
    finally:
        recorder.close()


def new_appliance_pid(env, before):
    """The qemu pid of an appliance that was not running before, if any."""
    for name in set(ours(env)) - before:
        pid = appliance_qemu_pid(name)
        if pid is not None:
            return name, pid
    return None


def test_appliance_killed_during_call(env):
    env.api.stop_appliance(env.deb)
    assert env.api.state(env.deb) == 'stopped'
    before = set(ours(env))

    # ListFilesystems always needs the appliance (Inspect could be cached).
    call = env.api.list_filesystems_async(env.deb)
    found = wait_until(lambda: call.done() or new_appliance_pid(env, before), 300,
                       'the appliance of %s to start' % env.deb_name)
    assert not call.done(), 'the call ended before its appliance could be killed'
    name, pid = found
    os.kill(pid, signal.SIGKILL)

    error = expect_error('ApplianceFailed', call.wait)
    assert str(error)
    wait_until(lambda: env.api.state(env.deb) == 'failed', 10,
               'ApplianceState "failed" on ' + env.deb)
    wait_until(lambda: name not in ours(env), 30,
               'the killed appliance %s to go away' % name)

    # The next call launches a new appliance and succeeds.
    fs = env.api.list_filesystems(env.deb)
    assert {f['device'] for f in fs} == set(expected_filesystems(env))
    assert env.api.state(env.deb) == 'running'
    (env.deb_appliance,) = set(ours(env)) - before


def test_appliance_killed_between_calls(env):
    """An appliance that dies while idle: a call may fail with
    ApplianceFailed (never another error), and then the next one works."""
    assert env.api.state(env.deb) == 'running'
    name = env.deb_appliance
    assert name in ours(env)
    os.kill(appliance_qemu_pid(name), signal.SIGKILL)
    wait_until(lambda: name not in ours(env), 30,
               'the killed appliance %s to go away' % name)
    expected = set(expected_filesystems(env))
    try:
        fs = env.api.list_filesystems(env.deb)
    except DBusError as error:
        assert error.name == ERROR_PREFIX + 'ApplianceFailed', str(error)
        fs = env.api.list_filesystems(env.deb)
    assert {f['device'] for f in fs} == expected
    assert env.api.state(env.deb) == 'running'


# --- Other objects, and the service staying responsive ----------------------

def test_never_blocks_while_appliance_boots(env):
    """While the blank domain's appliance boots, other objects answer
    calls, property Gets and GetManagedObjects within a second; and the
    blank disk has no operating system (an empty list, not an error)."""
    assert env.api.state(env.blank_dom) == 'stopped'
    call = env.api.inspect_async(env.blank_dom)
    wait_until(lambda: call.done() or env.api.state(env.blank_dom) == 'starting', 30,
               'ApplianceState "starting" on ' + env.blank_dom)
    # Calls on different objects run in parallel: the Debian domain's warm
    # appliance answers while the blank domain's still boots.
    assert env.api.state(env.deb) == 'running'
    fs = env.api.list_filesystems(env.deb)
    assert {f['device'] for f in fs} == set(expected_filesystems(env))
    dispatch()
    assert not call.done(), 'the other appliance finished booting first'
    samples = []
    while not call.done():
        for what, func in (
                ('Get Name', lambda: env.api.get(env.deb, DOMAIN_IFACE, 'Name', PROMPT)),
                ('Get ApplianceState',
                 lambda: env.api.get(env.volume, VOLUME_IFACE, 'ApplianceState', PROMPT)),
                ('GetManagedObjects', lambda: env.api.managed_objects(PROMPT))):
            started = time.monotonic()
            func()
            elapsed = time.monotonic() - started
            samples.append((what, elapsed, call.done()))
            assert elapsed < PROMPT, '%s took %.2f s while an appliance booted' % (
                what, elapsed)
        time.sleep(0.2)
        dispatch()  # the reply, when the appliance is up
    during = [s for s in samples if not s[2]]
    assert len(during) >= 9, 'too few samples while the appliance booted: %r' % samples
    assert env.api.get(env.deb, DOMAIN_IFACE, 'Name') == env.deb_name

    (systems,) = call.wait()
    assert systems == []
    assert env.api.state(env.blank_dom) == 'running'
    env.api.stop_appliance(env.blank_dom)
    assert env.api.state(env.blank_dom) == 'stopped'


def test_domain_without_disks_fails(env):
    for func in (env.api.inspect, env.api.list_filesystems, env.api.disk_usage):
        error = expect_error('Failed', func, env.nodisk)
        assert 'disk' in str(error)
    # The service goes on serving.
    assert env.api.get(env.nodisk, DOMAIN_IFACE, 'Name') == env.nodisk_name
    assert len(env.api.inspect(env.deb)) == 1


def test_missing_disk_file_is_not_found(env):
    assert not os.path.exists(env.missing_image)
    for func in (env.api.inspect, env.api.list_filesystems):
        error = expect_error('NotFound', func, env.missing)
        assert env.missing_image in str(error)
    assert env.api.get(env.missing, DOMAIN_IFACE, 'Name') == env.missing_name
    assert len(env.api.inspect(env.deb)) == 1


def test_inspect_volume(env):
    assert env.api.get(env.volume, VOLUME_IFACE, 'Path') == env.volume_image
    assert env.api.state(env.volume, VOLUME_IFACE) == 'stopped'
    systems = env.api.inspect(env.volume)
    assert len(systems) == 1, systems
    assert_debian(systems[0], env.root)
    assert env.api.state(env.volume, VOLUME_IFACE) == 'running'
    apps = env.api.list_applications(env.volume, systems[0]['root'])
    assert sorted(a['name'] for a in apps) == sorted(p.name for p in env.root.packages)
    fs = env.api.list_filesystems(env.volume)
    assert [(f['device'], f['type'], f['label']) for f in fs] == \
        [('/dev/sda', 'ext4', env.root.label)]
    env.api.stop_appliance(env.volume, VOLUME_IFACE)
    assert env.api.state(env.volume, VOLUME_IFACE) == 'stopped'


def test_inspect_running_domain(env):
    dom = env.conn.lookupByName(env.running_name)
    dom.create()
    wait_until(lambda: env.api.get(env.running, DOMAIN_IFACE, 'Active'), 30,
               'Active on ' + env.running)
    pid = appliance_qemu_pid(env.running_name)
    assert pid is not None

    systems = env.api.inspect(env.running)
    assert len(systems) == 1, systems
    assert_debian(systems[0], env.root)
    assert env.api.state(env.running) == 'running'
    apps = env.api.list_applications(env.running, systems[0]['root'])
    assert sorted(a['name'] for a in apps) == sorted(p.name for p in env.root.packages)

    # The domain kept running, in the same qemu.
    assert dom.isActive() == 1
    assert appliance_qemu_pid(env.running_name) == pid

    env.api.stop_appliance(env.running)
    assert env.api.state(env.running) == 'stopped'
    # No job (the backup job giving the appliance its view) is left behind.
    assert dom.jobInfo()[0] == libvirt.VIR_DOMAIN_JOB_NONE
    with pytest.raises(libvirt.libvirtError):
        dom.backupGetXMLDesc(0)
    assert dom.isActive() == 1
    dom.destroy()


def test_launch_timeout(env):
    """A launch that takes longer than --launch-timeout fails with
    ApplianceFailed, and its appliance is cleaned up."""
    bus = PrivateBus()  # its own bus: the module's service owns the name here
    daemon = None
    try:
        # the watchdog says what it does to the appliance it gives up on
        daemon = Daemon(bus, [SYSTEM_URI], service_args('--launch-timeout', '3'),
                        expected_warnings=[r'appliance guestfs-\w+ did not launch in time; '
                                           r'destroying it'])
        api = GuestFSClient(bus.connection)
        path = api.lookup_domain(env.deb_name)
        before = set(ours(env))
        started = time.monotonic()
        error = expect_error('ApplianceFailed', api.list_filesystems, path)
        elapsed = time.monotonic() - started
        assert 'timeout' in str(error), str(error)
        assert elapsed < 120, 'the launch was given up only after %.0f s' % elapsed
        wait_until(lambda: api.state(path) == 'failed', 10, 'ApplianceState "failed"')
        # Nothing of that appliance is left running.
        wait_until(lambda: not (set(ours(env)) - before), 30,
                   'the timed-out appliance to go away')
        time.sleep(2)
        assert not (set(ours(env)) - before)
    finally:
        if daemon is not None:
            daemon.stop()
        bus.stop()
