# The sandbox that systemd makes of the service's unit, rebuilt with
# bubblewrap (bwrap) for machines where systemd is not PID 1: the unit's
# own [Service] settings, read from the generated unit file, become a bwrap
# command line, so that a test runs the built daemon the way systemd would
# start it.  Every setting of the unit is either expressed or named in
# NOT_EXPRESSED with the reason; a setting this file does not know fails the
# test, so the unit cannot drift away from what is tested.

import os
import shlex

import pytest

UNIT_NAME = 'libvirt-guestfs-dbus.service'
# The PATH systemd gives system services (Debian 12's systemd 252).
SYSTEMD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

# What no bwrap option expresses: seccomp filters (bwrap takes only
# compiled ones), and settings about the service's life cycle that a test
# does not exercise.  The daemon honours none of these by itself either, so
# a test passing without them says nothing about them.
NOT_EXPRESSED = {
    'Type': 'the test waits for BusName= on the bus, as systemd does for Type=dbus',
    'Restart': 'life cycle, not sandbox',
    'RestrictAddressFamilies': 'seccomp',
    'RestrictNamespaces': 'seccomp',
    'RestrictRealtime': 'seccomp',
    'RestrictSUIDSGID': 'seccomp',
    'LockPersonality': 'seccomp',
    'MemoryDenyWriteExecute': 'seccomp',
    'SystemCallArchitectures': 'seccomp',
    'SystemCallFilter': 'seccomp',
    'SystemCallErrorNumber': 'seccomp',
}
# Settings expressed only in the value the unit has: another value fails
# the test until this file learns it.
FIXED = {
    'ProtectSystem': 'strict',
    'ProtectHome': 'read-only',
    'PrivateTmp': 'no',
    'PrivateDevices': 'no',
    'PrivateNetwork': 'no',
    'ProtectKernelModules': 'no',
    'NoNewPrivileges': 'yes',  # bwrap always sets no_new_privs
}
EXPRESSED = {
    'BusName', 'ExecStart', 'ReadWritePaths', 'RuntimeDirectory', 'RuntimeDirectoryMode',
    'CacheDirectory', 'CacheDirectoryMode', 'ProtectKernelTunables', 'ProtectKernelLogs',
    'ProtectControlGroups', 'ProtectHostname', 'CapabilityBoundingSet', 'UMask',
} | set(FIXED)


def read_unit(path):
    """A unit file as {section: {key: [values]}} (keys may repeat)."""
    unit, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in '#;':
                continue
            if line.startswith('['):
                section = unit.setdefault(line.strip('[]'), {})
            elif '=' in line and section is not None:
                key, value = line.split('=', 1)
                section.setdefault(key.strip(), []).append(value.strip())
    return unit


def built_unit(daemon):
    """The unit that the build generated, next to the daemon it built."""
    build_dir = os.path.dirname(os.path.dirname(daemon))
    path = os.path.join(build_dir, 'data', UNIT_NAME)
    if not os.path.isfile(path):
        pytest.fail('%s is missing: build the project (ninja) first' % path, pytrace=False)
    return path


def _words(values):
    return [word for value in values for word in value.split()]


def _yes(value):
    return value in ('yes', 'true', 'on', '1')


