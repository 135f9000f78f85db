# Live updates against the real libvirtd (qemu:///system): the tests change
# domains and storage through libvirt and watch the service follow.
#
# Every libvirt object made here is named lgd-test-* and removed by the
# `virt` fixture, even when a test fails.

import os
import secrets
import string

from client import DOMAIN_IFACE, VOLUME_IFACE, expect_error
from conftest import SYSTEM_URI, domain_path, pick, unique_name, volume_path

MiB = 1024 * 1024


def file_disk(target, path, fmt):
    return {'target': target, 'device': 'disk', 'type': 'file',
            'path': path, 'format': fmt, 'read-only': False,
            'shareable': False}


def appliance_name():
    """A name as libguestfs's libvirt backend gives its appliances."""
    alphabet = string.ascii_lowercase + string.digits
    return 'guestfs-' + ''.join(secrets.choice(alphabet) for _ in range(16))


APPLIANCE_CHANNEL = ("<channel type='unix'><source mode='bind'/>"
                     "<target type='virtio' name='org.libguestfs.channel.0'/>"
                     "</channel>")


def expected_volume(vol, pool_name, fmt):
    """The Volume properties of vol, as libvirt reports it."""
    _type, capacity, allocation = vol.info()
    return {
        'Name': vol.name(),
        'Key': vol.key(),
        'Path': vol.path(),
        'Pool': pool_name,
        'Format': fmt,
        'Capacity': capacity,
        'Allocation': allocation,
        'Connection': SYSTEM_URI,
    }


# --- Domains -------------------------------------------------------------------

def test_domain_lifecycle(virt, system_service, signals):
    client = system_service.client
    images = virt.make_dir('images')
    image = virt.make_image(os.path.join(images, 'disk.qcow2'))
    name = unique_name('dom')

    dom = virt.define_domain(name, disks=[(image, 'qcow2')])
    uuid = dom.UUIDString()
    path = domain_path(SYSTEM_URI, uuid)
    expected = {
        'Name': name,
        'UUID': uuid,
        'Active': False,
        'Persistent': True,
        'Connection': SYSTEM_URI,
        'Disks': [file_disk('vda', image, 'qcow2')],
    }

    # Defined: the object appears with its properties.
    assert pick(signals.wait_added(path, DOMAIN_IFACE), expected) == expected
    assert pick(client.objects_with(DOMAIN_IFACE)[path], expected) == expected
    assert client.lookup_domain(name) == path
    assert client.lookup_domain(uuid.upper()) == path

    # Started, then destroyed: Active follows.
    dom.create()
    signals.wait_changed(path, DOMAIN_IFACE, 'Active', True)
    assert client.get_property(path, DOMAIN_IFACE, 'Active') is True
    dom.destroy()
    signals.wait_changed(path, DOMAIN_IFACE, 'Active', False)
    assert client.get_property(path, DOMAIN_IFACE, 'Active') is False

    # Renamed while shut off: same object, new Name.
    new_name = unique_name('renamed')
    virt.rename_domain(dom, new_name)
    signals.wait_changed(path, DOMAIN_IFACE, 'Name', new_name)
    assert client.get_property(path, DOMAIN_IFACE, 'Name') == new_name
    assert pick(client.objects_with(DOMAIN_IFACE)[path], expected) == \
        dict(expected, Name=new_name)
    assert client.lookup_domain(new_name) == path
    expect_error('NotFound', client.lookup_domain, name)
    assert signals.removed(path) == [], 'a rename must not withdraw the object'
    assert len(signals.added(path)) == 1, 'a rename must not re-add the object'

    # Undefined: the object vanishes.
    dom.undefine()
    signals.wait_removed(path, DOMAIN_IFACE)
    assert path not in client.get_managed_objects()
    expect_error('NotFound', client.lookup_domain, uuid)


def test_transient_domain_lives_while_it_runs(virt, system_service, signals):
    client = system_service.client
    images = virt.make_dir('images')
    image = virt.make_image(os.path.join(images, 'disk.raw'), fmt='raw',
                            size='8M')
    name = unique_name('transient')

    dom = virt.create_transient_domain(name, disks=[(image, 'raw')])
    path = domain_path(SYSTEM_URI, dom.UUIDString())
    expected = {
        'Name': name,
        'UUID': dom.UUIDString(),
        'Active': True,
        'Persistent': False,
        'Connection': SYSTEM_URI,
        'Disks': [file_disk('vda', image, 'raw')],
    }
    assert pick(signals.wait_added(path, DOMAIN_IFACE), expected) == expected
    assert pick(client.objects_with(DOMAIN_IFACE)[path], expected) == expected

    dom.destroy()
    signals.wait_removed(path, DOMAIN_IFACE)
    assert path not in client.get_managed_objects()


def test_appliance_domain_is_not_published(virt, system_service, signals):
    client = system_service.client
    appliance = virt.create_transient_domain(appliance_name(),
                                             extra_devices=APPLIANCE_CHANNEL)
    appliance_path = domain_path(SYSTEM_URI, appliance.UUIDString())
    # libvirt delivers events in order: once the service has published a
    # domain started after the appliance, it has seen the appliance too.
    marker = virt.create_transient_domain(unique_name('marker'))
    marker_path = domain_path(SYSTEM_URI, marker.UUIDString())
    signals.wait_added(marker_path, DOMAIN_IFACE)

    assert appliance.isActive()
    assert signals.about(appliance_path) == []
    assert appliance_path not in client.get_managed_objects()
    expect_error('NotFound', client.lookup_domain, appliance.name())
    expect_error('NotFound', client.lookup_domain, appliance.UUIDString())

    appliance.destroy()
    marker.destroy()
    signals.wait_removed(marker_path, DOMAIN_IFACE)
    assert signals.about(appliance_path) == []


