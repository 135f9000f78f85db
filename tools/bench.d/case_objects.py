"""Case `objects`: N domains on qemu:///system, time from service start until
a client holds every domain's name, and the service's RSS, for
libvirt-guestfs-dbus (GetManagedObjects) and libvirt-dbus (ListDomains plus
each domain's Name), side by side in the same run (issue 2, point 10)."""

import os
import subprocess
import time

from benchlib import (BenchError, GLib, Gio, PrivateBus, cpu_seconds, fmt_table, load_note, log,
                      machine_load, median, open_libvirt, pid_of, rss_kib, stop_process,
                      system_busy_seconds, tail)

NAME = "objects"
ORDER = 10
DESCRIPTION = "N domains: service start until all are listed, and RSS, vs libvirt-dbus"

URI = "qemu:///system"
PREFIX = "lgd-bench-"
OURS_NAME = "org.libvirt.GuestFS"
OURS_ROOT = "/org/libvirt/GuestFS"
OURS_DOMAIN_IFACE = "org.libvirt.GuestFS.Domain"
THEIRS_NAME = "org.libvirt"
THEIRS_CONNECT = "/org/libvirt/QEMU"

TARGET_SECONDS = 0.5


def add_arguments(parser):
    g = parser.add_argument_group("case objects")
    g.add_argument("--domains", type=int, default=1000, metavar="N",
                   help="number of lgd-bench-NNNN domains (default 1000)")
    g.add_argument("--keep", action="store_true",
                   help="do not undefine the bench domains at the end")
    g.add_argument("--daemon", metavar="PATH",
                   help="libvirt-guestfs-dbus binary (default <repo>/build/src/libvirt-guestfs-dbus)")
    g.add_argument("--libvirt-dbus", default="/usr/sbin/libvirt-dbus", metavar="PATH",
                   help="libvirt-dbus binary (default /usr/sbin/libvirt-dbus)")
    g.add_argument("--services", default="ours,theirs",
                   help="comma-separated subset of ours,theirs to measure (default both)")
    g.add_argument("--theirs-client", choices=("pipelined", "sequential"), default="pipelined",
                   help="libvirt-dbus client: all Name Gets in flight at once (default), "
                        "or one after the other")
    g.add_argument("--warmup", type=int, default=1, metavar="W",
                   help="starts per service before the measured ones, reported apart and not "
                        "counted (default 1): libvirtd answers the first GetXMLDesc of a freshly "
                        "defined domain several times slower")
    g.add_argument("--timeout", type=float, default=120.0, metavar="S",
                   help="per-run limit in seconds (default 120)")


# ---------------------------------------------------------------- domains


def bench_names(n):
    return [f"{PREFIX}{i:04d}" for i in range(n)]


def domain_xml(name):
    arch = os.uname().machine
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='{arch}'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/{name}.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
"""


def undefine_bench_domains(names):
    import libvirt
    # A connection of its own: libvirtd may have restarted since the domains were defined.
    conn = open_libvirt(URI)
    wanted = set(names)
    t = time.monotonic()
    doms = [d for d in conn.listAllDomains() if d.name() in wanted]
    for d in doms:
        try:
            if d.isActive():
                d.destroy()
            d.undefine()
        except libvirt.libvirtError as e:
            log(f"bench: undefine {d.name()}: {e}")
    conn.close()
    log(f"bench: undefined {len(doms)} bench domains in {time.monotonic() - t:.1f} s")


def define_bench_domains(ctx, conn, names):
    existing = {d.name() for d in conn.listAllDomains()}
    if not ctx.args.keep:
        # Registered before defining, so Ctrl-C half-way still cleans up.
        ctx.cleanup.push(undefine_bench_domains, names, what="undefine bench domains")
    missing = [n for n in names if n not in existing]
    t = time.monotonic()
    for n in missing:
        conn.defineXML(domain_xml(n))
    return len(names) - len(missing), len(missing), time.monotonic() - t


# ---------------------------------------------------------------- measuring


class Run(dict):
    """One measured start of one service; keys are the summary's fields."""


