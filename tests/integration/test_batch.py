# Manager.InspectDomains (issue 6): many domains in as few appliances as
# possible, against the real libvirtd (qemu:///system) with real
# libguestfs appliances under TCG.
#
# Four shut-off domains, each with its own copy of a Debian-like root
# (different host names, so that every result shows whose it is), are
# inspected by four services, each on a bus of its own:
#   - on a session bus, where sharing is on by default: the four split
#     evenly, in order, over one appliance per processor (as many as the
#     appliance limit allows), all at once; results cached;
#   - the same with --max-appliances 1: one appliance for the four;
#   - on a session bus with --no-batch-inspection --max-appliances 2: one
#     appliance per domain, never more than two at once;
#   - on a private system bus with polkitd and --batch-inspection, called
#     by nobody, whom a rule lets inspect three of the four domains: the
#     fourth gets its own error entry, and shared results are not cached.
# Appliance domains are found by sampling libvirt's running guestfs-*
# domains whose definition names our images.

import os
import shutil
import tempfile
import threading
from types import SimpleNamespace

import pytest
from gi.repository import GLib

from client import (DOMAIN_IFACE, ERROR_PREFIX, INSPECTOR_IFACE, MANAGER_IFACE, MANAGER_PATH,
                    GuestFSClient, PendingCall, call_method, expect_error, wait_until)
from conftest import (SYSTEM_URI, ApplianceWatch, Daemon, LibvirtObjects, PrivateBus,
                      cache_file, domain_path, ensure_libvirtd_running,
                      unique_name)
from images import ImageSet
from polkitstack import CALL_CLIENT, RuleFile, call_as_nobody

N_DOMAINS = 4
# The sharing services' appliance limit: above the processors of a small
# machine, so that those bound how many shared appliances run at once.
MAX_APPLIANCES = N_DOMAINS
JOB_IFACE = 'org.libvirt.GuestFS.Job'
# Not test_polkit's file: the two modules never share a rule.
RULE_FILE = RuleFile('10-lgd-test-batch.rules')

RULE = '''// lgd-test: nobody may inspect three domains (removed by the test)
polkit.addRule(function(action, subject) {
    if (action.id == "org.libvirt.guestfs.inspect" && subject.user == "nobody" &&
        action.lookup("connection") == "%(uri)s" &&
        %(names)s.indexOf(action.lookup("domain")) >= 0) {
        return polkit.Result.YES;
    }
});
'''


# --- Images, domains, a volume ---------------------------------------------------

@pytest.fixture(scope='module')
def env():
    ensure_libvirtd_running()
    images = ImageSet.create()
    virt = None
    try:
        env = SimpleNamespace(images=images)
        env.hostnames = ['lgd-batch-%d' % (i + 1) for i in range(N_DOMAINS)]
        env.image_paths = [images.debian_root(name='d%d.img' % (i + 1), hostname=hostname).path
                           for i, hostname in enumerate(env.hostnames)]
        virt = LibvirtObjects()
        env.conn = virt.conn
        env.names, env.uuids = [], []
        for i, image in enumerate(env.image_paths):
            name = unique_name('batch-%d' % (i + 1))
            dom = virt.define_domain(name, disks=[(image, 'raw')])
            env.names.append(name)
            env.uuids.append(dom.UUIDString())
        env.paths = [domain_path(SYSTEM_URI, uuid) for uuid in env.uuids]
        # A storage volume: InspectDomains takes domains only.
        pool_dir = images.path('pool')
        os.mkdir(pool_dir, 0o755)
        env.volume_image = os.path.join(pool_dir, 'vol.img')
        with open(env.volume_image, 'wb') as f:
            f.truncate(1024 * 1024)
        env.pool_name = unique_name('batch-pool')
        virt.define_dir_pool(env.pool_name, pool_dir).create(0)
        yield env
    finally:
        errors = []
        if virt is not None:
            virt.cleanup_after_service([images.dir], errors)
        images.remove()
        assert not errors, '\n'.join(errors)


def watch(env):
    """An ApplianceWatch whose markers are the four domains' UUIDs: an
    appliance reads a shut-off domain's disks through the NBD socket of a
    share named after the domain, not through the image path."""
    return ApplianceWatch(env.conn, env.uuids)


