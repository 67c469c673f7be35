/** Hashed requirements files (`pip-compile --generate-hashes`, `pip hash`): each requirement pinned to exact files by sha256. */

import { readFile } from 'node:fs/promises';
import { RedoError } from '../../errors.js';

/** One requirement: `NAME==VERSION --hash=sha256:HEX ...`. */
export interface PypiRequirement {
  /** The name as written (`Flask`), and its PEP 503 normal form (`flask`). */
  name: string;
  normalName: string;
  version: string;
  /** Extras (`[async]`) and marker (`; python_version >= "3.8"`) as written, for pip. */
  extras: string;
  marker: string;
  /** The sha256 hex digests the file may have (one per wheel or sdist the author allowed). */
  sha256Hex: string[];
  /** 1-based line where it starts. */
  line: number;
}

/** PEP 503: runs of `-`, `_`, `.` become one `-`, lower case. */
export function normalName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

/**
 * Reads the requirements file at `path` (`label` for messages). Comments, blank lines
 * and backslash continuations are handled; option lines (`--index-url` ...) are
 * ignored (the index comes from the spec or pip's configuration). Every requirement
 * must pin one version with `==` and carry at least one `--hash=sha256:`: otherwise
 * ERR_PYPI_UNHASHED names each offending line and gives the command that adds hashes.
 * Nested files (`-r other.txt`) and URLs are refused (ERR_PYPI_REQUIREMENTS_INVALID).
 * Reads only.
 */
export async function readRequirements(path: string, label: string): Promise<PypiRequirement[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new RedoError('ERR_PYPI_REQUIREMENTS_INVALID', `redo: "${label}": cannot be read`, {
      details: [`error: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`],
      cause,
    });
  }
  const logical: Array<{ text: string; line: number }> = [];
  let pending: { text: string; line: number } | undefined;
  text.split('\n').forEach((raw, index) => {
    const withoutComment = raw.replace(/(^|\s)#.*$/, '');
    const continued = /\\\s*$/.test(withoutComment);
    const part = withoutComment.replace(/\\\s*$/, ' ');
    pending = pending === undefined ? { text: part, line: index + 1 } : { text: `${pending.text} ${part}`, line: pending.line };
    if (!continued) {
      if (pending.text.trim() !== '') logical.push({ text: pending.text.trim(), line: pending.line });
      pending = undefined;
    }
  });
  if (pending !== undefined && pending.text.trim() !== '') logical.push({ text: pending.text.trim(), line: pending.line });

  const requirements: PypiRequirement[] = [];
  const unhashed: string[] = [];
  for (const { text: entry, line } of logical) {
    if (/^(-r|--requirement|-c|--constraint|-e|--editable)\b/.test(entry)) {
      throw new RedoError('ERR_PYPI_REQUIREMENTS_INVALID', `redo: "${label}:${line}": "${entry.split(/\s+/)[0]}" is not read`, {
        hint: 'compile one flat file with every requirement: pip-compile --generate-hashes',
      });
    }
    if (entry.startsWith('-')) continue;
    const hashes = [...entry.matchAll(/--hash[= ]sha256:([0-9a-fA-F]{64})/g)].map((match) => match[1]!.toLowerCase());
    const requirementText = entry.replace(/--hash[= ]\S+/g, '').trim();
    const match = /^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*===?\s*([^\s;]+)\s*(;.*)?$/.exec(requirementText);
    if (match === null) {
      if (/:\/\/|@/.test(requirementText)) {
        throw new RedoError('ERR_PYPI_REQUIREMENTS_INVALID', `redo: "${label}:${line}": "${requirementText}" is a URL requirement`, {
          hint: 'name a released version instead (NAME==VERSION with --hash lines)',
        });
      }
      unhashed.push(`${label}:${line}: ${requirementText} (not pinned to one version with ==)`);
      continue;
    }
    if (hashes.length === 0) {
      unhashed.push(`${label}:${line}: ${requirementText} (no --hash=sha256:...)`);
      continue;
    }
    requirements.push({
      name: match[1]!,
      normalName: normalName(match[1]!),
      version: match[3]!,
      extras: match[2] ?? '',
      marker: (match[4] ?? '').trim(),
      sha256Hex: hashes,
      line,
    });
  }
  if (unhashed.length > 0) {
    throw new RedoError('ERR_PYPI_UNHASHED', `redo: "${label}": ${unhashed.length === 1 ? 'a requirement is' : `${unhashed.length} requirements are`} not pinned by hash`, {
      details: unhashed,
      hint: `every requirement needs ==VERSION and --hash lines; write them with pip-tools: \`pip-compile --generate-hashes --output-file=${label.split('/').pop()} requirements.in\` (or pin by hand: \`pip download --no-deps NAME==VERSION -d wheels && pip hash wheels/*\`)`,
    });
  }
  return requirements;
}
