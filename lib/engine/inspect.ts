/** Read-only questions about the recorded graph: why, out of date, targets, sources, provenance. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RebuildReason } from './events.js';
import { BuildJournal } from './journal.js';
import { findRule } from './lookup.js';
import { compareOutput, decideFreshness, type DependencyAnswer } from './freshness.js';
import { identityOf, isSameStat, readStamp } from './stamp.js';
import { StateStore, type DependencyRecord, type TargetRecord } from './state.js';

/** What `redo-ts --why` says about one target, without building anything. */
export type Explanation =
  | { status: 'source'; target: string }
  /** Neither a file nor a target any rule can build: `redo-ts TARGET` would fail. */
  | { status: 'no-rule'; target: string }
  | { status: 'unknown'; target: string }
  | { status: 'fresh'; target: string }
  | { status: 'edited'; target: string }
  | { status: 'stale'; target: string; reason: RebuildReason }
  /** A dependency that is itself a target would rebuild; `because` explains that one. */
  | { status: 'stale-dependency'; target: string; dependency: string; because: Explanation };

/**
 * Explains whether `target` (root-relative) is or would be rebuilt by `redo-ts TARGET`,
 * reading only `.redo/` and the file system (`sharedRulesDir`: the installed package's
 * rules/, as in the build). Throws ERR_STATE_* for unreadable state.
 */
export function explainTarget(root: string, target: string, sharedRulesDir?: string): Explanation {
  return new Inspector(root, sharedRulesDir).explain(target);
}

/** Root-relative targets whose output exists, sorted. Throws ERR_STATE_* for unreadable state. */
export function listTargets(root: string): string[] {
  const state = new StateStore(root);
  return state.listTargets().filter((target) => {
    const record = state.load(target);
    return record !== undefined && record.output !== null && fs.existsSync(path.resolve(root, target));
  });
}

/**
 * The sha256 (hex) of every target's output as recorded, when the file is still the one
 * the engine recorded (same size, mtime, ctime and inode: what a rule can take back with
 * takePreviousOutput). Throws ERR_STATE_* for unreadable state.
 */
export function listOutputSha256s(root: string): Set<string> {
  const state = new StateStore(root);
  const found = new Set<string>();
  for (const target of state.listTargets()) {
    const output = state.load(target)?.output;
    if (output === null || output === undefined || !/^[0-9a-f]{64}$/.test(output.sha256Hex)) continue;
    const stats = fs.lstatSync(path.resolve(root, target), { throwIfNoEntry: false });
    if (stats !== undefined && stats.isFile() && isSameStat(output, stats)) found.add(output.sha256Hex);
  }
  return found;
}

/** Root-relative targets that `redo-ts TARGET` would rebuild, sorted. */
export function listOutOfDate(root: string, sharedRulesDir?: string): string[] {
  const inspector = new Inspector(root, sharedRulesDir);
  return inspector.state.listTargets().filter((target) => {
    const status = inspector.explain(target).status;
    return status === 'stale' || status === 'stale-dependency';
  });
}

/** Every recorded dependency that is a source (not a target), root-relative, sorted, unique. */
export function listSources(root: string): string[] {
  const state = new StateStore(root);
  const targets = new Set(state.listTargets());
  const sources = new Set<string>();
  for (const target of targets) {
    for (const dep of state.load(target)?.deps ?? []) {
      if (dep.mode === 'ifchange' && !targets.has(dep.path) && fs.existsSync(path.resolve(root, dep.path))) sources.add(dep.path);
    }
  }
  return [...sources].sort();
}

/**
 * The sources (not targets) `target` transitively depends on, as recorded by its last
 * build: root-relative, sorted by code unit, unique, rule files included, ifcreate
 * (non-existence) dependencies excluded. `target` itself is included only if it is a
 * source. Reads `.redo/` only; throws ERR_STATE_* for unreadable state.
 */
export function listTransitiveSources(root: string, target: string): string[] {
  const state = new StateStore(root);
  const sources = new Set<string>();
  const seen = new Set<string>();
  const visit = (node: string): void => {
    if (seen.has(node)) return;
    seen.add(node);
    // A dependency outside the project (absolute path) is always a source.
    const record = path.isAbsolute(node) ? undefined : state.load(node);
    if (record === undefined) {
      sources.add(node);
      return;
    }
    for (const dep of record.deps) if (dep.mode === 'ifchange') visit(dep.path);
  };
  visit(target);
  return [...sources].sort();
}