def results_by_index(env, results):
    assert sorted(results) == sorted(env.paths), results
    return [results[path] for path in env.paths]


def assert_found(entry, hostname, cached):
    assert 'error' not in entry, entry
    assert entry['cached'] is cached, entry
    systems = entry['systems']
    assert len(systems) == 1, systems
    assert (systems[0]['distro'], systems[0]['major-version'], systems[0]['hostname']) == \
        ('debian', 12, hostname), systems


def options(**kwargs):
    return {key: GLib.Variant('b', value) for key, value in kwargs.items()}


def shared_appliances(n_domains, max_appliances):
    """How many appliances a shared InspectDomains of n_domains runs at
    once: one per processor the service may use (g_get_num_processors()
    counts the affinity mask, as sched_getaffinity does), no more than
    there are domains and appliance slots."""
    return min(len(os.sched_getaffinity(0)), n_domains, max_appliances)


def assert_split(seen, uuids, n_parts):
    """The appliances seen held uuids split evenly and in order into
    n_parts, and all of them ran at once."""
    held = {name: sorted(markers) for name, markers in seen.seen.items()}
    assert set().union(*seen.seen.values()) == set(uuids), 'appliances: %s' % held
    assert len(held) == n_parts, 'expected %d appliances, saw: %s' % (n_parts, held)
    parts = sorted(sorted(uuids.index(uuid) for uuid in markers) for markers in held.values())
    sizes = [len(uuids) // n_parts + (1 if k < len(uuids) % n_parts else 0)
             for k in range(n_parts)]
    starts = [sum(sizes[:k]) for k in range(n_parts)]
    assert parts == [list(range(start, start + size)) for start, size in zip(starts, sizes)], \
        'domains (by index) per appliance: %s' % parts
    # (an appliance of an earlier call may still be stopping: not counted)
    assert seen.most_new_at_once == n_parts, \
        '%d of %d appliances ran at once (already running: %s)' \
        % (seen.most_new_at_once, n_parts, sorted(seen.baseline))


# --- A service on a session bus of its own ----------------------------------------

class SessionService:
    def __init__(self, env, label, extra):
        self.env = env
        self.bus = PrivateBus()
        self.cache_dir = tempfile.mkdtemp(prefix='lgd-test-cache-%s-' % label)
        self.daemon = None
        try:
            self.daemon = Daemon(self.bus, [SYSTEM_URI],
                                 ['--force-tcg', '--cache-dir', self.cache_dir,
                                  '--volume-rescan-interval', '1'] + list(extra))
        except BaseException:
            self.bus.stop()
            shutil.rmtree(self.cache_dir, ignore_errors=True)
            raise
        self.api = GuestFSClient(self.bus.connection)

    def job(self, job_id):
        """The path of the Job with job_id, or None."""
        for path, props in self.api.objects_with(JOB_IFACE).items():
            if props['JobId'] == job_id:
                return path
        return None

    def inspect_domains(self, paths, opts=None):
        return PendingCall(self.bus.connection, MANAGER_PATH, MANAGER_IFACE, 'InspectDomains',
                           GLib.Variant('(aoa{sv})', (paths, opts or {})), '(a{oa{sv}})')

    def known(self):
        """[(OperatingSystems, InspectedAt)] of the four domains."""
        objects = self.api.managed_objects()
        return [(objects[path][INSPECTOR_IFACE]['OperatingSystems'],
                 objects[path][INSPECTOR_IFACE]['InspectedAt']) for path in self.env.paths]

    def stop(self):
        try:
            if self.daemon.is_running():
                for path in self.env.paths:
                    if self.api.state(path) in ('starting', 'running', 'failed'):
                        self.api.stop_appliance(path)
        finally:
            try:
                self.daemon.stop()
            finally:
                self.bus.stop()
                shutil.rmtree(self.cache_dir, ignore_errors=True)


def batch_run(env, service):
    """InspectDomains over the four, appliances sampled every 0.5 s."""
    seen = watch(env)
    call = service.inspect_domains(env.paths)
    seen.during(call, interval=0.5, after=1.0)
    (results,) = call.wait()
    return SimpleNamespace(results=results, watch=seen,
                           elapsed=call.finished - call.sent)


