/** `pin`: computing integrity values and writing them into spec files in place, comments and layout kept. */

import { rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { RedoError } from '../errors.js';
import { pinSource, type FetchOptions } from './fetch.js';
import { algorithmOf, type Integrity } from './integrity.js';
import { loadSpec, parseSpec, type SourceSpec, type Spec } from './spec.js';
import { cacheDirFrom } from './store.js';

/** Options for pinSpecs. */
export interface PinOptions {
  /** Re-download pinned sources too and replace pins that changed. */
  shouldUpdate?: boolean;
  /** Project root; found from each spec path when omitted. */
  root?: string;
  /** Cache folder; default cacheDirFrom(env). */
  cacheDir?: string;
  env?: NodeJS.ProcessEnv;
  /** Progress lines of long downloads (see FetchOptions.onProgress). */
  onProgress?: (line: string) => void;
}

/** What pin did to one source. */
export interface PinChange {
  /** Spec path relative to the root, and the line of the source's url. */
  spec: string;
  line: number;
  url: string;
  action: 'added' | 'updated' | 'unchanged';
  old?: Integrity;
  integrity: Integrity;
}

/**
 * For each spec in `paths`: computes the integrity of every source and patch that has
 * none (downloading it, and caching the bytes under the new pin) and writes it into the
 * spec file right after the source's `url`, indented like its siblings; the rest of the
 * file is left byte for byte as it was. With `shouldUpdate`, pinned sources are
 * downloaded too (hashed with their pin's algorithm) and changed pins replaced in
 * place. Project files (`integrity: project`) are never pinned. A spec file is
 * rewritten atomically (temp file + rename) only when something changed, and re-parsed
 * first to prove the edit is valid. Returns every change, `unchanged` entries only for
 * sources that were checked. Throws ERR_SPEC_* for a bad spec, ERR_SOURCE_UNREACHABLE
 * when a source cannot be downloaded (specs already done stay written).
 */
export async function pinSpecs(paths: readonly string[], options: PinOptions = {}): Promise<PinChange[]> {
  const env = options.env ?? process.env;
  const cacheDir = options.cacheDir ?? cacheDirFrom(env);
  const changes: PinChange[] = [];
  for (const path of paths) {
    const spec = await loadSpec(path, options.root !== undefined ? { root: options.root } : {});
    const fetchOptions: FetchOptions = { cacheDir, root: spec.root, specPath: spec.relativePath, env };
    if (options.onProgress !== undefined) fetchOptions.onProgress = options.onProgress;
    changes.push(...(await pinSpec(spec, fetchOptions, options.shouldUpdate === true)));
  }
  return changes;
}

async function pinSpec(spec: Spec, fetchOptions: FetchOptions, shouldUpdate: boolean): Promise<PinChange[]> {
  const sources: SourceSpec[] = [...spec.sources, ...spec.patches.map((patch) => patch.source)];
  const edits: Array<{ start: number; end: number; text: string }> = [];
  const changes: PinChange[] = [];
  for (const source of sources) {
    if (source.isProjectFile) continue;
    const base = { spec: spec.relativePath, line: source.location.line, url: source.url };
    if (source.integrity === undefined) {
      const integrity = await pinSource(source, fetchOptions);
      changes.push({ ...base, action: 'added', integrity });
      const at = source.location.isFlow ? source.location.urlEnd : endOfLine(spec.text, source.location.urlEnd);
      const text = source.location.isFlow
        ? `, integrity: ${integrity}`
        : `\n${' '.repeat(source.location.keyColumn)}integrity: ${integrity}`;
      edits.push({ start: at, end: at, text });
      continue;
    }
    if (!shouldUpdate) continue;
    const integrity = await pinSource(source, fetchOptions, algorithmOf(source.integrity));
    if (integrity === source.integrity) {
      changes.push({ ...base, action: 'unchanged', integrity });
      continue;
    }
    changes.push({ ...base, action: 'updated', old: source.integrity, integrity });
    const [start, end] = source.location.integrityRange!;
    edits.push({ start, end, text: integrity });
  }
  if (edits.length === 0) return changes;
  let text = spec.text;
  for (const edit of [...edits].sort((a, b) => b.start - a.start)) {
    text = text.slice(0, edit.start) + edit.text + text.slice(edit.end);
  }
  try {
    parseSpec(text, spec.path, spec.root);
  } catch (cause) {
    throw new RedoError('ERR_INTERNAL', `redo: "${spec.relativePath}": writing the pins would break the spec; nothing was written`, {
      details: [`error: ${(cause as Error).message}`],
      hint: 'please report this with the spec file',
      cause,
    });
  }
  const temporary = join(dirname(spec.path), `.${spec.path.split('/').pop()}.${process.pid}.tmp`);
  try {
    await writeFile(temporary, text);
    await rename(temporary, spec.path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return changes;
}

/** Offset of the newline ending the line that holds `offset` (or the text's end). */
function endOfLine(text: string, offset: number): number {
  // urlEnd may point past the newline when the scalar's range includes it.
  let at = offset;
  while (at > 0 && (text[at - 1] === '\n' || text[at - 1] === '\r')) at -= 1;
  const newline = text.indexOf('\n', at);
  if (newline < 0) return text.length;
  return text[newline - 1] === '\r' ? newline - 1 : newline;
}
