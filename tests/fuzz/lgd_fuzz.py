#!/usr/bin/python3
# A D-Bus fuzzer for libvirt-guestfs-dbus, driven by introspection/*.xml.
#
# It starts the daemon on private buses, once for test:///default and,
# unless --no-appliance, once for qemu:///system with a small domain and
# volume of its own (so that calls on the test driver never wait for an
# appliance slot; some calls on those two objects boot an appliance), then
# for --seconds calls every method of the Manager, domain and volume
# objects with wrong and random values of the right types, hostile strings
# and paths, random option dictionaries, bad fd indices and fds of the
# wrong kind, wrong signatures, unknown methods, interfaces and paths,
# from several connections at once, some of which it drops while their
# calls are in flight.  A thread meanwhile checks that property Get and
# unknown methods are answered within 2 s.
#
# It fails (exit status 1) on any crash, hang (a call without a reply
# within the bound of its class), error that is not named
# org.libvirt.GuestFS.Error.* or org.freedesktop.DBus.Error.*, sanitizer
# report or GLib critical in the daemon's output, a daemon that does not
# answer GetManagedObjects afterwards or does not exit with status 0 on
# SIGTERM, or an XML method it never called.
#
#   LGD_DAEMON=build/src/libvirt-guestfs-dbus /usr/bin/python3 tests/fuzz/lgd_fuzz.py \
#       [--seconds 180] [--seed S] [--no-appliance] [--log calls.jsonl] [--max-items N] \
#       [--probe-bound SECONDS]
#
# The daemons inherit the environment (ASAN_OPTIONS, UBSAN_OPTIONS for a
# sanitizer build), and their output is searched for sanitizer reports.
# Calls that hang while a probe shows the main loop stalled are counted as
# that stall's consequences; the big calls sent just before it are listed
# as suspects.  --max-items caps huge arrays and dictionaries, to fuzz on
# past a known stall they cause.  --probe-bound raises the 2 s bound of
# property Gets and unknown methods, for a sanitizer build: with ASan's
# full stack on each malloc, GDBus takes about 15 us a value to parse a
# message before the service sees it.
#
# A call is reproduced from the summary's line for it (method, object,
# arguments, fds); a seed replays the same sequence of generated calls
# (timing, and so interleaving, differs between runs).

import argparse
import collections
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time

from gi.repository import Gio, GLib

import fuzz_api
import fuzz_values
from fuzz_report import (SERVICE_ERROR_PREFIX, SERVICE_NAMES, STANDARD_ERROR_PREFIX, Findings,
                         Stats, print_summary)
from fuzz_target import Target

HERE = os.path.dirname(os.path.abspath(__file__))
INTROSPECTION_DIR = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'introspection')

BUS_NAME = 'org.libvirt.GuestFS'
MANAGER_PATH = '/org/libvirt/GuestFS/Manager'
ROOT_PATH = '/org/libvirt/GuestFS'
PROPERTIES_IFACE = 'org.freedesktop.DBus.Properties'
# Standard errors that say the service gave no answer.
NO_ANSWER_ERRORS = {'org.freedesktop.DBus.Error.NoReply',
                    'org.freedesktop.DBus.Error.ServiceUnknown',
                    'org.freedesktop.DBus.Error.NameHasNoOwner',
                    'org.freedesktop.DBus.Error.Disconnected',
                    'org.freedesktop.DBus.Error.Timeout',
                    'org.freedesktop.DBus.Error.TimedOut'}
# Interfaces whose calls may need the object's appliance.
APPLIANCE_IFACES = {'org.libvirt.GuestFS.Files', 'org.libvirt.GuestFS.Inspector'}
# Methods that wait for the appliance's queue (StopAppliance stops it after
# the calls queued on it).
APPLIANCE_METHODS = {'StartAppliance', 'StopAppliance'}
# Target.services' names, for reproducers.

