# Reading never keeps a domain from starting (issue 10 item 1): a read-only
# appliance on a shut-off domain reads its disks through a
# qemu-storage-daemon that takes no image lock, and the service drops that
# appliance when the domain starts, so the next call reads the running
# domain's point-in-time view (a libvirt backup job).
#
# Real libvirtd (qemu:///system), real TCG appliances (two boots).

import shutil
import tempfile
import time

import libvirt
import pytest
from gi.repository import GLib

from conftest import (DOMAIN_IFACE, INSPECTOR_IFACE, SYSTEM_URI, Daemon, LibvirtObjects,
                      _running_daemons, appliance_domains, call_method,
                      ensure_libvirtd_running, unique_name, wait_until)
from images import ImageSet

FILES_IFACE = 'org.libvirt.GuestFS.Files'
WRITE_GRACE = 3


@pytest.fixture(scope='module')
def env(private_bus):
    ensure_libvirtd_running()
    virt = LibvirtObjects()
    images = ImageSet.create()
    cache_dir = tempfile.mkdtemp(prefix='lgd-test-cache-')
    daemon = None
    try:
        root = images.debian_root(hostname='lgd-lock-host')
        name = unique_name('lock')
        dom = virt.define_domain(name, disks=[(root.path, 'raw')])
        daemon = Daemon(private_bus, [SYSTEM_URI],
                        ['--force-tcg', '--cache-dir', cache_dir, '--idle-timeout', '900',
                         '--write-grace', str(WRITE_GRACE)])
        _running_daemons.append(daemon)

        class Env:
            pass
        env = Env()
        env.bus, env.virt, env.dom, env.name = private_bus, virt, dom, name
        env.markers = [root.path, dom.UUIDString()]
        env.path = call_method(private_bus.connection, '/org/libvirt/GuestFS/Manager',
                               'org.libvirt.GuestFS.Manager', 'LookupDomain',
                               GLib.Variant('(s)', (name,)), timeout=10)[0]
        yield env
    finally:
        if daemon is not None:
            _running_daemons.remove(daemon)
            daemon.stop()
        virt.reconnect()
        for leftover in appliance_domains(virt.conn, [images.dir]):
            virt.conn.lookupByName(leftover).destroy()
        virt.cleanup()
        images.remove()
        shutil.rmtree(cache_dir, ignore_errors=True)


def call(env, iface, method, signature, *args):
    return call_method(env.bus.connection, env.path, iface, method,
                       GLib.Variant(signature, args))


def get(env, iface, name):
    return call_method(env.bus.connection, env.path, 'org.freedesktop.DBus.Properties',
                       'Get', GLib.Variant('(ss)', (iface, name)), timeout=5)[0]


def test_read_then_start_then_read_running_view(env):
    (st,) = call(env, FILES_IFACE, 'Stat', '(sa{sv})', '/etc', {})
    assert st['type'] == 'directory', st
    assert get(env, DOMAIN_IFACE, 'ApplianceState') == 'running'
    # The appliance is warm and has the disks open: the domain starts at once.
    started = time.monotonic()
    env.dom.create()
    assert env.dom.isActive()
    assert time.monotonic() - started < 30
    # The service drops the appliance that read the shut-off view...
    wait_until(lambda: get(env, DOMAIN_IFACE, 'ApplianceState') == 'stopped', 60,
               'the shut-off appliance to be dropped')
    # ...and the next call reads the running domain's point-in-time view.
    (systems,) = call(env, INSPECTOR_IFACE, 'Inspect', '(a{sv})', {})
    assert [s.get('hostname') for s in systems] == ['lgd-lock-host']
    assert env.dom.isActive()
    call(env, DOMAIN_IFACE, 'StopAppliance', '()')
    assert env.dom.isActive()
    env.dom.destroy()
    wait_until(lambda: not get(env, DOMAIN_IFACE, 'Active'), 30, 'the domain to stop')


def test_write_holds_the_domain_only_for_the_grace(env):
    # A read-write appliance is what keeps a domain from starting while
    # writes run (qemu's locks, libvirt's lock manager)...
    call(env, FILES_IFACE, 'WriteFile', '(saya{sv})', '/etc/lgd-lock-note', b'note\n', {})
    assert get(env, DOMAIN_IFACE, 'ApplianceState') == 'running'
    with pytest.raises(libvirt.libvirtError) as info:
        env.dom.create()
    assert 'lock' in str(info.value), info.value
    assert not env.dom.isActive()
    # ...but only for --write-grace seconds after the last write.
    wait_until(lambda: get(env, DOMAIN_IFACE, 'ApplianceState') == 'stopped',
               WRITE_GRACE + 30, 'the read-write appliance to go after the grace')
    env.dom.create()
    assert env.dom.isActive()
    # The next read reads the running domain's view, write included.
    (data,) = call(env, FILES_IFACE, 'ReadFile', '(sa{sv})', '/etc/lgd-lock-note', {})
    assert bytes(data) == b'note\n'
    env.dom.destroy()
    wait_until(lambda: not get(env, DOMAIN_IFACE, 'Active'), 30, 'the domain to stop')
    call(env, DOMAIN_IFACE, 'StopAppliance', '()')
