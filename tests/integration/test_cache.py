# The persistent inspection cache (issue 6) against the real libvirtd
# (qemu:///system), with real libguestfs appliances under TCG.
#
# One story for the whole module, told in file order: the service is
# stopped and started again on the same cache directory (a temporary one),
# so that what one run found is what the next run starts from.  Appliances
# boot in 15-40 s; the module boots nine (three of them at once).  Every
# libvirt object is named lgd-test-* and removed at the end, even after a
# failure.

import hashlib
import os
import shutil
import tempfile
import time

import pytest
from gi.repository import GLib

from client import (DOMAIN_IFACE, FILES_IFACE, INSPECTOR_IFACE, MIB, GuestFSClient, PendingCall,
                    wait_until)
from conftest import (SYSTEM_URI, ApplianceWatch, Daemon, LibvirtObjects, SignalRecorder,
                      appliance_domains, cache_file,
                      ensure_libvirtd_running, state_changes, unique_name)
from images import ImageSet

# What a cache file holds (src/lgd-cache.c): magic, version, uri, id,
# identity, inspected-at, systems, icons.
CACHE_FORMAT = '(susssxaa{sv}a{say})'
HOSTNAMES = {'a': 'lgd-cache-a', 't': 'lgd-cache-t', 'g': 'lgd-cache-g'}


def read_entry(path):
    """The cache file at path, decoded, or None when it is not a
    well-formed entry."""
    with open(path, 'rb') as f:
        data = f.read()
    value = GLib.Variant.new_from_bytes(GLib.VariantType(CACHE_FORMAT),
                                        GLib.Bytes.new(data), False)
    if not value.is_normal_form():
        return None
    magic, version, uri, object_id, identity, inspected_at, systems, icons = \
        value.unpack()
    return dict(magic=magic, version=version, uri=uri, id=object_id, identity=identity,
                inspected_at=inspected_at, systems=systems)


def cache_files(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith('.inspection'))


def assert_system(systems, hostname):
    assert len(systems) == 1, systems
    system = systems[0]
    assert (system['root'], system['type'], system['distro'], system['major-version'],
            system['minor-version'], system['hostname'], system['mountpoints']) == \
        ('/dev/sda', 'linux', 'debian', 12, 5, hostname, {'/': '/dev/sda'}), system


class Env:
    """The images, domains and cache directory of the module, and the
    service of the moment (started and stopped by the tests)."""

    def __init__(self, bus):
        self.bus = bus
        self.api = GuestFSClient(bus.connection)
        self.daemon = None
        self.images = None
        self.virt = None
        self.cache_dir = tempfile.mkdtemp(prefix='lgd-test-cache-')
        self.results = {}

    def setup(self):
        ensure_libvirtd_running()
        self.images = ImageSet.create()
        self.markers = [self.images.dir]
        self.image = {key: self.images.debian_root(name='%s.img' % key, hostname=hostname).path
                      for key, hostname in HOSTNAMES.items()}
        self.virt = LibvirtObjects()
        self.conn = self.virt.conn
        # f shares a's disk: a copy of a's cache file is then a valid entry
        # with the right disk identity, only for another object.
        disks = {'a': 'a', 'f': 'a', 't': 't', 'g': 'g'}
        self.names, self.uuids = {}, {}
        for key, image in disks.items():
            name = unique_name('cache-' + key)
            dom = self.virt.define_domain(name, disks=[(self.image[image], 'raw')])
            self.names[key] = name
            self.uuids[key] = dom.UUIDString()
            self.markers.append(self.uuids[key])
        self.hostname = {'a': HOSTNAMES['a'], 'f': HOSTNAMES['a'], 't': HOSTNAMES['t'],
                         'g': HOSTNAMES['g']}

    def start(self, *extra, expected_warnings=()):
        assert self.daemon is None
        self.daemon = Daemon(self.bus, [SYSTEM_URI],
                             ['--force-tcg', '--cache-dir', self.cache_dir,
                              '--idle-timeout', '900', '--volume-rescan-interval', '60']
                             + list(extra), expected_warnings=expected_warnings)
        self.path = {key: self.api.lookup_domain(name) for key, name in self.names.items()}
        return self.daemon

    def stop(self):
        """Stops the appliances, then the service (which must exit with 0)."""
        daemon, self.daemon = self.daemon, None
        if daemon is None:
            return
        try:
            if daemon.is_running():
                for path in self.path.values():
                    if self.api.state(path) in ('starting', 'running', 'failed'):
                        self.api.stop_appliance(path)
        finally:
            daemon.stop()

    def file(self, key):
        return cache_file(self.cache_dir, SYSTEM_URI, self.uuids[key])

    def known(self, key):
        """(OperatingSystems, InspectedAt) of a domain, read in one
        GetManagedObjects as an application would."""
        props = self.api.managed_objects()[self.path[key]][INSPECTOR_IFACE]
        return props['OperatingSystems'], props['InspectedAt']

    def inspect(self, key, refresh=None):
        options = {} if refresh is None else {'refresh': GLib.Variant('b', refresh)}
        return PendingCall(self.bus.connection, self.path[key], INSPECTOR_IFACE, 'Inspect',
                           GLib.Variant('(a{sv})', (options,)), '(aa{sv})')

    def watch(self):
        return ApplianceWatch(self.conn, self.markers)

    def cleanup(self):
        errors = []
        try:
            self.stop()
        except Exception as error:
            errors.append('stopping the service: %s' % error)
        if self.virt is not None:
            self.virt.cleanup_after_service(self.markers, errors)
        if self.images is not None:
            self.images.remove()
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        assert not errors, '\n'.join(errors)


