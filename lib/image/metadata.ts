/** Metadata tables: the declared mode, uid and gid of rootfs paths, and their text format. */

import { readFileSync } from 'node:fs';
import { RedoError } from '../errors.js';
import { toMemberPath } from './tar-header.js';

/**
 * One line of a metadata table. `pattern` is a member path (leading `/` or `./`
 * allowed) that may use `*` (any bytes but `/`), `?` (one byte but `/`) and `**`
 * (any bytes including `/`); a trailing `/**` also matches the folder itself. Omitted fields keep the default (or an earlier rule's
 * value). `where` is `file:line` for messages.
 */
export interface MetadataRule {
  pattern: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  where?: string;
}

/**
 * The declared metadata of a rootfs: rules applied in order, a later matching rule
 * overriding the fields it sets. Every rule must match at least one existing path.
 * A socket, fifo or device is accepted only when a rule without glob characters
 * names it exactly.
 */
export interface MetadataTable {
  rules: MetadataRule[];
}

/** Metadata a path gets before any rule applies. */
export interface ResolvedMetadata {
  mode: number;
  uid: number;
  gid: number;
}

/**
 * The default rule: directories 0755; regular files 0755 if the builder's file has
 * any execute bit, else 0644; symlinks 0777; anything else 0644; uid and gid 0.
 * Nothing else from the builder's filesystem (umask, owner) is used.
 */
export function defaultMetadata(type: string, hostMode: number): ResolvedMetadata {
  switch (type) {
    case 'directory':
      return { mode: 0o755, uid: 0, gid: 0 };
    case 'file':
      return { mode: hostMode & 0o111 ? 0o755 : 0o644, uid: 0, gid: 0 };
    case 'symlink':
      return { mode: 0o777, uid: 0, gid: 0 };
    default:
      return { mode: 0o644, uid: 0, gid: 0 };
  }
}

/**
 * Parses the metadata text format, one rule per line:
 *
 *     # comment
 *     PATH   MODE  UID  GID
 *     /bin/busybox   0755  0  0
 *     /tmp           1777  -  -       ("-" keeps the default)
 *     /home/app/**   -     1000 1000  (glob: everything below /home/app)
 *
 * MODE is octal permission bits (up to 07777); UID and GID are decimal. In PATH,
 * `\ ` is a space, `\\` a backslash and `\xHH` a raw byte (for names that are not
 * UTF-8). Throws ERR_METADATA_INVALID naming `sourceName:line`.
 */
