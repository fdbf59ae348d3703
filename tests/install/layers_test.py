#!/usr/bin/env python3
"""The layers' edges, enforced by the build (issue 16.1, DESIGN.md "Layers").

Each layer is a library that sees only the include directories of the layers
it depends on. For every forbidden edge, this compiles a one-line source
that includes a header of the forbidden layer with the exact command the
build uses for one of the layer's own sources (compile_commands.json), and
expects it to fail with "No such file"; for every allowed edge, to succeed.
A layer that gains an include path it should not have fails this test.

Usage: layers_test.py BUILD_DIR
"""
import json
import os
import shlex
import subprocess
import sys
import tempfile

BUILD = sys.argv[1]
commands = json.load(open(os.path.join(BUILD, 'compile_commands.json')))

# layer: a source file of it (as the build names it)
LAYERS = {
    'base': 'core/base/src/cli.cpp',
    'platform': 'platform/src/topology.cpp',
    'core': 'core/src/loop_base.cpp',
    'transport': 'transport/src/registry.cpp',
    'epoll': 'transport/epoll/src/epoll_transport.cpp',
    'inet': 'transport/inet/src/stack.cpp',
    'runtime': 'core/runtime/src/runtime.cpp',
}
# a header of each layer
HEADERS = {
    'base': 'sluice/base/result.hpp',
    'platform': 'sluice/platform/topology.hpp',
    'core': 'sluice/core/connection.hpp',
    'transport': 'sluice/transport/registry.hpp',
    'kernel': 'kernel/socket_ops.hpp',
    'epoll': 'sluice/epoll/epoll_transport.hpp',
    'io_uring': 'sluice/io_uring/io_uring_transport.hpp',
    'inet': 'sluice/inet/stack.hpp',
    'dpdk': 'sluice/dpdk/dpdk_transport.hpp',
    'runtime': 'sluice/runtime/runtime.hpp',
}
ALLOWED = {
    'base': {'base'},
    'platform': {'base', 'platform'},
    'core': {'base', 'core'},
    'transport': {'base', 'platform', 'core', 'transport'},
    'epoll': {'base', 'platform', 'core', 'transport', 'kernel', 'epoll'},
    'inet': {'base', 'platform', 'core', 'transport', 'inet'},
    'runtime': {'base', 'platform', 'core', 'transport', 'runtime'},
}


def command_for(source):
    for c in commands:
        if c['file'].endswith('/' + source) or c['file'] == source:
            if 'libsluice_' in c.get('output', c['command']):
                return c
    sys.exit(f"no compile command for {source} in compile_commands.json")


failures = []
checked = 0
with tempfile.TemporaryDirectory() as tmp:
    probe = os.path.join(tmp, 'probe.cpp')
    for layer, source in LAYERS.items():
        c = command_for(source)
        args = shlex.split(c['command'])
        for target, header in HEADERS.items():
            with open(probe, 'w') as f:
                f.write(f'#include "{header}"\n')
            cmd = []
            skip = False
            for a in args:
                if skip:
                    skip = False
                    continue
                if a in ('-o', '-MF', '-MQ'):
                    skip = True
                    continue
                if a in ('-c', '-MD') or a.endswith(os.path.basename(source)):
                    continue
                cmd.append(a)
            cmd += ['-fsyntax-only', probe]
            r = subprocess.run(cmd, cwd=c['directory'], capture_output=True, text=True)
            allowed = target in ALLOWED[layer]
            missing = 'No such file' in r.stderr
            checked += 1
            if allowed and r.returncode != 0:
                failures.append(f"{layer} -> {target}: allowed, but {header} does not compile there:\n{r.stderr[-600:]}")
            elif not allowed and not missing:
                failures.append(f"{layer} -> {target}: forbidden, but {header} is on {layer}'s include path")

for f in failures:
    print("FAIL", f)
print(f"{checked} layer edges checked, {len(failures)} wrong")
sys.exit(1 if failures else 0)
