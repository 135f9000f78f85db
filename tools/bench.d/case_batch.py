"""Case `batch`: Manager.InspectDomains over many domains, with a shared
appliance and with one appliance per domain, against virt-inspector run
once per domain and against a single virt-inspector run; and Inspect
answered from the persistent cache after a restart of the service
(issue 6, point 6).

--batch-domains (default 10) shut-off domains, lgd-bench-batch-NN, on
qemu:///system, each with its own raw Debian-like root image built without
an appliance (tests/integration/images.py) and its own host name, so that
every result shows whose it is.

virt-inspector runs as `virt-inspector --no-applications --no-icon` (the
same work as Inspect: no application list, no icon).

Measured, in this order, after one virt-inspector run that is not counted
(it builds or checks the supermin appliance and puts it in the page cache):
  - --batch-runs times, alternating who goes first: one virt-inspector -c
    qemu:///system -d lgd-bench-batch-01 (whole process), and
    InspectDomains over all domains, sharing on (the session bus default:
    one shared appliance per processor, all at once),
    refresh=true, on a service started with a fresh --cache-dir (the
    service's own start-up is not counted); the medians are compared;
  - once: the same with --no-batch-inspection (one appliance per domain, as
    many at once as the default --max-appliances allows; --idle-timeout 2 so
    that a finished domain's idle appliance frees its slot at once), against
    virt-inspector over every domain at the same concurrency (as many
    processes at once as the service ran appliances at once);
  - virt-inspector once per domain, one after the other (for information);
  - the service restarted on the cache the sharing-off run filled: the
    start-up properties (one GetManagedObjects), then --batch-cached-calls
    Inspect calls round-robin over the domains, p50 and p90 of the round
    trip; no appliance may start.
The appliances that ran are sampled every 0.5 s from libvirt (guestfs-*
domains whose definition names the bench images). virt-inspector runs with
LIBGUESTFS_BACKEND=libvirt:qemu:///system and force_tcg, as the service's
appliances (--force-tcg).

Targets (issue 6): InspectDomains over the domains with sharing on at most
2x one virt-inspector run; cached Inspect p50 under 50 ms.
"""

import os
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

from benchlib import (BenchError, GLib, PrivateBus, SERVICE_MANAGER, Service, bench_image_set,
                      define_one_disk_domain, fmt_table, libguestfs_env, log, machine_load,
                      median, open_libvirt, percentile, print_problems, rnd)

NAME = "batch"
ORDER = 40
DESCRIPTION = "InspectDomains over 10 domains (shared / apart) vs virt-inspector; cached Inspect p50"

URI = "qemu:///system"
DOMAIN_IFACE = "org.libvirt.GuestFS.Domain"
INSPECTOR_IFACE = "org.libvirt.GuestFS.Inspector"
MANAGER_IFACE = "org.libvirt.GuestFS.Manager"

TARGET_BATCH_RATIO = 2.0
TARGET_CACHED_P50_S = 0.050


def add_arguments(parser):
    g = parser.add_argument_group("case batch")
    g.add_argument("--batch-domains", type=int, default=10, metavar="N",
                   help="domains inspected together (default 10)")
    g.add_argument("--batch-runs", type=int, default=5, metavar="R",
                   help="alternating runs of one virt-inspector and of the shared "
                        "InspectDomains, medians compared (default 5)")
    g.add_argument("--batch-cached-calls", type=int, default=20, metavar="N",
                   help="Inspect calls answered from the cache after a restart (default 20)")


# ---------------------------------------------------------------- measuring


