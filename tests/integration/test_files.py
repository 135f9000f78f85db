# The Files interface (issue 4) against the real libvirtd (qemu:///system)
# with real libguestfs appliances under TCG: listing, stat, reading and
# writing files, and bulk transfers through file descriptors.
#
# Appliances take 15-40 s to boot, so one service runs for the whole
# module (with a long idle timeout) and the tests run in file order: the
# reads first, on the read-only appliance of the "files" domain, then the
# writes, which switch it to a read-write one.  Every libvirt object is
# named lgd-test-* and removed at the end, even after a failure.
#
# File descriptors are passed with python3-dbus, which duplicates them
# into the message and lets the test close every copy of its own once the
# call has returned: GDBus's UnixFDList keeps copies alive for as long as
# the list lives, and a pipe whose write end stays open in the client
# never reaches end of file.

import difflib
import hashlib
import io
import os
import random
import select
import socket
import stat
import subprocess
import tarfile
import tempfile
import threading
import time
from types import SimpleNamespace

import dbus
import dbus.bus
import libvirt
import pytest
from gi.repository import Gio, GLib

from conftest import (BUS_NAME, DOMAIN_IFACE, INSPECTOR_IFACE, OBJECT_MANAGER_IFACE,
                      PROPERTIES_IFACE, ROOT_PATH, SYSTEM_URI, VOLUME_IFACE, Daemon,
                      DBusError, LibvirtObjects, PrivateBus, SignalRecorder,
                      _running_daemons, appliance_domains, call_method,
                      ensure_libvirtd_running, unique_name, wait_until)
from images import MIB, ImageSet, files_root

FILES_IFACE = 'org.libvirt.GuestFS.Files'
ERROR = 'org.libvirt.GuestFS.Error.'
CALL_TIMEOUT = 600.0
# After a transfer's reply, the service must have let go of the client's
# fd: the other end sees end of file (or a broken pipe) at once.
RELEASE_TIMEOUT = 10.0
# A client that goes away ends its transfer within this many seconds.
PROMPT_CANCEL = 30.0
BIG_SIZE = 105 * MIB + 4321


def service_args(*extra):
    # KVM hangs on this machine: appliances run under TCG.
    return ['--force-tcg', '--volume-rescan-interval', '1'] + list(extra)


# --- Option values ---------------------------------------------------------------

def b(value):
    return GLib.Variant('b', value)


def u(value):
    return GLib.Variant('u', value)


def t(value):
    return GLib.Variant('t', value)


def s(value):
    return GLib.Variant('s', value)


def strv(values):
    return GLib.Variant('as', list(values))


def to_dbus(variant):
    """A GLib.Variant option value as python3-dbus wants it."""
    kind = variant.get_type_string()
    value = variant.unpack()
    converters = {'b': dbus.Boolean, 'u': dbus.UInt32, 't': dbus.UInt64,
                  'i': dbus.Int32, 'x': dbus.Int64, 's': dbus.String,
                  'as': lambda v: dbus.Array(v, signature='s')}
    return converters[kind](value)


def dbus_options(options):
    return dbus.Dictionary({key: to_dbus(value) for key, value in (options or {}).items()},
                           signature='sv')


# --- Pipes, pumped by threads while the call runs -------------------------------

class PipeReader(threading.Thread):
    """Reads fd until end of file, hashing (and keeping, if asked) what
    comes; with close_after, closes fd once that many bytes came, as a
    client that gives up.  Closes fd when done."""

    def __init__(self, fd, keep=False, close_after=None):
        super().__init__(daemon=True)
        self.fd = fd
        self.keep = keep
        self.close_after = close_after
        self.digest = hashlib.sha256()
        self.size = 0
        self.chunks = []
        self.eof = False
        self.closed_early = False
        self.error = None
        self._halt = threading.Event()
        os.set_blocking(fd, False)

    def run(self):
        try:
            while not self._halt.is_set():
                ready, _, _ = select.select([self.fd], [], [], 0.1)
                if not ready:
                    continue
                try:
                    data = os.read(self.fd, MIB)
                except BlockingIOError:
                    continue
                if not data:
                    self.eof = True
                    break
                self.digest.update(data)
                self.size += len(data)
                if self.keep:
                    self.chunks.append(data)
                if self.close_after is not None and self.size >= self.close_after:
                    self.closed_early = True
                    break
        except OSError as error:
            self.error = error
        finally:
            os.close(self.fd)

    def stop(self):
        self._halt.set()
        self.join(10)

    def data(self):
        return b''.join(self.chunks)


class PipeWriter(threading.Thread):
    """Writes chunks (an iterable of bytes) to fd, then closes it; with
    close_after, closes it once that many bytes went, as a source that
    fails half-way.  A reader that goes away ends it (broken pipe)."""

    def __init__(self, fd, chunks, close_after=None):
        super().__init__(daemon=True)
        self.fd = fd
        self.chunks = chunks
        self.close_after = close_after
        self.digest = hashlib.sha256()
        self.size = 0
        self.broken = False
        self.error = None
        self._halt = threading.Event()
        os.set_blocking(fd, False)

    def run(self):
        try:
            for chunk in self.chunks:
                if self.close_after is not None:
                    chunk = chunk[:max(0, self.close_after - self.size)]
                view = memoryview(chunk)
                while view and not self._halt.is_set():
                    _, ready, _ = select.select([], [self.fd], [], 0.1)
                    if not ready:
                        continue
                    try:
                        n = os.write(self.fd, view)
                    except BlockingIOError:
                        continue
                    self.digest.update(view[:n])
                    self.size += n
                    view = view[n:]
                if self._halt.is_set():
                    break
                if self.close_after is not None and self.size >= self.close_after:
                    break
        except BrokenPipeError:
            self.broken = True
        except OSError as error:
            self.error = error
        finally:
            os.close(self.fd)

    def stop(self):
        self._halt.set()
        self.join(10)


def pseudo_random_chunks(size, seed, chunk=4 * MIB):
    """size bytes in pieces, the same for the same seed."""
    rng = random.Random(seed)
    left = size
    while left > 0:
        n = min(chunk, left)
        yield rng.randbytes(n)
        left -= n


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        while True:
            data = f.read(4 * MIB)
            if not data:
                return digest.hexdigest()
            digest.update(data)


# --- The client ---------------------------------------------------------------------

class Files:
    """The Files interface (and a few others) as a client uses it: plain
    calls through GDBus, calls that pass fds through python3-dbus."""

    def __init__(self, connection, address):
        self.connection = connection
        self.fdbus = dbus.bus.BusConnection(address)

    def close(self):
        self.fdbus.close()

    def call(self, obj, method, signature, args, reply_type=None, iface=FILES_IFACE,
             timeout=CALL_TIMEOUT):
        return call_method(self.connection, obj, iface, method,
                           GLib.Variant(signature, args) if signature else None,
                           reply_type, timeout=timeout)

    # plain methods
    def read_dir(self, obj, path, options=None):
        (entries,) = self.call(obj, 'ReadDir', '(sa{sv})', (path, options or {}), '(aa{sv})')
        return entries

    def stat(self, obj, path, options=None):
        (info,) = self.call(obj, 'Stat', '(sa{sv})', (path, options or {}), '(a{sv})')
        return info

    def call_raw(self, obj, method, args, reply_type=None, timeout=CALL_TIMEOUT):
        """A call whose reply stays a GLib.Variant (unpacking a big 'ay'
        into a list of ints would take seconds)."""
        try:
            return self.connection.call_sync(
                BUS_NAME, obj, FILES_IFACE, method, args,
                GLib.VariantType(reply_type) if reply_type else None,
                Gio.DBusCallFlags.NONE, int(timeout * 1000), None)
        except GLib.Error as error:
            name = Gio.DBusError.get_remote_error(error)
            if name is None:
                raise
            Gio.DBusError.strip_remote_error(error)
            raise DBusError(name, error.message) from None

    def read_file(self, obj, path, options=None):
        reply = self.call_raw(obj, 'ReadFile',
                              GLib.Variant('(sa{sv})', (path, options or {})), '(ay)')
        return reply.get_child_value(0).get_data_as_bytes().get_data() or b''

    def write_file(self, obj, path, data, options=None):
        self.call_raw(obj, 'WriteFile', GLib.Variant.new_tuple(
            GLib.Variant('s', path),
            GLib.Variant.new_from_bytes(GLib.VariantType('ay'), GLib.Bytes.new(data), True),
            GLib.Variant('a{sv}', options or {})))

    def mkdir(self, obj, path, options=None):
        self.call(obj, 'Mkdir', '(sa{sv})', (path, options or {}))

    def remove(self, obj, path, options=None):
        self.call(obj, 'Remove', '(sa{sv})', (path, options or {}))

    def rename(self, obj, old, new, options=None):
        self.call(obj, 'Rename', '(ssa{sv})', (old, new, options or {}))

    def chmod(self, obj, path, mode, options=None):
        self.call(obj, 'Chmod', '(sua{sv})', (path, mode, options or {}))

    def chown(self, obj, path, uid, gid, options=None):
        self.call(obj, 'Chown', '(suua{sv})', (path, uid, gid, options or {}))

    def symlink(self, obj, target, linkpath, options=None):
        self.call(obj, 'Symlink', '(ssa{sv})', (target, linkpath, options or {}))

    def readlink(self, obj, path, options=None):
        (target,) = self.call(obj, 'Readlink', '(sa{sv})', (path, options or {}), '(s)')
        return target

    def inspect(self, obj):
        (systems,) = self.call(obj, 'Inspect', '(a{sv})', ({},), '(aa{sv})',
                               iface=INSPECTOR_IFACE)
        return systems

    def stop_appliance(self, obj, iface=DOMAIN_IFACE):
        self.call(obj, 'StopAppliance', None, None, iface=iface)

    def state(self, obj, iface=DOMAIN_IFACE):
        (value,) = call_method(self.connection, obj, PROPERTIES_IFACE, 'Get',
                               GLib.Variant('(ss)', (iface, 'ApplianceState')), '(v)',
                               timeout=30)
        return value

    # methods that take an fd
    def fd_call(self, obj, method, path, fd, options=None, timeout=CALL_TIMEOUT):
        """Calls method(path, fd, options); fd stays the caller's (the
        message gets a duplicate, and so does the UnixFd, which is closed
        here once the call has returned)."""
        handle = dbus.types.UnixFd(fd)
        failure = None
        try:
            self.fdbus.call_blocking(BUS_NAME, obj, FILES_IFACE, method, 'sha{sv}',
                                     (path, handle, dbus_options(options)),
                                     timeout=timeout)
        except dbus.exceptions.DBusException as error:
            # Not raised from here: the exception's traceback keeps
            # python3-dbus's frames, and so the message with its copy of
            # the fd, alive.
            failure = (error.get_dbus_name(), error.get_dbus_message())
        finally:
            os.close(handle.take())
        if failure is not None:
            raise DBusError(*failure)

    def gio_fd_call(self, obj, method, path, handle, fds, options=None):
        """The same through GDBus, with a raw handle index and fds (the
        list's copies are closed after the call), to send what python3-dbus
        would not: an index that names no fd."""
        fd_list = Gio.UnixFDList.new()
        for fd in fds:
            fd_list.append(fd)
        try:
            self.connection.call_with_unix_fd_list_sync(
                BUS_NAME, obj, FILES_IFACE, method,
                GLib.Variant('(sha{sv})', (path, handle, options or {})), None,
                Gio.DBusCallFlags.NONE, int(CALL_TIMEOUT * 1000),
                fd_list if fds else None, None)
        except GLib.Error as error:
            name = Gio.DBusError.get_remote_error(error)
            if name is None:
                raise
            Gio.DBusError.strip_remote_error(error)
            raise DBusError(name, error.message) from None
        finally:
            for fd in fd_list.steal_fds():
                os.close(fd)

    def transfer_out(self, obj, method, path, options=None, keep=True, close_after=None):
        """Download or TarOut into a pipe; returns the PipeReader (its
        data, size and digest).  Errors raise DBusError, after checking
        that the service let go of the pipe."""
        r, w = os.pipe()
        reader = PipeReader(r, keep=keep, close_after=close_after)
        reader.start()
        failure = None
        try:
            self.fd_call(obj, method, path, w, options)
        except DBusError as error:
            failure = error
        finally:
            os.close(w)
            reader.join(RELEASE_TIMEOUT)
        if reader.is_alive():
            reader.stop()
            raise AssertionError('%s %s: the pipe did not reach end of file within %.0f s '
                                 'of the reply (%s): the service still holds its end'
                                 % (method, path, RELEASE_TIMEOUT, failure or 'success'))
        assert reader.error is None, reader.error
        if failure is not None:
            failure.reader = reader
            raise failure
        return reader

    def download(self, obj, path, options=None):
        return self.transfer_out(obj, 'Download', path, options).data()

    def tar_out(self, obj, path, options=None):
        return self.transfer_out(obj, 'TarOut', path, options).data()

    def transfer_in(self, obj, method, path, chunks, options=None, close_after=None):
        """Upload or TarIn from a pipe fed with chunks; returns the
        PipeWriter.  Errors raise DBusError (with .writer)."""
        r, w = os.pipe()
        writer = PipeWriter(w, chunks, close_after=close_after)
        writer.start()
        failure = None
        try:
            self.fd_call(obj, method, path, r, options)
        except DBusError as error:
            failure = error
        finally:
            os.close(r)
            # The service has let go of the read end: what is left to
            # write breaks the pipe at once.
            writer.join(RELEASE_TIMEOUT)
        if writer.is_alive():
            writer.stop()
            raise AssertionError('%s %s: the writer was still blocked %.0f s after the '
                                 'reply (%s)' % (method, path, RELEASE_TIMEOUT,
                                                 failure or 'success'))
        assert writer.error is None, writer.error
        if failure is not None:
            failure.writer = writer
            raise failure
        return writer

    def upload(self, obj, path, data, options=None):
        writer = self.transfer_in(obj, 'Upload', path, [data], options)
        assert writer.size == len(data) and not writer.broken
        return writer

    def tar_in(self, obj, path, data, options=None):
        writer = self.transfer_in(obj, 'TarIn', path, [data], options)
        assert writer.size == len(data) and not writer.broken
        return writer


