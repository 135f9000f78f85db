"""Shared helpers for tools/bench cases.

A case module is tools/bench.d/case_<name>.py defining:
  NAME        the case name given on the command line
  ORDER       int, position in the default run (lower first)
  DESCRIPTION one line for --list
  add_arguments(parser)   optional: case options (argparse parser, shared)
  run(ctx)    runs the case, prints a table, returns a dict (the summary);
              the runner prints it as one line "BENCH-RESULT <json>".
ctx is a Context: ctx.args (parsed options), ctx.repo (repository root),
ctx.cleanup (a Cleanup stack), ctx.ensure_daemons() (libvirtd and friends).
"""

import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402


class BenchError(Exception):
    """A failure that stops the case with a message (no traceback)."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- cleanup


class Cleanup:
    """A stack of callbacks run in reverse order, whatever happens."""

    def __init__(self):
        self._stack = []

    def push(self, fn, *args, what=None):
        entry = (fn, args, what or getattr(fn, "__name__", "cleanup"))
        self._stack.append(entry)
        return entry

    def cancel(self, entry):
        try:
            self._stack.remove(entry)
        except ValueError:
            pass

    def run_one(self, entry):
        """Run one entry now and forget it."""
        self.cancel(entry)
        fn, args, _ = entry
        fn(*args)

    def run_all(self):
        while self._stack:
            fn, args, what = self._stack.pop()
            try:
                fn(*args)
            except BaseException as e:  # keep cleaning up whatever happens
                log(f"bench: cleanup {what} failed: {e!r}")


def install_signal_handlers():
    """SIGTERM/SIGHUP behave like Ctrl-C so that finally blocks run."""

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


# ---------------------------------------------------------------- processes


def stop_process(proc, name, timeout=10.0):
    """SIGTERM, wait, SIGKILL if needed; returns the exit status."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log(f"bench: {name} (pid {proc.pid}) ignored SIGTERM for {timeout:.0f} s; killing it")
        proc.kill()
        proc.wait()
        return proc.returncode


def proc_status(pid):
    """Fields of /proc/PID/status as a dict of strings."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def rss_kib(pid):
    """(VmRSS, VmHWM, RssAnon) in KiB: RssAnon leaves out the shared libraries."""
    st = proc_status(pid)
    return tuple(int(st[k].split()[0]) for k in ("VmRSS", "VmHWM", "RssAnon"))


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime+stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def system_busy_seconds():
    """CPU seconds all CPUs spent on anything but idle and iowait since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is inside user)
    return (sum(fields[:8]) - fields[3] - fields[4]) / _CLK_TCK


def pid_of(exe_basename):
    """The pid of the one running process whose exe has this basename, or None."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            exe = os.readlink(f"/proc/{d}/exe")
        except OSError:
            continue
        if os.path.basename(exe) == exe_basename:
            found.append(int(d))
    return found[0] if len(found) == 1 else None


def tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------- private buses

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>{type}</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
  <!-- session.conf's limits, so pipelined clients are not throttled -->
  <limit name="max_incoming_bytes">1000000000</limit>
  <limit name="max_outgoing_bytes">1000000000</limit>
  <limit name="max_message_size">1000000000</limit>
  <limit name="max_replies_per_connection">50000</limit>
  <limit name="max_match_rules_per_connection">50000</limit>
  <limit name="max_names_per_connection">50000</limit>
  <limit name="reply_timeout">600000</limit>
</busconfig>
"""


class PrivateBus:
    """A dbus-daemon of its own, allowing everything; type 'session' or 'system'."""

    def __init__(self, cleanup, bus_type="session", label="bus"):
        self.dir = tempfile.mkdtemp(prefix=f"lgd-bench-{label}-")
        cleanup.push(_rmtree, self.dir, what=f"remove {self.dir}")
        socket = os.path.join(self.dir, "socket")
        conf = os.path.join(self.dir, "bus.conf")
        with open(conf, "w") as f:
            f.write(_BUS_CONFIG.format(type=bus_type, socket=socket))
        self.proc = subprocess.Popen(
            ["dbus-daemon", f"--config-file={conf}", "--nofork", "--nopidfile", "--print-address=1"],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            stderr=open(os.path.join(self.dir, "dbus-daemon.log"), "w"),
        )
        cleanup.push(stop_process, self.proc, "dbus-daemon", what=f"stop {label} dbus-daemon")
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            raise BenchError(f"private dbus-daemon ({bus_type}) did not start")
        self.conn = Gio.DBusConnection.new_for_address_sync(
            self.address,
            Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
            | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
            None, None,
        )
        cleanup.push(self.conn.close_sync, None, what=f"close {label} client")

    _dbus_python = None

    def dbus_python(self, cleanup):
        """A python-dbus connection to this bus, dispatched by GLib's default main context.

        libdbus costs the client about a third of Gio's CPU per call, which
        matters for cases that pipeline thousands of small calls."""
        if self._dbus_python is None:
            import dbus
            import dbus.mainloop.glib
            loop = dbus.mainloop.glib.DBusGMainLoop()
            self._dbus_python = dbus.bus.BusConnection(self.address, mainloop=loop)
            cleanup.push(self._dbus_python.close, what="close python-dbus client")
        return self._dbus_python

    def has_owner(self, name):
        r = self.conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                "org.freedesktop.DBus", "NameHasOwner",
                                GLib.Variant("(s)", (name,)), GLib.VariantType("(b)"),
                                Gio.DBusCallFlags.NONE, -1, None)
        return r[0]