def service_run(env, name, args):
    """A module fixture's body: a service with args, its batch_run (with
    the service as .service) for the tests, then the service stopped."""
    service = SessionService(env, name, args)
    try:
        run = batch_run(env, service)
        run.service = service
        yield run
    finally:
        service.stop()


@pytest.fixture(scope='module')
def shared(env):
    """Sharing on, as by default on the session bus."""
    yield from service_run(env, 'shared', ['--idle-timeout', '10',
                                           '--max-appliances', str(MAX_APPLIANCES)])


@pytest.fixture(scope='module')
def serial(env):
    """Sharing on, one appliance at a time."""
    yield from service_run(env, 'serial', ['--idle-timeout', '10', '--max-appliances', '1'])


@pytest.fixture(scope='module')
def apart(env):
    """Sharing off, at most two appliances at once (idle ones stop after
    2 s, so that the next domains get their turn soon)."""
    yield from service_run(env, 'apart', ['--no-batch-inspection', '--max-appliances', '2',
                                          '--idle-timeout', '2'])


# --- Sharing on ----------------------------------------------------------------------

def test_shared_splits_over_processors(env, shared):
    """Under TCG an appliance inspects one guest after the other on one
    processor: the domains are spread over one appliance per processor."""
    assert_split(shared.watch, env.uuids, shared_appliances(N_DOMAINS, MAX_APPLIANCES))
    entries = results_by_index(env, shared.results)
    for entry, hostname in zip(entries, env.hostnames):
        assert_found(entry, hostname, cached=False)


def test_shared_results_are_published_and_cached(env, shared):
    service = shared.service
    entries = results_by_index(env, shared.results)
    # Session bus: every disk is the caller's own, so results are kept.
    for (systems, inspected_at), entry in zip(service.known(), entries):
        assert systems == entry['systems']
        assert inspected_at > 0
    for uuid in env.uuids:
        assert os.path.exists(cache_file(service.cache_dir, SYSTEM_URI, uuid)), uuid

    seen = watch(env)
    call = service.inspect_domains(env.paths)
    seen.during(call, interval=0.2, after=2.0)
    (again,) = call.wait()
    assert seen.appeared() == [], 'appliances appeared: %s' % seen.appeared()
    for entry, first, hostname in zip(results_by_index(env, again), entries, env.hostnames):
        assert_found(entry, hostname, cached=True)
        assert entry['systems'] == first['systems']
    # refresh ignores the cache: the same appliances again.
    seen = watch(env)
    call = service.inspect_domains(env.paths, options(refresh=True))
    seen.during(call)
    (refreshed,) = call.wait()
    assert_split(seen, env.uuids, shared_appliances(N_DOMAINS, MAX_APPLIANCES))
    for entry, first, hostname in zip(results_by_index(env, refreshed), entries, env.hostnames):
        assert_found(entry, hostname, cached=False)
        assert entry['systems'] == first['systems']


def test_errors_are_entries(env, shared):
    service = shared.service
    volume = wait_until(lambda: service.api.try_lookup_volume(env.volume_image), 30,
                        'the volume object of ' + env.volume_image)
    unknown = domain_path(SYSTEM_URI, '00000000-0000-4000-8000-00000000dead')
    call = service.inspect_domains([unknown, volume, env.paths[0], MANAGER_PATH])
    (results,) = call.wait()
    assert sorted(results) == sorted([unknown, volume, env.paths[0], MANAGER_PATH])
    assert results[unknown]['error'] == ERROR_PREFIX + 'NotFound', results[unknown]
    assert results[MANAGER_PATH]['error'] == ERROR_PREFIX + 'NotFound', results[MANAGER_PATH]
    assert results[volume]['error'] == ERROR_PREFIX + 'InvalidArgument', results[volume]
    for path in (unknown, volume, MANAGER_PATH):
        assert results[path]['message'], results[path]
        assert 'systems' not in results[path], results[path]
    # ...while the others succeed (from the cache: no appliance).
    assert_found(results[env.paths[0]], env.hostnames[0], cached=True)

    for bad in ({'no-such-option': GLib.Variant('b', True)},
                {'refresh': GLib.Variant('s', 'yes')}):
        call = service.inspect_domains(env.paths, bad)
        expect_error('InvalidArgument', call.wait)


