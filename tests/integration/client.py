# The service's API as the tests call it, in one place: method calls with
# timeouts (blocking or pending), the assertion that a call fails with a
# named org.libvirt.GuestFS.Error.*, calls that pass file descriptors and
# the threads that feed or drain the pipes meanwhile, and checksums.
#
# File descriptors for the Files methods are passed with python3-dbus,
# which duplicates them into the message and lets the test close every
# copy of its own once the call has returned: a pipe whose write end stays
# open in the client never reaches end of file.  call_with_fds() does the
# same through GDBus, stealing and closing the list's copies after the call.

import hashlib
import os
import random
import select
import threading
import time

import pytest
from gi.repository import Gio, GLib

BUS_NAME = 'org.libvirt.GuestFS'
ROOT_PATH = '/org/libvirt/GuestFS'
MANAGER_PATH = ROOT_PATH + '/Manager'
MANAGER_IFACE = 'org.libvirt.GuestFS.Manager'
DOMAIN_IFACE = 'org.libvirt.GuestFS.Domain'
VOLUME_IFACE = 'org.libvirt.GuestFS.Volume'
INSPECTOR_IFACE = 'org.libvirt.GuestFS.Inspector'
FILES_IFACE = 'org.libvirt.GuestFS.Files'
OBJECT_MANAGER_IFACE = 'org.freedesktop.DBus.ObjectManager'
PROPERTIES_IFACE = 'org.freedesktop.DBus.Properties'
ERROR_PREFIX = 'org.libvirt.GuestFS.Error.'

MIB = 1024 * 1024
# Calls that need no appliance answer at once.
QUICK_TIMEOUT = 30.0
# An appliance boots in 15-40 s under TCG, more when several boot at once.
APPLIANCE_CALL_TIMEOUT = 600.0
SIGNAL_TIMEOUT = 10.0
# After a transfer's reply, the service must have let go of the client's
# fd: the other end sees end of file (or a broken pipe) at once.
RELEASE_TIMEOUT = 10.0


# --- Waiting ---------------------------------------------------------------

def dispatch():
    """Dispatches what has arrived so far on the default main context."""
    context = GLib.MainContext.default()
    while context.pending():
        context.iteration(False)


def wait_until(condition, timeout=SIGNAL_TIMEOUT, what='the condition'):
    """Dispatch D-Bus events until condition() returns a true value, which
    is returned.  Fails after timeout seconds."""
    context = GLib.MainContext.default()
    deadline = time.monotonic() + timeout
    while True:
        dispatch()
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


def pump(seconds, until=None):
    """Dispatches D-Bus events for up to seconds, or until until()."""
    deadline = time.monotonic() + seconds
    while True:
        dispatch()
        if until is not None and until():
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(0.05, remaining))


# --- Calls -------------------------------------------------------------------

class DBusError(Exception):
    """A D-Bus error reply, with its error name and message."""

    def __init__(self, name, message):
        super().__init__('%s: %s' % (name, message))
        self.name = name
        self.message = message


def dbus_error(error):
    """The DBusError of a GLib.Error, or None when it is no remote error."""
    name = Gio.DBusError.get_remote_error(error)
    if name is None:
        return None
    Gio.DBusError.strip_remote_error(error)
    return DBusError(name, error.message)


def call_method(connection, path, iface, method, args=None, reply_type=None,
                timeout=APPLIANCE_CALL_TIMEOUT, destination=BUS_NAME, unpack=True):
    """A blocking call; D-Bus errors raise DBusError.  The reply is
    unpacked, or with unpack=False stays a GLib.Variant (unpacking a big
    'ay' into a list of ints would take seconds)."""
    try:
        reply = connection.call_sync(
            destination, path, iface, method, args,
            GLib.VariantType(reply_type) if reply_type else None,
            Gio.DBusCallFlags.NONE, int(timeout * 1000), None)
    except GLib.Error as error:
        remote = dbus_error(error)
        if remote is None:
            raise
        raise remote from None
    if not unpack or reply is None:
        return reply
    return reply.unpack()


