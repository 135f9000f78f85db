# guestfsctl (issue 12) against the real service on a private bus, the
# real libvirtd (qemu:///system) and a real TCG appliance: every
# subcommand, its --json output, its exit statuses, and data passed as
# the client's own stdin/stdout (pipes, files, a pty).
#
# One service and one domain serve the whole module (appliances take
# 15-40 s to boot), with a long idle timeout; the tests run in file order:
# reads first, then writes (which switch the appliance to read-write),
# then the volume, then the errors that need a running domain. Every
# libvirt object is named lgd-test-* and removed at the end.
#
# GUESTFSCTL (set by meson) is the built client; it gets --session and
# the private bus's address in DBUS_SESSION_BUS_ADDRESS.

import base64
import hashlib
import json
import os
import pty
import re
import select
import shutil
import subprocess
import tarfile
import threading
import io
import time
from types import SimpleNamespace

import libvirt
import pytest

from gi.repository import Gio, GLib

from conftest import (DOMAIN_IFACE, TOP_SOURCE_DIR, VOLUME_IFACE, Daemon, DBusError,
                      LibvirtObjects, PrivateBus, SYSTEM_URI, _running_daemons,
                      appliance_domains, ensure_libvirtd_running, unique_name,
                      wait_until)
from images import MIB, ImageSet, pseudo_random

# A command that may boot an appliance: under TCG on a loaded machine
# that can take minutes.
CLI_TIMEOUT = 600

EXIT = {'ok': 0, 'failed': 1, 'usage': 2, 'not-found': 3, 'not-authorized': 4,
        'domain-running': 5, 'in-use': 6, 'appliance-failed': 7,
        'invalid-argument': 8, 'too-large': 9, 'cancelled': 10,
        'not-supported': 11, 'unavailable': 12, 'timeout': 13}


def guestfsctl_binary():
    path = os.environ.get('GUESTFSCTL')
    if not path:
        pytest.fail('GUESTFSCTL is not set: point it at the built client, '
                    'e.g. GUESTFSCTL=build/client/guestfsctl', pytrace=False)
    return os.path.abspath(path)


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(4 * MIB), b''):
            digest.update(chunk)
    return digest.hexdigest()


class Cli:
    """Runs guestfsctl against the service on the private bus."""

    def __init__(self, address):
        self.env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=address)
        self.binary = guestfsctl_binary()

    def argv(self, *args):
        return [self.binary, '--session'] + [str(a) for a in args]

    def run(self, *args, input=b'', status=0, env=None, **kwargs):
        """The CompletedProcess (bytes); fails unless it exits with status."""
        kwargs.setdefault('stdout', subprocess.PIPE)
        result = subprocess.run(self.argv(*args), input=input, stderr=subprocess.PIPE,
                                env=dict(self.env, **(env or {})), timeout=CLI_TIMEOUT,
                                **kwargs)
        assert result.returncode == status, (
            'guestfsctl %s exited with %d, not %d; stderr:\n%s'
            % (' '.join(map(str, args)), result.returncode, status,
               result.stderr.decode(errors='replace')))
        return result

    def text(self, *args, **kwargs):
        return self.run(*args, **kwargs).stdout.decode()

    def json(self, *args, **kwargs):
        """The one JSON document a --json command prints."""
        out = self.run('--json', *args, **kwargs).stdout.decode()
        return json.loads(out)

    def shell(self, pipeline, status=0):
        """A shell pipeline with $G standing for guestfsctl --session."""
        result = subprocess.run(['bash', '-o', 'pipefail', '-c', pipeline],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=dict(self.env, G=' '.join(self.argv())),
                                timeout=CLI_TIMEOUT)
        assert result.returncode == status, (pipeline, result.returncode,
                                             result.stderr.decode(errors='replace'))
        return result


def stop_appliances(daemon):
    for path, props in daemon.client.objects_with(DOMAIN_IFACE).items():
        if props.get('ApplianceState') in ('starting', 'running'):
            daemon.client.connection.call_sync(
                'org.libvirt.GuestFS', path, DOMAIN_IFACE, 'StopAppliance', None, None,
                0, 600000, None)
    for path, props in daemon.client.objects_with(VOLUME_IFACE).items():
        if props.get('ApplianceState') in ('starting', 'running'):
            daemon.client.connection.call_sync(
                'org.libvirt.GuestFS', path, VOLUME_IFACE, 'StopAppliance', None, None,
                0, 600000, None)


