"""Case `inspect`: cold Inspect through libvirt-guestfs-dbus against
virt-inspector on the same domain in the same run, and Inspect answered
from the cache of a warm service (issue 3, point 8; issue 14).

One shut-off domain, lgd-bench-inspect, on qemu:///system with a Debian-like
root image built without an appliance (tests/integration/images.py).

Cold, per run: virt-inspector --no-applications --no-icon -c qemu:///system
-d lgd-bench-inspect as a whole process (the same work as Inspect: no
application list, no icon) (libvirt connection, appliance launch, inspection, its XML;
LIBGUESTFS_BACKEND=libvirt:qemu:///system and force_tcg, as the service's
appliances run), against one Inspect call to a freshly started service whose
appliance is stopped and whose inspection cache is a new empty --cache-dir
(the service's own start-up, until it owns its bus name, is not counted: it
is reported apart). virt-inspector runs once first,
not counted, so that the supermin appliance and the image are in the host's
caches for both; then the two alternate who goes first, --inspect-runs runs
each, and the medians are compared.

Cached: the service of the last cold run, its appliance still up, answers
--inspect-calls more Inspect calls one after the other; p50 and p90 of the
client's round trip. The domain is shut off and its disk unchanged, so the
service answers from its inspection cache, as the API allows: this is the
cost of a cached answer, not of an inspection. For
information, not a target: --inspect-refresh-calls calls with refresh=true
on the same warm appliance, i.e. a real inspection without an appliance
launch.
"""

import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET

from benchlib import (BenchError, GLib, Gio, PrivateBus, Service, bench_image_set,
                      define_one_disk_domain, fmt_table, libguestfs_env, log, machine_load,
                      median, percentile, print_problems, rnd, tail)

NAME = "inspect"
ORDER = 20
DESCRIPTION = "cold Inspect vs virt-inspector --no-applications --no-icon; cached Inspect p50/p90"

URI = "qemu:///system"
DOMAIN = "lgd-bench-inspect"
DOMAIN_IFACE = "org.libvirt.GuestFS.Domain"
INSPECTOR_IFACE = "org.libvirt.GuestFS.Inspector"
HOSTNAME = "lgd-bench-host"

TARGET_COLD_RATIO = 0.8
TARGET_REPEAT_P50_S = 0.020


def add_arguments(parser):
    g = parser.add_argument_group("case inspect")
    g.add_argument("--inspect-runs", type=int, default=5, metavar="R",
                   help="cold runs of each, alternating, median reported (default 5)")
    g.add_argument("--inspect-calls", type=int, default=50, metavar="N",
                   help="repeated Inspect calls on a warm service (default 50)")
    g.add_argument("--inspect-refresh-calls", type=int, default=10, metavar="N",
                   help="Inspect calls with refresh=true on the warm appliance, reported "
                        "for information (default 10; 0: none)")


# ---------------------------------------------------------------- measuring