def _launch(ctx, argv, env_var, bus, label, rep):
    logfile = os.path.join(bus.dir, f"{label}-{rep}.log")
    env = dict(os.environ)
    env[env_var] = bus.address
    with open(logfile, "w") as lf:
        ctx.busy0 = system_busy_seconds()
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
    entry = ctx.cleanup.push(stop_process, proc, label, what=f"stop {label}")
    return t0, proc, entry, logfile


def _libvirtd_cpu():
    """(pid, CPU seconds) of libvirtd now; (None, None) if not found (it may restart)."""
    pid = pid_of("libvirtd")
    try:
        return pid, cpu_seconds(pid) if pid else None
    except OSError:
        return None, None


def _finish(ctx, run, proc, entry, label, libvirtd0, bus, cpu_bus0, proc_log):
    busy = system_busy_seconds() - ctx.busy0
    run["rss_kib"], run["hwm_kib"], run["anon_kib"] = rss_kib(proc.pid)
    run["cpu_s"] = cpu_seconds(proc.pid)
    pid, cpu = _libvirtd_cpu()
    run["libvirtd_cpu_s"] = (cpu - libvirtd0[1]) if pid and pid == libvirtd0[0] else None
    run["bus_cpu_s"] = cpu_seconds(bus.proc.pid) - cpu_bus0
    # Everything else the machine did meanwhile (other sessions, kernel work, the
    # measurement's own dbus-daemon start-up is not in it: that bus runs already).
    ours = run["cpu_s"] + (run["libvirtd_cpu_s"] or 0) + run["bus_cpu_s"] + run["client_cpu_s"]
    run["other_cpu_s"] = max(0.0, busy - ours)
    ctx.cleanup.cancel(entry)
    t = time.monotonic()
    run["exit_status"] = stop_process(proc, label)
    run["stop_s"] = time.monotonic() - t
    run["log_tail"] = tail(proc_log, 5).strip()


def _count_ours(reply, wanted):
    """Names of bench domains in a GetManagedObjects reply, without unpacking it all."""
    objs = reply.get_child_value(0)
    seen = 0
    asv = GLib.VariantType("a{sv}")
    s = GLib.VariantType("s")
    for i in range(objs.n_children()):
        ifaces = objs.get_child_value(i).get_child_value(1)
        dom = ifaces.lookup_value(OURS_DOMAIN_IFACE, asv)
        if dom is None:
            continue
        name = dom.lookup_value("Name", s)
        if name is not None and name.get_string() in wanted:
            seen += 1
    return seen, objs.n_children()


def measure_ours(ctx, bus, wanted, rep):
    daemon = ctx.args.daemon
    argv = [daemon, "--session", "--connect", URI]
    libvirtd0 = _libvirtd_cpu()
    cpu_b0 = cpu_seconds(bus.proc.pid)
    c0 = time.process_time()
    t0, proc, entry, logfile = _launch(ctx, argv, "DBUS_SESSION_BUS_ADDRESS", bus, "ours", rep)
    deadline = t0 + ctx.args.timeout
    t_owner = ctx.wait_for_name(bus, OURS_NAME, proc, deadline, logfile)
    calls = 0
    while True:
        tc = time.monotonic()
        try:
            reply = bus.conn.call_sync(OURS_NAME, OURS_ROOT, "org.freedesktop.DBus.ObjectManager",
                                       "GetManagedObjects", None,
                                       GLib.VariantType("(a{oa{sa{sv}}})"),
                                       Gio.DBusCallFlags.NONE, int(ctx.args.timeout * 1000), None)
        except GLib.Error as e:
            raise BenchError(f"GetManagedObjects failed: {e.message}; log tail:\n{tail(logfile)}")
        t_reply = time.monotonic()
        calls += 1
        seen, total = _count_ours(reply, wanted)
        t_decoded = time.monotonic()
        if seen == len(wanted):
            break
        if t_reply > deadline:
            raise BenchError(f"after {ctx.args.timeout:.0f} s GetManagedObjects holds {seen} of "
                             f"{len(wanted)} bench domains; log tail:\n{tail(logfile)}")
        time.sleep(0.005)
    run = Run(total_s=t_reply - t0, owner_s=t_owner - t0, list_s=t_reply - tc,
              decode_s=t_decoded - t_reply, client_cpu_s=time.process_time() - c0, calls=calls, objects=total,
              reply_bytes=reply.get_size())
    _finish(ctx, run, proc, entry, "libvirt-guestfs-dbus", libvirtd0, bus, cpu_b0, logfile)
    return run