# Bounds on the time to a reply, per class of call (seconds).  A property
# Get or an unknown method never waits for anything; a call refused or
# answered from the object model waits for no appliance; a volume transfer
# of a 4 MiB volume takes a few seconds; an appliance call may wait for a
# launch (15-40 s under TCG, more when several boot at once).
PROBE_BOUND = 2.0
QUICK_BOUND = 15.0
TRANSFER_BOUND = 60.0
LAUNCH_TIMEOUT = 180
APPLIANCE_BOUND = LAUNCH_TIMEOUT + 120.0
IDLE_TIMEOUT = 10

# A stretch of the fuzzer's own work longer than this (seconds) is not
# counted against the service's reply times.
OWN_STALL = 0.2
# Messages bigger than this are remembered as suspects of stalls.
BIG_MESSAGE = 64 * 1024
CONNECTIONS = 4
MAX_IN_FLIGHT = 24
MAX_APPLIANCE_IN_FLIGHT = 3
# Appliance calls stop after this fraction of the run, so that the run
# ends close to --seconds.
APPLIANCE_WINDOW = 0.6


class Call:
    """One method call and what became of it."""

    def __init__(self, number, service, path, iface, method, args, fds=None, klass='quick',
                 bound=QUICK_BOUND, label=None):
        self.number = number
        self.service = service          # index in Target.services
        self.path = path
        self.iface = iface
        self.method = method
        self.args = args                # list of GLib.Variant
        self.fds = fds                  # fuzz_values.Fds or None
        self.klass = klass
        self.bound = bound
        self.label = label or '%s.%s' % (iface, method)
        self.connection = None
        self.sent = None
        self.busy_at_send = 0.0
        self.latency = None
        self.outcome = None             # 'ok', an error name or 'local:...'
        self.message = None             # the error's message
        self.hung = False

    def params(self):
        return GLib.Variant.new_tuple(*self.args)

    def reproducer(self):
        text = '#%d [%s] %s.%s on %s args %s' % (
            self.number, SERVICE_NAMES[self.service], self.iface, self.method, self.path,
            fuzz_values.summarize(self.params()))
        if self.fds is not None:
            text += ' fds: ' + self.fds.description
        return text


def classify_error(error):
    """The D-Bus error name of a GLib.Error from a call, or 'local:...'
    for errors raised on our side (timeouts, closed connections)."""
    name = Gio.DBusError.get_remote_error(error)
    if name:
        return name
    if error.domain == 'g-io-error-quark':
        if error.code == Gio.IOErrorEnum.TIMED_OUT:
            return 'local:timeout'
        if error.code == Gio.IOErrorEnum.CLOSED:
            return 'local:closed'
        if error.code == Gio.IOErrorEnum.CANCELLED:
            return 'local:cancelled'
    return 'local:%s' % error.message


def unnamed_error(name):
    return not (name.startswith(SERVICE_ERROR_PREFIX) or name.startswith(STANDARD_ERROR_PREFIX))


def new_connection(address):
    return Gio.DBusConnection.new_for_address_sync(
        address,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)


class BusProber(threading.Thread):
    """GetId on the bus itself, over and over on a connection of its own:
    a stall that the bus shares is dbus-daemon's (a huge message being
    relayed), not the service's."""

    def __init__(self, address):
        super().__init__(daemon=True)
        self.connection = new_connection(address)
        self.stop_event = threading.Event()
        self.samples = collections.deque(maxlen=100000)   # (start, latency)

    def run(self):
        while not self.stop_event.wait(0.1):
            start = time.monotonic()
            try:
                self.connection.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus',
                                          'org.freedesktop.DBus', 'GetId', None, None,
                                          Gio.DBusCallFlags.NONE, 30000, None)
            except GLib.Error:
                pass
            self.samples.append((start, time.monotonic() - start))

    def slowest_between(self, start, end):
        """The longest GetId that overlapped [start, end] (seconds)."""
        return max((latency for sent, latency in list(self.samples)
                    if sent < end and sent + latency > start), default=0.0)

    def stop(self):
        self.stop_event.set()
        self.join(60)
        self.connection.close_sync(None)