class UnitSandbox:
    """The sandbox of SERVICE ({key: [values]}, a unit's [Service]).

    Where systemd would make /run/NAME and /var/cache/NAME for
    RuntimeDirectory= and CacheDirectory=, this makes RUNTIME_ROOT/NAME and
    CACHE_ROOT/NAME, so that a test neither takes nor removes the
    directories of a service running on the machine; the caller removes
    the roots.  The paths are the same inside the sandbox and out, as
    systemd's are (qemu, started by libvirtd outside the sandbox, opens
    files the daemon names)."""

    def __init__(self, service, runtime_root, cache_root):
        unknown = sorted(set(service) - EXPRESSED - set(NOT_EXPRESSED))
        assert not unknown, ('the unit sets %s, which unitsandbox.py neither expresses '
                             'nor lists in NOT_EXPRESSED' % ', '.join(unknown))
        for key, value in FIXED.items():
            got = service.get(key, [None])[-1]
            assert got == value, ('%s=%s: unitsandbox.py expresses only %s=%s'
                                  % (key, got, key, value))
        self.service = service
        self.exec_start = shlex.split(service['ExecStart'][-1])
        self.umask = int(service.get('UMask', ['0022'])[-1], 8)
        self.env = {'PATH': SYSTEMD_PATH, 'LANG': 'C.UTF-8'}
        self.writable = []
        args = ['bwrap', '--die-with-parent',
                # ProtectSystem=strict: everything read-only...
                '--ro-bind', '/', '/',
                # ...except the API file systems, unless other settings say
                # (PrivateDevices=no: the host's /dev, devices included)
                '--dev-bind', '/dev', '/dev',
                '--bind', '/proc', '/proc']
        if _yes(service.get('ProtectKernelTunables', ['no'])[-1]):
            for path in ('/proc/sys', '/proc/sysrq-trigger', '/proc/irq', '/proc/bus',
                         '/proc/fs', '/proc/acpi', '/proc/scsi'):
                if os.path.exists(path):
                    args += ['--ro-bind', path, path]
            args += ['--ro-bind', '/sys', '/sys']
        else:
            args += ['--bind', '/sys', '/sys']
        if _yes(service.get('ProtectControlGroups', ['no'])[-1]):
            args += ['--ro-bind', '/sys/fs/cgroup', '/sys/fs/cgroup']
        if _yes(service.get('ProtectKernelLogs', ['no'])[-1]):
            # systemd puts an inaccessible node there; a mode-0000 file is
            # its counterpart for a process without CAP_SYSLOG
            self.inaccessible = os.path.join(runtime_root, '.inaccessible')
            os.makedirs(runtime_root, 0o755, exist_ok=True)
            with open(self.inaccessible, 'w'):
                pass
            os.chmod(self.inaccessible, 0)
            for path in ('/proc/kmsg', '/dev/kmsg'):
                if os.path.exists(path):
                    args += ['--ro-bind', self.inaccessible, path]
        if _yes(service.get('ProtectHostname', ['no'])[-1]):
            args += ['--unshare-uts']
        for path in _words(service.get('ReadWritePaths', [])):
            optional = path.startswith('-')
            path = path.lstrip('-')
            if optional and not os.path.exists(path):
                continue
            args += ['--bind', path, path]
            self.writable.append(path)
        for key, root, variable in (('RuntimeDirectory', runtime_root, 'RUNTIME_DIRECTORY'),
                                    ('CacheDirectory', cache_root, 'CACHE_DIRECTORY')):
            names = _words(service.get(key, []))
            if not names:
                continue
            mode = int(service.get(key + 'Mode', ['0755'])[-1], 8)
            paths = []
            for name in names:
                path = os.path.join(root, name)
                os.makedirs(path, exist_ok=True)
                os.chmod(path, mode)  # systemd sets the mode, whatever the umask
                args += ['--bind', path, path]
                self.writable.append(path)
                paths.append(path)
            self.env[variable] = ':'.join(paths)
        capabilities = _words(service.get('CapabilityBoundingSet', []))
        if capabilities:
            assert capabilities[0].startswith('~'), 'only ~ lists are expressed'
            capabilities[0] = capabilities[0][1:]
            for capability in capabilities:
                args += ['--cap-drop', capability]
        self.args = args

    def command(self, argv, info_fd=None):
        """The bwrap command line that runs argv inside the sandbox."""
        extra = ['--info-fd', str(info_fd)] if info_fd is not None else []
        return self.args + extra + ['--'] + list(argv)

    def daemon_command(self, daemon, extra_args=(), info_fd=None):
        """ExecStart=, with the built daemon for the installed one."""
        installed = self.exec_start[0]
        assert os.path.basename(installed) == os.path.basename(daemon), (
            'ExecStart=%s does not start %s' % (installed, os.path.basename(daemon)))
        return self.command([daemon] + self.exec_start[1:] + list(extra_args), info_fd)
