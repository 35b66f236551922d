/**
 * The package as an app gets it: both module systems through the `exports` map, each with its own types. Runs Node
 * and tsc in child processes from this folder (the package resolves its own name), on the dist/ that `npm test`
 * builds first.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const entries = ['@opencode-gateway/client', '@opencode-gateway/client/react', '@opencode-gateway/client/session-state'];

function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
}

describe('package exports', () => {
  it('require() gets the CommonJS build and import the ES module build, with the same exports', () => {
    const script = (load: string) => `
      const out = {};
      for (const name of ${JSON.stringify(entries)}) {
        const m = ${load};
        out[name] = { keys: Object.keys(m).filter((k) => k !== 'default' && k !== '__esModule').sort(), file: RESOLVE(name) };
      }
      console.log(JSON.stringify(out));`;
    const cjs = JSON.parse(node(['-e', script('require(name)').replace('RESOLVE(name)', 'require.resolve(name)')]));
    const esm = JSON.parse(node(['--input-type=module', '-e',
      script('await import(name)').replace('RESOLVE(name)', 'import.meta.resolve(name)')]));
    for (const name of entries) {
      expect(cjs[name].file).toMatch(/\/dist\/cjs\/.*\.js$/);
      expect(esm[name].file).toMatch(/\/dist\/esm\/.*\.js$/);
      expect(cjs[name].keys).toEqual(esm[name].keys);
    }

    expect(cjs['@opencode-gateway/client/react'].keys).toEqual(
      expect.arrayContaining(['GatewayProvider', 'useGatewayClient', 'useSession', 'useSessions']));
    expect(cjs['@opencode-gateway/client'].keys).toEqual(
      expect.arrayContaining(['createGatewayClient', 'SessionState', 'SessionChatStore', 'toSessionEvent']));
  });

  it('the CommonJS build is read as CommonJS although the package is "type": "module"', () => {
    const require = createRequire(import.meta.url);
    expect(JSON.parse(readFileSync(require.resolve('@opencode-gateway/client/package.json'), 'utf8')).type).toBe('module');
    expect(JSON.parse(readFileSync(`${root}dist/cjs/package.json`, 'utf8'))).toEqual({ type: 'commonjs' });
  });

  it('keeps the React entry a client module for React Server Components bundlers', () => {
    for (const build of ['esm', 'cjs']) {
      const code = readFileSync(`${root}dist/${build}/react/index.js`, 'utf8');
      expect(code.split('\n').slice(0, 2)).toContain("'use client';");
    }
  });

  it('types resolve per module system: an ESM and a CommonJS consumer type-check against their own .d.ts', () => {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const explained = node([tsc, '-p', 'test/consumer', '--explainFiles']);
    const resolved = (from: string) =>
      [...explained.matchAll(new RegExp(`Imported via '(@opencode-gateway/client[^']*)' from file 'test/consumer/${from}' with packageId '@opencode-gateway/client/([^@']+)@`, 'g'))]
        .map((m) => [m[1], m[2]]).sort();
    expect(resolved('esm.mts')).toEqual([
      ['@opencode-gateway/client', 'dist/esm/index.d.ts'],
      ['@opencode-gateway/client/react', 'dist/esm/react/index.d.ts'],
      ['@opencode-gateway/client/session-state', 'dist/esm/session-state.d.ts'],
    ]);
    expect(resolved('cjs.cts')).toEqual([
      ['@opencode-gateway/client', 'dist/cjs/index.d.ts'],
      ['@opencode-gateway/client/react', 'dist/cjs/react/index.d.ts'],
      ['@opencode-gateway/client/session-state', 'dist/cjs/session-state.d.ts'],
    ]);
  }, 30_000);

  it("packs what the exports map names, the README and the repository's LICENSE, and no tests", () => {
    const [pack] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' }));
    const files: string[] = pack.files.map((f: { path: string }) => f.path);
    const manifest = JSON.parse(readFileSync(`${root}package.json`, 'utf8'));
    const exported = JSON.stringify(manifest.exports).match(/\.\/dist\/[^"]+/g)!.map((path) => path.slice(2));
    expect(exported.length).toBeGreaterThan(10);
    expect(files).toEqual(expect.arrayContaining([...exported, 'dist/cjs/package.json']));
    expect(files.filter((path) => !/^(dist|src)\//.test(path)).sort()).toEqual(['LICENSE', 'README.md', 'package.json']);
    expect(readFileSync(`${root}LICENSE`, 'utf8')).toBe(readFileSync(`${root}../../LICENSE`, 'utf8'));
  }, 30_000);

  it("the React entry type-checks in a JSX app against React 19's types and React 18's (test/react18)", () => {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const react19 = `${root}node_modules/@types/react/index.d.ts`;
    const react18 = `${root}test/react18/node_modules/@types/react/index.d.ts`;
    for (const [project, used, unused] of [['tsconfig.react.json', react19, react18], ['tsconfig.react18.json', react18, react19]]) {
      const files = node([tsc, '-p', `test/consumer/${project}`, '--listFiles']).split('\n');
      expect(files).toContain(used);
      expect(files).not.toContain(unused);
      expect(files).toContain(`${root}dist/esm/react/index.d.ts`);
    }
  }, 30_000);
});