def _rmtree(path):
    import shutil
    shutil.rmtree(path, ignore_errors=True)


def wait_for_name(bus, name, proc, deadline, logfile):
    """Block until NAME has an owner on BUS (signal-driven, not polled).

    Returns time.monotonic() at the moment the owner was seen. Fails if
    PROC exits first or the deadline passes."""
    ctx = GLib.MainContext.new()
    ctx.push_thread_default()
    seen = []
    try:
        def appeared(conn, n, owner):
            if not seen:
                seen.append(time.monotonic())

        watch = Gio.bus_watch_name_on_connection(bus.conn, name, Gio.BusNameWatcherFlags.NONE,
                                                 appeared, None)
        try:
            while not seen:
                if proc.poll() is not None:
                    raise BenchError(f"{proc.args[0]} exited with status {proc.returncode} "
                                     f"before owning {name}; log tail:\n{tail(logfile)}")
                if time.monotonic() > deadline:
                    raise BenchError(f"{name} not owned before the deadline; log tail:\n{tail(logfile)}")
                # Wake at least every 20 ms to notice a dead process.
                src = GLib.timeout_source_new(20)
                src.set_callback(lambda *a: False)
                src.attach(ctx)
                ctx.iteration(True)
                src.destroy()
        finally:
            Gio.bus_unwatch_name(watch)
    finally:
        ctx.pop_thread_default()
    return seen[0]


# ---------------------------------------------------------------- libvirt helpers


def open_libvirt(uri):
    import libvirt
    libvirt.registerErrorHandler(lambda *a: None, None)  # no stderr noise; exceptions carry it
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as e:
        raise BenchError(f"cannot connect to {uri}: {e} (is libvirtd running? "
                         f"tools/lib.sh's lgd_start_daemons starts it)") from None


# ---------------------------------------------------------------- reporting


def machine_load():
    """1-minute load average and the qemu processes running now (other work skews timings)."""
    with open("/proc/loadavg") as f:
        load1 = float(f.read().split()[0])
    qemus = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    if f.read().startswith("qemu-system"):
                        qemus += 1
            except OSError:
                pass
    return {"cpus": os.cpu_count(), "load1": load1, "qemu_processes": qemus}


def load_note(before, after, other_cpu_share=None):
    """A line on how quiet the machine was. OTHER_CPU_SHARE: CPU time used by
    processes outside the measurement, as a share of the measured wall time
    (the load average after a run mostly shows the run itself)."""
    note = (f"machine: {before['cpus']} CPUs, load average {before['load1']:.2f} before the case")
    if other_cpu_share is not None:
        note += f", other processes used {other_cpu_share:.0%} of one CPU while measuring"
    qemus = max(before["qemu_processes"], after["qemu_processes"])
    why = []
    if before["load1"] > 0.5 * before["cpus"]:
        why.append("load average above half the CPUs before")
    if other_cpu_share is not None and other_cpu_share > 0.15:
        why.append("other processes busy while measuring")
    if qemus:
        why.append(f"{qemus} qemu processes running")
    if why:
        note += f"; WARNING: machine busy ({', '.join(why)}): figures are noisy, rerun when quiet"
    return note


def print_problems(problems, load_before, load_after, other_cpu_share=None):
    """The closing lines of a case's report: its problems, then load_note()."""
    for p in problems:
        print(f"problem: {p}")
    print(load_note(load_before, load_after, other_cpu_share))


def rnd(x, nd=4):
    """X rounded to ND places for a case's result, None staying None."""
    return None if x is None else round(x, nd)


