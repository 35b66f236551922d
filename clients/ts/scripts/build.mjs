// Builds dist/esm (ES modules) and dist/cjs (CommonJS), each with its .d.ts files, from src/ with tsc. dist/cjs gets a
// package.json saying "type": "commonjs", so Node and TypeScript read its .js and .d.ts files as CommonJS although
// this package is "type": "module". Copies the repository's LICENSE here too: npm packs only this folder's files.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

rmSync(join(root, 'dist'), { recursive: true, force: true });
for (const project of ['tsconfig.build.json', 'tsconfig.cjs.json']) {
  const result = spawnSync(process.execPath, [tsc, '-p', join(root, project)], { stdio: 'inherit', cwd: root });
  if (result.status !== 0) {
    console.error(`tsc -p ${project} failed`);
    process.exit(result.status ?? 1);
  }
}

mkdirSync(join(root, 'dist', 'cjs'), { recursive: true });
writeFileSync(join(root, 'dist', 'cjs', 'package.json'), '{ "type": "commonjs" }\n');
copyFileSync(join(root, '..', '..', 'LICENSE'), join(root, 'LICENSE'));
