"""Case `cli`: guestfsctl against the libguestfs tools it replaces, on the
same domain in the same run (issue 12, Benchmark).

One shut-off domain, lgd-bench-cli, on qemu:///system with a raw Debian-like
ext4 root image (tests/integration/images.py) holding /bench-big.bin, 256 MiB
of pseudo-random bytes written with debugfs, without an appliance.

Two comparisons, each the median of --cli-runs runs a side, alternating
which side goes first:
  - `guestfsctl cat DOMAIN /bench-big.bin > /dev/null` against
    `virt-cat -d DOMAIN /bench-big.bin > /dev/null`;
  - `guestfsctl ls -l DOMAIN /etc` with the service's appliance warm
    against `virt-ls -l -d DOMAIN /etc`, which boots an appliance each time
    (so does virt-cat: that is what the comparison is about).
A run is the wall time of the command, from its start to its exit: what a
person or a script at a shell waits for. guestfsctl's start-up and D-Bus
calls are counted; the service's appliance launch is not (it is warmed
first, and reported), virt-cat's and virt-ls's are.

guestfsctl talks to the built service on a private bus (as its session
service, so the root caller needs no polkit), serving qemu:///system with
--force-tcg; virt-cat and virt-ls use LIBGUESTFS_BACKEND=libvirt:qemu:///system
and LIBGUESTFS_BACKEND_SETTINGS=force_tcg: both sides' appliances are TCG
domains of the same libvirtd with libguestfs's default memory.

Before the timed runs, each side's cat is run once into a pipe, not counted,
and its output checked against the file's SHA-256 (this also puts the file in
the appliance's and the host's page caches). Every timed `ls -l` output is
checked to list the files of the image's /etc.
"""

import hashlib
import os
import subprocess
import time

from benchlib import (BenchError, PrivateBus, Service, bench_image_set, check_image_file,
                      debugfs_write, define_one_disk_domain, fmt_table, libguestfs_env, log,
                      machine_load, median, print_problems, rnd, tail, write_pseudo_random)

NAME = "cli"
ORDER = 35
DESCRIPTION = "guestfsctl cat of 256 MiB vs virt-cat; warm guestfsctl ls -l /etc vs virt-ls -l"

URI = "qemu:///system"
DOMAIN = "lgd-bench-cli"
DOMAIN_IFACE = "org.libvirt.GuestFS.Domain"
BIG = "/bench-big.bin"
ETC = "/etc"
# What images.py's debian_root() puts in /etc: every ls -l must show them.
ETC_NAMES = ("os-release", "debian_version", "hostname", "fstab", "favicon.png")
MIB = 1024 * 1024
# A command that takes longer is stuck, not slow (TCG boots take 15-60 s).
COMMAND_TIMEOUT = 900


def add_arguments(parser):
    g = parser.add_argument_group("case cli")
    g.add_argument("--cli-runs", type=int, default=5, metavar="R",
                   help="timed runs of each command, alternating, median reported (default 5)")
    g.add_argument("--cli-size", type=int, default=256, metavar="MIB",
                   help="size of the file cat reads, in MiB (default 256)")
    g.add_argument("--guestfsctl", metavar="PATH",
                   help="the client to measure (default <repo>/build/client/guestfsctl)")


# ---------------------------------------------------------------- image


def build_image(ctx, size):
    """The domain's image; returns (image path, sha256 of the big file)."""
    _, images = bench_image_set(ctx)
    root = images.debian_root(name="cli-root.img", size=size + 144 * MIB,
                              hostname="lgd-bench-cli")
    src = images.path("big.src")
    digest = write_pseudo_random(src, size, b"lgd-bench-cli")
    debugfs_write(root.path, src, BIG)
    check_image_file(root.path, BIG, size)
    return root.path, digest


# ---------------------------------------------------------------- commands


class Commands:
    """The argv and environment of both sides' commands."""

    def __init__(self, ctx, bus):
        self.gctl = ctx.args.guestfsctl or os.path.join(ctx.repo, "build", "client", "guestfsctl")
        if not os.access(self.gctl, os.X_OK):
            raise BenchError(f"{self.gctl} is not an executable: build it (ninja -C build) "
                             f"or pass --guestfsctl PATH")
        self.gctl_argv = [self.gctl, "--address", bus.address]
        self.gctl_env = dict(os.environ)
        self.virt_env = libguestfs_env()

    def argv(self, who, what):
        if who == "guestfsctl":
            tail_ = ["cat", DOMAIN, BIG] if what == "cat" else ["ls", "-l", DOMAIN, ETC]
            return self.gctl_argv + tail_, self.gctl_env
        if what == "cat":
            return ["virt-cat", "-c", URI, "-d", DOMAIN, BIG], self.virt_env
        return ["virt-ls", "-c", URI, "-l", "-d", DOMAIN, ETC], self.virt_env