def wait_for_libvirtd(timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            open_libvirt(URI).close()
            return
        except BenchError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


class ApplianceSampler:
    """Samples, in a thread of its own (with its own libvirt connection),
    the running guestfs-* domains whose definition names one of MARKERS."""

    def __init__(self, markers, interval=0.5):
        # any of: the images (an appliance that opens them itself) or the
        # services' directory (the NBD socket of a shut-off domain's share)
        self.markers = markers
        self.interval = interval
        self.seen = set()
        self.most_at_once = 0
        self.error = None
        self._stop = threading.Event()
        self._conn = open_libvirt(URI)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self):
        import libvirt
        names = []
        for dom in self._conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            if not dom.name().startswith("guestfs-"):
                continue
            try:
                xml = dom.XMLDesc(0)
                if any(marker in xml for marker in self.markers):
                    names.append(dom.name())
            except libvirt.libvirtError:
                pass  # gone meanwhile
        self.seen.update(names)
        self.most_at_once = max(self.most_at_once, len(names))

    def _run(self):
        try:
            while True:
                self._sample()
                if self._stop.wait(self.interval):
                    break
            self._sample()
        except Exception as e:
            self.error = e

    def finish(self):
        self._stop.set()
        self._thread.join()
        self._conn.close()
        if self.error is not None:
            raise BenchError(f"sampling appliances failed: {self.error}")
        return self


def run_virt_inspector(domain, hostname, label):
    argv = ["virt-inspector", "--no-applications", "--no-icon", "-c", URI, "-d", domain]
    t0 = time.monotonic()
    r = subprocess.run(argv, env=libguestfs_env(), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t = time.monotonic() - t0
    if r.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed (status {r.returncode}):\n{r.stderr[-2000:]}")
    try:
        root = ET.fromstring(r.stdout)
        found = (root.findtext("operatingsystem/distro"),
                 root.findtext("operatingsystem/hostname"))
    except ET.ParseError as e:
        raise BenchError(f"virt-inspector printed no valid XML ({e}):\n{r.stdout[:1000]}")
    if found != ("debian", hostname):
        raise BenchError(f"virt-inspector -d {domain} found {found}, expected debian / {hostname}")
    log(f"bench: batch {label}: virt-inspector -d {domain}: {t:.2f} s")
    return t


def parallel_virt_inspector(names, hostnames, concurrency):
    """virt-inspector over every domain, CONCURRENCY processes at once;
    the wall-clock time of the whole."""
    from concurrent.futures import ThreadPoolExecutor
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(run_virt_inspector, name, hostname,
                               f"parallel x{concurrency} {i + 1}/{len(names)}")
                   for i, (name, hostname) in enumerate(zip(names, hostnames))]
        for f in futures:
            f.result()
    return time.monotonic() - t0


def check_results(results, expected, label, cached=None):
    """RESULTS: the a{oa{sv}} reply unpacked; EXPECTED: {path: hostname}."""
    if sorted(results) != sorted(expected):
        raise BenchError(f"{label}: results for {sorted(results)}, expected {sorted(expected)}")
    for path, hostname in expected.items():
        entry = results[path]
        if "error" in entry:
            raise BenchError(f"{label}: {path}: {entry['error']}: {entry.get('message')}")
        systems = entry.get("systems", [])
        if len(systems) != 1 or systems[0].get("hostname") != hostname:
            raise BenchError(f"{label}: {path}: {systems!r}, expected one system named {hostname}")
        if cached is not None and entry.get("cached") is not cached:
            raise BenchError(f"{label}: {path}: cached={entry.get('cached')!r}, expected {cached}")


