# libvirtd killed and restarted under the service: the connection's objects
# are withdrawn while it is down and come back by themselves.

import os
import signal
import subprocess

import pytest

from client import DOMAIN_IFACE, VOLUME_IFACE, expect_error, wait_until
from conftest import (CONNECTION_LOST_WARNINGS, SYSTEM_URI, domain_path,
                      ensure_libvirtd_running, unique_name, volume_path)

LIBVIRTD_STOP_TIMEOUT = 30.0
RECONNECT_TIMEOUT = 30.0


def libvirtd_pid():
    result = subprocess.run(['pidof', 'libvirtd'], stdout=subprocess.PIPE,
                            text=True)
    pids = result.stdout.split()
    assert len(pids) == 1, 'expected one libvirtd running, found %r' % pids
    return int(pids[0])


def process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split(')')[-1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


def stop_libvirtd():
    pid = libvirtd_pid()
    os.kill(pid, signal.SIGTERM)
    try:
        wait_until(lambda: not process_exists(pid), LIBVIRTD_STOP_TIMEOUT,
                   'libvirtd (pid %d) to exit after SIGTERM' % pid)
    except AssertionError:
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not process_exists(pid), 10,
                   'libvirtd (pid %d) to exit after SIGKILL' % pid)


@pytest.fixture
def libvirtd_restored():
    """libvirtd runs again after the test, whatever happened."""
    ensure_libvirtd_running()
    yield
    ensure_libvirtd_running()


@pytest.fixture
def system_service(start_daemon):
    """conftest's system_service; libvirtd goes away under it on purpose."""
    return start_daemon(SYSTEM_URI, extra_args=['--volume-rescan-interval', '1'],
                        expected_warnings=CONNECTION_LOST_WARNINGS)


def test_libvirtd_restart(libvirtd_restored, virt, system_service, signals):
    client = system_service.client
    images = virt.make_dir('images')
    image = virt.make_image(os.path.join(images, 'disk.qcow2'))
    dom = virt.define_domain(unique_name('dom'), disks=[(image, 'qcow2')])
    pool = virt.define_dir_pool(unique_name('pool'), images)
    pool.create(0)
    dom_path = domain_path(SYSTEM_URI, dom.UUIDString())
    vol_path = volume_path(SYSTEM_URI, image)
    dom_props = signals.wait_added(dom_path, DOMAIN_IFACE)
    vol_props = signals.wait_added(vol_path, VOLUME_IFACE)

    # libvirtd goes away: the objects are withdrawn, the service stays.
    stop_libvirtd()
    signals.wait_removed(dom_path, DOMAIN_IFACE)
    signals.wait_removed(vol_path, VOLUME_IFACE)
    assert system_service.is_running(), system_service.log()
    objects = client.get_managed_objects()
    assert dom_path not in objects
    assert vol_path not in objects
    assert client.manager_property('Connections') == [SYSTEM_URI]
    expect_error('NotFound', client.lookup_domain, dom.UUIDString())

    # libvirtd comes back: so do the objects, with the same properties.
    signals.clear()
    ensure_libvirtd_running()
    assert signals.wait_added(dom_path, DOMAIN_IFACE,
                              timeout=RECONNECT_TIMEOUT) == dom_props
    assert signals.wait_added(vol_path, VOLUME_IFACE,
                              timeout=RECONNECT_TIMEOUT) == vol_props
    assert len(signals.added(dom_path)) == 1
    objects = client.get_managed_objects()
    assert objects[dom_path][DOMAIN_IFACE] == dom_props
    assert objects[vol_path][VOLUME_IFACE] == vol_props
    assert client.lookup_domain(dom_props['Name']) == dom_path
    assert system_service.is_running(), system_service.log()

    # And it follows libvirt again, through the new connection.
    virt.reconnect()
    virt.conn.lookupByUUIDString(dom_props['UUID']).create()
    signals.wait_changed(dom_path, DOMAIN_IFACE, 'Active', True)
