#!/usr/bin/python3
"""Install the build into a temporary DESTDIR and check the installed tree.

Every expected file must exist at the place dbus-daemon, systemd and polkit
read it from (under the configured prefix), and the files that name the
daemon's binary must name the installed one.  All problems are collected
and printed, then the test fails; nothing is skipped.
"""

import argparse
import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

BUS_NAME = "org.libvirt.GuestFS"
UNIT = "libvirt-guestfs-dbus.service"
ACTIONS = [
    "org.libvirt.guestfs.inspect",
    "org.libvirt.guestfs.read",
    "org.libvirt.guestfs.write",
    "org.libvirt.guestfs.manage",
    "org.libvirt.guestfs.volume-read",
    "org.libvirt.guestfs.volume-write",
]
POLKIT_DTD = "/usr/share/polkit-1/policyconfig-1.dtd"


class Checker:
    def __init__(self, destdir):
        self.destdir = destdir
        self.problems = []
        self.checked = 0

    def path(self, installed):
        """Where an absolute installed path is inside DESTDIR."""
        return os.path.join(self.destdir, installed.lstrip("/"))

    def fail(self, message):
        self.problems.append(message)

    def expect(self, condition, message):
        self.checked += 1
        if not condition:
            self.fail(message)
        return condition

    def expect_file(self, installed, executable=False):
        real = self.path(installed)
        if not self.expect(os.path.isfile(real), f"missing: {installed}"):
            return None
        self.expect(os.path.getsize(real) > 0, f"empty: {installed}")
        if executable:
            self.expect(os.access(real, os.X_OK), f"not executable: {installed}")
        return real

    def expect_xml(self, real, installed):
        try:
            return ET.parse(real)
        except ET.ParseError as e:
            self.fail(f"not well-formed XML: {installed}: {e}")
            return None


def read_dbus_service(real):
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(real)
    return parser["D-BUS Service"] if parser.has_section("D-BUS Service") else {}


def read_unit(real):
    """A systemd unit as {section: {key: [values]}} (keys may repeat)."""
    unit, section = {}, None
    with open(real) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = unit.setdefault(line.strip("[]"), {})
            elif "=" in line and section is not None:
                key, value = line.split("=", 1)
                section.setdefault(key.strip(), []).append(value.strip())
    return unit


def check_binary(c, args):
    c.expect_file(os.path.join(args.sbindir, args.project), executable=True)


def check_bus_policy(c, args):
    installed = os.path.join(args.datadir, "dbus-1", "system.d", f"{BUS_NAME}.conf")
    real = c.expect_file(installed)
    if real is None:
        return
    tree = c.expect_xml(real, installed)
    if tree is None:
        return
    owners = [
        p.get("user")
        for p in tree.getroot().iter("policy")
        for a in p.iter("allow")
        if a.get("own") == BUS_NAME
    ]
    c.expect(owners == ["root"], f"{installed}: only root may own {BUS_NAME}, got {owners}")
    callers = {
        (k, v)
        for p in tree.getroot().iter("policy")
        for k, v in p.attrib.items()
        for a in p.iter("allow")
        if a.get("send_destination") == BUS_NAME
    }
    for who in [("user", "root"), ("group", "libvirt")]:
        c.expect(who in callers, f"{installed}: {who[0]} {who[1]} may not call {BUS_NAME}")


def check_activation(c, args, directory, bus_option):
    installed = os.path.join(args.datadir, "dbus-1", directory, f"{BUS_NAME}.service")
    real = c.expect_file(installed)
    if real is None:
        return
    service = read_dbus_service(real)
    binary = os.path.join(args.sbindir, args.project)
    c.expect(service.get("Name") == BUS_NAME, f"{installed}: Name is not {BUS_NAME}")
    c.expect(
        service.get("Exec") == f"{binary} {bus_option}",
        f"{installed}: Exec is {service.get('Exec')!r}, expected '{binary} {bus_option}'",
    )
    if bus_option == "--system":
        c.expect(service.get("User") == "root", f"{installed}: User is not root")
        c.expect(service.get("SystemdService") == UNIT, f"{installed}: SystemdService is not {UNIT}")