@pytest.fixture(scope='module')
def env(private_bus):
    """A Debian look-alike domain (root image), a pool holding a copy of
    that image as a volume, a domain defined on the volume (started by the
    error tests), and the service for the whole module."""
    ensure_libvirtd_running()
    images = ImageSet.create()
    virt = None
    daemon = None
    try:
        e = SimpleNamespace(images=images)
        e.root = images.debian_root('cli-root.img', hostname='lgd-cli-host')
        virt = LibvirtObjects()
        e.virt = virt
        e.dom = unique_name('cli')
        e.dom_uuid = virt.define_domain(e.dom, disks=[(e.root.path, 'raw')]).UUIDString()
        pool_dir = images.path('pool')
        os.mkdir(pool_dir, 0o755)
        e.volume_image = images.copy(e.root.path, 'pool/cli-volume.img')
        e.pool = unique_name('cli-pool')
        virt.define_dir_pool(e.pool, pool_dir).create(0)
        e.vol = '%s/cli-volume.img' % e.pool
        e.user = unique_name('cli-user')
        virt.define_domain(e.user, disks=[(e.volume_image, 'raw')])

        daemon = Daemon(private_bus, [SYSTEM_URI],
                        ['--force-tcg', '--volume-rescan-interval', '1',
                         '--idle-timeout', '1800'])
        _running_daemons.append(daemon)
        e.daemon = daemon
        e.cli = Cli(private_bus.address)
        e.dom_path = daemon.client.lookup_domain(e.dom)

        def volume_path():
            try:
                return daemon.client.lookup_volume(e.volume_image)
            except DBusError:
                return None
        e.vol_path = wait_until(volume_path, 30, 'the volume object')
        yield e
    finally:
        errors = []
        if daemon is not None:
            _running_daemons.remove(daemon)
            try:
                if daemon.is_running():
                    stop_appliances(daemon)
            except Exception as error:
                errors.append('stopping appliances: %s' % error)
            try:
                daemon.stop()
            except AssertionError as error:
                errors.append(str(error))
        if virt is not None:
            virt.reconnect()
            for name in appliance_domains(virt.conn, [images.dir]):
                try:
                    virt.conn.lookupByName(name).destroy()
                except libvirt.libvirtError:
                    pass
            try:
                virt.cleanup()
            except AssertionError as error:
                errors.append(str(error))
        images.remove()
        assert not errors, '\n'.join(errors)


# --- Objects, inspection -------------------------------------------------------

def test_list(env):
    out = env.cli.text('list')
    lines = out.splitlines()
    assert lines[0].split() == ['TYPE', 'NAME', 'STATE', 'APPLIANCE', 'OS']
    assert any(line.split()[:4] == ['domain', env.dom, 'shut-off', 'stopped']
               for line in lines), out
    assert any(line.split()[:2] == ['volume', env.vol] for line in lines), out

    names = env.cli.text('list', '--names').splitlines()
    assert env.dom in names and env.vol in names

    doc = env.cli.json('list')
    assert set(doc) == {'domains', 'volumes'}
    (dom,) = [d for d in doc['domains'] if d['name'] == env.dom]
    assert dom == {'name': env.dom, 'uuid': env.dom_uuid, 'connection': SYSTEM_URI,
                   'active': False, 'persistent': True, 'appliance-state': 'stopped',
                   'object-path': env.dom_path, 'operating-systems': []}
    (vol,) = [v for v in doc['volumes'] if v['path'] == env.volume_image]
    assert vol['name'] == 'cli-volume.img' and vol['pool'] == env.pool
    assert vol['object-path'] == env.vol_path
    assert set(vol) == {'name', 'pool', 'key', 'path', 'format', 'capacity', 'allocation',
                        'connection', 'appliance-state', 'object-path',
                        'operating-systems'}


def read_pty(master, proc):
    """Everything written to a pty until the process exits."""
    data = b''
    deadline = time.monotonic() + CLI_TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            data += chunk
        elif proc.poll() is not None:
            break
    return data


