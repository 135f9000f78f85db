# What the host side trusts about a guest's disks (issue 10 item 3, issue 9
# item 5): only what libvirt declares.  A guest writes its own disk, so a
# raw disk may start with a qcow2 header naming any host file, and a volume
# in a directory pool (whose format libvirt probes from its content) may be
# a qcow2 image backed by any host file.  The service must never open such
# a file, nor let libvirt relabel it for an appliance's qemu.
#
# Real libvirtd (qemu:///system), real TCG appliances (three boots).  The
# host files attacked are decoys this module makes, never real ones.

import os
import shutil
import stat
import struct
import subprocess
import tempfile

import libvirt
import pytest
from gi.repository import GLib

from conftest import (DOMAIN_IFACE, INSPECTOR_IFACE, SYSTEM_URI, VOLUME_IFACE, Daemon,
                      DBusError, LibvirtObjects, _running_daemons, appliance_domains,
                      call_method, ensure_libvirtd_running, unique_name, wait_until)
from images import ImageSet

FILES_IFACE = 'org.libvirt.GuestFS.Files'
MIB = 1024 * 1024


def qcow2_header_naming(backing):
    """The first bytes of a qcow2 v3 image whose backing file is backing:
    what a guest can write at the start of a raw disk it owns."""
    name = backing.encode()
    header = struct.pack('>4sIQI', b'QFI\xfb', 3, 512, len(name))
    header += struct.pack('>IQ', 16, 64 * MIB)  # cluster bits, size
    return header.ljust(512, b'\0') + name


def opens_fifo(pid, path):
    """Whether the process pid has the FIFO open, or waits in open(2) for
    it (the kernel's wait_for_partner).  Other processes are not looked
    at: services of other test runs may share this libvirtd."""
    fifo = os.stat(path)
    for task in os.listdir('/proc/%d/task' % pid):
        with open('/proc/%d/task/%s/wchan' % (pid, task)) as f:
            if 'wait_for_partner' in f.read():
                return True
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            st = os.stat('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (fifo.st_dev, fifo.st_ino):
            return True
    return False


def file_facts(path):
    st = os.stat(path)
    with open(path, 'rb') as f:
        return (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), f.read())


