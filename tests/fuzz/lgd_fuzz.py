#!/usr/bin/python3
# A D-Bus fuzzer for libvirt-guestfs-dbus, driven by introspection/*.xml.
#
# It starts the daemon on a private bus (test:///default, and qemu:///system
# with a small domain and volume of its own unless --no-appliance), then
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
#       [--seconds 180] [--seed S] [--no-appliance] [--log calls.jsonl]
#
# A call is reproduced from the summary's line for it (method, object,
# arguments, fds); a seed replays the same sequence of generated calls
# (timing, and so interleaving, differs between runs).

import argparse
import collections
import json
import os
import random
import sys
import tempfile
import threading
import time

from gi.repository import Gio, GLib

import fuzz_api
import fuzz_values
from fuzz_target import TEST_URI, Target

HERE = os.path.dirname(os.path.abspath(__file__))
INTROSPECTION_DIR = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'introspection')

BUS_NAME = 'org.libvirt.GuestFS'
MANAGER_PATH = '/org/libvirt/GuestFS/Manager'
ROOT_PATH = '/org/libvirt/GuestFS'
PROPERTIES_IFACE = 'org.freedesktop.DBus.Properties'
SERVICE_ERROR_PREFIX = 'org.libvirt.GuestFS.Error.'
STANDARD_ERROR_PREFIX = 'org.freedesktop.DBus.Error.'
# Standard errors that say the service gave no answer.
NO_ANSWER_ERRORS = {'org.freedesktop.DBus.Error.NoReply',
                    'org.freedesktop.DBus.Error.ServiceUnknown',
                    'org.freedesktop.DBus.Error.NameHasNoOwner',
                    'org.freedesktop.DBus.Error.Disconnected',
                    'org.freedesktop.DBus.Error.Timeout',
                    'org.freedesktop.DBus.Error.TimedOut'}
# Interfaces whose calls may need the object's appliance.
APPLIANCE_IFACES = {'org.libvirt.GuestFS.Files', 'org.libvirt.GuestFS.Inspector'}

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

CONNECTIONS = 4
MAX_IN_FLIGHT = 24
MAX_APPLIANCE_IN_FLIGHT = 3
# Appliance calls stop after this fraction of the run, so that the run
# ends close to --seconds.
APPLIANCE_WINDOW = 0.6


class Call:
    """One method call and what became of it."""

    def __init__(self, number, path, iface, method, args, fds=None, klass='quick',
                 bound=QUICK_BOUND, label=None):
        self.number = number
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
        self.hung = False

    def params(self):
        return GLib.Variant.new_tuple(*self.args)

    def reproducer(self):
        text = '#%d %s.%s on %s args %s' % (
            self.number, self.iface, self.method, self.path,
            fuzz_values.summarize(self.params()))
        if self.fds is not None:
            text += ' fds: ' + self.fds.description
        return text


class Findings:
    """What fails the run, thread-safe (the probe thread adds hangs)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.crashes = []
        self.hangs = []
        self.unnamed = []
        self.log_lines = []
        self.other = []

    def add(self, kind, text):
        with self.lock:
            getattr(self, kind).append(text)

    def total(self):
        return (len(self.crashes) + len(self.hangs) + len(self.unnamed)
                + len(self.log_lines) + len(self.other))


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.calls = 0
        self.outcomes = collections.Counter()
        self.per_method = collections.defaultdict(list)   # label -> [latency]
        self.slowest = {}                                 # label -> (latency, reproducer)
        self.called_methods = set()

    def record(self, call):
        with self.lock:
            self.calls += 1
            self.outcomes[call.outcome] += 1
            self.per_method[call.label].append(call.latency)
            if call.latency >= self.slowest.get(call.label, (-1.0, ''))[0]:
                self.slowest[call.label] = (call.latency, call.reproducer())


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


class Prober(threading.Thread):
    """Property Gets and unknown methods, one after another on a
    connection of their own, each of which must be answered within
    PROBE_BOUND while the fuzzer's other calls are in flight."""

    def __init__(self, address, object_paths, findings, stats):
        super().__init__(daemon=True)
        self.connection = new_connection(address)
        self.findings = findings
        self.stats = stats
        self.stop_event = threading.Event()
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
        while not self.stop_event.wait(0.25):
            for path, iface, method, args in self.probes:
                self.probe(path, iface, method, args)

    def probe(self, path, iface, method, args):
        self.number += 1
        call = Call(self.number, path, iface, method,
                    [args.get_child_value(i) for i in range(args.n_children())] if args else [],
                    klass='probe', bound=PROBE_BOUND, label='probe %s.%s' % (iface, method))
        start = time.monotonic()
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
            self.findings.add('hangs', 'probe %s answered after %.2f s (%s; bound %.0f s)'
                              % (call.reproducer(), call.latency, call.outcome, PROBE_BOUND))

    def stop(self):
        self.stop_event.set()
        self.join(60)
        self.connection.close_sync(None)