def test_start_appliance(env):
    """On a terminal, the launch shows a line on stderr, erased at the end."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(env.cli.argv('start-appliance', env.dom),
                                stdout=subprocess.PIPE, stderr=slave, env=env.cli.env)
        os.close(slave)
        slave = None
        shown = read_pty(master, proc)
        assert proc.wait(CLI_TIMEOUT) == 0, shown
        assert proc.stdout.read() == b''
        proc.stdout.close()
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)
    assert b'launching the appliance' in shown, shown
    assert shown.endswith(b'\r\x1b[K'), shown
    assert env.daemon.client.get_property(env.dom_path, DOMAIN_IFACE,
                                          'ApplianceState') == 'running'


def test_inspect(env):
    out = env.cli.text('inspect', env.dom)
    assert out.startswith('/dev/sda:\n'), out
    assert 'hostname:' in out and 'lgd-cli-host' in out
    assert 'debian' in out

    doc = env.cli.json('inspect', env.dom_uuid)
    assert doc['name'] == env.dom_uuid and doc['object-path'] == env.dom_path
    (os_,) = doc['operating-systems']
    assert os_['hostname'] == 'lgd-cli-host' and os_['distro'] == 'debian'
    assert os_['major-version'] == 12 and os_['mountpoints'] == {'/': '/dev/sda'}

    # what inspection found is in the list now
    listed = [d for d in env.cli.json('list')['domains'] if d['name'] == env.dom]
    assert listed[0]['operating-systems'][0]['hostname'] == 'lgd-cli-host'
    (row,) = [line.split() for line in env.cli.text('list').splitlines()
              if line.split()[1] == env.dom]
    assert row[3] == 'running' and row[4:] == [os_['product-name']], row


def test_apps(env):
    out = env.cli.text('apps', env.dom)
    names = [line.split()[0] for line in out.splitlines()]
    assert {'lgd-alpha', 'lgd-beta', 'lgd-gamma'} <= set(names), out
    assert any(line.split()[:2] == ['lgd-beta', '2:4.5-6+deb12u1']
               for line in out.splitlines()), out
    doc = env.cli.json('apps', env.dom)
    assert doc['root'] == '/dev/sda'
    assert {a['name'] for a in doc['applications']} >= {'lgd-alpha', 'lgd-beta'}


def test_icon(env):
    png = env.cli.run('icon', env.dom).stdout
    assert png.startswith(b'\x89PNG\r\n\x1a\n')
    assert png in (env.root.icon, env.root.favicon)
    doc = env.cli.json('icon', env.dom)
    assert base64.b64decode(doc['png-base64']) == png


def test_filesystems_and_df(env):
    out = env.cli.text('filesystems', env.dom)
    assert any(line.split()[:2] == ['/dev/sda', 'ext4'] for line in out.splitlines()), out
    doc = env.cli.json('filesystems', env.dom)
    (fs,) = [f for f in doc['filesystems'] if f['device'] == '/dev/sda']
    assert fs['type'] == 'ext4' and fs['size'] == env.root.size

    out = env.cli.text('df', env.dom)
    assert out.splitlines()[0].split() == ['Filesystem', '1K-blocks', 'Used', 'Available',
                                           'Use%']
    assert out.splitlines()[1].startswith('%s:/dev/sda ' % env.dom), out
    assert 'MiB' in env.cli.text('df', '-h', env.dom)
    doc = env.cli.json('df', env.dom)
    (usage,) = doc['filesystems']
    assert usage['device'] == '/dev/sda' and 0 < usage['used'] < usage['size']


# --- Reading files ----------------------------------------------------------------

def test_cat(env):
    assert env.cli.text('cat', env.dom, '/etc/hostname') == 'lgd-cli-host\n'
    # several files, one after the other, by UUID
    assert env.cli.text('cat', env.dom_uuid, '/etc/hostname',
                        '/etc/debian_version') == 'lgd-cli-host\n12.5\n'


def test_cat_into_file_and_pipe(env, tmp_path):
    target = tmp_path / 'hostname'
    with open(target, 'wb') as f:
        env.cli.run('cat', env.dom, '/etc/hostname', stdout=f)
    assert target.read_bytes() == b'lgd-cli-host\n'
    result = env.cli.shell('$G cat %s /etc/hostname | tr a-z A-Z' % env.dom)
    assert result.stdout == b'LGD-CLI-HOST\n'
    # /dev/null is a character device, which the service does not take
    env.cli.run('cat', env.dom, '/etc/hostname', stdout=subprocess.DEVNULL)


def test_cat_on_pty(env):
    """A terminal cannot be passed to the service: the client relays."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(env.cli.argv('cat', env.dom, '/etc/hostname'),
                                stdout=slave, stderr=subprocess.PIPE, env=env.cli.env)
        os.close(slave)
        slave = None
        data = read_pty(master, proc)
        assert proc.wait(CLI_TIMEOUT) == 0, proc.stderr.read()
        proc.stderr.close()
        assert data.replace(b'\r\n', b'\n') == b'lgd-cli-host\n'
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)


def test_ls(env):
    names = env.cli.text('ls', env.dom, '/etc').split()
    assert {'hostname', 'os-release', 'debian_version', 'favicon.png'} <= set(names)

    long = env.cli.text('ls', '-l', env.dom, '/etc').splitlines()
    (hostname,) = [line for line in long if line.endswith(' hostname')]
    assert hostname.startswith('-rw-r--r-- '), hostname
    assert hostname.split()[3] == str(len('lgd-cli-host\n'))

    recursive = env.cli.text('ls', '-R', env.dom, '/usr')
    assert '/usr/share/pixmaps:\ndebian-logo.png' in recursive, recursive

    doc = env.cli.json('ls', '-R', env.dom, '/usr')
    assert doc['path'] == '/usr'
    paths = {e['path']: e for e in doc['entries']}
    logo = paths['/usr/share/pixmaps/debian-logo.png']
    assert logo['type'] == 'regular' and logo['size'] == len(env.root.icon)
    assert paths['/usr/share']['type'] == 'directory'


