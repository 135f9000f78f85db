# The GNOME Boxes case (issue 10, item 6): an ordinary user (not root, not
# in group libvirt) with their own session bus and their own libvirt
# (qemu:///session), the service started by D-Bus activation through the
# INSTALLED session .service file, a domain the user defined with its image
# in their home.  The test makes all of it: the user (removed at the end),
# an install of the source tree under a temporary prefix, the image, the
# bus.  Then the same without XDG_RUNTIME_DIR, and other users refused.
#
# Everything the user does runs as that user (setpriv), including the
# client (session_client.py): a session bus lets only its owner in.
#
# Needs root (useradd), a real qemu, and 3 to 6 minutes: the first
# libguestfs run of a new user builds its supermin appliance in
# /var/tmp/.guestfs-UID, and each appliance boots under TCG.

import grp
import json
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time

import pytest
from gi.repository import Gio, GLib

import images
from client import BUS_NAME, DOMAIN_IFACE, ERROR_PREFIX, MANAGER_IFACE, MANAGER_PATH
from conftest import TOP_SOURCE_DIR, cache_file, domain_path

SESSION_URI = 'qemu:///session'
INSPECTOR_IFACE = 'org.libvirt.GuestFS.Inspector'
FILES_IFACE = 'org.libvirt.GuestFS.Files'
CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'session_client.py')
CLIENT_TIMEOUT = 900  # s: supermin build + TCG boot, with margin
STOP_TIMEOUT = 30.0
# What the user's session adds to the environment of the services its bus
# activates, as the README tells users to (the activation file has no
# --force-tcg, and dbus-daemon's config no element for the environment):
# TCG, since KVM hangs on this project's machines.  libguestfs reads it (the
# daemon parses libguestfs's environment).
ACTIVATION_ENV = {'LIBGUESTFS_BACKEND_SETTINGS': 'force_tcg'}

BUS_CONFIG = '''<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <!-- what a desktop session bus is (/usr/share/dbus-1/session.conf),
       with the test's install as the only service directory -->
  <type>session</type>
  <listen>unix:path=%(socket)s</listen>
  <auth>EXTERNAL</auth>
  <servicedir>%(servicedir)s</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    %(users)s
  </policy>
</busconfig>
'''

DOMAIN_XML = '''<domain type='qemu'>
  <name>%(name)s</name>
  <memory unit='MiB'>256</memory>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
%(disks)s  </devices>
</domain>
'''

DISK_XML = '''    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='%s'/>
      <target dev='vda' bus='virtio'/>
    </disk>
'''


def _run(args, **kwargs):
    result = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)
    assert result.returncode == 0, '%s failed (status %d):\n%s' % (
        ' '.join(args), result.returncode, result.stdout)
    return result.stdout


def _proc_uid(pid):
    try:
        return os.stat('/proc/%d' % pid).st_uid
    except OSError:
        return None


