# shellcheck shell=bash
#
# Shared by tools/run, tools/check and tools/bench: source it, do not run it.
#
#   lgd_install_deps    install the Debian packages that are missing
#   lgd_build           configure (once) and build in $LGD_BUILD_DIR, warnings as errors
#   lgd_build_sanitized the same in $LGD_SANITIZE_BUILD_DIR, with ASan and UBSan
#   lgd_start_daemons   system bus, polkitd, virtlogd, libvirtd: each only if not running
#
# Everything here works on the machine's own system bus and libvirtd (the
# tests start their private buses themselves) and needs root, as a fresh
# Debian 12 machine without systemd as PID 1 gives it.

LGD_TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LGD_SOURCE_DIR=$(dirname "$LGD_TOOLS_DIR")
LGD_BUILD_DIR=${LGD_BUILD_DIR:-$LGD_SOURCE_DIR/build}
# shellcheck disable=SC2034 # for the scripts that source this file
LGD_DAEMON=$LGD_BUILD_DIR/src/libvirt-guestfs-dbus
LGD_LOG_DIR=/var/log/libvirt-guestfs-dbus
# The second build of tools/check: AddressSanitizer (with LeakSanitizer) and
# UndefinedBehaviorSanitizer.  b_lundef=false because the sanitizers' symbols
# come from their runtime, which shared objects do not link themselves.
LGD_SANITIZE_BUILD_DIR=${LGD_SANITIZE_BUILD_DIR:-$LGD_SOURCE_DIR/build-asan}
LGD_SANITIZE_OPTIONS=(-Dwerror=true "-Db_sanitize=address,undefined" -Db_lundef=false)

# libguestfs launches its appliances through libvirt, as the service does;
# KVM guests hang at boot on the machines this project runs on, so TCG.
export LIBGUESTFS_BACKEND=libvirt
export LIBGUESTFS_BACKEND_SETTINGS=force_tcg

# What building, running and testing need.  The first block is DESIGN.md's
# list; the rest: libxml-2.0 (parsing domain XML), the compiler, the tools
# the tests and scripts call (xmllint, systemd-analyze, clang-format, pgrep,
# mkfs.ext4 -d), libvirt's Python binding for the tests, libvirt-dbus for
# the benchmark's side-by-side run, and bubblewrap for the test that runs
# the service in its unit's sandbox without systemd as PID 1; the last line
# is for the Cockpit page's test (cockpit-ws with a local cockpit-bridge,
# headless Chromium driven by selenium through chromium-driver).
# libvirt-daemon-driver-qemu is only a Recommends of libvirt-daemon, so it
# is named.
LGD_PACKAGES=(
	libguestfs-dev libguestfs-tools guestfsd linux-image-amd64
	qemu-system-x86 qemu-utils supermin libvirt-dev libvirt-glib-1.0-dev
	libvirt-daemon-system libvirt-clients dnsmasq-base polkitd
	libpolkit-gobject-1-dev dbus dbus-daemon libglib2.0-dev libglib2.0-dev-bin
	meson ninja-build pkg-config gettext python3-gi python3-dbus
	python3-pytest

	libvirt-daemon-driver-qemu libxml2-dev libxml2-utils gcc libc6-dev
	libglib2.0-bin systemd clang-format procps e2fsprogs python3-libvirt
	libvirt-dbus bubblewrap liblzma-dev

	cockpit-ws cockpit-bridge chromium chromium-driver python3-selenium
)

lgd_log()
{
	printf '%s: %s\n' "${0##*/}" "$*" >&2
}

lgd_die()
{
	lgd_log "error: $*"
	exit 1
}

lgd_require_root()
{
	[ "$(id -u)" -eq 0 ] || lgd_die "run me as root (sudo $0): I install packages and start system daemons"
}

# Runs "$@" every 0.2 s until it succeeds or $1 seconds have passed.
lgd_wait_for()
{
	local timeout=$1 start=$SECONDS
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS - start < timeout)) || return 1
		sleep 0.2
	done
}

# (Outputs are captured rather than piped into grep -q: under pipefail a
# writer killed by SIGPIPE when grep stops early would count as a failure.)
lgd_package_has_candidate()
{
	[[ $(apt-cache policy "$1" 2>/dev/null) == *"Candidate: "[!\(]* ]]
}

lgd_install_deps()
{
	local missing=() pkg need_update=false installed

	# One dpkg-query for all (it is slow to start): the installed ones.
	# It fails when it knows some package of the list not at all.
	installed=" $( (dpkg-query -W -f='${db:Status-Status}:${Package}\n' "${LGD_PACKAGES[@]}" 2>/dev/null || true) |
		sed -n 's/^installed://p' | tr '\n' ' ') "
	for pkg in "${LGD_PACKAGES[@]}"; do
		[[ $installed == *" $pkg "* ]] || missing+=("$pkg")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		return 0
	fi
	lgd_require_root
	lgd_log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive

	# Package lists are fetched only when apt does not know a package yet
	# (a fresh machine has none), or when installing from the lists it has
	# fails (they are stale and the archive moved on).
	for pkg in "${missing[@]}"; do
		lgd_package_has_candidate "$pkg" || need_update=true
	done
	if $need_update; then
		apt-get update -q
	fi
	if ! apt-get install -y -q "${missing[@]}"; then
		$need_update && lgd_die "apt-get install failed"
		apt-get update -q
		apt-get install -y -q "${missing[@]}" || lgd_die "apt-get install failed"
	fi
}