def _theirs_names(ctx, conn, paths, wanted, logfile):
    """Get org.libvirt.Domain.Name for every path; returns (names, time of the last reply).

    python-dbus (libdbus) rather than Gio here: 1,000 small calls cost a Gio
    client ~0.1 s of CPU on this 2-CPU machine, libdbus a third of that, so
    the client skews libvirt-dbus's figure less."""
    names = []
    if ctx.args.theirs_client == "sequential":
        import dbus
        for p in paths:
            try:
                names.append(str(conn.call_blocking(THEIRS_NAME, p, "org.freedesktop.DBus.Properties",
                                                    "Get", "ss", ("org.libvirt.Domain", "Name"))))
            except dbus.DBusException:
                pass  # a domain of somebody else's gone meanwhile; the caller checks ours
        return names, time.monotonic()

    errors = []
    pending = [len(paths)]
    last = [time.monotonic()]

    def ok(v):
        names.append(str(v))
        pending[0] -= 1
        last[0] = time.monotonic()

    def err(e):
        errors.append(str(e))
        pending[0] -= 1
        last[0] = time.monotonic()

    for p in paths:
        conn.call_async(THEIRS_NAME, p, "org.freedesktop.DBus.Properties", "Get", "ss",
                        ("org.libvirt.Domain", "Name"), ok, err, timeout=ctx.args.timeout)
    mctx = GLib.MainContext.default()
    while pending[0]:
        mctx.iteration(True)
    if errors and not wanted <= set(names):
        raise BenchError(f"libvirt-dbus Get Name failed {len(errors)} times, first: {errors[0]}; "
                         f"log tail:\n{tail(logfile)}")
    # Errors on other domains are tolerated: other users of this libvirtd may
    # undefine theirs between ListDomains and Get.
    return names, last[0]


def measure_theirs(ctx, bus, wanted, rep):
    argv = [ctx.args.libvirt_dbus, "--system"]
    libvirtd0 = _libvirtd_cpu()
    cpu_b0 = cpu_seconds(bus.proc.pid)
    c0 = time.process_time()
    t0, proc, entry, logfile = _launch(ctx, argv, "DBUS_SYSTEM_BUS_ADDRESS", bus, "theirs", rep)
    deadline = t0 + ctx.args.timeout
    t_owner = ctx.wait_for_name(bus, THEIRS_NAME, proc, deadline, logfile)
    import dbus
    conn = bus.dbus_python(ctx.cleanup)
    calls = 0
    while True:
        tc = time.monotonic()
        try:
            paths = conn.call_blocking(THEIRS_NAME, THEIRS_CONNECT, "org.libvirt.Connect",
                                       "ListDomains", "u", (0,), timeout=ctx.args.timeout)
            t_listed = time.monotonic()
            names, t_last = _theirs_names(ctx, conn, paths, wanted, logfile)
        except dbus.DBusException as e:
            raise BenchError(f"libvirt-dbus listing failed: {e}; log tail:\n{tail(logfile)}")
        calls += 1 + len(paths)
        seen = sum(1 for n in names if n in wanted)
        if seen == len(wanted):
            break
        if t_last > deadline:
            raise BenchError(f"after {ctx.args.timeout:.0f} s libvirt-dbus lists {seen} of "
                             f"{len(wanted)} bench domains; log tail:\n{tail(logfile)}")
        time.sleep(0.005)
    run = Run(total_s=t_last - t0, owner_s=t_owner - t0, list_s=t_last - tc,
              listdomains_s=t_listed - tc, names_s=t_last - t_listed, calls=calls,
              client_cpu_s=time.process_time() - c0,
              objects=len(paths))
    _finish(ctx, run, proc, entry, "libvirt-dbus", libvirtd0, bus, cpu_b0, logfile)
    return run


# ---------------------------------------------------------------- report


def _rounded(run):
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in run.items()}


