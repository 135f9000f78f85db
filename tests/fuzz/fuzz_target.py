# What the fuzzer runs against: the built daemon on a private bus (as the
# integration tests start it), serving libvirt's test:///default driver
# (fast object-model calls) and, unless told not to, qemu:///system with one
# small domain and one volume made here, so that some calls really reach an
# appliance.  Only those objects (and the test driver's) are ever called:
# other domains on qemu:///system belong to other users of the machine.

import os
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION_DIR = os.path.join(os.path.dirname(HERE), 'integration')
sys.path.insert(0, INTEGRATION_DIR)

from conftest import (DOMAIN_IFACE, MANAGER_PATH, SYSTEM_URI,  # noqa: E402
                      Daemon, LibvirtObjects, PrivateBus,
                      domain_path, ensure_libvirtd_running, unique_name, volume_path,
                      wait_until)
from images import MIB, ImageSet  # noqa: E402

TEST_URI = 'test:///default'
# Seconds the daemon has to exit on SIGTERM: appliances under TCG on a
# loaded machine take a while to shut down.
STOP_TIMEOUT = 60.0
VOLUME_SIZE = 4 * MIB

# What a sanitizer build prints when it finds something.
SANITIZER_MARKERS = ('ERROR: AddressSanitizer', 'runtime error:', 'LeakSanitizer',
                     'ERROR: ThreadSanitizer')
# GLib's reports of programming errors in the daemon.
CRITICAL_MARKERS = ('-CRITICAL **', 'CRITICAL **')


