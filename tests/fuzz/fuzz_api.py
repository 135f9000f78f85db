# The service's D-Bus API as introspection/*.xml declares it: interfaces,
# their methods with in-argument signatures and the UnixFD annotation, their
# properties, and what the doc comments say about options and errors.  The
# fuzzer calls what this finds, so a method added to the XML is fuzzed
# without touching the fuzzer (and one the fuzzer never reached fails it).

import glob
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

UNIX_FD_ANNOTATION = 'org.gtk.GDBus.C.UnixFD'


@dataclass
class Method:
    iface: str
    name: str
    in_args: list          # [(name, signature)]
    unix_fd: bool

    @property
    def signature(self):
        return '(' + ''.join(sig for _, sig in self.in_args) + ')'

    @property
    def qualified(self):
        return '%s.%s' % (self.iface, self.name)


@dataclass
class Interface:
    name: str
    methods: dict = field(default_factory=dict)      # name -> Method
    properties: dict = field(default_factory=dict)   # name -> (signature, access)


@dataclass
class Api:
    interfaces: dict        # name -> Interface
    option_keys: dict       # option key -> set of signatures the docs give it
    error_names: set        # org.libvirt.GuestFS.Error.* the docs name

    def methods(self):
        for iface in self.interfaces.values():
            yield from iface.methods.values()


def _annotations(element):
    return {a.get('name'): a.get('value') for a in element.findall('annotation')}


def _parse_interface(element):
    iface = Interface(element.get('name'))
    for method in element.findall('method'):
        in_args = [(arg.get('name'), arg.get('type')) for arg in method.findall('arg')
                   if arg.get('direction', 'in') == 'in']
        unix_fd = _annotations(method).get(UNIX_FD_ANNOTATION) == 'true' or any(
            _annotations(arg).get(UNIX_FD_ANNOTATION) == 'true'
            for arg in method.findall('arg'))
        iface.methods[method.get('name')] = Method(iface.name, method.get('name'),
                                                   in_args, unix_fd)
    for prop in element.findall('property'):
        iface.properties[prop.get('name')] = (prop.get('type'), prop.get('access'))
    return iface


# "<literal>offset</literal> (t, default 0)": an option key and its type.
_OPTION_RE = re.compile(r'<literal>([a-z][a-z0-9-]*)</literal>\s*\(([a-z{}()]+?)[,)]')
# Error names: spelled out, or "<literal>TooLarge</literal>" in an Errors list.
_ERROR_RE = re.compile(r'org\.libvirt\.GuestFS\.Error\.([A-Za-z]+)|<literal>([A-Z][A-Za-z]+)</literal>')


def load(directory):
    """Parses every org.libvirt.GuestFS.*.xml in directory."""
    interfaces, option_keys, error_names = {}, {}, set()
    files = sorted(glob.glob(os.path.join(directory, 'org.libvirt.GuestFS.*.xml')))
    if not files:
        raise RuntimeError('no org.libvirt.GuestFS.*.xml in %s' % directory)
    for path in files:
        with open(path) as f:
            text = f.read()
        for element in ET.fromstring(text).findall('interface'):
            iface = _parse_interface(element)
            interfaces[iface.name] = iface
        for key, sig in _OPTION_RE.findall(text):
            option_keys.setdefault(key, set()).add(sig)
        for spelled, literal in _ERROR_RE.findall(text):
            error_names.add('org.libvirt.GuestFS.Error.' + (spelled or literal))
    return Api(interfaces, option_keys, error_names)
