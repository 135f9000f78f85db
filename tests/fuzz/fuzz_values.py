# Values for the fuzzer: any D-Bus type from its signature, with the
# hostile cases a caller can send (boundary numbers, empty, huge and odd
# strings and paths, option dictionaries with unknown keys, wrong types and
# nested variants, huge arrays), and file descriptors of every kind a
# transfer can be given (bad indices, directories, sockets, pipes nobody
# reads or writes, /dev/zero).  Everything comes from one random.Random, so
# a seed gives the same sequence of values.

import io
import os
import socket
import tarfile

from gi.repository import Gio, GLib

# Things D-Bus itself refuses (embedded NUL, invalid UTF-8, malformed object
# paths) are not generated: the bus, not the service, would answer them.

HOSTILE_PATHS = [
    '', '/', '//', '///', '.', '..', '/.', '/..', '/../..', '/../etc/passwd',
    './etc', 'etc/hostname', '/etc/../etc/hostname', '/etc/./hostname',
    '/etc//hostname', '/etc/hostname/', '/etc/hostname/..', '/nonexistent',
    '/nonexistent/deeper/still', '/dev/sda', '/dev/sda1', '/proc/self/mem',
    '/sys', '\n', '/a\nb', '/tab\there', ' /', '/ ', '/*', '/etc/*', '-rf',
    '~root', '%s%s%n%n', '/%x%x', '/\u00e9t\u00e9', '/\u4e2d\u6587',
    '/\U0001f600', '/\u202e', '/' + 'x' * 255, '/' + 'x' * 256,
    '/' + 'x' * 4095, '/' + 'x' * 4096, '/'.join(['a'] * 2000),
    '/' + '../' * 1000, 'C:\\Windows', '\\\\server\\share', 'file:///etc',
]
# Paths that exist in the fuzz domain's image: calls with them get as far
# as the appliance.
PLAUSIBLE_PATHS = ['/', '/etc', '/etc/hostname', '/etc/os-release', '/etc/fstab',
                   '/bin/ls', '/tmp', '/root', '/home', '/var/lib/dpkg/status',
                   '/tmp/fuzz', '/tmp/fuzz/a', '/tmp/fuzz-link']
HOSTILE_STRINGS = HOSTILE_PATHS + [
    'test', 'lgd-test', 'TEST', '6695eb01-f6a4-8304-79aa-97f2502e193f',
    '6695EB01-F6A4-8304-79AA-97F2502E193F', '00000000-0000-0000-0000-000000000000',
    '/var/lib/libvirt/images', 'default-pool', '*', '?', '\'"', '<xml/>',
    '&amp;', ';rm -rf /', '$(id)', '`id`', 'qemu:///system', 'test:///default',
    '/dev/sda', 'ext4', 'read-only',
]
# Built once (they are big) and reused.
HUGE_STRING_SIZES = [1 << 16, 1 << 20, 4 << 20]