def expect_error(name, func, *args, **kwargs):
    """func(...) must fail with org.libvirt.GuestFS.Error.<name>."""
    with pytest.raises(DBusError) as info:
        func(*args, **kwargs)
    assert info.value.name == ERROR + name, str(info.value)
    return info.value


def names(entries):
    return sorted(entry['name'] for entry in entries)


# --- Trees, as tar archives describe them ----------------------------------------

def tar_listing(data, mode='r:'):
    """{relative name: (type, mode, uid, gid, link target, sha256, size,
    mtime of regular files)} of a tar archive; '.' is the top."""
    listing = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode=mode) as archive:
        for member in archive.getmembers():
            name = os.path.normpath(member.name)
            if member.isreg():
                content = archive.extractfile(member).read()
                entry = ('regular', member.mode, member.uid, member.gid, '',
                         hashlib.sha256(content).hexdigest(), member.size, member.mtime)
            elif member.isdir():
                entry = ('directory', member.mode, member.uid, member.gid, '', '', 0, None)
            elif member.issym():
                entry = ('symlink', None, member.uid, member.gid, member.linkname, '', 0,
                         None)
            else:
                entry = ('other:%r' % member.type, member.mode, member.uid, member.gid,
                         member.linkname, '', 0, None)
            assert name not in listing, 'member %s twice in the archive' % name
            listing[name] = entry
    return listing


def expected_listing(tree, leave_out=()):
    """What tar_listing must give for the TreeEntry list of images.py."""
    listing = {}
    for entry in tree:
        if entry.path in leave_out:
            continue
        if entry.kind == 'regular':
            listing[entry.path] = ('regular', entry.mode, entry.uid, entry.gid, '',
                                   hashlib.sha256(entry.content).hexdigest(),
                                   len(entry.content), entry.mtime)
        elif entry.kind == 'directory':
            listing[entry.path] = ('directory', entry.mode, entry.uid, entry.gid, '', '',
                                   0, None)
        elif entry.kind == 'symlink':
            listing[entry.path] = ('symlink', None, entry.uid, entry.gid, entry.target, '',
                                   0, None)
    return listing


def tar_numeric_owners(data, mode='r:'):
    with tarfile.open(fileobj=io.BytesIO(data), mode=mode) as archive:
        return [(m.name, m.uname, m.gname) for m in archive.getmembers()]


def make_tar(entries, mode='w'):
    """A tar archive of (name, data) regular files, for TarIn errors."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as archive:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


# --- The shared set-up ----------------------------------------------------------------

def daemon_objects(connection):
    (objects,) = call_method(connection, ROOT_PATH, OBJECT_MANAGER_IFACE,
                             'GetManagedObjects', None, '(a{oa{sa{sv}}})', timeout=30)
    return [(path, ifaces) for path, ifaces in objects.items()
            if DOMAIN_IFACE in ifaces or VOLUME_IFACE in ifaces]


def stop_service(daemon, api, errors):
    """Stops the appliances, then the service (which must exit with 0)."""
    _running_daemons.remove(daemon)
    try:
        if daemon.is_running():
            for path, ifaces in daemon_objects(api.connection):
                iface = DOMAIN_IFACE if DOMAIN_IFACE in ifaces else VOLUME_IFACE
                if ifaces[iface].get('ApplianceState') in ('starting', 'running'):
                    api.stop_appliance(path, iface)
    except Exception as error:  # the service may have died
        errors.append('stopping appliances: %s' % error)
    try:
        daemon.stop()
    except AssertionError as error:
        errors.append(str(error))


@pytest.fixture(scope='module')
def env(private_bus):
    """Images and domains in libvirt, and the service (one for the whole
    module) on the private bus:
      files:   the files root (a Debian look-alike, 400 MiB sparse);
      data:    a data disk without an operating system (ext4 + vfat);
      run:     a small Debian root, started by the running-domain test;
      maxread: a copy of the data disk, for a service with a small
               --max-read-size."""
    ensure_libvirtd_running()
    images = ImageSet.create()
    virt = None
    daemon = None
    api = None
    markers = [images.dir]
    try:
        env = SimpleNamespace(images=images, markers=markers)
        env.root = files_root(images)
        env.data = images.data_disk()
        env.maxread_image = images.copy(env.data.path, 'maxread-data.img')
        env.run_root = images.debian_root('run-root.img')

        virt = LibvirtObjects()
        env.virt = virt
        env.conn = virt.conn

        def domain(what, disks):
            name = unique_name(what)
            dom = virt.define_domain(name, disks=disks)
            markers.append(dom.UUIDString())
            return name

        env.files_name = domain('files', [(env.root.path, 'raw')])
        env.data_name = domain('data', [(env.data.path, 'raw')])
        env.run_name = domain('run', [(env.run_root.path, 'raw')])
        env.maxread_name = domain('maxread', [(env.maxread_image, 'raw')])
        pool_dir = images.path('pool')
        os.mkdir(pool_dir, 0o755)
        env.volume_image = images.copy(env.run_root.path, 'pool/files-volume.img')
        env.pool_name = unique_name('files-pool')
        virt.define_dir_pool(env.pool_name, pool_dir).create(0)

        daemon = Daemon(private_bus, [SYSTEM_URI], service_args('--idle-timeout', '900'))
        _running_daemons.append(daemon)
        env.daemon = daemon
        env.bus = private_bus
        api = Files(private_bus.connection, private_bus.address)
        env.api = api
        env.files = daemon.client.lookup_domain(env.files_name)
        env.datadom = daemon.client.lookup_domain(env.data_name)
        env.run = daemon.client.lookup_domain(env.run_name)
        env.volume = wait_until(lambda: try_lookup_volume(daemon.client, env.volume_image),
                                30, 'the volume object of ' + env.volume_image)
        yield env
    finally:
        errors = []
        if daemon is not None:
            stop_service(daemon, api, errors)
        if api is not None:
            api.close()
        if virt is not None:
            virt.reconnect()
            leftovers = appliance_domains(virt.conn, markers)
            for name in leftovers:
                try:
                    virt.conn.lookupByName(name).destroy()
                except libvirt.libvirtError:
                    pass
            if leftovers:
                errors.append('appliances left running after the service exited: %s'
                              % ', '.join(leftovers))
            try:
                virt.cleanup()
            except AssertionError as error:
                errors.append(str(error))
        images.remove()
        assert not errors, '\n'.join(errors)


def try_lookup_volume(client, key):
    try:
        return client.lookup_volume(key)
    except DBusError as error:
        if error.name != ERROR + 'NotFound':
            raise
        return None


def state_changes(recorder, path):
    recorder.flush()
    return [changes['ApplianceState'] for changes in recorder.changed(path, DOMAIN_IFACE)
            if 'ApplianceState' in changes]


def stopped_image_hash(env, obj, image):
    """The image's sha256 with no appliance holding it."""
    env.api.stop_appliance(obj)
    assert env.api.state(obj) == 'stopped'
    return sha256_file(image)