def run_timed(cmds, who, what, stdout):
    """Runs one command with STDOUT (a file object, or subprocess.PIPE);
    returns (seconds from start to exit, captured stdout or None)."""
    argv, env = cmds.argv(who, what)
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=stdout,
                            stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise BenchError(f"{' '.join(argv)} did not end in {COMMAND_TIMEOUT} s") from None
    secs = time.monotonic() - t0
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited with status {proc.returncode}: "
                         f"{err.decode(errors='replace').strip()[-1500:]}")
    return secs, out


def cat_hashed(cmds, who, size):
    """One cat into a pipe, hashed as it comes; returns (seconds, sha256)."""
    argv, env = cmds.argv(who, "cat")
    digest = hashlib.sha256()
    count = 0
    t0 = time.monotonic()
    with subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        while True:
            chunk = proc.stdout.read(MIB)
            if not chunk:
                break
            digest.update(chunk)
            count += len(chunk)
        err = proc.stderr.read()
        proc.wait(COMMAND_TIMEOUT)
    secs = time.monotonic() - t0
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited with status {proc.returncode}: "
                         f"{err.decode(errors='replace').strip()[-1500:]}")
    if count != size:
        raise BenchError(f"{' '.join(argv)} wrote {count} bytes, the file has {size}")
    return secs, digest.hexdigest()


def check_listing(who, out):
    """An ls -l output must name every file of the image's /etc, as lines
    whose last word is the name, in long format (a mode at the start)."""
    lines = out.decode(errors="replace").splitlines()
    names = {line.split()[-1] for line in lines if line.split()}
    missing = [n for n in ETC_NAMES if n not in names]
    if missing:
        raise BenchError(f"{who} ls -l {ETC}: {', '.join(missing)} missing from:\n"
                         + "\n".join(lines[:40]))
    for line in lines:
        words = line.split()
        if words and words[-1] == "hostname" and not words[0].startswith("-rw-r--r--"):
            raise BenchError(f"{who} ls -l {ETC}: not a long listing: {line!r}")
    return len(lines)


# ---------------------------------------------------------------- entry


def _s(x, nd=2):
    return "-" if x is None else f"{x:.{nd}f} s"


