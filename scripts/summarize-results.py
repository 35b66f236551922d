#!/usr/bin/env python3
"""Adds up test results (.NET TRX files, vitest JSON reports, *.steps.json) into one 'N passed, M failed' line.

Usage: summarize-results.py RESULTS_DIR   (exit 1 when anything failed or no test ran)
"""
import glob
import json
import os
import sys
import xml.etree.ElementTree as ET


def reason(text):
    """The first lines of a failure's message, indented under its name: CI keeps only the printed output."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()][:6]
    return "".join(f"      {line[:300]}\n" for line in lines)


results = sys.argv[1]
passed = failed = skipped = 0
for path in sorted(glob.glob(os.path.join(results, "**", "*.trx"), recursive=True)):
    root = ET.parse(path).getroot()
    counters = root.find(".//{*}ResultSummary/{*}Counters")
    p, f = int(counters.get("passed", 0)), int(counters.get("failed", 0)) + int(counters.get("error", 0)) + int(counters.get("timeout", 0)) + int(counters.get("aborted", 0))
    s = int(counters.get("notExecuted", 0))
    print(f"  {os.path.relpath(path, results)}: {p} passed, {f} failed, {s} skipped")
    passed, failed, skipped = passed + p, failed + f, skipped + s
    for result in root.iter("{http://microsoft.com/schemas/VisualStudio/TeamTest/2010}UnitTestResult"):
        if result.get("outcome") == "Failed":
            print(f"    FAILED {result.get('testName')}")
            message = result.find(".//{*}ErrorInfo/{*}Message")
            print(reason(message.text if message is not None else ""), end="")
for path in sorted(glob.glob(os.path.join(results, "**", "*.vitest.json"), recursive=True)):
    report = json.load(open(path))
    p, f, s = report["numPassedTests"], report["numFailedTests"], report.get("numPendingTests", 0) + report.get("numTodoTests", 0)
    print(f"  {os.path.relpath(path, results)}: {p} passed, {f} failed, {s} skipped")
    passed, failed, skipped = passed + p, failed + f, skipped + s
    for suite in report.get("testResults", []):
        for test in suite.get("assertionResults", []):
            if test.get("status") == "failed":
                print(f"    FAILED {test.get('fullName')}")
                print(reason("\n".join(test.get("failureMessages", []))), end="")
for path in sorted(glob.glob(os.path.join(results, "**", "*.steps.json"), recursive=True)):
    report = json.load(open(path))
    p, f, s = report["passed"], report["failed"], report.get("skipped", 0)
    print(f"  {os.path.relpath(path, results)}: {p} passed, {f} failed, {s} skipped")
    passed, failed, skipped = passed + p, failed + f, skipped + s
    errors = {t["name"]: t.get("error", "") for t in report.get("tests", []) if t.get("status") == "failed"}
    for name in report.get("failures", []):
        print(f"    FAILED {name}")
        print(reason(errors.get(name, "")), end="")

print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or passed == 0 else 0)