def assert_entry(info, entry, name=None):
    """A ReadDir entry or Stat result describes the TreeEntry of images.py."""
    assert info['name'] == (name or os.path.basename(entry.path)), info
    assert info['type'] == entry.kind, info
    assert info['mode'] == entry.st_mode, (info, oct(info['mode']), oct(entry.st_mode))
    assert (info['uid'], info['gid']) == (entry.uid, entry.gid), info
    assert info['mtime'] == entry.mtime, info
    if entry.kind == 'regular':
        assert info['size'] == len(entry.content), info
    if entry.kind == 'symlink':
        assert info['size'] == len(entry.target.encode()), info
        assert info['link-target'] == entry.target, info
    else:
        assert 'link-target' not in info, info
    assert set(info) <= {'name', 'type', 'size', 'mode', 'uid', 'gid', 'mtime',
                         'link-target'}, info


# --- Reads, on the read-only appliance -----------------------------------------------

def test_read_dir_etc(env):
    entries = env.api.read_dir(env.files, '/etc')
    expected = {e.path: e for e in env.root.etc if '/' not in e.path}
    assert names(entries) == sorted(expected)
    for info in entries:
        assert_entry(info, expected[info['name']])
    assert env.api.state(env.files) == 'running'


def test_read_dir_tree_and_special_files(env):
    entries = env.api.read_dir(env.files, env.root.tree_dir)
    expected = {e.path: e for e in env.root.tree if e.path != '.' and '/' not in e.path}
    assert names(entries) == sorted(expected)
    for info in entries:
        assert_entry(info, expected[info['name']])
    # entries are not followed: a link to a directory is a symlink
    assert {i['name']: i['type'] for i in entries}['link-dir'] == 'symlink'

    entries = env.api.read_dir(env.files, '/srv/special')
    expected = {e.path: e for e in env.root.special}
    assert names(entries) == sorted(expected)
    for info in entries:
        assert_entry(info, expected[info['name']])

    entries = env.api.read_dir(env.files, '/')
    assert {'etc', 'srv', 'bin', 'usr', 'lost+found'} <= set(names(entries))
    assert [e['name'] for e in entries if e['name'] in ('.', '..')] == []


def test_stat(env):
    etc = {e.path: e for e in env.root.etc}
    assert_entry(env.api.stat(env.files, '/etc/motd'), etc['motd'])
    assert_entry(env.api.stat(env.files, '/etc/ssh/sshd_config'), etc['ssh/sshd_config'])
    # without follow-symlinks (the default, or false): the link itself
    link = env.api.stat(env.files, '/etc/motd.link')
    assert_entry(link, etc['motd.link'])
    assert env.api.stat(env.files, '/etc/motd.link',
                        {'follow-symlinks': b(False)}) == link
    # followed: the file it points to, under the link's name
    followed = env.api.stat(env.files, '/etc/motd.link', {'follow-symlinks': b(True)})
    assert_entry(followed, etc['motd'], name='motd.link')
    # a directory, through a link to it
    tree = {e.path: e for e in env.root.tree}
    followed = env.api.stat(env.files, env.root.tree_dir + '/link-dir',
                            {'follow-symlinks': b(True)})
    assert_entry(followed, tree['sub'], name='link-dir')
    # a dangling link: fine as itself, missing when followed
    assert_entry(env.api.stat(env.files, env.root.tree_dir + '/link-dangling'),
                 tree['link-dangling'])
    expect_error('NotFound', env.api.stat, env.files, env.root.tree_dir + '/link-dangling',
                 {'follow-symlinks': b(True)})
    info = env.api.stat(env.files, '/etc')
    assert (info['name'], info['type'], stat.S_IFMT(info['mode'])) == \
        ('etc', 'directory', stat.S_IFDIR)


def test_read_file(env):
    etc = {e.path: e for e in env.root.etc}
    for name in ('hostname', 'motd', 'shadow', 'os-release'):
        assert env.api.read_file(env.files, '/etc/' + name) == etc[name].content
    # a symbolic link is not followed (a rule on the path must see where
    # the read goes): the error names the target to read instead
    error = expect_error('InvalidArgument', env.api.read_file, env.files, '/etc/motd.link')
    assert 'motd' in str(error) and 'symbolic link' in str(error)
    assert env.api.read_file(env.files, env.root.tree_dir + '/empty-file') == b''

    data = env.root.two_mib
    size = len(data)
    path = '/srv/data/two-mib.bin'
    assert env.api.read_file(env.files, path) == data
    for offset, length in ((0, 10), (1000, 5000), (size - 10, 10), (123457, 1),
                           (1 * MIB + 7, 65536)):
        got = env.api.read_file(env.files, path, {'offset': t(offset), 'length': t(length)})
        assert got == data[offset:offset + length], (offset, length)
    # an offset alone reads to the end; a length alone from the start
    assert env.api.read_file(env.files, path, {'offset': t(size - 100)}) == data[-100:]
    assert env.api.read_file(env.files, path, {'length': t(100)}) == data[:100]
    assert env.api.read_file(env.files, path, {'length': t(0)}) == data
    # a length beyond the end reads what there is, as pread does
    assert env.api.read_file(env.files, path,
                             {'offset': t(size - 10), 'length': t(100)}) == data[-10:]
    assert env.api.read_file(env.files, path,
                             {'offset': t(5), 'length': t(2 ** 64 - 1)}) == data[5:]
    # the end itself is an empty read, not an error
    assert env.api.read_file(env.files, path, {'offset': t(size)}) == b''


def test_readlink(env):
    assert env.api.readlink(env.files, '/etc/localtime') == '/usr/share/zoneinfo/Etc/UTC'
    assert env.api.readlink(env.files, '/etc/motd.link') == 'motd'
    assert env.api.readlink(env.files, env.root.tree_dir + '/sub/link-up') == '../a.txt'
    assert env.api.readlink(env.files, env.root.tree_dir + '/link-dangling') == \
        'no/such/file'
    expect_error('InvalidArgument', env.api.readlink, env.files, '/etc/motd')
    expect_error('NotFound', env.api.readlink, env.files, '/etc/no-such-link')


BAD_PATHS = [
    ('relative', 'etc/hostname'),
    ('empty', ''),
    ('dot-relative', './etc'),
    ('over-long path', '/' + '/'.join(['d' * 200] * 25)),   # 5025 bytes
    ('over-long name', '/etc/' + 'n' * 300),
]


def test_read_bad_input(env):
    api, obj = env.api, env.files
    assert len(BAD_PATHS[3][1]) > 5000
    for what, path in BAD_PATHS:
        for func in (api.read_dir, api.stat, api.read_file, api.readlink):
            error = expect_error('InvalidArgument', func, obj, path)
            assert str(error), what
    # missing files
    for func in (api.read_dir, api.stat, api.read_file, api.readlink):
        expect_error('NotFound', func, obj, '/etc/no-such-file')
        expect_error('NotFound', func, obj, '/no/such/dir/file')
    # a directory where a file is expected, and the other way round
    expect_error('InvalidArgument', api.read_file, obj, '/etc')
    expect_error('InvalidArgument', api.read_file, obj, env.root.tree_dir + '/link-dir')
    expect_error('InvalidArgument', api.read_file, obj, '/srv/special/fifo')
    expect_error('InvalidArgument', api.read_file, obj, '/srv/special/null')
    expect_error('InvalidArgument', api.read_dir, obj, '/etc/hostname')
    # absurd offsets
    size = len(env.root.two_mib)
    path = '/srv/data/two-mib.bin'
    for offset in (size + 1, 2 ** 31, 2 ** 63, 2 ** 64 - 1):
        expect_error('InvalidArgument', api.read_file, obj, path, {'offset': t(offset)})
        expect_error('InvalidArgument', api.read_file, obj, path,
                     {'offset': t(offset), 'length': t(10)})
    # unknown options, and known ones of the wrong type
    bogus = {'no-such-option': b(True)}
    for func in (api.read_dir, api.stat, api.read_file, api.readlink):
        expect_error('InvalidArgument', func, obj, '/etc/hostname', bogus)
        expect_error('InvalidArgument', func, obj, '/etc/hostname', {'root': u(1)})
        expect_error('InvalidArgument', func, obj, '/etc/hostname', {'filesystem': b(True)})
    expect_error('InvalidArgument', api.read_file, obj, path, {'offset': u(1)})
    expect_error('InvalidArgument', api.read_file, obj, path, {'length': s('10')})
    expect_error('InvalidArgument', api.stat, obj, '/etc/motd.link',
                 {'follow-symlinks': s('yes')})
    # an option of another method
    expect_error('InvalidArgument', api.read_dir, obj, '/etc', {'offset': t(0)})
    # a root that is not one
    for root in ('/dev/sdz', '/dev/sda1', ''):
        expect_error('InvalidArgument', api.read_file, obj, '/etc/hostname',
                     {'root': s(root)})
    expect_error('InvalidArgument', api.read_dir, obj, '/', {'filesystem': s('/dev/sdz9')})
    # and the right root works
    assert api.read_file(obj, '/etc/hostname', {'root': s('/dev/sda')}) == \
        env.root.hostname.encode() + b'\n'
    assert api.state(obj) == 'running'


# --- Bulk reads ------------------------------------------------------------------------

def test_download_through_pipe_file_and_socket(env):
    api, obj = env.api, env.files
    etc = {e.path: e for e in env.root.etc}
    assert api.download(obj, '/etc/motd') == etc['motd'].content
    assert api.download(obj, '/srv/data/two-mib.bin') == env.root.two_mib
    assert api.download(obj, env.root.tree_dir + '/empty-file') == b''

    # a regular file opened for writing only
    with tempfile.TemporaryFile() as f:
        fd = os.open('/proc/self/fd/%d' % f.fileno(), os.O_WRONLY)
        try:
            api.fd_call(obj, 'Download', '/srv/data/two-mib.bin', fd)
        finally:
            os.close(fd)
        f.seek(0)
        assert f.read() == env.root.two_mib

    # a socket
    ours, theirs = socket.socketpair()
    reader = PipeReader(os.dup(ours.fileno()), keep=True)
    ours.close()
    reader.start()
    try:
        api.fd_call(obj, 'Download', '/etc/shadow', theirs.fileno())
    finally:
        theirs.close()
        reader.join(RELEASE_TIMEOUT)
    assert not reader.is_alive(), 'the socket did not reach end of file'
    assert reader.data() == etc['shadow'].content


