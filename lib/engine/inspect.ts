/** Read-only questions about the recorded graph: why, out of date, targets, sources, provenance. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RebuildReason } from './events.js';
import { createHash } from 'node:crypto';
import { BuildJournal } from './journal.js';
import { findRule } from './lookup.js';
import { MISSING, identityOf, readStamp } from './stamp.js';
import { StateStore, type TargetRecord } from './state.js';

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

/** Root-relative targets that `redo-ts TARGET` would rebuild, sorted. */
export function listOutOfDate(root: string): string[] {
  const inspector = new Inspector(root);
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

  private identityNow(target: string): string {
    const record = path.isAbsolute(target) ? undefined : this.state.load(target);
    if (record !== undefined) return record.identity;
    return identityOf(readStamp(path.resolve(this.root, target)));
  }

  private compute(target: string, record: TargetRecord | undefined): Explanation {
    const absolute = path.resolve(this.root, target);
    if (record === undefined) {
      if (fs.existsSync(absolute)) return this.isInterrupted(target) ? { status: 'stale', target, reason: { kind: 'interrupted' } } : { status: 'source', target };
      if (findRule(this.root, target, this.sharedRulesDir).found === undefined) return { status: 'no-rule', target };
      return { status: 'stale', target, reason: { kind: 'no-previous-build' } };
    }
    const current = readStamp(absolute, record.output ?? undefined);
    if (record.output !== null && current === undefined) return { status: 'stale', target, reason: { kind: 'output-missing' } };
    if (current !== undefined && (record.output === null || current.sha256Hex !== record.output.sha256Hex)) {
      if (this.isInterrupted(target)) return { status: 'stale', target, reason: { kind: 'interrupted' } };
      return { status: 'edited', target };
    }
    if (record.isAlways) return { status: 'stale', target, reason: { kind: 'always' } };
    for (const dep of record.deps) {
      if (dep.mode === 'env') {
        // The value this process sees, which is what a build started here would see.
        const value = process.env[dep.path];
        const identity = value === undefined ? MISSING : `sha256:${createHash('sha256').update(value).digest('hex')}`;
        if (identity !== dep.identity) return { status: 'stale', target, reason: { kind: 'changed', path: `$${dep.path}`, oldIdentity: dep.identity ?? MISSING, newIdentity: identity } };
        continue;
      }
      if (dep.mode === 'ifcreate') {
        if (fs.existsSync(path.resolve(this.root, dep.path))) {
          const isRule = dep.path.endsWith('.do') || dep.path.endsWith('.do.ts');
          return { status: 'stale', target, reason: { kind: isRule ? 'rule-appeared' : 'created', path: dep.path } };
        }
        continue;
      }
      const depRecord = path.isAbsolute(dep.path) ? undefined : this.state.load(dep.path);
      if (depRecord !== undefined) {
        const inner = this.explain(dep.path);
        if (inner.status === 'stale' || inner.status === 'stale-dependency') {
          return { status: 'stale-dependency', target, dependency: dep.path, because: inner };
        }
      }
      const identity = depRecord !== undefined ? this.identityNow(dep.path) : identityOf(readStamp(path.resolve(this.root, dep.path), dep.stamp));
      if (identity !== (dep.identity ?? MISSING)) {
        return { status: 'stale', target, reason: { kind: 'changed', path: dep.path, oldIdentity: dep.identity ?? MISSING, newIdentity: identity } };
      }
    }
    return { status: 'fresh', target };
  }
}