export function parseMetadata(text: string, sourceName: string): MetadataTable {
  const rules: MetadataRule[] = [];
  const lines = text.split('\n');
  lines.forEach((rawLine, index) => {
    const where = `${sourceName}:${index + 1}`;
    const line = rawLine.replace(/\r$/, '');
    if (/^\s*(#|$)/.test(line)) return;
    const fields = splitFields(line, where);
    if (fields.length !== 4) {
      throw invalid(where, `wanted 4 fields (PATH MODE UID GID), found ${fields.length}`);
    }
    const [pathField, modeField, uidField, gidField] = fields as [Buffer, Buffer, Buffer, Buffer];
    const rule: MetadataRule = { pattern: normalisePattern(pathField, where), where };
    const mode = modeField.toString('latin1');
    if (mode !== '-') {
      if (!/^[0-7]{1,5}$/.test(mode) || parseInt(mode, 8) > 0o7777) throw invalid(where, `mode: wanted octal up to 07777, found "${mode}"`);
      rule.mode = parseInt(mode, 8);
    }
    for (const [name, field] of [['uid', uidField], ['gid', gidField]] as const) {
      const value = field.toString('latin1');
      if (value === '-') continue;
      if (!/^[0-9]{1,10}$/.test(value) || Number(value) > 0xffffffff) throw invalid(where, `${name}: wanted a decimal id, found "${value}"`);
      rule[name] = Number(value);
    }
    rules.push(rule);
  });
  return { rules };
}

/** Reads and parses a metadata file (see parseMetadata); `label` names it in errors. */
export function readMetadataFile(path: string, label = path): MetadataTable {
  return parseMetadata(readFileSync(path, 'utf8'), label);
}

function invalid(where: string, problem: string): RedoError {
  return new RedoError('ERR_METADATA_INVALID', `redo: "${where}": malformed metadata line`, {
    details: [problem],
    hint: 'each line is PATH MODE UID GID, with "-" for a default field and "#" for comments',
  });
}

function splitFields(line: string, where: string): Buffer[] {
  const fields: Buffer[] = [];
  let current: number[] | null = null;
  const bytes = Buffer.from(line, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x20 || b === 0x09) {
      if (current !== null) fields.push(Buffer.from(current));
      current = null;
      continue;
    }
    current ??= [];
    if (b === 0x5c) {
      const next = bytes[i + 1];
      if (next === 0x78) {
        const hex = bytes.toString('latin1', i + 2, i + 4);
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw invalid(where, `bad escape "\\x${hex}"`);
        current.push(parseInt(hex, 16));
        i += 3;
      } else if (next !== undefined) {
        current.push(next);
        i += 1;
      } else {
        throw invalid(where, 'line ends with a backslash');
      }
      continue;
    }
    current.push(b);
  }
  if (current !== null) fields.push(Buffer.from(current));
  return fields;
}

function normalisePattern(field: Buffer, where: string): Buffer {
  try {
    return toMemberPath(field);
  } catch (cause) {
    throw new RedoError('ERR_METADATA_INVALID', `redo: "${where}": path "${field.toString('utf8')}" is not inside the rootfs`, {
      details: ['wanted: a path without ".." components'],
      cause,
    });
  }
}

/** True when a pattern has glob characters. */
export function isGlob(pattern: string | Buffer): boolean {
  const text = typeof pattern === 'string' ? pattern : pattern.toString('latin1');
  return /[*?]/.test(text);
}

/** A compiled table: resolves each path's metadata and remembers which rules matched. */
export class MetadataMatcher {
  private readonly compiled: Array<{ rule: MetadataRule; literal: string | null; regex: RegExp | null; matched: boolean }>;

  constructor(table: MetadataTable | undefined) {
    this.compiled = (table?.rules ?? []).map((rule) => {
      const bytes = typeof rule.pattern === 'string' ? toMemberPath(rule.pattern) : toMemberPath(rule.pattern);
      const text = bytes.toString('latin1');
      return isGlob(bytes)
        ? { rule, literal: null, regex: globToRegex(text), matched: false }
        : { rule, literal: text, regex: null, matched: false };
    });
  }

  /** True when a rule without glob characters names this path exactly. */
  isDeclared(path: Buffer): boolean {
    const key = path.toString('latin1');
    return this.compiled.some((c) => c.literal === key);
  }

  /** Applies every matching rule, in order, over `base`. */
  resolve(path: Buffer, base: ResolvedMetadata): ResolvedMetadata {
    const key = path.toString('latin1');
    const result = { ...base };
    for (const c of this.compiled) {
      if (c.literal !== null ? c.literal !== key : !c.regex!.test(key)) continue;
      c.matched = true;
      if (c.rule.mode !== undefined) result.mode = c.rule.mode;
      if (c.rule.uid !== undefined) result.uid = c.rule.uid;
      if (c.rule.gid !== undefined) result.gid = c.rule.gid;
    }
    return result;
  }

  /** Throws ERR_METADATA_UNMATCHED for the first rule that matched no path. */
  checkAllMatched(rootLabel: string): void {
    const unmatched = this.compiled.filter((c) => !c.matched);
    if (unmatched.length === 0) return;
    const first = unmatched[0]!;
    const pattern = typeof first.rule.pattern === 'string' ? first.rule.pattern : first.rule.pattern.toString('utf8');
    throw new RedoError('ERR_METADATA_UNMATCHED', `redo: "${pattern}": metadata given for a path that does not exist in ${rootLabel}`, {
      details: [
        ...(first.rule.where === undefined ? [] : [`declared at: ${first.rule.where}`]),
        ...(unmatched.length > 1 ? [`and ${unmatched.length - 1} more unmatched rule(s)`] : []),
      ],
      hint: 'remove the line or create the path in the rootfs',
    });
  }
}

function globToRegex(pattern: string): RegExp {
  let source = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '/' && pattern.slice(i) === '/**') {
      // "a/**" matches a itself and everything below it.
      source += '(?:/[\\s\\S]*)?';
      break;
    }
    if (c === '*' && pattern[i + 1] === '*') {
      // "a/**" matches everything below a; "**/x" matches x at any depth.
      if (pattern[i + 2] === '/') {
        source += '(?:[\\s\\S]*/)?';
        i += 2;
      } else {
        source += '[\\s\\S]*';
        i += 1;
      }
    } else if (c === '*') {
      source += '[^/]*';
    } else if (c === '?') {
      source += '[^/]';
    } else {
      source += c.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
    }
  }
  return new RegExp(source + '$', 's');
}