def test_stat(env):
    out = env.cli.text('stat', env.dom, '/etc/hostname')
    assert 'File: /etc/hostname' in out and 'Type: regular' in out
    assert 'Access: (0644/-rw-r--r--)' in out
    doc = env.cli.json('stat', env.dom, '/etc/hostname', '/etc')
    assert [f['path'] for f in doc['files']] == ['/etc/hostname', '/etc']
    assert doc['files'][0]['info']['size'] == len('lgd-cli-host\n')
    assert doc['files'][1]['info']['type'] == 'directory'


COMPLETION = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'client', 'guestfsctl.bash-completion')


def complete(env, *words):
    """What bash completion offers for the command line words (the last
    one being completed), with guestfsctl the client under test."""
    script = ('source %s\n'
              'guestfsctl() { %s "$@"; }\n'
              'COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n'
              '_guestfsctl\n'
              'printf "%%s\\n" "${COMPREPLY[@]}"\n' % (COMPLETION, env.cli.binary))
    result = subprocess.run(['bash', '-c', script, 'bash', 'guestfsctl'] + list(words),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env.cli.env, timeout=60)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.decode().splitlines() if line]


def test_bash_completion(env):
    assert complete(env, 'vol-') == ['vol-download', 'vol-upload']
    assert complete(env, 'jo') == ['jobs'] and complete(env, 'canc') == ['cancel']
    assert env.dom in complete(env, '--session', 'cat', 'lgd-test-cli-')
    assert env.vol in complete(env, '--session', 'vol-download', env.pool)
    # guest paths, the appliance being warm
    assert complete(env, '--session', 'cat', env.dom, '/etc/host') == ['/etc/hostname']
    assert '/usr/share/' in complete(env, '--session', 'ls', env.dom, '/usr/s')


def test_tar_out(env, tmp_path):
    result = env.cli.shell('$G tar-out %s /etc - | tar t' % env.dom)
    assert './hostname' in result.stdout.decode().split()
    archive = tmp_path / 'etc.tar.gz'
    env.cli.run('tar-out', '--gzip', '--exclude', 'favicon.png', env.dom, '/etc',
                archive)
    with tarfile.open(archive, 'r:gz') as tar:
        names = tar.getnames()
        assert './hostname' in names and './favicon.png' not in names
        assert tar.extractfile('./hostname').read() == b'lgd-cli-host\n'


def test_copy_out(env, tmp_path):
    env.cli.run('copy-out', env.dom, '/etc/hostname', '/usr/share', tmp_path)
    assert (tmp_path / 'hostname').read_bytes() == b'lgd-cli-host\n'
    assert (tmp_path / 'share' / 'pixmaps' / 'debian-logo.png').read_bytes() == \
        env.root.icon


def test_reader_gone(env):
    """A reader that goes away ends the transfer, quietly, with status
    'cancelled', as a tool killed by SIGPIPE would end."""
    result = env.cli.shell('$G tar-out %s / - | head -c 10 >/dev/null; '
                           'exit ${PIPESTATUS[0]}' % env.dom, status=EXIT['cancelled'])
    assert result.stderr == b''


# --- Writing files ----------------------------------------------------------------

def test_write_then_cat(env, tmp_path):
    data = pseudo_random(3 * MIB + 17, 12)
    # from a pipe; the switch to a read-write appliance (a launch) shows
    # nothing on a stderr that is not a terminal
    result = env.cli.run('write', env.dom, '/root/blob.bin', input=data)
    assert result.stderr == b''
    assert env.cli.run('cat', env.dom, '/root/blob.bin').stdout == data
    # from a regular file, with a mode
    source = tmp_path / 'passwd'
    source.write_bytes(b'root:x:0:0:root:/root:/bin/sh\n')
    with open(source, 'rb') as f:
        env.cli.run('write', '--mode', '0640', env.dom, '/etc/passwd', stdin=f, input=None)
    assert env.cli.text('cat', env.dom, '/etc/passwd') == 'root:x:0:0:root:/root:/bin/sh\n'
    info = env.cli.json('stat', env.dom, '/etc/passwd')['files'][0]['info']
    assert info['mode'] & 0o7777 == 0o640
    # the example: the archive of /etc lists the new passwd
    result = env.cli.shell('$G tar-out %s /etc - | tar t' % env.dom)
    assert './passwd' in result.stdout.decode().split()