def thread_stacks(pid):
    """The backtraces of every thread of pid, shortened to the frames
    that name a function, or why they could not be read."""
    if not shutil.which('gdb'):
        return '(no gdb to show them)'
    try:
        result = subprocess.run(['gdb', '-p', str(pid), '-batch', '-nx',
                                 '-ex', 'thread apply all bt'],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return '(gdb took too long)'
    lines = [line for line in result.stdout.splitlines()
             if line.startswith('Thread ') or line.startswith('#')]
    return '\n'.join('      ' + line[:200] for line in lines) or result.stdout[-2000:]


class FuzzDaemon(Daemon):
    """conftest's Daemon, whose output outlives stop() (a sanitizer
    reports leaks when the daemon exits), and which is given STOP_TIMEOUT
    to exit: after a fuzz run it may have appliances to shut down."""

    def stop(self):
        """SIGTERM; the daemon must exit with status 0 within STOP_TIMEOUT.
        One that does not has its threads' stacks printed (gdb) before it
        is killed, so that the report says where it waits."""
        if self.process.poll() is not None:
            raise AssertionError('the service died during the run (status %d)'
                                 % self.process.returncode)
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            stacks = thread_stacks(self.process.pid)
            self.process.kill()
            self.process.wait()
            raise AssertionError('the service did not exit within %.0f s of SIGTERM; '
                                 'its threads were waiting in:\n%s'
                                 % (STOP_TIMEOUT, stacks)) from None
        if status != 0:
            raise AssertionError('the service exited with status %d on SIGTERM' % status)

    def _remove_log(self):
        pass

    def remove_log(self):
        Daemon._remove_log(self)


class SystemObjects:
    """A shut-off domain with a small Debian-looking disk and a raw volume
    in a pool of its own, on qemu:///system; removed by cleanup()."""

    def __init__(self):
        ensure_libvirtd_running()
        self.virt = LibvirtObjects()
        self.images = None
        try:
            self.images = ImageSet.create()
            root = self.images.debian_root(size=32 * MIB, hostname='lgd-fuzz')
            dom = self.virt.define_domain(unique_name('fuzz'), [(root.path, 'raw')])
            self.domain_path = domain_path(SYSTEM_URI, dom.UUIDString())
            pool_dir = self.virt.make_dir('fuzz-pool')
            volume = os.path.join(pool_dir, 'fuzz-volume.img')
            with open(volume, 'wb') as f:
                f.truncate(VOLUME_SIZE)
            os.chmod(volume, 0o644)
            self.virt.define_dir_pool(unique_name('fuzz-pool'), pool_dir).create(0)
            # A directory pool's volume key is its path.
            self.volume_path = volume_path(SYSTEM_URI, volume)
            self.disk_images = [root.path, volume]
        except BaseException:
            self.cleanup()
            raise

    def cleanup(self):
        try:
            self.virt.cleanup()
        finally:
            if self.images is not None:
                self.images.remove()


class Service:
    """One daemon on a private bus of its own, and the objects of it the
    fuzzer calls ({path: [interfaces]}, the Manager included)."""

    def __init__(self, name, uris, extra_args, wanted, cache_dir):
        self.name = name
        self.bus = self.daemon = None
        self.appliance_objects = set(wanted)
        try:
            self.bus = PrivateBus()
            # The daemon inherits this process's environment: a sanitizer
            # build gets ASAN_OPTIONS/UBSAN_OPTIONS from whoever runs us.
            self.daemon = FuzzDaemon(self.bus, uris, list(extra_args) + [
                '--cache-dir', cache_dir])
            self.objects = self._wait_for_objects(wanted)
        except BaseException:
            self.kill()
            self.cleanup()
            raise

    def _wait_for_objects(self, wanted):
        client = self.daemon.client

        def ready():
            objects = client.get_managed_objects()
            test_domains = [p for p, i in objects.items()
                            if DOMAIN_IFACE in i and '/test_default/' in p]
            if (test_domains or wanted) and all(p in objects for p in wanted):
                return objects
            return None

        objects = wait_until(ready, 60, 'the objects to fuzz on ' + self.name)
        picked = {p: sorted(i) for p, i in objects.items()
                  if '/test_default/' in p or p in wanted}
        picked[MANAGER_PATH] = ['org.libvirt.GuestFS.Manager']
        return picked

    @property
    def address(self):
        return self.bus.address

    def alive(self):
        return self.daemon.is_running()

    def log(self):
        return self.daemon.log()

    def log_findings(self):
        """Lines of the daemon's output that are findings by themselves."""
        return ['%s: %s' % (self.name, line) for line in self.log().splitlines()
                if any(marker in line for marker in SANITIZER_MARKERS + CRITICAL_MARKERS)]

    def get_managed_objects(self):
        return self.daemon.client.get_managed_objects()

    def stop(self):
        """Stops the daemon (it must exit with status 0 on SIGTERM);
        returns the failure, if any.  The output stays readable."""
        try:
            self.daemon.stop()
        except AssertionError as error:
            return str(error).split('; its output:')[0]
        return None

    def kill(self):
        if self.daemon is not None and self.daemon.is_running():
            self.daemon.process.kill()
            self.daemon.process.wait()

    def cleanup(self):
        if self.daemon is not None:
            self.daemon.remove_log()
        if self.bus is not None:
            self.bus.stop()


class Target:
    """The services the fuzzer calls: one daemon on test:///default (the
    object model, every call answered at once) and, with appliance, one on
    qemu:///system with the SystemObjects.  Two daemons, so that calls on
    the test driver never wait for an appliance slot of the other."""

    def __init__(self, daemon_binary, appliance, launch_timeout, idle_timeout):
        os.environ['LGD_DAEMON'] = daemon_binary
        # As tools/lib.sh sets them: KVM hangs here.
        os.environ.setdefault('LIBGUESTFS_BACKEND', 'libvirt')
        os.environ.setdefault('LIBGUESTFS_BACKEND_SETTINGS', 'force_tcg')
        self.system = None
        self.services = []
        self.cache_dir = tempfile.mkdtemp(prefix='lgd-fuzz-cache-')
        args = ['--max-appliances', '2', '--idle-timeout', str(idle_timeout),
                '--transfer-idle-timeout', '5',
                '--launch-timeout', str(launch_timeout), '--volume-rescan-interval', '1',
                '--force-tcg']
        try:
            self.services.append(Service('test:///default', [TEST_URI], args, [],
                                         os.path.join(self.cache_dir, 'test')))
            if appliance:
                self.system = SystemObjects()
                self.services.append(Service(
                    'qemu:///system', [SYSTEM_URI], args,
                    [self.system.domain_path, self.system.volume_path],
                    os.path.join(self.cache_dir, 'system')))
        except BaseException:
            self.cleanup()
            raise

    def kill(self):
        for service in self.services:
            service.kill()

    def cleanup(self):
        try:
            for service in self.services:
                service.cleanup()
            shutil.rmtree(self.cache_dir, ignore_errors=True)
        finally:
            if self.system is not None:
                self.system.cleanup()
