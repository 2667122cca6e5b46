#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks that every module includes only what docs/DESIGN.md lets it depend on.

The allowed dependencies are the ```layers block of docs/DESIGN.md: one line per module,
"module: dep dep ..." ("*" lets a module include anything). A module's files are those under its
top-level directory. Each quoted #include is resolved to the module that owns the header:
"godwit/x.h" to the module whose include/godwit/ holds it, a generated "a/b.pb-c.h" to proto/
(from proto/a/b.proto), anything else to a file beside the includer or in its own module's
src/ or include/. An include of another module's header that the list does not allow, or of a
header found nowhere, is reported as FILE:LINE with the forbidden edge; the exit code is 1.

usage: scripts/check-layers.py [ROOT]   (ROOT defaults to the repository holding this script)
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
SOURCE_EXT = (".c", ".h")


def read_layers(design):
    """The ```layers block of DESIGN.md: {module: set(deps)}, and the line each came from."""
    layers, lines = {}, {}
    inside = False
    with open(design, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            s = line.strip()
            if s.startswith("```"):
                if inside:
                    break
                inside = s == "```layers"
                continue
            if not inside or not s or s.startswith("#"):
                continue
            mod, sep, deps = s.partition(":")
            if not sep or not re.fullmatch(r"[a-z0-9_]+", mod.strip()):
                sys.exit(f"{design}:{n}: not a 'module: deps...' line: {s}")
            deps = deps.split("#", 1)[0].split()
            layers[mod.strip()] = set(deps)
            lines[mod.strip()] = n
    if not layers:
        sys.exit(f"{design}: no ```layers block")
    return layers, lines


def header_owners(root, modules):
    """{"godwit/x.h": module} for every public header."""
    owners = {}
    for m in modules:
        inc = os.path.join(root, m, "include")
        for d, _, files in os.walk(inc):
            for fn in files:
                if fn.endswith(".h"):
                    rel = os.path.relpath(os.path.join(d, fn), inc)
                    owners[rel] = m
    return owners


def owner_of(root, module, src, inc, owners):
    """The module an include resolves to, or None when it resolves nowhere."""
    if inc in owners:
        return owners[inc]
    if inc.endswith(".pb-c.h") and os.path.isfile(
            os.path.join(root, "proto", inc[:-len(".pb-c.h")] + ".proto")):
        return "proto"
    here = os.path.dirname(src)
    for d in (here, os.path.join(root, module, "src"), os.path.join(root, module, "include")):
        p = os.path.normpath(os.path.join(d, inc))
        if os.path.isfile(p):
            rel = os.path.relpath(p, root)
            return rel.split(os.sep, 1)[0]
    return None


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    design = os.path.join(root, "docs", "DESIGN.md")
    layers, _ = read_layers(design)
    for m, deps in layers.items():
        for d in deps - {"*"}:
            if d not in layers:
                sys.exit(f"{design}: {m} depends on {d}, which is not a module in the list")
    owners = header_owners(root, layers)
    bad = 0
    for m in sorted(layers):
        allowed = layers[m]
        if "*" in allowed:
            continue
        top = os.path.join(root, m)
        if not os.path.isdir(top):
            print(f"{design}: module {m} has no directory {m}/")
            bad += 1
            continue
        for d, dirs, files in os.walk(top):
            dirs[:] = sorted(x for x in dirs if not x.startswith("."))
            for fn in sorted(files):
                if not fn.endswith(SOURCE_EXT):
                    continue
                src = os.path.join(d, fn)
                rel = os.path.relpath(src, root)
                with open(src, encoding="utf-8", errors="replace") as f:
                    for n, line in enumerate(f, 1):
                        mt = INCLUDE.match(line)
                        if not mt:
                            continue
                        inc = mt.group(1)
                        o = owner_of(root, m, src, inc, owners)
                        if o is None:
                            print(f"{rel}:{n}: \"{inc}\" is no header of {m}/ and no public "
                                  f"header of any module")
                            bad += 1
                        elif o != m and o not in allowed:
                            print(f"{rel}:{n}: {m} -> {o} is not allowed (\"{inc}\"); "
                                  f"{m} may include: {' '.join(sorted(allowed)) or 'libc only'} "
                                  f"(docs/DESIGN.md, layers)")
                            bad += 1
    if bad:
        print(f"check-layers: {bad} include(s) break the dependency graph in docs/DESIGN.md")
        return 1
    print(f"check-layers: the includes of {len(layers)} modules follow docs/DESIGN.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