class Fuzzer:
    def __init__(self, options, api, target):
        self.options = options
        self.api = api
        self.target = target
        self.rng = random.Random(options.seed)
        self.objects = target.objects()            # path -> [interfaces]
        self.values = fuzz_values.Values(self.rng, api, sorted(self.objects))
        self.address = target.bus.address
        self.connections = [new_connection(self.address) for _ in range(CONNECTIONS)]
        self.pending = {}
        self.number = 0
        self.findings = Findings()
        self.stats = Stats()
        self.busy = 0.0          # seconds this loop spent working, not waiting
        self.scratch = tempfile.mkdtemp(prefix='lgd-fuzz-')
        self.log = open(options.log, 'w') if options.log else None
        self.start = None
        # Every (object, method) once first, in a random order, so that a
        # short run still reaches every method the XML declares.
        self.first_round = [(path, method) for path in sorted(self.objects)
                            for iface in self.objects[path]
                            if iface in api.interfaces
                            for method in api.interfaces[iface].methods.values()]
        self.rng.shuffle(self.first_round)

    # --- sending -----------------------------------------------------------------

    def connection(self, index=None):
        if index is None:
            index = self.rng.randrange(CONNECTIONS)
        if self.connections[index].is_closed():
            self.connections[index] = new_connection(self.address)
        return index, self.connections[index]

    def send(self, call, index=None):
        index, connection = self.connection(index)
        call.connection = index
        call.sent = time.monotonic()
        call.busy_at_send = self.busy
        self.pending[call.number] = call
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
                                       'latency': round(call.latency, 3)}) + '\n')
        outcome = call.outcome
        if outcome in NO_ANSWER_ERRORS or outcome == 'local:timeout':
            self.findings.add('hangs', '%s: no reply (%s) after %.1f s'
                              % (call.reproducer(), outcome, call.latency))
        elif outcome.startswith('local:') and outcome != 'local:closed':
            self.findings.add('other', '%s: %s' % (call.reproducer(), outcome))
        elif outcome != 'ok' and not outcome.startswith('local:') and unnamed_error(outcome):
            self.findings.add('unnamed', '%s: %s' % (call.reproducer(), outcome))
        if waited > call.bound and not call.hung and outcome != 'local:closed':
            self.findings.add('hangs', '%s: answered (%s) after %.1f s, bound %.0f s'
                              % (call.reproducer(), outcome, waited, call.bound))

    def sweep_hangs(self):
        """Calls past their bound are hangs; their fds are let go so that
        the service can end them."""
        now = time.monotonic()
        for call in list(self.pending.values()):
            waited = now - call.sent - (self.busy - call.busy_at_send)
            if not call.hung and waited > call.bound:
                call.hung = True
                self.findings.add('hangs', '%s: no reply within %.0f s (%s call)'
                                  % (call.reproducer(), call.bound, call.klass))
                if call.fds is not None:
                    call.fds.release()

    # --- what to call --------------------------------------------------------------

    def appliance_allowed(self):
        elapsed = time.monotonic() - self.start
        in_flight = sum(1 for c in self.pending.values() if c.klass == 'appliance')
        return (elapsed < APPLIANCE_WINDOW * self.options.seconds
                and in_flight < MAX_APPLIANCE_IN_FLIGHT)

    def classify(self, path, method, args):
        """(class, bound) of a call."""
        if path in self.target.appliance_objects:
            if method.iface in APPLIANCE_IFACES or method.name == 'StartAppliance':
                return 'appliance', APPLIANCE_BOUND
            if method.unix_fd:
                return 'transfer', TRANSFER_BOUND
        if method.name == 'InspectDomains' and args[0] is not None:
            listed = args[0]
            count = listed.n_children()
            sample = [listed.get_child_value(i).get_string() for i in range(min(count, 1000))]
            if set(sample) & self.target.appliance_objects:
                return 'appliance', APPLIANCE_BOUND
        return 'quick', QUICK_BOUND

    def method_call(self, path=None, method=None):
        if path is None:
            path = self.rng.choice(sorted(self.objects))
            ifaces = [i for i in self.objects[path] if i in self.api.interfaces
                      and self.api.interfaces[i].methods]
            if not ifaces:
                return None
            iface = self.api.interfaces[self.rng.choice(ifaces)]
            method = iface.methods[self.rng.choice(sorted(iface.methods))]
        plausible = self.rng.random() < 0.3
        args = self.values.arguments(method, plausible=plausible)
        klass, bound = self.classify(path, method, args)
        if klass == 'appliance' and not self.appliance_allowed():
            return None
        fds = None
        for position, (name, sig) in enumerate(method.in_args):
            if sig == 'h':
                direction = 'sink' if name == 'sink' else 'source'
                fds = fuzz_values.make_fds(self.rng, direction, self.scratch)
                args[position] = GLib.Variant('h', fds.handle)
        self.number += 1
        self.stats.called_methods.add(method.qualified)
        return Call(self.number, path, method.iface, method.name, args, fds, klass, bound)

    def wrong_signature(self):
        path = self.rng.choice(sorted(self.objects))
        ifaces = [i for i in self.objects[path] if i in self.api.interfaces]
        iface = self.api.interfaces[self.rng.choice(ifaces)]
        if not iface.methods:
            return None
        method = iface.methods[self.rng.choice(sorted(iface.methods))]
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
        self.number += 1
        klass, bound = self.classify(path, method, [None] * len(method.in_args))
        if klass == 'appliance' and not self.appliance_allowed():
            return None
        return Call(self.number, path, method.iface, method.name, args, None, klass, bound,
                    label='wrong signature %s.%s' % (method.iface, method.name))

    def unknown_call(self):
        path = self.rng.choice(sorted(self.objects))
        iface = self.rng.choice(self.objects[path])
        how = self.rng.choice(['method', 'interface', 'path', 'manager-on-root'])
        method = 'NoSuch' + self.rng.choice(['Method', 'Thing', 'x' * 200])
        if how == 'interface':
            iface, method = 'org.libvirt.GuestFS.NoSuchInterface', 'ReadDir'
        elif how == 'path':
            path = self.values.object_path()
            method = self.rng.choice(['ReadDir', 'Inspect', 'LookupDomain', 'Get'])
        elif how == 'manager-on-root':
            path, iface, method = ROOT_PATH, 'org.libvirt.GuestFS.Manager', 'LookupDomain'
        args = [self.values.value(self.rng.choice(['s', 'a{sv}', 'u']))
                for _ in range(self.rng.randint(0, 2))]
        self.number += 1
        return Call(self.number, path, iface, method, args, None, 'probe', PROBE_BOUND,
                    label='unknown (%s)' % how)

    def property_call(self):
        path = self.rng.choice(sorted(self.objects))
        ifaces = self.objects[path]
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
        return Call(self.number, path, PROPERTIES_IFACE, how, args, None, 'probe',
                    PROBE_BOUND, label='Properties.%s' % how)

    def standard_call(self):
        path = self.rng.choice(sorted(self.objects) + [ROOT_PATH, '/', '/org/libvirt'])
        iface, method = self.rng.choice([
            ('org.freedesktop.DBus.Introspectable', 'Introspect'),
            ('org.freedesktop.DBus.Peer', 'Ping'),
            ('org.freedesktop.DBus.ObjectManager', 'GetManagedObjects')])
        self.number += 1
        return Call(self.number, path, iface, method, [], None, 'quick', QUICK_BOUND)

    def disconnect(self):
        """Drops a connection with calls in flight, as a client that dies."""
        busy = sorted({c.connection for c in self.pending.values()})
        if not busy:
            return
        index = self.rng.choice(busy)
        connection = self.connections[index]
        stream = connection.get_stream()
        socket = stream.get_socket() if hasattr(stream, 'get_socket') else None
        if socket is not None:
            socket.shutdown(True, True)
        connection.close(None, None, None)
        self.stats.outcomes['disconnects'] += 1

    def next_calls(self):
        """Calls to send now (a list, several for a burst)."""
        while self.first_round:
            path, method = self.first_round.pop()
            call = self.method_call(path, method)
            if call is not None:
                return [call]
            if self.appliance_window_over():
                continue
            self.first_round.insert(0, (path, method))
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
            # Several at once from every connection: same method, same object.
            first = self.method_call()
            if first is None or first.klass == 'appliance':
                return [first] if first else []
            burst = [first]
            for _ in range(self.rng.randint(2, 7)):
                self.number += 1
                burst.append(Call(self.number, first.path, first.iface, first.method,
                                  first.args, None if first.fds is None else
                                  fuzz_values.make_fds(self.rng, 'sink' if first.method in
                                                       ('Download', 'TarOut') else 'source',
                                                       self.scratch),
                                  first.klass, first.bound))
                if burst[-1].fds is not None:
                    position = [s for _, s in self.api.interfaces[first.iface]
                                .methods[first.method].in_args].index('h')
                    burst[-1].args = list(first.args)
                    burst[-1].args[position] = GLib.Variant('h', burst[-1].fds.handle)
            return burst
        else:
            self.disconnect()
            return []
        return [call] if call is not None else []

    def appliance_window_over(self):
        return time.monotonic() - self.start >= APPLIANCE_WINDOW * self.options.seconds

    # --- the run ---------------------------------------------------------------------

    def check_daemon(self):
        if not self.target.daemon_alive():
            status = self.target.daemon.process.returncode
            in_flight = '\n      '.join(c.reproducer() for c in self.pending.values())
            self.findings.add('crashes', 'the daemon died (status %d) with these calls in '
                              'flight:\n      %s' % (status, in_flight or '(none)'))
            return False
        return True

    def run(self):
        context = GLib.MainContext.default()
        prober = Prober(self.address, sorted(self.objects), self.findings, self.stats)
        self.start = time.monotonic()
        deadline = self.start + self.options.seconds
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
                    alive = self.check_daemon()
                self.busy += time.monotonic() - work_start
                if len(self.pending) >= MAX_IN_FLIGHT:
                    self.wait(context, 0.05)
            alive = alive and self.drain(context)
        finally:
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
            if not self.check_daemon():
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
        for connection in self.connections:
            if not connection.is_closed():
                connection.close_sync(None)
        if self.log:
            self.log.close()
        import shutil
        shutil.rmtree(self.scratch, ignore_errors=True)


