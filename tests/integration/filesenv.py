# What the test_files_* modules share: the module's service and the
# libvirt objects it works on (env_for), and the helpers to compare trees
# and directory entries with what images.py built.
#
# Appliances take 15-40 s to boot, so each module runs one service (with a
# long idle timeout) and its tests run in file order, reusing the appliance
# an earlier test warmed.  Every libvirt object is named lgd-test-* and
# removed at the end, even after a failure.

import hashlib
import io
import os
import tarfile
from types import SimpleNamespace

from client import Files, sha256_file, wait_until
from conftest import (SYSTEM_URI, Daemon, LibvirtObjects,
                      ensure_libvirtd_running, unique_name)
from images import ImageSet, files_root

# A client that goes away ends its transfer within this many seconds.
PROMPT_CANCEL = 30.0


def service_args(*extra):
    # KVM hangs on this machine: appliances run under TCG.
    return ['--force-tcg', '--volume-rescan-interval', '1'] + list(extra)


def start_service(bus, *extra):
    """The service on bus, and a Files client on it."""
    daemon = Daemon(bus, [SYSTEM_URI], service_args(*extra))
    return daemon, Files(bus.connection, bus.address)


def stop_service(daemon, api, errors):
    """Stops the appliances, then the service (which must exit with 0)."""
    daemon.shut_down(errors)
    api.close()


def env_for(private_bus, files=False, data=False, run=False, maxread=False, volume=False,
            idle_timeout=900, extra_args=()):
    """Images and domains in libvirt (only those asked for), and the
    service (one for the whole module, with the appliance idle_timeout and
    extra_args) on the private bus:
      files:   the files root (a Debian look-alike, 400 MiB sparse);
      data:    a data disk without an operating system (ext4 + vfat);
      run:     a small Debian root, started by the running-domain test;
      maxread: a copy of the data disk, for a service with a small
               --max-read-size;
      volume:  a copy of a small Debian root in a storage pool.
    A generator, for a module's fixture to yield from."""
    ensure_libvirtd_running()
    images = ImageSet.create()
    virt = None
    daemon = None
    api = None
    markers = [images.dir]
    try:
        env = SimpleNamespace(images=images, markers=markers)
        virt = LibvirtObjects()
        env.virt = virt
        env.conn = virt.conn

        def domain(what, disks):
            name = unique_name(what)
            dom = virt.define_domain(name, disks=disks)
            markers.append(dom.UUIDString())
            return name

        if files:
            env.root = files_root(images)
            env.files_name = domain('files', [(env.root.path, 'raw')])
        if data or maxread:
            env.data = images.data_disk()
        if data:
            env.data_name = domain('data', [(env.data.path, 'raw')])
        if maxread:
            env.maxread_image = images.copy(env.data.path, 'maxread-data.img')
            env.maxread_name = domain('maxread', [(env.maxread_image, 'raw')])
        if run or volume:
            env.run_root = images.debian_root('run-root.img')
        if run:
            env.run_name = domain('run', [(env.run_root.path, 'raw')])
        if volume:
            pool_dir = images.path('pool')
            os.mkdir(pool_dir, 0o755)
            env.volume_image = images.copy(env.run_root.path, 'pool/files-volume.img')
            env.pool_name = unique_name('files-pool')
            virt.define_dir_pool(env.pool_name, pool_dir).create(0)

        daemon, api = start_service(private_bus, '--idle-timeout', str(idle_timeout),
                                    *extra_args)
        env.daemon = daemon
        env.bus = private_bus
        env.api = api
        if files:
            env.files = api.lookup_domain(env.files_name)
        if data:
            env.datadom = api.lookup_domain(env.data_name)
        if run:
            env.run = api.lookup_domain(env.run_name)
        if volume:
            env.volume = wait_until(lambda: api.try_lookup_volume(env.volume_image), 30,
                                    'the volume object of ' + env.volume_image)
        yield env
    finally:
        errors = []
        if daemon is not None:
            stop_service(daemon, api, errors)
        if virt is not None:
            virt.cleanup_after_service(markers, errors)
        images.remove()
        assert not errors, '\n'.join(errors)


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


BAD_PATHS = [
    ('relative', 'etc/hostname'),
    ('empty', ''),
    ('dot-relative', './etc'),
    ('over-long path', '/' + '/'.join(['d' * 200] * 25)),   # 5025 bytes
    ('over-long name', '/etc/' + 'n' * 300),
]
