/** A spec's Debian package list: the packages asked for (with optional constraints and architecture) and what to leave out. */

import { parseRelation, formatRelation, type Relation } from './version.js';

/** One package the list names. */
export interface PackageListEntry {
  /** Name, optional `:arch` and optional version constraint. */
  relation: Relation;
  /** Globs over image paths (`/usr/share/doc/**`) of this package's files not to deliver. */
  exclude: string[];
  /** Layer of this package's files (default: the spec's layer). */
  layer?: string;
  /** 1-based line in the spec. */
  line: number;
}

/** The package list of a spec: `packages`, `architecture`, `recommends`, `exclude`. */
export interface PackageList {
  entries: PackageListEntry[];
  /** Target architecture; undefined means the machine's. */
  architecture?: string;
  /** Whether Recommends are followed (default false). */
  isRecommendsWanted: boolean;
  /** Globs of files not delivered from any package. */
  exclude: string[];
}

/**
 * Parses one list item written as text: `python3`, `libc6 (>= 2.36)`, `zlib1g:amd64`,
 * `tzdata (= 2024a-0+deb12u1)`. Returns the relation, or a problem message.
 */
export function parsePackageText(text: string): Relation | string {
  if (text.includes('|') || text.includes(',')) return `"${text}" must name one package (alternatives and lists belong in separate items)`;
  const relation = parseRelation(text);
  if (relation === undefined) return `"${text}" is not a Debian package name with an optional "(>= VERSION)" constraint`;
  if (relation.arch === 'any' || relation.arch === 'native') delete relation.arch;
  return relation;
}

/**
 * The request lines a lock records for `list`: each entry as Debian writes a relation
 * (`libc6 (>= 2.36)`), sorted, so reordering the list does not make a lock stale.
 */
export function requestLinesOf(list: PackageList): string[] {
  return list.entries.map((entry) => formatRelation(entry.relation)).sort();
}
