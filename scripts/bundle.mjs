// Bundles the CLI and the library into dist/bundle/ (run by `npm run build`, `prepare` and the test set-up).
//
// dist/bundle/
//   main.js        the command line (bin/redo-ts.js imports it): engine, build session, report
//   index.js       the library, which rules get for `import ... from 'redo-ts'`
//   chunk-*.js     code shared by the two, and each subcommand and rarely used part
//                  (push, SBOM, signing, Debian lock, key generation...), loaded by
//                  dynamic import() only when used
//   *.js.map       source maps, never read at start: Node reads them only when asked
//                  (NODE_OPTIONS=--enable-source-maps)
//   rules/NAME.mjs the shared rules (rules/*.do.ts) compiled, with inputs.json naming
//                  the sha256 of each file each was made from
//
// npm packages stay imports (resolved from node_modules as before). tsc still type-checks
// and writes dist/lib/ (declarations, and the modules some unit tests import).

import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'bundle');

/** Builds dist/bundle/ from lib/ and rules/; returns the number of files written. */
export async function bundle() {
  rmSync(outdir, { recursive: true, force: true });
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { main: 'lib/cli/main.ts', index: 'lib/index.ts' },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    sourcemap: 'linked',
    sourcesContent: false,
    // lib/cli/package-files.ts: where the package's files are, seen from dist/bundle/.
    define: { REDO_TS_IS_BUNDLE: 'true' },
    chunkNames: 'chunk-[hash]',
    logLevel: 'warning',
    metafile: true,
  });
  const written = Object.keys(result.metafile.outputs).length;
  return written + (await compileSharedRules());
}

/**
 * Compiles each rules/*.do.ts as the engine would (lib/cli/ts-rules.ts), with
 * `redo-ts` bound to ../index.js of this bundle, into dist/bundle/rules/NAME.mjs, and
 * records the sha256 of every file it read in dist/bundle/rules/inputs.json, so a
 * project's first build imports them without starting esbuild.
 */
async function compileSharedRules() {
  const rulesDir = join(root, 'rules');
  const out = join(outdir, 'rules');
  mkdirSync(out, { recursive: true });
  const record = {};
  for (const name of readdirSync(rulesDir).filter((n) => n.endsWith('.do.ts')).sort()) {
    const ruleFile = join(rulesDir, name);
    const result = await esbuild.build({
      entryPoints: [ruleFile],
      absWorkingDir: root,
      bundle: true,
      packages: 'external',
      format: 'esm',
      platform: 'node',
      target: 'node20',
      write: false,
      sourcemap: 'inline',
      sourcesContent: false,
      outfile: join(out, `${name}.mjs`),
      logLevel: 'silent',
      metafile: true,
      plugins: [
        {
          name: 'redo-ts-library',
          setup(build) {
            build.onResolve({ filter: /^redo-ts$/ }, () => ({ path: '../index.js', external: true }));
          },
        },
      ],
    });
    const code = result.outputFiles[0].text;
    // The engine makes import.meta.url the rule's own URL, a path known only where the
    // package is installed: such a rule is left to the engine to compile.
    if (code.includes('import.meta')) continue;
    writeFileSync(join(out, `${name}.mjs`), code);
    const inputs = {};
    for (const input of Object.keys(result.metafile.inputs).sort()) {
      inputs[relative(rulesDir, resolve(root, input))] = createHash('sha256').update(readFileSync(resolve(root, input))).digest('hex');
    }
    record[name] = inputs;
  }
  writeFileSync(join(out, 'inputs.json'), `${JSON.stringify(record, null, 2)}\n`);
  return Object.keys(record).length + 1;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = performance.now();
  const count = await bundle();
  process.stdout.write(`bundle: ${count} files in ${relative(process.cwd(), outdir) || '.'} (${Math.round(performance.now() - started)} ms)\n`);
}