# True when build directory $1 has every -Dname=value option given after it
# (booleans compare as true/false).
lgd_build_has_options()
{
	local dir=$1
	shift
	meson introspect --buildoptions "$dir" | /usr/bin/python3 -c '
import json, sys
have = {o["name"]: o["value"] for o in json.load(sys.stdin)}
def text(value):
    return str(value).lower() if isinstance(value, bool) else str(value)
want = dict(arg[2:].split("=", 1) for arg in sys.argv[1:])
sys.exit(any(text(have.get(name)) != value for name, value in want.items()))
' "$@"
}

# lgd_build_in DIR -Dname=value...: configures DIR once with these options
# (and again when a developer changed one of them), then builds.
lgd_build_in()
{
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$LGD_SOURCE_DIR" "$@"
	elif ! lgd_build_has_options "$dir" "$@"; then
		meson configure "$dir" "$@"
	fi
	ninja -C "$dir"
}

# Warnings are errors, also when a developer configured the directory
# without.
lgd_build()
{
	lgd_build_in "$LGD_BUILD_DIR" -Dwerror=true
}

lgd_build_sanitized()
{
	lgd_build_in "$LGD_SANITIZE_BUILD_DIR" "${LGD_SANITIZE_OPTIONS[@]}"
}

lgd_system_bus_answers()
{
	dbus-send --system --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.GetId >/dev/null 2>&1
}

lgd_bus_name_has_owner()
{
	[[ $(dbus-send --system --print-reply --dest=org.freedesktop.DBus / \
		org.freedesktop.DBus.NameHasOwner "string:$1" 2>/dev/null) == *"boolean true"* ]]
}

lgd_libvirt_answers()
{
	virsh -c qemu:///system version >/dev/null 2>&1
}

lgd_start_system_bus()
{
	local pid

	lgd_system_bus_answers && return 0
	lgd_log "starting the system bus"
	mkdir -p /run/dbus
	# A pid file left by a bus that died keeps dbus-daemon from starting.
	if [ -f /run/dbus/pid ]; then
		pid=$(cat /run/dbus/pid)
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			lgd_die "dbus-daemon $pid is running but the system bus does not answer"
		fi
		rm -f /run/dbus/pid
	fi
	dbus-daemon --system --fork
	lgd_wait_for 10 lgd_system_bus_answers || lgd_die "the system bus did not come up"
}

# polkitd is judged by its bus name, which is what the service talks to: a
# polkitd of a bus that was restarted is no use.
lgd_start_polkitd()
{
	lgd_bus_name_has_owner org.freedesktop.PolicyKit1 && return 0
	lgd_log "starting polkitd (log: $LGD_LOG_DIR/polkitd.log)"
	mkdir -p "$LGD_LOG_DIR"
	# Its own session, so that it outlives this script and its terminal.
	setsid -f /usr/lib/polkit-1/polkitd --no-debug </dev/null >>"$LGD_LOG_DIR/polkitd.log" 2>&1
	lgd_wait_for 20 lgd_bus_name_has_owner org.freedesktop.PolicyKit1 ||
		lgd_die "polkitd did not take its bus name; see $LGD_LOG_DIR/polkitd.log"
}

lgd_start_libvirt()
{
	# libvirtd hands guest consoles and qemu logs to virtlogd.
	if ! pgrep -x virtlogd >/dev/null; then
		lgd_log "starting virtlogd"
		mkdir -p /var/log/libvirt
		virtlogd -d
	fi
	if ! pgrep -x libvirtd >/dev/null; then
		lgd_log "starting libvirtd"
		mkdir -p /var/log/libvirt
		libvirtd -d
	fi
	lgd_wait_for 60 lgd_libvirt_answers ||
		lgd_die "libvirtd does not answer on qemu:///system: $(virsh -c qemu:///system version 2>&1 | tail -n 1)"
}

# Idempotent: starts only what is not running, then waits until libvirt
# answers.  No systemd: these are the daemons a Debian system would run.
# Afterwards this shell talks to the machine's system bus.
lgd_start_daemons()
{
	lgd_require_root
	# The machine's own bus at its standard address, whatever an outer
	# environment (a test run, a container) says.
	unset DBUS_SYSTEM_BUS_ADDRESS
	lgd_start_system_bus
	lgd_start_polkitd
	lgd_start_libvirt
}
