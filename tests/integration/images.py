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