def test_download_bad_input(env):
    api, obj = env.api, env.files
    expect_error('InvalidArgument', api.download, obj, '/etc')
    expect_error('InvalidArgument', api.download, obj, '/srv/special/fifo')
    expect_error('NotFound', api.download, obj, '/etc/no-such-file')
    for what, path in BAD_PATHS:
        expect_error('InvalidArgument', api.download, obj, path)
    expect_error('InvalidArgument', api.download, obj, '/etc/motd', {'offset': t(0)})

    # the read end of a pipe, where the service must write
    r, w = os.pipe()
    try:
        expect_error('InvalidArgument', api.fd_call, obj, 'Download', '/etc/motd', r)
        expect_error('InvalidArgument', api.fd_call, obj, 'TarOut', '/etc', r)
    finally:
        os.close(r)
        os.close(w)
    # a regular file opened for reading only
    with tempfile.NamedTemporaryFile() as f:
        fd = os.open(f.name, os.O_RDONLY)
        try:
            expect_error('InvalidArgument', api.fd_call, obj, 'Download', '/etc/motd', fd)
        finally:
            os.close(fd)
        assert os.path.getsize(f.name) == 0
    # a directory
    fd = os.open('/tmp', os.O_RDONLY | os.O_DIRECTORY)
    try:
        error = expect_error('InvalidArgument', api.fd_call, obj, 'Download', '/etc/motd', fd)
        assert 'directory' in str(error)
        expect_error('InvalidArgument', api.fd_call, obj, 'TarOut', '/etc', fd)
    finally:
        os.close(fd)
    # indexes that name no fd passed with the call
    r, w = os.pipe()
    try:
        expect_error('InvalidArgument', api.gio_fd_call, obj, 'Download', '/etc/motd', 0, [])
        expect_error('InvalidArgument', api.gio_fd_call, obj, 'Download', '/etc/motd', 1, [w])
        expect_error('InvalidArgument', api.gio_fd_call, obj, 'Download', '/etc/motd', 7, [w])
    finally:
        os.close(r)
        os.close(w)
    # and the service serves on
    assert api.read_file(obj, '/etc/hostname') == env.root.hostname.encode() + b'\n'


def test_tar_out(env):
    data = env.api.tar_out(env.files, env.root.tree_dir)
    assert tar_listing(data) == expected_listing(env.root.tree)
    # owners as numbers: no names in the archive
    for name, uname, gname in tar_numeric_owners(data):
        assert (uname, gname) == ('', ''), name
    env.tar_plain = data


def test_tar_out_compressed(env):
    expected = expected_listing(env.root.tree)
    gz = env.api.tar_out(env.files, env.root.tree_dir, {'compress': s('gzip')})
    assert gz[:2] == b'\x1f\x8b'
    assert tar_listing(gz, 'r:gz') == expected
    xz = env.api.tar_out(env.files, env.root.tree_dir, {'compress': s('xz')})
    assert xz[:6] == b'\xfd7zXZ\x00'
    assert tar_listing(xz, 'r:xz') == expected
    plain = env.api.tar_out(env.files, env.root.tree_dir, {'compress': s('none')})
    assert tar_listing(plain) == expected
    env.tar_gz, env.tar_xz = gz, xz


def test_tar_out_excludes(env):
    logs = ('skip.log', 'sub/skip.log')
    data = env.api.tar_out(env.files, env.root.tree_dir, {'excludes': strv(['*.log'])})
    assert tar_listing(data) == expected_listing(env.root.tree, leave_out=logs)
    data = env.api.tar_out(env.files, env.root.tree_dir,
                           {'excludes': strv(['./sub', '*.txt']), 'compress': s('gzip')})
    left_out = [e.path for e in env.root.tree
                if e.path == 'sub' or e.path.startswith('sub/') or e.path.endswith('.txt')]
    assert 'sub/nested.bin' in left_out and 'a.txt' in left_out
    assert tar_listing(data, 'r:gz') == expected_listing(env.root.tree, leave_out=left_out)
    env.tar_excluded = env.api.tar_out(env.files, env.root.tree_dir,
                                       {'excludes': strv(['*.log'])})


def test_tar_out_bad_input(env):
    api, obj = env.api, env.files
    expect_error('InvalidArgument', api.tar_out, obj, '/etc/hostname')
    expect_error('NotFound', api.tar_out, obj, '/no/such/dir')
    expect_error('InvalidArgument', api.tar_out, obj, '/etc', {'compress': s('bzip9')})
    expect_error('InvalidArgument', api.tar_out, obj, '/etc', {'compress': b(True)})
    expect_error('InvalidArgument', api.tar_out, obj, '/etc', {'excludes': s('*.log')})
    expect_error('InvalidArgument', api.tar_out, obj, '/etc', {'size': t(1)})
    for what, path in BAD_PATHS:
        expect_error('InvalidArgument', api.tar_out, obj, path)


# --- Writes that must be refused before they reach the guest ----------------------------

def bad_write_calls(env, obj):
    """(error name, what, function) for writes whose arguments are wrong
    on their face."""
    api = env.api
    calls = []
    for what, path in BAD_PATHS:
        calls += [
            ('InvalidArgument', 'WriteFile ' + what, lambda p=path: api.write_file(obj, p, b'x')),
            ('InvalidArgument', 'Mkdir ' + what, lambda p=path: api.mkdir(obj, p)),
            ('InvalidArgument', 'Remove ' + what, lambda p=path: api.remove(obj, p)),
            ('InvalidArgument', 'Rename from ' + what,
             lambda p=path: api.rename(obj, p, '/srv/renamed')),
            ('InvalidArgument', 'Rename to ' + what,
             lambda p=path: api.rename(obj, '/etc/motd', p)),
            ('InvalidArgument', 'Chmod ' + what, lambda p=path: api.chmod(obj, p, 0o600)),
            ('InvalidArgument', 'Chown ' + what, lambda p=path: api.chown(obj, p, 1, 1)),
            ('InvalidArgument', 'Symlink ' + what,
             lambda p=path: api.symlink(obj, '/etc/motd', p)),
            ('InvalidArgument', 'Upload ' + what,
             lambda p=path: api.upload(obj, p, b'data')),
            ('InvalidArgument', 'TarIn ' + what,
             lambda p=path: api.tar_in(obj, p, make_tar([('f', b'x')]))),
        ]
    bogus = {'no-such-option': b(True)}
    calls += [
        ('InvalidArgument', 'WriteFile unknown option',
         lambda: api.write_file(obj, '/etc/motd', b'x', bogus)),
        ('InvalidArgument', 'WriteFile mode of the wrong type',
         lambda: api.write_file(obj, '/etc/motd', b'x', {'mode': GLib.Variant('i', 0o644)})),
        ('InvalidArgument', 'WriteFile create of the wrong type',
         lambda: api.write_file(obj, '/etc/motd', b'x', {'create': u(0)})),
        ('InvalidArgument', 'WriteFile an option of another method',
         lambda: api.write_file(obj, '/etc/motd', b'x', {'recursive': b(True)})),
        ('InvalidArgument', 'WriteFile mode beyond 07777',
         lambda: api.write_file(obj, '/etc/motd', b'x', {'mode': u(0o170000)})),
        ('InvalidArgument', 'Mkdir unknown option', lambda: api.mkdir(obj, '/srv/x', bogus)),
        ('InvalidArgument', 'Mkdir parents of the wrong type',
         lambda: api.mkdir(obj, '/srv/x', {'parents': s('yes')})),
        ('InvalidArgument', 'Mkdir mode beyond 07777',
         lambda: api.mkdir(obj, '/srv/x', {'mode': u(0o40755)})),
        ('InvalidArgument', 'Remove unknown option',
         lambda: api.remove(obj, '/etc/motd', bogus)),
        ('InvalidArgument', 'Remove recursive of the wrong type',
         lambda: api.remove(obj, '/srv/tree', {'recursive': u(1)})),
        ('InvalidArgument', 'Rename unknown option',
         lambda: api.rename(obj, '/etc/motd', '/etc/motd2', bogus)),
        ('InvalidArgument', 'Chmod with file type bits',
         lambda: api.chmod(obj, '/etc/motd', 0o170000)),
        ('InvalidArgument', 'Chmod beyond 07777', lambda: api.chmod(obj, '/etc/motd', 0o10000)),
        ('InvalidArgument', 'Chmod unknown option',
         lambda: api.chmod(obj, '/etc/motd', 0o600, bogus)),
        ('InvalidArgument', 'Chown unknown option',
         lambda: api.chown(obj, '/etc/motd', 1, 1, bogus)),
        ('InvalidArgument', 'Symlink unknown option',
         lambda: api.symlink(obj, 'motd', '/etc/motd3', bogus)),
        ('InvalidArgument', 'Upload size of the wrong type',
         lambda: api.upload(obj, '/etc/motd', b'data', {'size': u(4)})),
        ('InvalidArgument', 'Upload mode beyond 07777',
         lambda: api.upload(obj, '/etc/motd', b'data', {'mode': u(0o100644)})),
        ('InvalidArgument', 'Upload unknown option',
         lambda: api.upload(obj, '/etc/motd', b'data', {'append': b(True)})),
        ('InvalidArgument', 'TarIn unknown option',
         lambda: api.tar_in(obj, '/srv', make_tar([('f', b'x')]),
                            {'excludes': strv(['x'])})),
        ('InvalidArgument', 'WriteFile root of the wrong type',
         lambda: api.write_file(obj, '/etc/motd', b'x', {'root': b(True)})),
    ]
    # fds: opened the wrong way, a directory, an index out of range
    calls += [
        ('InvalidArgument', 'Upload from a pipe write end',
         lambda: wrong_end(api, obj, 'Upload', '/etc/motd', write_end=True)),
        ('InvalidArgument', 'TarIn from a pipe write end',
         lambda: wrong_end(api, obj, 'TarIn', '/srv', write_end=True)),
        ('InvalidArgument', 'Upload from a file opened for writing only',
         lambda: write_only_file(api, obj, 'Upload', '/etc/motd')),
        ('InvalidArgument', 'Upload from a directory',
         lambda: directory_fd(api, obj, 'Upload', '/etc/motd')),
        ('InvalidArgument', 'TarIn from a directory',
         lambda: directory_fd(api, obj, 'TarIn', '/srv')),
        ('InvalidArgument', 'Upload with no fd passed',
         lambda: api.gio_fd_call(obj, 'Upload', '/etc/motd', 0, [])),
        ('InvalidArgument', 'Upload with an index out of range',
         lambda: bad_index(api, obj, 'Upload', '/etc/motd')),
        ('InvalidArgument', 'TarIn with an index out of range',
         lambda: bad_index(api, obj, 'TarIn', '/srv')),
    ]
    return calls