def run_virt_inspector(label):
    argv = ["virt-inspector", "--no-applications", "--no-icon", "-c", URI, "-d", DOMAIN]
    t0 = time.monotonic()
    r = subprocess.run(argv, env=libguestfs_env(), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t = time.monotonic() - t0
    if r.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed (status {r.returncode}):\n{r.stderr[-2000:]}")
    try:
        root = ET.fromstring(r.stdout)
        found = {"distro": root.findtext("operatingsystem/distro"),
                 "hostname": root.findtext("operatingsystem/hostname")}
    except ET.ParseError as e:
        raise BenchError(f"virt-inspector printed no valid XML ({e}):\n{r.stdout[:1000]}")
    if found != {"distro": "debian", "hostname": HOSTNAME}:
        raise BenchError(f"virt-inspector found {found}, expected debian / {HOSTNAME}")
    log(f"bench: inspect {label} virt-inspector: {t:.2f} s")
    return {"total_s": t}


def _check_systems(systems, who):
    if len(systems) != 1 or systems[0].get("distro") != "debian" \
            or systems[0].get("hostname") != HOSTNAME:
        raise BenchError(f"{who} returned {systems!r}, expected one debian system "
                         f"with hostname {HOSTNAME}")


def timed_inspect(svc, path):
    """One Inspect, sent asynchronously so that ApplianceState changes are
    stamped as they arrive; returns (seconds, systems, {state: seconds after send})."""
    conn = svc.bus.conn
    states = {}
    t0 = [None]

    def on_changed(c, sender, p, iface, member, params, *ud):
        iface_name, changed, _ = params.unpack()
        if iface_name == DOMAIN_IFACE and "ApplianceState" in changed:
            states.setdefault(changed["ApplianceState"], time.monotonic() - t0[0])

    sub = conn.signal_subscribe(None, "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                path, None, Gio.DBusSignalFlags.NONE, on_changed)
    result = {}

    def done(c, res):
        result["t"] = time.monotonic()
        try:
            result["reply"] = c.call_finish(res)
        except GLib.Error as e:
            result["error"] = e

    try:
        mctx = GLib.MainContext.default()
        # The subscription is in place on the bus once a round trip has come back.
        conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                       "GetId", None, None, Gio.DBusCallFlags.NONE, -1, None)
        while mctx.pending():
            mctx.iteration(False)
        t0[0] = time.monotonic()
        conn.call("org.libvirt.GuestFS", path, INSPECTOR_IFACE, "Inspect",
                  GLib.Variant("(a{sv})", ({},)), GLib.VariantType("(aa{sv})"),
                  Gio.DBusCallFlags.NONE, 900 * 1000, None, done)
        while "t" not in result:
            mctx.iteration(True)
            if svc.proc.poll() is not None and "t" not in result:
                raise BenchError(f"{svc.label} died during Inspect; log tail:\n"
                                 f"{tail(svc.logfile)}")
        # PropertiesChanged sent before the reply arrive before it; dispatch them.
        while mctx.pending():
            mctx.iteration(False)
    finally:
        conn.signal_unsubscribe(sub)
    if "error" in result:
        e = result["error"]
        name = Gio.DBusError.get_remote_error(e)
        raise BenchError(f"Inspect failed: {name}: {e.message}; log tail:\n{tail(svc.logfile)}")
    systems = result["reply"].unpack()[0]
    _check_systems(systems, "Inspect")
    return result["t"] - t0[0], systems, states


def measure_cold_ours(ctx, bus, label, keep=False):
    """A fresh service, one cold Inspect. Returns (run, service if KEEP else None)."""
    # A cache of its own, empty: the cache survives restarts of the service.
    cache_dir = tempfile.mkdtemp(prefix="cache-", dir=bus.dir)
    svc = Service(ctx, bus, f"ours-{label}", ["--idle-timeout", "600", "--cache-dir", cache_dir])
    path = svc.lookup_domain(DOMAIN)
    state = svc.get_property(path, DOMAIN_IFACE, "ApplianceState")
    if state != "stopped":
        raise BenchError(f"fresh service: ApplianceState is {state!r}, expected 'stopped'")
    t, systems, states = timed_inspect(svc, path)
    if "running" not in states:
        raise BenchError(f"cold Inspect took {t:.3f} s and launched no appliance (states seen: "
                         f"{states}): not a cold call; log tail:\n{tail(svc.logfile)}")
    run = {"total_s": t, "service_start_s": svc.t_owner - svc.t_start,
           "starting_at_s": states.get("starting"), "running_at_s": states.get("running")}
    log(f"bench: inspect {label} ours: {t:.2f} s (appliance running at "
        f"{_s(run['running_at_s'])}, service start {run['service_start_s']:.2f} s, not counted)")
    if keep:
        return run, svc, path
    status = svc.stop()
    if status != 0:
        raise BenchError(f"libvirt-guestfs-dbus exited with status {status} on SIGTERM; "
                         f"log tail:\n{tail(svc.logfile)}")
    return run, None, None


def repeated_ours(svc, path, n, refresh=False):
    times = []
    opts = {"refresh": GLib.Variant("b", True)} if refresh else {}
    for _ in range(n):
        t0 = time.monotonic()
        reply = svc.call(path, INSPECTOR_IFACE, "Inspect", GLib.Variant("(a{sv})", (opts,)),
                         "(aa{sv})")
        times.append(time.monotonic() - t0)
        _check_systems(reply.unpack()[0], "repeated Inspect")
    return times


# ---------------------------------------------------------------- report


def _s(x, unit=" s", nd=2):
    return "-" if x is None else f"{x:.{nd}f}{unit}"


def _ms(x):
    return "-" if x is None else f"{x * 1000:.2f} ms"


def run(ctx):
    args = ctx.args
    if args.inspect_runs < 1 or args.inspect_calls < 1 or args.inspect_refresh_calls < 0:
        raise BenchError("--inspect-runs and --inspect-calls must be at least 1, "
                         "--inspect-refresh-calls at least 0")
    ctx.ensure_daemons()
    _, images = bench_image_set(ctx)
    root = images.debian_root(name="root.img", hostname=HOSTNAME)
    define_one_disk_domain(ctx, URI, DOMAIN, root.path)
    print(f"domain {DOMAIN}: shut off, one raw disk {root.path} "
          f"({root.size // 2**20} MiB ext4 Debian 12 look-alike, hostname {HOSTNAME})")

    load_before = machine_load()
    bus = PrivateBus(ctx.cleanup, "session", "inspect")

    # Not counted: builds/validates each side's supermin appliance (the
    # service builds its own under --force-tcg, on an uncompressed kernel)
    # and reads the image once.
    warm = run_virt_inspector("warm-up")
    warm_ours, _, _ = measure_cold_ours(ctx, bus, "warm-up")
    theirs, ours = [], []
    svc = path = None
    n = args.inspect_runs
    for rep in range(n):
        last = rep == n - 1
        order = ["theirs", "ours"] if rep % 2 == 0 else ["ours", "theirs"]
        for who in order:
            if who == "theirs":
                theirs.append(run_virt_inspector(f"run {rep + 1}/{n}"))
            else:
                r, s, p = measure_cold_ours(ctx, bus, f"run {rep + 1}/{n}", keep=last)
                ours.append(r)
                if last:
                    svc, path = s, p

    # Repeated, on the warm service of the last cold run.
    rep_times = repeated_ours(svc, path, args.inspect_calls)
    refresh_times = repeated_ours(svc, path, args.inspect_refresh_calls, refresh=True)
    state_after = svc.get_property(path, DOMAIN_IFACE, "ApplianceState")
    status = svc.stop()
    load_after = machine_load()
    problems = []
    if status != 0:
        problems.append(f"libvirt-guestfs-dbus exited with status {status} on SIGTERM")

    med_ours = median([r["total_s"] for r in ours])
    med_theirs = median([r["total_s"] for r in theirs])
    ratio = med_ours / med_theirs
    p50 = percentile(rep_times, 50)
    p90 = percentile(rep_times, 90)
    launch_med = median([r["running_at_s"] for r in ours])
    after_med = median([r["total_s"] - r["running_at_s"] for r in ours])

    print(f"cold: median of {n} runs each, alternating who goes first "
          f"(after one warm-up each, not counted: virt-inspector {warm['total_s']:.2f} s, "
          f"ours {warm_ours['total_s']:.2f} s)")
    rows = [
        ["cold Inspect (fresh service, appliance stopped)", _s(med_ours)],
        ["  of which until ApplianceState=running", _s(launch_med)],
        ["  after running: inspection + reply", _s(after_med)],
        ["cold virt-inspector --no-applications --no-icon (whole process)", _s(med_theirs)],
        ["ratio ours / virt-inspector", f"{ratio:.2f}"],
        [f"cached Inspect p50 ({args.inspect_calls} calls, answered from the cache)", _ms(p50)],
        ["cached Inspect p90", _ms(p90)],
        ["cached Inspect min / max", f"{_ms(min(rep_times))} / {_ms(max(rep_times))}"],
    ]
    if refresh_times:
        rows.append([f"Inspect refresh=true p50 ({len(refresh_times)} calls, warm appliance; "
                     f"information)", _ms(percentile(refresh_times, 50))])
    print(fmt_table(rows, ["", "value"]))
    print()
    print("runs:")
    print("  ours          " + ", ".join(_s(r["total_s"]) for r in ours)
          + "   (running at " + ", ".join(_s(r["running_at_s"]) for r in ours) + ")")
    print("  virt-inspector " + ", ".join(_s(r["total_s"]) for r in theirs))
    print("  service start until bus name owned (not counted): "
          + ", ".join(_s(r["service_start_s"], nd=3) for r in ours))
    print(f"  appliance after the repeated calls: {state_after}")

    cold_ok = ratio <= TARGET_COLD_RATIO
    rep_ok = p50 < TARGET_REPEAT_P50_S
    target = cold_ok and rep_ok
    print()
    print(f"target: cold <= {TARGET_COLD_RATIO}x virt-inspector: {'yes' if cold_ok else 'NO'} "
          f"({ratio:.2f}x); cached p50 < {TARGET_REPEAT_P50_S * 1000:.0f} ms: "
          f"{'yes' if rep_ok else 'NO'} ({p50 * 1000:.2f} ms) => {'MET' if target else 'MISSED'}")
    print_problems(problems, load_before, load_after)

    return {
        "domain": DOMAIN,
        "uri": URI,
        "runs": n,
        "calls": args.inspect_calls,
        "cold_ours_s": rnd(med_ours),
        "cold_ours_running_at_s": rnd(launch_med),
        "cold_virt_inspector_s": rnd(med_theirs),
        "cold_ratio": rnd(ratio, 3),
        "repeat_p50_ms": rnd(p50 * 1000, 3),
        "repeat_p90_ms": rnd(p90 * 1000, 3),
        "refresh_p50_ms": rnd(percentile(refresh_times, 50) * 1000, 3) if refresh_times else None,
        "runs_ours_s": [rnd(r["total_s"]) for r in ours],
        "runs_virt_inspector_s": [rnd(r["total_s"]) for r in theirs],
        "warmup_virt_inspector_s": rnd(warm["total_s"]),
        "warmup_ours_s": rnd(warm_ours["total_s"]),
        "target_cold_met": cold_ok,
        "target_repeat_met": rep_ok,
        "target_met": target,
        "machine": {"before": load_before, "after": load_after},
        "problems": problems,
    }