class Prober(threading.Thread):
    """Property Gets and unknown methods, one after another on a
    connection of their own, each of which must be answered within
    PROBE_BOUND while the fuzzer's other calls are in flight."""

    def __init__(self, service_index, service, findings, stats):
        super().__init__(daemon=True)
        self.service = service_index
        self.connection = new_connection(service.address)
        object_paths = sorted(service.objects)
        self.findings = findings
        self.stats = stats
        self.stop_event = threading.Event()
        self.big_calls = ()
        self.bus_prober = BusProber(service.address)
        domain = next((p for p in object_paths if '/domain/' in p), MANAGER_PATH)
        self.probes = [
            (MANAGER_PATH, PROPERTIES_IFACE, 'Get',
             GLib.Variant('(ss)', ('org.libvirt.GuestFS.Manager', 'Version'))),
            (domain, PROPERTIES_IFACE, 'Get',
             GLib.Variant('(ss)', ('org.libvirt.GuestFS.Domain', 'ApplianceState'))),
            (MANAGER_PATH, 'org.libvirt.GuestFS.Manager', 'NoSuchMethod', None),
        ]
        self.number = 0

    def run(self):
        self.bus_prober.start()
        while not self.stop_event.wait(0.25):
            for path, iface, method, args in self.probes:
                self.probe(path, iface, method, args)

    def probe(self, path, iface, method, args):
        self.number += 1
        call = Call(self.number, self.service, path, iface, method,
                    [args.get_child_value(i) for i in range(args.n_children())] if args else [],
                    klass='probe', bound=PROBE_BOUND, label='probe %s.%s' % (iface, method))
        start = call.sent = time.monotonic()
        try:
            self.connection.call_sync(BUS_NAME, path, iface, method, args, None,
                                      Gio.DBusCallFlags.NONE, 30000, None)
            call.outcome = 'ok'
        except GLib.Error as error:
            call.outcome = classify_error(error)
        call.latency = time.monotonic() - start
        self.stats.record(call)
        if call.latency > PROBE_BOUND or call.outcome in NO_ANSWER_ERRORS \
                or call.outcome == 'local:timeout':
            # The big calls sent to this service shortly before are the
            # likely causes (one of each method, biggest first): replay
            # them one by one to tell which.
            suspects, seen = [], set()
            for sent, service, size, label, text in sorted(
                    list(self.big_calls), key=lambda c: -c[2]):
                if service == self.service and start - 10 <= sent <= start \
                        and label not in seen and len(suspects) < 6:
                    seen.add(label)
                    suspects.append('%d-byte message: %s' % (size, text))
            bus = self.bus_prober.slowest_between(start, start + call.latency)
            where = ('the main loop stalled (the bus itself answered within %.2f s)' % bus
                     if bus < PROBE_BOUND else
                     'the bus itself took %.2f s meanwhile: dbus-daemon stalled too' % bus)
            self.findings.add_stall(
                self.service, start, start + call.latency,
                'probe %s answered after %.2f s (%s; bound %.0f s): %s'
                % (call.reproducer(), call.latency, call.outcome, PROBE_BOUND, where), suspects)

    def stop(self):
        self.stop_event.set()
        self.join(60)
        self.bus_prober.stop()
        self.connection.close_sync(None)