def check_unit(c, args):
    installed = os.path.join(args.unitdir, UNIT)
    real = c.expect_file(installed)
    if real is None:
        return
    service = read_unit(real).get("Service", {})
    binary = os.path.join(args.sbindir, args.project)
    c.expect(service.get("Type") == ["dbus"], f"{installed}: Type is not dbus")
    c.expect(service.get("BusName") == [BUS_NAME], f"{installed}: BusName is not {BUS_NAME}")
    c.expect(
        service.get("ExecStart") == [f"{binary} --system"],
        f"{installed}: ExecStart is {service.get('ExecStart')}, expected '{binary} --system'",
    )
    # ProtectSystem=strict: the directories the daemon writes must be
    # declared, or the service cannot start (tests/integration/test_sandbox.py
    # runs it in that sandbox).
    for key in ("RuntimeDirectory", "CacheDirectory"):
        c.expect(service.get(key) == [args.project], f"{installed}: {key} is {service.get(key)}, expected {args.project}")
    # systemd's own parser, on a copy whose ExecStart names the binary
    # inside DESTDIR (verify checks that the command exists).
    analyze = shutil.which("systemd-analyze")
    if not c.expect(analyze is not None, "systemd-analyze is missing (package systemd)"):
        return
    with open(real) as f:
        text = f.read().replace(binary, c.path(binary))
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, UNIT)
        with open(copy, "w") as f:
            f.write(text)
        r = subprocess.run([analyze, "verify", copy], capture_output=True, text=True)
        output = (r.stdout + r.stderr).strip()
        c.expect(r.returncode == 0 and output == "", f"systemd-analyze verify {installed}: {output}")


def check_polkit(c, args):
    installed = os.path.join(args.datadir, "polkit-1", "actions", "org.libvirt.guestfs.policy")
    real = c.expect_file(installed)
    if real is None:
        return
    tree = c.expect_xml(real, installed)
    if tree is None:
        return
    actions = {a.get("id"): a for a in tree.getroot().iter("action")}
    c.expect(sorted(actions) == sorted(ACTIONS), f"{installed}: actions {sorted(actions)}, expected {sorted(ACTIONS)}")
    for action_id in ACTIONS:
        action = actions.get(action_id)
        if action is None:
            continue
        for tag in ("description", "message"):
            texts = [e.text for e in action.findall(tag) if not e.attrib]
            c.expect(len(texts) == 1 and texts[0], f"{installed}: {action_id} has no untranslated {tag}")
        for tag in ("allow_any", "allow_inactive", "allow_active"):
            value = action.findtext(f"defaults/{tag}")
            c.expect(value == "auth_admin_keep", f"{installed}: {action_id} {tag} is {value!r}")
    # Each language of po/LINGUAS is merged into the policy and installed
    # as a catalogue.
    lang_attr = "{http://www.w3.org/XML/1998/namespace}lang"
    for lang in linguas(args):
        for action_id, action in actions.items():
            langs = {e.get(lang_attr) for e in action.findall("message")}
            c.expect(lang in langs, f"{installed}: {action_id} has no {lang} message")
        c.expect_file(os.path.join(args.localedir, lang, "LC_MESSAGES", f"{args.project}.mo"))
    # Valid against polkit's own DTD, which comes with polkitd.
    if c.expect(os.path.exists(POLKIT_DTD), f"{POLKIT_DTD} is missing (package polkitd)"):
        r = subprocess.run(["xmllint", "--noout", "--dtdvalid", POLKIT_DTD, real], capture_output=True, text=True)
        c.expect(r.returncode == 0, f"{installed} is not valid against {POLKIT_DTD}: {r.stderr.strip()}")


def linguas(args):
    with open(os.path.join(args.sourcedir, "po", "LINGUAS")) as f:
        return [w for line in f if not line.startswith("#") for w in line.split()]