INT_LIMITS = {
    'y': (0, 255), 'n': (-(1 << 15), (1 << 15) - 1), 'q': (0, (1 << 16) - 1),
    'i': (-(1 << 31), (1 << 31) - 1), 'u': (0, (1 << 32) - 1),
    'x': (-(1 << 63), (1 << 63) - 1), 't': (0, (1 << 64) - 1),
    'h': (-(1 << 31), (1 << 31) - 1),
}
INTERESTING_INTS = [0, 1, 2, 7, 0o644, 0o755, 0o777, 0o7777, 0o10000, 0o170000,
                    511, 4096, 65535, 65536, (1 << 24) + 1, (16 << 20) + 1,
                    (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32, (1 << 63) - 1,
                    1 << 63, (1 << 64) - 1, -1, -2, -(1 << 31), -(1 << 63)]
# Types a wrong-typed option value or a nested variant is drawn from.
RANDOM_TYPES = ['b', 'y', 'n', 'q', 'i', 'u', 'x', 't', 'd', 's', 'o', 'g', 'as',
                'ay', 'a{sv}', 'v', '(ss)', 'ao', 'a{ss}', 'aa{sv}']

PATH_ARG_NAMES = {'path', 'from', 'to', 'dir', 'linkpath', 'target'}


def _complete_type_end(sig, start):
    """The index after the single complete type starting at sig[start]."""
    char = sig[start]
    if char == 'a':
        return _complete_type_end(sig, start + 1)
    if char in '({':
        depth, i = 0, start
        while True:
            if sig[i] in '({':
                depth += 1
            elif sig[i] in ')}':
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
    return start + 1


def split_signature(sig):
    """'sa{sv}u' -> ['s', 'a{sv}', 'u']."""
    types, i = [], 0
    while i < len(sig):
        end = _complete_type_end(sig, i)
        types.append(sig[i:end])
        i = end
    return types


def summarize(variant, limit=8):
    """A short, readable rendering of a GLib.Variant for reproducers: long
    strings and arrays are shown with their sizes."""
    kind = variant.get_type_string()
    if kind in ('s', 'o', 'g'):
        text = variant.get_string()
        if len(text) > 60:
            # Runs of one character read best as a product.
            if len(set(text)) == 1:
                return '%r*%d' % (text[0], len(text))
            return '%r...(%d chars)' % (text[:24], len(text))
        return repr(text)
    if kind == 'ay':
        return 'bytes(%d)' % variant.n_children()
    if kind == 'v':
        return '<%s>' % summarize(variant.get_variant(), limit)
    if kind.startswith('{'):
        return '%s: %s' % (summarize(variant.get_child_value(0), limit),
                           summarize(variant.get_child_value(1), limit))
    if kind.startswith('a'):
        n = variant.n_children()
        shown = [summarize(variant.get_child_value(i), limit) for i in range(min(n, limit))]
        more = ', ...(%d items)' % n if n > limit else ''
        brackets = '{}' if kind.startswith('a{') else '[]'
        return brackets[0] + ', '.join(shown) + more + brackets[1]
    if kind.startswith('('):
        return '(' + ', '.join(summarize(variant.get_child_value(i), limit)
                               for i in range(variant.n_children())) + ')'
    if kind == 'h':
        return 'handle %d' % variant.get_handle()
    return '%s %s' % (kind, variant.print_(False))


def byte_variant(data):
    """An 'ay' variant (GLib.Variant('ay', data) takes seconds per MiB)."""
    return GLib.Variant.new_from_bytes(GLib.VariantType('ay'), GLib.Bytes.new(data), True)


class Values:
    """Random values of any D-Bus type.  object_paths are paths worth
    naming (the service's own objects); plausible makes strings that name
    real guest files and well-formed options more likely."""

    def __init__(self, rng, api, object_paths, max_items=None):
        self.rng = rng
        self.api = api
        # A cap on the huge arrays and dictionaries, to fuzz on past a
        # known stall they cause.
        self.max_items = max_items
        self.object_paths = list(object_paths)
        self._cache = {}

    def capped(self, count):
        return count if self.max_items is None else min(count, self.max_items)

    # --- basic types -----------------------------------------------------------

    def integer(self, kind):
        low, high = INT_LIMITS[kind]
        roll = self.rng.random()
        if roll < 0.6:
            candidates = [v for v in INTERESTING_INTS if low <= v <= high]
            return self.rng.choice(candidates)
        if roll < 0.8:
            return self.rng.choice([low, high])
        return self.rng.randint(low, high)

    def huge_string(self, path_like):
        size = self.rng.choice(HUGE_STRING_SIZES)
        key = ('huge-string', size, path_like)
        if key not in self._cache:
            self._cache[key] = ('/' + 'a' * (size - 1)) if path_like else 'a' * size
        return self._cache[key]

    def string(self, role=None, plausible=False):
        roll = self.rng.random()
        if plausible and roll < 0.7:
            return self.rng.choice(PLAUSIBLE_PATHS)
        if roll < 0.03:
            return self.huge_string(role == 'path')
        if roll < 0.08:
            return '/' * self.rng.choice([2, 100, 5000])
        if roll < 0.15:
            length = self.rng.randint(1, 300)
            alphabet = 'abc/._-~ \u00e9\u4e2d\n'
            return ''.join(self.rng.choice(alphabet) for _ in range(length))
        if role == 'path' or roll < 0.6:
            return self.rng.choice(HOSTILE_PATHS + PLAUSIBLE_PATHS)
        return self.rng.choice(HOSTILE_STRINGS)

    def object_path(self):
        roll = self.rng.random()
        if roll < 0.5 and self.object_paths:
            return self.rng.choice(self.object_paths)
        return self.rng.choice([
            '/', '/org', '/org/libvirt/GuestFS', '/org/libvirt/GuestFS/Manager',
            '/org/libvirt/GuestFS/test_default/domain/nonexistent',
            '/org/libvirt/GuestFS/qemu_system/domain/00000000_2d0000',
            '/org/libvirt/GuestFS/qemu_system/volume/_2fetc_2fpasswd',
            '/org/libvirt/GuestFS/nope/domain/x', '/a/b/c',
            '/' + '/'.join(['a'] * 500), '/' + 'A' * 10000,
        ])

    # --- containers --------------------------------------------------------------

    def variant_of_random_type(self, depth):
        return self.value(self.rng.choice(RANDOM_TYPES), depth=depth + 1)

    def array(self, element, depth):
        roll = self.rng.random()
        count = 0 if roll < 0.25 else self.rng.randint(1, 4) if roll < 0.9 else \
            self.rng.randint(5, 64)
        children = [self.value(element, depth=depth + 1) for _ in range(count)]
        return GLib.Variant.new_array(GLib.VariantType(element), children)

    def value(self, sig, role=None, plausible=False, depth=0):
        """A GLib.Variant of type sig."""
        vt = GLib.VariantType(sig)
        if sig in INT_LIMITS and sig != 'h':
            return GLib.Variant(sig, self.integer(sig))
        if sig == 'h':
            return GLib.Variant('h', self.integer('h'))
        if sig == 'b':
            return GLib.Variant('b', self.rng.random() < 0.5)
        if sig == 'd':
            return GLib.Variant('d', self.rng.choice([0.0, -1.0, 1e308, float('inf'),
                                                      float('nan'), 0.5]))
        if sig == 's':
            return GLib.Variant('s', self.string(role, plausible))
        if sig == 'o':
            return GLib.Variant('o', self.object_path())
        if sig == 'g':
            return GLib.Variant('g', self.rng.choice(['', 's', 'a{sv}', 'aaaaai', '(((s)))']))
        if sig == 'v':
            if depth > 3:
                return GLib.Variant('v', GLib.Variant('s', 'deep'))
            return GLib.Variant('v', self.variant_of_random_type(depth))
        if sig == 'a{sv}':
            return self.options(plausible=plausible, depth=depth)
        if sig == 'ay':
            return self.byte_array()
        if sig == 'ao':
            return self.object_paths_array()
        if vt.is_array():
            return self.array(sig[1:], depth)
        if vt.is_dict_entry():
            key, value = split_signature(sig[1:-1])
            return GLib.Variant.new_dict_entry(self.value(key, depth=depth + 1),
                                               self.value(value, depth=depth + 1))
        if vt.is_tuple():
            return GLib.Variant.new_tuple(*[self.value(item, depth=depth + 1)
                                            for item in split_signature(sig[1:-1])])
        raise ValueError('no generator for type ' + sig)

    def byte_array(self):
        roll = self.rng.random()
        if roll < 0.3:
            return byte_variant(b'')
        if roll < 0.8:
            return byte_variant(self.rng.randbytes(self.rng.randint(1, 512)))
        size = self.rng.choice([4096, 1 << 20, (16 << 20) + 1])
        key = ('bytes', size)
        if key not in self._cache:
            self._cache[key] = byte_variant(b'\xa5' * size)
        return self._cache[key]

    def object_paths_array(self):
        roll = self.rng.random()
        if roll < 0.9:
            count = self.rng.choice([0, 1, 1, 2, 3, 8])
            paths = [self.object_path() for _ in range(count)]
            if paths and self.rng.random() < 0.3:
                paths += paths  # duplicates
            return GLib.Variant('ao', paths)
        # Many paths: what issue 11 says froze the main loop.
        count = self.capped(self.rng.choice([1000, 20000, 100000]))
        kind = self.rng.choice(['unknown', 'same'])
        key = ('ao', count, kind)
        if key not in self._cache:
            if kind == 'unknown':
                paths = ['/org/libvirt/GuestFS/test_default/domain/n%d' % i
                         for i in range(count)]
            else:
                paths = [self.object_paths[0] if self.object_paths else '/'] * count
            self._cache[key] = GLib.Variant('ao', paths)
        return self._cache[key]

    # --- option dictionaries -------------------------------------------------------

    def option_value(self, key, sig, plausible):
        if key in ('root', 'filesystem') and (plausible or self.rng.random() < 0.5):
            return GLib.Variant('s', self.rng.choice(['/dev/sda', '/dev/sda1', '/dev/vda',
                                                      '/dev/sdb', '']))
        if plausible and sig in ('t', 'u'):
            return GLib.Variant(sig, self.rng.choice([0, 1, 10, 0o644, 4096]))
        return self.value(sig, role='path' if key == 'path' else None)

    def wrong_value(self, sig, depth):
        roll = self.rng.random()
        if roll < 0.3:
            # The right type, inside one more variant.
            return GLib.Variant('v', self.value(sig, depth=depth + 1))
        other = self.rng.choice([t for t in RANDOM_TYPES if t != sig])
        return self.value(other, depth=depth + 1)

    def options(self, plausible=False, depth=0):
        keys = sorted(self.api.option_keys)
        roll = self.rng.random()
        if plausible or roll < 0.25:
            entries = []
            if plausible and self.rng.random() < 0.7:
                entries = []
            else:
                for key in self.rng.sample(keys, self.rng.randint(0, 2)):
                    sig = self.rng.choice(sorted(self.api.option_keys[key]))
                    entries.append((key, self.option_value(key, sig, plausible)))
        elif roll < 0.55:
            entries = []
            for key in self.rng.sample(keys, self.rng.randint(1, 3)):
                sig = self.rng.choice(sorted(self.api.option_keys[key]))
                entries.append((key, self.wrong_value(sig, depth)))
        elif roll < 0.75:
            entries = [(self.rng.choice(['', 'x', 'READ-ONLY', 'offset ', 'offset\n',
                                         'a' * 10000, 'auth.no_user_interaction',
                                         'root\u00e9', 'unknown-key']),
                        self.variant_of_random_type(depth))
                       for _ in range(self.rng.randint(1, 3))]
        elif roll < 0.85:
            # The same key twice, with different values.
            key = self.rng.choice(keys)
            sig = self.rng.choice(sorted(self.api.option_keys[key]))
            entries = [(key, self.value(sig, depth=depth + 1)),
                       (key, self.wrong_value(sig, depth))]
        elif roll < 0.95:
            entries = [(self.rng.choice(keys),
                        GLib.Variant('v', GLib.Variant('v', GLib.Variant('v', self.value('a{sv}', depth=4)))))]
        else:
            count = self.capped(self.rng.choice([1000, 50000]))
            cache_key = ('options', count)
            if cache_key not in self._cache:
                self._cache[cache_key] = GLib.Variant('a{sv}', {
                    'k%d' % i: GLib.Variant('u', i) for i in range(count)})
            return self._cache[cache_key]
        return GLib.Variant.new_array(
            GLib.VariantType('{sv}'),
            [GLib.Variant.new_dict_entry(GLib.Variant('s', key), GLib.Variant('v', value))
             for key, value in entries])

    def arguments(self, method, plausible=False):
        """The in-arguments of method (without 'h' ones, which the caller
        fills in) as a list of GLib.Variant."""
        args = []
        for name, sig in method.in_args:
            role = 'path' if name in PATH_ARG_NAMES else None
            if name == 'target' and method.name == 'Symlink':
                role = None
            if sig == 'h':
                args.append(None)
            else:
                args.append(self.value(sig, role=role, plausible=plausible))
        return args


# --- File descriptors ------------------------------------------------------------

class Fds:
    """The fds a call passes and the ends the fuzzer keeps: closed when
    the call ends (or when it is declared hung, so that the service can
    recover)."""

    def __init__(self, handle, fd_list, description):
        self.handle = handle
        self.fd_list = fd_list
        self.description = description
        # A transfer through these fds ends only when the fuzzer lets go.
        self.stalling = description in STALLING_KINDS
        self.kept = []        # our ends, closed at release()
        self.sources = []     # GLib sources draining our ends

    def keep(self, fd):
        self.kept.append(fd)
        return fd

    def drain(self, fd):
        """Reads and discards what the service writes to fd."""
        self.keep(fd)
        os.set_blocking(fd, False)

        def readable(_fd, _condition):
            try:
                return len(os.read(fd, 1 << 16)) > 0
            except BlockingIOError:
                return True
            except OSError:
                return False

        self.sources.append(GLib.unix_fd_add_full(
            GLib.PRIORITY_DEFAULT, fd,
            GLib.IOCondition.IN | GLib.IOCondition.HUP | GLib.IOCondition.ERR,
            readable))

    def release(self):
        context = GLib.MainContext.default()
        for source in self.sources:
            # Gone already when the service closed its end.
            if context.find_source_by_id(source) is not None:
                GLib.source_remove(source)
        self.sources = []
        for fd in self.kept:
            try:
                os.close(fd)
            except OSError:
                pass
        self.kept = []
        self.fd_list = None


def _small_tar(rng):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w') as tar:
        for name in rng.choice([['fuzz.txt'], ['../escape'], ['/abs'], ['dir/', 'dir/f'],
                                ['link']]):
            info = tarfile.TarInfo(name.rstrip('/'))
            if name.endswith('/'):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif name == 'link':
                info.type = tarfile.SYMTYPE
                info.linkname = '/etc/shadow'
                tar.addfile(info)
            else:
                data = b'fuzz\n'
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


SINK_KINDS = ['devnull', 'devfull', 'pipe-drained', 'pipe-never-read', 'pipe-closed',
              'file-rw', 'file-ro', 'dir', 'socket-drained', 'socket-closed',
              'wrong-end', 'eventfd']
SOURCE_KINDS = ['devzero', 'devnull', 'pipe-data', 'pipe-tar', 'pipe-never-written',
                'pipe-closed', 'file-ro', 'file-wo', 'dir', 'socket-closed',
                'socket-never-written', 'wrong-end', 'eventfd']
BAD_HANDLES = ['beyond-list', 'no-list', 'minus-one', 'int-max', 'int-min']
# Kinds with which a transfer can only end when the fuzzer lets go.
STALLING_KINDS = {'pipe-never-read', 'pipe-never-written', 'socket-never-written'}


def make_fds(rng, direction, scratch_dir):
    """An Fds for an 'h' argument; direction is 'sink' (the service writes)
    or 'source' (it reads)."""
    roll = rng.random()
    if roll < 0.2:
        return _bad_handle(rng)
    kind = rng.choice(SINK_KINDS if direction == 'sink' else SOURCE_KINDS)
    return make_fds_of_kind(rng, kind, direction, scratch_dir)


def _bad_handle(rng):
    kind = rng.choice(BAD_HANDLES)
    fd_list = Gio.UnixFDList()
    if kind == 'beyond-list':
        count = rng.randint(0, 2)
        for _ in range(count):
            fd = os.open('/dev/null', os.O_RDWR)
            fd_list.append(fd)
            os.close(fd)
        return Fds(count + rng.randint(0, 3), fd_list, '%d fds, handle beyond them' % count)
    if kind == 'no-list':
        return Fds(0, None, 'handle 0 without an fd list')
    handle = {'minus-one': -1, 'int-max': (1 << 31) - 1, 'int-min': -(1 << 31)}[kind]
    fd = os.open('/dev/null', os.O_RDWR)
    fd_list.append(fd)
    os.close(fd)
    return Fds(handle, fd_list, 'handle %d with 1 fd' % handle)


def make_fds_of_kind(rng, kind, direction, scratch_dir):
    fd_list = Gio.UnixFDList()
    fds = Fds(0, fd_list, kind)

    def send(fd, close=True):
        fd_list.append(fd)
        if close:
            os.close(fd)

    if kind == 'devnull':
        send(os.open('/dev/null', os.O_WRONLY if direction == 'sink' else os.O_RDONLY))
    elif kind == 'devzero':
        send(os.open('/dev/zero', os.O_RDONLY))
    elif kind == 'devfull':
        send(os.open('/dev/full', os.O_WRONLY))
    elif kind == 'dir':
        send(os.open(scratch_dir, os.O_RDONLY | os.O_DIRECTORY))
    elif kind == 'eventfd':
        send(os.eventfd(0))
    elif kind in ('file-rw', 'file-ro', 'file-wo'):
        path = os.path.join(scratch_dir, 'f%d' % rng.getrandbits(32))
        with open(path, 'wb') as f:
            f.write(rng.randbytes(rng.choice([0, 100, 4096])))
        flags = {'file-rw': os.O_RDWR, 'file-ro': os.O_RDONLY, 'file-wo': os.O_WRONLY}[kind]
        send(os.open(path, flags))
        os.unlink(path)
    elif kind.startswith('pipe'):
        read_end, write_end = os.pipe()
        ours, theirs = (read_end, write_end) if direction == 'sink' else (write_end, read_end)
        send(theirs)
        if kind == 'pipe-drained':
            fds.drain(ours)
        elif kind in ('pipe-never-read', 'pipe-never-written'):
            fds.keep(ours)
        elif kind == 'pipe-closed':
            os.close(ours)
        elif kind in ('pipe-data', 'pipe-tar'):
            data = _small_tar(rng) if kind == 'pipe-tar' else \
                rng.randbytes(rng.choice([0, 1, 1000, 60000]))
            os.write(ours, data[:60000])  # fits in the pipe: never blocks
            os.close(ours)
    elif kind.startswith('socket'):
        ours, theirs = socket.socketpair()
        send(theirs.detach())
        if kind == 'socket-drained':
            fds.drain(ours.detach())
        elif kind == 'socket-never-written':
            fds.keep(ours.detach())
        else:
            ours.close()
    elif kind == 'wrong-end':
        read_end, write_end = os.pipe()
        # The end the service cannot use, kept open on our side.
        send(read_end if direction == 'sink' else write_end)
        fds.keep(write_end if direction == 'sink' else read_end)
    else:
        raise ValueError(kind)
    return fds
