#!/usr/bin/env python3
"""The benchmark programs' flags: --help prints the usage and exits 0; a bad
flag or a value that is not a number gives one error line and exit code 2
(before the EAL starts, so this needs no DPDK environment).

Usage: flags_test.py PROGRAM FLAG=GOOD_VALUE..."""
import subprocess
import sys


def run(argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def main():
    program, numeric = sys.argv[1], sys.argv[2:]
    failures = []
    r = run([program, "--help"])
    if r.returncode != 0 or not r.stdout.startswith("Usage:"):
        failures.append(f"--help: rc {r.returncode}, stdout {r.stdout[:80]!r}")
    bad = [["--bogus"], ["--json=yes"]]
    for flag in numeric:
        bad += [[flag + "=abc"], [flag + "=12x"], [flag + "="], [flag + "=-5"]]
    for argv in bad:
        r = run([program] + argv)
        lines = r.stderr.splitlines()
        if r.returncode != 2 or len(lines) != 1 or "error" not in lines[0]:
            failures.append(f"{' '.join(argv)}: rc {r.returncode}, stderr {r.stderr!r}")
    for f in failures:
        print("FAIL", program, f)
    print(f"{len(bad) + 1 - len(failures)} of {len(bad) + 1} cases as expected")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