def write_pseudo_random(path, size, tag):
    """Writes SIZE bytes to PATH that nothing on the way can compress:
    SHAKE-128 of TAG-0, TAG-1... in 4 MiB chunks (fast and the same each
    run). Returns their sha256 hex digest."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left, seed = size, 0
        while left:
            chunk = hashlib.shake_128(b"%s-%d" % (tag, seed)).digest(min(left, 4 * 1024 * 1024))
            digest.update(chunk)
            f.write(chunk)
            left -= len(chunk)
            seed += 1
    return digest.hexdigest()


def debugfs_write(image, src, dst):
    """Copies the host file SRC into the ext filesystem image IMAGE as DST
    (absolute) with debugfs, and removes SRC."""
    r = subprocess.run(["debugfs", "-w", "-R", f"write {src} {dst.lstrip('/')}", image],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    os.unlink(src)
    if r.returncode != 0 or "rror" in r.stdout:
        raise BenchError(f"debugfs write {dst} into {image} failed:\n{r.stdout}")


def check_image_file(image, path, size):
    """Checks that PATH in the ext filesystem image IMAGE has SIZE bytes and
    that e2fsck finds the filesystem clean after debugfs wrote it."""
    r = subprocess.run(["debugfs", "-R", f"stat {path}", image], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if f"Size: {size}" not in r.stdout:
        raise BenchError(f"{path} in {image} has not {size} bytes:\n{r.stdout[:800]}")
    r = subprocess.run(["e2fsck", "-f", "-n", image], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise BenchError(f"e2fsck -n {image} after debugfs:\n{r.stdout[-1500:]}")


def median(xs):
    return statistics.median(xs)


def fmt_table(rows, header):
    """rows: list of lists of str; first column left-aligned, others right-aligned."""
    allrows = [header] + rows
    widths = [max(len(r[i]) for r in allrows) for i in range(len(header))]
    out = []
    for j, r in enumerate(allrows):
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        out.append("  ".join(cells).rstrip())
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def summary_line(result):
    return "BENCH-RESULT " + json.dumps(result, sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------- appliance cases (inspect, files)

SERVICE_NAME = "org.libvirt.GuestFS"
SERVICE_MANAGER = "/org/libvirt/GuestFS/Manager"
# A cold call boots an appliance under TCG: 15-60 s, more on a busy machine.
APPLIANCE_CALL_TIMEOUT = 900.0


def load_module(path, name):
    """Imports the Python file PATH as module NAME (e.g. tests/integration/images.py)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def daemon_binary(ctx):
    """--daemon (an option of case objects) or <repo>/build/src/libvirt-guestfs-dbus."""
    path = getattr(ctx.args, "daemon", None) or os.path.join(
        ctx.repo, "build", "src", "libvirt-guestfs-dbus")
    if not os.access(path, os.X_OK):
        raise BenchError(f"{path} is not an executable: build it (meson setup build && "
                         f"ninja -C build) or pass --daemon PATH")
    return path


def libguestfs_env():
    """The environment for the reference tools (virt-inspector, guestfish):
    the appliance goes through libvirt on qemu:///system, under TCG, as the
    service's appliances do (libvirt-guestfs-dbus --force-tcg)."""
    env = dict(os.environ)
    env["LIBGUESTFS_BACKEND"] = "libvirt:qemu:///system"
    env["LIBGUESTFS_BACKEND_SETTINGS"] = "force_tcg"
    for k in ("LIBGUESTFS_DEBUG", "LIBGUESTFS_TRACE", "LIBGUESTFS_MEMSIZE"):
        env.pop(k, None)
    return env