def wrong_end(api, obj, method, path, write_end):
    r, w = os.pipe()
    try:
        api.fd_call(obj, method, path, w if write_end else r)
    finally:
        os.close(r)
        os.close(w)


def write_only_file(api, obj, method, path):
    with tempfile.NamedTemporaryFile() as f:
        f.write(b'some data')
        f.flush()
        fd = os.open(f.name, os.O_WRONLY)
        try:
            api.fd_call(obj, method, path, fd)
        finally:
            os.close(fd)


def directory_fd(api, obj, method, path):
    fd = os.open('/tmp', os.O_RDONLY | os.O_DIRECTORY)
    try:
        api.fd_call(obj, method, path, fd)
    finally:
        os.close(fd)


def bad_index(api, obj, method, path):
    r, w = os.pipe()
    try:
        os.write(w, b'data')
        os.close(w)
        w = None
        api.gio_fd_call(obj, method, path, 1, [r])
    finally:
        os.close(r)
        if w is not None:
            os.close(w)


def run_bad_writes(calls):
    failures = []
    for name, what, func in calls:
        try:
            func()
        except DBusError as error:
            if error.name != ERROR + name:
                failures.append('%s: expected %s, got %s' % (what, name, error))
        else:
            failures.append('%s: succeeded, expected %s' % (what, name))
    return failures


def test_bad_writes_refused_leave_image_unchanged(env):
    """Writes with bad arguments: each its error, and the disk image
    unchanged (hashed with no appliance holding it)."""
    before = stopped_image_hash(env, env.files, env.root.path)
    failures = run_bad_writes(bad_write_calls(env, env.files))
    after = stopped_image_hash(env, env.files, env.root.path)
    if after != before:
        failures.append('the image changed')
    assert not failures, '\n'.join(failures)


# --- Writes -------------------------------------------------------------------------------

def test_first_write_switches_to_read_write(env):
    api, obj = env.api, env.files
    # warm a read-only appliance first
    assert api.read_file(obj, '/etc/hostname') == env.root.hostname.encode() + b'\n'
    recorder = SignalRecorder(env.bus.connection)
    try:
        api.mkdir(obj, '/srv/work')
        wait_until(lambda: state_changes(recorder, obj)[-1:] == ['running'], 10,
                   'ApplianceState "running" after the relaunch')
        assert 'starting' in state_changes(recorder, obj), \
            'the first write did not relaunch the appliance read-write'
        info = api.stat(obj, '/srv/work')
        assert (info['type'], info['mode'], info['uid'], info['gid']) == \
            ('directory', stat.S_IFDIR | 0o755, 0, 0)
        recorder.clear()
        # later reads and writes use the read-write appliance as it is
        api.mkdir(obj, '/srv/work/tmp')
        assert api.read_file(obj, '/etc/hostname') == env.root.hostname.encode() + b'\n'
        assert state_changes(recorder, obj) == []
    finally:
        recorder.close()


def test_write_file_new(env):
    api, obj = env.api, env.files
    data = b'a new file\n' * 100
    api.write_file(obj, '/srv/work/new.txt', data)
    info = api.stat(obj, '/srv/work/new.txt')
    assert (info['type'], info['mode'], info['uid'], info['gid'], info['size']) == \
        ('regular', stat.S_IFREG | 0o644, 0, 0, len(data))
    assert api.read_file(obj, '/srv/work/new.txt') == data
    # bigger than one piece of libguestfs's protocol
    big = os.urandom(5 * MIB + 3)
    api.write_file(obj, '/srv/work/five-mib', big)
    assert api.read_file(obj, '/srv/work/five-mib') == big
    assert names(api.read_dir(obj, '/srv/work')) == ['five-mib', 'new.txt', 'tmp']


def test_write_file_empty(env):
    api, obj = env.api, env.files
    api.write_file(obj, '/srv/work/empty', b'')
    info = api.stat(obj, '/srv/work/empty')
    assert (info['type'], info['size'], info['mode']) == ('regular', 0, stat.S_IFREG | 0o644)
    assert api.read_file(obj, '/srv/work/empty') == b''
    # emptying a file
    api.write_file(obj, '/srv/work/emptied', b'something')
    api.write_file(obj, '/srv/work/emptied', b'')
    assert api.read_file(obj, '/srv/work/emptied') == b''
    api.remove(obj, '/srv/work/emptied')
    api.remove(obj, '/srv/work/empty')


def test_write_file_replace_keeps_mode_and_owner(env):
    api, obj = env.api, env.files
    before = {e['name'] for e in api.read_dir(obj, '/etc')}
    data = b'A new message of the day.\n'
    api.write_file(obj, '/etc/motd', data)
    info = api.stat(obj, '/etc/motd')
    assert (info['mode'], info['uid'], info['gid'], info['size']) == \
        (stat.S_IFREG | 0o664, 1000, 1000, len(data))
    assert api.read_file(obj, '/etc/motd') == data
    api.write_file(obj, '/etc/shadow', b'root:!:19000::::::\n')
    info = api.stat(obj, '/etc/shadow')
    assert (info['mode'], info['uid'], info['gid']) == (stat.S_IFREG | 0o640, 0, 42)
    # no temporary file left behind
    assert {e['name'] for e in api.read_dir(obj, '/etc')} == before


def test_write_file_options(env):
    api, obj = env.api, env.files
    api.write_file(obj, '/srv/work/opts', b'opts\n',
                   {'mode': u(0o600), 'uid': u(1234), 'gid': u(5678)})
    info = api.stat(obj, '/srv/work/opts')
    assert (info['mode'], info['uid'], info['gid']) == (stat.S_IFREG | 0o600, 1234, 5678)
    # set-id bits survive the owner change
    api.write_file(obj, '/srv/work/setid', b'#!/bin/sh\n',
                   {'mode': u(0o6755), 'uid': u(1000), 'gid': u(1000)})
    info = api.stat(obj, '/srv/work/setid')
    assert (info['mode'], info['uid'], info['gid']) == (stat.S_IFREG | 0o6755, 1000, 1000)
    # on a replaced file: what is given changes, the rest is kept
    api.write_file(obj, '/etc/shadow', b'root:*:1::::::\n', {'mode': u(0o600)})
    info = api.stat(obj, '/etc/shadow')
    assert (info['mode'], info['uid'], info['gid']) == (stat.S_IFREG | 0o600, 0, 42)
    api.write_file(obj, '/etc/shadow', b'root:*:2::::::\n', {'uid': u(7)})
    info = api.stat(obj, '/etc/shadow')
    assert (info['mode'], info['uid'], info['gid']) == (stat.S_IFREG | 0o600, 7, 42)
    assert api.read_file(obj, '/etc/shadow') == b'root:*:2::::::\n'


def test_write_file_create_false(env):
    api, obj = env.api, env.files
    expect_error('NotFound', api.write_file, obj, '/srv/work/missing', b'x',
                 {'create': b(False)})
    expect_error('NotFound', api.stat, obj, '/srv/work/missing')
    api.write_file(obj, '/srv/work/new.txt', b'replaced\n', {'create': b(False)})
    assert api.read_file(obj, '/srv/work/new.txt') == b'replaced\n'
    api.write_file(obj, '/srv/work/created', b'created\n', {'create': b(True)})
    assert api.read_file(obj, '/srv/work/created') == b'created\n'


def test_write_file_append(env):
    api, obj = env.api, env.files
    api.write_file(obj, '/srv/work/log', b'one\n', {'mode': u(0o640), 'uid': u(1000)})
    api.write_file(obj, '/srv/work/log', b'two\n', {'append': b(True)})
    api.write_file(obj, '/srv/work/log', b'three\n', {'append': b(True), 'create': b(False)})
    assert api.read_file(obj, '/srv/work/log') == b'one\ntwo\nthree\n'
    info = api.stat(obj, '/srv/work/log')
    assert (info['mode'], info['uid'], info['gid']) == (stat.S_IFREG | 0o640, 1000, 0)
    # appending to a missing file creates it, unless create is false
    api.write_file(obj, '/srv/work/appended', b'first\n', {'append': b(True)})
    assert api.read_file(obj, '/srv/work/appended') == b'first\n'
    expect_error('NotFound', api.write_file, obj, '/srv/work/no-append', b'x',
                 {'append': b(True), 'create': b(False)})
    expect_error('NotFound', api.stat, obj, '/srv/work/no-append')
    big = os.urandom(3 * MIB)
    api.write_file(obj, '/srv/work/appended', big, {'append': b(True)})
    assert api.read_file(obj, '/srv/work/appended') == b'first\n' + big


def test_mkdir(env):
    api, obj = env.api, env.files
    expect_error('NotFound', api.mkdir, obj, '/srv/work/a/b/c')
    api.mkdir(obj, '/srv/work/a/b/c', {'parents': b(True), 'mode': u(0o750)})
    info = api.stat(obj, '/srv/work/a/b/c')
    assert (info['type'], info['mode']) == ('directory', stat.S_IFDIR | 0o750)
    assert api.stat(obj, '/srv/work/a/b')['type'] == 'directory'
    # parents: an existing directory is fine; without, it is an error
    api.mkdir(obj, '/srv/work/a/b/c', {'parents': b(True)})
    expect_error('InvalidArgument', api.mkdir, obj, '/srv/work/a/b/c')
    api.mkdir(obj, '/srv/work/private', {'mode': u(0o700)})
    assert api.stat(obj, '/srv/work/private')['mode'] == stat.S_IFDIR | 0o700
    api.mkdir(obj, '/srv/work/sticky', {'mode': u(0o1777), 'parents': b(False)})
    assert api.stat(obj, '/srv/work/sticky')['mode'] == stat.S_IFDIR | 0o1777
    # a file in the way
    expect_error('InvalidArgument', api.mkdir, obj, '/srv/work/new.txt')
    assert api.read_file(obj, '/srv/work/new.txt') == b'replaced\n'


