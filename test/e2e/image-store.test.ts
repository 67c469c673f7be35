// The image store keeps facts about a layer beside its blob, computed once per digest
// (issue 20): after a one-line edit of the app, not one byte of the unchanged busybox
// layer is read to assemble and check the image (its digest, tar check, member list, ELF
// needs and per-file sums are known), and writing image.tar reads it once, to copy it
// into the archive. The engine learns the record's and the archive's hashes from their
// writers (ctx.outputSha256) and reads neither back.
// Reads are counted with strace on the built CLI, by file descriptor path.
import { readFileSync, rmSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasTool } from '../helpers/clients.js';
import { copyProject, type ProjectCopy } from '../helpers/project-copy.js';
import { cliEnvironment, repoRoot } from '../helpers/rig.js';

const describeIf = hasTool('strace') ? describe : describe.skip;
if (!hasTool('strace')) console.warn('image store read-count test skipped: strace not installed (.ci/run installs it)');

/** Runs `redo-ts ARGS` in `dir` under strace and returns the exit status and the bytes read from each path. */
function tracedRun(dir: string, args: string[], env: NodeJS.ProcessEnv): { status: number | null; stderr: string; bytesByPath: Map<string, number> } {
  const trace = join(dir, '.trace');
  const result = spawnSync('strace', ['-f', '-qq', '-y', '-e', 'trace=read,pread64,readv,preadv', '-o', trace, process.execPath, join(repoRoot, 'bin', 'redo-ts.js'), ...args], {
    cwd: dir,
    env: cliEnvironment(env),
    encoding: 'utf8',
  });
  const bytesByPath = new Map<string, number>();
  for (const line of readFileSync(trace, 'utf8').split('\n')) {
    const match = /(?:read|pread64|readv|preadv)\(\d+<([^>]*)>.*\) = (\d+)$/.exec(line);
    if (match === null) continue;
    bytesByPath.set(match[1]!, (bytesByPath.get(match[1]!) ?? 0) + Number(match[2]));
  }
  rmSync(trace, { force: true });
  return { status: result.status, stderr: result.stderr, bytesByPath };
}

/** Bytes read from `path` and from any file whose name starts with it (its temporary outputs). */
function readUnder(bytesByPath: Map<string, number>, path: string): number {
  let sum = 0;
  for (const [name, bytes] of bytesByPath) if (name === path || name.startsWith(`${path}.redo.`)) sum += bytes;
  return sum;
}

describeIf('the image store: facts about a layer computed once per digest', () => {
  let project: ProjectCopy;
  let cache: string;
  const env = (): NodeJS.ProcessEnv => ({ REDO_TS_CACHE: cache });

  beforeAll(async () => {
    cache = mkdtempSync(join(tmpdir(), 'redo-ts-cache-'));
    project = copyProject('redo-ts-store-');
    const built = await project.redo(['image.tar'], { env: env() });
    expect(built.status, built.stderr).toBe(0);
  });
  afterAll(() => {
    project?.remove();
    if (cache !== undefined) rmSync(cache, { recursive: true, force: true });
  });

  it('after an edit of the app, assembling the image reads nothing of the unchanged layer, and image.tar reads it once', () => {
    const busybox = join(project.dir, 'targets/busybox.fragment.tar');
    const greet = join(project.dir, 'targets/greet.fragment.tar');
    const busyboxBytes = statSync(busybox).size;
    const busyboxBlob = join(project.dir, '.redo/store/blobs/sha256', project.sha256('targets/busybox.fragment.tar'));
    const readOf = (bytesByPath: Map<string, number>, ...paths: string[]): number => paths.reduce((sum, path) => sum + (bytesByPath.get(path) ?? 0), 0);

    writeFileSync(join(project.dir, 'app/greet.sh'), readFileSync(join(project.dir, 'app/greet.sh'), 'utf8').replace('Hello, $name,', 'Good day, $name,'));
    const assembled = tracedRun(project.dir, ['image.image.json'], env());
    expect(assembled.status, assembled.stderr).toBe(0);
    expect(assembled.stderr).toMatch(/^redo {2}image\.image\.json /m);
    // The edited layer was read (so the trace does see reads)...
    expect(readOf(assembled.bytesByPath, greet)).toBeGreaterThanOrEqual(statSync(greet).size);
    // ...and the unchanged one not at all: not its content, not even its tar headers.
    const unchanged = readOf(assembled.bytesByPath, busybox, busyboxBlob);
    expect(unchanged, `read ${unchanged} of ${busyboxBytes} bytes`).toBe(0);
    expect(busyboxBytes).toBeGreaterThan(512 * 1024);
    // The record was hashed as it was written (ctx.outputSha256): the engine does not
    // read it back (as NAME.image.json or as its temporary NAME.image.json.redo.PID.tmp).
    expect(readUnder(assembled.bytesByPath, join(project.dir, 'image.image.json'))).toBe(0);

    const archived = tracedRun(project.dir, ['image.tar'], env());
    expect(archived.status, archived.stderr).toBe(0);
    // One pass: the copy of its bytes into the archive.
    const copied = readOf(archived.bytesByPath, busybox, busyboxBlob);
    expect(copied).toBeGreaterThanOrEqual(busyboxBytes);
    expect(copied).toBeLessThan(busyboxBytes + 64 * 1024);
    // The archive is hashed as it is written, never read back; the record is read once, by the view.
    expect(readUnder(archived.bytesByPath, join(project.dir, 'image.tar'))).toBe(0);
    expect(readUnder(archived.bytesByPath, join(project.dir, 'image.image.json'))).toBe(statSync(join(project.dir, 'image.image.json')).size);
  });

  it('a removed store is filled again from the record and the layer targets, giving the same bytes', async () => {
    const built = await project.redo(['image.oci.tar'], { env: env() });
    expect(built.status, built.stderr).toBe(0);
    const before = project.sha256('image.oci.tar');
    rmSync(join(project.dir, '.redo/store'), { recursive: true, force: true });
    const again = await project.redo(['-f', 'image.oci.tar'], { env: env() });
    expect(again.status, again.stderr).toBe(0);
    expect(project.sha256('image.oci.tar')).toBe(before);

  });
});