class Inspector {
  readonly state: StateStore;
  private readonly memo = new Map<string, Explanation>();
  private readonly visiting = new Set<string>();

  constructor(private readonly root: string, private readonly sharedRulesDir?: string) {
    this.state = new StateStore(root);
  }

  explain(target: string): Explanation {
    const known = this.memo.get(target);
    if (known !== undefined) return known;
    if (this.visiting.has(target)) return { status: 'fresh', target };
    this.visiting.add(target);
    const result = this.compute(target, path.isAbsolute(target) ? undefined : this.state.load(target));
    this.visiting.delete(target);
    this.memo.set(target, result);
    return result;
  }

  private abandoned: Set<string> | undefined;

  /** True when a killed engine's journal names `target`: the next build settles and rebuilds it. */
  private isInterrupted(target: string): boolean {
    this.abandoned ??= new Set(new BuildJournal(this.state.stateDir).findAbandoned().flatMap((journal) => journal.targets));
    return this.abandoned.has(target);
  }

  private compute(target: string, record: TargetRecord | undefined): Explanation {
    const absolute = path.resolve(this.root, target);
    if (record === undefined) {
      if (fs.existsSync(absolute)) return this.isInterrupted(target) ? { status: 'stale', target, reason: { kind: 'interrupted' } } : { status: 'source', target };
      if (findRule(this.root, target, this.sharedRulesDir).found === undefined) return { status: 'no-rule', target };
      return { status: 'stale', target, reason: { kind: 'no-previous-build' } };
    }
    const outputState = compareOutput(record, readStamp(absolute, record.output ?? undefined));
    if (outputState === 'missing') return { status: 'stale', target, reason: { kind: 'output-missing' } };
    if (outputState === 'edited') return this.isInterrupted(target) ? { status: 'stale', target, reason: { kind: 'interrupted' } } : { status: 'edited', target };
    // The same decision as the build's (freshness.ts), with predictions where the build
    // would bring a target dependency up to date first.
    const walk = decideFreshness(record, process.env, (depPath) => fs.existsSync(path.resolve(this.root, depPath)));
    let step = walk.next();
    while (step.done !== true) step = walk.next(this.answer(step.value));
    const verdict = step.value;
    if (verdict.status === 'fresh') return { status: 'fresh', target };
    if (verdict.status === 'stale') return { status: 'stale', target, reason: verdict.reason };
    if (verdict.status === 'stale-dependency') return { status: 'stale-dependency', target, dependency: verdict.dependency, because: verdict.because as Explanation };
    return { status: 'stale', target, reason: { kind: 'changed', path: verdict.dependency, oldIdentity: 'built', newIdentity: 'failed' } };
  }

  /**
   * What the build would see for an `ifchange` dependency: a source's file identity; a
   * target's recorded identity when it is fresh, its file's when it was edited by hand
   * (the build keeps and uses it), or "would rebuild" when its rule would run.
   */
  private answer(dep: DependencyRecord): DependencyAnswer {
    const depRecord = path.isAbsolute(dep.path) ? undefined : this.state.load(dep.path);
    const absolute = path.resolve(this.root, dep.path);
    if (depRecord === undefined) {
      const stamp = readStamp(absolute, dep.stamp);
      return stamp === undefined ? { status: 'missing' } : { status: 'ok', identity: identityOf(stamp), stamp };
    }
    const inner = this.explain(dep.path);
    if (inner.status === 'stale' || inner.status === 'stale-dependency') {
      // A target whose rule is gone is not rebuilt: the build uses its file as it is.
      if (findRule(this.root, dep.path, this.sharedRulesDir).found !== undefined || !fs.existsSync(absolute)) return { status: 'would-rebuild', because: inner };
      return { status: 'ok', identity: identityOf(readStamp(absolute)) };
    }
    if (inner.status === 'edited') return { status: 'ok', identity: identityOf(readStamp(absolute)) };
    return { status: 'ok', identity: depRecord.identity };
  }
}