def percentile(xs, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    import math
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def dbus_call(conn, path, iface, method, args=None, reply_type=None,
              timeout=APPLIANCE_CALL_TIMEOUT, fd_list=None, what=None):
    """A call to the service; returns the reply GVariant. D-Bus errors become
    BenchError naming the error. With FD_LIST (a Gio.UnixFDList) the call
    carries those fds."""
    rtype = GLib.VariantType(reply_type) if reply_type else None
    try:
        if fd_list is None:
            return conn.call_sync(SERVICE_NAME, path, iface, method, args, rtype,
                                  Gio.DBusCallFlags.NONE, int(timeout * 1000), None)
        reply, _ = conn.call_with_unix_fd_list_sync(SERVICE_NAME, path, iface, method, args,
                                                    rtype, Gio.DBusCallFlags.NONE,
                                                    int(timeout * 1000), fd_list, None)
        return reply
    except GLib.Error as e:
        name = Gio.DBusError.get_remote_error(e)
        Gio.DBusError.strip_remote_error(e)
        raise BenchError(f"{what or method} failed: {name or e.domain}: {e.message}") from None


class Service:
    """libvirt-guestfs-dbus on a PrivateBus (as a session-bus service, so the
    calling root user is its owner and needs no polkit), serving
    qemu:///system with TCG appliances; stopped by ctx.cleanup if the case
    does not stop it itself."""

    def __init__(self, ctx, bus, label, extra_args=()):
        self.bus = bus
        self.label = label
        # labels such as "run 1/3" must not make a path
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
        self.logfile = os.path.join(bus.dir, f"{safe}.log")
        self.run_dir = tempfile.mkdtemp(prefix="run-", dir=bus.dir)
        # The appliance's qemu (user libvirt-qemu) connects to the NBD
        # socket of a shut-off domain's share under the run directory:
        # it must be able to pass through the directories above it.
        for d in (bus.dir, self.run_dir):
            os.chmod(d, 0o711)
        argv = [daemon_binary(ctx), "--session", "--connect", "qemu:///system", "--force-tcg",
                "--run-dir", self.run_dir, *extra_args]
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=bus.address)
        with open(self.logfile, "w") as lf:
            self.t_start = time.monotonic()
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                         stdout=lf, stderr=lf)
        self._cleanup = ctx.cleanup
        self._entry = ctx.cleanup.push(stop_process, self.proc, label, 30.0,
                                       what=f"stop {label}")
        self.t_owner = wait_for_name(bus, SERVICE_NAME, self.proc, self.t_start + 60, self.logfile)

    def call(self, path, iface, method, args=None, reply_type=None, **kw):
        if self.proc.poll() is not None:
            raise BenchError(f"{self.label} died (status {self.proc.returncode}); "
                             f"log tail:\n{tail(self.logfile)}")
        try:
            return dbus_call(self.bus.conn, path, iface, method, args, reply_type, **kw)
        except BenchError as e:
            raise BenchError(f"{e}; {self.label} log tail:\n{tail(self.logfile)}") from None

    def lookup_domain(self, name):
        return self.call(SERVICE_MANAGER, "org.libvirt.GuestFS.Manager", "LookupDomain",
                         GLib.Variant("(s)", (name,)), "(o)").unpack()[0]

    def get_property(self, path, iface, prop):
        return self.call(path, "org.freedesktop.DBus.Properties", "Get",
                         GLib.Variant("(ss)", (iface, prop)), "(v)").unpack()[0]

    def stop(self):
        """SIGTERM; returns the exit status (0 expected)."""
        self._cleanup.cancel(self._entry)
        return stop_process(self.proc, self.label, 30.0)


def images_module(ctx):
    """tests/integration/images.py, which builds guest images without an appliance."""
    path = os.path.join(ctx.repo, "tests", "integration", "images.py")
    if not os.path.exists(path):
        raise BenchError(f"{path} is missing (it builds the bench images)")
    return load_module(path, "lgd_images")


def bench_image_set(ctx):
    """An images.py ImageSet in a directory of our own
    (/var/lib/libvirt/images/lgd-bench-img-*), removed at the end."""
    import secrets
    images_py = images_module(ctx)
    directory = os.path.join(images_py.IMAGES_DIR, "lgd-bench-img-" + secrets.token_hex(4))
    os.makedirs(directory)
    ctx.cleanup.push(_rmtree, directory, what=f"remove {directory}")
    os.chmod(directory, 0o755)
    return images_py, images_py.ImageSet(directory)


def _one_disk_domain_xml(name, image, fmt):
    arch = os.uname().machine
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='{arch}'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='{fmt}'/>
      <source file='{image}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
"""


def remove_domain(uri, name):
    """Destroys (if running) and undefines NAME; no error if it is gone."""
    import libvirt
    conn = open_libvirt(uri)  # a connection of its own: libvirtd may have restarted
    try:
        try:
            dom = conn.lookupByName(name)
        except libvirt.libvirtError:
            return
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    finally:
        conn.close()


def define_one_disk_domain(ctx, uri, name, image, fmt="raw"):
    """Defines a shut-off domain NAME with IMAGE as its only disk; undefined at
    the end. Fails if NAME exists (an interrupted run's leftover is named)."""
    import libvirt
    conn = open_libvirt(uri)
    try:
        try:
            conn.lookupByName(name)
        except libvirt.libvirtError:
            pass
        else:
            raise BenchError(f"domain {name} exists already (left by an interrupted run?): "
                             f"virsh -c {uri} undefine {name}")
        ctx.cleanup.push(remove_domain, uri, name, what=f"undefine {name}")
        conn.defineXML(_one_disk_domain_xml(name, image, fmt))
    finally:
        conn.close()
