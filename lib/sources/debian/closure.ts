/** A lock must be closed under its own dependencies: every Depends and Pre-Depends of a locked package is met inside the lock. */

import { RedoError } from '../../errors.js';
import type { Paragraph } from './control.js';
import type { DebianLock } from './lock.js';
import { formatRelation, parseRelation, parseRelations, satisfiesConstraint, type Relation } from './version.js';

/** One dependency group of a locked package that no locked package meets. */
export interface DanglingDependency {
  /** The package whose control file states the dependency. */
  package: string;
  /** `Depends` or `Pre-Depends`. */
  field: string;
  /** The group as written: `libc6 (>= 2.34)` or `a | b`. */
  relation: string;
}

/**
 * The dependency groups (Pre-Depends and Depends of each package's own control file,
 * `controls` by package name) that no package of the lock satisfies, by name or by
 * Provides (a versioned Provides for a versioned relation), with dpkg's version order.
 * Architecture qualifiers (`:any`) are accepted as met by any architecture. Pure.
 */
export function danglingDependencies(lock: DebianLock, controls: ReadonlyMap<string, Paragraph>): DanglingDependency[] {
  const versions = new Map<string, Array<string | undefined>>();
  const add = (name: string, version: string | undefined): void => {
    versions.set(name, [...(versions.get(name) ?? []), version]);
  };
  for (const locked of lock.packages) {
    add(locked.name, locked.version);
    for (const provided of (controls.get(locked.name)?.get('Provides') ?? '').split(',').map(parseRelation)) {
      if (provided !== undefined) add(provided.name, provided.constraint?.operator === '=' ? provided.constraint.version : undefined);
    }
  }
  const isMet = (relation: Relation): boolean => (versions.get(relation.name) ?? []).some((version) =>
    relation.constraint === undefined || (version !== undefined && satisfiesConstraint(version, relation.constraint)));
  const dangling: DanglingDependency[] = [];
  for (const locked of lock.packages) {
    const control = controls.get(locked.name);
    if (control === undefined) continue;
    for (const field of ['Pre-Depends', 'Depends']) {
      for (const group of parseRelations(control.get(field))) {
        if (!group.some(isMet)) dangling.push({ package: locked.name, field, relation: group.map(formatRelation).join(' | ') });
      }
    }
  }
  return dangling;
}

/**
 * Throws ERR_DEBIAN_LOCK_INCOMPLETE when the lock is not closed under its packages'
 * dependencies (a block lost in a bad merge, a hand edit): each dangling relation with
 * the package that needs it. Reads nothing.
 */
export function checkLockClosed(lock: DebianLock, controls: ReadonlyMap<string, Paragraph>, lockLabel: string, specLabel: string): void {
  const dangling = danglingDependencies(lock, controls);
  if (dangling.length === 0) return;
  const missing = [...new Set(dangling.map((d) => d.relation.split(' ')[0]!))].sort();
  throw new RedoError('ERR_DEBIAN_LOCK_INCOMPLETE', `redo: "${lockLabel}": the lock lacks ${missing.length === 1 ? `package ${missing[0]}, a dependency` : `${missing.length} packages that are dependencies`} of its own packages`, {
    details: dangling.map((d) => `${d.package} ${d.field}: ${d.relation}: not in the lock`),
    hint: `the lock lost a package's block (a bad merge or an edit): run \`redo-ts lock ${specLabel}\` to resolve it again, and review the diff`,
  });
}
