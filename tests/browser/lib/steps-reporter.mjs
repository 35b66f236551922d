// node:test reporter writing the suite's result in the shape scripts/summarize-results.py counts:
// {"passed": N, "failed": M, "skipped": K, "failures": [names], "tests": [{name, status, ms, error?}]}.
// Leaf tests only (suites are not counted); a file that fails outside any test counts as one failure.
export default async function* stepsReporter(source) {
  const tests = [];
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { name, details, skip, todo } = event.data;
    const isSuite = details?.type === 'suite';
    if (isSuite && event.type === 'test:pass') continue;
    // A failed suite is already counted through its tests, unless it failed by itself (a hook, or no tests ran).
    if (isSuite && details?.error?.failureType === 'subtestsFailed') continue;
    const status = skip || todo ? 'skipped' : event.type === 'test:pass' ? 'passed' : 'failed';
    const test = { name, status, ms: Math.round(details?.duration_ms ?? 0) };
    // The assertion's own message (node:test wraps it in a test-failure error whose cause is the thrown one).
    if (status === 'failed') test.error = String(details?.error?.cause?.message ?? details?.error?.message ?? details?.error ?? '');
    tests.push(test);
  }

  const count = (status) => tests.filter((t) => t.status === status).length;
  const report = {
    passed: count('passed'),
    failed: count('failed'),
    skipped: count('skipped'),
    failures: tests.filter((t) => t.status === 'failed').map((t) => t.name),
    tests,
  };
  yield `${JSON.stringify(report, null, 2)}\n`;
}
