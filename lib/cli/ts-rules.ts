/** TypeScript rule support for the engine: loads `.do.ts` files with tsx and makes zx shells. */

import { statSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { Shell } from 'zx';
import type { RuleContext as EngineRuleContext, RuleFunction, TypeScriptRuleSupport } from '../engine/runner.js';
import { RedoError } from '../errors.js';

/** The context a `.do.ts` rule's default export receives, with zx's `$` as the shell. */
export type RuleContext = EngineRuleContext<Shell>;

/**
 * Loader and shell factory handed to the engine. tsx and zx are imported lazily on the
 * first TypeScript rule, so builds without one never pay for loading them.
 */
export function createTypeScriptRuleSupport(): TypeScriptRuleSupport {
  let tsxApi: Promise<typeof import('tsx/esm/api')> | undefined;
  let zx: Promise<typeof import('zx')> | undefined;
  let zxModule: typeof import('zx') | undefined;
  // One import per rule file version: a default.*.do.ts serving many targets loads once.
  const loaded = new Map<string, Promise<RuleFunction>>();
  const load = async (absolutePath: string): Promise<RuleFunction> => {
    tsxApi ??= import('tsx/esm/api');
    zx ??= import('zx');
    zxModule = await zx;
    const { tsImport } = await tsxApi;
    const module = (await tsImport(pathToFileURL(absolutePath).href, import.meta.url)) as { default?: unknown };
    // tsx may wrap a CommonJS-looking module once more.
    let rule = module.default;
    if (rule !== null && typeof rule === 'object' && 'default' in rule) rule = (rule as { default: unknown }).default;
    if (typeof rule !== 'function') {
      throw new RedoError('ERR_RULE_FAILED', `redo: "${absolutePath}": TypeScript rule has no default-exported function`, {
        hint: 'write `export default async function (ctx: RuleContext) { ... }`',
      });
    }
    return rule as RuleFunction;
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
      if (zxModule === undefined) throw new Error('zx is loaded by loadRule before any shell is made');
      return zxModule.$({ cwd, env, quiet: true });
    },
  };
}
