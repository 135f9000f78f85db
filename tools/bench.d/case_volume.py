"""Case `volume`: raw volume bytes (issue 5, point 8; issue 14, item 4):
Volume.Download of a 1 GiB raw volume against `virsh vol-download` of the
same volume and against `cat` of its file (the physical limit), and a
sparse Download of an empty 10 GiB volume. The service's Download runs both
ways it can move the bytes: its own copy of the volume's file (the default
on this local connection, Job Transport "local-copy") and libvirt's storage
volume stream (option transport=libvirt-stream, what a remote connection
gets); the log of the service must say the default run took the local copy.
Over qemu+tcp (--volume-tcp, on by default): libvirt 9.0 on Debian 12 has
no virtproxyd and the shared libvirtd is not restarted with --listen, so a
relay of this script's own (one process, 1 MiB buffers, loopback only, as
tests/integration/test_volume_stream.py's forwarder) joins TCP connections
on 127.0.0.1 to libvirtd's UNIX socket; the service gets a second
connection to qemu+tcp://127.0.0.1:PORT/system and its Download of that
connection's volume object (the libvirt stream: the URI is remote) runs
against `virsh -c` the same URI, into a file, alternating, median. Both
pay the relay alike; the target is >= 0.9x virsh.

Set-up: a transient directory pool, lgd-bench-vol, on qemu:///system over
a directory of our own, /var/lib/libvirt/images/lgd-bench-vol-XXXX/pool,
holding random-1g.raw (--volume-size MiB of os.urandom bytes, written in
4 MiB chunks: nothing on the way can compress them) and empty-10g.raw
(--volume-sparse-size GiB, a file that is all hole, made with truncate).
Targets go into .../out, on the same file system. Pool, files, service and
buses are removed at the end, also after an error or Ctrl-C.

The service is started once, fresh, on a private session bus
(`--session --connect qemu:///system --force-tcg`), so the calling root user
is its owner and no polkit is involved; the Download calls go to the
volume's object (Manager.LookupVolume of its path).

Dense Download, into two kinds of sink:
  file  a regular file, created (O_TRUNC) for each run: the service gets
        the fd; virsh gets the path (`virsh -c qemu:///system vol-download
        --pool lgd-bench-vol random-1g.raw FILE`); `cat VOLFILE > FILE`.
        The previous run's file is removed and the machine synced before
        each run (not timed), so that no run pays for another's writeback.
  pipe  the write end of a pipe (--volume-pipe-size KiB, set on it with
        F_SETPIPE_SZ for every side alike) that a reader thread of this
        script drains with 1 MiB reads, counting bytes: the service gets
        the write end; virsh writes to /dev/stdout, which is the pipe;
        `cat VOLFILE | reader`.
A run's time goes from the call (or the process start) until the reply (or
the process exit) has come and, for a pipe, the reader holds every byte.
Nothing is dropped from the page cache: every side runs once first, not
counted (the service's and virsh's first runs are checked with SHA-256),
so that the volume is cached for all of them alike; then --volume-runs
rounds, each running every side once, in an order rotated per round; the
median per side is reported. Throughput in MB/s (10^6 bytes/s).

Sparse Download: the empty volume with sparse=true into a regular file
against `virsh vol-download --sparse`, --volume-runs each, median; the
result must have the volume's size and (almost) no blocks allocated.

Targets: issue 14: the local Download at least 3x virsh vol-download's
throughput and at least 0.5x cat's, into a file; issue 5: the stream at
least 0.9x virsh (both sinks); sparse 10 GiB under 0.1 s.
"""

import argparse
import fcntl
import hashlib
import os
import resource
import select
import subprocess
import tempfile
import threading
import time

from benchlib import (BenchError, GLib, Gio, PrivateBus, Service, cpu_seconds, fmt_table,
                      load_note, log, machine_load, median, open_libvirt, pid_of, rss_kib,
                      stop_process, system_busy_seconds, tail)

NAME = "volume"
ORDER = 50
DESCRIPTION = "Volume.Download of 1 GiB vs virsh vol-download and cat; sparse 10 GiB download"

URI = "qemu:///system"
POOL = "lgd-bench-vol"
IMAGES_DIR = "/var/lib/libvirt/images"
DENSE = "random-1g.raw"
SPARSE = "empty-10g.raw"
MANAGER = "/org/libvirt/GuestFS/Manager"
MANAGER_IFACE = "org.libvirt.GuestFS.Manager"
VOLUME_IFACE = "org.libvirt.GuestFS.Volume"
MIB = 1024 * 1024
GIB = 1024 * MIB
CHUNK = 4 * MIB
F_SETPIPE_SZ = 1031
CALL_TIMEOUT = 600.0