def test_write_from_pty(env):
    """A terminal on stdin is relayed through a pipe too; ^D ends it."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(env.cli.argv('write', env.dom, '/root/typed.txt'),
                                stdin=slave, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env.cli.env)
        os.close(slave)
        slave = None
        os.write(master, b'typed on a terminal\n')
        time.sleep(0.5)
        os.write(master, b'\x04')
        out, err = proc.communicate(timeout=CLI_TIMEOUT)
        assert proc.returncode == 0, err
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)
    assert env.cli.text('cat', env.dom, '/root/typed.txt') == 'typed on a terminal\n'


def test_edit(env, tmp_path):
    env.cli.run('write', env.dom, '/root/notes.txt', input=b'one\n')
    editor = tmp_path / 'editor.sh'
    editor.write_text('#!/bin/sh\necho two >> "$1"\n')
    editor.chmod(0o755)
    env.cli.run('edit', env.dom, '/root/notes.txt', env={'EDITOR': str(editor), 'VISUAL': ''})
    assert env.cli.text('cat', env.dom, '/root/notes.txt') == 'one\ntwo\n'

    # no change, no write: the file keeps its modification time
    before = env.cli.json('stat', env.dom, '/root/notes.txt')['files'][0]['info']
    time.sleep(1.1)
    result = env.cli.run('edit', env.dom, '/root/notes.txt',
                         env={'EDITOR': 'true', 'VISUAL': ''})
    assert b'unchanged' in result.stderr
    after = env.cli.json('stat', env.dom, '/root/notes.txt')['files'][0]['info']
    assert after['mtime'] == before['mtime']

    # a failing editor writes nothing
    env.cli.run('edit', env.dom, '/root/notes.txt', env={'EDITOR': 'false', 'VISUAL': ''},
                status=EXIT['failed'])
    assert env.cli.text('cat', env.dom, '/root/notes.txt') == 'one\ntwo\n'


def test_copy_in_and_tar_in(env, tmp_path):
    (tmp_path / 'dir' / 'sub').mkdir(parents=True)
    (tmp_path / 'dir' / 'a.txt').write_bytes(b'alpha\n')
    (tmp_path / 'dir' / 'sub' / 'b.txt').write_bytes(b'beta\n')
    (tmp_path / 'file.txt').write_bytes(b'file\n')
    (tmp_path / 'file.txt').chmod(0o600)
    env.cli.run('mkdir', '-p', env.dom, '/srv/in')
    env.cli.run('copy-in', tmp_path / 'file.txt', tmp_path / 'dir', env.dom, '/srv/in')
    assert env.cli.text('cat', env.dom, '/srv/in/file.txt', '/srv/in/dir/sub/b.txt') == \
        'file\nbeta\n'
    info = env.cli.json('stat', env.dom, '/srv/in/file.txt')['files'][0]['info']
    assert info['mode'] & 0o777 == 0o600

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tar:
        member = tarfile.TarInfo('./from-tar.txt')
        member.size = 4
        tar.addfile(member, io.BytesIO(b'tar\n'))
    env.cli.run('tar-in', '-', env.dom, '/srv/in', input=buf.getvalue())
    assert env.cli.text('cat', env.dom, '/srv/in/from-tar.txt') == 'tar\n'


def test_file_operations(env):
    def stat(path):
        return env.cli.json('stat', env.dom, path)['files'][0]['info']

    env.cli.run('mkdir', env.dom, '/root/ops')
    env.cli.run('mkdir', env.dom, '/root/ops', status=EXIT['invalid-argument'])  # exists
    env.cli.run('mkdir', '-p', env.dom, '/root/ops/a/b')
    env.cli.run('write', env.dom, '/root/ops/f', input=b'x')
    env.cli.run('mv', env.dom, '/root/ops/f', '/root/ops/g')
    env.cli.run('chmod', env.dom, '0600', '/root/ops/g')
    env.cli.run('chown', env.dom, '1000:1001', '/root/ops/g')
    env.cli.run('ln', '-s', env.dom, 'g', '/root/ops/link')
    info = stat('/root/ops/g')
    assert (info['mode'] & 0o7777, info['uid'], info['gid']) == (0o600, 1000, 1001)
    assert stat('/root/ops/link')['link-target'] == 'g'
    assert 'link -> g' in env.cli.text('ls', '-l', env.dom, '/root/ops')
    env.cli.run('rm', env.dom, '/root/ops/a', status=EXIT['invalid-argument'])  # not empty
    env.cli.run('rm', '-r', env.dom, '/root/ops/a')
    env.cli.run('rm', env.dom, '/root/ops/link', '/root/ops/g')
    assert env.cli.json('ls', env.dom, '/root/ops')['entries'] == []
    # usage errors are the client's own
    env.cli.run('chmod', env.dom, '999', '/root/ops', status=EXIT['usage'])
    env.cli.run('chown', env.dom, 'root', '/root/ops', status=EXIT['usage'])
    env.cli.run('ln', env.dom, 'a', '/root/ops/b', status=EXIT['usage'])


# --- Volumes --------------------------------------------------------------------

def test_vol_download(env, tmp_path):
    expected = sha256_file(env.volume_image)
    result = env.cli.shell('$G vol-download %s - | sha256sum' % env.vol)
    assert result.stdout.split()[0].decode() == expected
    # to a file, by path: sparse where the volume has holes
    target = tmp_path / 'copy.img'
    env.cli.run('vol-download', env.volume_image, target)
    assert sha256_file(target) == expected
    assert os.stat(target).st_blocks * 512 < os.path.getsize(target) // 2
    # a range
    part = env.cli.run('vol-download', '--offset', 1024, '--length', 512, env.vol, '-').stdout
    with open(env.volume_image, 'rb') as f:
        f.seek(1024)
        assert part == f.read(512)


def test_vol_upload(env, tmp_path):
    original = tmp_path / 'original.img'
    shutil.copy(env.volume_image, original)
    changed = bytearray(original.read_bytes())
    changed[4096:4096 + 11] = b'hello world'
    new = tmp_path / 'new.img'
    new.write_bytes(bytes(changed))
    subprocess.run(['fallocate', '--dig-holes', str(new)], check=True)
    # from a file with holes
    env.cli.run('vol-upload', new, env.vol)
    assert sha256_file(env.volume_image) == sha256_file(new)
    # from a pipe
    env.cli.shell('cat %s | $G vol-upload - %s' % (original, env.vol))
    assert sha256_file(env.volume_image) == sha256_file(original)


def test_inspect_several(env):
    """inspect of several domains is one InspectDomains call; on a
    terminal its job (domains done of all) shows on stderr."""
    second = unique_name('cli-second')
    image = env.images.copy(env.root.path, 'cli-second.img')
    env.virt.define_domain(second, disks=[(image, 'raw')])
    wait_until(lambda: second in env.cli.text('list', '--names').split(), 30,
               'the second domain')
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(env.cli.argv('inspect', env.dom, second),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=slave, env=env.cli.env)
        os.close(slave)
        slave = None
        shown = read_pty(master, proc)
        out = proc.stdout.read().decode()
        proc.stdout.close()
        assert proc.wait(CLI_TIMEOUT) == 0, shown
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)
    assert out.startswith('%s:\n/dev/sda:\n' % env.dom), out
    assert '\n%s:\n/dev/sda:\n' % second in out, out
    assert out.count('lgd-cli-host') == 2, out
    assert b'guestfsctl: inspecting' in shown, shown
    assert shown.endswith(b'\r\x1b[K'), shown

    doc = env.cli.json('inspect', second, env.dom)
    assert [d['name'] for d in doc['domains']] == [second, env.dom]
    for d in doc['domains']:
        assert set(d) == {'name', 'object-path', 'cached', 'operating-systems'}, d
        assert d['operating-systems'][0]['hostname'] == 'lgd-cli-host'
    # a domain that is not there is the client's NotFound, before any call
    env.cli.run('inspect', env.dom, 'no-such-domain', status=EXIT['not-found'])


# --- Jobs: progress, jobs, cancel ----------------------------------------------

JOB_KEYS = {'object-path', 'number', 'job-id', 'operation', 'objects', 'uid', 'progress',
            'bytes-done', 'bytes-total', 'rate', 'expected-end-time', 'cancelable'}


def run_with_pty_stderr(env, *args, stdout):
    """Runs guestfsctl with stderr on a pty; what it showed there."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(env.cli.argv(*args), stdin=subprocess.DEVNULL, stdout=stdout,
                                stderr=slave, env=env.cli.env)
        os.close(slave)
        slave = None
        shown = read_pty(master, proc)
        assert proc.wait(CLI_TIMEOUT) == 0, shown
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)
    return shown


