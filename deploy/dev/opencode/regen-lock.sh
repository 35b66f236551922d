#!/usr/bin/env bash
# Regenerate package-lock.json for the pinned opencode-ai (run after changing the version in
# package.json, then commit both files).
#
# Why not plain `npm install --package-lock-only`: opencode-ai declares 12 platform binaries as
# optionalDependencies. A registry (or mirror) that does not serve some of them at this version
# makes npm silently leave them out of the lock, and `npm ci` then refuses the lock as "out of
# sync" ("Missing: opencode-darwin-arm64@ from lock file"). So after npm has written the lock,
# every optional platform package it could not resolve is added with its version, tarball URL and
# os/cpu/libc fields (no integrity: npm could not see it). npm skips such entries on other
# platforms without downloading them, so on linux-x64/glibc only opencode-linux-x64 and
# opencode-linux-x64-baseline are installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
rm -f package-lock.json
npm install --package-lock-only --no-audit --no-fund --loglevel=error >&2
python3 - <<'PY'
import json

with open("package-lock.json", encoding="utf-8") as f:
    lock = json.load(f)
pkgs = lock["packages"]
root = pkgs.get("node_modules/opencode-ai")
if root is None:
    raise SystemExit("opencode-ai missing from package-lock.json")
registry = "https://registry.npmjs.org"
added = []
for name, version in sorted(root.get("optionalDependencies", {}).items()):
    key = "node_modules/" + name
    if key in pkgs:
        continue
    # opencode-<os>-<cpu>[-baseline][-musl]
    parts = name.split("-")[1:]
    os_name = {"windows": "win32"}.get(parts[0], parts[0])
    entry = {
        "version": version,
        "resolved": "%s/%s/-/%s-%s.tgz" % (registry, name, name, version),
        "cpu": [parts[1]],
        "optional": True,
        "os": [os_name],
    }
    if "musl" in parts:
        entry["libc"] = ["musl"]
    pkgs[key] = entry
    added.append(name)
lock["packages"] = {k: pkgs[k] for k in sorted(pkgs, key=lambda k: (k != "", k))}
with open("package-lock.json", "w", encoding="utf-8") as f:
    json.dump(lock, f, indent=2)
    f.write("\n")
if added:
    print("added to lock without integrity (not served by the registry here): " + ", ".join(added),
          file=__import__("sys").stderr)
PY
