# The object model against libvirt's test driver (test-driver.xml): what
# GetManagedObjects returns, object paths, properties and look-ups.

import os
import re

import pytest

from client import DOMAIN_IFACE, MANAGER_PATH, ROOT_PATH, VOLUME_IFACE, expect_error
from conftest import (SOURCE_DIR, TOP_SOURCE_DIR, connection_element, domain_path, pick,
                      escape_path_element, unescape_path_element, volume_path)

XML_URI = 'test://' + os.path.join(SOURCE_DIR, 'test-driver.xml')
DEFAULT_URI = 'test:///default'


def disk(target, device='disk', type='file', fmt=None, read_only=False,
         shareable=False, **source):
    entry = {'target': target, 'device': device, 'type': type,
             'read-only': read_only, 'shareable': shareable}
    entry.update(source)
    if fmt is not None:
        entry['format'] = fmt
    return entry


# What test-driver.xml holds, written out by hand.
EXPECTED_DOMAINS = [
    {
        'Name': 'lgd-running',
        'UUID': '3f2504e0-4f89-11d3-9a0c-0305e82c3301',
        'Active': True,
        'Persistent': True,
        'Disks': [
            disk('vda', fmt='raw', path='/var/lib/lgd-test/running.img'),
            disk('sda', device='cdrom', fmt='raw', read_only=True,
                 path='/var/lib/lgd-test/install.iso'),
        ],
    },
    {
        'Name': 'lgd-shutoff',
        'UUID': 'a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d',
        'Active': False,
        'Persistent': True,
        'Disks': [
            disk('vda', fmt='qcow2', path='/var/lib/lgd-test/shutoff.qcow2'),
            disk('vdb', shareable=True, path='/var/lib/lgd-test/shared.img'),
            disk('vdc', type='volume', fmt='raw', pool='lgd-images',
                 volume='disk.raw'),
            disk('vdd', type='network', fmt='raw', read_only=True,
                 protocol='nbd', name='export0'),
            disk('sdb', device='cdrom', read_only=True),
        ],
    },
    {
        'Name': 'lgd-nodisks',
        'UUID': '12345678-9abc-4def-8123-456789abcdef',
        'Active': True,
        'Persistent': True,
        'Disks': [],
    },
    {
        'Name': 'lgd-transient',
        'UUID': 'c0ffee00-1234-4567-89ab-cdef01234567',
        'Active': True,
        'Persistent': False,
        'Disks': [
            disk('vda', type='block', fmt='raw', path='/dev/lgd-test-vg/lv0'),
        ],
    },
    {
        'Name': 'test',
        'UUID': '00000000-0000-4000-8000-000000000001',
        'Active': False,
        'Persistent': True,
        'Disks': [],
    },
]

# Named like a libguestfs appliance, with the appliance's channel, but
# persistent: not an appliance (those are transient), so it is published.
APPLIANCE_LOOKALIKE = {
    'Name': 'guestfs-abcdefghijklmnop',
    'UUID': 'b5a1c9e2-0d7f-4e3b-9a61-7c2d8e4f5a60',
    'Active': True,
    'Persistent': True,
    'Disks': [
        disk('sda', fmt='qcow2', path='/var/lib/lgd-test/overlay.qcow2'),
    ],
}

EXPECTED_VOLUMES = [
    {
        'Name': 'disk.raw',
        'Key': '/var/lib/lgd-test/images/disk.raw',
        'Path': '/var/lib/lgd-test/images/disk.raw',
        'Pool': 'lgd-images',
        'Format': 'raw',
        'Capacity': 1073741824,
        'Allocation': 1073741824,
    },
    {
        'Name': 'data_2.qcow2',
        'Key': '/var/lib/lgd-test/images/data_2.qcow2',
        'Path': '/var/lib/lgd-test/images/data_2.qcow2',
        'Pool': 'lgd-images',
        'Format': 'qcow2',
        'Capacity': 21474836480,
        'Allocation': 196608,
    },
    {
        'Name': 'café-disk.img',
        'Key': 'lgd_key/café-disk.img',
        'Path': '/var/lib/lgd-test/images/café-disk.img',
        'Pool': 'lgd-images',
        'Format': 'raw',
        'Capacity': 10485760,
        'Allocation': 4096,
    },
    {
        'Name': 'weekly.qcow2',
        'Key': 'backups:weekly.qcow2',
        'Path': '/srv/lgd-test/backups/weekly.qcow2',
        'Pool': 'lgd-backups',
        'Format': 'qcow2',
        'Capacity': 2147483648,
        'Allocation': 1048576,
    },
]