def _proc_zombie(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except (OSError, IndexError):
        return False


def _proc_environ(pid):
    try:
        with open('/proc/%d/environ' % pid, 'rb') as f:
            items = f.read().split(b'\0')
    except OSError:
        return {}
    return dict(item.decode(errors='replace').split('=', 1) for item in items if b'=' in item)


def _proc_exe(pid):
    try:
        return os.readlink('/proc/%d/exe' % pid)
    except OSError:
        return None


class UserAccount:
    """An ordinary user made for the test: its own group, a home, a
    runtime directory as pam_systemd would make it (/run/user/UID, 0700),
    and no group libvirt or kvm.  remove() ends its processes (all of them
    were started by the test) and deletes everything it had."""

    def __init__(self):
        self.name = 'lgdtest' + secrets.token_hex(4)
        _run(['useradd', '--create-home', '--user-group', '--shell', '/bin/sh', self.name])
        entry = pwd.getpwnam(self.name)
        self.uid, self.gid, self.home = entry.pw_uid, entry.pw_gid, entry.pw_dir
        # private, as adduser makes homes on Debian 12 (and Fedora): only
        # the user's own processes (their libvirt's qemu too) reach the image
        os.chmod(self.home, 0o700)
        self.runtime_dir = '/run/user/%d' % self.uid
        os.makedirs('/run/user', mode=0o755, exist_ok=True)
        os.mkdir(self.runtime_dir, 0o700)
        os.chown(self.runtime_dir, self.uid, self.gid)

    def env(self, runtime_dir=True, **extra):
        env = {'HOME': self.home, 'USER': self.name, 'LOGNAME': self.name,
               'PATH': '/usr/local/bin:/usr/bin:/bin', 'LANG': 'C.UTF-8'}
        if runtime_dir:
            env['XDG_RUNTIME_DIR'] = self.runtime_dir
        env.update(extra)
        return env

    def argv(self, args, env):
        """args run as the user, with exactly env."""
        return (['setpriv', '--reuid=%d' % self.uid, '--regid=%d' % self.gid,
                 '--init-groups', '--', 'env', '-i']
                + ['%s=%s' % item for item in sorted(env.items())] + list(args))

    def run(self, args, env, timeout=120):
        return _run(self.argv(args, env), timeout=timeout, cwd=self.home)

    def write_file(self, relpath, content, mode=0o644):
        path = os.path.join(self.home, relpath)
        with open(path, 'w') as f:
            f.write(content)
        os.chmod(path, mode)
        os.chown(path, self.uid, self.gid)
        return path

    def pids(self):
        """The user's live processes (a zombie is dead: only its parent,
        perhaps this test, can make it go)."""
        return [int(p) for p in os.listdir('/proc')
                if p.isdigit() and _proc_uid(int(p)) == self.uid and not _proc_zombie(int(p))]

    def end_processes(self):
        """SIGTERM to each of the user's processes, SIGKILL to what is left
        after a while: they are all the test's (the user is the test's)."""
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.2)
            if not self.pids():
                return
        raise AssertionError('processes of %s survive SIGKILL: %r' % (self.name, self.pids()))

    def remove(self):
        self.end_processes()
        _run(['userdel', '--remove', self.name])
        shutil.rmtree(self.runtime_dir, ignore_errors=True)
        # libguestfs's supermin appliance of this uid
        shutil.rmtree('/var/tmp/.guestfs-%d' % self.uid, ignore_errors=True)


class UserBus:
    """The user's session bus: dbus-daemon run as the user."""

    def __init__(self, user, socket, servicedir, env, all_users=False):
        """env is the bus's environment, the one activated services get,
        plus ACTIVATION_ENV."""
        self.user = user
        self.socket = socket
        config = os.path.join(user.home, 'bus-%s.conf' % secrets.token_hex(3))
        user.write_file(config, BUS_CONFIG % {
            'socket': socket, 'servicedir': servicedir,
            'users': '<allow user="*"/>' if all_users else ''})
        self.process = subprocess.Popen(
            user.argv(['dbus-daemon', '--config-file=' + config, '--nofork',
                       '--print-address=1'], env),
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=user.home)
        self.address = self.process.stdout.readline().strip()
        if not self.address:
            self.process.kill()
            raise AssertionError('dbus-daemon printed no address (exit %r)'
                                 % self.process.wait())
        user.run(['dbus-update-activation-environment']
                 + ['%s=%s' % item for item in ACTIVATION_ENV.items()],
                 dict(env, DBUS_SESSION_BUS_ADDRESS=self.address))

    def service_pids(self):
        """The services the bus activated: their environment names it."""
        return [pid for pid in self.user.pids()
                if _proc_environ(pid).get('DBUS_STARTER_ADDRESS') == self.address]

    def stop(self):
        # the service first (SIGTERM: it stops its appliances), then the bus
        for pid in self.service_pids():
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.service_pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stdout.close()


class Client:
    """session_client.py run as a user on a bus address."""

    def __init__(self, user, script, address, env=None):
        self.user = user
        self.script = script
        self.env = dict(env if env is not None else user.env(),
                        DBUS_SESSION_BUS_ADDRESS=address)

    def _run(self, args):
        out = self.user.run(['/usr/bin/python3', self.script] + args, self.env,
                            timeout=CLIENT_TIMEOUT)
        return json.loads(out.strip().splitlines()[-1])

    def objects(self):
        return self._run(['objects'])

    def call(self, path, iface, method, signature, *args):
        return self._run(['call', BUS_NAME, path, iface, method, signature, json.dumps(args)])

    def ok(self, path, iface, method, signature, *args):
        result = self.call(path, iface, method, signature, *args)
        assert 'reply' in result, '%s.%s failed: %r' % (iface, method, result)
        return result['reply']

    def managed_objects(self):
        result = self.objects()
        assert 'reply' in result, 'GetManagedObjects failed: %r' % result
        return result['reply'][0]