def check_still_answers(target, findings):
    start = time.monotonic()
    try:
        objects = target.client.get_managed_objects()
    except Exception as error:  # noqa: BLE001 - any failure is the finding
        findings.add('other', 'GetManagedObjects after the run failed: %s' % error)
        return
    took = time.monotonic() - start
    if took > QUICK_BOUND:
        findings.add('hangs', 'GetManagedObjects after the run took %.1f s' % took)
    missing = [p for p in target.fuzz_objects if p not in objects]
    if missing:
        findings.add('other', 'objects gone after the run: %s' % ', '.join(missing))


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def print_summary(options, api, fuzzer, findings, stats, elapsed):
    out = sys.stdout
    print('\n=== lgd-fuzz summary: seed %d, %.0f s, %s ===' % (
        options.seed, elapsed, 'test:///default' + ('' if options.no_appliance
                                                     else ' + qemu:///system')), file=out)
    made = stats.calls
    ok = stats.outcomes.get('ok', 0)
    print('calls made: %d (%d ok, %d abrupt disconnects)'
          % (made, ok, stats.outcomes.get('disconnects', 0)), file=out)
    print('errors by name:', file=out)
    for name, count in sorted(stats.outcomes.items(), key=lambda kv: -kv[1]):
        if name not in ('ok', 'disconnects'):
            note = ''
            if name.startswith(SERVICE_ERROR_PREFIX) and name not in api.error_names:
                note = '  (not named in introspection/*.xml)'
            print('  %7d  %s%s' % (count, name, note), file=out)
    print('crashes: %d' % len(findings.crashes), file=out)
    for text in findings.crashes:
        print('  - ' + text, file=out)
    print('hangs: %d' % len(findings.hangs), file=out)
    for text in findings.hangs[:40]:
        print('  - ' + text, file=out)
    if len(findings.hangs) > 40:
        print('  ... and %d more' % (len(findings.hangs) - 40), file=out)
    print('errors not named org.libvirt.GuestFS.Error.* or org.freedesktop.DBus.Error.*: %d'
          % len(findings.unnamed), file=out)
    for text in findings.unnamed[:40]:
        print('  - ' + text, file=out)
    print('sanitizer reports and GLib criticals in the daemon output: %d'
          % len(findings.log_lines), file=out)
    for text in findings.log_lines[:40]:
        print('  - ' + text, file=out)
    if findings.other:
        print('other failures: %d' % len(findings.other), file=out)
        for text in findings.other[:40]:
            print('  - ' + text, file=out)
    print('slowest replies per method (max, median, calls):', file=out)
    rows = sorted(stats.per_method.items(), key=lambda kv: -max(kv[1]))
    for label, latencies in rows[:25]:
        print('  %8.2f s %7.3f s %6d  %s' % (max(latencies), percentile(latencies, 0.5),
                                             len(latencies), label), file=out)
        print('             slowest: %s' % stats.slowest[label][1][:300], file=out)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--seconds', type=float, default=180,
                        help='how long to send calls (default 180)')
    parser.add_argument('--seed', type=int, default=None,
                        help='random seed, for a reproducible sequence of calls')
    parser.add_argument('--daemon', default=os.environ.get('LGD_DAEMON'),
                        help='the daemon binary (default $LGD_DAEMON)')
    parser.add_argument('--no-appliance', action='store_true',
                        help='serve test:///default only (no qemu:///system, no appliance)')
    parser.add_argument('--log', help='write every call and its outcome to this file (JSON lines)')
    options = parser.parse_args()
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
    started = time.monotonic()
    fuzzer = None
    try:
        fuzzer = Fuzzer(options, api, target)
        alive = fuzzer.run()
        findings, stats = fuzzer.findings, fuzzer.stats
        if alive:
            check_still_answers(target, findings)
        fuzzer.close()
        if alive:
            failure = target.stop()
            if failure:
                findings.add('crashes', 'on SIGTERM after the run: ' + failure)
        for line in target.log_findings():
            findings.add('log_lines', line)
        never = sorted({m.qualified for m in api.methods()
                        if any(m.iface in ifaces for ifaces in target.objects().values())}
                       - stats.called_methods)
        if never:
            findings.add('other', 'methods of the XML never called: ' + ', '.join(never))
        print_summary(options, api, fuzzer, findings, stats, time.monotonic() - started)
        if findings.crashes or findings.log_lines:
            print('\n--- daemon output (last 60 lines) ---')
            print('\n'.join(target.daemon_log().splitlines()[-60:]))
    finally:
        if target.daemon.is_running():
            target.daemon.process.kill()
            target.daemon.process.wait()
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