# --- Storage -------------------------------------------------------------------

def test_pool_and_volume_lifecycle(virt, system_service, signals):
    client = system_service.client

    # A pool defined but not started: its files are not volumes yet.
    pool_dir = virt.make_dir('pool')
    first = virt.make_image(os.path.join(pool_dir, 'first.qcow2'), 'qcow2', '16M')
    second = virt.make_image(os.path.join(pool_dir, 'second.raw'), 'raw', '8M')
    pool_name = unique_name('pool')
    pool = virt.define_dir_pool(pool_name, pool_dir)

    # Another pool, started, whose volume shows the service has looked.
    marker_dir = virt.make_dir('marker')
    marker_file = virt.make_image(os.path.join(marker_dir, 'marker.raw'), 'raw', '1M')
    marker_pool = virt.define_dir_pool(unique_name('marker'), marker_dir)
    marker_pool.create(0)
    signals.wait_added(volume_path(SYSTEM_URI, marker_file), VOLUME_IFACE)
    published = client.objects_with(VOLUME_IFACE)
    for path in (first, second):
        assert volume_path(SYSTEM_URI, path) not in published
        assert signals.about(volume_path(SYSTEM_URI, path)) == []
        expect_error('NotFound', client.lookup_volume, path)

    # Started: its volumes appear.
    pool.create(0)
    for path, fmt in ((first, 'qcow2'), (second, 'raw')):
        vol = pool.storageVolLookupByName(os.path.basename(path))
        assert vol.key() == path
        expected = expected_volume(vol, pool_name, fmt)
        object_path = volume_path(SYSTEM_URI, vol.key())
        assert pick(signals.wait_added(object_path, VOLUME_IFACE), expected) == expected
        assert pick(client.objects_with(VOLUME_IFACE)[object_path], expected) == expected
        assert client.lookup_volume(vol.key()) == object_path
        assert client.lookup_volume(vol.path()) == object_path
    assert client.get_property(volume_path(SYSTEM_URI, first), VOLUME_IFACE,
                               'Capacity') == 16 * MiB

    # Created through libvirt: appears (volume rescan).
    created = pool.createXML(
        "<volume><name>created.qcow2</name>"
        "<capacity unit='bytes'>%d</capacity>"
        "<target><format type='qcow2'/></target></volume>" % (4 * MiB), 0)
    created_path = volume_path(SYSTEM_URI, created.key())
    expected = expected_volume(created, pool_name, 'qcow2')
    assert expected['Capacity'] == 4 * MiB
    assert pick(signals.wait_added(created_path, VOLUME_IFACE), expected) == expected
    assert client.lookup_volume(created.path()) == created_path

    # A file put in the directory behind libvirt's back, then a refresh.
    third = virt.make_image(os.path.join(pool_dir, 'third.raw'), 'raw', '2M')
    pool.refresh(0)
    third_vol = pool.storageVolLookupByName('third.raw')
    props = signals.wait_added(volume_path(SYSTEM_URI, third), VOLUME_IFACE)
    expected = expected_volume(third_vol, pool_name, 'raw')
    assert pick(props, expected) == expected

    # Deleted through libvirt: vanishes.
    created.delete(0)
    signals.wait_removed(created_path, VOLUME_IFACE)
    assert created_path not in client.get_managed_objects()

    # Pool stopped: all its volumes vanish; the other pool's stay.
    pool.destroy()
    for path in (first, second, third):
        signals.wait_removed(volume_path(SYSTEM_URI, path), VOLUME_IFACE)
    published = client.objects_with(VOLUME_IFACE)
    for path in (first, second, third):
        assert volume_path(SYSTEM_URI, path) not in published
    assert volume_path(SYSTEM_URI, marker_file) in published
    assert signals.removed(volume_path(SYSTEM_URI, marker_file)) == []

    marker_pool.destroy()
    signals.wait_removed(volume_path(SYSTEM_URI, marker_file), VOLUME_IFACE)


def test_objects_present_at_startup(virt, start_daemon):
    # Domains and volumes that exist before the service starts are published
    # by the time it owns its name.
    images = virt.make_dir('images')
    image = virt.make_image(os.path.join(images, 'disk.qcow2'))
    dom = virt.define_domain(unique_name('dom'), disks=[(image, 'qcow2')])
    pool = virt.define_dir_pool(unique_name('pool'), images)
    pool.create(0)

    client = start_daemon(SYSTEM_URI).client
    objects = client.get_managed_objects()
    dom_props = objects[domain_path(SYSTEM_URI, dom.UUIDString())][DOMAIN_IFACE]
    assert dom_props['Name'] == dom.name()
    assert dom_props['Disks'] == [file_disk('vda', image, 'qcow2')]
    vol_props = objects[volume_path(SYSTEM_URI, image)][VOLUME_IFACE]
    assert vol_props['Pool'] == pool.name()
    assert vol_props['Format'] == 'qcow2'
    assert client.manager_property('Connections') == [SYSTEM_URI]
