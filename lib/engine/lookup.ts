/** Rule search: NAME.do, then default.*.do, in the target's folder, its parents, then rules/. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RedoError } from '../errors.js';

/** The language of a rule file. */
export type RuleKind = 'sh' | 'ts';

/** A rule found for a target, with the arguments it runs with. */
export interface FoundRule {
  /** Root-relative path of the rule file. */
  rule: string;
  kind: RuleKind;
  /** Root-relative folder the rule runs in ('' = root): the rule's folder, or the target's for rules/. */
  cwd: string;
  /** True when the rule came from the project's rules/ folder. */
  isFromRulesFolder: boolean;
  /** $1: the target relative to `cwd`. */
  targetArg: string;
  /** $2: $1 without the extension the rule matched (equal to $1 for NAME.do). */
  baseArg: string;
}

/** The outcome of a lookup: the rule (if any) and every candidate tried before it. */
export interface RuleLookup {
  found: FoundRule | undefined;
  /** Root-relative candidate paths that did not exist, in search order (ifcreate dependencies). */
  misses: string[];
}

/**
 * The candidate rule names for a file named `basename`, most specific first:
 * `a.b.c` → `a.b.c.do`, `default.b.c.do`, `default.c.do`, `default.do`, each paired
 * with the extension it strips. Pure.
 */
export function candidateNames(basename: string): Array<{ name: string; extension: string }> {
  const candidates = [{ name: `${basename}.do`, extension: '' }];
  // Extensions start at each '.' that is not the first character (dotfiles keep their name).
  for (let i = basename.indexOf('.', 1); i !== -1; i = basename.indexOf('.', i + 1)) {
    const extension = basename.slice(i);
    candidates.push({ name: `default${extension}.do`, extension });
  }
  candidates.push({ name: 'default.do', extension: '' });
  return candidates;
}

/**
 * Finds the rule for `target` (root-relative) under the absolute `root`. Search order:
 * every candidate name in the target's folder, then in each parent up to the root,
 * then in `rules/`. At each step both `NAME.do` (sh) and `NAME.do.ts` (TypeScript) are
 * tried. Throws ERR_RULE_AMBIGUOUS when both exist in one place. Reads the file system only.
 */
export function findRule(root: string, target: string): RuleLookup {
  const misses: string[] = [];
  const targetDir = path.posix.dirname(target) === '.' ? '' : path.posix.dirname(target);
  const basename = path.posix.basename(target);
  const folders: string[] = [];
  for (let dir = targetDir; ; dir = path.posix.dirname(dir) === '.' ? '' : path.posix.dirname(dir)) {
    folders.push(dir);
    if (dir === '') break;
  }
  if (!folders.includes('rules') && !(targetDir === 'rules' || targetDir.startsWith('rules/'))) folders.push('rules');
  for (const folder of folders) {
    const isRulesFolder = folder === 'rules' && folder !== targetDir && !targetDir.startsWith('rules/');
    for (const { name, extension } of candidateNames(basename)) {
      const shRule = folder === '' ? name : `${folder}/${name}`;
      const tsRule = `${shRule}.ts`;
      const hasSh = isFile(path.join(root, shRule));
      const hasTs = isFile(path.join(root, tsRule));
      if (hasSh && hasTs) {
        throw new RedoError('ERR_RULE_AMBIGUOUS', `redo: "${target}": two rules match at one step`, {
          details: [`found: ${shRule}`, `found: ${tsRule}`],
          hint: 'delete or rename one of them',
        });
      }
      if (!hasSh && !hasTs) {
        misses.push(shRule, tsRule);
        continue;
      }
      const cwd = isRulesFolder ? targetDir : folder;
      const targetArg = cwd === '' ? target : target.slice(cwd.length + 1);
      return {
        found: {
          rule: hasSh ? shRule : tsRule,
          kind: hasSh ? 'sh' : 'ts',
          cwd,
          isFromRulesFolder: isRulesFolder,
          targetArg,
          baseArg: extension === '' ? targetArg : targetArg.slice(0, targetArg.length - extension.length),
        },
        misses,
      };
    }
  }
  return { found: undefined, misses };
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}