def install_prefix(directory):
    """The source tree, built and installed the way a distribution does
    it but under a prefix of the test's: the activation file's Exec= then
    names a binary that exists (with `meson install --destdir` it would
    name PREFIX/sbin under the real prefix, which is not there)."""
    meson = os.environ.get('LGD_MESON') or shutil.which('meson')
    assert meson, 'meson is not on PATH (set LGD_MESON)'
    prefix = os.path.join(directory, 'prefix')
    build = os.path.join(directory, 'build')
    _run([meson, 'setup', '--prefix', prefix, build, TOP_SOURCE_DIR], timeout=600)
    _run([meson, 'install', '-C', build, '--quiet'], timeout=600)
    shutil.rmtree(build)
    return prefix


def read_activation_file(path):
    entries = {}
    with open(path) as f:
        for line in f:
            if '=' in line and not line.startswith('#'):
                key, value = line.strip().split('=', 1)
                entries[key] = value
    return entries


class Setup:
    pass


@pytest.fixture(scope='module')
def session():
    if os.geteuid() != 0:
        pytest.fail('test_session_user.py creates users: run it as root', pytrace=False)
    s = Setup()
    s.cleanups = []
    try:
        _make_session(s)
        yield s
    finally:
        # each runs whatever an earlier one raised: the user must go
        errors = []
        for cleanup in reversed(s.cleanups):
            try:
                cleanup()
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        if errors:
            raise errors[0]


def _make_session(s):
    s.tmp = tempfile.mkdtemp(prefix='lgd-test-session-')
    s.cleanups.append(lambda: shutil.rmtree(s.tmp, ignore_errors=True))
    os.chmod(s.tmp, 0o755)  # the user runs the installed daemon from here
    s.prefix = install_prefix(s.tmp)
    s.servicedir = os.path.join(s.prefix, 'share', 'dbus-1', 'services')
    s.daemon = os.path.join(s.prefix, 'sbin', 'libvirt-guestfs-dbus')
    s.client_script = os.path.join(s.tmp, 'session_client.py')
    shutil.copy(CLIENT, s.client_script)
    os.chmod(s.client_script, 0o644)

    s.user = UserAccount()
    s.cleanups.append(s.user.remove)

    # The image, made as root (mkfs.ext4 -d keeps root's ownership inside
    # the filesystem, as a real root filesystem has it), then given to the
    # user: a Boxes user's disks are their own files in their home.
    image_dir = os.path.join(s.user.home, 'images')
    os.mkdir(image_dir)
    s.root = images.ImageSet(image_dir).debian_root()
    for path in (image_dir, s.root.path):
        os.chown(path, s.user.uid, s.user.gid)

    # The cache directory is set (under the home, not the default) to show
    # that the service follows XDG_CACHE_HOME.
    s.cache_home = os.path.join(s.user.home, 'xdg-cache')
    s.env = s.user.env(XDG_CACHE_HOME=s.cache_home)
    s.bus = UserBus(s.user, os.path.join(s.user.runtime_dir, 'bus'), s.servicedir, s.env)
    s.cleanups.append(s.bus.stop)
    s.client = Client(s.user, s.client_script, s.bus.address, s.env)

    # libvirt starts the user's session daemon itself (virsh autostarts it)
    s.domain_name = 'lgd-test-session-' + secrets.token_hex(3)
    xml = s.user.write_file('domain.xml', DOMAIN_XML % {
        'name': s.domain_name, 'disks': DISK_XML % s.root.path})
    s.user.run(['virsh', '-c', SESSION_URI, 'define', xml], s.env)
    s.uuid = s.user.run(['virsh', '-c', SESSION_URI, 'domuuid', s.domain_name],
                        s.env).strip()
    s.path = domain_path(SESSION_URI, s.uuid)


def test_user_is_ordinary(session):
    user = session.user
    groups = os.getgrouplist(user.name, user.gid)
    for name in ('libvirt', 'kvm', 'libvirt-qemu', 'root'):
        try:
            assert grp.getgrnam(name).gr_gid not in groups, name
        except KeyError:
            pass
    assert user.uid != 0


