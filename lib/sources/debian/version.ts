/** Debian version strings and dependency relations: dpkg's ordering (deb-version(7)) and `a (>= 1) | b` parsing. */

/** A version split as dpkg splits it: `[epoch:]upstream[-revision]`. */
interface VersionParts {
  epoch: number;
  upstream: string;
  revision: string;
}

function splitVersion(version: string): VersionParts {
  const colon = version.indexOf(':');
  const epoch = colon > 0 && /^[0-9]+$/.test(version.slice(0, colon)) ? Number(version.slice(0, colon)) : 0;
  const rest = colon > 0 ? version.slice(colon + 1) : version;
  const dash = rest.lastIndexOf('-');
  return dash >= 0 ? { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) } : { epoch, upstream: rest, revision: '' };
}

/** The weight dpkg gives one non-digit character: `~` sorts before everything, even the end. */
function order(code: number | undefined): number {
  if (code === undefined) return 0;
  if (code >= 0x30 && code <= 0x39) return 0;
  if ((code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a)) return code;
  if (code === 0x7e) return -1;
  return code + 256;
}

const isDigit = (code: number | undefined): boolean => code !== undefined && code >= 0x30 && code <= 0x39;

/** dpkg's verrevcmp: alternating non-digit and digit runs, compared as deb-version(7) says. */
function compareFragment(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigit(a.charCodeAt(i))) || (j < b.length && !isDigit(b.charCodeAt(j)))) {
      const ac = order(i < a.length ? a.charCodeAt(i) : undefined);
      const bc = order(j < b.length ? b.charCodeAt(j) : undefined);
      if (ac !== bc) return ac - bc;
      i += 1;
      j += 1;
    }
    while (a.charCodeAt(i) === 0x30) i += 1;
    while (b.charCodeAt(j) === 0x30) j += 1;
    while (isDigit(a.charCodeAt(i)) && isDigit(b.charCodeAt(j))) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i += 1;
      j += 1;
    }
    if (isDigit(a.charCodeAt(i))) return 1;
    if (isDigit(b.charCodeAt(j))) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

/**
 * Compares two Debian versions exactly as `dpkg --compare-versions` does: negative when
 * `a` sorts before `b`, 0 when equal (`1.0` equals `0:1.0`), positive after. Pure.
 */
export function compareDebianVersions(a: string, b: string): number {
  const left = splitVersion(a);
  const right = splitVersion(b);
  if (left.epoch !== right.epoch) return left.epoch - right.epoch;
  const upstream = compareFragment(left.upstream, right.upstream);
  if (upstream !== 0) return upstream;
  return compareFragment(left.revision, right.revision);
}

/** A relation operator as Debian writes it (`<` and `>` are dpkg's obsolete `<=` and `>=`). */
export type RelationOperator = '<<' | '<=' | '=' | '>=' | '>>';

/** A version constraint: `>= 2.36`. */
export interface VersionConstraint {
  operator: RelationOperator;
  version: string;
}

/** One alternative of a dependency: `name[:arch] [(op version)]`. */
export interface Relation {
  name: string;
  /** `any`, `native` or an architecture, when the relation names one. */
  arch?: string;
  constraint?: VersionConstraint;
}

/** True when `version` meets `constraint` (always true without one). Pure. */
export function satisfiesConstraint(version: string, constraint: VersionConstraint | undefined): boolean {
  if (constraint === undefined) return true;
  const order = compareDebianVersions(version, constraint.version);
  switch (constraint.operator) {
    case '<<': return order < 0;
    case '<=': return order <= 0;
    case '=': return order === 0;
    case '>=': return order >= 0;
    case '>>': return order > 0;
    default: {
      const impossible: never = constraint.operator;
      throw new Error(`unknown relation operator ${String(impossible)}`);
    }
  }
}

const relationPattern = /^([a-z0-9][a-z0-9+.-]*)(?::([a-z0-9-]+))?\s*(?:\(\s*(<<|<=|>=|>>|=|<|>)\s*([0-9A-Za-z][^\s)]*)\s*\))?\s*(?:\[[^\]]*\])?\s*(?:<[^>]*>\s*)*$/;

/**
 * Parses one relation (`libc6 (>= 2.36)`, `python3:any`). Returns undefined when the
 * text is not a relation. Architecture restrictions (`[amd64]`) and build profiles are
 * ignored: binary package indexes do not carry them.
 */
export function parseRelation(text: string): Relation | undefined {
  const match = relationPattern.exec(text.trim());
  if (match === null) return undefined;
  const relation: Relation = { name: match[1]! };
  if (match[2] !== undefined) relation.arch = match[2];
  if (match[3] !== undefined) {
    const raw = match[3];
    const operator = (raw === '<' ? '<=' : raw === '>' ? '>=' : raw) as RelationOperator;
    relation.constraint = { operator, version: match[4]! };
  }
  return relation;
}

/**
 * Parses a relation field (`Depends: a (>= 1) | b, c`) into AND-ed groups of OR-ed
 * alternatives. Unparsable alternatives are dropped (a damaged index line must not
 * stop every other package); an empty field gives [].
 */
export function parseRelations(field: string | undefined): Relation[][] {
  if (field === undefined || field.trim() === '') return [];
  const groups: Relation[][] = [];
  for (const group of field.split(',')) {
    const alternatives = group.split('|').map(parseRelation).filter((relation): relation is Relation => relation !== undefined);
    if (alternatives.length > 0) groups.push(alternatives);
  }
  return groups;
}

/** Writes a relation back in Debian's syntax: `name (op version)`. */
export function formatRelation(relation: Relation): string {
  const arch = relation.arch !== undefined ? `:${relation.arch}` : '';
  const constraint = relation.constraint !== undefined ? ` (${relation.constraint.operator} ${relation.constraint.version})` : '';
  return `${relation.name}${arch}${constraint}`;
}