def batch_run(ctx, bus, label, marker, names, hostnames, extra_args):
    """A fresh service with a fresh cache; one InspectDomains(refresh=true)
    over every domain, timed from the call to the reply. Returns the
    figures and the cache directory (kept for the cached case)."""
    cache_dir = tempfile.mkdtemp(prefix=f"cache-{label}-", dir=bus.dir)
    svc = Service(ctx, bus, f"ours-{label}", ["--cache-dir", cache_dir, *extra_args])
    paths = [svc.lookup_domain(n) for n in names]
    expected = dict(zip(paths, hostnames))
    sampler = ApplianceSampler((marker, bus.dir))
    try:
        t0 = time.monotonic()
        reply = svc.call(SERVICE_MANAGER, MANAGER_IFACE, "InspectDomains",
                         GLib.Variant("(aoa{sv})", (paths, {"refresh": GLib.Variant("b", True)})),
                         "(a{oa{sv}})", what=f"InspectDomains ({label})")
        t = time.monotonic() - t0
    finally:
        sampler.finish()
    check_results(reply.unpack()[0], expected, f"InspectDomains ({label})", cached=False)
    status = svc.stop()
    if status != 0:
        raise BenchError(f"libvirt-guestfs-dbus ({label}) exited with status {status} on SIGTERM")
    log(f"bench: batch {label}: InspectDomains over {len(names)}: {t:.2f} s, "
        f"{len(sampler.seen)} appliances, at most {sampler.most_at_once} at once")
    return {"total_s": t, "appliances": len(sampler.seen),
            "most_at_once": sampler.most_at_once, "service_start_s": svc.t_owner - svc.t_start,
            "cache_dir": cache_dir}


def cached_run(ctx, bus, marker, cache_dir, names, hostnames, calls):
    """The service restarted on CACHE_DIR: what it publishes at start-up,
    then CALLS Inspect round-robin over the domains."""
    svc = Service(ctx, bus, "ours-cached", ["--cache-dir", cache_dir])
    paths = [svc.lookup_domain(n) for n in names]
    t0 = time.monotonic()
    objects = svc.call("/org/libvirt/GuestFS", "org.freedesktop.DBus.ObjectManager",
                       "GetManagedObjects", None, "(a{oa{sa{sv}}})").unpack()[0]
    t_objects = time.monotonic() - t0
    known = sum(1 for p, h in zip(paths, hostnames)
                if [s.get("hostname") for s in objects[p][INSPECTOR_IFACE]["OperatingSystems"]]
                == [h])
    sampler = ApplianceSampler((marker, bus.dir), interval=0.1)
    times = []
    try:
        for i in range(calls):
            path, hostname = paths[i % len(paths)], hostnames[i % len(paths)]
            t0 = time.monotonic()
            reply = svc.call(path, INSPECTOR_IFACE, "Inspect", GLib.Variant("(a{sv})", ({},)),
                             "(aa{sv})")
            times.append(time.monotonic() - t0)
            systems = reply.unpack()[0]
            if len(systems) != 1 or systems[0].get("hostname") != hostname:
                raise BenchError(f"cached Inspect of {path}: {systems!r}, expected {hostname}")
        time.sleep(1.0)  # a launch behind the replies would show now
    finally:
        sampler.finish()
    states = {svc.get_property(p, DOMAIN_IFACE, "ApplianceState") for p in paths}
    status = svc.stop()
    if status != 0:
        raise BenchError(f"libvirt-guestfs-dbus (cached) exited with status {status} on SIGTERM")
    log(f"bench: batch cached: p50 {percentile(times, 50) * 1000:.2f} ms, "
        f"{known}/{len(paths)} known at start-up, {len(sampler.seen)} appliances")
    return {"times": times, "known_at_start": known, "appliances": len(sampler.seen),
            "states": sorted(states), "managed_objects_s": t_objects}


# ---------------------------------------------------------------- report


def _s(x):
    return "-" if x is None else f"{x:.2f} s"


def _ms(x):
    return "-" if x is None else f"{x * 1000:.2f} ms"