TARGET_RATIO = 0.9  # the libvirt stream against virsh (issue 5)
TARGET_LOCAL_VIRSH = 3.0  # the local copy against virsh (issue 14)
TARGET_LOCAL_CAT = 0.5  # the local copy against cat (issue 14)
TARGET_TCP = 0.9  # over qemu+tcp against virsh over the same URI (issue 14)
LIBVIRT_SOCKET = "/run/libvirt/libvirt-sock"
RELAY = r'''
import socket, sys, threading
target = sys.argv[1]
server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(64)
print(server.getsockname()[1], flush=True)

def pump(src, dst):
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    try:
        while True:
            n = src.recv_into(buf)
            if not n:
                break
            dst.sendall(view[:n])
    except OSError:
        pass
    for x in (src, dst):
        try:
            x.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

while True:
    client, _ = server.accept()
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(target)
    except OSError:
        client.close()
        continue
    threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
    threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
'''
STREAM = {"transport": GLib.Variant("s", "libvirt-stream")}
TARGET_SPARSE_S = 0.1
# A sparse result may hold a few blocks (metadata, a partial block): more is a failure.
SPARSE_ALLOC_LIMIT = 1 * MIB


def add_arguments(parser):
    g = parser.add_argument_group("case volume")
    g.add_argument("--volume-runs", type=int, default=5, metavar="R",
                   help="timed runs of every side, median reported (default 5: the page "
                        "cache and writeback make single runs noisy)")
    g.add_argument("--volume-size", type=int, default=1024, metavar="MIB",
                   help="size of the random raw volume in MiB (default 1024)")
    g.add_argument("--volume-sparse-size", type=int, default=10, metavar="GIB",
                   help="size of the empty sparse volume in GiB (default 10)")
    g.add_argument("--volume-tcp", action=argparse.BooleanOptionalAction, default=True,
                   help="also Download over qemu+tcp (through a loopback relay to libvirtd's "
                        "socket) against virsh over the same URI (default on)")
    g.add_argument("--volume-pipe-size", type=int, default=1024, metavar="KIB",
                   help="capacity of the pipes (F_SETPIPE_SZ) for every side; 0 keeps the "
                        "system's default, 64 KiB (default 1024)")


# ---------------------------------------------------------------- set-up