def test_activation_through_installed_file(session):
    """The first call activates the service from the installed .service
    file; it runs as the user, the installed binary, and publishes the
    user's domain of qemu:///session."""
    entries = read_activation_file(os.path.join(session.servicedir,
                                                'org.libvirt.GuestFS.service'))
    assert entries['Name'] == BUS_NAME
    assert entries['Exec'].split() == [session.daemon, '--session']
    assert 'User' not in entries

    objects = session.client.managed_objects()

    pids = session.bus.service_pids()
    assert len(pids) == 1, 'expected one activated service, found %r' % pids
    assert _proc_exe(pids[0]) == session.daemon
    assert _proc_uid(pids[0]) == session.user.uid
    environ = _proc_environ(pids[0])
    for key, value in ACTIVATION_ENV.items():
        assert environ.get(key) == value, key
    assert session.path in objects, sorted(objects)
    domain = objects[session.path][DOMAIN_IFACE]
    assert domain['Name'] == session.domain_name
    assert domain['Connection'] == SESSION_URI
    assert domain['Active'] is False
    assert [d['path'] for d in domain['Disks']] == [session.root.path]
    assert INSPECTOR_IFACE in objects[session.path]
    assert FILES_IFACE in objects[session.path]


def test_domain_defined_later_appears(session):
    """libvirt's events of the session daemon reach the service."""
    name = 'lgd-test-session-later-' + secrets.token_hex(3)
    xml = session.user.write_file('later.xml', DOMAIN_XML % {'name': name, 'disks': ''})
    session.user.run(['virsh', '-c', SESSION_URI, 'define', xml], session.env)
    uuid = session.user.run(['virsh', '-c', SESSION_URI, 'domuuid', name], session.env).strip()
    path = domain_path(SESSION_URI, uuid)
    try:
        deadline = time.monotonic() + 30
        while path not in session.client.managed_objects():
            assert time.monotonic() < deadline, 'the new domain was not published'
            time.sleep(0.5)
    finally:
        session.user.run(['virsh', '-c', SESSION_URI, 'undefine', name], session.env)
    deadline = time.monotonic() + 30
    while path in session.client.managed_objects():
        assert time.monotonic() < deadline, 'the undefined domain was not withdrawn'
        time.sleep(0.5)


def test_inspect_and_cache_in_xdg_cache_home(session):
    (systems,) = session.client.ok(session.path, INSPECTOR_IFACE, 'Inspect', '(a{sv})', {})
    assert len(systems) == 1, systems
    system = systems[0]
    assert system['distro'] == 'debian'
    assert system['hostname'] == session.root.hostname
    assert (system['major-version'], system['minor-version']) == (12, 5)

    cache_dir = os.path.join(session.cache_home, 'libvirt-guestfs-dbus')
    entry = cache_file(cache_dir, SESSION_URI, session.uuid)
    assert os.path.isfile(entry), os.listdir(cache_dir)
    for path, mode in ((cache_dir, 0o700), (entry, 0o600)):
        st = os.stat(path)
        assert (st.st_uid, st.st_gid) == (session.user.uid, session.user.gid), path
        assert stat.S_IMODE(st.st_mode) == mode, '%s: %o' % (path, st.st_mode)
    # runtime files go to XDG_RUNTIME_DIR, the cache to XDG_CACHE_HOME
    run_dir = os.path.join(session.user.runtime_dir, 'libvirt-guestfs-dbus')
    assert os.stat(run_dir).st_uid == session.user.uid
    assert not os.path.exists(os.path.join(session.user.home, '.cache',
                                           'libvirt-guestfs-dbus'))


def test_read_file(session):
    (data,) = session.client.ok(session.path, FILES_IFACE, 'ReadFile', '(sa{sv})',
                                '/etc/hostname', {})
    assert bytes(data) == (session.root.hostname + '\n').encode()


