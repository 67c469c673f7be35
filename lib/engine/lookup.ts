/** Rule search: NAME.do and default*.do in the target's folder, default*.do in its parents, rules/, the folders above the root. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RedoError } from '../errors.js';

/** The language of a rule file. */
export type RuleKind = 'sh' | 'ts';

/** A rule found for a target, with the arguments it runs with. */
export interface FoundRule {
  /** Root-relative path of the rule file (absolute for a rule of the installed package). */
  rule: string;
  kind: RuleKind;
  /** Root-relative folder the rule runs in ('' = root): the rule's folder, or the target's for rules/; absolute above the root. */
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
  /**
   * Candidate paths that did not exist, in search order (ifcreate dependencies): root-relative,
   * absolute for the installed package's rules, and `rules` itself when the project has no rules/ folder.
   */
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
 * Finds the rule for `target` (root-relative) under the absolute `root`, as redo does
 * (redo-whichdo.md): in the target's own folder `NAME.do`, then `default.EXT.do` from
 * the most to the least specific, then `default.do`; in each parent up to the root only
 * the `default*.do` names; then the same `default*.do` names in the project's `rules/`
 * (only when that folder exists; run in the target's folder); then in each folder above
 * the root up to `/` (absolute paths; run in their folder, `$1` relative to it); then in
 * `sharedRulesDir` (the installed package's `rules/`, absolute; run in the target's folder). At each step both `NAME.do`
 * (sh) and `NAME.do.ts` (TypeScript) are tried. Throws ERR_RULE_AMBIGUOUS when both
 * exist in one place. Reads the file system only. `isFileOutside`, when given, answers
 * for the candidates in folders outside the project (above its root, `sharedRulesDir`):
 * the engine answers those from folder listings it keeps for one run, since every source
 * it meets is looked up there (a `default*.do` made above the project during a build is
 * seen by the next one). With `isProjectOnly`, only the folders inside the project are
 * searched (the target's and its parents up to the root, not rules/ or beyond): what a
 * caller that ignores the other rules needs, at a third of the cost.
 */
export function findRule(root: string, target: string, sharedRulesDir?: string, isFileOutside?: (absolute: string) => boolean, isProjectOnly = false): RuleLookup {
  const misses: string[] = [];
  const targetDir = path.posix.dirname(target) === '.' ? '' : path.posix.dirname(target);
  const basename = path.posix.basename(target);
  const names = candidateNames(basename);
  const defaults = names.slice(1);
  const steps: Array<{ folder: string; names: typeof names; isRulesFolder: boolean }> = [];
  for (let dir = targetDir; ; dir = path.posix.dirname(dir) === '.' ? '' : path.posix.dirname(dir)) {
    steps.push({ folder: dir, names: dir === targetDir ? names : defaults, isRulesFolder: false });
    if (dir === '') break;
  }
  // Above the root, up to '/', as redo does: absolute folders, rules run there.
  const above: typeof steps = [];
  if (!isProjectOnly && path.isAbsolute(root) && path.dirname(root) !== root) {
    for (let dir = path.dirname(root); ; dir = path.dirname(dir)) {
      above.push({ folder: dir, names: defaults, isRulesFolder: false });
      if (path.dirname(dir) === dir) break;
    }
  }
  const isInRules = targetDir === 'rules' || targetDir.startsWith('rules/');
  if (!isInRules && !isProjectOnly) {
    // Without rules/, creating that folder is what could change the lookup (an empty step).
    steps.push({ folder: 'rules', names: isDirectory(path.join(root, 'rules')) ? defaults : [], isRulesFolder: true });
  }
  steps.push(...above);
  if (!isProjectOnly && sharedRulesDir !== undefined && !isSameDirectory(sharedRulesDir, path.join(root, 'rules'))) {
    steps.push({ folder: sharedRulesDir, names: defaults, isRulesFolder: true });
  }
  for (const { folder, names: stepNames, isRulesFolder } of steps) {
    if (stepNames.length === 0) misses.push(folder);
    for (const { name, extension } of stepNames) {
      const shRule = folder === '' ? name : folder === '/' ? `/${name}` : `${folder}/${name}`;
      const tsRule = `${shRule}.ts`;
      const isRuleFile = isFileOutside !== undefined && path.isAbsolute(folder) ? isFileOutside : isFile;
      const hasSh = isRuleFile(path.resolve(root, shRule));
      const hasTs = isRuleFile(path.resolve(root, tsRule));
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
      const targetArg = cwd === '' ? target : path.isAbsolute(cwd) ? path.relative(cwd, path.join(root, target)) : target.slice(cwd.length + 1);
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

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false;
  }
}

const sameDirectories = new Map<string, boolean>();

/** True when the folders `a` and `b` are one (same device and inode); remembered per process. */
function isSameDirectory(a: string, b: string): boolean {
  const key = `${a}\0${b}`;
  let isSame = sameDirectories.get(key);
  if (isSame === undefined) {
    isSame = compareDirectories(a, b);
    sameDirectories.set(key, isSame);
  }
  return isSame;
}

function compareDirectories(a: string, b: string): boolean {
  try {
    const first = fs.statSync(a, { throwIfNoEntry: false });
    const second = fs.statSync(b, { throwIfNoEntry: false });
    return first !== undefined && second !== undefined && first.dev === second.dev && first.ino === second.ino;
  } catch {
    return false;
  }
}

// statSync without throwing: most candidates are missing, and a thrown error (with its
// stack) costs far more than the stat itself.
function isFile(p: string): boolean {
  try {
    return fs.statSync(p, { throwIfNoEntry: false })?.isFile() === true;
  } catch {
    return false;
  }
}
