# What a fuzz run found and how it is summed up: the findings that fail
# the run (thread-safe: the probe threads add to them), call statistics,
# and the summary printed at the end (see lgd_fuzz.py).

import collections
import sys
import threading

SERVICE_ERROR_PREFIX = 'org.libvirt.GuestFS.Error.'
STANDARD_ERROR_PREFIX = 'org.freedesktop.DBus.Error.'
# The names of the fuzzed services, by index (filled in by lgd_fuzz.main).
SERVICE_NAMES = []


class Findings:
    """What fails the run, thread-safe (the probe threads add hangs)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.crashes = []
        self.hangs = []
        # (service, start, end, suspects): a probe waited past PROBE_BOUND,
        # so the service's main loop did not run from start to end; the
        # calls that hung meanwhile are that stall's consequences.
        self.stalls = []
        self.hang_windows = []   # (service, sent, deadline) of each hang
        self.unnamed = []
        self.log_lines = []
        self.other = []

    def add(self, kind, text):
        with self.lock:
            getattr(self, kind).append(text)
            if kind == 'hangs':
                self.hang_windows.append(None)

    def add_hang(self, call, text):
        with self.lock:
            self.hangs.append(text)
            self.hang_windows.append((call.service, call.sent, call.sent + call.bound))

    def add_stall(self, service, start, end, text, suspects):
        with self.lock:
            self.hangs.append(text)
            self.hang_windows.append(None)
            self.stalls.append((service, start, end, suspects))

    def during_stall(self, window):
        if window is None:
            return False
        service, sent, deadline = window
        return any(s == service and sent < end and deadline > start
                   for s, start, end, _ in self.stalls)

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


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def print_summary(options, api, findings, stats, elapsed):
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
    listed = [(text, window) for text, window in zip(findings.hangs, findings.hang_windows)
              if not findings.during_stall(window)]
    for service, start, end, suspects in findings.stalls:
        for suspect in suspects:
            listed.append(('  suspect of the %.1f s stall of %s: %s'
                           % (end - start, SERVICE_NAMES[service], suspect), None))
    for text, _ in listed[:40]:
        print('  - ' + text, file=out)
    if len(listed) > 40:
        print('  ... and %d more' % (len(listed) - 40), file=out)
    consequences = sum(1 for window in findings.hang_windows if findings.during_stall(window))
    if consequences:
        print('  (%d more calls hung while a main loop stalled: consequences, not listed)'
              % consequences, file=out)
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
