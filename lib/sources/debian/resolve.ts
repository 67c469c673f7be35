/** The resolver: a package list and verified indexes in, the closure of Depends and Pre-Depends out, every choice explained. */

import { RedoError } from '../../errors.js';
import type { PackageRecord, PackageUniverse } from './indexes.js';
import { formatRelation, satisfiesConstraint, type Relation } from './version.js';

/** A package the resolution chose, and the packages whose dependencies pulled it in. */
export interface ResolvedPackage {
  record: PackageRecord;
  /** Names of the packages that depend on it, sorted; `requested` when the list names it. */
  pulledBy: string[];
}

/** Options for resolvePackages. */
export interface ResolveOptions {
  /** Follow Recommends too (default false: Debian images rarely want them). */
  isRecommendsWanted?: boolean;
  /**
   * Versions to keep when they still fit (the current lock's, for `redo-ts lock`
   * without --update); any other package gets its highest fitting version.
   */
  preferredVersions?: ReadonlyMap<string, string>;
}

const requestedMark = 'requested';

const priorities = ['required', 'important', 'standard', 'optional', 'extra'];

/** Providers of a virtual package are tried in Debian priority order (as apt prefers), then by name. */
function priorityRank(record: PackageRecord): number {
  const rank = priorities.indexOf(record.priority);
  return rank < 0 ? priorities.length : rank;
}

/**
 * Resolves the closure of `requests` (Debian relations, `python3`, `libc6 (>= 2.36)`)
 * over `universe`: each request and each Pre-Depends and Depends group (and Recommends
 * when asked) is satisfied by a package already chosen when one fits, else by the first
 * alternative that has a version meeting the constraint (the highest such version), else
 * by a package that Provides it (versioned Provides count for versioned relations;
 * providers tried by Debian priority, then name). Afterwards no chosen package may Conflict with or Break another.
 * Pure and deterministic: the same universe and requests give the same result, sorted
 * by name. Throws ERR_DEBIAN_UNKNOWN_PACKAGE (a requested name no index knows: similar
 * names suggested), ERR_DEBIAN_UNSATISFIABLE (a relation nothing satisfies, with the
 * chain of packages that led to it and the versions available) and ERR_DEBIAN_CONFLICT
 * (both packages and their chains).
 */