@pytest.fixture(scope='module')
def env(private_bus):
    env = Env(private_bus)
    try:
        env.setup()
        yield env
    finally:
        env.cleanup()


def wait_known(env, key, systems, what):
    wait_until(lambda: env.known(key)[0] == systems, 10, what)
    return env.known(key)


def next_second():
    """Sleeps into the next second, so that InspectedAt (in seconds) of
    what comes next differs from what came before."""
    time.sleep(1.05 - (time.time() % 1.0))


# --- A first run fills the cache ------------------------------------------------

def test_fresh_start_knows_nothing(env):
    env.start()
    for key in env.names:
        assert env.known(key) == ([], 0), key
    assert cache_files(env.cache_dir) == []


def test_inspect_fills_properties_and_cache(env):
    recorder = SignalRecorder(env.bus.connection)
    try:
        before = time.time()
        call = env.inspect('a')
        systems = call.wait()[0]
        after = time.time()
        assert_system(systems, env.hostname['a'])
        wait_until(lambda: any(c.get('OperatingSystems') == systems
                               for c in recorder.changed(env.path['a'], INSPECTOR_IFACE)),
                   10, 'PropertiesChanged OperatingSystems on ' + env.path['a'])
        known, inspected_at = env.known('a')
        assert known == systems
        assert int(before) <= inspected_at <= int(after) + 1, (before, inspected_at, after)
        # Only the inspected object changed.
        for key in ('f', 't', 'g'):
            assert env.known(key) == ([], 0), key
    finally:
        recorder.close()

    entry = read_entry(env.file('a'))
    assert entry is not None, 'the cache file of a is not a valid entry'
    assert (entry['uri'], entry['id'], entry['inspected_at'], entry['systems']) == \
        (SYSTEM_URI, env.uuids['a'], inspected_at, systems)
    assert cache_files(env.cache_dir) == [os.path.basename(env.file('a'))]
    env.results['a'] = systems
    env.inspected_at = inspected_at
    env.stop()


# --- After a restart ----------------------------------------------------------------

def test_restart_publishes_cached_result(env):
    env.start()
    # Filled before the service owns its name: the first GetManagedObjects
    # already has it.
    assert env.known('a') == (env.results['a'], env.inspected_at)
    for key in ('f', 't', 'g'):
        assert env.known(key) == ([], 0), key


def test_cached_inspect_launches_nothing(env):
    path = env.path['a']
    assert env.api.state(path) == 'stopped'
    recorder = SignalRecorder(env.bus.connection)
    try:
        watch = env.watch()
        call = env.inspect('a')
        # Sampled while the call runs and for a while after, in case a
        # launch were started behind the reply.
        watch.during(call, interval=0.1, after=3.0)
        systems = call.wait()[0]
        assert systems == env.results['a']
        assert call.finished - call.sent < 5.0, 'a cached Inspect took %.1f s' % (
            call.finished - call.sent)
        assert watch.appeared() == [], 'appliances appeared: %s' % watch.appeared()
        assert env.api.state(path) == 'stopped'
        recorder.flush()
        assert state_changes(recorder, path) == []
        # Nothing new was learnt: the properties did not change either.
        assert recorder.changed(path, INSPECTOR_IFACE) == []
        assert env.known('a') == (env.results['a'], env.inspected_at)
    finally:
        recorder.close()