def test_shared_cancel_stops_every_part(env, shared):
    """Cancel while every part's appliance runs: all of them stop, the
    call fails as cancelled."""
    service = shared.service
    n_parts = shared_appliances(N_DOMAINS, MAX_APPLIANCES)
    seen = watch(env)
    call = service.inspect_domains(env.paths, {'refresh': GLib.Variant('b', True),
                                               'job-id': GLib.Variant('s', 'batch-cancel')})
    job = wait_until(lambda: service.job('batch-cancel'), 30, 'the InspectDomains job')
    wait_until(lambda: len(seen.sample()) == n_parts or call.done(), 120,
               'the appliances of %d parts' % n_parts)
    assert not call.done(), 'InspectDomains returned before it was cancelled'
    call_method(service.bus.connection, job, JOB_IFACE, 'Cancel', GLib.Variant('(a{sv})', ({},)))
    expect_error('Cancelled', call.wait)
    wait_until(lambda: not seen.sample(), 60, 'the appliances to stop')
    assert len(seen.appeared()) == n_parts, seen.seen


def test_one_slot_one_appliance(env, serial):
    """--max-appliances 1: one appliance inspects the four."""
    seen = serial.watch
    assert len(seen.appeared()) == 1, seen.seen
    assert seen.seen[seen.appeared()[0]] == set(env.uuids)
    assert seen.most_at_once == 1, seen.most_at_once
    for entry, hostname in zip(results_by_index(env, serial.results), env.hostnames):
        assert_found(entry, hostname, cached=False)


# --- Sharing off ---------------------------------------------------------------------

def test_apart_one_appliance_each(env, apart):
    seen = apart.watch
    held = {name: sorted(images) for name, images in seen.seen.items()}
    assert len(held) == N_DOMAINS, 'appliances: %s' % held
    # One domain's disk each, every domain once.
    assert sorted(images[0] for images in held.values() if len(images) == 1) == \
        sorted(env.uuids), held
    assert seen.most_at_once <= 2, 'up to %d appliances ran at once with ' \
        '--max-appliances 2' % seen.most_at_once
    assert seen.samples >= 10, seen.samples
    for entry, hostname in zip(results_by_index(env, apart.results), env.hostnames):
        assert_found(entry, hostname, cached=False)


def test_apart_results_are_what_inspect_returns(env, apart):
    service = apart.service
    entries = results_by_index(env, apart.results)
    for (systems, inspected_at), entry in zip(service.known(), entries):
        assert systems == entry['systems']
        assert inspected_at > 0
    seen = watch(env)
    for path, entry in zip(env.paths, entries):
        assert service.api.inspect(path) == entry['systems']
    seen.sample()
    assert seen.appeared() == []


def test_same_results_with_and_without_sharing(env, shared, apart):
    """A shared appliance sees the four disks as sda..sdd; what each
    domain gets must still be what Inspect on that domain returns (its
    own appliance, where its disk is sda): roots and mount points that
    ListApplications, GetIcon and the Files methods then take."""
    differences = []
    for name, with_sharing, without in zip(env.names, results_by_index(env, shared.results),
                                           results_by_index(env, apart.results)):
        if with_sharing['systems'] != without['systems']:
            keys = sorted({key for a, b in zip(with_sharing['systems'], without['systems'])
                           for key in set(a) | set(b) if a.get(key) != b.get(key)})
            differences.append('%s: %s differ\n  shared: %r\n  apart:  %r'
                               % (name, ', '.join(keys) or 'the number of systems',
                                  with_sharing['systems'], without['systems']))
    assert not differences, '\n'.join(differences)


# --- A denied domain, on the system bus -----------------------------------------------

def rule_for(names):
    return RULE % {'uri': SYSTEM_URI, 'names': '[%s]' % ', '.join('"%s"' % n for n in names)}


