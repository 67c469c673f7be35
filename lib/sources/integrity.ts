/** Subresource-integrity strings for sources: a thin wrapper over ssri (its only importer). */

import { createReadStream } from 'node:fs';
import ssri from 'ssri';

/** An SRI string such as `sha256-<base64>`, validated; distinct from a hex digest. */
export type Integrity = string & { readonly __brand: 'Integrity' };

/** Hash algorithms accepted in pins, strongest last. `pin` writes sha256. */
export const pinAlgorithms = ['sha256', 'sha384', 'sha512'] as const;

/** The algorithm `redo-ts pin` writes new pins with. */
export const defaultPinAlgorithm = 'sha256';

/**
 * Parses `text` as a single-hash SRI string using one of `pinAlgorithms`.
 * Returns the normalised string, or undefined when `text` is not one.
 */
export function parseIntegrity(text: string): Integrity | undefined {
  if (!/^sha(256|384|512)-[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  const parsed = ssri.parse(text, { single: true, strict: true });
  if (!parsed || !(pinAlgorithms as readonly string[]).includes(parsed.algorithm)) return undefined;
  const expectedLength = { sha256: 32, sha384: 48, sha512: 64 }[parsed.algorithm as 'sha256'];
  if (Buffer.from(parsed.digest, 'base64').length !== expectedLength) return undefined;
  return parsed.toString() as Integrity;
}

/** The algorithm named by an integrity string (`sha256`, `sha384` or `sha512`). */
export function algorithmOf(integrity: Integrity): string {
  return integrity.slice(0, integrity.indexOf('-'));
}

/** SRI of in-memory bytes with `algorithm`. */
export function integrityOfBytes(bytes: Uint8Array, algorithm: string = defaultPinAlgorithm): Integrity {
  return ssri.fromData(Buffer.from(bytes), { algorithms: [algorithm] }).toString() as Integrity;
}

/** SRI of a file's bytes with `algorithm`, streamed (the file is never held in memory). */
export async function integrityOfFile(path: string, algorithm: string = defaultPinAlgorithm): Promise<Integrity> {
  const result = await ssri.fromStream(createReadStream(path), { algorithms: [algorithm] });
  return result.toString() as Integrity;
}

/**
 * Hashes the file at `path` with the algorithm of `wanted` and returns the integrity
 * found, with `matches` telling whether it equals `wanted`. Never throws on mismatch:
 * the caller names the source in its error.
 */
export async function checkFile(path: string, wanted: Integrity): Promise<{ matches: boolean; found: Integrity }> {
  const found = await integrityOfFile(path, algorithmOf(wanted));
  return { matches: found === wanted, found };
}