def test_remove(env):
    api, obj = env.api, env.files
    api.write_file(obj, '/srv/work/a/file', b'x')
    api.write_file(obj, '/srv/work/a/b/deep', b'y')
    # a file
    api.remove(obj, '/srv/work/created')
    expect_error('NotFound', api.stat, obj, '/srv/work/created')
    # a non-empty directory without recursive: an error, and nothing removed
    expect_error('InvalidArgument', api.remove, obj, '/srv/work/a')
    assert names(api.read_dir(obj, '/srv/work/a')) == ['b', 'file']
    assert names(api.read_dir(obj, '/srv/work/a/b')) == ['c', 'deep']
    expect_error('InvalidArgument', api.remove, obj, '/srv/work/a', {'recursive': b(False)})
    assert api.read_file(obj, '/srv/work/a/b/deep') == b'y'
    # an empty directory
    api.remove(obj, '/srv/work/a/b/c')
    assert names(api.read_dir(obj, '/srv/work/a/b')) == ['deep']
    # recursive
    api.remove(obj, '/srv/work/a', {'recursive': b(True)})
    expect_error('NotFound', api.stat, obj, '/srv/work/a')
    # a symbolic link, not what it points to
    api.symlink(obj, '/srv/work/new.txt', '/srv/work/to-new')
    api.remove(obj, '/srv/work/to-new')
    expect_error('NotFound', api.stat, obj, '/srv/work/to-new')
    assert api.read_file(obj, '/srv/work/new.txt') == b'replaced\n'
    # a link to a directory, even with recursive, leaves the directory
    api.symlink(obj, '/srv/work/private', '/srv/work/to-private')
    api.write_file(obj, '/srv/work/private/keep', b'keep')
    api.remove(obj, '/srv/work/to-private', {'recursive': b(True)})
    assert api.read_file(obj, '/srv/work/private/keep') == b'keep'
    expect_error('NotFound', api.remove, obj, '/srv/work/no-such-file')


def test_rename(env):
    api, obj = env.api, env.files
    api.write_file(obj, '/srv/work/r1', b'one', {'mode': u(0o600), 'uid': u(1000)})
    api.rename(obj, '/srv/work/r1', '/srv/work/r2')
    expect_error('NotFound', api.stat, obj, '/srv/work/r1')
    info = api.stat(obj, '/srv/work/r2')
    assert (info['mode'], info['uid']) == (stat.S_IFREG | 0o600, 1000)
    assert api.read_file(obj, '/srv/work/r2') == b'one'
    # over an existing file, which is replaced
    api.write_file(obj, '/srv/work/r3', b'three')
    api.rename(obj, '/srv/work/r2', '/srv/work/r3')
    assert api.read_file(obj, '/srv/work/r3') == b'one'
    expect_error('NotFound', api.stat, obj, '/srv/work/r2')
    # a directory, into another one
    api.rename(obj, '/srv/work/private', '/srv/work/tmp/moved')
    assert names(api.read_dir(obj, '/srv/work/tmp/moved')) == ['keep']
    expect_error('NotFound', api.rename, obj, '/srv/work/no-such', '/srv/work/other')
    expect_error('NotFound', api.stat, obj, '/srv/work/other')


def test_chmod(env):
    api, obj = env.api, env.files
    api.chmod(obj, '/srv/work/r3', 0o4750)
    assert api.stat(obj, '/srv/work/r3')['mode'] == stat.S_IFREG | 0o4750
    api.chmod(obj, '/srv/work/r3', 0)
    assert api.stat(obj, '/srv/work/r3')['mode'] == stat.S_IFREG
    api.chmod(obj, '/srv/work/tmp', 0o2711)
    assert api.stat(obj, '/srv/work/tmp')['mode'] == stat.S_IFDIR | 0o2711
    expect_error('InvalidArgument', api.chmod, obj, '/srv/work/r3', 0o170000)
    assert api.stat(obj, '/srv/work/r3')['mode'] == stat.S_IFREG
    expect_error('NotFound', api.chmod, obj, '/srv/work/no-such', 0o644)


def test_chown(env):
    api, obj = env.api, env.files
    api.chown(obj, '/srv/work/r3', 1000, 1001)
    info = api.stat(obj, '/srv/work/r3')
    assert (info['uid'], info['gid']) == (1000, 1001)
    api.chown(obj, '/srv/work/tmp', 4000000, 65534)
    info = api.stat(obj, '/srv/work/tmp')
    assert (info['uid'], info['gid']) == (4000000, 65534)
    # a symbolic link itself changes, not its target
    api.symlink(obj, 'r3', '/srv/work/to-r3')
    api.chown(obj, '/srv/work/to-r3', 2000, 2001)
    info = api.stat(obj, '/srv/work/to-r3')
    assert (info['type'], info['uid'], info['gid']) == ('symlink', 2000, 2001)
    info = api.stat(obj, '/srv/work/r3')
    assert (info['uid'], info['gid']) == (1000, 1001)
    expect_error('NotFound', api.chown, obj, '/srv/work/no-such', 0, 0)


def test_symlink(env):
    api, obj = env.api, env.files
    api.symlink(obj, 'r3', '/srv/work/rel-link')
    api.symlink(obj, '/etc/hostname', '/srv/work/abs-link')
    api.symlink(obj, 'does/not/exist', '/srv/work/dangling')
    assert api.readlink(obj, '/srv/work/rel-link') == 'r3'
    assert api.readlink(obj, '/srv/work/abs-link') == '/etc/hostname'
    assert api.readlink(obj, '/srv/work/dangling') == 'does/not/exist'
    info = api.stat(obj, '/srv/work/dangling')
    assert (info['type'], info['link-target'], info['size']) == \
        ('symlink', 'does/not/exist', len('does/not/exist'))
    # the link exists and points at r3, whose content is read by its own path
    expect_error('InvalidArgument', api.read_file, obj, '/srv/work/rel-link')
    assert api.read_file(obj, '/srv/work/r3') == b'one'
    entries = {e['name']: e for e in api.read_dir(obj, '/srv/work')}
    assert entries['abs-link']['link-target'] == '/etc/hostname'
    assert entries['abs-link']['type'] == 'symlink'
    # an existing path is not replaced
    expect_error('InvalidArgument', api.symlink, obj, 'elsewhere', '/srv/work/r3')
    assert api.stat(obj, '/srv/work/r3')['type'] == 'regular'
    expect_error('NotFound', api.symlink, obj, 'x', '/srv/work/no/such/dir/link')


# --- Bulk writes ---------------------------------------------------------------------------

def test_upload_download_round_trip(env):
    """Over 100 MiB up and back through pipes."""
    api, obj = env.api, env.files
    started = time.monotonic()
    writer = api.transfer_in(obj, 'Upload', '/srv/big.bin',
                             pseudo_random_chunks(BIG_SIZE, 1), {'size': t(BIG_SIZE)})
    up = time.monotonic() - started
    assert writer.size == BIG_SIZE and not writer.broken
    info = api.stat(obj, '/srv/big.bin')
    assert (info['type'], info['size'], info['mode'], info['uid'], info['gid']) == \
        ('regular', BIG_SIZE, stat.S_IFREG | 0o644, 0, 0)
    started = time.monotonic()
    reader = api.transfer_out(obj, 'Download', '/srv/big.bin', keep=False)
    down = time.monotonic() - started
    assert reader.size == BIG_SIZE
    assert reader.digest.hexdigest() == writer.digest.hexdigest()
    print('upload %.1f MiB/s, download %.1f MiB/s' % (BIG_SIZE / MIB / up,
                                                      BIG_SIZE / MIB / down))
    # and a piece of it through ReadFile
    expected = b''.join(pseudo_random_chunks(BIG_SIZE, 1))
    assert api.read_file(obj, '/srv/big.bin', {'offset': t(100 * MIB), 'length': t(4096)}) \
        == expected[100 * MIB:100 * MIB + 4096]
    env.big_digest = writer.digest.hexdigest()