def _med(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return median(vals) if vals else None


def _s(x, unit=" s", nd=3):
    return "-" if x is None else f"{x:.{nd}f}{unit}"


def _mib(kib):
    return "-" if kib is None else f"{kib / 1024:.1f} MiB"


def _ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def report(ctx, n, results, warm, load_before, load_after):
    svc_label = {"ours": "libvirt-guestfs-dbus", "theirs": "libvirt-dbus"}
    metrics = [  # key, label, formatter
        ("total_s", "start -> all N names held by the client", _s),
        ("owner_s", "  bus name owned at", _s),
        ("list_s", "  listing calls (after the name is owned)", _s),
        ("rss_kib", "RSS after the listing", _mib),
        ("anon_kib", "  of which anonymous (no shared libs)", _mib),
        ("hwm_kib", "peak RSS", _mib),
        ("cpu_s", "service CPU (start -> listed)", lambda x: _s(x, nd=2)),
        ("libvirtd_cpu_s", "libvirtd CPU in that time", lambda x: _s(x, nd=2)),
        ("bus_cpu_s", "dbus-daemon CPU in that time", lambda x: _s(x, nd=2)),
        ("client_cpu_s", "client (this script) CPU", lambda x: _s(x, nd=2)),
        ("other_cpu_s", "other processes' CPU (noise)", lambda x: _s(x, nd=2)),
        ("stop_s", "SIGTERM -> exit (not counted)", _s),
    ]
    meds = {svc: {k: _med(runs, k) for k, _, _ in metrics} for svc, runs in results.items()}
    both = "ours" in meds and "theirs" in meds
    header = ["median"] + [svc_label[s] for s in meds] + (["ours/theirs"] if both else [])
    rows = []
    ratios = {}
    for k, label, f in metrics:
        row = [label] + [f(meds[s][k]) for s in meds]
        if both:
            ratios[k] = _ratio(meds["ours"][k], meds["theirs"][k])
            row.append(_s(ratios[k], "", 2))
        rows.append(row)
    print(f"{n} domains on {URI}, median of {ctx.args.repeat} starts per service "
          f"(after {ctx.args.warmup} warm-up start(s) each)")
    print(fmt_table(rows, header))
    print()
    print("runs (start->all listed / RSS):")
    for svc, runs in results.items():
        cells = ", ".join(f"{r['total_s']:.3f} s / {r['rss_kib'] / 1024:.1f} MiB" for r in runs)
        print(f"  {svc_label[svc]:<30} {cells}")
    for svc, runs in warm.items():
        if runs:
            cells = ", ".join(f"{r['total_s']:.3f} s / {r['rss_kib'] / 1024:.1f} MiB" for r in runs)
            print(f"  {svc_label[svc] + ' warm-up':<30} {cells} (not counted)")
    if "ours" in results:
        r = results["ours"]
        print(f"  ours: GetManagedObjects calls per start {[x['calls'] for x in r]}, "
              f"objects in reply {r[-1]['objects']}, reply {r[-1]['reply_bytes'] / 1024:.0f} KiB, "
              f"client decode {_s(_med(r, 'decode_s'))} (not counted)")
    if "theirs" in results:
        r = results["theirs"]
        print(f"  theirs ({ctx.args.theirs_client} python-dbus client): "
              f"ListDomains {_s(_med(r, 'listdomains_s'))}, "
              f"{r[-1]['objects']} Name Gets {_s(_med(r, 'names_s'))}")

    problems = []
    for svc, runs in results.items():
        bad = [r["exit_status"] for r in runs if r["exit_status"] != 0]
        if bad:
            problems.append(f"{svc_label[svc]} exit status on SIGTERM: {bad} (expected 0)")
        noisy = [r["log_tail"] for r in runs if r["log_tail"]]
        if noisy and svc == "ours":
            problems.append(f"{svc_label[svc]} wrote to stdout/stderr (last lines of one start):\n    "
                            + noisy[-1].replace("\n", "\n    "))

    target = None
    if "ours" in meds:
        ot = meds["ours"]["total_s"]
        fast = ot < TARGET_SECONDS
        print()
        line = f"target: ours < {TARGET_SECONDS} s: {'yes' if fast else 'NO'} ({ot:.3f} s)"
        if "theirs" in meds:
            tt = meds["theirs"]["total_s"]
            not_slower = ot <= tt
            line += f"; ours <= theirs: {'yes' if not_slower else 'NO'} ({ot:.3f} vs {tt:.3f} s)"
            target = fast and not_slower
            line += f" => {'MET' if target else 'MISSED'}"
        print(line)
    for p in problems:
        print(f"problem: {p}")
    walls = [r["total_s"] for runs in results.values() for r in runs]
    others = [r["other_cpu_s"] for runs in results.values() for r in runs]
    share = sum(others) / sum(walls) if walls else None
    print(load_note(load_before, load_after, share))

    return {
        "domains": n,
        "uri": URI,
        "repeat": ctx.args.repeat,
        "warmup": ctx.args.warmup,
        "theirs_client": ctx.args.theirs_client if "theirs" in results else None,
        "median": {svc: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()}
                   for svc, m in meds.items()},
        "ratio": {k: (round(v, 3) if v is not None else None) for k, v in ratios.items()},
        "runs": {svc: [_rounded(r) for r in runs] for svc, runs in results.items()},
        "warmup_runs": {svc: [_rounded(r) for r in runs] for svc, runs in warm.items()},
        "target_met": target,
        "machine": {"before": load_before, "after": load_after},
        "problems": problems,
    }