def test_progress_on_pty(env, tmp_path):
    """With stderr on a terminal, a transfer shows its Job's progress
    (percentage, bytes), erased at the end; the data is intact."""
    target = tmp_path / 'vol.img'
    with open(target, 'wb') as out:
        shown = run_with_pty_stderr(env, 'vol-download', env.vol, '-', stdout=out)
    assert sha256_file(target) == sha256_file(env.volume_image)
    text = shown.decode(errors='replace')
    assert re.search(r'guestfsctl: downloading the volume \d+% [\d.]+ [KMG]?i?B of '
                     r'64\.0 MiB', text), text
    assert shown.endswith(b'\r\x1b[K'), shown
    # nothing but progress lines and their erasure
    for line in text.split('\r\x1b[K'):
        assert line == '' or line.startswith('guestfsctl: '), text

    # a guest file through the appliance (Files.Download's job)
    data = pseudo_random(3 * MIB + 17, 12)  # test_write_then_cat's
    target = tmp_path / 'blob.bin'
    with open(target, 'wb') as out:
        shown = run_with_pty_stderr(env, 'cat', env.dom, '/root/blob.bin', stdout=out)
    assert target.read_bytes() == data
    text = shown.decode(errors='replace')
    assert 'guestfsctl: downloading' in text, text
    assert shown.endswith(b'\r\x1b[K'), shown

    # --quiet: nothing, even on a terminal
    with open(target, 'wb') as out:
        shown = run_with_pty_stderr(env, 'cat', '--quiet', env.dom, '/root/blob.bin',
                                    stdout=out)
    assert shown == b'', shown
    assert target.read_bytes() == data