class Fuzzer:
    def __init__(self, options, api, target):
        self.options = options
        self.api = api
        self.services = target.services
        self.rng = random.Random(options.seed)
        # (service index, path, [interfaces]) of every object to call.
        self.objects = [(index, path, service.objects[path])
                        for index, service in enumerate(self.services)
                        for path in sorted(service.objects)]
        self.values = fuzz_values.Values(self.rng, api,
                                         sorted({path for _, path, _ in self.objects}),
                                         options.max_items)
        self.connections = [[new_connection(s.address) for _ in range(CONNECTIONS)]
                            for s in self.services]
        self.pending = {}
        # (sent, service, size, label, reproducer) of recent calls with big
        # messages, suspects of a main-loop stall.
        self.big_calls = collections.deque(maxlen=64)
        self.number = 0
        self.findings = Findings()
        self.stats = Stats()
        self.busy = 0.0          # seconds this loop was too busy to dispatch replies
        self.scratch = tempfile.mkdtemp(prefix='lgd-fuzz-')
        self.log = open(options.log, 'w') if options.log else None
        self.start = None
        # Every method the XML declares once first, so that a short run
        # reaches them all: on an object of the test driver where one has
        # the interface (an answer at once), else on an appliance object
        # (those go first, while appliance calls are still allowed).
        offers = collections.defaultdict(list)
        for entry in self.objects:
            for iface in entry[2]:
                for method in api.interfaces.get(iface, fuzz_api.Interface(iface)).methods.values():
                    offers[method.qualified].append((entry, method))
        self.first_round = []
        for qualified in sorted(offers):
            choices = offers[qualified]
            quick = [c for c in choices
                     if c[0][1] not in self.services[c[0][0]].appliance_objects]
            self.first_round.append(self.rng.choice(quick or choices))
        self.rng.shuffle(self.first_round)
        # Popped from the end: appliance objects' methods first.
        self.first_round.sort(key=lambda c: c[0][1] in self.services[c[0][0]].appliance_objects)

    # --- sending -----------------------------------------------------------------

    def connection(self, service, index=None):
        if index is None:
            index = self.rng.randrange(CONNECTIONS)
        if self.connections[service][index].is_closed():
            self.connections[service][index] = new_connection(self.services[service].address)
        return index, self.connections[service][index]

    def send(self, call, index=None):
        index, connection = self.connection(call.service, index)
        call.connection = index
        call.sent = time.monotonic()
        call.busy_at_send = self.busy
        self.pending[call.number] = call
        size = call.params().get_size()
        if size > BIG_MESSAGE:
            self.big_calls.append((call.sent, call.service, size, call.label,
                                   call.reproducer()))
        timeout = int((call.bound + 60) * 1000)
        fd_list = call.fds.fd_list if call.fds is not None else None
        if fd_list is not None:
            connection.call_with_unix_fd_list(
                BUS_NAME, call.path, call.iface, call.method, call.params(), None,
                Gio.DBusCallFlags.NONE, timeout, fd_list, None, self.on_reply, call)
        else:
            connection.call(BUS_NAME, call.path, call.iface, call.method, call.params(), None,
                            Gio.DBusCallFlags.NONE, timeout, None, self.on_reply, call)
        if call.fds is not None:
            # GDBus has its own duplicates of the fds now.
            call.fds.fd_list = None

    def on_reply(self, connection, result, call):
        try:
            if call.fds is not None:
                connection.call_with_unix_fd_list_finish(result)
            else:
                connection.call_finish(result)
            call.outcome = 'ok'
        except GLib.Error as error:
            call.outcome = classify_error(error)
            call.message = error.message
        self.finish(call)

    def finish(self, call):
        now = time.monotonic()
        call.latency = now - call.sent
        # Time this loop spent busy is not the service's.
        waited = call.latency - (self.busy - call.busy_at_send)
        self.pending.pop(call.number, None)
        if call.fds is not None:
            call.fds.release()
        self.stats.record(call)
        if self.log:
            self.log.write(json.dumps({'call': call.reproducer(), 'outcome': call.outcome,
                                       'message': call.message,
                                       'latency': round(call.latency, 3)}) + '\n')
        outcome = call.outcome
        if outcome in NO_ANSWER_ERRORS or outcome == 'local:timeout':
            if not call.hung:
                self.findings.add_hang(call, '%s: no reply (%s) after %.1f s'
                                       % (call.reproducer(), outcome, call.latency))
        elif outcome.startswith('local:') and outcome != 'local:closed':
            self.findings.add('other', '%s: %s' % (call.reproducer(), outcome))
        elif outcome != 'ok' and not outcome.startswith('local:') and unnamed_error(outcome):
            self.findings.add('unnamed', '%s: %s' % (call.reproducer(), outcome))
        if waited > call.bound and not call.hung and outcome != 'local:closed':
            self.findings.add_hang(call, '%s: answered (%s) after %.1f s, bound %.0f s'
                                   % (call.reproducer(), outcome, waited, call.bound))

    def sweep_hangs(self):
        """Calls past their bound are hangs; their fds are let go so that
        the service can end them."""
        now = time.monotonic()
        for call in list(self.pending.values()):
            waited = now - call.sent - (self.busy - call.busy_at_send)
            if not call.hung and waited > call.bound:
                call.hung = True
                self.findings.add_hang(call, '%s: no reply within %.0f s (%s call)'
                                       % (call.reproducer(), call.bound, call.klass))
                if call.fds is not None:
                    call.fds.release()

    # --- what to call --------------------------------------------------------------

    def appliance_allowed(self):
        in_flight = sum(1 for c in self.pending.values() if c.klass == 'appliance')
        return not self.appliance_window_over() and in_flight < MAX_APPLIANCE_IN_FLIGHT

    def appliance_window_over(self):
        return time.monotonic() - self.start >= APPLIANCE_WINDOW * self.options.seconds

    def classify(self, service, path, method, args):
        """(class, bound) of a call."""
        appliance_objects = self.services[service].appliance_objects
        if path in appliance_objects:
            if method.iface in APPLIANCE_IFACES or method.name in APPLIANCE_METHODS:
                return 'appliance', APPLIANCE_BOUND
            if method.unix_fd:
                return 'transfer', TRANSFER_BOUND
        if method.name == 'InspectDomains' and args and args[0] is not None:
            listed = args[0]
            count = listed.n_children()
            sample = [listed.get_child_value(i).get_string() for i in range(min(count, 1000))]
            if set(sample) & appliance_objects:
                return 'appliance', APPLIANCE_BOUND
        return 'quick', QUICK_BOUND

    def pick_method(self, entry):
        ifaces = [i for i in entry[2] if i in self.api.interfaces
                  and self.api.interfaces[i].methods]
        if not ifaces:
            return None
        iface = self.api.interfaces[self.rng.choice(ifaces)]
        return iface.methods[self.rng.choice(sorted(iface.methods))]

    def method_call(self, entry=None, method=None, first_round=False):
        if entry is None:
            entry = self.rng.choice(self.objects)
            method = self.pick_method(entry)
            if method is None:
                return None
        service, path, _ = entry
        plausible = self.rng.random() < 0.3
        args = self.values.arguments(method, plausible=plausible)
        klass, bound = self.classify(service, path, method, args)
        if klass == 'appliance' and not (first_round and not self.appliance_window_over()) \
                and not self.appliance_allowed():
            return None
        fds = None
        for position, (name, sig) in enumerate(method.in_args):
            if sig == 'h':
                direction = 'sink' if name == 'sink' else 'source'
                fds = fuzz_values.make_fds(self.rng, direction, self.scratch)
                args[position] = GLib.Variant('h', fds.handle)
        self.number += 1
        self.stats.called_methods.add(method.qualified)
        return Call(self.number, service, path, method.iface, method.name, args, fds,
                    klass, bound)

    def burst(self):
        """The same call several times at once, from every connection."""
        first = self.method_call()
        if first is None or first.klass == 'appliance':
            return [first] if first else []
        calls = [first]
        method = self.api.interfaces[first.iface].methods[first.method]
        for _ in range(self.rng.randint(2, 7)):
            self.number += 1
            call = Call(self.number, first.service, first.path, first.iface, first.method,
                        list(first.args), None, first.klass, first.bound)
            for position, (name, sig) in enumerate(method.in_args):
                if sig == 'h':
                    call.fds = fuzz_values.make_fds(
                        self.rng, 'sink' if name == 'sink' else 'source', self.scratch)
                    call.args[position] = GLib.Variant('h', call.fds.handle)
            calls.append(call)
        return calls

    def wrong_signature(self):
        entry = self.rng.choice(self.objects)
        method = self.pick_method(entry)
        if method is None:
            return None
        service, path, _ = entry
        args = [a if a is not None else GLib.Variant('h', 0)
                for a in self.values.arguments(method)]
        how = self.rng.choice(['extra', 'missing', 'retyped', 'wrapped', 'nothing'])
        if how == 'extra':
            args.append(self.values.variant_of_random_type(1))
        elif how == 'missing' and args:
            del args[self.rng.randrange(len(args))]
        elif how == 'retyped' and args:
            position = self.rng.randrange(len(args))
            kind = args[position].get_type_string()
            args[position] = self.values.value(self.rng.choice(
                [t for t in fuzz_values.RANDOM_TYPES if t != kind]), depth=1)
        elif how == 'wrapped' and args:
            args = [GLib.Variant('v', GLib.Variant.new_tuple(*args))]
        elif how == 'nothing':
            args = []
        # An unchanged argument list (a method without arguments) is a
        # real call.
        klass, bound = self.classify(service, path, method, [])
        if klass == 'appliance' and not self.appliance_allowed():
            return None
        self.number += 1
        return Call(self.number, service, path, method.iface, method.name, args, None,
                    klass, bound, label='wrong signature %s.%s' % (method.iface, method.name))

    def unknown_call(self):
        service, path, ifaces = self.rng.choice(self.objects)
        iface = self.rng.choice(ifaces)
        how = self.rng.choice(['method', 'interface', 'path', 'manager-on-root'])
        method = 'NoSuch' + self.rng.choice(['Method', 'Thing', 'x' * 200])
        if how == 'interface':
            iface, method = 'org.libvirt.GuestFS.NoSuchInterface', 'ReadDir'
        elif how == 'path':
            path = self.values.object_path()
            method = self.rng.choice(['ReadDir', 'Inspect', 'LookupDomain', 'Get'])
            if path in self.services[service].objects:
                path = '/org/libvirt/GuestFS/nope'
        elif how == 'manager-on-root':
            path, iface, method = ROOT_PATH, 'org.libvirt.GuestFS.Manager', 'LookupDomain'
        args = [self.values.value(self.rng.choice(['s', 'a{sv}', 'u']))
                for _ in range(self.rng.randint(0, 2))]
        self.number += 1
        return Call(self.number, service, path, iface, method, args, None, 'probe',
                    PROBE_BOUND, label='unknown (%s)' % how)

    def property_call(self):
        service, path, ifaces = self.rng.choice(self.objects)
        iface = self.rng.choice(ifaces)
        properties = sorted(self.api.interfaces[iface].properties) \
            if iface in self.api.interfaces else []
        name = self.rng.choice(properties + ['NoSuchProperty', '', 'x' * 1000]) \
            if properties else 'NoSuchProperty'
        if self.rng.random() < 0.2:
            iface = self.rng.choice(['', 'org.libvirt.GuestFS.NoSuch',
                                     'org.freedesktop.DBus.Properties'])
        how = self.rng.choice(['Get', 'Get', 'GetAll', 'Set'])
        if how == 'Get':
            args = [GLib.Variant('s', iface), GLib.Variant('s', name)]
        elif how == 'GetAll':
            args = [GLib.Variant('s', iface)]
        else:
            args = [GLib.Variant('s', iface), GLib.Variant('s', name),
                    GLib.Variant('v', self.values.variant_of_random_type(1))]
        self.number += 1
        return Call(self.number, service, path, PROPERTIES_IFACE, how, args, None, 'probe',
                    PROBE_BOUND, label='Properties.%s' % how)

    def standard_call(self):
        service, path, _ = self.rng.choice(self.objects)
        path = self.rng.choice([path, ROOT_PATH, '/', '/org/libvirt'])
        iface, method = self.rng.choice([
            ('org.freedesktop.DBus.Introspectable', 'Introspect'),
            ('org.freedesktop.DBus.Peer', 'Ping'),
            ('org.freedesktop.DBus.ObjectManager', 'GetManagedObjects')])
        self.number += 1
        return Call(self.number, service, path, iface, method, [], None, 'quick', QUICK_BOUND)

    def disconnect(self):
        """Drops a connection with calls in flight, as a client that dies.
        Not one with a call whose fds never move: that call is there to
        see whether the service bounds its wait."""
        stalling = {(c.service, c.connection) for c in self.pending.values()
                    if c.fds is not None and c.fds.stalling}
        busy = sorted({(c.service, c.connection) for c in self.pending.values()} - stalling)
        if not busy:
            return
        service, index = self.rng.choice(busy)
        connection = self.connections[service][index]
        stream = connection.get_stream()
        socket = stream.get_socket() if hasattr(stream, 'get_socket') else None
        if socket is not None:
            socket.shutdown(True, True)
        connection.close(None, None, None)
        self.connections[service][index] = new_connection(self.services[service].address)
        self.stats.outcomes['disconnects'] += 1

    def next_calls(self):
        """Calls to send now (a list, several for a burst)."""
        while self.first_round:
            entry, method = self.first_round.pop()
            call = self.method_call(entry, method, first_round=True)
            if call is not None:
                return [call]
            if self.appliance_window_over():
                continue
            self.first_round.insert(0, (entry, method))
            break
        roll = self.rng.random()
        if roll < 0.66:
            call = self.method_call()
        elif roll < 0.74:
            call = self.wrong_signature()
        elif roll < 0.80:
            call = self.unknown_call()
        elif roll < 0.88:
            call = self.property_call()
        elif roll < 0.91:
            call = self.standard_call()
        elif roll < 0.96:
            return self.burst()
        else:
            self.disconnect()
            return []
        return [call] if call is not None else []

    # --- the run ---------------------------------------------------------------------

    def check_daemons(self):
        alive = True
        for index, service in enumerate(self.services):
            if service.alive() or getattr(service, 'reported_dead', False):
                continue
            service.reported_dead = True
            status = service.daemon.process.returncode
            in_flight = '\n      '.join(c.reproducer() for c in self.pending.values()
                                        if c.service == index)
            self.findings.add('crashes', 'the %s daemon died (status %d) with these calls in '
                              'flight:\n      %s' % (service.name, status, in_flight or '(none)'))
            alive = False
        return alive

    def run(self):
        context = GLib.MainContext.default()
        probers = [Prober(index, service, self.findings, self.stats)
                   for index, service in enumerate(self.services)]
        for prober in probers:
            prober.big_calls = self.big_calls
        self.start = time.monotonic()
        deadline = self.start + self.options.seconds
        for prober in probers:
            prober.start()
        last_check = 0.0
        alive = True
        try:
            while alive and time.monotonic() < deadline:
                work_start = time.monotonic()
                while context.pending():
                    context.iteration(False)
                if len(self.pending) < MAX_IN_FLIGHT:
                    for index, call in enumerate(self.next_calls()):
                        self.send(call, index % CONNECTIONS if index else None)
                if work_start - last_check > 1.0:
                    last_check = work_start
                    self.sweep_hangs()
                    alive = self.check_daemons()
                # Only this loop's long stretches (building a huge value)
                # delay replies noticeably; the rest overlaps the service.
                worked = time.monotonic() - work_start
                if worked > OWN_STALL:
                    self.busy += worked
                if len(self.pending) >= MAX_IN_FLIGHT:
                    self.wait(context, 0.05)
            alive = alive and self.drain(context)
        finally:
            for prober in probers:
                prober.stop()
        return alive

    def wait(self, context, seconds):
        """Blocks for the next event or seconds (not counted as busy)."""
        wakeup = GLib.timeout_source_new(int(seconds * 1000))
        wakeup.set_callback(lambda *args: False)
        wakeup.attach(context)
        context.iteration(True)
        wakeup.destroy()

    def drain(self, context):
        """Waits for the calls in flight, up to their bounds."""
        while self.pending:
            while context.pending():
                context.iteration(False)
            self.sweep_hangs()
            if not self.check_daemons():
                return False
            if all(c.hung for c in self.pending.values()):
                # Their fds are released: a last chance to end.
                end = time.monotonic() + 10
                while self.pending and time.monotonic() < end:
                    self.wait(context, 0.1)
                break
            self.wait(context, 0.1)
        return True

    def close(self):
        for call in self.pending.values():
            if call.fds is not None:
                call.fds.release()
        for connections in self.connections:
            for connection in connections:
                if not connection.is_closed():
                    connection.close_sync(None)
        if self.log:
            self.log.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def check_still_answers(service, findings):
    start = time.monotonic()
    try:
        objects = service.get_managed_objects()
    except Exception as error:  # noqa: BLE001 - any failure is the finding
        findings.add('other', '%s: GetManagedObjects after the run failed: %s'
                     % (service.name, error))
        return
    took = time.monotonic() - start
    if took > QUICK_BOUND:
        findings.add('hangs', '%s: GetManagedObjects after the run took %.1f s'
                     % (service.name, took))
    missing = [p for p in service.objects if p not in objects and p != MANAGER_PATH]
    if missing:
        findings.add('other', '%s: objects gone after the run: %s'
                     % (service.name, ', '.join(missing)))