def call_with_fds(connection, path, iface, method, args, fds, reply_type=None,
                  timeout=APPLIANCE_CALL_TIMEOUT):
    """A call passing fds (a list of fds, which stay the caller's, or a
    Gio.UnixFDList, whose fds are closed here once the call returned)."""
    if isinstance(fds, Gio.UnixFDList):
        fd_list = fds
    else:
        fd_list = Gio.UnixFDList.new()
        for fd in fds:
            fd_list.append(fd)
    try:
        connection.call_with_unix_fd_list_sync(
            BUS_NAME, path, iface, method, args,
            GLib.VariantType(reply_type) if reply_type else None,
            Gio.DBusCallFlags.NONE, int(timeout * 1000),
            fd_list if fd_list.get_length() else None, None)
    except GLib.Error as error:
        remote = dbus_error(error)
        if remote is None:
            raise
        raise remote from None
    finally:
        for fd in fd_list.steal_fds():
            os.close(fd)


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
            self._error = dbus_error(error) or error
        self.finished = time.monotonic()

    def done(self):
        return self.finished is not None

    def wait(self, timeout=APPLIANCE_CALL_TIMEOUT):
        """The unpacked reply; a D-Bus error raises DBusError."""
        wait_until(self.done, timeout, 'the reply to ' + self.what)
        if self._error is not None:
            raise self._error
        return self._reply.unpack() if self._reply is not None else None


# --- Errors ------------------------------------------------------------------

def expect_error(name, func, *args, contains=(), **kwargs):
    """func(...) must fail with org.libvirt.GuestFS.Error.<name>, with a
    message that is not empty and holds every string of contains."""
    with pytest.raises(DBusError) as info:
        func(*args, **kwargs)
    error = info.value
    assert error.name == ERROR_PREFIX + name, str(error)
    assert error.message.strip(), 'the %s error has no message' % error.name
    if isinstance(contains, str):
        contains = (contains,)
    for part in contains:
        assert part in error.message, '%r is not in the message: %s' % (part, error)
    return error


# --- Checksums ---------------------------------------------------------------