def test_no_progress_on_pipe(env, tmp_path):
    target = tmp_path / 'vol.img'
    with open(target, 'wb') as out:
        result = env.cli.run('vol-download', env.vol, '-', stdout=out)
    assert result.stderr == b''
    assert sha256_file(target) == sha256_file(env.volume_image)


class SlowReader(threading.Thread):
    """Reads a pipe 64 KiB every 0.1 s (640 KiB/s) until its end."""

    def __init__(self, f):
        super().__init__(daemon=True)
        self.f = f
        self.size = 0

    def run(self):
        fd = self.f.fileno()
        while True:
            data = os.read(fd, 64 * 1024)
            if not data:
                return
            self.size += len(data)
            time.sleep(0.1)


@pytest.mark.parametrize('name_by', ['number', 'job-id'])
def test_jobs_and_cancel(env, name_by):
    """jobs --json lists a slow transfer's job; cancel N (or its job-id)
    ends it: the transferring guestfsctl exits with Cancelled and the job
    is gone."""
    assert env.cli.json('jobs') == {'jobs': []}
    proc = subprocess.Popen(env.cli.argv('vol-download', env.vol, '-'),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env.cli.env)
    reader = SlowReader(proc.stdout)
    reader.start()
    try:
        prefix = 'guestfsctl-%d-' % proc.pid

        def our_job():
            jobs = env.cli.json('jobs')['jobs']
            ours = [j for j in jobs if j['job-id'].startswith(prefix)]
            return ours[0] if ours else None

        job = wait_until(our_job, 60, 'the vol-download job in jobs --json')
        assert set(job) == JOB_KEYS, job
        assert job['operation'] == 'volume-download'
        assert job['objects'] == [env.vol_path]
        assert job['uid'] == os.getuid()
        assert job['object-path'] == '/org/libvirt/GuestFS/jobs/%d' % job['number']
        assert job['cancelable'] is True
        # the total is known once the stream is open; then it moves
        size = os.path.getsize(env.volume_image)
        job = wait_until(lambda: (lambda j: j if j and j['bytes-total'] == size else None)(
            our_job()), 30, 'the job to know its total')
        assert 0 <= job['progress'] < 1, job
        wait_until(lambda: (our_job() or {}).get('bytes-done', 0) > job['bytes-done'], 30,
                   'the job to move data')
        # the text listing has it too
        out = env.cli.text('jobs')
        assert out.splitlines()[0].split()[:3] == ['JOB', 'OPERATION', 'PROGRESS'], out
        assert any(line.split()[:2] == [job['object-path'], 'volume-download']
                   for line in out.splitlines()[1:]), out

        started = time.monotonic()
        result = env.cli.run('cancel', job[name_by])
        # cancel returns once the job has ended: at once, without a note
        # that it gave up waiting
        assert (result.stdout, result.stderr) == (b'', b'')
        assert time.monotonic() - started < 30
        assert our_job() is None
        assert proc.wait(60) == EXIT['cancelled']
        err = proc.stderr.read().decode()
        assert 'ancel' in err, err
        reader.join(30)
        assert 0 < reader.size < os.path.getsize(env.volume_image), reader.size
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert [j for j in env.cli.json('jobs')['jobs']
            if j['object-path'] == job['object-path']] == []


def test_cancel_missing_job(env):
    for name in ('999999', '/org/libvirt/GuestFS/jobs/999999', 'no-such-job-id'):
        result = env.cli.run('cancel', name, status=EXIT['not-found'])
        assert b'No job' in result.stderr and b'guestfsctl jobs' in result.stderr, \
            result.stderr
    env.cli.run('cancel', status=EXIT['usage'])
    env.cli.run('jobs', 'extra', status=EXIT['usage'])


# --- Live, errors ---------------------------------------------------------------

