// Runs work with a PATH of one empty folder: no xz, zstd or any other tool can start then.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** Runs `work` with PATH set to an empty folder `no-tools` under `dir`; the PATH comes back after. */
export async function withoutTools<T>(dir: string, work: () => Promise<T>): Promise<T> {
  const saved = process.env.PATH;
  const empty = join(dir, 'no-tools');
  mkdirSync(empty, { recursive: true });
  process.env.PATH = empty;
  try {
    return await work();
  } finally {
    process.env.PATH = saved;
  }
}