# ---------------------------------------------------------------- entry


def run(ctx):
    args = ctx.args
    n = args.domains
    if n < 1:
        raise BenchError("--domains must be at least 1")
    if args.warmup < 0:
        raise BenchError("--warmup must be 0 or more")
    services = [s.strip() for s in args.services.split(",") if s.strip()]
    if not services or set(services) - {"ours", "theirs"}:
        raise BenchError("--services takes a comma-separated subset of ours,theirs")
    if args.daemon is None:
        args.daemon = os.path.join(ctx.repo, "build", "src", "libvirt-guestfs-dbus")
    if "ours" in services and not os.access(args.daemon, os.X_OK):
        raise BenchError(f"{args.daemon} is not an executable: build it (meson setup build && "
                         f"ninja -C build) or pass --daemon PATH")
    if "theirs" in services and not os.access(args.libvirt_dbus, os.X_OK):
        raise BenchError(f"{args.libvirt_dbus} is missing: apt-get install libvirt-dbus")

    ctx.ensure_daemons()
    conn = open_libvirt(URI)
    ctx.cleanup.push(conn.close, what="close libvirt connection")
    names = bench_names(n)
    had, made, secs = define_bench_domains(ctx, conn, names)
    print(f"domains: {made} defined in {secs:.1f} s, {had} already there"
          f"{'; kept at the end (--keep)' if args.keep else '; undefined at the end'}")
    wanted = frozenset(names)

    load_before = machine_load()
    buses = {}
    if "ours" in services:
        buses["ours"] = PrivateBus(ctx.cleanup, "session", "ours")
    if "theirs" in services:
        buses["theirs"] = PrivateBus(ctx.cleanup, "system", "theirs")
    measure = {"ours": measure_ours, "theirs": measure_theirs}

    results = {s: [] for s in ("ours", "theirs") if s in services}
    warm = {s: [] for s in results}
    for rep in range(args.warmup):
        for svc in results:
            r = measure[svc](ctx, buses[svc], wanted, f"w{rep}")
            log(f"bench: objects warm-up {rep + 1}/{args.warmup} {svc}: {r['total_s']:.3f} s, "
                f"RSS {r['rss_kib'] / 1024:.1f} MiB")
            warm[svc].append(r)
    for rep in range(args.repeat):
        # Alternate who goes first so that neither always meets a colder libvirtd.
        order = list(results) if rep % 2 == 0 else list(reversed(list(results)))
        for svc in order:
            r = measure[svc](ctx, buses[svc], wanted, rep)
            log(f"bench: objects rep {rep + 1}/{args.repeat} {svc}: {r['total_s']:.3f} s, "
                f"RSS {r['rss_kib'] / 1024:.1f} MiB")
            results[svc].append(r)
    return report(ctx, n, results, warm, load_before, machine_load())