def test_monitor(env):
    proc = subprocess.Popen(env.cli.argv('--json', 'monitor'), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env.cli.env)
    try:
        lines = []

        def read_until(predicate, timeout=60):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                ready, _, _ = select.select([proc.stdout], [], [], 0.5)
                if ready:
                    line = proc.stdout.readline()
                    assert line, 'monitor ended'
                    lines.append(json.loads(line))
                    if predicate(lines[-1]):
                        return lines[-1]
            raise AssertionError('monitor printed no such line: %r' % lines)

        read_until(lambda doc: doc['event'] == 'service')
        name = unique_name('cli-mon')
        env.virt.define_domain(name)
        added = read_until(lambda doc: doc['event'] == 'added'
                           and doc['interfaces'].get(DOMAIN_IFACE, {}).get('Name') == name)
        env.virt.conn.lookupByName(name).undefine()
        read_until(lambda doc: doc['event'] == 'removed'
                   and doc['object-path'] == added['object-path']
                   and DOMAIN_IFACE in doc['interfaces'])
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        proc.stdout.close()
        proc.stderr.close()


def test_exit_statuses(env, tmp_path):
    cli = env.cli
    cli.run('no-such-command', status=EXIT['usage'])
    cli.run('cat', env.dom, status=EXIT['usage'])
    cli.run('ls', '--no-such-option', env.dom, '/', status=EXIT['usage'])
    result = cli.run('cat', 'no-such-domain', '/etc/hostname', status=EXIT['not-found'])
    assert b'guestfsctl list' in result.stderr
    cli.run('cat', env.dom, '/etc/no-such-file', status=EXIT['not-found'])
    cli.run('vol-download', env.dom, '-', status=EXIT['not-found'])  # not a volume
    cli.run('vol-download', '%s/no-such-volume' % env.pool, '-', status=EXIT['not-found'])
    cli.run('cat', env.dom, 'relative/path', status=EXIT['invalid-argument'])
    cli.run('ls', env.dom, '/etc/hostname', status=EXIT['invalid-argument'])  # a file

    # no service on the bus
    bus = PrivateBus()
    try:
        result = subprocess.run([cli.binary, '--session', 'list'], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE,
                                env=dict(os.environ, DBUS_SESSION_BUS_ADDRESS=bus.address))
        assert result.returncode == EXIT['unavailable'], result.stderr
        assert b'running' in result.stderr
    finally:
        bus.stop()

    # a running domain is never written, and its volume is in use
    dom = env.virt.conn.lookupByName(env.user)
    dom.create()
    try:
        wait_until(lambda: env.daemon.client.get_property(
            env.daemon.client.lookup_domain(env.user), DOMAIN_IFACE, 'Active'), 30,
            'the domain to run')
        result = cli.run('write', env.user, '/x', input=b'x', status=EXIT['domain-running'])
        assert b'shut the domain down' in result.stderr
        result = cli.run('vol-upload', env.volume_image, env.vol, status=EXIT['in-use'])
    finally:
        dom.destroy()


# --- polkit's refusal, from a stand-in service ----------------------------------

def test_not_authorized_names_the_action():
    """A refused call exits with 4 and names the polkit action to grant.
    The real refusal needs polkit on a system bus (test_files_polkit does
    that for the API); here a stand-in answers on a private bus with the
    service's own interfaces, refusing every call but the look-up."""
    bus = PrivateBus()
    conn = Gio.DBusConnection.new_for_address_sync(
        bus.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
    dom = '/org/libvirt/GuestFS/qemu_system/domain/x'

    def on_call(connection, sender, path, iface, method, params, invocation):
        if method == 'LookupDomain':
            invocation.return_value(GLib.Variant('(o)', (dom,)))
        else:
            invocation.return_dbus_error('org.libvirt.GuestFS.Error.NotAuthorized',
                                         'Not authorized')

    ids = []
    for name, path in (('Manager', '/org/libvirt/GuestFS/Manager'), ('Files', dom),
                       ('Inspector', dom), ('Domain', dom)):
        with open(os.path.join(TOP_SOURCE_DIR, 'introspection',
                               'org.libvirt.GuestFS.%s.xml' % name)) as f:
            info = Gio.DBusNodeInfo.new_for_xml(f.read()).interfaces[0]
        ids.append(conn.register_object(path, info, on_call, None, None))
    conn.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus',
                   'RequestName', GLib.Variant('(su)', ('org.libvirt.GuestFS', 0)),
                   None, 0, 5000, None)
    cli = Cli(bus.address)
    try:
        for args, action in ((['cat', 'dom', '/etc/hostname'], 'read'),
                             (['write', 'dom', '/x'], 'write'),
                             (['inspect', 'dom'], 'inspect'),
                             (['stop-appliance', 'dom'], 'manage')):
            proc = subprocess.Popen(cli.argv(*args), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=cli.env)
            wait_until(lambda: proc.poll() is not None, 60, 'guestfsctl to exit')
            err = proc.stderr.read().decode()
            proc.stdout.close()
            proc.stderr.close()
            assert proc.returncode == EXIT['not-authorized'], (args, err)
            assert 'org.libvirt.guestfs.' + action in err, (args, err)
    finally:
        for reg in ids:
            conn.unregister_object(reg)
        conn.close_sync(None)
        bus.stop()