class Env:
    def __init__(self, bus):
        self.bus = bus
        self.daemon = None
        self.virt = None
        self.images = None
        self.cache_dir = tempfile.mkdtemp(prefix='lgd-test-cache-')
        self.markers = []

    def setup(self):
        ensure_libvirtd_running()
        self.virt = LibvirtObjects()
        self.conn = self.virt.conn
        self.images = ImageSet.create()
        self.markers.append(self.images.dir)

        # A raw disk whose first bytes are a qcow2 header naming a FIFO.
        self.hostile_dir = self.virt.make_dir('hostile')
        self.markers.append(self.hostile_dir)
        self.fifo = os.path.join(self.hostile_dir, 'fifo')
        os.mkfifo(self.fifo, 0o600)
        self.fifo_disk = os.path.join(self.hostile_dir, 'fifo-header.img')
        with open(self.fifo_disk, 'wb') as f:
            f.write(qcow2_header_naming(self.fifo))
            f.truncate(16 * MIB)
        self.fifo_domain = unique_name('fifo-header')
        dom = self.virt.define_domain(self.fifo_domain, disks=[(self.fifo_disk, 'raw')])
        self.fifo_uuid = dom.UUIDString()

        # A root-owned 0600 decoy outside every pool, and a directory pool
        # with volumes whose headers name it (directly and one level down),
        # beside a healthy chain: a qcow2 overlay of a raw Debian volume.
        self.decoy = os.path.join(self.hostile_dir, 'decoy-secret')
        with open(self.decoy, 'wb') as f:
            f.write(os.urandom(4096))
        os.chmod(self.decoy, 0o600)
        self.decoy_facts = file_facts(self.decoy)
        self.pool_dir = self.virt.make_dir('pool')
        self.markers.append(self.pool_dir)
        self.evil = os.path.join(self.pool_dir, 'evil.qcow2')
        self.evil2 = os.path.join(self.pool_dir, 'evil2.qcow2')
        subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b',
                        self.decoy, self.evil], check=True)
        subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b',
                        self.evil, self.evil2], check=True)
        root = self.images.debian_root(name='base.img', hostname='lgd-declared-host')
        self.base = os.path.join(self.pool_dir, 'base.img')
        shutil.move(root.path, self.base)
        self.overlay = os.path.join(self.pool_dir, 'overlay.qcow2')
        subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b',
                        self.base, self.overlay], check=True)
        self.pool_name = unique_name('declared')
        pool = self.virt.define_dir_pool(self.pool_name, self.pool_dir)
        pool.create(0)

        # A domain whose disk is a volume (<disk type='volume'>).
        self.volume_domain = unique_name('volume-disk')
        self.virt.domains.append(self.volume_domain)
        dom = self.conn.defineXML(
            "<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory>"
            "<vcpu>1</vcpu><os><type>hvm</type></os><devices>"
            "<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/>"
            "<source pool='%s' volume='overlay.qcow2'/><target dev='vda' bus='virtio'/>"
            "</disk></devices></domain>" % (self.volume_domain, self.pool_name))
        self.volume_domain_uuid = dom.UUIDString()

    def start(self):
        assert self.daemon is None
        self.daemon = Daemon(self.bus, [SYSTEM_URI],
                             ['--force-tcg', '--cache-dir', self.cache_dir,
                              '--idle-timeout', '900', '--volume-rescan-interval', '1'])
        _running_daemons.append(self.daemon)
        return self.daemon

    def stop(self):
        daemon, self.daemon = self.daemon, None
        if daemon is None:
            return
        _running_daemons.remove(daemon)
        daemon.stop()

    def call(self, path, iface, method, signature, *args, timeout=600.0):
        return call_method(self.bus.connection, path, iface, method,
                           GLib.Variant(signature, args), timeout=timeout)

    def get(self, path, iface, name):
        (value,) = self.call(path, 'org.freedesktop.DBus.Properties', 'Get', '(ss)',
                             iface, name, timeout=5.0)
        return value

    def lookup_domain(self, name):
        (path,) = self.call('/org/libvirt/GuestFS/Manager', 'org.libvirt.GuestFS.Manager',
                            'LookupDomain', '(s)', name, timeout=10.0)
        return path

    def lookup_volume(self, key):
        def found():
            try:
                self.call('/org/libvirt/GuestFS/Manager', 'org.libvirt.GuestFS.Manager',
                          'LookupVolume', '(s)', key, timeout=10.0)
                return True
            except DBusError:
                return False
        wait_until(found, 15, 'volume %s to be published' % key)
        (path,) = self.call('/org/libvirt/GuestFS/Manager', 'org.libvirt.GuestFS.Manager',
                            'LookupVolume', '(s)', key, timeout=10.0)
        return path

    def cleanup(self):
        errors = []
        try:
            if self.daemon is not None:
                for name in appliance_domains(self.conn, self.markers):
                    errors.append('appliance left running: ' + name)
            self.stop()
        except Exception as error:
            errors.append('stopping the service: %s' % error)
        if self.virt is not None:
            self.virt.reconnect()
            for name in appliance_domains(self.virt.conn, self.markers):
                try:
                    self.virt.conn.lookupByName(name).destroy()
                except libvirt.libvirtError:
                    pass
            try:
                self.virt.cleanup()
            except AssertionError as error:
                errors.append(str(error))
        if self.images is not None:
            self.images.remove()
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        assert not errors, '\n'.join(errors)


@pytest.fixture(scope='module')
def env(private_bus):
    env = Env(private_bus)
    try:
        env.setup()
        env.start()
        yield env
    finally:
        env.cleanup()


# --- A raw disk is raw, whatever its first bytes say -----------------------

def test_raw_disk_with_header_naming_fifo(env):
    # The service started (it owns its name: the fixture waited for it)
    # and publishes the domain without having opened the FIFO.
    path = env.lookup_domain(env.fifo_domain)
    assert not opens_fifo(env.daemon.process.pid, env.fifo)
    # An appliance reads the disk as the raw disk it is declared to be.
    try:
        systems = env.call(path, INSPECTOR_IFACE, 'Inspect', '(a{sv})', {})[0]
        assert systems == []
    except DBusError as error:
        assert error.name.startswith('org.libvirt.GuestFS.Error.'), error
    assert not opens_fifo(env.daemon.process.pid, env.fifo)
    assert env.get(path, DOMAIN_IFACE, 'Name') == env.fifo_domain
    env.call(path, DOMAIN_IFACE, 'StopAppliance', '()')
    assert not opens_fifo(env.daemon.process.pid, env.fifo)


# --- A volume backed by a host file is refused, before any appliance --------

