/** TypeScript rule support for the engine: compiles `.do.ts` files with esbuild, imports them, and makes zx shells. */

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Shell } from 'zx';
import type { RuleContext as EngineRuleContext, RuleFunction, TypeScriptRuleSupport } from '../engine/runner.js';
import { RedoError } from '../errors.js';
import { isBundle, libraryDir, libraryUrl } from './package-files.js';

/** The context a `.do.ts` rule's default export receives, with zx's `$` as the shell. */
export type RuleContext = EngineRuleContext<Shell>;

type Esbuild = typeof import('esbuild');


/** Where a rule is compiled to, and the folder its error messages are relative to. */
interface CompiledRulePlace {
  folder: string;
  projectDir: string;
  /** A rule outside the project (the installed package's): bare imports resolve from the rule's folder. */
  isOutside: boolean;
}

/**
 * Where the rule at `ruleFile` is compiled to, always inside the project `root` being
 * built, never beside a rule of the installed package (which may be read-only, or shared
 * by many projects). A project rule goes to `.redo/ts/` of the nearest ancestor holding
 * `.redo/` (the project root; the engine creates it before any rule runs), so its bare
 * imports (`zx`, ...) resolve as they would from the rule itself: the project's
 * package.json and node_modules. A rule outside the project goes to
 * `ROOT/.redo/ts/shared/`, its bare imports resolved from its own folder at compile time.
 */
function compiledRulePlace(ruleFile: string, root: string | undefined): CompiledRulePlace {
  if (root !== undefined && relative(root, ruleFile).startsWith('..')) {
    return { folder: join(root, '.redo', 'ts', 'shared'), projectDir: root, isOutside: true };
  }
  for (let dir = dirname(ruleFile); ; dir = dirname(dir)) {
    if (existsSync(join(dir, '.redo'))) return { folder: join(dir, '.redo', 'ts'), projectDir: dir, isOutside: false };
    if (dirname(dir) === dir) return { folder: join(dirname(ruleFile), '.redo', 'ts'), projectDir: dirname(ruleFile), isOutside: false };
  }
}

/**
 * What the last compilation of a rule read (`.redo/ts/NAME.<sha256 of its path>.inputs.json`):
 * every bundled file with the sha256 of its content, the library it was bound to, and the
 * module written. When none of them changed, the module is current and esbuild is not
 * started at all.
 */
interface CompiledRuleRecord {
  ruleFile: string;
  libraryUrl: string;
  compiled: string;
  inputs: Record<string, string>;
}

function compiledRecordPath(ruleFile: string, root: string | undefined): string {
  return join(compiledRulePlace(ruleFile, root).folder, `${basename(ruleFile)}.${createHash('sha256').update(ruleFile).digest('hex').slice(0, 16)}.inputs.json`);
}

