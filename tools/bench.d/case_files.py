"""Case `files`: Download of a big file through a pipe, libvirt-guestfs-dbus
against guestfish on the same domain and file in the same run, and warm
ReadFile latency (issue 4, point 9).

One shut-off domain, lgd-bench-files, on qemu:///system with a raw ~400 MiB
Debian-like ext4 root image (tests/integration/images.py, so both sides
find an OS to mount with inspection) holding /bench-big.bin, 256 MiB of
random bytes (nothing compresses), and /bench-4k.bin, 4 KiB; the files are
written into the filesystem with debugfs, without an appliance.

Appliance launches are not measured, on both sides:
  - the service is started once; a first ReadFile of the 4 KiB file launches
    its appliance and mounts the guest's filesystems (reported, not counted);
  - guestfish runs in remote-control mode: `guestfish --listen --ro -d DOMAIN
    -i` launches its appliance, inspects and mounts (reported, not counted),
    then each measured transfer is one `guestfish --remote=PID -- download
    /bench-big.bin FIFO` (a new client process per transfer, as a script
    would do; its start-up, a few ms, is counted against guestfish).
Both transfers end in a pipe read by the same reader thread of this script
(1 MiB reads, bytes counted up to the file's size): for the service the
write end of a pipe passed as the Download call's fd, for guestfish a FIFO
(a named pipe) it opens as the download target. A transfer's time runs from
the call (or the client's start) until both its reply (or the client's exit)
has come and the reader holds every byte.

Each side first downloads the file once, not counted, with the content
checked against its SHA-256 (this also puts the file in both appliances'
page caches and the image in the host's). Then they alternate who goes
first, --files-runs timed transfers each; the medians are compared.

ReadFile: --readfile-calls calls reading the 4 KiB file on the warm
service, one after the other; p50 and p90 of the client's round trip.
Both appliances use libvirt on qemu:///system and TCG (the service with
--force-tcg, guestfish with LIBGUESTFS_BACKEND=libvirt:qemu:///system and
LIBGUESTFS_BACKEND_SETTINGS=force_tcg) and libguestfs's default memory.

Warm calls (issue 14, point 2), on the same domain: Files.Stat and
Files.ReadFile of /etc/hostname through the warm service against a bare
python3-guestfs handle (same backend and settings, the same domain added
read-only, inspected and mounted read-only as the service does) doing
`statns` and `pread` of the same file, plus an empty D-Bus round trip (a
Properties.Get of the object's ApplianceState) to show what the bus alone
costs. --warm-calls rounds; each round makes one call of every kind, the
order of the two sides alternating from round to round; p50 and p90 of
each, and the ratios ours/bare. That is on the session bus (the caller
owns the service, no polkit); then once more on a system bus of its own
through a polkitd of its own (tests/integration/polkitstack.py's stack: the
service with --system --verbose, the policy installed, a rule allowing
user nobody to read /etc/hostname of this domain), the calls made by a
client running as nobody, and the difference to the session bus reported
(--no-warm-polkit leaves this out). --files-warm-only runs only the warm
part, on a small image.
"""

import hashlib
import os
import select
import subprocess
import sys
import threading
import time

from benchlib import (BenchError, GLib, Gio, PrivateBus, Service, bench_image_set, cpu_seconds,
                      daemon_binary, define_one_disk_domain, fmt_table, libguestfs_env, load_note, log,
                      machine_load, median, percentile, tail)

NAME = "files"
ORDER = 30
DESCRIPTION = "Download 256 MiB through a pipe vs guestfish download; warm 4 KiB ReadFile p50"

URI = "qemu:///system"
DOMAIN = "lgd-bench-files"
DOMAIN_IFACE = "org.libvirt.GuestFS.Domain"
FILES_IFACE = "org.libvirt.GuestFS.Files"
BIG = "/bench-big.bin"
SMALL = "/bench-4k.bin"
SMALL_SIZE = 4096
MIB = 1024 * 1024

TARGET_THROUGHPUT_RATIO = 0.9
TARGET_READFILE_P50_S = 0.020
WARM_FILE = "/etc/hostname"
TARGET_WARM_RATIO = 3.0