export function resolvePackages(universe: PackageUniverse, requests: readonly Relation[], options: ResolveOptions = {}): ResolvedPackage[] {
  const chosen = new Map<string, PackageRecord>();
  const pulledBy = new Map<string, Set<string>>();
  const parent = new Map<string, string | undefined>();
  const queue: PackageRecord[] = [];

  const choose = (record: PackageRecord, by: string | undefined): void => {
    chosen.set(record.name, record);
    parent.set(record.name, by);
    pulledBy.set(record.name, new Set([by ?? requestedMark]));
    queue.push(record);
  };
  const chainOf = (name: string | undefined): string[] => {
    const chain: string[] = [];
    for (let at = name; at !== undefined && !chain.includes(at); at = parent.get(at)) chain.unshift(at);
    return chain;
  };

  /** The chosen package that satisfies `relation` (itself or through Provides), if any. */
  const chosenFor = (relation: Relation): PackageRecord | undefined => {
    const direct = chosen.get(relation.name);
    if (direct !== undefined && satisfiesConstraint(direct.version, relation.constraint)) return direct;
    for (const provider of universe.providers.get(relation.name) ?? []) {
      const record = chosen.get(provider.record.name);
      if (record !== provider.record) continue;
      if (relation.constraint === undefined || (provider.version !== undefined && satisfiesConstraint(provider.version, relation.constraint))) return record;
    }
    return undefined;
  };
  /** The best record not yet conflicting with a choice: highest version of the name, else a provider. */
  const candidateFor = (relation: Relation): PackageRecord | undefined => {
    if (!chosen.has(relation.name)) {
      const versions = (universe.byName.get(relation.name) ?? []).filter((record) => satisfiesConstraint(record.version, relation.constraint));
      const preferred = options.preferredVersions?.get(relation.name);
      const fit = versions.find((record) => record.version === preferred) ?? versions[0];
      if (fit !== undefined) return fit;
    }
    const providers = (universe.providers.get(relation.name) ?? [])
      .filter((provider) => relation.constraint === undefined || (provider.version !== undefined && satisfiesConstraint(provider.version, relation.constraint)))
      .filter((provider) => !chosen.has(provider.record.name))
      .map((provider) => provider.record)
      .sort((a, b) => priorityRank(a) - priorityRank(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return providers[0];
  };
  const available = (relation: Relation): string => {
    const versions = (universe.byName.get(relation.name) ?? []).map((record) => record.version);
    const providers = (universe.providers.get(relation.name) ?? []).map((provider) => `${provider.record.name} ${provider.record.version}`);
    const parts = [];
    if (versions.length > 0) parts.push(`${relation.name} ${versions.join(', ')}`);
    if (providers.length > 0) parts.push(`provided by ${providers.join(', ')}`);
    const picked = chosen.get(relation.name);
    if (picked !== undefined) parts.push(`already chosen: ${picked.name} ${picked.version} (via ${chainOf(picked.name).join(' → ')})`);
    return parts.length > 0 ? parts.join('; ') : 'none: no index lists this name';
  };

  for (const request of requests) {
    const existing = chosenFor(request);
    if (existing !== undefined) {
      pulledBy.get(existing.name)!.add(requestedMark);
      parent.set(existing.name, undefined);
      continue;
    }
    const record = candidateFor(request);
    if (record === undefined) {
      const known = universe.byName.has(request.name) || universe.providers.has(request.name);
      if (!known) {
        const similar = [...universe.byName.keys()].filter((name) => name.startsWith(request.name) || request.name.startsWith(name))
          .sort((a, b) => Math.abs(a.length - request.name.length) - Math.abs(b.length - request.name.length) || (a < b ? -1 : 1)).slice(0, 5);
        throw new RedoError('ERR_DEBIAN_UNKNOWN_PACKAGE', `redo: package "${request.name}": not in any package index`, {
          details: [`indexes: ${universe.indexes.map((index) => `${index.suite} ${index.path}`).join(', ')}`, ...(similar.length > 0 ? [`similar names: ${similar.join(', ')}`] : [])],
          hint: 'check the name (apt-cache search NAME), the architecture and the configured suites and components',
        });
      }
      throw new RedoError('ERR_DEBIAN_UNSATISFIABLE', `redo: package list: "${formatRelation(request)}" cannot be satisfied`, {
        details: [`chain: ${formatRelation(request)}`, `available: ${available(request)}`],
        hint: 'loosen the version constraint, or lock against indexes that have a matching version',
      });
    }
    choose(record, undefined);
  }

  while (queue.length > 0) {
    const record = queue.shift()!;
    const groups = [...record.preDepends, ...record.depends];
    const optional = options.isRecommendsWanted === true ? record.recommends : [];
    for (const [index, group] of [...groups, ...optional].entries()) {
      const isOptional = index >= groups.length;
      const satisfied = group.map(chosenFor).find((match) => match !== undefined);
      if (satisfied !== undefined) {
        if (satisfied.name !== record.name) pulledBy.get(satisfied.name)!.add(record.name);
        continue;
      }
      let picked: PackageRecord | undefined;
      for (const relation of group) {
        picked = candidateFor(relation);
        if (picked !== undefined) break;
      }
      if (picked !== undefined) {
        choose(picked, record.name);
        continue;
      }
      if (isOptional) continue;
      const text = group.map(formatRelation).join(' | ');
      throw new RedoError('ERR_DEBIAN_UNSATISFIABLE', `redo: package "${record.name}" ${record.version}: dependency "${text}" cannot be satisfied`, {
        details: [`chain: ${[...chainOf(record.name), text].join(' → ')}`, ...group.map((relation) => `available: ${available(relation)}`)],
        hint: 'add a version constraint to the package list that picks compatible versions, or lock against newer indexes',
      });
    }
  }

  for (const record of [...chosen.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    for (const [kind, groups] of [['conflicts with', record.conflicts], ['breaks', record.breaks]] as const) {
      for (const relation of groups.flat()) {
        const other = chosen.get(relation.name);
        const isDirect = other !== undefined && other !== record && satisfiesConstraint(other.version, relation.constraint);
        const provider = relation.constraint === undefined
          ? (universe.providers.get(relation.name) ?? []).map((p) => p.record).find((p) => chosen.get(p.name) === p && p !== record)
          : undefined;
        const clash = isDirect ? other : provider;
        if (clash === undefined) continue;
        throw new RedoError('ERR_DEBIAN_CONFLICT', `redo: package "${record.name}" ${record.version} ${kind} "${formatRelation(relation)}"`, {
          details: [
            `${record.name} chain: ${chainOf(record.name).join(' → ')}`,
            `${clash.name} ${clash.version} chain: ${chainOf(clash.name).join(' → ')}`,
          ],
          hint: 'choose one of them: change the package list, or pick the other alternative by naming it',
        });
      }
    }
  }

  return [...chosen.values()]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((record) => ({ record, pulledBy: [...pulledBy.get(record.name)!].sort((a, b) => (a === requestedMark ? -1 : b === requestedMark ? 1 : a < b ? -1 : 1)) }));
}
