# Disk images for the inspection tests, built without an appliance (no
# root privileges beyond writing the images directory, no loop devices):
# filesystems come from mkfs with a populated source directory, partitions
# from sfdisk on the image file, and each partition's filesystem is made
# in a file of its own and copied into place.
#
#   images = ImageSet.create()      # /var/lib/libvirt/images/lgd-test-img-*/
#   root = images.debian_root()       # a raw image and what inspection must find
#   data = images.data_disk()         # two partitions (ext4 + vfat)
#   blank = images.blank_disk()
#   images.remove()

import os
import re
import secrets
import shutil
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass, field

IMAGES_DIR = '/var/lib/libvirt/images'
MIB = 1024 * 1024


def make_png(width, height, seed=0):
    """A valid PNG (8-bit RGB, no interlace) with a simple pattern, small
    enough for libguestfs's 2 KB limit on the Debian logo."""
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))

    rows = []
    for y in range(height):
        row = bytearray([0])  # filter type None
        for x in range(width):
            inside = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (width / 3) ** 2
            row += bytes((0xd7, 0x0a, 0x53)) if inside else bytes(
                (seed & 0xff, 0xff - (seed & 0xff), 0xff))
        rows.append(bytes(row))
    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header)
            + chunk(b'IDAT', zlib.compress(b''.join(rows), 9))
            + chunk(b'IEND', b''))


