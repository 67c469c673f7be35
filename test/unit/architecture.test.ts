// The layout rules of lib/: which folder may import which, one importer per third-party
// package, no import cycles, a one-line bin, and the public API listed so changes to it
// are deliberate.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const libRoot = join(repoRoot, 'lib');

function listTs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return listTs(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Every module of lib/ (relative, e.g. "image/tar.ts") with the specifiers it imports, type-only ones included. */
const modules = new Map<string, string[]>(
  listTs(libRoot).map((file) => {
    const text = readFileSync(file, 'utf8');
    const specifiers = [
      ...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'/gms),
      ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
      ...text.matchAll(/typeof import\('([^']+)'\)/g),
      ...text.matchAll(/(?:\brequire|createRequire\([^)]*\))\(\s*'([^']+)'\s*\)/g),
    ].map((m) => m[1]!);
    return [relative(libRoot, file), [...new Set(specifiers)]];
  }),
);

/** The lib-relative module a relative specifier of `from` names, e.g. "../errors.js" → "errors.ts". */
function target(from: string, specifier: string): string {
  return relative(libRoot, resolve(libRoot, dirname(from), specifier)).replace(/\.js$/, '.ts');
}

const areaOf = (module: string): string => (module.includes('/') ? module.split('/')[0]! : module);

describe('lib/ layout', () => {
  it('engine imports only node: builtins, errors.ts, env.ts and engine modules', () => {
    const offending: string[] = [];
    for (const [module, specifiers] of modules) {
      if (areaOf(module) !== 'engine') continue;
      for (const specifier of specifiers) {
        if (specifier.startsWith('node:')) continue;
        const isAllowed = specifier.startsWith('.') && ['engine', 'errors.ts', 'env.ts'].includes(areaOf(target(module, specifier)));
        if (!isAllowed) offending.push(`${module} → ${specifier}`);
      }
    }
    expect(offending).toEqual([]);
  });

  it('image, sources, sandbox, inventory and registry never import the engine or the CLI', () => {
    const offending: string[] = [];
    for (const [module, specifiers] of modules) {
      if (!['image', 'sources', 'sandbox', 'inventory', 'registry'].includes(areaOf(module))) continue;
      for (const specifier of specifiers.filter((s) => s.startsWith('.'))) {
        if (['engine', 'cli'].includes(areaOf(target(module, specifier)))) offending.push(`${module} → ${specifier}`);
      }
    }
    expect(offending).toEqual([]);
  });

  it('each third-party package is imported by exactly one module', () => {
    const importers = new Map<string, string[]>();
    for (const [module, specifiers] of modules) {
      for (const specifier of specifiers) {
        if (specifier.startsWith('.') || specifier.startsWith('node:')) continue;
        const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;
        importers.set(name, [...(importers.get(name) ?? []), module]);
      }
    }
    const shared = [...importers].filter(([, users]) => new Set(users).size > 1).map(([name, users]) => `${name}: ${users.join(', ')}`);
    expect(shared).toEqual([]);
  });

  it('has no import cycles between modules', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (module: string, trail: string[]): void => {
      if (state.get(module) === 'done') return;
      if (state.get(module) === 'visiting') {
        cycles.push([...trail.slice(trail.indexOf(module)), module].join(' → '));
        return;
      }
      state.set(module, 'visiting');
      for (const specifier of modules.get(module) ?? []) {
        if (!specifier.startsWith('.')) continue;
        const next = target(module, specifier);
        if (modules.has(next)) visit(next, [...trail, module]);
      }
      state.set(module, 'done');
    };
    for (const module of [...modules.keys()].sort()) visit(module, []);
    expect(cycles).toEqual([]);
  });

  it('the bin entry is a one-line require of the bundled start (CommonJS: bin/package.json says so)', () => {
    const lines = readFileSync(join(repoRoot, 'bin', 'redo-ts.js'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#!'));
    expect(lines).toEqual(["require('../dist/bundle/main.cjs');"]);
    expect(JSON.parse(readFileSync(join(repoRoot, 'bin', 'package.json'), 'utf8'))).toEqual({ type: 'commonjs' });
  });
});

describe('public API', () => {
  it('lib/index.ts exports exactly these names (change this list when the API changes)', async () => {
    const api = (await import('../../dist/lib/index.js')) as Record<string, unknown>;
    expect(Object.keys(api).sort()).toMatchSnapshot();
  });
});