def test_refresh_launches(env):
    path = env.path['a']
    next_second()
    recorder = SignalRecorder(env.bus.connection)
    try:
        watch = env.watch()
        call = env.inspect('a', refresh=True)
        watch.during(call)
        systems = call.wait()[0]
        assert systems == env.results['a']
        assert len(watch.appeared()) == 1, watch.appeared()
        wait_until(lambda: state_changes(recorder, path) == ['starting', 'running'], 10,
                   'ApplianceState "starting" then "running"')
        # A new inspection: a new InspectedAt, on the bus and on disk.
        wait_until(lambda: env.known('a')[1] > env.inspected_at, 10, 'a newer InspectedAt')
        entry = read_entry(env.file('a'))
        assert entry['inspected_at'] == env.known('a')[1]
        env.inspected_at = entry['inspected_at']
    finally:
        recorder.close()
    env.api.stop_appliance(path)
    wait_until(lambda: not appliance_domains(env.conn, env.markers), 30,
               'the appliance to go away')


def test_touched_disk_invalidates(env):
    path = env.path['a']
    assert env.api.state(path) == 'stopped'
    image = env.image['a']
    mtime = os.stat(image).st_mtime_ns
    next_second()
    os.utime(image)  # now: nothing else changes
    assert os.stat(image).st_mtime_ns != mtime
    recorder = SignalRecorder(env.bus.connection)
    try:
        watch = env.watch()
        call = env.inspect('a')
        watch.during(call)
        systems = call.wait()[0]
        assert systems == env.results['a']
        assert len(watch.appeared()) == 1, 'the touched disk was not inspected again'
        wait_until(lambda: state_changes(recorder, path) == ['starting', 'running'], 10,
                   'ApplianceState "starting" then "running"')
        wait_until(lambda: env.known('a')[1] > env.inspected_at, 10, 'a newer InspectedAt')
        entry = read_entry(env.file('a'))
        assert entry['inspected_at'] == env.known('a')[1]
        assert entry['systems'] == systems
        env.inspected_at = entry['inspected_at']
    finally:
        recorder.close()


# --- Bad cache files, and the bound on the directory -----------------------------