def check_interfaces_and_docs(c, args):
    interfaces = sorted(
        name[: -len(".xml")]
        for name in os.listdir(os.path.join(args.sourcedir, "introspection"))
        if name.startswith(BUS_NAME + ".") and name.endswith(".xml")
    )
    c.expect(len(interfaces) >= 3, f"introspection/ lists only {interfaces}")
    docdir = os.path.join(args.datadir, "doc", args.project)
    for interface in interfaces:
        real = c.expect_file(os.path.join(args.datadir, "dbus-1", "interfaces", f"{interface}.xml"))
        if real is not None:
            tree = c.expect_xml(real, interface)
            if tree is not None:
                names = [i.get("name") for i in tree.getroot().iter("interface")]
                c.expect(names == [interface], f"{real}: declares {names}, expected [{interface}]")
        doc = c.expect_file(os.path.join(docdir, f"doc-{interface}.rst"))
        if doc is not None:
            with open(doc) as f:
                c.expect(interface in f.read(), f"{doc} does not document {interface}")
    c.expect_file(os.path.join(docdir, "50-libvirt-guestfs-dbus.rules.example"))


def check_man_pages(c, args):
    for section, name in (("8", args.project), ("1", "guestfsctl")):
        installed = os.path.join(args.mandir, f"man{section}", f"{name}.{section}")
        real = c.expect_file(installed)
        if real is None:
            continue
        with open(real) as f:
            head = f.readline()
        c.expect(
            head.startswith(f".TH {name.upper()} {section} "),
            f"{installed}: first line is {head.strip()!r}, not the .TH of {name}({section})",
        )


def check_cockpit(c, args):
    """The Cockpit page: every file its HTML loads, and a manifest Cockpit
    can read, where Cockpit looks for packages."""
    pkgdir = os.path.join(args.datadir, "cockpit", "guestfs")
    manifest = c.expect_file(os.path.join(pkgdir, "manifest.json"))
    if manifest is not None:
        with open(manifest) as f:
            try:
                c.expect("menu" in json.load(f), f"{manifest}: no menu entry")
            except ValueError as e:
                c.expect(False, f"{manifest}: not JSON: {e}")
    index = c.expect_file(os.path.join(pkgdir, "index.html"))
    if index is None:
        return
    with open(index) as f:
        html = f.read()
    for ref in re.findall(r'(?:src|href)="([^":]+)"', html):
        if not ref.startswith("../"):  # ../base1/cockpit.js is Cockpit's own
            c.expect_file(os.path.join(pkgdir, ref))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    for option in (
        "meson", "builddir", "sourcedir", "project", "prefix", "sbindir", "datadir", "localedir", "mandir", "unitdir"
    ):
        parser.add_argument(f"--{option}", required=True)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lgd-install-") as destdir:
        r = subprocess.run(
            [args.meson, "install", "--destdir", destdir, "-C", args.builddir, "--no-rebuild"],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            print(r.stdout, r.stderr, sep="\n")
            print(f"FAIL: meson install exited with {r.returncode}")
            return 1

        c = Checker(destdir)
        check_binary(c, args)
        check_bus_policy(c, args)
        check_activation(c, args, "system-services", "--system")
        check_activation(c, args, "services", "--session")
        check_unit(c, args)
        check_polkit(c, args)
        check_interfaces_and_docs(c, args)
        check_man_pages(c, args)
        check_cockpit(c, args)

        # Also list what was installed, so a failure shows where things went.
        if c.problems:
            print("Installed tree:")
            for root, _, files in sorted(os.walk(destdir)):
                for name in sorted(files):
                    print("  /" + os.path.relpath(os.path.join(root, name), destdir))
            for problem in c.problems:
                print(f"FAIL: {problem}")
            print(f"{len(c.problems)} of {c.checked} checks failed")
            return 1
        print(f"install tree OK: {c.checked} checks under {args.prefix}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