class InThread:
    """func(*args) in a thread of its own, with done() for ApplianceWatch."""

    def __init__(self, func, *args):
        self._result = None
        self._error = None
        self._thread = threading.Thread(target=self._run, args=(func,) + args, daemon=True)
        self._thread.start()

    def _run(self, func, *args):
        try:
            self._result = func(*args)
        except BaseException as error:  # re-raised by wait()
            self._error = error

    def done(self):
        return not self._thread.is_alive()

    def wait(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


def nobody_batch(sysenv, paths):
    """InspectDomains as nobody, appliances sampled meanwhile."""
    seen = ApplianceWatch(sysenv.conn, sysenv.uuids)
    call = InThread(call_as_nobody, sysenv.stack, MANAGER_PATH, MANAGER_IFACE,
                    'InspectDomains', '(aoa{sv})', [paths, {}])
    seen.during(call, interval=0.5, after=1.0)
    report = call.wait()
    assert 'reply' in report, report
    return SimpleNamespace(results=report['reply'][0], watch=seen)


@pytest.fixture(scope='module')
def denied(env, polkit):
    """The service on a private system bus with polkitd and
    --batch-inspection; nobody may inspect all domains but the last."""
    polkit.check(RULE_FILE)
    sysenv = SimpleNamespace(conn=env.conn, uuids=env.uuids)
    sysenv.denied = env.paths[-1]
    sysenv.cache_dir = tempfile.mkdtemp(prefix='lgd-test-cache-system-')
    polkit.add_cleanup(lambda: shutil.rmtree(sysenv.cache_dir, ignore_errors=True))
    # The rule is written before polkitd starts: it reads it at once.
    stack = polkit.start(['--connect', SYSTEM_URI, '--force-tcg', '--batch-inspection',
                          '--cache-dir', sysenv.cache_dir, '--idle-timeout', '30',
                          '--max-appliances', str(MAX_APPLIANCES)],
                         CALL_CLIENT, rule=RULE_FILE, rule_text=rule_for(env.names[:-1]))
    sysenv.stack = stack
    sysenv.bus = stack.bus
    sysenv.api = stack.service.client
    # The objects are those of the other services: same URI, same UUIDs.
    for path in env.paths:
        sysenv.api.get_property(path, DOMAIN_IFACE, 'Name')
    sysenv.first = nobody_batch(sysenv, env.paths)
    return sysenv


def system_known(sysenv, paths):
    objects = sysenv.api.get_managed_objects()
    return [(objects[path][INSPECTOR_IFACE]['OperatingSystems'],
             objects[path][INSPECTOR_IFACE]['InspectedAt']) for path in paths]


def test_denied_domain_gets_its_own_error(env, denied):
    results = denied.first.results
    assert sorted(results) == sorted(env.paths), results
    entry = results[denied.denied]
    assert entry.get('error') == ERROR_PREFIX + 'NotAuthorized', entry
    assert entry.get('message'), entry
    assert 'systems' not in entry, entry
    for path, hostname in zip(env.paths[:-1], env.hostnames[:-1]):
        assert_found(results[path], hostname, cached=False)
    # The three allowed split over the appliances; the denied domain's
    # disk never went into one.
    assert_split(denied.first.watch, env.uuids[:-1],
                 shared_appliances(N_DOMAINS - 1, MAX_APPLIANCES))


def test_shared_results_are_not_cached_on_system_bus(env, denied):
    for path, (systems, inspected_at) in zip(env.paths, system_known(denied, env.paths)):
        assert (systems, inspected_at) == ([], 0), path
    assert [name for name in os.listdir(denied.cache_dir)
            if name.endswith('.inspection')] == []

    second = nobody_batch(denied, env.paths)
    assert second.results[denied.denied].get('error') == ERROR_PREFIX + 'NotAuthorized'
    for path, hostname in zip(env.paths[:-1], env.hostnames[:-1]):
        assert_found(second.results[path], hostname, cached=False)
        assert second.results[path]['systems'] == denied.first.results[path]['systems']
    assert_split(second.watch, env.uuids[:-1], shared_appliances(N_DOMAINS - 1, MAX_APPLIANCES))
    for path, (systems, inspected_at) in zip(env.paths, system_known(denied, env.paths)):
        assert (systems, inspected_at) == ([], 0), path
