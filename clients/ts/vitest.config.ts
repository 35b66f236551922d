import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// React 18 has its own install (test/react18): react-dom and Testing Library resolve `react` from their own folder, so
// one node_modules with both Reacts would load React 19 under react-dom 18.
const react18 = fileURLToPath(new URL('./test/react18/node_modules/', import.meta.url));
if (!existsSync(`${react18}react/package.json`)) {
  throw new Error('React 18 for the react18 tests is not installed: npm --prefix test/react18 install');
}

const fromReact18 = (name: string) => ({ find: new RegExp(`^${name}(/.*)?$`), replacement: `${react18}${name}$1` });

export default defineConfig({
  test: {
    projects: [
      {
        test: { name: 'react19', include: ['test/**/*.test.ts'], environment: 'node', env: { EXPECTED_REACT_MAJOR: '19' } },
      },
      {
        resolve: { alias: ['react', 'react-dom', '@testing-library/react'].map(fromReact18) },
        test: { name: 'react18', include: ['test/react.test.ts'], environment: 'node', env: { EXPECTED_REACT_MAJOR: '18' } },
      },
    ],
  },
});