function sha256OfFile(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The compiled module of `ruleFile` when its record says it is current; undefined otherwise. */
function currentCompiledRule(ruleFile: string, root: string | undefined): string | undefined {
  try {
    const record = JSON.parse(readFileSync(compiledRecordPath(ruleFile, root), 'utf8')) as CompiledRuleRecord;
    if (record.ruleFile !== ruleFile || record.libraryUrl !== libraryUrl) return undefined;
    // The module's name promises its content (NAME.<sha256 of code>.mjs): one cut short or
    // damaged is compiled again.
    const promised = /\.([0-9a-f]{16})\.mjs$/.exec(record.compiled)?.[1];
    if (promised === undefined || sha256OfFile(record.compiled).slice(0, 16) !== promised) return undefined;
    for (const [input, sha256Hex] of Object.entries(record.inputs)) if (sha256OfFile(input) !== sha256Hex) return undefined;
    return record.compiled;
  } catch {
    return undefined;
  }
}

/**
 * Compiles the rule at `ruleFile` into one ES module: the rule and the project files it
 * imports by relative path are bundled; packages stay imports, and `redo-ts` becomes
 * the running library itself. The module is
 * written as `.redo/ts/NAME.<sha256 of code>.mjs` (older compilations of the same rule
 * are removed) with an inline source map, so stack traces name the `.ts` lines.
 */
async function compileRule(esbuild: Esbuild, ruleFile: string, root: string | undefined): Promise<string> {
  const { folder, projectDir, isOutside } = compiledRulePlace(ruleFile, root);
  const name = basename(ruleFile);
  let code: string;
  let inputs: string[];
  try {
    const result = await esbuild.build({
      entryPoints: [ruleFile],
      bundle: true,
      packages: 'external',
      format: 'esm',
      platform: 'node',
      target: 'node20',
      write: false,
      // Error locations name files relative to the project root, not the caller's cwd.
      absWorkingDir: projectDir,
      sourcemap: 'inline',
      sourcesContent: false,
      // Source map paths are relative to this file's folder, where the module is written.
      outfile: join(folder, `${name}.mjs`),
      logLevel: 'silent',
      metafile: true,
      define: { 'import.meta.url': JSON.stringify(pathToFileURL(ruleFile).href) },
      // `import ... from 'redo-ts'` is the library of the redo-ts that runs the rule, so
      // a project needs no node_modules of its own to use it, and rule and engine share
      // one RedoError class.
      plugins: [
        {
          name: 'redo-ts-library',
          setup(build) {
            build.onResolve({ filter: /^redo-ts$/ }, () => ({ path: libraryUrl, external: true }));
            // Compiled away from its folder, a package rule's bare imports would resolve
            // from the project's node_modules: pin them to what the rule's folder sees.
            if (isOutside) {
              build.onResolve({ filter: /^[^./]/ }, (args) => {
                if (isBuiltin(args.path)) return undefined;
                try {
                  return { path: pathToFileURL(createRequire(ruleFile).resolve(args.path)).href, external: true };
                } catch {
                  return undefined;
                }
              });
            }
          },
        },
      ],
    });
    code = result.outputFiles[0]!.text;
    inputs = Object.keys(result.metafile.inputs).map((input) => resolve(projectDir, input));
  } catch (error) {
    const messages = (error as { errors?: Array<{ text: string; location?: { file: string; line: number; column: number } | null }> }).errors ?? [];
    const shown = relative(projectDir, ruleFile);
    throw new RedoError('ERR_RULE_FAILED', `redo: "${shown}": TypeScript rule does not compile`, {
      details: messages.slice(0, 5).map((m) => (m.location ? `${m.location.file}:${m.location.line}:${m.location.column}: ${m.text}` : m.text)),
      cause: error,
    });
  }
  mkdirSync(folder, { recursive: true });
  const compiled = join(folder, `${name}.${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`);
  // A compiled file that is not exactly this code (cut short by a kill, damaged by hand)
  // is written again: its name promises its content.
  if (!existsSync(compiled) || readFileSync(compiled, 'utf8') !== code) {
    // Written beside and renamed, so a concurrent build never imports half a file.
    const temporary = `${compiled}.${process.pid}.tmp`;
    try {
      writeFileSync(temporary, code);
      renameSync(temporary, compiled);
    } catch (error) {
      rmSync(temporary, { force: true });
      throw error;
    }
    for (const old of readdirSync(folder)) {
      if (old !== basename(compiled) && old.startsWith(`${name}.`) && old.endsWith('.mjs')) rmSync(join(folder, old), { force: true });
    }
  }
  const record: CompiledRuleRecord = { ruleFile, libraryUrl, compiled, inputs: Object.fromEntries(inputs.map((input) => [input, sha256OfFile(input)])) };
  const recordPath = compiledRecordPath(ruleFile, root);
  const temporary = `${recordPath}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(record));
  renameSync(temporary, recordPath);
  return compiled;
}

/** dist/bundle/rules/inputs.json: the shared rules the package shipped compiled, and the sha256 of every file of rules/ they were made from. */
interface ShippedRules {
  rules: string[];
  inputs: Record<string, string>;
}
let shippedRules: ShippedRules | null | undefined;

/**
 * The module of the package's shared rule named like `ruleFile`, compiled when the package
 * was built (scripts/bundle.mjs: dist/bundle/rules/NAME.js, an entry of the bundle, so it
 * loads only the library chunks it uses), when every file of `ruleFile`'s folder that
 * module was made from has the same bytes: the package's own rules/, or a project's
 * unedited copy of them (redo-ts's own repository). Undefined otherwise (tsc's dist/lib/
 * runs, another rule, a rule edited), and the engine compiles it as any other.
 */
function shippedCompiledRule(ruleFile: string): string | undefined {
  if (!isBundle) return undefined;
  if (shippedRules === undefined) {
    try {
      shippedRules = JSON.parse(readFileSync(join(libraryDir, 'rules', 'inputs.json'), 'utf8')) as ShippedRules;
    } catch {
      shippedRules = null;
    }
  }
  if (shippedRules === null || !shippedRules.rules.includes(basename(ruleFile))) return undefined;
  try {
    for (const [input, sha256Hex] of Object.entries(shippedRules.inputs)) if (sha256OfFile(join(dirname(ruleFile), input)) !== sha256Hex) return undefined;
  } catch {
    return undefined;
  }
  return join(libraryDir, 'rules', `${basename(ruleFile)}.js`);
}

/**
 * A zx `$` for `cwd` and `env` that loads zx only when a rule first uses it: most rules
 * never do, and zx costs more to load than the rest of a small build.
 */
function lazyShell(cwd: string, env: NodeJS.ProcessEnv): Shell {
  let shell: Shell | undefined;
  const real = (): Shell => {
    // zx ships a CommonJS build, so it can be loaded at the moment of the first call.
    if (shell === undefined) shell = (createRequire(import.meta.url)('zx') as typeof import('zx')).$({ cwd, env, quiet: true }) as Shell;
    return shell;
  };
  return new Proxy((() => undefined) as unknown as Shell, {
    apply: (_target, _this, args: unknown[]) => Reflect.apply(real() as unknown as (...a: unknown[]) => unknown, undefined, args),
    get: (_target, property) => Reflect.get(real(), property),
  });
}

/**
 * Loader and shell factory handed to the engine, for the project at `root` (compiled
 * rules are written under its `.redo/ts/`, see compiledRulePlace). esbuild is imported on the first
 * TypeScript rule, so builds without one never pay for it; each rule file version is
 * compiled and imported once per process, whatever number of targets it serves.
 * `loadRule` throws ERR_RULE_FAILED when the rule does not compile or has no
 * default-exported function.
 */
export function createTypeScriptRuleSupport(root?: string): TypeScriptRuleSupport {
  let esbuild: Promise<Esbuild> | undefined;
  const loaded = new Map<string, Promise<RuleFunction>>();
  const load = async (absolutePath: string): Promise<RuleFunction> => {
    // A shared rule as the package shipped it, or a rule whose bundled files are all
    // unchanged as compiled last time: either way esbuild is not started.
    const shipped = shippedCompiledRule(absolutePath);
    let compiled = shipped ?? currentCompiledRule(absolutePath, root);
    if (compiled === undefined) {
      esbuild ??= import('esbuild');
      compiled = await compileRule(await esbuild, absolutePath, root);
    }
    // A shipped rule loads just the library chunks it uses, maps unread. Any other rule
    // gets the whole library (it may use any of it), loaded first with maps off so the
    // library's maps are never read; then the rule's own inline map is read as it loads,
    // so a stack it throws names its .ts lines.
    if (shipped === undefined) {
      await import(libraryUrl);
      process.setSourceMapsEnabled(true);
    }
    const module = (await import(pathToFileURL(compiled).href)) as { default?: unknown };
    if (typeof module.default !== 'function') {
      const shown = relative(compiledRulePlace(absolutePath, root).projectDir, absolutePath);
      throw new RedoError('ERR_RULE_FAILED', `redo: "${shown}": TypeScript rule has no default-exported function`, {
        hint: 'write `export default async function (ctx: RuleContext) { ... }`',
      });
    }
    return module.default as RuleFunction;
  };
  return {
    loadRule(absolutePath: string): Promise<RuleFunction> {
      const stats = statSync(absolutePath);
      const key = `${absolutePath}\0${stats.mtimeMs}\0${stats.size}\0${stats.ino}`;
      let rule = loaded.get(key);
      if (rule === undefined) {
        rule = load(absolutePath);
        loaded.set(key, rule);
      }
      return rule;
    },
    makeShell(cwd: string, env: NodeJS.ProcessEnv): unknown {
      return lazyShell(cwd, env);
    },
  };
}