def add_arguments(parser):
    g = parser.add_argument_group("case files")
    g.add_argument("--files-runs", type=int, default=3, metavar="R",
                   help="timed Downloads of each side, alternating, median reported (default 3)")
    g.add_argument("--files-size", type=int, default=256, metavar="MIB",
                   help="size of the downloaded file in MiB (default 256; the image is "
                        "that plus 144 MiB)")
    g.add_argument("--readfile-calls", type=int, default=100, metavar="N",
                   help="4 KiB ReadFile calls on the warm service (default 100)")
    g.add_argument("--warm-calls", type=int, default=200, metavar="N",
                   help="rounds of warm Stat/ReadFile/Get against a bare libguestfs handle "
                        "(default 200)")
    g.add_argument("--no-warm-polkit", action="store_true",
                   help="no warm calls on the system bus through polkit")
    g.add_argument("--files-warm-only", action="store_true",
                   help="only the warm-call comparison, on a small image (no Download)")


# ---------------------------------------------------------------- image


def build_image(ctx, size):
    """The domain's image; returns (image path, sha256 of the big file, small file bytes)."""
    _, images = bench_image_set(ctx)
    root = images.debian_root(name="files-root.img", size=size + 144 * MIB,
                              hostname="lgd-bench-files")
    big_src = images.path("big.src")
    small_src = images.path("small.src")
    digest = hashlib.sha256()
    # Pseudo-random, so that nothing on the way can compress it: SHAKE-128
    # is fast and reproducible; os.urandom would do as well.
    with open(big_src, "wb") as f:
        left = size
        seed = 0
        while left:
            chunk = hashlib.shake_128(b"lgd-bench-%d" % seed).digest(min(left, 4 * MIB))
            digest.update(chunk)
            f.write(chunk)
            left -= len(chunk)
            seed += 1
    small = os.urandom(SMALL_SIZE)
    with open(small_src, "wb") as f:
        f.write(small)
    for src, dst in ((big_src, BIG), (small_src, SMALL)):
        r = subprocess.run(["debugfs", "-w", "-R", f"write {src} {dst.lstrip('/')}", root.path],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0 or "rror" in r.stdout:
            raise BenchError(f"debugfs write {dst} into {root.path} failed:\n{r.stdout}")
        os.unlink(src)
    r = subprocess.run(["debugfs", "-R", f"stat {BIG}", root.path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if f"Size: {size}" not in r.stdout:
        raise BenchError(f"{BIG} in {root.path} has not {size} bytes:\n{r.stdout[:800]}")
    r = subprocess.run(["e2fsck", "-f", "-n", root.path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise BenchError(f"e2fsck -n {root.path} after debugfs:\n{r.stdout[-1500:]}")
    return root.path, digest.hexdigest(), small


# ---------------------------------------------------------------- the reader


class Reader(threading.Thread):
    """Reads FD in 1 MiB reads until SIZE bytes have come (not until end of
    file: the writing end may stay open elsewhere), optionally hashing."""

    def __init__(self, fd, size, hash_it=False):
        super().__init__(daemon=True)
        self.fd = fd
        self.size = size
        self.hash = hashlib.sha256() if hash_it else None
        self.bytes = 0
        self.eof = False
        self.error = None
        self.t_first = None
        self.t_done = None
        self.stop = threading.Event()

    def run(self):
        buf = bytearray(MIB)
        view = memoryview(buf)
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        try:
            while self.bytes < self.size and not self.stop.is_set():
                if not poller.poll(200):
                    continue
                n = os.readv(self.fd, [view[:min(MIB, self.size - self.bytes)]])
                if n == 0:
                    self.eof = True
                    break
                if self.t_first is None:
                    self.t_first = time.monotonic()
                if self.hash is not None:
                    self.hash.update(view[:n])
                self.bytes += n
        except OSError as e:
            self.error = e
        self.t_done = time.monotonic()

    def finish(self, what, timeout=60.0):
        """Waits for the reader (up to TIMEOUT after the writer is done)."""
        self.join(timeout)
        if self.is_alive():
            self.stop.set()
            self.join()
        if self.error:
            raise BenchError(f"{what}: reading the pipe failed: {self.error}")
        if self.bytes != self.size:
            raise BenchError(f"{what}: {self.bytes} bytes came through the pipe, "
                             f"expected {self.size}")

    def extra_bytes(self):
        """Bytes still arriving after the expected size (there should be none)."""
        r, _, _ = select.select([self.fd], [], [], 0.2)
        if not r:
            return 0
        try:
            return len(os.read(self.fd, MIB))
        except BlockingIOError:
            return 0


# ---------------------------------------------------------------- the two sides


def download_ours(svc, path, size, hash_it=False):
    r, w = os.pipe()
    try:
        reader = Reader(r, size, hash_it)
        fds = Gio.UnixFDList.new()
        fds.append(w)  # a duplicate: the message holds it until it is freed
        os.close(w)
        w = -1
        cpu0 = cpu_seconds(svc.proc.pid)
        reader.start()
        t0 = time.monotonic()
        try:
            svc.call(path, FILES_IFACE, "Download", GLib.Variant("(sha{sv})", (BIG, 0, {})),
                     None, fd_list=fds, what="Download")
        except BaseException:
            reader.stop.set()
            reader.join()
            raise
        t_reply = time.monotonic()
        del fds
        reader.finish("Download")
        cpu = cpu_seconds(svc.proc.pid) - cpu0
        extra = reader.extra_bytes() if hash_it else 0
    finally:
        if w >= 0:
            os.close(w)
        os.close(r)
    if extra:
        raise BenchError(f"Download: more than {size} bytes came ({extra} extra)")
    t_end = max(t_reply, reader.t_done)
    return {"s": t_end - t0, "reply_s": t_reply - t0, "last_byte_s": reader.t_done - t0,
            "first_byte_s": (reader.t_first or reader.t_done) - t0, "service_cpu_s": cpu,
            "sha256": reader.hash.hexdigest() if hash_it else None}


class Guestfish:
    """A guestfish server (`guestfish --listen`) with its appliance launched
    and the guest mounted by inspection."""

    def __init__(self, ctx, workdir):
        self.env = libguestfs_env()
        self.pid = None
        out = os.path.join(workdir, "guestfish-listen.out")
        err = os.path.join(workdir, "guestfish-listen.err")
        self.errfile = err
        argv = ["guestfish", "--listen", "--ro", "-c", URI, "-d", DOMAIN, "-i"]
        t0 = time.monotonic()
        with open(out, "w") as fo, open(err, "w") as fe:
            r = subprocess.run(argv, env=self.env, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                               timeout=900)
        self.launch_s = time.monotonic() - t0
        with open(out) as f:
            text = f.read()
        for part in text.replace(";", " ").split():
            if part.startswith("GUESTFISH_PID="):
                self.pid = int(part.split("=", 1)[1])
        if self.pid is not None:
            ctx.cleanup.push(self.exit, what=f"stop guestfish server {self.pid}")
        if r.returncode != 0 or self.pid is None:
            raise BenchError(f"{' '.join(argv)} failed (status {r.returncode}), printed "
                             f"{text!r}:\n{tail(err)}")

    def remote(self, *cmd, timeout=900):
        argv = ["guestfish", f"--remote={self.pid}", "--", *cmd]
        return subprocess.run(argv, env=self.env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout)

    def cpu(self):
        return cpu_seconds(self.pid)

    def exit(self):
        """`exit` through the socket; SIGTERM, then SIGKILL, if that fails."""
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        try:
            self.remote("exit", timeout=60)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 30
        sig = 15
        while os.path.exists(f"/proc/{pid}"):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break  # a zombie of the init process: gone for our purposes
            except OSError:
                break
            if time.monotonic() > deadline:
                if sig == 9:
                    log(f"bench: guestfish server {pid} does not exit")
                    break
                log(f"bench: guestfish server {pid} still there after exit; signal {sig}")
                os.kill(pid, sig)
                deadline = time.monotonic() + 10
                sig = 9
            time.sleep(0.1)


def download_guestfish(gf, fifo, size, hash_it=False):
    fd = os.open(fifo, os.O_RDWR)  # never blocks, and guestfish's open neither
    try:
        reader = Reader(fd, size, hash_it)
        cpu0 = gf.cpu()
        reader.start()
        t0 = time.monotonic()
        r = gf.remote("download", BIG, fifo)
        t_exit = time.monotonic()
        if r.returncode != 0:
            reader.stop.set()
            reader.join()
            raise BenchError(f"guestfish --remote download failed (status {r.returncode}): "
                             f"{r.stderr.strip()}")
        reader.finish("guestfish download")
        cpu = gf.cpu() - cpu0
        extra = reader.extra_bytes() if hash_it else 0
    finally:
        os.close(fd)
    if extra:
        raise BenchError(f"guestfish download: more than {size} bytes came ({extra} extra)")
    t_end = max(t_exit, reader.t_done)
    return {"s": t_end - t0, "reply_s": t_exit - t0, "last_byte_s": reader.t_done - t0,
            "first_byte_s": (reader.t_first or reader.t_done) - t0, "guestfish_cpu_s": cpu,
            "sha256": reader.hash.hexdigest() if hash_it else None}


def readfile_ours(svc, path, n, expected):
    times = []
    for _ in range(n):
        t0 = time.monotonic()
        reply = svc.call(path, FILES_IFACE, "ReadFile", GLib.Variant("(sa{sv})", (SMALL, {})),
                         "(ay)")
        times.append(time.monotonic() - t0)
        data = reply.get_child_value(0).get_data_as_bytes().get_data()
        if data != expected:
            raise BenchError(f"ReadFile {SMALL}: {len(data)} bytes, not the file's content")
    return times


# ---------------------------------------------------------------- warm calls


class BareGuestfs:
    """A python3-guestfs handle on DOMAIN, read-only, with the service's
    backend and settings, inspected and mounted read-only (parents first)."""

    def __init__(self, ctx):
        import guestfs
        t0 = time.monotonic()
        g = guestfs.GuestFS(python_return_dict=True)
        self.g = g
        ctx.cleanup.push(self.close, what="close the bare libguestfs handle")
        g.set_backend("libvirt:" + URI)
        g.set_backend_settings(["force_tcg"])
        g.add_domain(DOMAIN, libvirturi=URI, readonly=True)
        g.launch()
        roots = g.inspect_os()
        if len(roots) != 1:
            raise BenchError(f"bare libguestfs: {len(roots)} operating systems on {DOMAIN}")
        mps = g.inspect_get_mountpoints(roots[0])
        for mp in sorted(mps, key=len):
            g.mount_ro(mps[mp], mp)
        self.launch_s = time.monotonic() - t0

    def close(self):
        if self.g is not None:
            g, self.g = self.g, None
            g.shutdown()
            g.close()


def warm_calls(svc, path, bare, n):
    """N rounds of: Stat, statns, ReadFile, pread, Get; returns {kind: [seconds]}."""
    size = bare.g.statns(WARM_FILE)["st_size"]
    expected = bare.g.pread(WARM_FILE, size, 0)
    if len(expected) != size:
        raise BenchError(f"bare pread {WARM_FILE}: {len(expected)} bytes, statns says {size}")
    stat_args = GLib.Variant("(sa{sv})", (WARM_FILE, {}))
    t = {k: [] for k in ("stat", "statns", "readfile", "pread", "get")}

    def ours_stat():
        reply = svc.call(path, FILES_IFACE, "Stat", stat_args, "(a{sv})")
        if reply.unpack()[0].get("size") != size:
            raise BenchError(f"Stat {WARM_FILE}: {reply.unpack()!r}, size not {size}")

    def ours_read():
        reply = svc.call(path, FILES_IFACE, "ReadFile", stat_args, "(ay)")
        if reply.get_child_value(0).get_data_as_bytes().get_data() != expected:
            raise BenchError(f"ReadFile {WARM_FILE}: not the file's content")

    def bare_stat():
        if bare.g.statns(WARM_FILE)["st_size"] != size:
            raise BenchError(f"bare statns {WARM_FILE}: size changed")

    def bare_read():
        if bare.g.pread(WARM_FILE, size, 0) != expected:
            raise BenchError(f"bare pread {WARM_FILE}: not the file's content")

    def get():
        svc.get_property(path, DOMAIN_IFACE, "ApplianceState")

    pairs = [(("stat", ours_stat), ("statns", bare_stat)),
             (("readfile", ours_read), ("pread", bare_read))]
    for _ in range(10):  # not counted: caches of both sides
        for pair in pairs:
            for _, fn in pair:
                fn()
        get()
    for rnd in range(n):
        for pair in pairs:
            for kind, fn in (pair if rnd % 2 == 0 else pair[::-1]):
                t0 = time.perf_counter()
                fn()
                t[kind].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        get()
        t["get"].append(time.perf_counter() - t0)
    return t, size


def warm_report(t, size, n):
    """Prints the warm-call table; returns the summary's fields."""
    p = {k: (percentile(v, 50), percentile(v, 90)) for k, v in t.items()}
    stat_ratio = p["stat"][0] / p["statns"][0]
    read_ratio = p["readfile"][0] / p["pread"][0]
    print(f"Warm calls on {WARM_FILE} ({size} bytes), {n} rounds, alternating who goes first; "
          f"session bus, no polkit")
    rows = [
        ["Stat vs statns", _ms(p["stat"][0]), _ms(p["statns"][0]), f"{stat_ratio:.2f}",
         _ms(p["stat"][1]), _ms(p["statns"][1])],
        ["ReadFile vs pread", _ms(p["readfile"][0]), _ms(p["pread"][0]), f"{read_ratio:.2f}",
         _ms(p["readfile"][1]), _ms(p["pread"][1])],
        ["empty D-Bus round trip (Get)", _ms(p["get"][0]), "", "", _ms(p["get"][1]), ""],
    ]
    print(fmt_table(rows, ["", "ours p50", "bare p50", "ours/bare", "ours p90", "bare p90"]))
    ok = stat_ratio <= TARGET_WARM_RATIO and read_ratio <= TARGET_WARM_RATIO
    print(f"target: warm Stat and ReadFile <= {TARGET_WARM_RATIO:.0f}x bare libguestfs: "
          f"Stat {stat_ratio:.2f}x, ReadFile {read_ratio:.2f}x => {'MET' if ok else 'MISSED'}")

    def r(x):
        return round(x * 1000, 3)

    return {
        "warm_file": WARM_FILE,
        "warm_rounds": n,
        "warm_stat_p50_ms": r(p["stat"][0]), "warm_stat_p90_ms": r(p["stat"][1]),
        "warm_statns_p50_ms": r(p["statns"][0]), "warm_statns_p90_ms": r(p["statns"][1]),
        "warm_readfile_p50_ms": r(p["readfile"][0]), "warm_readfile_p90_ms": r(p["readfile"][1]),
        "warm_pread_p50_ms": r(p["pread"][0]), "warm_pread_p90_ms": r(p["pread"][1]),
        "warm_get_p50_ms": r(p["get"][0]), "warm_get_p90_ms": r(p["get"][1]),
        "warm_stat_ratio": round(stat_ratio, 3),
        "warm_readfile_ratio": round(read_ratio, 3),
        "target_warm_met": ok,
    }


# Runs as nobody (polkitstack's run_as_nobody): N rounds of Stat, ReadFile
# and Get on OBJ, their times, and the file's bytes (hex) as JSON.
POLKIT_CLIENT = r'''
import json, os, sys, time
from gi.repository import Gio, GLib

address, obj, path, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
result = {'uid': os.getuid(), 'euid': os.geteuid(), 'groups': os.getgroups()}
try:
    bus = Gio.DBusConnection.new_for_address_sync(
        address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)

    def call(iface, method, args, rtype):
        return bus.call_sync('org.libvirt.GuestFS', obj, iface, method, args,
                             GLib.VariantType(rtype), Gio.DBusCallFlags.NONE, 600000, None)

    arg = GLib.Variant('(sa{sv})', (path, {}))
    kinds = {
        'stat': lambda: call('org.libvirt.GuestFS.Files', 'Stat', arg, '(a{sv})'),
        'readfile': lambda: call('org.libvirt.GuestFS.Files', 'ReadFile', arg, '(ay)'),
        'get': lambda: call('org.freedesktop.DBus.Properties', 'Get',
                            GLib.Variant('(ss)', ('org.libvirt.GuestFS.Domain',
                                                  'ApplianceState')), '(v)'),
    }
    for _ in range(10):
        for fn in kinds.values():
            fn()
    times = {k: [] for k in kinds}
    for _ in range(n):
        for k, fn in kinds.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    result['times'] = times
    result['data'] = kinds['readfile']().get_child_value(0).get_data_as_bytes().get_data().hex()
except GLib.Error as error:
    result['error'] = Gio.DBusError.get_remote_error(error) or str(error)
    result['message'] = error.message
print(json.dumps(result))
'''

POLKIT_RULE = '''// lgd-bench: nobody may read %(file)s of %(domain)s (removed by tools/bench)
polkit.addRule(function(action, subject) {
    if (subject.user == "nobody" && action.lookup("domain") == "%(domain)s"
        && action.id == "org.libvirt.guestfs.read" && action.lookup("path") == "%(file)s") {
        return polkit.Result.YES;
    }
});
'''


def warm_polkit(ctx, expected, n):
    """Warm Stat, ReadFile and Get as user nobody on the system bus through
    polkit (polkitstack's stack); returns {kind: [seconds]}."""
    tests = os.path.join(ctx.repo, "tests", "integration")
    os.environ["LGD_DAEMON"] = os.path.abspath(daemon_binary(ctx))
    if tests not in sys.path:
        sys.path.insert(0, tests)
    try:
        import polkitstack
    except ImportError as e:
        raise BenchError(f"cannot import {tests}/polkitstack.py: {e}") from None
    rule = polkitstack.RuleFile("10-lgd-bench-files.rules")
    cleanups = []
    ctx.cleanup.push(lambda: polkitstack.run_cleanups(cleanups), what="polkit stack")
    try:
        polkitstack.check_prerequisites(rule)
    except BaseException as e:  # pytest's fail() is not an Exception
        raise BenchError(f"polkit stack: {e}") from None
    cleanups.append(rule.remove)
    rule.write(POLKIT_RULE % {"domain": DOMAIN, "file": WARM_FILE})
    stack = polkitstack.Stack(cleanups, ["--connect", URI, "--force-tcg", "--idle-timeout", "900"],
                              POLKIT_CLIENT, "bench-client.py")
    root = stack.service.client
    path = root.lookup_domain(DOMAIN)
    t0 = time.monotonic()
    root.call(path, FILES_IFACE, "Stat", GLib.Variant("(sa{sv})", (WARM_FILE, {})))
    log(f"bench: files: system-bus service appliance up, first Stat {time.monotonic() - t0:.2f} s")
    deadline = time.monotonic() + 30
    while True:  # polkitd reads new rules on its own schedule
        report = stack.run_as_nobody([stack.bus.address, path, WARM_FILE, n])
        if "error" not in report or time.monotonic() > deadline:
            break
        time.sleep(1)
    try:
        root.stop_appliances()
    except Exception as e:
        log(f"bench: files: stopping the system-bus appliance: {e}")
    errors = polkitstack.run_cleanups(cleanups)
    del cleanups[:]
    if "error" in report:
        raise BenchError(f"as nobody through polkit: {report['error']}: {report['message']}")
    if bytes.fromhex(report["data"]) != expected:
        raise BenchError(f"ReadFile {WARM_FILE} as nobody: not the file's content")
    for e in errors:
        log(f"bench: files: polkit stack clean-up: {e}")
    return report["times"]


def polkit_report(t, session, n):
    """Prints the system-bus figures against the session bus's; returns the
    summary's fields."""
    p = {k: (percentile(v, 50), percentile(v, 90)) for k, v in t.items()}
    s50 = {k: percentile(v, 50) for k, v in session.items()}
    print(f"The same warm calls as user nobody on a system bus through polkit (a rule allows "
          f"it; service --system --verbose), {n} rounds")
    rows = [[k, _ms(p[k][0]), _ms(p[k][1]), _ms(s50[k]), _ms(p[k][0] - s50[k])]
            for k in ("stat", "readfile", "get")]
    print(fmt_table(rows, ["", "system p50", "system p90", "session p50", "difference"]))
    return {f"warm_polkit_{k}_p50_ms": round(p[k][0] * 1000, 3) for k in p} | \
        {f"warm_polkit_{k}_p90_ms": round(p[k][1] * 1000, 3) for k in p}


def warm_with_polkit(ctx, t, expected, n, problems):
    """The polkit part, unless --no-warm-polkit; a failure is a problem, not
    the case's end (the session-bus figures stand)."""
    if ctx.args.no_warm_polkit:
        return {}
    try:
        pt = warm_polkit(ctx, expected, n)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # the stack fails with pytest's outcomes and asserts
        problems.append(f"warm calls through polkit: {type(e).__name__}: {e}")
        return {}
    print()
    return polkit_report(pt, t, n)


def run_warm_only(ctx):
    """The warm comparison alone, on a small image of its own."""
    args = ctx.args
    ctx.ensure_daemons()
    _, images = bench_image_set(ctx)
    root = images.debian_root(name="warm-root.img", hostname="lgd-bench-files")
    define_one_disk_domain(ctx, URI, DOMAIN, root.path)
    load_before = machine_load()
    bus = PrivateBus(ctx.cleanup, "session", "files-warm")
    svc = Service(ctx, bus, "ours", ["--idle-timeout", "900",
                                     "--cache-dir", os.path.join(bus.dir, "cache")])
    path = svc.lookup_domain(DOMAIN)
    t0 = time.monotonic()
    svc.call(path, FILES_IFACE, "Stat", GLib.Variant("(sa{sv})", (WARM_FILE, {})), "(a{sv})")
    log(f"bench: files: service appliance up, first Stat {time.monotonic() - t0:.2f} s")
    bare = BareGuestfs(ctx)
    log(f"bench: files: bare libguestfs handle up in {bare.launch_s:.2f} s")
    t, size = warm_calls(svc, path, bare, args.warm_calls)
    expected = bare.g.pread(WARM_FILE, size, 0)
    bare.close()
    status = svc.stop()
    problems = [] if status == 0 else \
        [f"libvirt-guestfs-dbus exited with status {status} on SIGTERM"]
    result = warm_report(t, size, args.warm_calls)
    result.update(warm_with_polkit(ctx, t, expected, args.warm_calls, problems))
    for p in problems:
        print(f"problem: {p}")
    print(load_note(load_before, machine_load()))
    result.update({"domain": DOMAIN, "uri": URI, "target_met": result["target_warm_met"],
                   "problems": problems})
    return result


# ---------------------------------------------------------------- entry


def _s(x, nd=2):
    return "-" if x is None else f"{x:.{nd}f} s"


def _ms(x):
    return "-" if x is None else f"{x * 1000:.2f} ms"


def _mibs(size, secs):
    return size / MIB / secs


def run(ctx):
    args = ctx.args
    if args.warm_calls < 1:
        raise BenchError("--warm-calls must be at least 1")
    if args.files_warm_only:
        return run_warm_only(ctx)
    if args.files_runs < 1 or args.readfile_calls < 1 or args.files_size < 1:
        raise BenchError("--files-runs, --files-size and --readfile-calls must be at least 1")
    size = args.files_size * MIB
    ctx.ensure_daemons()

    t = time.monotonic()
    image, sha, small = build_image(ctx, size)
    define_one_disk_domain(ctx, URI, DOMAIN, image)
    print(f"domain {DOMAIN}: shut off, one raw disk {image} "
          f"({os.path.getsize(image) // MIB} MiB ext4, Debian 12 look-alike) holding {BIG} "
          f"({args.files_size} MiB pseudo-random) and {SMALL} (4 KiB); built in "
          f"{time.monotonic() - t:.1f} s")

    load_before = machine_load()
    bus = PrivateBus(ctx.cleanup, "session", "files")
    fifo = os.path.join(bus.dir, "guestfish.fifo")
    os.mkfifo(fifo, 0o600)

    # Launches, not counted.
    cache_dir = os.path.join(bus.dir, "cache")  # not the user's: the cache outlives the service
    svc = Service(ctx, bus, "ours", ["--idle-timeout", "900", "--cache-dir", cache_dir])
    path = svc.lookup_domain(DOMAIN)
    t0 = time.monotonic()
    first = readfile_ours(svc, path, 1, small)[0]
    ours_launch = time.monotonic() - t0
    log(f"bench: files: service appliance up, first ReadFile {ours_launch:.2f} s")
    gf = Guestfish(ctx, bus.dir)
    log(f"bench: files: guestfish --listen -i up in {gf.launch_s:.2f} s (pid {gf.pid})")

    # Checked, not counted: content, and caches warmed for both.
    check_ours = download_ours(svc, path, size, hash_it=True)
    check_theirs = download_guestfish(gf, fifo, size, hash_it=True)
    for who, c in (("Download", check_ours), ("guestfish download", check_theirs)):
        if c["sha256"] != sha:
            raise BenchError(f"{who}: SHA-256 {c['sha256']}, the file's is {sha}")
    log(f"bench: files: checked downloads (not counted): ours {check_ours['s']:.2f} s, "
        f"guestfish {check_theirs['s']:.2f} s, content equal to the file's")

    ours, theirs = [], []
    n = args.files_runs
    for rep in range(n):
        order = ("theirs", "ours") if rep % 2 == 0 else ("ours", "theirs")
        for who in order:
            if who == "ours":
                r = download_ours(svc, path, size)
                ours.append(r)
            else:
                r = download_guestfish(gf, fifo, size)
                theirs.append(r)
            log(f"bench: files run {rep + 1}/{n} {who}: {r['s']:.2f} s, "
                f"{_mibs(size, r['s']):.1f} MiB/s")

    rf = readfile_ours(svc, path, args.readfile_calls, small)
    state = svc.get_property(path, DOMAIN_IFACE, "ApplianceState")
    gf.exit()
    bare = BareGuestfs(ctx)
    log(f"bench: files: bare libguestfs handle up in {bare.launch_s:.2f} s")
    warm_t, warm_size = warm_calls(svc, path, bare, args.warm_calls)
    warm_expected = bare.g.pread(WARM_FILE, warm_size, 0)
    bare.close()
    status = svc.stop()
    load_after = machine_load()
    problems = []
    if status != 0:
        problems.append(f"libvirt-guestfs-dbus exited with status {status} on SIGTERM; "
                        f"log tail:\n{tail(svc.logfile)}")

    med_ours = median([r["s"] for r in ours])
    med_theirs = median([r["s"] for r in theirs])
    tp_ours = _mibs(size, med_ours)
    tp_theirs = _mibs(size, med_theirs)
    ratio = tp_ours / tp_theirs
    p50 = percentile(rf, 50)
    p90 = percentile(rf, 90)
    cpu_ours = median([r["service_cpu_s"] for r in ours])
    cpu_theirs = median([r["guestfish_cpu_s"] for r in theirs])

    print(f"Download of {args.files_size} MiB through a pipe, median of {n} transfers each, "
          f"alternating who goes first, appliances warm")
    rows = [
        ["transfer time", _s(med_ours), _s(med_theirs), f"{med_ours / med_theirs:.2f}"],
        ["throughput (MiB/s)", f"{tp_ours:.1f}", f"{tp_theirs:.1f}", f"{ratio:.2f}"],
        ["  first byte after", _s(median([r["first_byte_s"] for r in ours]), 3),
         _s(median([r["first_byte_s"] for r in theirs]), 3), ""],
        ["  reply / client exit after", _s(median([r["reply_s"] for r in ours]), 3),
         _s(median([r["reply_s"] for r in theirs]), 3), ""],
        ["CPU of the service / guestfish server", _s(cpu_ours), _s(cpu_theirs),
         f"{cpu_ours / cpu_theirs:.2f}" if cpu_theirs else "-"],
        ["launch + mount (not counted)", _s(ours_launch), _s(gf.launch_s), ""],
        ["checked download (not counted)", _s(check_ours["s"]), _s(check_theirs["s"]), ""],
    ]
    print(fmt_table(rows, ["median", "libvirt-guestfs-dbus", "guestfish", "ours/theirs"]))
    print()
    print("runs (s):")
    print("  ours      " + ", ".join(f"{r['s']:.2f}" for r in ours))
    print("  guestfish " + ", ".join(f"{r['s']:.2f}" for r in theirs))
    print(f"ReadFile {SMALL} (4 KiB), warm appliance, {args.readfile_calls} calls: "
          f"p50 {_ms(p50)}, p90 {_ms(p90)}, min {_ms(min(rf))}, max {_ms(max(rf))} "
          f"(first, launching: {first:.2f} s); appliance afterwards: {state}")

    print()
    warm = warm_report(warm_t, warm_size, args.warm_calls)
    warm.update(warm_with_polkit(ctx, warm_t, warm_expected, args.warm_calls, problems))
    tp_ok = ratio >= TARGET_THROUGHPUT_RATIO
    rf_ok = p50 < TARGET_READFILE_P50_S
    target = tp_ok and rf_ok and warm["target_warm_met"]
    print()
    print(f"target: Download throughput >= {TARGET_THROUGHPUT_RATIO}x guestfish's: "
          f"{'yes' if tp_ok else 'NO'} ({ratio:.2f}x); ReadFile p50 < "
          f"{TARGET_READFILE_P50_S * 1000:.0f} ms: {'yes' if rf_ok else 'NO'} "
          f"({p50 * 1000:.2f} ms) => {'MET' if target else 'MISSED'}")
    for p in problems:
        print(f"problem: {p}")
    print(load_note(load_before, load_after))

    def rnd(x, nd=4):
        return None if x is None else round(x, nd)

    def slim(r):
        return {k: rnd(v) for k, v in r.items() if k != "sha256"}

    return {
        **warm,
        "domain": DOMAIN,
        "uri": URI,
        "file_mib": args.files_size,
        "runs": n,
        "download_ours_s": rnd(med_ours),
        "download_guestfish_s": rnd(med_theirs),
        "throughput_ours_mib_s": rnd(tp_ours, 2),
        "throughput_guestfish_mib_s": rnd(tp_theirs, 2),
        "throughput_ratio": rnd(ratio, 3),
        "readfile_calls": args.readfile_calls,
        "readfile_p50_ms": rnd(p50 * 1000, 3),
        "readfile_p90_ms": rnd(p90 * 1000, 3),
        "launch_ours_s": rnd(ours_launch),
        "launch_guestfish_s": rnd(gf.launch_s),
        "runs_ours": [slim(r) for r in ours],
        "runs_guestfish": [slim(r) for r in theirs],
        "target_throughput_met": tp_ok,
        "target_readfile_met": rf_ok,
        "target_met": target,
        "machine": {"before": load_before, "after": load_after},
        "problems": problems,
    }