# The only domain of test:///default (built into libvirt's test driver).
DEFAULT_DOMAIN = {
    'Name': 'test',
    'UUID': '6695eb01-f6a4-8304-79aa-97f2502e193f',
    'Active': True,
    'Persistent': True,
    'Connection': DEFAULT_URI,
    'Disks': [disk('vda', path='/guest/diskimage1')],
}


def expected_domains(uri):
    """The domains of test-driver.xml but the appliance look-alike."""
    return {domain_path(uri, d['UUID']): dict(d, Connection=uri)
            for d in EXPECTED_DOMAINS}


def expected_volumes(uri):
    return {volume_path(uri, v['Key']): dict(v, Connection=uri)
            for v in EXPECTED_VOLUMES}


def project_version():
    with open(os.path.join(TOP_SOURCE_DIR, 'meson.build')) as f:
        return re.search(r"version:\s*'([^']+)'", f.read()).group(1)


@pytest.fixture
def service(start_daemon):
    return start_daemon(XML_URI)


@pytest.fixture
def client(service):
    return service.client


# --- Object paths ----------------------------------------------------------

def test_path_escaping_rule():
    # The rule the tests compute paths with, checked on known values.
    assert escape_path_element('3f2504e0-4f89') == '3f2504e0_2d4f89'
    assert escape_path_element('/a_b.c') == '_2fa_5fb_2ec'
    assert escape_path_element('é') == '_c3_a9'
    assert connection_element('qemu:///system') == 'qemu_system'
    assert connection_element('test:///default') == 'test_default'
    assert connection_element('test:///a/b.xml') == 'test_3a_2f_2f_2fa_2fb_2exml'
    for text in ['/var/lib/x_y.z', 'lgd_key/café-disk.img', 'a-b', '']:
        assert unescape_path_element(escape_path_element(text)) == text


def test_managed_objects_are_exactly_the_domains_and_volumes(client):
    objects = client.get_managed_objects()
    expected = (set(expected_domains(XML_URI)) | set(expected_volumes(XML_URI))
                | {domain_path(XML_URI, APPLIANCE_LOOKALIKE['UUID'])})
    published = set(objects) - {MANAGER_PATH}
    assert published == expected
    for path in expected_domains(XML_URI):
        assert DOMAIN_IFACE in objects[path]
        assert VOLUME_IFACE not in objects[path]
    for path in expected_volumes(XML_URI):
        assert VOLUME_IFACE in objects[path]
        assert DOMAIN_IFACE not in objects[path]


def test_domain_properties(client):
    domains = client.objects_with(DOMAIN_IFACE)
    for path, expected in expected_domains(XML_URI).items():
        assert pick(domains[path], expected) == expected, path


def test_persistent_domain_named_like_an_appliance_is_published(client):
    # Only libguestfs's transient appliance domains are hidden; a user's
    # persistent domain is published whatever its name and devices.
    path = domain_path(XML_URI, APPLIANCE_LOOKALIKE['UUID'])
    expected = dict(APPLIANCE_LOOKALIKE, Connection=XML_URI)
    domains = client.objects_with(DOMAIN_IFACE)
    assert path in domains, 'persistent domain %s is not published' % expected['Name']
    assert pick(domains[path], expected) == expected
    assert client.lookup_domain(APPLIANCE_LOOKALIKE['Name']) == path
    assert client.lookup_domain(APPLIANCE_LOOKALIKE['UUID']) == path


def test_domain_properties_through_properties_interface(client):
    # The same values through org.freedesktop.DBus.Properties.
    for path, expected in expected_domains(XML_URI).items():
        assert pick(client.get_all_properties(path, DOMAIN_IFACE), expected) == expected
        assert client.get_property(path, DOMAIN_IFACE, 'Name') == expected['Name']


def test_volume_properties(client):
    volumes = client.objects_with(VOLUME_IFACE)
    for path, expected in expected_volumes(XML_URI).items():
        assert pick(volumes[path], expected) == expected, path
        assert pick(client.get_all_properties(path, VOLUME_IFACE), expected) == expected


