#!/usr/bin/python3
"""Check a man page against the program it documents.

Every option the program's --help lists must be documented in the man
page's OPTIONS section, and every option documented there must exist
(so that a renamed or removed option does not linger in the page).  The
page must also render without a single groff warning.  All problems are
printed, then the test fails.

Usage: check-manpage.py PROGRAM MANPAGE
"""

import re
import subprocess
import sys

# --long-name and -x, as --help prints them and as the page spells them
# once roff's escapes are undone.
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")


def help_options(program):
    r = subprocess.run([program, "--help"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise SystemExit(f"FAIL: {program} --help exited with {r.returncode}: {r.stderr}")
    options = set()
    for line in r.stdout.splitlines():
        # an option line starts with its names; its description follows
        # after two or more spaces and may name other options
        m = re.match(r"\s+(-\S.*?)(?:\s{2,}|$)", line)
        if m:
            options.update(OPTION.findall(m.group(1)))
    return options


def roff_text(line):
    """A roff source line as plain text: font changes dropped, \\- and
    \\(en as the characters they print."""
    line = re.sub(r"\\f(\[[^]]*\]|\(..|.)", "", line)
    line = line.replace("\\-", "-").replace("\\(en", "-").replace("\\e", "\\")
    return line.replace("\\&", "")


def documented_options(manpage):
    """The options that head a paragraph (.TP) of the OPTIONS section, and
    the whole text of that section."""
    with open(manpage) as f:
        lines = f.read().splitlines()
    section, tagged, text, heads = None, False, [], set()
    for line in lines:
        if line.startswith(".SH"):
            section = line[3:].strip().strip('"')
            continue
        if section != "OPTIONS":
            continue
        if line.startswith(".TP"):
            tagged = True
            continue
        plain = roff_text(line)
        text.append(plain)
        if tagged:
            # the tag line: drop the macro, keep the words
            heads.update(OPTION.findall(re.sub(r"^\.\w+\s*", "", plain)))
            tagged = False
    return heads, "\n".join(text)


def groff_warnings(manpage):
    r = subprocess.run(
        ["groff", "-man", "-ww", "-z", manpage], capture_output=True, text=True, timeout=60
    )
    problems = []
    if r.returncode != 0:
        problems.append(f"groff exited with {r.returncode}")
    problems += [f"groff: {line}" for line in r.stderr.splitlines() if line.strip()]
    return problems


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    program, manpage = sys.argv[1:]
    problems = []

    in_help = help_options(program)
    if "--help" not in in_help or len(in_help) < 3:
        problems.append(f"{program} --help lists too little to check: {sorted(in_help)}")
    heads, _ = documented_options(manpage)
    if not heads:
        problems.append(f"{manpage}: no OPTIONS section with .TP paragraphs")
    for option in sorted(in_help - heads):
        problems.append(f"{manpage}: {option} (in --help) has no paragraph in OPTIONS")
    for option in sorted(heads - in_help):
        problems.append(f"{manpage}: {option} is documented in OPTIONS but not in --help")
    problems += groff_warnings(manpage)

    for problem in problems:
        print(f"FAIL: {problem}")
    if problems:
        return 1
    print(f"{manpage}: {len(in_help)} options of {program} documented, renders cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