def main():
    global PROBE_BOUND
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--seconds', type=float, default=180,
                        help='how long to send calls (default 180)')
    parser.add_argument('--seed', type=int, default=None,
                        help='random seed, for a reproducible sequence of calls')
    parser.add_argument('--daemon', default=os.environ.get('LGD_DAEMON'),
                        help='the daemon binary (default $LGD_DAEMON)')
    parser.add_argument('--no-appliance', action='store_true',
                        help='serve test:///default only (no qemu:///system, no appliance)')
    parser.add_argument('--max-items', type=int, default=None,
                        help='cap on the size of huge arrays and option dictionaries '
                        '(to fuzz on past a known stall they cause)')
    parser.add_argument('--probe-bound', type=float, default=PROBE_BOUND,
                        help='seconds a property Get or an unknown method may take '
                        '(default %.0f; a sanitizer build needs more)' % PROBE_BOUND)
    parser.add_argument('--log', help='write every call and its outcome to this file (JSON lines)')
    options = parser.parse_args()
    PROBE_BOUND = options.probe_bound
    if not options.daemon:
        parser.error('no daemon: give --daemon or set LGD_DAEMON')
    if not os.access(options.daemon, os.X_OK):
        parser.error('%s is not an executable' % options.daemon)
    options.daemon = os.path.abspath(options.daemon)
    if options.seed is None:
        options.seed = random.SystemRandom().randrange(1 << 32)
    print('lgd-fuzz: seed %d, %.0f s, daemon %s' % (options.seed, options.seconds,
                                                    options.daemon), flush=True)

    api = fuzz_api.load(INTROSPECTION_DIR)
    target = Target(options.daemon, not options.no_appliance, LAUNCH_TIMEOUT, IDLE_TIMEOUT)
    SERVICE_NAMES[:] = [service.name for service in target.services]
    started = time.monotonic()
    try:
        fuzzer = Fuzzer(options, api, target)
        alive = fuzzer.run()
        findings, stats = fuzzer.findings, fuzzer.stats
        fuzzer.close()
        for service in target.services:
            if not service.alive():
                continue
            check_still_answers(service, findings)
            failure = service.stop()
            if failure:
                findings.add('crashes', '%s: on SIGTERM after the run: %s'
                             % (service.name, failure))
        for service in target.services:
            for line in service.log_findings():
                findings.add('log_lines', line)
        offered = {iface for service in target.services for ifaces in service.objects.values()
                   for iface in ifaces}
        never = sorted({m.qualified for m in api.methods() if m.iface in offered}
                       - stats.called_methods)
        if never:
            findings.add('other', 'methods of the XML never called: ' + ', '.join(never))
        print_summary(options, api, findings, stats, time.monotonic() - started)
        if findings.crashes or findings.log_lines or not alive:
            for service in target.services:
                print('\n--- %s daemon output (last 60 lines) ---' % service.name)
                print('\n'.join(service.log().splitlines()[-60:]))
    finally:
        target.kill()
        target.cleanup()
    if findings.total():
        print('\nlgd-fuzz: FAILED: %d crashes, %d hangs, %d unnamed errors, %d log reports, '
              '%d other (seed %d)' % (len(findings.crashes), len(findings.hangs),
                                      len(findings.unnamed), len(findings.log_lines),
                                      len(findings.other), options.seed))
        return 1
    print('\nlgd-fuzz: PASSED (seed %d)' % options.seed)
    return 0


if __name__ == '__main__':
    sys.exit(main())
