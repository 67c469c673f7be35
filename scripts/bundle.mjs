// Bundles the CLI and the library into dist/bundle/ (run by `npm run build`, `prepare` and the test set-up).
//
// dist/bundle/
//   main.cjs       what bin/redo-ts.js requires (lib/cli/start.ts, one CommonJS file, no
//                  chunks): answers a repeated no-op build from its memo, else imports
//                  cli.js. CommonJS because Node's ES module loader costs about 10 ms of
//                  start-up (wall; 4 ms of CPU) that a no-op need not pay
//   cli.js         the command line (lib/cli/main.ts): engine, build session, report
//   index.js       the library, which rules get for `import ... from 'redo-ts'`
//   chunk-*.js     code shared by the two, and each subcommand and rarely used part
//                  (push, SBOM, signing, Debian lock, key generation...), loaded by
//                  dynamic import() only when used
//   *.js.map       source maps, never read at start: Node reads them only when asked
//                  (NODE_OPTIONS=--enable-source-maps)
//   rules/NAME.js  the shared rules (rules/*.do.ts), entries of the same build: each
//                  loads only the chunks it uses; rules/inputs.json names them and the
//                  sha256 of every file of rules/ they were made from
//
// yaml, tar-stream and ssri are bundled; esbuild, zx and cacache stay imports. tsc still type-checks
// and writes dist/lib/ (declarations, and the modules some unit tests import).

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Packages left as imports: loaded on demand (esbuild, zx, cacache) or read as data (spdx-license-ids). */
const externalPackages = ['esbuild', 'zx', 'cacache', 'spdx-license-ids'];
const outdir = join(root, 'dist', 'bundle');

/** sha256 of everything the bundle is made from: lib/, rules/, this script, package.json and its lock. */
function sourceSha256() {
  const hash = createHash('sha256');
  const visit = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const file = join(dir, entry.name);
      if (entry.isDirectory()) visit(file);
      else if (entry.isFile()) hash.update(`${relative(root, file)}\0`).update(readFileSync(file)).update('\0');
    }
  };
  visit(join(root, 'lib'));
  visit(join(root, 'rules'));
  for (const file of ['scripts/bundle.mjs', 'package.json', 'package-lock.json']) {
    if (existsSync(join(root, file))) hash.update(`${file}\0`).update(readFileSync(join(root, file))).update('\0');
  }
  return hash.digest('hex');
}

/**
 * Builds dist/bundle/ from lib/ and rules/ unless it was built from the same sources
 * (dist/bundle/source.sha256); returns the number of files written (0 when current).
 * Built beside and swapped in by renames, so a CLI started meanwhile (another test run)
 * finds the old bundle or the new one.
 */
export async function bundle() {
  const sha256Hex = sourceSha256();
  try {
    if (readFileSync(join(outdir, 'source.sha256'), 'utf8') === sha256Hex) return 0;
  } catch {
    // Not built yet.
  }
  const building = `${outdir}.${process.pid}.tmp`;
  rmSync(building, { recursive: true, force: true });
  const count = await build(building);
  writeFileSync(join(building, 'source.sha256'), sha256Hex);
  const old = `${outdir}.${process.pid}.old`;
  if (existsSync(outdir)) renameSync(outdir, old);
  renameSync(building, outdir);
  rmSync(old, { recursive: true, force: true });
  return count;
}

/** Writes the bundle into `outdir`; returns the number of files written. */
async function build(outdir) {
  const rulesDir = join(root, 'rules');
  // The engine makes a rule's import.meta.url its own URL, a path known only where the
  // package is installed: such a rule is left to the engine to compile.
  const rules = readdirSync(rulesDir)
    .filter((name) => name.endsWith('.do.ts') && !readFileSync(join(rulesDir, name), 'utf8').includes('import.meta'))
    .sort();
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: {
      cli: 'lib/cli/main.ts',
      index: 'lib/index.ts',
      ...Object.fromEntries(rules.map((name) => [`rules/${name}`, `rules/${name}`])),
    },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // The small packages every build loads (yaml, tar-stream and its streams, ssri) are
    // bundled: one file each run reads instead of about ninety. Those loaded on demand
    // (esbuild, zx, cacache) or read as data (spdx-license-ids) stay imports.
    external: externalPackages,
    // Bundled CommonJS packages call require() for Node's modules.
    banner: { js: "import { createRequire as __redoTsCreateRequire } from 'node:module'; const require = __redoTsCreateRequire(import.meta.url);" },
    sourcemap: 'linked',
    sourcesContent: false,
    // lib/cli/package-files.ts: where the package's files are, seen from dist/bundle/.
    define: { REDO_TS_IS_BUNDLE: 'true' },
    chunkNames: 'chunk-[hash]',
    logLevel: 'warning',
    metafile: true,
    plugins: [
      {
        // A shared rule's `redo-ts` is the library of this bundle: its chunks, the very
        // modules cli.js and index.js run, so one RedoError class, one store.
        name: 'redo-ts-library',
        setup(build) {
          build.onResolve({ filter: /^redo-ts$/ }, () => ({ path: join(root, 'lib', 'index.ts') }));
        },
      },
    ],
  });
  // bin/redo-ts.js requires main.cjs: the no-op fast path (lib/cli/start.ts) as one
  // CommonJS file without chunks, so a repeated no-op loads one module and never starts
  // Node's ES module loader; cli.js (the whole CLI, lib/cli/main.ts) is imported from
  // there, by a real import(), only when the memo does not answer. import.meta.url is
  // the file's own URL, as in the ES modules beside it (the same folder).
  const start = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { main: 'lib/cli/start.ts' },
    outdir,
    outExtension: { '.js': '.cjs' },
    bundle: true,
    splitting: false,
    format: 'cjs',
    external: externalPackages,
    platform: 'node',
    target: 'node20',
    sourcemap: 'linked',
    sourcesContent: false,
    define: { REDO_TS_IS_BUNDLE: 'true', 'import.meta.url': '__redo_ts_module_url' },
    banner: { js: 'const __redo_ts_module_url = require("node:url").pathToFileURL(__filename).href;' },
    logLevel: 'warning',
    metafile: true,
    plugins: [
      {
        name: 'redo-ts-main-outside',
        setup(build) {
          build.onResolve({ filter: /^\.\/main\.js$/ }, () => ({ path: './cli.js', external: true }));
        },
      },
    ],
  });
  // Every file of rules/ any shared rule was made from, with its sha256: a rule is used as
  // shipped only while all of them are unchanged (lib/cli/ts-rules.ts).
  const inputs = {};
  for (const input of Object.keys(result.metafile.inputs).sort()) {
    const file = resolve(root, input);
    if (!file.startsWith(`${rulesDir}/`)) continue;
    inputs[relative(rulesDir, file)] = createHash('sha256').update(readFileSync(file)).digest('hex');
  }
  writeFileSync(join(outdir, 'rules', 'inputs.json'), `${JSON.stringify({ rules, inputs }, null, 2)}\n`);
  return Object.keys(result.metafile.outputs).length + Object.keys(start.metafile.outputs).length + 1;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = performance.now();
  const count = await bundle();
  const what = count === 0 ? 'current' : `${count} files written`;
  process.stdout.write(`bundle: ${relative(process.cwd(), outdir) || '.'} ${what} (${Math.round(performance.now() - started)} ms)\n`);
}
