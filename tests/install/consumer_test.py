#!/usr/bin/env python3
"""sluice as a library, from outside its tree (issue 16).

(a) `meson install --destdir` of this build, then consumer/server.cpp built
    with nothing but `pkg-config --cflags --libs sluice`: it must link no DPDK
    library (readelf NEEDED and ldd) and answer over loopback.
(b) The same source built by a meson project that has sluice as a
    subproject (`dependency('sluice', fallback: ['sluice'])`).

Usage: consumer_test.py SOURCE_ROOT BUILD_DIR
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

SRC, BUILD = sys.argv[1], sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def check_no_dpdk(exe, env):
    needed = [l.split('[')[1].rstrip(']') for l in run(['readelf', '-d', exe]).splitlines() if '(NEEDED)' in l]
    dpdk = [n for n in needed if n.startswith('librte_')]
    assert not dpdk, f"{exe} needs DPDK libraries: {dpdk}"
    ldd = run(['ldd', exe], env=env)
    assert 'librte_' not in ldd, f"ldd {exe} shows a DPDK library:\n{ldd}"
    assert 'not found' not in ldd, f"ldd {exe}: a library is missing:\n{ldd}"
    return needed


def serves(exe, env):
    """The server prints its port; two clients interleave partial lines."""
    p = subprocess.Popen([exe], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = p.stdout.readline()
        if not line.strip():
            p.wait(timeout=10)
            raise AssertionError(f"{exe} printed no port (exit {p.returncode}): {p.stderr.read()}")
        port = int(line)
        a = socket.create_connection(('127.0.0.1', port), timeout=10)
        b = socket.create_connection(('127.0.0.1', port), timeout=10)
        a.sendall(b'abcdefghij')          # a partial line on A ...
        b.sendall(b'hi\n')                # ... must not hold up B's whole one
        assert b.recv(100) == b'ok: hi\n'
        a.sendall(b'\n')
        assert a.recv(100) == b'ok: abcdefghij\n'
        a.close()
        b.close()
    finally:
        p.terminate()
        p.wait(timeout=10)


def installed():
    opts = {o['name']: o['value'] for o in json.loads(run(['meson', 'introspect', '--buildoptions', BUILD]))}
    with tempfile.TemporaryDirectory() as tmp:
        dest = os.path.join(tmp, 'dest')
        run(['meson', 'install', '-C', BUILD, '--no-rebuild', '--quiet', '--destdir', dest])
        prefix = dest + opts['prefix']
        libdir = os.path.join(prefix, opts['libdir'])
        incdir = os.path.join(prefix, opts['includedir'], 'sluice')
        for private in ('kernel/readiness_io.hpp', 'inet/tcp_layer.hpp', 'epoll/epoll_transport.hpp'):
            assert not os.path.exists(os.path.join(incdir, private)), f"private header installed: {private}"
        for public in ('core/session.hpp', 'runtime/runtime.hpp', 'base/result.hpp', 'platform/placement.hpp'):
            assert os.path.exists(os.path.join(incdir, public)), f"public header missing: {public}"
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(libdir, 'pkgconfig'))
        flags = run(['pkg-config', '--define-variable=prefix=' + prefix, '--cflags', '--libs', 'sluice'], env=env).split()
        exe = os.path.join(tmp, 'line-server')
        run(['c++', '-std=c++20', os.path.join(HERE, 'consumer', 'server.cpp'), '-o', exe] + flags)
        env = dict(os.environ, LD_LIBRARY_PATH=libdir)
        needed = check_no_dpdk(exe, env)
        assert any(n.startswith('libsluice_epoll') for n in needed), f"the epoll transport is not linked: {needed}"
        serves(exe, env)
        print(f"(a) installed: pkg-config --libs sluice = {' '.join(flags)}; NEEDED = {', '.join(needed)}")


def subproject():
    with tempfile.TemporaryDirectory() as tmp:
        proj = os.path.join(tmp, 'consumer')
        shutil.copytree(os.path.join(HERE, 'consumer'), proj)
        os.makedirs(os.path.join(proj, 'subprojects'))
        os.symlink(os.path.abspath(SRC), os.path.join(proj, 'subprojects', 'sluice'))
        b = os.path.join(tmp, 'b')
        run(['meson', 'setup', b, proj, '--buildtype=plain'])
        run(['meson', 'compile', '-C', b, 'line-server'])
        exe = os.path.join(b, 'line-server')
        check_no_dpdk(exe, dict(os.environ))
        serves(exe, dict(os.environ))
        print("(b) subproject: built and served")


installed()
subproject()