def test_object_paths_round_trip(client):
    prefix = '%s/%s/' % (ROOT_PATH, connection_element(XML_URI))
    for path, props in client.objects_with(DOMAIN_IFACE).items():
        assert path.startswith(prefix + 'domain/')
        assert unescape_path_element(path.rsplit('/', 1)[1]) == props['UUID']
    keys = set()
    for path, props in client.objects_with(VOLUME_IFACE).items():
        assert path.startswith(prefix + 'volume/')
        assert unescape_path_element(path.rsplit('/', 1)[1]) == props['Key']
        keys.add(props['Key'])
    # The keys with '/', '_', '.', ':' and a non-ASCII character are there.
    assert 'lgd_key/café-disk.img' in keys
    assert 'backups:weekly.qcow2' in keys


# --- The manager -------------------------------------------------------------

def test_manager_properties(client):
    assert client.manager_property('Version') == project_version()
    assert client.manager_property('Connections') == [XML_URI]


def test_lookup_domain_by_name(client):
    for expected in EXPECTED_DOMAINS:
        assert client.lookup_domain(expected['Name']) == \
            domain_path(XML_URI, expected['UUID'])


def test_lookup_domain_by_uuid_any_case(client):
    for expected in EXPECTED_DOMAINS:
        path = domain_path(XML_URI, expected['UUID'])
        assert client.lookup_domain(expected['UUID'].lower()) == path
        assert client.lookup_domain(expected['UUID'].upper()) == path


def test_lookup_domain_errors(client):
    expect_error('NotFound', client.lookup_domain, 'no-such-domain')
    expect_error('NotFound', client.lookup_domain,
                      'deadbeef-0000-4000-8000-000000000000')
    expect_error('InvalidArgument', client.lookup_domain, '')


def test_lookup_volume_by_key_and_path(client):
    for expected in EXPECTED_VOLUMES:
        path = volume_path(XML_URI, expected['Key'])
        assert client.lookup_volume(expected['Key']) == path
        assert client.lookup_volume(expected['Path']) == path


def test_lookup_volume_errors(client):
    expect_error('NotFound', client.lookup_volume, '/no/such/volume')
    expect_error('NotFound', client.lookup_volume, 'disk.raw')
    expect_error('InvalidArgument', client.lookup_volume, '')


# --- Several connections -------------------------------------------------------

def test_two_connections(start_daemon):
    client = start_daemon(XML_URI, DEFAULT_URI).client
    assert client.manager_property('Connections') == [XML_URI, DEFAULT_URI]

    default_path = domain_path(DEFAULT_URI, DEFAULT_DOMAIN['UUID'])
    assert default_path == ('/org/libvirt/GuestFS/test_default/domain/'
                            '6695eb01_2df6a4_2d8304_2d79aa_2d97f2502e193f')
    domains = client.objects_with(DOMAIN_IFACE)
    assert pick(domains[default_path], DEFAULT_DOMAIN) == DEFAULT_DOMAIN
    for path, expected in expected_domains(XML_URI).items():
        assert pick(domains[path], expected) == expected
    assert {path for path, props in domains.items()
            if props['Connection'] == DEFAULT_URI} == {default_path}
    volumes = client.objects_with(VOLUME_IFACE)
    assert set(volumes) == set(expected_volumes(XML_URI))
    for path, expected in expected_volumes(XML_URI).items():
        assert pick(volumes[path], expected) == expected

    # Each connection has its own prefix, matching the objects' Connection.
    for path, props in domains.items():
        assert path.split('/')[4] == connection_element(props['Connection'])
    assert connection_element(XML_URI) != connection_element(DEFAULT_URI)

    assert client.lookup_domain(DEFAULT_DOMAIN['UUID']) == default_path
    assert client.lookup_domain('lgd-shutoff') == \
        domain_path(XML_URI, 'a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d')
    # "test" names a domain on both connections: the UUID must be used.
    expect_error('InvalidArgument', client.lookup_domain, 'test')
    assert client.lookup_domain('00000000-0000-4000-8000-000000000001') == \
        domain_path(XML_URI, '00000000-0000-4000-8000-000000000001')
