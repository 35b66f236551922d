#!/usr/bin/env python3
"""Runs every command snippet of the docs against a gateway started by ./run.sh, as a new user would.

Snippets: fenced blocks whose info string starts with bash, sh or shell in README.md and docs/**/*.md. A block whose
info string has the word `no-run` after the language (```` ```bash no-run ````) is shown but not run (Docker,
kubectl, servers that do not end, the test suite itself): it is counted as skipped.

Each snippet runs in its own `bash` (cwd = the repository, `set -euo pipefail`) with:
  * TOKEN: the dev token ./run.sh printed;
  * curl = `curl --fail-with-body --show-error`: an HTTP error status fails the snippet like a non-zero exit;
  * the documented addresses pointed at this run's processes: 127.0.0.1:5000 / localhost:5000 = the gateway,
    127.0.0.1:4096 / localhost:4096 = its opencode.
Writes {passed, failed, skipped, failures, tests} to RESULTS/snippets.steps.json (scripts/summarize-results.py).

Env: SNIPPETS_GATEWAY_PORT, SNIPPETS_OC_PORT, SNIPPETS_MOCK_PORT (default: free ports), SNIPPETS_TIMEOUT (s, 120).
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RESULTS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "artifacts", "test-results")
LOGS = os.path.join(ROOT, "artifacts", "snippets")
FENCE = re.compile(r"^(?P<fence>```+|~~~+)\s*(?P<info>[^\n]*)$")
LANGUAGES = {"bash", "sh", "shell"}
PREAMBLE = "set -euo pipefail\ncurl() { command curl --fail-with-body --show-error \"$@\"; }\n"


def snippets():
    """(file:line, language words, code) of every shell block, in file order."""
    files = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
    for path in files:
        lines = open(path, encoding="utf-8").read().split("\n")
        i = 0
        while i < len(lines):
            match = FENCE.match(lines[i])
            if not match:
                i += 1
                continue
            fence, words, start = match.group("fence"), match.group("info").split(), i + 1
            end = start
            while end < len(lines) and not lines[end].startswith(fence[:3]):
                end += 1
            if words and words[0] in LANGUAGES:
                yield f"{os.path.relpath(path, ROOT)}:{start}", words, "\n".join(lines[start:end]) + "\n"
            i = end + 1


def free_ports(count):
    """COUNT free loopback ports from the project's one finder (below the ephemeral range), each with the next one free
    too (opencode's mock LLM takes the port after opencode's)."""
    finder = os.path.join(ROOT, "scripts", "free-ports.py")
    return [int(p) for p in subprocess.check_output([sys.executable, finder, str(count), "--with-next"], text=True).split()]


def main():
    os.makedirs(RESULTS, exist_ok=True)
    os.makedirs(LOGS, exist_ok=True)
    free_gateway, free_oc = free_ports(2)
    gateway_port = int(os.environ.get("SNIPPETS_GATEWAY_PORT") or free_gateway)
    oc_port = int(os.environ.get("SNIPPETS_OC_PORT") or free_oc)
    mock_port = int(os.environ.get("SNIPPETS_MOCK_PORT") or oc_port + 1)
    timeout = int(os.environ.get("SNIPPETS_TIMEOUT", "120"))
    data_dir = os.path.join(ROOT, ".dev", "snippets-gateway-data")
    shutil.rmtree(data_dir, ignore_errors=True)
    env = dict(os.environ, GATEWAY_URL=f"http://127.0.0.1:{gateway_port}", OC_PORT=str(oc_port), MOCK_PORT=str(mock_port),
               OC_STATE_DIR=os.path.join(ROOT, ".dev", "snippets-opencode"), Gateway__Store__DataDirectory=data_dir)
    opencode_sh = os.path.join(ROOT, "deploy", "dev", "opencode.sh")
    subprocess.run([opencode_sh, "stop", "--clean"], env=env, capture_output=True)

    tests, log_path = [], os.path.join(LOGS, "run.log")
    log = open(log_path, "w")
    # ./run.sh in its own process group: a SIGTERM to the group stops the gateway, then run.sh's trap stops opencode.
    server = subprocess.Popen([os.path.join(ROOT, "run.sh")], cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        token = wait_ready(server, gateway_port, log_path)
        for name, words, code in snippets():
            if "no-run" in words[1:]:
                tests.append({"name": name, "status": "skipped", "ms": 0})
                print(f"- {name}: skipped (no-run)")
                continue
            tests.append(run_snippet(name, code, token, gateway_port, oc_port, timeout))
    except Exception as e:  # the stack did not come up: one failure that says why
        tests.append({"name": "start ./run.sh", "status": "failed", "ms": 0, "error": str(e)})
        print(f"FAILED to start ./run.sh: {e}")
    finally:
        stop(server)
        subprocess.run([opencode_sh, "stop"], env=env, capture_output=True)
        log.close()

    count = lambda status: sum(1 for t in tests if t["status"] == status)
    report = {"passed": count("passed"), "failed": count("failed"), "skipped": count("skipped"),
              "failures": [t["name"] for t in tests if t["status"] == "failed"], "tests": tests}
    with open(os.path.join(RESULTS, "snippets.steps.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(f"snippets: {report['passed']} passed, {report['failed']} failed, {report['skipped']} skipped")
    return 1 if report["failed"] else 0


def wait_ready(server, port, log_path, limit=300):
    """Waits for /readyz; returns the dev token ./run.sh printed."""
    deadline = time.time() + limit
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"./run.sh exited with {server.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                if response.status == 200:
                    match = re.search(r"dev token\s+(\S+)", open(log_path).read())
                    if not match:
                        raise RuntimeError(f"./run.sh printed no 'dev token'; see {log_path}")
                    return match.group(1)
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the gateway of ./run.sh was not ready within {limit} s; see {log_path}")


def run_snippet(name, code, token, gateway_port, oc_port, timeout):
    for documented in ("127.0.0.1:5000", "localhost:5000"):
        code = code.replace(documented, f"127.0.0.1:{gateway_port}")
    for documented in ("127.0.0.1:4096", "localhost:4096"):
        code = code.replace(documented, f"127.0.0.1:{oc_port}")
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as script:
        script.write(PREAMBLE + code)
    started = time.time()
    try:
        result = subprocess.run(["bash", script.name], cwd=ROOT, env=dict(os.environ, TOKEN=token),
                                capture_output=True, text=True, timeout=timeout)
        output, status = result.stdout + result.stderr, "passed" if result.returncode == 0 else "failed"
        error = None if result.returncode == 0 else f"exit {result.returncode}"
    except subprocess.TimeoutExpired as e:
        output, status, error = f"{e.stdout or ''}{e.stderr or ''}", "failed", f"no end within {timeout} s"
    finally:
        os.unlink(script.name)
    ms = int((time.time() - started) * 1000)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name)
    with open(os.path.join(LOGS, f"{slug}.log"), "w") as f:
        f.write(output if isinstance(output, str) else output.decode(errors="replace"))
    print(f"- {name}: {status}" + (f" ({error})" if error else "") + f" [{ms} ms]")
    if status == "failed":
        tail = (output if isinstance(output, str) else output.decode(errors="replace")).strip().split("\n")[-15:]
        print("    " + "\n    ".join(tail))
    test = {"name": name, "status": status, "ms": ms}
    if error:
        test["error"] = error
    return test


def stop(server):
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


if __name__ == "__main__":
    sys.exit(main())