def hostile_calls():
    """Every method of a volume object that needs an appliance."""
    none = {}
    return [
        (INSPECTOR_IFACE, 'Inspect', '(a{sv})', (none,)),
        (INSPECTOR_IFACE, 'ListApplications', '(sa{sv})', ('/dev/sda', none)),
        (INSPECTOR_IFACE, 'GetIcon', '(sa{sv})', ('/dev/sda', none)),
        (INSPECTOR_IFACE, 'ListFilesystems', '(a{sv})', (none,)),
        (INSPECTOR_IFACE, 'DiskUsage', '(a{sv})', (none,)),
        (FILES_IFACE, 'ReadDir', '(sa{sv})', ('/', none)),
        (FILES_IFACE, 'Stat', '(sa{sv})', ('/etc', none)),
        (FILES_IFACE, 'ReadFile', '(sa{sv})', ('/etc/hostname', none)),
        (FILES_IFACE, 'Readlink', '(sa{sv})', ('/etc/os-release', none)),
        (FILES_IFACE, 'WriteFile', '(saya{sv})', ('/x', b'x', none)),
        (FILES_IFACE, 'Mkdir', '(sa{sv})', ('/x', none)),
        (FILES_IFACE, 'Remove', '(sa{sv})', ('/x', none)),
        (FILES_IFACE, 'Rename', '(ssa{sv})', ('/x', '/y', none)),
        (FILES_IFACE, 'Chmod', '(sua{sv})', ('/x', 0o644, none)),
        (FILES_IFACE, 'Chown', '(suua{sv})', ('/x', 0, 0, none)),
        (FILES_IFACE, 'Symlink', '(ssa{sv})', ('/a', '/x', none)),
        (VOLUME_IFACE, 'StartAppliance', '(a{sv})', (none,)),
        (VOLUME_IFACE, 'StartAppliance', '(a{sv})',
         ({'read-only': GLib.Variant('b', False)},)),
    ]


@pytest.mark.parametrize('volume', ['evil.qcow2', 'evil2.qcow2'])
def test_volume_backed_by_host_file_is_refused(env, volume):
    key = os.path.join(env.pool_dir, volume)
    path = env.lookup_volume(key)
    for iface, method, signature, args in hostile_calls():
        with pytest.raises(DBusError) as info:
            env.call(path, iface, method, signature, *args)
        error = info.value
        assert error.name == 'org.libvirt.GuestFS.Error.NotSupported', \
            '%s.%s: %s' % (iface, method, error)
        assert env.decoy in str(error), '%s.%s: %s' % (iface, method, str(error))
        assert 'not a volume of an active storage pool' in str(error)
        assert env.get(path, VOLUME_IFACE, 'ApplianceState') != 'running'
    assert appliance_domains(env.conn, [key, env.decoy]) == []
    assert file_facts(env.decoy) == env.decoy_facts
    assert env.get(path, VOLUME_IFACE, 'Format') == 'qcow2'


# --- Chains libvirt declares are followed ------------------------------------

def test_volume_backed_by_volume_works(env):
    path = env.lookup_volume(env.overlay)
    filesystems = env.call(path, INSPECTOR_IFACE, 'ListFilesystems', '(a{sv})', {})[0]
    assert any(fs.get('type') == 'ext4' for fs in filesystems), filesystems
    env.call(path, VOLUME_IFACE, 'StopAppliance', '()')


def test_volume_disk_keeps_cached_inspection_across_restart(env):
    path = env.lookup_domain(env.volume_domain)
    systems = env.call(path, INSPECTOR_IFACE, 'Inspect', '(a{sv})', {})[0]
    assert [s.get('hostname') for s in systems] == ['lgd-declared-host']
    inspected_at = env.get(path, INSPECTOR_IFACE, 'InspectedAt')
    assert inspected_at > 0
    env.call(path, DOMAIN_IFACE, 'StopAppliance', '()')
    env.stop()
    env.start()
    path = env.lookup_domain(env.volume_domain)
    known = env.get(path, INSPECTOR_IFACE, 'OperatingSystems')
    assert [s.get('hostname') for s in known] == ['lgd-declared-host']
    assert env.get(path, INSPECTOR_IFACE, 'InspectedAt') == inspected_at


def test_touched_backing_volume_invalidates(env):
    # The backing file is part of the identity: a change to it alone (the
    # overlay is untouched) makes the cached inspection unknown.
    st = os.stat(env.base)
    os.utime(env.base, ns=(st.st_atime_ns, st.st_mtime_ns + 1000000000))
    env.stop()
    env.start()
    path = env.lookup_domain(env.volume_domain)
    assert env.get(path, INSPECTOR_IFACE, 'OperatingSystems') == []
    assert env.get(path, INSPECTOR_IFACE, 'InspectedAt') == 0