def test_write_file_on_shut_off_domain(session):
    content = b'written by %s through its session bus\n' % session.user.name.encode()
    session.client.ok(session.path, FILES_IFACE, 'WriteFile', '(saya{sv})',
                      '/root/from-session.txt', list(content), {})
    (data,) = session.client.ok(session.path, FILES_IFACE, 'ReadFile', '(sa{sv})',
                                '/root/from-session.txt', {})
    assert bytes(data) == content
    # on the disk itself, read without libguestfs
    out = subprocess.run(['debugfs', '-R', 'cat /root/from-session.txt', session.root.path],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    assert out.stdout == content
    st = os.stat(session.root.path)
    assert (st.st_uid, st.st_gid) == (session.user.uid, session.user.gid)


def test_batch_inspection_by_default(session):
    """InspectDomains with the session bus's default (batch inspection on:
    the user's domains may share an appliance) maps each system to its
    domain and caches what it found for each (every disk is the user's)."""
    root2 = images.ImageSet(os.path.join(session.user.home, 'images')).debian_root(
        name='second-root.img', hostname='lgd-test-second')
    os.chown(root2.path, session.user.uid, session.user.gid)
    name = 'lgd-test-session-second-' + secrets.token_hex(3)
    xml = session.user.write_file('second.xml', DOMAIN_XML % {
        'name': name, 'disks': DISK_XML % root2.path})
    virsh = ['virsh', '-c', SESSION_URI]
    session.user.run(virsh + ['define', xml], session.env)
    try:
        uuid = session.user.run(virsh + ['domuuid', name], session.env).strip()
        path = domain_path(SESSION_URI, uuid)
        deadline = time.monotonic() + 30
        while path not in session.client.managed_objects():
            assert time.monotonic() < deadline, 'the second domain was not published'
            time.sleep(0.5)
        (results,) = session.client.ok(MANAGER_PATH, MANAGER_IFACE, 'InspectDomains',
                                       '(aoa{sv})', [session.path, path],
                                       {'refresh': ['b', True]})
        hostnames = {p: [s['hostname'] for s in r.get('systems', [])]
                     for p, r in results.items()}
        assert hostnames == {session.path: [session.root.hostname],
                             path: ['lgd-test-second']}, results
        cache_dir = os.path.join(session.cache_home, 'libvirt-guestfs-dbus')
        for object_id in (session.uuid, uuid):
            assert os.path.isfile(cache_file(cache_dir, SESSION_URI, object_id)), object_id
    finally:
        session.user.run(virsh + ['undefine', name], session.env)


def test_other_users_are_refused(session):
    """The bus is the user's: another user cannot even connect, root
    neither (dbus-daemon's default: only the bus's own uid).  And should a
    bus let others in, the service itself refuses them."""
    other = UserAccount()
    try:
        client = Client(other, session.client_script, session.bus.address)
        result = client.objects()
        assert result.get('error', '').startswith('local:'), result
        with pytest.raises(GLib.Error):
            Gio.DBusConnection.new_for_address_sync(
                session.bus.address,
                Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
                | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)

        # A bus of the same user that admits everybody (a test-only
        # config), on a socket everybody can reach; its own activated
        # service instance serves the same qemu:///session.
        open_dir = os.path.join(session.tmp, 'open-bus')
        os.mkdir(open_dir)
        os.chown(open_dir, session.user.uid, session.user.gid)
        os.chmod(open_dir, 0o755)
        open_bus = UserBus(session.user, os.path.join(open_dir, 'bus'), session.servicedir,
                           session.env, all_users=True)
        try:
            client = Client(other, session.client_script, open_bus.address)
            objects = client.managed_objects()  # object data is no secret
            assert session.path in objects
            for iface, method, signature, args in (
                    (INSPECTOR_IFACE, 'Inspect', '(a{sv})', ({},)),
                    (FILES_IFACE, 'ReadFile', '(sa{sv})', ('/etc/hostname', {})),
                    (FILES_IFACE, 'WriteFile', '(saya{sv})', ('/root/x', [120], {}))):
                result = client.call(session.path, iface, method, signature, *args)
                assert result.get('error') == ERROR_PREFIX + 'NotAuthorized', result
                assert 'uid %d' % other.uid in result['message'], result
        finally:
            open_bus.stop()
    finally:
        other.remove()
    # the refused write changed nothing
    out = subprocess.run(['debugfs', '-R', 'stat /root/x', session.root.path],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert 'File not found' in out.stdout, out.stdout


def test_read_then_start_then_read_running_view(session):
    """What a Boxes user does next: the guest starts while the service has
    just read it, and the running guest is read through libvirt's backup
    job of the session daemon (sockets and scratch files in the user's
    runtime directory)."""
    virsh = ['virsh', '-c', SESSION_URI]
    # from a read-only appliance, whatever the write before left running
    session.client.ok(session.path, DOMAIN_IFACE, 'StopAppliance', '()')
    (data,) = session.client.ok(session.path, FILES_IFACE, 'ReadFile', '(sa{sv})',
                                '/etc/hostname', {})
    assert bytes(data) == (session.root.hostname + '\n').encode()
    session.user.run(virsh + ['start', session.domain_name], session.env)
    try:
        (systems,) = session.client.ok(session.path, INSPECTOR_IFACE, 'Inspect', '(a{sv})', {})
        assert [s['hostname'] for s in systems] == [session.root.hostname]
        state = session.user.run(virsh + ['domstate', session.domain_name], session.env)
        assert state.strip() == 'running'
        result = session.client.call(session.path, FILES_IFACE, 'WriteFile', '(saya{sv})',
                                     '/root/while-running.txt', [120], {})
        assert result.get('error') == ERROR_PREFIX + 'DomainRunning', result
        session.client.ok(session.path, DOMAIN_IFACE, 'StopAppliance', '()')
    finally:
        session.user.run(virsh + ['destroy', session.domain_name], session.env)


def test_without_xdg_runtime_dir(session):
    """A session without XDG_RUNTIME_DIR (dbus-launch outside systemd or
    elogind): GLib's runtime directory is then the cache directory, yet
    the service's runtime files (NBD sockets) stay out of the inspection
    cache, and both are the user's alone.  libvirt then keeps its session
    daemon's sockets under ~/.cache/libvirt: a session daemon of its own,
    so the first one and everything on the first bus are ended first."""
    user = session.user
    session.bus.stop()
    user.end_processes()
    env = user.env(runtime_dir=False)
    bus = UserBus(user, os.path.join(user.home, '.lgd-test-bus'), session.servicedir, env)
    session.cleanups.append(bus.stop)
    client = Client(user, session.client_script, bus.address, env)

    (data,) = client.ok(session.path, FILES_IFACE, 'ReadFile', '(sa{sv})', '/etc/hostname', {})
    assert bytes(data) == (session.root.hostname + '\n').encode()
    (systems,) = client.ok(session.path, INSPECTOR_IFACE, 'Inspect', '(a{sv})', {})
    assert [s['hostname'] for s in systems] == [session.root.hostname]

    cache_dir = os.path.join(user.home, '.cache', 'libvirt-guestfs-dbus')
    run_dir = os.path.join(user.home, '.cache', 'libvirt-guestfs-dbus-run')
    assert os.path.isfile(cache_file(cache_dir, SESSION_URI, session.uuid))
    assert all(name.endswith('.inspection') for name in os.listdir(cache_dir)), \
        os.listdir(cache_dir)
    # the read-only appliance is still warm: its NBD share is in the run dir
    assert os.listdir(run_dir), 'no runtime files in ' + run_dir
    for path in (cache_dir, run_dir):
        st = os.stat(path)
        assert st.st_uid == user.uid, path
        assert stat.S_IMODE(st.st_mode) == 0o700, '%s: %o' % (path, st.st_mode)


def test_run_dir_too_long_is_a_clear_error(session):
    """Without XDG_RUNTIME_DIR the run dir is under XDG_CACHE_HOME, which
    can be too deep for a unix socket (108 bytes with its NUL) while
    libvirt's own sockets there still fit: the caller is told so, instead
    of a qemu-storage-daemon exit status."""
    user = session.user
    session.bus.stop()
    user.end_processes()
    cache_home = user.home + '/' + 'c' * (60 - len(user.home) - 1)
    os.mkdir(cache_home, 0o700)
    os.chown(cache_home, user.uid, user.gid)
    run_dir = os.path.join(cache_home, 'libvirt-guestfs-dbus-run')
    # the first share of a fresh service is share-UUID-1
    socket = '%s/share-%s-1/nbd.sock' % (run_dir, session.uuid)
    assert len(socket) >= 108 and len(cache_home + '/libvirt/libvirt-admin-sock') < 108
    env = user.env(runtime_dir=False, XDG_CACHE_HOME=cache_home)
    bus = UserBus(user, os.path.join(user.home, '.lgd-test-bus2'), session.servicedir, env)
    session.cleanups.append(bus.stop)
    client = Client(user, session.client_script, bus.address, env)

    result = client.call(session.path, FILES_IFACE, 'ReadFile', '(sa{sv})', '/etc/hostname', {})
    assert result.get('error') == ERROR_PREFIX + 'Failed', result
    assert socket in result['message'] and '--run-dir' in result['message'], result
    assert os.listdir(run_dir) == []