def sha256(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        while True:
            data = f.read(4 * MIB)
            if not data:
                return digest.hexdigest()
            digest.update(data)


def pseudo_random_chunks(size, seed, chunk=4 * MIB):
    """size bytes in pieces, the same for the same seed."""
    rng = random.Random(seed)
    left = size
    while left > 0:
        n = min(chunk, left)
        yield rng.randbytes(n)
        left -= n


# --- The service's objects -----------------------------------------------------

class GuestFSClient:
    """The Manager, Domain, Volume and Inspector interfaces, as a client
    program would use them."""

    def __init__(self, connection):
        self.connection = connection

    def call(self, path, iface, method, args=None, reply_type=None,
             timeout=APPLIANCE_CALL_TIMEOUT, **kwargs):
        return call_method(self.connection, path, iface, method, args, reply_type,
                           timeout=timeout, **kwargs)

    def get_managed_objects(self, timeout=QUICK_TIMEOUT):
        (objects,) = self.call(ROOT_PATH, OBJECT_MANAGER_IFACE, 'GetManagedObjects',
                               None, '(a{oa{sa{sv}}})', timeout=timeout)
        return objects

    managed_objects = get_managed_objects

    def objects_with(self, iface):
        """{path: properties} of the objects implementing iface."""
        return {path: ifaces[iface]
                for path, ifaces in self.get_managed_objects().items()
                if iface in ifaces}

    def get_property(self, path, iface, name, timeout=QUICK_TIMEOUT):
        (value,) = self.call(path, PROPERTIES_IFACE, 'Get',
                             GLib.Variant('(ss)', (iface, name)), '(v)', timeout=timeout)
        return value

    get = get_property

    def get_all_properties(self, path, iface):
        (values,) = self.call(path, PROPERTIES_IFACE, 'GetAll',
                              GLib.Variant('(s)', (iface,)), '(a{sv})',
                              timeout=QUICK_TIMEOUT)
        return values

    def manager_property(self, name):
        return self.get_property(MANAGER_PATH, MANAGER_IFACE, name)

    def state(self, path, iface=DOMAIN_IFACE):
        return self.get_property(path, iface, 'ApplianceState')

    def lookup_domain(self, name_or_uuid):
        (path,) = self.call(MANAGER_PATH, MANAGER_IFACE, 'LookupDomain',
                            GLib.Variant('(s)', (name_or_uuid,)), '(o)',
                            timeout=QUICK_TIMEOUT)
        return path

    def lookup_volume(self, path_or_key):
        (path,) = self.call(MANAGER_PATH, MANAGER_IFACE, 'LookupVolume',
                            GLib.Variant('(s)', (path_or_key,)), '(o)',
                            timeout=QUICK_TIMEOUT)
        return path

    def try_lookup_volume(self, key):
        """The volume's path, or None while the service does not know it."""
        try:
            return self.lookup_volume(key)
        except DBusError as error:
            if error.name != ERROR_PREFIX + 'NotFound':
                raise
            return None

    def appliance_objects(self):
        """[(path, iface)] of the domain and volume objects."""
        return [(path, DOMAIN_IFACE if DOMAIN_IFACE in ifaces else VOLUME_IFACE, ifaces)
                for path, ifaces in self.get_managed_objects().items()
                if DOMAIN_IFACE in ifaces or VOLUME_IFACE in ifaces]

    # Inspector
    def inspect(self, path, options=None):
        (systems,) = self.call(path, INSPECTOR_IFACE, 'Inspect',
                               GLib.Variant('(a{sv})', (options or {},)), '(aa{sv})')
        return systems

    def inspect_async(self, path):
        return PendingCall(self.connection, path, INSPECTOR_IFACE, 'Inspect',
                           GLib.Variant('(a{sv})', ({},)), '(aa{sv})')

    def list_applications(self, path, root, options=None):
        (apps,) = self.call(path, INSPECTOR_IFACE, 'ListApplications',
                            GLib.Variant('(sa{sv})', (root, options or {})), '(aa{sv})')
        return apps

    def get_icon(self, path, root, options=None):
        (icon,) = self.call(path, INSPECTOR_IFACE, 'GetIcon',
                            GLib.Variant('(sa{sv})', (root, options or {})), '(ay)')
        return bytes(icon)

    def list_filesystems(self, path, options=None):
        (fs,) = self.call(path, INSPECTOR_IFACE, 'ListFilesystems',
                          GLib.Variant('(a{sv})', (options or {},)), '(aa{sv})')
        return fs

    def list_filesystems_async(self, path):
        return PendingCall(self.connection, path, INSPECTOR_IFACE, 'ListFilesystems',
                           GLib.Variant('(a{sv})', ({},)), '(aa{sv})')

    def disk_usage(self, path, options=None):
        (usage,) = self.call(path, INSPECTOR_IFACE, 'DiskUsage',
                             GLib.Variant('(a{sv})', (options or {},)), '(aa{sv})')
        return usage

    # Domain and Volume appliances
    def start_appliance(self, path, options=None, iface=DOMAIN_IFACE):
        self.call(path, iface, 'StartAppliance', GLib.Variant('(a{sv})', (options or {},)))

    def stop_appliance(self, path, iface=DOMAIN_IFACE):
        self.call(path, iface, 'StopAppliance')

    def stop_appliances(self):
        """Stops every appliance the service runs (before stopping it, so
        that it exits promptly)."""
        for path, iface, ifaces in self.appliance_objects():
            if ifaces[iface].get('ApplianceState') in ('starting', 'running', 'failed'):
                self.stop_appliance(path, iface)


# --- Pipes, pumped by threads while a call runs ------------------------------------

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


def drain_after_reply(method, what, reader, failure):
    """After the reply of a call that wrote into reader's pipe: the pipe
    must reach end of file at once (the service let go of its end)."""
    reader.join(RELEASE_TIMEOUT)
    if reader.is_alive():
        reader.stop()
        raise AssertionError('%s %s: the pipe did not reach end of file within %.0f s '
                             'of the reply (%s): the service still holds its end'
                             % (method, what, RELEASE_TIMEOUT, failure or 'success'))
    assert reader.error is None, reader.error


def feed_after_reply(method, what, writer, failure):
    """After the reply of a call that read writer's pipe: what is left to
    write breaks the pipe at once (the service let go of the read end)."""
    writer.join(RELEASE_TIMEOUT)
    if writer.is_alive():
        writer.stop()
        raise AssertionError('%s %s: the writer was still blocked %.0f s after the '
                             'reply (%s)' % (method, what, RELEASE_TIMEOUT,
                                             failure or 'success'))
    assert writer.error is None, writer.error


# --- Files ---------------------------------------------------------------------------

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


def _to_dbus(variant):
    """A GLib.Variant option value as python3-dbus wants it."""
    import dbus
    kind = variant.get_type_string()
    value = variant.unpack()
    converters = {'b': dbus.Boolean, 'u': dbus.UInt32, 't': dbus.UInt64,
                  'i': dbus.Int32, 'x': dbus.Int64, 's': dbus.String,
                  'as': lambda v: dbus.Array(v, signature='s')}
    return converters[kind](value)


class Files(GuestFSClient):
    """The Files interface too: plain calls through GDBus, calls that pass
    fds through python3-dbus (on a connection of its own to address)."""

    def __init__(self, connection, address):
        import dbus.bus
        super().__init__(connection)
        self.fdbus = dbus.bus.BusConnection(address)

    def close(self):
        self.fdbus.close()

    def files_call(self, obj, method, signature, args, reply_type=None,
                   timeout=APPLIANCE_CALL_TIMEOUT):
        return self.call(obj, FILES_IFACE, method,
                         GLib.Variant(signature, args) if signature else None,
                         reply_type, timeout=timeout)

    def read_dir(self, obj, path, options=None):
        (entries,) = self.files_call(obj, 'ReadDir', '(sa{sv})', (path, options or {}),
                                     '(aa{sv})')
        return entries

    def stat(self, obj, path, options=None):
        (info,) = self.files_call(obj, 'Stat', '(sa{sv})', (path, options or {}), '(a{sv})')
        return info

    def read_file(self, obj, path, options=None):
        reply = self.call(obj, FILES_IFACE, 'ReadFile',
                          GLib.Variant('(sa{sv})', (path, options or {})), '(ay)',
                          unpack=False)
        return reply.get_child_value(0).get_data_as_bytes().get_data() or b''

    def write_file(self, obj, path, data, options=None):
        self.call(obj, FILES_IFACE, 'WriteFile', GLib.Variant.new_tuple(
            GLib.Variant('s', path),
            GLib.Variant.new_from_bytes(GLib.VariantType('ay'), GLib.Bytes.new(data), True),
            GLib.Variant('a{sv}', options or {})))

    def mkdir(self, obj, path, options=None):
        self.files_call(obj, 'Mkdir', '(sa{sv})', (path, options or {}))

    def remove(self, obj, path, options=None):
        self.files_call(obj, 'Remove', '(sa{sv})', (path, options or {}))

    def rename(self, obj, old, new, options=None):
        self.files_call(obj, 'Rename', '(ssa{sv})', (old, new, options or {}))

    def chmod(self, obj, path, mode, options=None):
        self.files_call(obj, 'Chmod', '(sua{sv})', (path, mode, options or {}))

    def chown(self, obj, path, uid, gid, options=None):
        self.files_call(obj, 'Chown', '(suua{sv})', (path, uid, gid, options or {}))

    def symlink(self, obj, target, linkpath, options=None):
        self.files_call(obj, 'Symlink', '(ssa{sv})', (target, linkpath, options or {}))

    def readlink(self, obj, path, options=None):
        (target,) = self.files_call(obj, 'Readlink', '(sa{sv})', (path, options or {}), '(s)')
        return target

    # methods that take an fd
    def fd_call(self, obj, method, path, fd, options=None, timeout=APPLIANCE_CALL_TIMEOUT):
        """Calls method(path, fd, options); fd stays the caller's (the
        message gets a duplicate, and so does the UnixFd, which is closed
        here once the call has returned)."""
        import dbus
        handle = dbus.types.UnixFd(fd)
        failure = None
        try:
            self.fdbus.call_blocking(
                BUS_NAME, obj, FILES_IFACE, method, 'sha{sv}',
                (path, handle, dbus.Dictionary({key: _to_dbus(value) for key, value
                                                in (options or {}).items()},
                                               signature='sv')),
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
        """The same through GDBus, with a raw handle index and fds, to send
        what python3-dbus would not: an index that names no fd."""
        call_with_fds(self.connection, obj, FILES_IFACE, method,
                      GLib.Variant('(sha{sv})', (path, handle, options or {})), fds)

    def _pipe_call(self, obj, method, path, options, theirs, pump, settle, role):
        """method(path, theirs) while pump (a PipeReader or PipeWriter on
        our end of the pipe) runs; then settle() checks that the service
        let go of the pipe.  Errors raise DBusError, with the pump as
        their attribute role."""
        pump.start()
        failure = None
        try:
            self.fd_call(obj, method, path, theirs, options)
        except DBusError as error:
            failure = error
        finally:
            os.close(theirs)
            settle(method, path, pump, failure)
        if failure is not None:
            setattr(failure, role, pump)
            raise failure
        return pump

    def transfer_out(self, obj, method, path, options=None, keep=True, close_after=None):
        """Download or TarOut into a pipe; returns the PipeReader (its
        data, size and digest).  Errors raise DBusError (with .reader)."""
        r, w = os.pipe()
        return self._pipe_call(obj, method, path, options, w,
                               PipeReader(r, keep=keep, close_after=close_after),
                               drain_after_reply, 'reader')

    def download(self, obj, path, options=None):
        return self.transfer_out(obj, 'Download', path, options).data()

    def tar_out(self, obj, path, options=None):
        return self.transfer_out(obj, 'TarOut', path, options).data()

    def transfer_in(self, obj, method, path, chunks, options=None, close_after=None):
        """Upload or TarIn from a pipe fed with chunks; returns the
        PipeWriter.  Errors raise DBusError (with .writer)."""
        r, w = os.pipe()
        return self._pipe_call(obj, method, path, options, r,
                               PipeWriter(w, chunks, close_after=close_after),
                               feed_after_reply, 'writer')

    def upload(self, obj, path, data, options=None):
        writer = self.transfer_in(obj, 'Upload', path, [data], options)
        assert writer.size == len(data) and not writer.broken
        return writer

    def tar_in(self, obj, path, data, options=None):
        writer = self.transfer_in(obj, 'TarIn', path, [data], options)
        assert writer.size == len(data) and not writer.broken
        return writer
