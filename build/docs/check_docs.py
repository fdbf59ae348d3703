#!/usr/bin/env python3
"""The api_docs test: runs Doxygen over the public headers with warnings for
undocumented names on, and fails if any warning is about a public header,
listing each as FILE:LINE: NAME.

Usage: check_docs.py DOXYGEN DOXYFILE WORKDIR SOURCE_ROOT PUBLIC_DIR...
(names are shown relative to SOURCE_ROOT)
DOXYGEN empty or not found: the test is skipped (exit 77, meson's "skip").
"""

import os
import re
import shutil
import subprocess
import sys

# Whatever Doxyfile says, the check runs with these (later lines win).
OVERRIDES = """
WARN_IF_UNDOCUMENTED   = YES
WARN_NO_PARAMDOC       = NO
WARN_IF_DOC_ERROR      = YES
WARN_AS_ERROR          = NO
EXTRACT_ALL            = NO
EXTRACT_PRIVATE        = NO
QUIET                  = YES
WARN_FORMAT            = "$file:$line: $text"
GENERATE_HTML          = NO
GENERATE_LATEX         = NO
GENERATE_XML           = YES
XML_PROGRAMLISTING     = NO
"""

WARNING = re.compile(r'^(/[^:]*):(\d+): (.*)$')
MEMBER = re.compile(r'(?:warning: )?Member (.+?) \(([^)]*)\) of (\w+) (.+?) is not documented\.$')
COMPOUND = re.compile(r'(?:warning: )?Compound (.+?) is not documented\.$')
OTHER_UNDOC = re.compile(r'(?:warning: )?(.+?) is not documented\.')


def describe(text):
    m = MEMBER.match(text)
    if m:
        name, kind, scope_kind, scope = m.groups()
        if scope_kind == 'file':
            return '%s (%s)' % (name, kind)
        return '%s::%s (%s)' % (scope, name, kind)
    m = COMPOUND.match(text)
    if m:
        return m.group(1)
    m = OTHER_UNDOC.match(text)
    if m:
        return m.group(1)
    return text[len('warning: '):] if text.startswith('warning: ') else text


def main(argv):
    if len(argv) < 6:
        sys.stderr.write(__doc__)
        return 2
    doxygen, doxyfile, workdir, root = argv[1], argv[2], argv[3], os.path.realpath(argv[4])
    public = [os.path.realpath(d) + os.sep for d in argv[5:]]
    if not doxygen or shutil.which(doxygen) is None:
        print('api_docs: doxygen not found (Debian: apt install doxygen): skipped')
        return 77

    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    log = os.path.join(workdir, 'warnings.log')
    with open(doxyfile, encoding='utf-8') as f:
        config = f.read()
    config += OVERRIDES
    config += 'OUTPUT_DIRECTORY = "%s"\nWARN_LOGFILE = "%s"\n' % (workdir, log)
    proc = subprocess.run([doxygen, '-'], input=config, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=workdir)
    if proc.returncode != 0:
        print(proc.stdout)
        print('api_docs: doxygen failed (exit %d)' % proc.returncode)
        return 1

    warnings = []   # [path, line, text lines]
    with open(log, encoding='utf-8', errors='replace') as f:
        for raw in f:
            raw = raw.rstrip('\n')
            m = WARNING.match(raw)
            if m:
                warnings.append([m.group(1), int(m.group(2)), [m.group(3)]])
            elif warnings and raw.strip():
                warnings[-1][2].append(raw.strip())
            elif raw.strip():
                warnings.append(['', 0, [raw.strip()]])

    failing, other = [], []
    for path, line, text in warnings:
        real = os.path.realpath(path) if path else ''
        where = next((d for d in public if real.startswith(d)), None)
        if where is None:
            other.append((path, line, text))
            continue
        shown = os.path.relpath(real, root)
        failing.append((shown, line, describe(text[0]), text[1:]))

    for path, line, text in other:
        print('note (not a public header): %s:%d: %s' % (path, line, ' '.join(text)))
    # A namespace member is reported once for its namespace, once for its file.
    failing = sorted(set((s, l, n, tuple(r)) for s, l, n, r in failing))
    for shown, line, name, rest in failing:
        print('%s:%d: %s' % (shown, line, name))
        for r in rest:
            print('    ' + r)
    if failing:
        print('api_docs: %d warning(s) about the public headers' % len(failing))
        return 1
    print('api_docs: no warnings about the public headers (%d director%s)'
          % (len(public), 'y' if len(public) == 1 else 'ies'))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