def test_upload_source_closed_half_way(env):
    """A source that ends before the announced size: Cancelled, and the
    old file stays whole."""
    api, obj = env.api, env.files
    before = names(api.read_dir(obj, '/srv'))
    with pytest.raises(DBusError) as info:
        api.transfer_in(obj, 'Upload', '/srv/big.bin', pseudo_random_chunks(BIG_SIZE, 2),
                        {'size': t(BIG_SIZE)}, close_after=BIG_SIZE // 2)
    assert info.value.name == ERROR + 'Cancelled', str(info.value)
    assert info.value.writer.size == BIG_SIZE // 2
    assert api.stat(obj, '/srv/big.bin')['size'] == BIG_SIZE
    reader = api.transfer_out(obj, 'Download', '/srv/big.bin', keep=False)
    assert reader.digest.hexdigest() == env.big_digest
    assert names(api.read_dir(obj, '/srv')) == before

    # a small file, and a source that ends at once
    api.write_file(obj, '/srv/work/small', b'old content\n', {'mode': u(0o600)})
    for close_after in (5, 0):
        with pytest.raises(DBusError) as info:
            api.transfer_in(obj, 'Upload', '/srv/work/small', [b'new content, longer\n'],
                            {'size': t(20)}, close_after=close_after)
        assert info.value.name == ERROR + 'Cancelled', str(info.value)
        assert api.read_file(obj, '/srv/work/small') == b'old content\n'
        assert api.stat(obj, '/srv/work/small')['mode'] == stat.S_IFREG | 0o600
    # a new file: not created
    with pytest.raises(DBusError) as info:
        api.transfer_in(obj, 'Upload', '/srv/work/never', [b'0123456789'],
                        {'size': t(100)})
    assert info.value.name == ERROR + 'Cancelled', str(info.value)
    expect_error('NotFound', api.stat, obj, '/srv/work/never')
    # no temporary files either
    assert 'never' not in names(api.read_dir(obj, '/srv/work'))
    assert not [n for n in names(api.read_dir(obj, '/srv/work')) if n.startswith('.')]
    assert not [n for n in names(api.read_dir(obj, '/srv')) if n.startswith('.')]


def test_upload_without_size_takes_what_comes(env):
    api, obj = env.api, env.files
    # without 'size', end of file ends the data
    api.upload(obj, '/srv/work/small', b'short\n')
    assert api.read_file(obj, '/srv/work/small') == b'short\n'
    # the replaced file keeps its mode
    assert api.stat(obj, '/srv/work/small')['mode'] == stat.S_IFREG | 0o600
    api.upload(obj, '/srv/work/uploaded', b'', {'size': t(0)})
    assert api.read_file(obj, '/srv/work/uploaded') == b''


def test_upload_options_and_sources(env):
    api, obj = env.api, env.files
    data = os.urandom(3 * MIB + 5)
    api.upload(obj, '/srv/work/up-opts', data,
               {'mode': u(0o640), 'uid': u(1000), 'gid': u(1001), 'size': t(len(data))})
    info = api.stat(obj, '/srv/work/up-opts')
    assert (info['mode'], info['uid'], info['gid'], info['size']) == \
        (stat.S_IFREG | 0o640, 1000, 1001, len(data))
    assert api.download(obj, '/srv/work/up-opts') == data
    # a replaced file keeps mode and owner
    api.upload(obj, '/etc/motd', b'uploaded motd\n')
    info = api.stat(obj, '/etc/motd')
    assert (info['mode'], info['uid'], info['gid']) == (stat.S_IFREG | 0o664, 1000, 1000)
    assert api.read_file(obj, '/etc/motd') == b'uploaded motd\n'
    # from a regular file (read to its end)
    with tempfile.TemporaryFile() as f:
        f.write(data[:100000])
        f.flush()
        fd = os.open('/proc/self/fd/%d' % f.fileno(), os.O_RDONLY)
        try:
            api.fd_call(obj, 'Upload', '/srv/work/from-file', fd)
        finally:
            os.close(fd)
    assert api.read_file(obj, '/srv/work/from-file') == data[:100000]
    # from a socket
    ours, theirs = socket.socketpair()
    writer = PipeWriter(os.dup(ours.fileno()), [data])
    ours.close()
    writer.start()
    try:
        api.fd_call(obj, 'Upload', '/srv/work/from-socket', theirs.fileno(),
                    {'size': t(len(data))})
    finally:
        theirs.close()
        writer.join(RELEASE_TIMEOUT)
    assert not writer.is_alive()
    assert api.download(obj, '/srv/work/from-socket') == data


def test_download_client_closes_early(env):
    """A client that closes its end: the transfer ends promptly with an
    error, and the service serves on."""
    api, obj = env.api, env.files
    started = time.monotonic()
    with pytest.raises(DBusError) as info:
        api.transfer_out(obj, 'Download', '/srv/big.bin', keep=False, close_after=1 * MIB)
    elapsed = time.monotonic() - started
    assert info.value.name == ERROR + 'Cancelled', str(info.value)
    assert info.value.reader.closed_early
    assert elapsed < PROMPT_CANCEL, 'the transfer went on for %.0f s' % elapsed
    # the same with TarOut
    with pytest.raises(DBusError) as info:
        api.transfer_out(obj, 'TarOut', '/srv', keep=False, close_after=1 * MIB)
    assert info.value.name == ERROR + 'Cancelled', str(info.value)
    # the service, and the appliance, serve on
    assert api.read_file(obj, '/srv/work/small') == b'short\n'
    assert api.download(obj, '/srv/work/up-opts')[:10] != b''
    reader = api.transfer_out(obj, 'Download', '/srv/big.bin', keep=False)
    assert reader.digest.hexdigest() == env.big_digest
    assert api.state(obj) == 'running'


def test_write_drops_inspection(env):
    api, obj = env.api, env.files
    (system,) = api.inspect(obj)
    assert system['hostname'] == env.root.hostname
    assert api.inspect(obj) == [system]
    # a fresh appliance for the write: Files calls on the appliance that
    # just inspected are the next test's matter
    api.stop_appliance(obj)
    api.write_file(obj, '/etc/hostname', b'lgd-renamed-host\n')
    (system,) = api.inspect(obj)
    assert system['hostname'] == 'lgd-renamed-host'
    # an Upload is a write too
    api.stop_appliance(obj)
    api.upload(obj, '/etc/hostname', b'lgd-uploaded-host\n')
    (system,) = api.inspect(obj)
    assert system['hostname'] == 'lgd-uploaded-host'


def test_files_after_inspect(env):
    """Inspect and Files calls share the appliance: an inspection run on
    it leaves Files calls working."""
    api, obj = env.api, env.files
    api.stop_appliance(obj)
    api.write_file(obj, '/etc/hostname', b'lgd-files-host\n')  # drops the cached result
    assert api.state(obj) == 'running'
    (system,) = api.inspect(obj)                # inspects on the running appliance
    assert system['hostname'] == 'lgd-files-host'
    failures = []
    for what, func, expected in (
            ('ReadFile', lambda: api.read_file(obj, '/etc/hostname'), b'lgd-files-host\n'),
            ('ReadDir', lambda: 'hostname' in names(api.read_dir(obj, '/etc')), True),
            ('WriteFile', lambda: api.write_file(obj, '/srv/work/after-inspect', b'x'), None),
            ('Stat', lambda: api.stat(obj, '/srv/work/after-inspect')['size'], 1)):
        try:
            got = func()
        except DBusError as error:
            failures.append('%s after Inspect: %s' % (what, error))
        else:
            if got != expected:
                failures.append('%s after Inspect: %r, expected %r' % (what, got, expected))
    assert not failures, '\n'.join(failures)


def guest_bad_write_calls(env, obj):
    """(error name, what, function) for writes whose arguments are fine
    on their face but wrong for what the guest holds."""
    api = env.api
    tar = make_tar([('f', b'x')])
    return [
        ('NotFound', 'WriteFile create=false on a missing file',
         lambda: api.write_file(obj, '/srv/work/missing', b'x', {'create': b(False)})),
        ('NotFound', 'WriteFile append create=false on a missing file',
         lambda: api.write_file(obj, '/srv/work/missing', b'x',
                                {'create': b(False), 'append': b(True)})),
        ('NotFound', 'WriteFile in a missing directory',
         lambda: api.write_file(obj, '/no/such/dir/file', b'x')),
        ('InvalidArgument', 'WriteFile on a directory',
         lambda: api.write_file(obj, '/etc', b'x')),
        ('InvalidArgument', 'WriteFile append on a directory',
         lambda: api.write_file(obj, '/etc', b'x', {'append': b(True)})),
        ('InvalidArgument', 'WriteFile on a fifo',
         lambda: api.write_file(obj, '/srv/special/fifo', b'x')),
        ('InvalidArgument', 'Upload on a directory', lambda: api.upload(obj, '/etc', b'x')),
        ('NotFound', 'Upload in a missing directory',
         lambda: api.upload(obj, '/no/such/dir/file', b'x')),
        ('NotFound', 'Mkdir without its parent', lambda: api.mkdir(obj, '/no/such/dir')),
        ('InvalidArgument', 'Mkdir on an existing file', lambda: api.mkdir(obj, '/etc/motd')),
        ('NotFound', 'Remove a missing file', lambda: api.remove(obj, '/srv/work/missing')),
        ('InvalidArgument', 'Remove a non-empty directory',
         lambda: api.remove(obj, '/srv/tree/sub')),
        ('NotFound', 'Rename a missing file',
         lambda: api.rename(obj, '/srv/work/missing', '/srv/work/other')),
        ('NotFound', 'Rename into a missing directory',
         lambda: api.rename(obj, '/etc/motd', '/no/such/dir/motd')),
        ('NotFound', 'Chmod a missing file', lambda: api.chmod(obj, '/srv/work/missing', 0o600)),
        ('NotFound', 'Chown a missing file', lambda: api.chown(obj, '/srv/work/missing', 1, 1)),
        ('NotFound', 'Symlink in a missing directory',
         lambda: api.symlink(obj, 'x', '/no/such/dir/link')),
        ('InvalidArgument', 'Symlink over an existing file',
         lambda: api.symlink(obj, 'x', '/etc/motd')),
        ('NotFound', 'TarIn into a missing directory',
         lambda: api.tar_in(obj, '/no/such/dir', tar)),
        ('InvalidArgument', 'TarIn into a file', lambda: api.tar_in(obj, '/etc/motd', tar)),
        ('InvalidArgument', 'TarIn with an unknown compression',
         lambda: api.tar_in(obj, '/srv/work', tar, {'compress': s('zstd9')})),
        ('InvalidArgument', 'WriteFile with a root that is not one',
         lambda: api.write_file(obj, '/etc/motd', b'x', {'root': s('/dev/sdz')})),
        ('InvalidArgument', 'Mkdir with a filesystem that does not exist',
         lambda: api.mkdir(obj, '/x', {'filesystem': s('/dev/sdz9')})),
    ]


def superblock_changes(before, after):
    """What dumpe2fs -h tells apart in two ext4 images, for the report."""
    def header(path):
        result = subprocess.run(['dumpe2fs', '-h', path], capture_output=True, text=True)
        return result.stdout.splitlines()
    old, new = header(before), header(after)
    return [line for line in difflib.unified_diff(old, new, lineterm='', n=0)
            if line[:1] in '+-' and line[:3] not in ('+++', '---')]


def test_bad_writes_in_guest(env):
    """Writes whose arguments are wrong for what the guest holds: each
    its error.  The image is compared by the next test."""
    env.files_before = stopped_image_hash(env, env.files, env.root.path)
    env.files_copy = env.images.copy(env.root.path, 'files-before-bad-writes.img')
    try:
        failures = run_bad_writes(guest_bad_write_calls(env, env.files))
    finally:
        env.files_after = stopped_image_hash(env, env.files, env.root.path)
    assert not failures, '\n'.join(failures)


def test_bad_writes_in_guest_leave_image_unchanged(env):
    if not hasattr(env, 'files_after'):
        pytest.fail('test_bad_writes_in_guest did not get to run its calls', pytrace=False)
    try:
        if env.files_after != env.files_before:
            changed = subprocess.run(['cmp', '-l', env.files_copy, env.root.path],
                                     capture_output=True, text=True).stdout.splitlines()
            pytest.fail('the image changed: %d bytes differ, in the blocks (KiB) %s; '
                        'dumpe2fs -h:\n%s' % (
                            len(changed),
                            sorted({(int(line.split()[0]) - 1) // 1024 for line in changed}),
                            '\n'.join(superblock_changes(env.files_copy, env.root.path))))
    finally:
        os.unlink(env.files_copy)


# --- A disk without an operating system; TarIn from the files domain --------------------

def test_filesystem_option(env):
    api, obj = env.api, env.datadom
    part = env.data.partitions[0]
    fs = {'filesystem': s('/dev/sda1')}
    error = expect_error('InvalidArgument', api.read_dir, obj, '/')
    assert 'filesystem' in str(error)
    entries = api.read_dir(obj, '/', fs)
    assert set(names(entries)) == set(part.files) | {'lost+found'}
    assert api.read_file(obj, '/hello.txt', fs) == part.files['hello.txt'].encode()
    assert api.download(obj, '/big.bin', fs) == part.files['big.bin']
    # the vfat partition holds nothing
    assert api.read_dir(obj, '/', {'filesystem': s('/dev/sda2')}) == []
    # only the guest's filesystems: not a missing one, nor the appliance's own
    # disk (sdb, after the guest's one disk)
    for device in ('/dev/sdb1', '/dev/sdb', '/dev/sda3', 'sda1'):
        error = expect_error('InvalidArgument', api.read_dir, obj, '/',
                             {'filesystem': s(device)})
        assert device in str(error) and 'ListFilesystems' in str(error), error
    # an alias of the same partition is the same partition
    assert set(names(api.read_dir(obj, '/', {'filesystem': s('/dev/vda1')}))) == \
        set(part.files) | {'lost+found'}
    # and writes
    api.mkdir(obj, '/restore', fs)
    api.write_file(obj, '/restore/.keep', b'keep', fs)
    assert api.read_file(obj, '/restore/.keep', fs) == b'keep'
    api.remove(obj, '/restore/.keep', fs)
    assert api.read_dir(obj, '/restore', fs) == []
    assert names(api.read_dir(obj, '/', fs)) == sorted(set(part.files) |
                                                      {'lost+found', 'restore'})


def tar_in_and_compare(env, target, data, compress, expected):
    api, obj = env.api, env.datadom
    fs = {'filesystem': s('/dev/sda1')}
    api.mkdir(obj, target, fs)
    options = dict(fs)
    if compress is not None:
        options['compress'] = s(compress)
    api.tar_in(obj, target, data, options)
    copy = api.tar_out(obj, target, fs)
    assert tar_listing(copy) == expected
    return copy


def test_tar_in_tree_into_other_domain(env):
    expected = expected_listing(env.root.tree)
    tar_in_and_compare(env, '/restore/plain', env.tar_plain, None, expected)
    # the same tree seen through the API
    api, obj = env.api, env.datadom
    fs = {'filesystem': s('/dev/sda1')}
    entries = {e['name']: e for e in api.read_dir(obj, '/restore/plain', fs)}
    for entry in env.root.tree:
        if entry.path == '.' or '/' in entry.path:
            continue
        assert_entry(entries.pop(entry.path), entry)
    assert entries == {}
    tree = {e.path: e for e in env.root.tree}
    for path in ('sub/nested.bin', 'sub/deeper', 'sub/link-up', 'shared/notes',
                 'sub/deeper/deep.txt'):
        assert_entry(api.stat(obj, '/restore/plain/' + path, fs), tree[path])
        if tree[path].kind == 'regular':
            assert api.read_file(obj, '/restore/plain/' + path, fs) == tree[path].content
    assert api.readlink(obj, '/restore/plain/link-rel', fs) == 'a.txt'


def test_tar_in_compressed(env):
    expected = expected_listing(env.root.tree)
    tar_in_and_compare(env, '/restore/gz', env.tar_gz, 'gzip', expected)
    tar_in_and_compare(env, '/restore/xz', env.tar_xz, 'xz', expected)
    tar_in_and_compare(env, '/restore/none', env.tar_plain, 'none', expected)
    tar_in_and_compare(env, '/restore/excluded', env.tar_excluded, None,
                       expected_listing(env.root.tree, leave_out=('skip.log', 'sub/skip.log')))


def test_tar_in_bad_archive(env):
    api, obj = env.api, env.datadom
    fs = {'filesystem': s('/dev/sda1')}
    api.mkdir(obj, '/restore/bad', fs)
    # not what the compress option says
    with pytest.raises(DBusError) as info:
        api.tar_in(obj, '/restore/bad', env.tar_plain, dict(fs, compress=s('gzip')))
    assert info.value.name.startswith(ERROR), str(info.value)
    with pytest.raises(DBusError) as info:
        api.tar_in(obj, '/restore/bad', b'this is not a tar archive' * 100, fs)
    assert info.value.name.startswith(ERROR), str(info.value)
    # the service serves on
    assert api.read_file(obj, '/hello.txt', fs) == \
        env.data.partitions[0].files['hello.txt'].encode()
    env.api.stop_appliance(obj)


# --- A running domain ------------------------------------------------------------------------

def running_write_calls(env, obj):
    api = env.api
    tar = make_tar([('f', b'x')])
    return [
        ('WriteFile', lambda: api.write_file(obj, '/etc/hostname', b'changed\n')),
        ('WriteFile append',
         lambda: api.write_file(obj, '/etc/hostname', b'more\n', {'append': b(True)})),
        ('Mkdir', lambda: api.mkdir(obj, '/srv-new', {'parents': b(True)})),
        ('Remove', lambda: api.remove(obj, '/etc/hostname')),
        ('Remove recursive', lambda: api.remove(obj, '/etc', {'recursive': b(True)})),
        ('Rename', lambda: api.rename(obj, '/etc/hostname', '/etc/hostname.old')),
        ('Chmod', lambda: api.chmod(obj, '/etc/hostname', 0o600)),
        ('Chown', lambda: api.chown(obj, '/etc/hostname', 1000, 1000)),
        ('Symlink', lambda: api.symlink(obj, '/etc/hostname', '/etc/hostname.link')),
        ('Upload', lambda: api.upload(obj, '/etc/hostname', b'uploaded\n')),
        ('Upload with size',
         lambda: api.upload(obj, '/etc/hostname', b'uploaded\n', {'size': t(9)})),
        ('TarIn', lambda: api.tar_in(obj, '/tmp', tar)),
    ]


def assert_writes_refused(env, obj):
    failures = []
    for what, func in running_write_calls(env, obj):
        try:
            func()
        except DBusError as error:
            if error.name != ERROR + 'DomainRunning':
                failures.append('%s: expected DomainRunning, got %s' % (what, error))
        else:
            failures.append('%s: succeeded on a running domain' % what)
    assert not failures, '\n'.join(failures)


def test_writes_on_running_domain(env):
    api, obj = env.api, env.run
    dom = env.conn.lookupByName(env.run_name)
    before = sha256_file(env.run_root.path)
    dom.create()
    try:
        wait_until(lambda: env.daemon.client.get_property(obj, DOMAIN_IFACE, 'Active'), 30,
                   'Active on ' + obj)
        # writes first: refused before any appliance starts
        assert_writes_refused(env, obj)
        assert api.state(obj) == 'stopped'
        assert sha256_file(env.run_root.path) == before

        # reads work on the running domain
        hostname = env.run_root.hostname.encode() + b'\n'
        assert api.read_file(obj, '/etc/hostname') == hostname
        assert 'hostname' in names(api.read_dir(obj, '/etc'))
        assert api.stat(obj, '/etc/hostname')['size'] == len(hostname)
        assert api.download(obj, '/etc/hostname') == hostname
        assert tar_listing(api.tar_out(obj, '/etc'))['hostname'][6] == len(hostname)
        assert api.state(obj) == 'running'

        # and writes are refused with the (read-only) appliance running too
        recorder = SignalRecorder(env.bus.connection)
        try:
            assert_writes_refused(env, obj)
            assert state_changes(recorder, obj) == []
        finally:
            recorder.close()
        assert api.read_file(obj, '/etc/hostname') == hostname
        assert dom.isActive() == 1
        assert sha256_file(env.run_root.path) == before
        api.stop_appliance(obj)
    finally:
        if dom.isActive():
            dom.destroy()
    assert sha256_file(env.run_root.path) == before


# --- The read size limit -----------------------------------------------------------------------

def test_max_read_size(env):
    """With --max-read-size 1 (MiB): ReadFile of a 2 MiB file is TooLarge
    and names Download, and WriteFile of more than 1 MiB names Upload."""
    bus = PrivateBus()  # its own bus: the module's service owns the name here
    daemon = None
    api = None
    errors = []
    try:
        daemon = Daemon(bus, [SYSTEM_URI], service_args('--max-read-size', '1',
                                                        '--idle-timeout', '900'))
        _running_daemons.append(daemon)
        api = Files(bus.connection, bus.address)
        obj = daemon.client.lookup_domain(env.maxread_name)
        fs = {'filesystem': s('/dev/sda1')}
        big = env.data.partitions[0].files['big.bin']
        assert len(big) == 2 * MIB
        before = sha256_file(env.maxread_image)

        error = expect_error('TooLarge', api.read_file, obj, '/big.bin', fs)
        assert 'Download' in str(error), str(error)
        error = expect_error('TooLarge', api.read_file, obj, '/big.bin',
                             dict(fs, offset=t(MIB - 1)))
        assert 'Download' in str(error), str(error)
        # within the limit
        assert api.read_file(obj, '/big.bin', dict(fs, offset=t(1000), length=t(4096))) == \
            big[1000:5096]
        assert api.read_file(obj, '/big.bin', dict(fs, length=t(MIB))) == big[:MIB]
        assert api.read_file(obj, '/big.bin', dict(fs, offset=t(MIB))) == big[MIB:]
        assert api.download(obj, '/big.bin', fs) == big

        error = expect_error('TooLarge', api.write_file, obj, '/new.bin', b'x' * (MIB + 1), fs)
        assert 'Upload' in str(error), str(error)
        api.stop_appliance(obj)
        assert sha256_file(env.maxread_image) == before
    finally:
        if daemon is not None:
            stop_service(daemon, api, errors)
        if api is not None:
            api.close()
        bus.stop()
    assert not errors, '\n'.join(errors)


# --- Volumes ------------------------------------------------------------------------------------

def test_files_on_volume(env):
    """Volume objects implement Files too."""
    api, obj = env.api, env.volume
    hostname = env.run_root.hostname.encode() + b'\n'
    assert api.read_file(obj, '/etc/hostname') == hostname
    assert 'hostname' in names(api.read_dir(obj, '/etc'))
    assert api.download(obj, '/etc/hostname') == hostname
    api.write_file(obj, '/etc/hostname', b'lgd-volume-host\n')
    assert api.read_file(obj, '/etc/hostname') == b'lgd-volume-host\n'
    info = api.stat(obj, '/etc/hostname')
    assert (info['mode'], info['uid'], info['gid']) == (stat.S_IFREG | 0o644, 0, 0)
    expect_error('InvalidArgument', api.read_file, obj, 'etc/hostname')
    expect_error('NotFound', api.read_file, obj, '/etc/no-such-file')
    api.stop_appliance(obj, VOLUME_IFACE)