def test_corrupt_files_are_survived(env):
    env.stop()
    with open(env.file('a'), 'rb') as f:
        valid = f.read()
    assert read_entry(env.file('a')) is not None
    garbage = hashlib.sha512(b'lgd-test garbage').digest() * (len(valid) // 64 + 1)
    bad = {
        'f': valid,                    # a valid entry, of another object (a)
        't': valid[:len(valid) // 2],  # truncated
        'g': garbage[:len(valid)],     # garbage
    }
    for key, data in bad.items():
        with open(env.file(key), 'wb') as f:
            f.write(data)
        os.chmod(env.file(key), 0o600)
    # Big files that are not entries of any object, older than every
    # entry: with --cache-max-size 1 they are what the next store evicts.
    env.fakes = []
    for i in range(3):
        fake = os.path.join(env.cache_dir, hashlib.sha256(b'fake %d' % i).hexdigest()
                            + '.inspection')
        with open(fake, 'wb') as f:
            f.write(b'\0' * (400 * 1024))
        os.utime(fake, (1000000000 + i, 1000000000 + i))
        env.fakes.append(fake)

    # the service says which files it removes: the ones the test broke
    env.start('--cache-max-size', '1',
              expected_warnings=[r'ignoring and removing the unusable cache file '])
    # The valid entry is still used; the bad ones are not trusted.
    assert env.known('a') == (env.results['a'], env.inspected_at)
    for key in bad:
        assert env.known(key) == ([], 0), key

    calls = {key: env.inspect(key) for key in bad}
    for key, call in calls.items():
        systems = call.wait()[0]
        assert_system(systems, env.hostname[key])
        env.results[key] = systems
    for key in bad:
        assert env.api.state(env.path[key]) == 'running', key
        known, inspected_at = wait_known(env, key, env.results[key],
                                         'OperatingSystems of ' + key)
        assert inspected_at > 0
        entry = read_entry(env.file(key))
        assert entry is not None, 'the cache file of %s was not rewritten' % key
        assert (entry['uri'], entry['id'], entry['systems'], entry['inspected_at']) == \
            (SYSTEM_URI, env.uuids[key], env.results[key], inspected_at), key
    assert env.daemon.is_running()


def test_cache_is_bounded(env):
    # Stores happened since the big files were put there (previous test).
    names = cache_files(env.cache_dir)
    total = sum(os.path.getsize(os.path.join(env.cache_dir, name)) for name in names)
    assert total <= 1 * MIB, '%d bytes in %s: %s' % (total, env.cache_dir, names)
    assert not os.path.exists(env.fakes[0]), 'the oldest file was kept'
    # What was just stored, and the valid older entry, are kept.
    for key in ('a', 'f', 't', 'g'):
        assert os.path.exists(env.file(key)), key


def test_touched_disk_empties_property_at_restart(env):
    env.stop()
    next_second()
    os.utime(env.image['a'])
    env.start()
    # a and f share the touched disk; t and g do not.
    for key in ('a', 'f'):
        assert env.known(key) == ([], 0), key
    for key in ('t', 'g'):
        systems, inspected_at = env.known(key)
        assert systems == env.results[key] and inspected_at > 0, key

    watch = env.watch()
    call = env.inspect('a')
    watch.during(call)
    assert call.wait()[0] == env.results['a']
    assert len(watch.appeared()) == 1, watch.appeared()
    wait_known(env, 'a', env.results['a'], 'OperatingSystems of a')
    assert read_entry(env.file('a'))['systems'] == env.results['a']
    env.api.stop_appliance(env.path['a'])


# --- What drops an entry -------------------------------------------------------------

def test_domain_start_drops_entry(env):
    path = env.path['t']
    assert env.known('t')[0] == env.results['t']
    assert os.path.exists(env.file('t'))
    recorder = SignalRecorder(env.bus.connection)
    try:
        env.conn.lookupByName(env.names['t']).create()
        wait_until(lambda: any(c.get('OperatingSystems') == []
                               for c in recorder.changed(path, INSPECTOR_IFACE)),
                   10, 'PropertiesChanged OperatingSystems [] on ' + path)
        assert env.known('t') == ([], 0)
        wait_until(lambda: not os.path.exists(env.file('t')), 10,
                   'the cache file of t to be removed')
    finally:
        recorder.close()


def test_running_domain_is_not_cached_and_stop_empties(env):
    path = env.path['t']
    dom = env.conn.lookupByName(env.names['t'])
    assert dom.isActive() == 1
    systems = env.inspect('t').wait()[0]
    assert_system(systems, env.hostname['t'])
    # Every inspection updates the property...
    known, inspected_at = wait_known(env, 't', systems, 'OperatingSystems of t')
    assert inspected_at > 0
    # ...but a running domain's disks change under us: nothing is cached.
    assert not os.path.exists(env.file('t'))

    env.api.stop_appliance(path)
    dom.destroy()
    wait_until(lambda: not env.api.get(path, DOMAIN_IFACE, 'Active'), 10,
               'Active false on ' + path)
    # "emptied when the domain starts or stops"
    try:
        wait_until(lambda: env.known('t') == ([], 0), 10,
                   'OperatingSystems and InspectedAt of t to be emptied when it stopped')
    except AssertionError as error:
        raise AssertionError('%s; still %r' % (error, env.known('t'))) from None
    assert not os.path.exists(env.file('t'))


def test_write_drops_entry(env):
    path = env.path['g']
    known, inspected_at = env.known('g')
    assert known == env.results['g'] and inspected_at > 0
    assert os.path.exists(env.file('g'))
    recorder = SignalRecorder(env.bus.connection)
    try:
        env.api.call(path, FILES_IFACE, 'WriteFile',
                     GLib.Variant('(saya{sv})', ('/etc/lgd-cache-test', b'written\n', {})))
        # Dropped before the reply.
        assert not os.path.exists(env.file('g'))
        wait_until(lambda: any(c.get('OperatingSystems') == []
                               for c in recorder.changed(path, INSPECTOR_IFACE)),
                   10, 'PropertiesChanged OperatingSystems [] on ' + path)
        assert env.known('g') == ([], 0)

        # The next Inspect inspects again (on the read-write appliance the
        # write left running) and fills the cache again.
        next_second()
        systems = env.inspect('g').wait()[0]
        assert systems == env.results['g']
        known, inspected_at_now = wait_known(env, 'g', systems, 'OperatingSystems of g')
        assert inspected_at_now > inspected_at
        assert read_entry(env.file('g'))['systems'] == systems
    finally:
        recorder.close()
    env.stop()