def make_volumes(ctx, size, sparse_size):
    """The directory, the two volume files and the transient pool; returns
    (pool dir, out dir, sha256 of the random volume)."""
    import libvirt
    conn = open_libvirt(URI)
    try:
        try:
            old = conn.storagePoolLookupByName(POOL)
        except libvirt.libvirtError:
            old = None
        if old is not None:
            raise BenchError(f"storage pool {POOL} exists already (left by an interrupted run?): "
                             f"virsh -c {URI} pool-destroy {POOL}; virsh -c {URI} pool-undefine "
                             f"{POOL}; and remove {IMAGES_DIR}/lgd-bench-vol-*")
    finally:
        conn.close()
    top = tempfile.mkdtemp(prefix="lgd-bench-vol-", dir=IMAGES_DIR)
    ctx.cleanup.push(_rmtree, top, what=f"remove {top}")
    os.chmod(top, 0o755)
    pool_dir = os.path.join(top, "pool")
    out_dir = os.path.join(top, "out")
    os.mkdir(pool_dir, 0o755)
    os.mkdir(out_dir, 0o755)

    t = time.monotonic()
    digest = hashlib.sha256()
    with open(os.path.join(pool_dir, DENSE), "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, CHUNK))
            digest.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    with open(os.path.join(pool_dir, SPARSE), "wb") as f:
        f.truncate(sparse_size)
    os.sync()
    made_s = time.monotonic() - t

    xml = f"""<pool type='dir'>
  <name>{POOL}</name>
  <target><path>{pool_dir}</path></target>
</pool>
"""
    conn = open_libvirt(URI)
    try:
        ctx.cleanup.push(destroy_pool, what=f"destroy pool {POOL}")
        pool = conn.storagePoolCreateXML(xml, 0)  # transient: destroying it removes it
        names = sorted(pool.listVolumes())
        if names != sorted([DENSE, SPARSE]):
            raise BenchError(f"pool {POOL} lists {names}, expected {DENSE} and {SPARSE}")
        info = pool.storageVolLookupByName(SPARSE).info()
    finally:
        conn.close()
    if info[1] != sparse_size or info[2] > SPARSE_ALLOC_LIMIT:
        raise BenchError(f"{SPARSE}: capacity {info[1]}, allocation {info[2]}: not an empty "
                         f"sparse volume of {sparse_size} bytes")
    return pool_dir, out_dir, digest.hexdigest(), made_s


def destroy_pool():
    import libvirt
    conn = open_libvirt(URI)  # a connection of its own: libvirtd may have restarted
    try:
        try:
            pool = conn.storagePoolLookupByName(POOL)
        except libvirt.libvirtError:
            return
        persistent = pool.isPersistent()  # a transient pool is gone once destroyed
        if pool.isActive():
            pool.destroy()
        if persistent:
            pool.undefine()
    finally:
        conn.close()


def _rmtree(path):
    import shutil
    shutil.rmtree(path, ignore_errors=True)


def lookup_volume(svc, path, timeout=30.0):
    """The volume's object path; waits for a rescan if it is not published yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return svc.call(MANAGER, MANAGER_IFACE, "LookupVolume", GLib.Variant("(s)", (path,)),
                            "(o)", timeout=30).unpack()[0]
        except BenchError as e:
            if "NotFound" not in str(e) or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def start_relay(ctx):
    """The loopback relay to libvirtd's socket; returns its qemu+tcp URI."""
    if not os.path.exists(LIBVIRT_SOCKET):
        raise BenchError(f"{LIBVIRT_SOCKET} is missing: is libvirtd running?")
    proc = subprocess.Popen(["/usr/bin/python3", "-c", RELAY, LIBVIRT_SOCKET],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    ctx.cleanup.push(stop_process, proc, "relay", 5.0, what="stop the qemu+tcp relay")
    port = proc.stdout.readline().strip()
    if not port:
        raise BenchError("the qemu+tcp relay did not start")
    return f"qemu+tcp://127.0.0.1:{port}/system"


def lookup_volume_on(svc, uri, path, timeout=30.0):
    """The object of the volume at path on the service's connection uri."""
    deadline = time.monotonic() + timeout
    while True:
        objs = svc.call("/org/libvirt/GuestFS", "org.freedesktop.DBus.ObjectManager",
                        "GetManagedObjects", None, "(a{oa{sa{sv}}})", timeout=30).unpack()[0]
        for obj, ifaces in objs.items():
            props = ifaces.get(VOLUME_IFACE)
            if props and props.get("Connection") == uri and props.get("Path") == path:
                return obj
        if time.monotonic() > deadline:
            raise BenchError(f"no volume object for {path} on {uri}")
        time.sleep(0.5)


# ---------------------------------------------------------------- measuring


class Reader(threading.Thread):
    """Drains FD with 1 MiB reads until SIZE bytes have come (not until end
    of file: the writing end may stay open elsewhere for a while)."""

    def __init__(self, fd, size, hash_it=False):
        super().__init__(daemon=True)
        self.fd = fd
        self.size = size
        self.hash = hashlib.sha256() if hash_it else None
        self.bytes = 0
        self.error = None
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
                    break
                if self.hash is not None:
                    self.hash.update(view[:n])
                self.bytes += n
        except OSError as e:
            self.error = e
        self.t_done = time.monotonic()

    def finish(self, what, timeout=60.0):
        self.join(timeout)
        if self.is_alive():
            self.stop.set()
            self.join()
        if self.error:
            raise BenchError(f"{what}: reading the pipe failed: {self.error}")
        if self.bytes != self.size:
            raise BenchError(f"{what}: {self.bytes} bytes came through the pipe, "
                             f"expected {self.size}")


class Meter:
    """CPU seconds of the service, libvirtd, this script, its children and
    the whole machine over one run."""

    def __init__(self, svc):
        self.svc = svc
        self.libvirtd = pid_of("libvirtd")

    def _sample(self):
        try:
            lv = cpu_seconds(self.libvirtd) if self.libvirtd else None
        except OSError:
            lv = None
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (cpu_seconds(self.svc.proc.pid), lv, time.process_time(),
                ch.ru_utime + ch.ru_stime, system_busy_seconds())

    def start(self):
        self.s0 = self._sample()
        self.t0 = time.monotonic()

    def stop(self, t_end):
        s1 = self._sample()
        d = [None if a is None or b is None else b - a for a, b in zip(self.s0, s1)]
        run = {"s": t_end - self.t0, "service_cpu_s": d[0], "libvirtd_cpu_s": d[1],
               "client_cpu_s": d[2], "child_cpu_s": d[3]}
        # "service" counts only for our side: it idles (rescans) while others run
        mine = sum(x for x in d[:4] if x is not None)
        run["other_cpu_s"] = max(0.0, d[4] - mine)
        return run


def _pipe(pipe_kib):
    r, w = os.pipe()
    if pipe_kib:
        try:
            fcntl.fcntl(w, F_SETPIPE_SZ, pipe_kib * 1024)
        except OSError as e:
            os.close(r)
            os.close(w)
            raise BenchError(f"F_SETPIPE_SZ {pipe_kib} KiB: {e} (see /proc/sys/fs/pipe-max-size)")
    return r, w


def _download_call(svc, obj, fd, opts):
    fds = Gio.UnixFDList.new()
    fds.append(fd)  # a duplicate, held by the message until it is freed
    svc.call(obj, VOLUME_IFACE, "Download", GLib.Variant("(ha{sv})", (0, opts)), "()",
             fd_list=fds, timeout=CALL_TIMEOUT, what="Volume.Download")
    del fds


def _run_child(argv, what, stdout=subprocess.DEVNULL, timeout=CALL_TIMEOUT):
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout,
                            stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=timeout)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise BenchError(f"{what} failed (status {proc.returncode}): "
                         f"{err.decode(errors='replace').strip()}")
    return time.monotonic()


class Sides:
    """Every way to get the volume's bytes into a sink; each method runs
    one transfer and returns the run's figures."""

    def __init__(self, svc, obj, sparse_obj, pool_dir, out_dir, size, pipe_kib):
        self.svc = svc
        self.obj = obj
        self.sparse_obj = sparse_obj
        self.vol = os.path.join(pool_dir, DENSE)
        self.out = os.path.join(out_dir, "target.raw")
        self.size = size
        self.pipe_kib = pipe_kib

    def _fresh_target(self):
        try:
            os.unlink(self.out)
        except FileNotFoundError:
            pass
        os.sync()

    def _check_file(self, what, size):
        got = os.stat(self.out).st_size
        if got != size:
            raise BenchError(f"{what}: the target holds {got} bytes, expected {size}")

    # -- into a regular file

    def ours_file(self, hash_it=False, opts=None):
        self._fresh_target()
        m = Meter(self.svc)
        m.start()
        fd = os.open(self.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _download_call(self.svc, self.obj, fd, opts or {})
        finally:
            os.close(fd)
        run = m.stop(time.monotonic())
        self._check_file("Download into a file", self.size)
        if hash_it:
            run["sha256"] = sha256_file(self.out)
        return run

    def stream_file(self, hash_it=False):
        return self.ours_file(hash_it, STREAM)

    def tcp_file(self, hash_it=False):
        self._fresh_target()
        m = Meter(self.svc)
        m.start()
        fd = os.open(self.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _download_call(self.svc, self.tcp_obj, fd, {})
        finally:
            os.close(fd)
        run = m.stop(time.monotonic())
        self._check_file("Download over qemu+tcp", self.size)
        if hash_it:
            run["sha256"] = sha256_file(self.out)
        return run

    def virsh_tcp_file(self, hash_it=False):
        self._fresh_target()
        m = Meter(self.svc)
        m.start()
        t = _run_child(["virsh", "-c", self.tcp_uri, "vol-download", "--pool", POOL, DENSE,
                        self.out], "virsh vol-download over qemu+tcp")
        run = m.stop(t)
        self._check_file("virsh vol-download over qemu+tcp", self.size)
        if hash_it:
            run["sha256"] = sha256_file(self.out)
        return run

    def virsh_file(self, hash_it=False):
        self._fresh_target()
        m = Meter(self.svc)
        m.start()
        t = _run_child(["virsh", "-c", URI, "vol-download", "--pool", POOL, DENSE, self.out],
                       "virsh vol-download")
        run = m.stop(t)
        self._check_file("virsh vol-download", self.size)
        if hash_it:
            run["sha256"] = sha256_file(self.out)
        return run

    def cat_file(self, hash_it=False):
        self._fresh_target()
        m = Meter(self.svc)
        m.start()
        with open(self.out, "wb") as f:
            t = _run_child(["cat", self.vol], "cat", stdout=f)
        run = m.stop(t)
        self._check_file("cat", self.size)
        return run

    # -- into a pipe

    def _pipe_run(self, what, start, hash_it):
        """START(w) begins the transfer into the pipe's write end W (which
        the caller may close once START returns a waiter) and returns a
        callable that waits for its end and returns that time."""
        r, w = _pipe(self.pipe_kib)
        try:
            reader = Reader(r, self.size, hash_it)
            m = Meter(self.svc)
            reader.start()
            m.start()
            try:
                t_writer = start(w)
            except BaseException:
                reader.stop.set()
                reader.join()
                raise
            reader.finish(what)
            run = m.stop(max(t_writer, reader.t_done))
            run["writer_done_s"] = t_writer - m.t0
        finally:
            os.close(r)
            if w >= 0:
                try:
                    os.close(w)
                except OSError:
                    pass
        if hash_it:
            run["sha256"] = reader.hash.hexdigest()
        return run

    def ours_pipe(self, hash_it=False, opts=None):
        def start(w):
            _download_call(self.svc, self.obj, w, opts or {})
            return time.monotonic()
        return self._pipe_run("Download into a pipe", start, hash_it)

    def stream_pipe(self, hash_it=False):
        return self.ours_pipe(hash_it, STREAM)

    def virsh_pipe(self, hash_it=False):
        def start(w):
            return _run_child(["virsh", "-c", URI, "vol-download", "--pool", POOL, DENSE,
                               "/dev/stdout"], "virsh vol-download into a pipe", stdout=w)
        return self._pipe_run("virsh vol-download into a pipe", start, hash_it)

    def cat_pipe(self, hash_it=False):
        def start(w):
            return _run_child(["cat", self.vol], "cat into a pipe", stdout=w)
        return self._pipe_run("cat into a pipe", start, hash_it)

    # -- sparse

    def _check_sparse(self, what, size):
        st = os.stat(self.out)
        if st.st_size != size:
            raise BenchError(f"{what}: the target holds {st.st_size} bytes, expected {size}")
        return st.st_blocks * 512

    def ours_sparse(self, size):
        self._fresh_target()
        m = Meter(self.svc)
        m.start()
        fd = os.open(self.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _download_call(self.svc, self.sparse_obj, fd, {"sparse": GLib.Variant("b", True)})
        finally:
            os.close(fd)
        run = m.stop(time.monotonic())
        run["allocated"] = self._check_sparse("sparse Download", size)
        return run

    def virsh_sparse(self, size):
        self._fresh_target()
        m = Meter(self.svc)
        m.start()
        t = _run_child(["virsh", "-c", URI, "vol-download", "--sparse", "--pool", POOL, SPARSE,
                        self.out], "virsh vol-download --sparse")
        run = m.stop(t)
        run["allocated"] = self._check_sparse("virsh vol-download --sparse", size)
        return run


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            data = f.read(CHUNK)
            if not data:
                return digest.hexdigest()
            digest.update(data)


# ---------------------------------------------------------------- report


DENSE_SIDES = [  # key, sink, label
    ("ours_file", "file", "libvirt-guestfs-dbus Download (local copy)"),
    ("stream_file", "file", "libvirt-guestfs-dbus Download (libvirt stream)"),
    ("virsh_file", "file", "virsh vol-download"),
    ("cat_file", "file", "cat VOLFILE > FILE"),
    ("ours_pipe", "pipe", "libvirt-guestfs-dbus Download (local copy)"),
    ("stream_pipe", "pipe", "libvirt-guestfs-dbus Download (libvirt stream)"),
    ("virsh_pipe", "pipe", "virsh vol-download /dev/stdout"),
    ("cat_pipe", "pipe", "cat VOLFILE | reader"),
]
CHECKED = ("ours_file", "stream_file", "ours_pipe", "stream_pipe", "virsh_file")
TCP_SIDES = [
    ("tcp_file", "libvirt-guestfs-dbus Download over qemu+tcp (libvirt stream)"),
    ("virsh_tcp_file", "virsh -c qemu+tcp://... vol-download"),
]
SPARSE_SIDES = [
    ("ours_sparse", "libvirt-guestfs-dbus Download sparse=true"),
    ("virsh_sparse", "virsh vol-download --sparse"),
]


def _med(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return median(vals) if vals else None


def _cpu(x):
    return "-" if x is None else f"{x:.2f}"


def _rounded(run):
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in run.items()}


def report(ctx, size, sparse_size, runs, warm, sparse_runs, load_before, load_after, svc_notes,
           tcp_runs=None):
    n = ctx.args.volume_runs
    mb = size / 1e6
    print()
    print(f"Dense: {size // MIB} MiB random raw volume, median of {n} runs per side "
          f"(after 1 uncounted run each); pipe capacity "
          f"{(str(ctx.args.volume_pipe_size) + ' KiB') if ctx.args.volume_pipe_size else 'default'}")
    header = ["sink / side", "median", "MB/s", "runs (s)", "svc CPU", "libvirtd CPU",
              "client+child CPU", "ours/virsh", "of cat"]
    rows = []
    meds = {}
    for key, sink, label in DENSE_SIDES:
        rs = runs[key]
        s = _med(rs, "s")
        meds[key] = s
        cc = [r["client_cpu_s"] + r["child_cpu_s"] for r in rs]
        rows.append([f"{sink}: {label}", f"{s:.3f} s", f"{mb / s:.0f}",
                     " ".join(f"{r['s']:.3f}" for r in rs),
                     _cpu(_med(rs, "service_cpu_s")) if key.startswith(("ours", "stream"))
                     else "-",
                     _cpu(_med(rs, "libvirtd_cpu_s")), _cpu(median(cc)), "", ""])
    # ratios, once every median is known
    ratios = {}  # throughput ours / virsh, per side ("file", "stream_file", ...)
    for row, (key, sink, _) in zip(rows, DENSE_SIDES):
        cat = meds[f"cat_{sink}"]
        row[8] = f"{cat / meds[key]:.2f}"
        if key.startswith(("ours", "stream")):
            name = sink if key.startswith("ours") else f"stream_{sink}"
            ratios[name] = meds[f"virsh_{sink}"] / meds[key]
            row[7] = f"{ratios[name]:.2f}"
    print(fmt_table(rows, header))
    print("  (times: call or process start -> reply or exit, and for a pipe the last byte read; "
          "MB/s = 10^6 bytes/s; ours/virsh and 'of cat' are throughput ratios; CPU in seconds, "
          "median per run: svc = the service, client+child = this script's threads and the "
          "virsh/cat process)")
    print("  uncounted first runs: " + ", ".join(f"{k} {warm[k]['s']:.3f} s" for k, _, _ in DENSE_SIDES))

    print()
    print(f"Sparse: empty {sparse_size // GIB} GiB raw volume into a regular file, "
          f"median of {n} runs")
    header2 = ["side", "median", "runs (s)", "allocated in target", "svc CPU", "libvirtd CPU"]
    rows2 = []
    smeds = {}
    for key, label in SPARSE_SIDES:
        rs = sparse_runs[key]
        smeds[key] = _med(rs, "s")
        rows2.append([label, f"{smeds[key]:.3f} s", " ".join(f"{r['s']:.3f}" for r in rs),
                      f"{max(r['allocated'] for r in rs) // 1024} KiB",
                      _cpu(_med(rs, "service_cpu_s")) if key.startswith("ours") else "-",
                      _cpu(_med(rs, "libvirtd_cpu_s"))])
    print(fmt_table(rows2, header2))

    tcp = None
    if tcp_runs:
        print()
        print(f"qemu+tcp (loopback relay to libvirtd's socket): into a file, median of {n} runs")
        header3 = ["side", "median", "MB/s", "runs (s)", "svc CPU", "libvirtd CPU"]
        rows3 = []
        tmeds = {}
        for key, label in TCP_SIDES:
            rs = tcp_runs[key]
            tmeds[key] = _med(rs, "s")
            rows3.append([label, f"{tmeds[key]:.3f} s", f"{mb / tmeds[key]:.0f}",
                          " ".join(f"{r['s']:.3f}" for r in rs),
                          _cpu(_med(rs, "service_cpu_s")) if key == "tcp_file" else "-",
                          _cpu(_med(rs, "libvirtd_cpu_s"))])
        print(fmt_table(rows3, header3))
        tcp = {"median_s": {k: round(v, 4) for k, v in tmeds.items()},
               "ratio_ours_virsh": round(tmeds["virsh_tcp_file"] / tmeds["tcp_file"], 3),
               "runs": {k: [_rounded(r) for r in rs] for k, rs in tcp_runs.items()}}

    print()
    problems = []
    for key, _ in SPARSE_SIDES:
        alloc = max(r["allocated"] for r in sparse_runs[key])
        if alloc > SPARSE_ALLOC_LIMIT:
            problems.append(f"{key}: target has {alloc} bytes allocated (holes not kept)")
    for key in CHECKED:
        if warm[key].get("sha256") != ctx.volume_sha256:
            problems.append(f"{key}: first run's SHA-256 differs from the volume's")
    of_cat = meds["cat_file"] / meds["ours_file"]
    ok_local = ratios["file"] >= TARGET_LOCAL_VIRSH and of_cat >= TARGET_LOCAL_CAT
    ok_file = ratios["stream_file"] >= TARGET_RATIO
    ok_pipe = ratios["stream_pipe"] >= TARGET_RATIO
    ok_sparse = smeds["ours_sparse"] < TARGET_SPARSE_S and not any("ours_sparse" in p
                                                                   for p in problems)
    target = ok_local and ok_file and ok_pipe and ok_sparse
    print(f"target (issue 14): local Download into a file >= {TARGET_LOCAL_VIRSH}x virsh and "
          f">= {TARGET_LOCAL_CAT}x cat: {'yes' if ok_local else 'NO'} "
          f"({ratios['file']:.2f}x virsh, {of_cat:.2f}x cat; into a pipe "
          f"{ratios['pipe']:.2f}x virsh, {meds['cat_pipe'] / meds['ours_pipe']:.2f}x cat)")
    print(f"target (issue 5): the libvirt stream >= {TARGET_RATIO}x virsh vol-download "
          f"throughput: file {'yes' if ok_file else 'NO'} ({ratios['stream_file']:.2f}x), "
          f"pipe {'yes' if ok_pipe else 'NO'} ({ratios['stream_pipe']:.2f}x); "
          f"sparse {sparse_size // GIB} GiB < {TARGET_SPARSE_S} s: "
          f"{'yes' if ok_sparse else 'NO'} ({smeds['ours_sparse']:.3f} s) "
          f"=> {'MET' if target else 'MISSED'}")
    if tcp is None:
        print("qemu+tcp: not measured (--no-volume-tcp)")
        ok_tcp = True
    else:
        ok_tcp = tcp["ratio_ours_virsh"] >= TARGET_TCP
        target = target and ok_tcp
        print(f"target (issue 14): over qemu+tcp >= {TARGET_TCP}x virsh over the same URI: "
              f"{'yes' if ok_tcp else 'NO'} ({tcp['ratio_ours_virsh']:.2f}x)")
    for note in svc_notes:
        print(note)
    for p in problems:
        print(f"problem: {p}")
    all_runs = [r for rs in runs.values() for r in rs] + \
               [r for rs in sparse_runs.values() for r in rs]
    share = sum(r["other_cpu_s"] for r in all_runs) / sum(r["s"] for r in all_runs)
    print(load_note(load_before, load_after, share))

    return {
        "uri": URI,
        "volume_bytes": size,
        "sparse_volume_bytes": sparse_size,
        "runs_per_side": n,
        "pipe_kib": ctx.args.volume_pipe_size,
        "median_s": {k: round(v, 4) for k, v in meds.items()},
        "mb_per_s": {k: round(mb / v, 1) for k, v in meds.items()},
        "ratio_ours_virsh": {k: round(v, 3) for k, v in ratios.items()},
        "ratio_of_cat": {k: round(meds[f"cat_{k.split('_')[-1]}"] /
                                  meds[f"ours_{k}" if "_" not in k else k], 3)
                         for k in ratios},
        "tcp": tcp if tcp is not None else "not measured",
        "sparse_median_s": {k: round(v, 4) for k, v in smeds.items()},
        "sparse_allocated_bytes": {k: max(r["allocated"] for r in rs)
                                   for k, rs in sparse_runs.items()},
        "runs": {k: [_rounded({x: y for x, y in r.items() if x != "sha256"}) for r in rs]
                 for k, rs in {**runs, **sparse_runs}.items()},
        "warmup_s": {k: round(r["s"], 4) for k, r in warm.items()},
        "target_met": target,
        "targets": {"ratio": TARGET_RATIO, "local_virsh": TARGET_LOCAL_VIRSH,
                    "local_cat": TARGET_LOCAL_CAT, "local": ok_local, "stream_file": ok_file,
                    "stream_pipe": ok_pipe, "sparse": ok_sparse, "tcp": ok_tcp,
                    "tcp_ratio": TARGET_TCP},
        "machine": {"before": load_before, "after": load_after},
        "problems": problems,
    }


# ---------------------------------------------------------------- entry


def run(ctx):
    args = ctx.args
    if args.volume_runs < 1 or args.volume_size < 1 or args.volume_sparse_size < 1:
        raise BenchError("--volume-runs, --volume-size and --volume-sparse-size must be at "
                         "least 1")
    if args.volume_pipe_size < 0:
        raise BenchError("--volume-pipe-size must be 0 or more")
    size = args.volume_size * MIB
    sparse_size = args.volume_sparse_size * GIB
    ctx.ensure_daemons()

    pool_dir, out_dir, sha, made_s = make_volumes(ctx, size, sparse_size)
    ctx.volume_sha256 = sha
    print(f"pool {POOL} (transient, dir {pool_dir}): {DENSE} {size // MIB} MiB random, "
          f"{SPARSE} {sparse_size // GIB} GiB empty sparse; written in {made_s:.1f} s; "
          f"targets in {out_dir}")

    load_before = machine_load()
    bus = PrivateBus(ctx.cleanup, "session", "volume")
    tcp_uri = start_relay(ctx) if args.volume_tcp else None
    extra = ("--verbose",) + (("--connect", tcp_uri) if tcp_uri else ())
    svc = Service(ctx, bus, "ours", extra_args=extra)  # the log says the path
    print(f"service: {' '.join(svc.proc.args)}; bus name owned "
          f"{svc.t_owner - svc.t_start:.3f} s after start")
    obj = lookup_volume(svc, os.path.join(pool_dir, DENSE))
    sparse_obj = lookup_volume(svc, os.path.join(pool_dir, SPARSE))
    sides = Sides(svc, obj, sparse_obj, pool_dir, out_dir, size, args.volume_pipe_size)
    if tcp_uri:
        sides.tcp_uri = tcp_uri
        sides.tcp_obj = lookup_volume_on(svc, tcp_uri, os.path.join(pool_dir, DENSE))

    # Uncounted first runs: the volume gets into the page cache for all;
    # the service's and virsh's bytes are checked.
    warm = {}
    for key, _, _ in DENSE_SIDES:
        warm[key] = getattr(sides, key)(hash_it=key in CHECKED)
        log(f"bench: volume first run {key}: {warm[key]['s']:.3f} s")
    bad = [k for k in CHECKED if warm[k].get("sha256") != sha]
    if bad:
        raise BenchError(f"the bytes downloaded by {', '.join(bad)} differ from the volume's")
    with open(svc.logfile, errors="replace") as f:
        svc_log = f.read()
    for way in ("local copy", "libvirt stream"):
        if f"download of volume {os.path.join(pool_dir, DENSE)} on {URI}: {way}" not in svc_log:
            raise BenchError(f"the service's log does not say a Download took the {way}")

    runs = {key: [] for key, _, _ in DENSE_SIDES}
    keys = [key for key, _, _ in DENSE_SIDES]
    for rep in range(args.volume_runs):
        order = keys[rep % len(keys):] + keys[:rep % len(keys)]
        for key in order:
            r = getattr(sides, key)()
            log(f"bench: volume run {rep + 1}/{args.volume_runs} {key}: {r['s']:.3f} s, "
                f"{size / 1e6 / r['s']:.0f} MB/s")
            runs[key].append(r)

    tcp_runs = None
    if tcp_uri:
        tcp_runs = {key: [] for key, _ in TCP_SIDES}
        for key, _ in TCP_SIDES:  # uncounted, checked
            r = getattr(sides, key)(hash_it=True)
            if r["sha256"] != sha:
                raise BenchError(f"the bytes downloaded by {key} differ from the volume's")
            log(f"bench: volume first run {key}: {r['s']:.3f} s")
        for rep in range(args.volume_runs):
            order = [k for k, _ in TCP_SIDES]
            if rep % 2:
                order.reverse()
            for key in order:
                r = getattr(sides, key)()
                log(f"bench: volume tcp run {rep + 1}/{args.volume_runs} {key}: {r['s']:.3f} s, "
                    f"{size / 1e6 / r['s']:.0f} MB/s")
                tcp_runs[key].append(r)
        with open(svc.logfile, errors="replace") as f:
            if f"on {tcp_uri}: libvirt stream" not in f.read():
                raise BenchError("the service's log does not say the qemu+tcp Download took "
                                 "the libvirt stream")

    sparse_runs = {key: [] for key, _ in SPARSE_SIDES}
    sides.ours_sparse(sparse_size)  # uncounted, as above
    sides.virsh_sparse(sparse_size)
    for rep in range(args.volume_runs):
        order = [k for k, _ in SPARSE_SIDES]
        if rep % 2:
            order.reverse()
        for key in order:
            r = getattr(sides, key)(sparse_size)
            log(f"bench: volume sparse run {rep + 1}/{args.volume_runs} {key}: {r['s']:.3f} s, "
                f"{r['allocated']} bytes allocated")
            sparse_runs[key].append(r)

    notes = []
    rss, hwm, anon = rss_kib(svc.proc.pid)
    notes.append(f"service: RSS {rss / 1024:.1f} MiB, peak {hwm / 1024:.1f} MiB after all "
                 f"transfers")
    status = svc.stop()
    if status != 0:
        notes.append(f"problem: the service exited with status {status} on SIGTERM; log tail:\n"
                     f"{tail(svc.logfile)}")
    elif tail(svc.logfile).strip():
        notes.append(f"service log tail:\n{tail(svc.logfile, 10)}")
    return report(ctx, size, sparse_size, runs, warm, sparse_runs, load_before, machine_load(),
                  notes, tcp_runs)