def run(ctx):
    args = ctx.args
    if args.cli_runs < 1 or args.cli_size < 1:
        raise BenchError("--cli-runs and --cli-size must be at least 1")
    size = args.cli_size * MIB
    n = args.cli_runs
    ctx.ensure_daemons()

    t = time.monotonic()
    image, sha = build_image(ctx, size)
    define_one_disk_domain(ctx, URI, DOMAIN, image)
    print(f"domain {DOMAIN}: shut off, one raw disk {image} "
          f"({os.path.getsize(image) // MIB} MiB ext4, Debian 12 look-alike) holding {BIG} "
          f"({args.cli_size} MiB pseudo-random); built in {time.monotonic() - t:.1f} s")

    load_before = machine_load()
    bus = PrivateBus(ctx.cleanup, "session", "cli")
    cache_dir = os.path.join(bus.dir, "cache")
    svc = Service(ctx, bus, "ours", ["--idle-timeout", "900", "--cache-dir", cache_dir])
    path = svc.lookup_domain(DOMAIN)
    cmds = Commands(ctx, bus)

    # The service's appliance launch, not counted: its first ls.
    warm_s, out = run_timed(cmds, "guestfsctl", "ls", subprocess.PIPE)
    check_listing("guestfsctl", out)
    log(f"bench: cli: service appliance up, first guestfsctl ls -l {warm_s:.2f} s")

    # Checked, not counted: cat's content, and the caches warmed for both.
    checked = {}
    for who in ("guestfsctl", "virt-cat"):
        secs, digest = cat_hashed(cmds, "guestfsctl" if who == "guestfsctl" else "virt", size)
        if digest != sha:
            raise BenchError(f"{who} {BIG}: SHA-256 {digest}, the file's is {sha}")
        checked[who] = secs
        log(f"bench: cli: checked {who} (not counted): {secs:.2f} s, content equal to the file's")

    runs = {("guestfsctl", "cat"): [], ("virt", "cat"): [],
            ("guestfsctl", "ls"): [], ("virt", "ls"): []}
    ls_lines = {}
    with open(os.devnull, "wb") as devnull:
        for what in ("cat", "ls"):
            for rep in range(n):
                order = ("virt", "guestfsctl") if rep % 2 == 0 else ("guestfsctl", "virt")
                for who in order:
                    if what == "cat":
                        secs, _ = run_timed(cmds, who, what, devnull)
                    else:
                        secs, out = run_timed(cmds, who, what, subprocess.PIPE)
                        ls_lines[who] = check_listing(who, out)
                    runs[(who, what)].append(secs)
                    log(f"bench: cli {what} run {rep + 1}/{n} {who}: {secs:.2f} s")

    state = svc.get_property(path, DOMAIN_IFACE, "ApplianceState")
    status = svc.stop()
    load_after = machine_load()
    problems = []
    if state != "running":
        problems.append(f"the service's appliance was {state!r} after the runs, not running: "
                        f"guestfsctl's figures may include launches")
    if status != 0:
        problems.append(f"libvirt-guestfs-dbus exited with status {status} on SIGTERM; "
                        f"log tail:\n{tail(svc.logfile)}")

    med = {k: median(v) for k, v in runs.items()}
    cat_ratio = med[("guestfsctl", "cat")] / med[("virt", "cat")]
    ls_ratio = med[("guestfsctl", "ls")] / med[("virt", "ls")]
    mibs = args.cli_size

    print(f"Wall time of each command, median of {n} runs a side, alternating who goes first")
    rows = [
        [f"cat {BIG} ({mibs} MiB) > /dev/null", _s(med[("guestfsctl", "cat")]),
         _s(med[("virt", "cat")]), f"{cat_ratio:.3f}", f"{1 / cat_ratio:.1f}x"],
        ["  throughput (MiB/s)", f"{mibs / med[('guestfsctl', 'cat')]:.1f}",
         f"{mibs / med[('virt', 'cat')]:.1f}", "", ""],
        [f"ls -l {ETC} (guestfsctl warm)", _s(med[("guestfsctl", "ls")], 3),
         _s(med[("virt", "ls")]), f"{ls_ratio:.4f}", f"{1 / ls_ratio:.0f}x"],
        ["checked cat into a pipe (not counted)", _s(checked["guestfsctl"]),
         _s(checked["virt-cat"]), "", ""],
        ["service appliance launch + first ls (not counted)", _s(warm_s), "", "", ""],
    ]
    print(fmt_table(rows, ["median", "guestfsctl", "virt-cat / virt-ls", "ours/theirs",
                           "speed-up"]))
    print()
    print("runs (s):")
    for (who, what), xs in runs.items():
        label = f"{'guestfsctl' if who == 'guestfsctl' else 'virt-' + what} {what}"
        print(f"  {label:<16} " + ", ".join(f"{x:.3f}" for x in xs))
    print(f"ls -l {ETC} printed {ls_lines.get('guestfsctl')} lines (guestfsctl), "
          f"{ls_lines.get('virt')} (virt-ls); service appliance afterwards: {state}")
    print_problems(problems, load_before, load_after)

    return {
        "domain": DOMAIN,
        "uri": URI,
        "file_mib": mibs,
        "runs": n,
        "cat_guestfsctl_s": rnd(med[("guestfsctl", "cat")]),
        "cat_virt_cat_s": rnd(med[("virt", "cat")]),
        "cat_ratio": rnd(cat_ratio, 4),
        "ls_guestfsctl_warm_s": rnd(med[("guestfsctl", "ls")]),
        "ls_virt_ls_s": rnd(med[("virt", "ls")]),
        "ls_ratio": rnd(ls_ratio, 5),
        "launch_ours_s": rnd(warm_s),
        "runs_cat_guestfsctl": [rnd(x) for x in runs[("guestfsctl", "cat")]],
        "runs_cat_virt_cat": [rnd(x) for x in runs[("virt", "cat")]],
        "runs_ls_guestfsctl": [rnd(x) for x in runs[("guestfsctl", "ls")]],
        "runs_ls_virt_ls": [rnd(x) for x in runs[("virt", "ls")]],
        "appliance_state_after": state,
        "machine": {"before": load_before, "after": load_after},
        "problems": problems,
    }