def _run(args, input=None):
    result = subprocess.run(args, input=input if input is not None else '',
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    if result.returncode != 0:
        raise AssertionError('%s failed (status %d):\n%s'
                             % (' '.join(args), result.returncode, result.stdout))
    return result.stdout


def _write(root, relpath, content, mode=0o644):
    path = os.path.join(root, relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb' if isinstance(content, bytes) else 'w') as f:
        f.write(content)
    os.chmod(path, mode)


def _copy_into(image, offset, source):
    """Copies the file source into image at offset, leaving holes where
    source has zero blocks (the images stay sparse)."""
    block = 64 * 1024
    with open(source, 'rb') as src, open(image, 'r+b') as dst:
        position = offset
        while True:
            data = src.read(block)
            if not data:
                break
            if data.count(0) != len(data):
                dst.seek(position)
                dst.write(data)
            position += len(data)


# --- What the images hold, for the assertions --------------------------------

@dataclass
class Package:
    name: str
    epoch: int
    version: str
    release: str
    arch: str
    summary: str
    description: str
    url: str = ''

    def dpkg_version(self):
        text = self.version
        if self.epoch:
            text = '%d:%s' % (self.epoch, text)
        if self.release:
            text += '-' + self.release
        return text


@dataclass
class DebianRoot:
    path: str
    size: int
    hostname: str
    major: int
    minor: int
    product_name: str
    arch: str
    packages: list
    icon: bytes          # /usr/share/pixmaps/debian-logo.png
    favicon: bytes       # /etc/favicon.png
    uuid: str
    label: str


@dataclass
class Partition:
    number: int
    start: int           # bytes
    size: int            # bytes
    fstype: str          # as libguestfs names it
    label: str
    uuid: str
    files: dict = field(default_factory=dict)


@dataclass
class DataDisk:
    path: str
    size: int
    partitions: list


@dataclass
class BlankDisk:
    path: str
    size: int


# --- The builder ---------------------------------------------------------------

class ImageSet:
    """A directory of test images under /var/lib/libvirt/images, readable
    by libvirt's qemu user."""

    def __init__(self, directory):
        self.dir = directory

    @classmethod
    def create(cls):
        directory = os.path.join(IMAGES_DIR, 'lgd-test-img-' + secrets.token_hex(4))
        os.makedirs(directory)
        os.chmod(directory, 0o755)
        return cls(directory)

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        assert not os.path.exists(self.dir), 'cannot remove ' + self.dir

    def path(self, name):
        return os.path.join(self.dir, name)

    def copy(self, source, name):
        """A sparse copy of an image, e.g. for a domain of its own."""
        target = self.path(name)
        _run(['cp', '--sparse=always', source, target])
        os.chmod(target, 0o644)
        return target

    def debian_root(self, name='debian-root.img', size=64 * MIB,
                    hostname='lgd-test-host'):
        """A raw image that is a whole-disk ext4 root filesystem of a
        Debian 12.5 look-alike (what libguestfs's inspection reads)."""
        packages = [
            Package('lgd-alpha', 0, '1.2.3', '1', 'amd64', 'First test package',
                    'Alpha does the first thing.\nIt has two lines.',
                    'https://alpha.example.org/'),
            Package('lgd-beta', 2, '4.5', '6+deb12u1', 'all', 'Second test package',
                    'Beta does the second thing.'),
            Package('lgd-gamma', 0, '0.9', '', 'amd64', 'Third test package',
                    'Gamma has no Debian revision.'),
        ]
        removed = Package('lgd-removed', 0, '7.0', '1', 'amd64', 'Removed package',
                          'Only its configuration files are left.')
        icon = make_png(32, 32, seed=1)
        favicon = make_png(16, 16, seed=200)
        assert len(icon) <= 2048 and len(favicon) <= 4 * 16 * 16

        def stanza(pkg, status):
            lines = ['Package: ' + pkg.name,
                     'Status: ' + status,
                     'Priority: optional',
                     'Section: misc',
                     'Installed-Size: 12',
                     'Maintainer: Nobody <nobody@example.org>',
                     'Architecture: ' + pkg.arch,
                     'Version: ' + pkg.dpkg_version()]
            if pkg.url:
                lines.append('Homepage: ' + pkg.url)
            lines.append('Description: ' + pkg.summary)
            lines += [' ' + line for line in pkg.description.split('\n')]
            return '\n'.join(lines) + '\n'

        # libguestfs counts an entry when the blank line after it is read,
        # so the file ends with one.
        status = '\n'.join([stanza(packages[0], 'install ok installed'),
                            stanza(removed, 'deinstall ok config-files'),
                            stanza(packages[1], 'install ok installed'),
                            stanza(packages[2], 'install ok installed')]) + '\n'

        fs_uuid = '6c6f6764-7465-4f73-9000-000000000001'
        label = 'lgd-root'
        image = self.path(name)
        # By UUID, as Debian's installer writes it.  (A /dev/sda entry is
        # resolved by libguestfs 1.48 from the appliance kernel's device
        # order, which varies from boot to boot when a domain has several
        # disks: the mount point then names the wrong disk.)
        with tempfile.TemporaryDirectory(prefix='lgd-test-root-') as tree:
            _write(tree, 'etc/os-release',
                   'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
                   'NAME="Debian GNU/Linux"\n'
                   'VERSION_ID="12"\n'
                   'VERSION="12 (bookworm)"\n'
                   'VERSION_CODENAME=bookworm\n'
                   'ID=debian\n'
                   'HOME_URL="https://www.debian.org/"\n')
            _write(tree, 'etc/debian_version', '12.5\n')
            _write(tree, 'etc/hostname', hostname + '\n')
            _write(tree, 'etc/fstab',
                   '# <file system> <mount point> <type> <options> <dump> <pass>\n'
                   'UUID=%s / ext4 errors=remount-ro 0 1\n' % fs_uuid)
            _write(tree, 'etc/favicon.png', favicon)
            _write(tree, 'var/lib/dpkg/status', status)
            _write(tree, 'usr/share/pixmaps/debian-logo.png', icon)
            # A real ELF binary: libguestfs reads the architecture from it.
            os.makedirs(os.path.join(tree, 'bin'))
            shutil.copy('/bin/ls', os.path.join(tree, 'bin', 'ls'))
            for directory in ('usr/bin', 'usr/lib', 'tmp', 'root', 'home'):
                os.makedirs(os.path.join(tree, directory), exist_ok=True)
            _run(['mkfs.ext4', '-q', '-F', '-L', label, '-U', fs_uuid,
                  '-d', tree, image, '%dk' % (size // 1024)])
        os.chmod(image, 0o644)
        assert os.path.getsize(image) == size
        machine = os.uname().machine
        return DebianRoot(path=image, size=size, hostname=hostname, major=12,
                          minor=5, product_name='Debian GNU/Linux 12 (bookworm)',
                          arch=machine, packages=packages, icon=icon,
                          favicon=favicon, uuid=fs_uuid, label=label)

    def data_disk(self, name='data.img', size=64 * MIB):
        """A raw image with an MBR partition table and two partitions: an
        ext4 filesystem labelled data1 with a few files, and a vfat one
        labelled DATA2."""
        partitions = [
            Partition(1, 1 * MIB, 24 * MIB, 'ext4', 'data1',
                      '6c6f6764-7465-4f73-9000-0000000000d1',
                      files={'hello.txt': 'hello from data1\n',
                             'big.bin': os.urandom(2 * MIB)}),
            Partition(2, 25 * MIB, 32 * MIB, 'vfat', 'DATA2', '1234-ABCD'),
        ]
        image = self.path(name)
        with open(image, 'wb') as f:
            f.truncate(size)
        table = 'label: dos\n' + ''.join(
            'start=%d, size=%d, type=%s\n'
            % (p.start // 512, p.size // 512, '83' if p.fstype == 'ext4' else 'e')
            for p in partitions)
        _run(['sfdisk', '--no-reread', '--no-tell-kernel', image], input=table)

        with tempfile.TemporaryDirectory(prefix='lgd-test-data-') as work:
            for part in partitions:
                fs_image = os.path.join(work, 'part%d.img' % part.number)
                if part.fstype == 'ext4':
                    tree = os.path.join(work, 'tree%d' % part.number)
                    for relpath, content in part.files.items():
                        _write(tree, relpath, content)
                    _run(['mkfs.ext4', '-q', '-F', '-L', part.label, '-U', part.uuid,
                          '-d', tree, fs_image, '%dk' % (part.size // 1024)])
                else:
                    _run(['mkfs.vfat', '-C', '-n', part.label,
                          '-i', part.uuid.replace('-', ''), fs_image,
                          str(part.size // 1024)])
                assert os.path.getsize(fs_image) == part.size, fs_image
                _copy_into(image, part.start, fs_image)
        os.chmod(image, 0o644)
        assert os.path.getsize(image) == size
        # What we meant is what sfdisk wrote.
        dump = _run(['sfdisk', '--dump', image])
        written = [(int(start) * 512, int(length) * 512) for start, length in
                   re.findall(r'start=\s*(\d+),\s*size=\s*(\d+)', dump)]
        assert written == [(p.start, p.size) for p in partitions], dump
        return DataDisk(path=image, size=size, partitions=partitions)

    def blank_disk(self, name='blank.img', size=32 * MIB):
        """A raw image of zeros: no partition table, no filesystem."""
        image = self.path(name)
        with open(image, 'wb') as f:
            f.truncate(size)
        os.chmod(image, 0o644)
        return BlankDisk(path=image, size=size)


if __name__ == '__main__':
    # Builds a set and describes it: a quick check of this module.
    images = ImageSet.create()
    try:
        root = images.debian_root()
        data = images.data_disk()
        blank = images.blank_disk()
        print(_run(['file', '-s', root.path, data.path, blank.path]))
        print(_run(['sfdisk', '--dump', data.path]))
        print(_run(['blkid', '-p', '-O', str(data.partitions[0].start), data.path]))
        print(_run(['blkid', '-p', '-O', str(data.partitions[1].start), data.path]))
        print(_run(['dumpe2fs', '-h', root.path]).splitlines()[:6])
    finally:
        images.remove()


# --- A root with known files, for the Files tests (issue 4) -------------------
#
# mkfs.ext4 -d copies each source file's type, mode, owner and times (and
# symbolic links as they are), so the tree is made here, as root, with
# exactly the attributes the tests then expect to read back.

import stat as _stat
import socket as _socket


@dataclass
class TreeEntry:
    """One file of a tree: path relative to the tree's top ('.' is the
    top itself), kind as the Files interface names it ('regular',
    'directory', 'symlink', 'fifo', 'char', 'block', 'socket')."""
    path: str
    kind: str
    mode: int            # permission bits only (07777)
    uid: int = 0
    gid: int = 0
    content: bytes = b''
    target: str = ''     # symbolic links
    mtime: int = 1600000000
    rdev: tuple = (0, 0)  # char and block devices

    @property
    def type_bits(self):
        return {'regular': _stat.S_IFREG, 'directory': _stat.S_IFDIR,
                'symlink': _stat.S_IFLNK, 'fifo': _stat.S_IFIFO,
                'char': _stat.S_IFCHR, 'block': _stat.S_IFBLK,
                'socket': _stat.S_IFSOCK}[self.kind]

    @property
    def st_mode(self):
        return self.type_bits | self.mode


def make_tree(top, entries):
    """Creates entries under top (which must exist), parents before
    children, and sets the modes, owners and times last (a directory's
    mtime changes while it gets children)."""
    for entry in entries:
        path = os.path.normpath(os.path.join(top, entry.path))
        if entry.kind == 'directory':
            os.makedirs(path, exist_ok=True)
        elif entry.kind == 'regular':
            with open(path, 'wb') as f:
                f.write(entry.content)
        elif entry.kind == 'symlink':
            os.symlink(entry.target, path)
        elif entry.kind == 'fifo':
            os.mkfifo(path)
        elif entry.kind in ('char', 'block'):
            os.mknod(path, entry.type_bits | 0o600, os.makedev(*entry.rdev))
        elif entry.kind == 'socket':
            sock = _socket.socket(_socket.AF_UNIX)
            try:
                sock.bind(path)
            finally:
                sock.close()
        else:
            raise ValueError(entry.kind)
    # Deepest first, so that setting a child's times does not touch its
    # parent's afterwards.
    for entry in sorted(entries, key=lambda e: -e.path.count('/')):
        path = os.path.normpath(os.path.join(top, entry.path))
        os.lchown(path, entry.uid, entry.gid)
        if entry.kind != 'symlink':
            os.chmod(path, entry.mode)  # after chown, which clears set-id bits
        os.utime(path, (entry.mtime, entry.mtime), follow_symlinks=False)


def pseudo_random(size, seed):
    """size bytes that repeat nowhere (so that a read at a wrong offset
    cannot match), the same for the same seed."""
    import hashlib
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(b'%d:%d' % (seed, counter)).digest()
        counter += 1
    return bytes(out[:size])


# Under /etc of files_root(), besides what the operating system needs.
def _files_etc_entries(hostname, fs_uuid):
    t = 1650000000
    return [
        TreeEntry('os-release', 'regular', 0o644, content=(
            b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
            b'VERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\n'
            b'ID=debian\n'), mtime=t + 1),
        TreeEntry('debian_version', 'regular', 0o644, content=b'12.5\n', mtime=t + 2),
        TreeEntry('hostname', 'regular', 0o644, content=hostname.encode() + b'\n',
                  mtime=t + 3),
        TreeEntry('fstab', 'regular', 0o644, content=(
            'UUID=%s / ext4 errors=remount-ro 0 1\n' % fs_uuid).encode(), mtime=t + 4),
        TreeEntry('shadow', 'regular', 0o640, 0, 42,
                  content=b'root:*:19000:0:99999:7:::\n', mtime=t + 5),
        TreeEntry('motd', 'regular', 0o664, 1000, 1000,
                  content=b'Welcome to the lgd test guest.\n' * 3, mtime=t + 6),
        TreeEntry('localtime', 'symlink', 0o777, target='/usr/share/zoneinfo/Etc/UTC',
                  mtime=t + 7),
        TreeEntry('motd.link', 'symlink', 0o777, 1000, 1000, target='motd', mtime=t + 8),
        TreeEntry('ssh', 'directory', 0o700, mtime=t + 9),
        TreeEntry('ssh/sshd_config', 'regular', 0o600, content=b'PermitRootLogin no\n',
                  mtime=t + 10),
        TreeEntry('default', 'directory', 0o2755, 0, 4, mtime=t + 11),
        TreeEntry('initctl', 'fifo', 0o600, mtime=t + 12),
    ]


def _files_tree_entries():
    """The tree under /srv/tree: the TarOut/TarIn tests' material."""
    rand = pseudo_random
    t = 1660000000
    return [
        TreeEntry('.', 'directory', 0o755, mtime=t),
        TreeEntry('a.txt', 'regular', 0o644, content=b'alpha\n', mtime=t + 1),
        TreeEntry('secret', 'regular', 0o600, 1000, 1000, content=rand(3000, 1),
                  mtime=t + 2),
        TreeEntry('script.sh', 'regular', 0o755, 1000, 1000,
                  content=b'#!/bin/sh\necho hello\n', mtime=t + 3),
        TreeEntry('suid', 'regular', 0o4755, content=b'not really a program\n',
                  mtime=t + 4),
        TreeEntry('empty-file', 'regular', 0o644, 1000, 1000, mtime=t + 5),
        TreeEntry('space name.txt', 'regular', 0o644, content=b'a name with a space\n',
                  mtime=t + 6),
        TreeEntry('\u00fcn\u00efcode.txt', 'regular', 0o644, 1000, 1001,
                  content='\u00fcn\u00efcode\n'.encode(), mtime=t + 7),
        TreeEntry('skip.log', 'regular', 0o644, content=b'left out by excludes\n',
                  mtime=t + 8),
        TreeEntry('shared', 'directory', 0o2775, 1000, 1001, mtime=t + 9),
        TreeEntry('shared/notes', 'regular', 0o664, 1000, 1001, content=b'notes\n',
                  mtime=t + 10),
        TreeEntry('sticky', 'directory', 0o1777, mtime=t + 11),
        TreeEntry('empty', 'directory', 0o755, mtime=t + 12),
        TreeEntry('sub', 'directory', 0o750, 1000, 1000, mtime=t + 13),
        TreeEntry('sub/nested.bin', 'regular', 0o640, 1000, 1001,
                  content=rand(200 * 1024, 2), mtime=t + 14),
        TreeEntry('sub/skip.log', 'regular', 0o644, content=b'left out too\n',
                  mtime=t + 15),
        TreeEntry('sub/link-up', 'symlink', 0o777, target='../a.txt', mtime=t + 16),
        TreeEntry('sub/deeper', 'directory', 0o700, mtime=t + 17),
        TreeEntry('sub/deeper/deep.txt', 'regular', 0o444, content=b'deep\n',
                  mtime=t + 18),
        TreeEntry('link-rel', 'symlink', 0o777, 1000, 1000, target='a.txt', mtime=t + 19),
        TreeEntry('link-abs', 'symlink', 0o777, target='/etc/hostname', mtime=t + 20),
        TreeEntry('link-dangling', 'symlink', 0o777, 1000, 1000, target='no/such/file',
                  mtime=t + 21),
        TreeEntry('link-dir', 'symlink', 0o777, target='sub', mtime=t + 22),
    ]


@dataclass
class FilesRoot:
    path: str
    size: int
    hostname: str
    uuid: str
    etc: list            # TreeEntry under /etc (paths relative to /etc)
    tree_dir: str        # '/srv/tree'
    tree: list           # TreeEntry under tree_dir
    special: list        # TreeEntry under /srv/special: fifo, devices, socket
    two_mib: bytes       # /srv/data/two-mib.bin


def files_root(images, name='files-root.img', size=400 * MIB,
               hostname='lgd-files-host'):
    """A raw, sparse image: a whole-disk ext4 root of a Debian 12.5
    look-alike (enough for inspection to find and mount it) with known
    files under /etc, a tree with various modes, owners, symbolic links
    and special files under /srv/tree, a 2 MiB file and room to spare."""
    fs_uuid = '6c6f6764-7465-4f73-9000-0000000000f1'
    etc = _files_etc_entries(hostname, fs_uuid)
    tree = _files_tree_entries()
    special = [TreeEntry('null', 'char', 0o666, rdev=(1, 3), mtime=1670000001),
               TreeEntry('loop0', 'block', 0o660, 0, 6, rdev=(7, 0), mtime=1670000002),
               TreeEntry('fifo', 'fifo', 0o620, 1000, 1000, mtime=1670000003),
               TreeEntry('socket', 'socket', 0o755, mtime=1670000004)]
    two_mib = pseudo_random(2 * MIB, 3)
    image = images.path(name)
    with tempfile.TemporaryDirectory(prefix='lgd-test-files-') as top:
        os.chmod(top, 0o755)
        os.makedirs(os.path.join(top, 'etc'))
        make_tree(os.path.join(top, 'etc'), etc)
        os.makedirs(os.path.join(top, 'bin'))
        shutil.copy('/bin/ls', os.path.join(top, 'bin', 'ls'))
        for directory in ('usr/bin', 'usr/lib', 'tmp', 'root', 'home', 'srv/data',
                          'srv/tree', 'var/lib/dpkg'):
            os.makedirs(os.path.join(top, directory), exist_ok=True)
        _write(top, 'var/lib/dpkg/status', '')
        _write(top, 'srv/data/two-mib.bin', two_mib)
        make_tree(os.path.join(top, 'srv', 'tree'), tree)
        os.makedirs(os.path.join(top, 'srv', 'special'))
        make_tree(os.path.join(top, 'srv', 'special'), special)
        os.chmod(os.path.join(top, 'etc'), 0o755)
        _run(['mkfs.ext4', '-q', '-F', '-L', 'lgd-files', '-U', fs_uuid,
              '-d', top, image, '%dk' % (size // 1024)])
    os.chmod(image, 0o644)
    assert os.path.getsize(image) == size
    return FilesRoot(path=image, size=size, hostname=hostname, uuid=fs_uuid, etc=etc,
                     tree_dir='/srv/tree', tree=tree, special=special, two_mib=two_mib)