def run(ctx):
    args = ctx.args
    n = args.batch_domains
    if n < 1 or args.batch_cached_calls < 1 or args.batch_runs < 1:
        raise BenchError("--batch-domains, --batch-runs and --batch-cached-calls must be "
                         "at least 1")
    ctx.ensure_daemons()
    _, images = bench_image_set(ctx)
    marker = images.dir
    names = [f"lgd-bench-batch-{i + 1:02d}" for i in range(n)]
    hostnames = [f"lgd-bench-batch-{i + 1:02d}" for i in range(n)]
    for name, hostname in zip(names, hostnames):
        root = images.debian_root(name=f"{name}.img", hostname=hostname)
        define_one_disk_domain(ctx, URI, name, root.path)
    # Runs before the undefines: libvirtd may be restarting (other test runs).
    ctx.cleanup.push(wait_for_libvirtd, what="wait for libvirtd")
    print(f"{n} domains lgd-bench-batch-01..{n:02d}: shut off, one raw disk each "
          f"({root.size // 2**20} MiB ext4 Debian 12 look-alike, own host name)")

    load_before = machine_load()
    bus = PrivateBus(ctx.cleanup, "session", "batch")

    warm = run_virt_inspector(names[0], hostnames[0], "warm-up (not counted)")
    ones, shareds = [], []
    for rep in range(args.batch_runs):
        order = ["theirs", "ours"] if rep % 2 == 0 else ["ours", "theirs"]
        for who in order:
            label = f"run {rep + 1}/{args.batch_runs}"
            if who == "theirs":
                ones.append(run_virt_inspector(names[0], hostnames[0], f"one, {label}"))
            else:
                shareds.append(batch_run(ctx, bus, f"shared-{rep + 1}", marker, names,
                                         hostnames, []))
    one = median(ones)
    shared = dict(shareds[-1])
    shared["total_s"] = median([r["total_s"] for r in shareds])
    shared["appliances"] = max(r["appliances"] for r in shareds)
    apart = batch_run(ctx, bus, "apart", marker, names, hostnames,
                      ["--no-batch-inspection", "--idle-timeout", "2"])
    concurrency = max(1, apart["most_at_once"])
    parallel = parallel_virt_inspector(names, hostnames, concurrency)
    t0 = time.monotonic()
    sequential = [run_virt_inspector(name, hostname, f"sequential {i + 1}/{n}")
                  for i, (name, hostname) in enumerate(zip(names, hostnames))]
    seq_wall = time.monotonic() - t0
    cached = cached_run(ctx, bus, marker, apart["cache_dir"], names, hostnames,
                        args.batch_cached_calls)
    load_after = machine_load()

    problems = []
    # one shared appliance per processor the service may use, as the
    # default --max-appliances (half the memory) allows on a bench machine
    shared_expected = min(len(os.sched_getaffinity(0)), n)
    if shared["appliances"] != shared_expected:
        problems.append(f"sharing on launched {shared['appliances']} appliances, expected "
                        f"{shared_expected} (one per processor)")
    if apart["appliances"] != n:
        problems.append(f"sharing off launched {apart['appliances']} appliances, expected {n}")
    if cached["appliances"] != 0 or cached["states"] != ["stopped"]:
        problems.append(f"cached Inspect launched {cached['appliances']} appliances "
                        f"(ApplianceState {cached['states']})")
    if cached["known_at_start"] != n:
        problems.append(f"only {cached['known_at_start']}/{n} domains had OperatingSystems "
                        f"at start-up")

    seq_sum = sum(sequential)
    p50 = percentile(cached["times"], 50)
    p90 = percentile(cached["times"], 90)
    ratio_shared = shared["total_s"] / one
    ratio_apart = apart["total_s"] / one
    rows = [
        [f"one virt-inspector run (whole process; median of {len(ones)})", _s(one), "1.00x"],
        [f"{n} sequential virt-inspector runs", _s(seq_sum), f"{seq_sum / one:.2f}x"],
        [f"InspectDomains x{n}, sharing on ({shared['appliances']} appliances; "
         f"median of {len(shareds)})",
         _s(shared["total_s"]), f"{ratio_shared:.2f}x"],
        [f"InspectDomains x{n}, sharing off ({apart['appliances']} appliances, "
         f"<= {apart['most_at_once']} at once)", _s(apart["total_s"]), f"{ratio_apart:.2f}x"],
        [f"virt-inspector over the {n}, {concurrency} at once", _s(parallel),
         f"{parallel / one:.2f}x"],
        [f"cached Inspect after restart, p50 ({len(cached['times'])} calls)", _ms(p50), ""],
        ["cached Inspect p90", _ms(p90), ""],
        ["cached Inspect min / max",
         f"{_ms(min(cached['times']))} / {_ms(max(cached['times']))}", ""],
        [f"GetManagedObjects after restart ({cached['known_at_start']}/{n} OS known)",
         _ms(cached["managed_objects_s"]), ""],
    ]
    print(fmt_table(rows, ["", "time", "vs one virt-inspector"]))
    print()
    print(f"sharing off vs virt-inspector at the same concurrency ({concurrency}): "
          f"{apart['total_s'] / parallel:.2f}x; sharing on vs the same: "
          f"{shared['total_s'] / parallel:.2f}x")
    print("runs: one virt-inspector " + ", ".join(f"{t:.1f}" for t in ones)
          + " s; InspectDomains sharing on " + ", ".join(f"{r['total_s']:.1f}" for r in shareds)
          + " s")
    print("sequential virt-inspector runs: " + ", ".join(f"{t:.1f}" for t in sequential)
          + f" s (median {median(sequential):.2f} s; wall {seq_wall:.1f} s)")
    print(f"virt-inspector warm-up (not counted): {warm:.2f} s; service start-up (not counted): "
          f"{shared['service_start_s']:.2f} s / {apart['service_start_s']:.2f} s")

    batch_ok = ratio_shared <= TARGET_BATCH_RATIO
    cached_ok = p50 < TARGET_CACHED_P50_S
    target = batch_ok and cached_ok and not problems
    print()
    print(f"target: batch of {n} (sharing on) <= {TARGET_BATCH_RATIO:.0f}x one virt-inspector run: "
          f"{'yes' if batch_ok else 'NO'} ({ratio_shared:.2f}x); cached Inspect p50 < "
          f"{TARGET_CACHED_P50_S * 1000:.0f} ms: {'yes' if cached_ok else 'NO'} "
          f"({p50 * 1000:.2f} ms) => {'MET' if target else 'MISSED'}")
    print_problems(problems, load_before, load_after)

    return {
        "domains": n,
        "uri": URI,
        "runs": len(ones),
        "one_virt_inspector_s": rnd(one),
        "one_virt_inspector_runs_s": [rnd(t) for t in ones],
        "batch_shared_runs_s": [rnd(r["total_s"]) for r in shareds],
        "parallel_virt_inspector_s": rnd(parallel),
        "parallel_concurrency": concurrency,
        "ratio_apart_vs_parallel": rnd(apart["total_s"] / parallel, 3),
        "sequential_virt_inspector_s": rnd(seq_sum),
        "sequential_runs_s": [rnd(t) for t in sequential],
        "batch_shared_s": rnd(shared["total_s"]),
        "batch_shared_appliances": shared["appliances"],
        "batch_apart_s": rnd(apart["total_s"]),
        "batch_apart_appliances": apart["appliances"],
        "batch_apart_most_at_once": apart["most_at_once"],
        "ratio_shared_vs_one": rnd(ratio_shared, 3),
        "ratio_apart_vs_one": rnd(ratio_apart, 3),
        "cached_p50_ms": rnd(p50 * 1000, 3),
        "cached_p90_ms": rnd(p90 * 1000, 3),
        "cached_calls": len(cached["times"]),
        "cached_known_at_start": cached["known_at_start"],
        "warmup_virt_inspector_s": rnd(warm),
        "target_batch_met": batch_ok,
        "target_cached_met": cached_ok,
        "target_met": target,
        "machine": {"before": load_before, "after": load_after},
        "problems": problems,
    }
