// The image store keeps facts about a layer beside its blob, computed once per digest
// (issue 20): after a one-line edit of the app, not one byte of the unchanged busybox
// layer is read to assemble and check the image (its digest, tar check, member list, ELF
// needs and per-file sums are known), and writing image.tar does not read it either: the
// archive's members go lower layers first, and the rule takes its previous image.tar back
// (ctx.takePreviousOutput) and keeps its unchanged leading bytes in place, hashed on from
// a saved sha256 state. The result is byte for byte a clean build's; a previous archive
// edited since it was written, or a rewrite killed half way, never gives a stale output.
// The engine learns the record's and the archive's hashes from their writers
// (ctx.outputSha256) and reads neither back.
// Reads are counted with strace on the built CLI, by file descriptor path.
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasTool } from '../helpers/clients.js';
import { copyProject, type ProjectCopy } from '../helpers/project-copy.js';
import { tracedRedo } from '../helpers/read-trace.js';
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
    const built = await project.redo(['image.tar', 'image.oci.tar'], { env: env() });
    expect(built.status, built.stderr).toBe(0);
  });
  afterAll(() => {
    project?.remove();
    if (cache !== undefined) rmSync(cache, { recursive: true, force: true });
  });

  it('after an edit of the app, neither assembling the image nor writing image.tar or image.oci.tar reads the unchanged layer', () => {
    const busybox = join(project.dir, 'targets/busybox.fragment.tar');
    const greet = join(project.dir, 'targets/greet.fragment.tar');
    const busyboxBytes = statSync(busybox).size;
    const busyboxBlob = join(project.dir, '.redo/store/blobs/sha256', project.sha256('targets/busybox.fragment.tar'));
    const readOf = (bytesByPath: Map<string, number>, ...paths: string[]): number => paths.reduce((sum, path) => sum + (bytesByPath.get(path) ?? 0), 0);

    // A first edit: the archives were written in full (hashed with Node's sha256, no
    // states saved), so each rewrite reads the prefix it keeps once, to learn its sha256
    // state, and writes none of it.
    writeFileSync(join(project.dir, 'app/greet.sh'), readFileSync(join(project.dir, 'app/greet.sh'), 'utf8').replace('Hello, $name,', 'Hi, $name,'));
    const first = tracedRedo(project.dir, ['image.tar', 'image.oci.tar'], env());
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr.match(/bytes kept from the previous archive/g)).toHaveLength(2);
    expect(readOf(first.bytesByPath, busybox, busyboxBlob)).toBe(0);
    const prefixReads = readUnder(first.bytesByPath, join(project.dir, 'image.tar')) + readUnder(first.bytesByPath, join(project.dir, 'image.oci.tar'));
    expect(prefixReads).toBeGreaterThanOrEqual(2 * busyboxBytes);
    expect(prefixReads).toBeLessThan(2 * busyboxBytes + 64 * 1024);

    // The edit measured: the rewrites find the states the first one saved.
    writeFileSync(join(project.dir, 'app/greet.sh'), readFileSync(join(project.dir, 'app/greet.sh'), 'utf8').replace('Hi, $name,', 'Good day, $name,'));
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

    // Read calls and kernel copies (copy_file_range, sendfile) both count.
    const archived = tracedRedo(project.dir, ['image.tar'], env());
    expect(archived.status, archived.stderr).toBe(0);
    // The previous image.tar already holds the busybox layer, first: kept in place, not copied.
    expect(archived.stderr).toMatch(/bytes kept from the previous archive/);
    const copied = readOf(archived.bytesByPath, busybox, busyboxBlob);
    expect(copied, `read ${copied} of ${busyboxBytes} bytes`).toBe(0);
    // The previous archive (taken back as image.tar.redo.PID.tmp) is read only for its
    // kept members' headers, never hashed again; the record not at all: the view takes it
    // without its inline bytes (the SBOMs) from the store, by the digest its writer remembered.
    expect(readUnder(archived.bytesByPath, join(project.dir, 'image.tar'))).toBeLessThan(16 * 1024);
    expect(readUnder(archived.bytesByPath, join(project.dir, 'image.image.json'))).toBe(0);

    // The OCI archive likewise: oci-layout and the lower layers first, kept in place.
    const laidOut = tracedRedo(project.dir, ['image.oci.tar'], env());
    expect(laidOut.status, laidOut.stderr).toBe(0);
    expect(laidOut.stderr).toMatch(/bytes kept from the previous archive/);
    expect(readOf(laidOut.bytesByPath, busybox, busyboxBlob)).toBe(0);
    expect(readUnder(laidOut.bytesByPath, join(project.dir, 'image.oci.tar'))).toBeLessThan(16 * 1024);
    expect(readUnder(laidOut.bytesByPath, join(project.dir, 'image.image.json'))).toBe(0);
  });

  it("the edit's image.tar and image.oci.tar, rewritten in place, equal a fresh clone's clean build byte for byte", async () => {
    const fresh = copyProject('redo-ts-store-fresh-');
    try {
      writeFileSync(join(fresh.dir, 'app/greet.sh'), readFileSync(join(project.dir, 'app/greet.sh')));
      const built = await fresh.redo(['image.tar', 'image.oci.tar'], { env: env() });
      expect(built.status, built.stderr).toBe(0);
      expect(built.stderr).not.toMatch(/kept from the previous archive/);
      expect(project.sha256('image.tar')).toBe(fresh.sha256('image.tar'));
      expect(project.sha256('image.oci.tar')).toBe(fresh.sha256('image.oci.tar'));
    } finally {
      fresh.remove();
    }
  });

  it('a previous image.tar edited since it was written (same size, mtime put back) is not reused: -f writes the right bytes', async () => {
    const clean = project.sha256('image.tar');
    const archive = join(project.dir, 'image.tar');
    const before = statSync(archive, { bigint: true });
    const reference = join(project.dir, '.reference');
    expect(spawnSync('cp', ['-p', archive, reference]).status).toBe(0);
    // One byte inside the busybox layer (the first member, the one a rewrite would keep).
    const fd = openSync(archive, 'r+');
    writeSync(fd, Buffer.from('X'), 0, 1, 100_000);
    closeSync(fd);
    expect(spawnSync('touch', ['-r', reference, archive]).status).toBe(0);
    rmSync(reference);
    // Only its ctime tells: same size, same mtime to the nanosecond, same inode.
    const after = statSync(archive, { bigint: true });
    expect([after.size, after.mtimeNs, after.ino]).toEqual([before.size, before.mtimeNs, before.ino]);
    expect(project.sha256('image.tar')).not.toBe(clean);
    const forced = await project.redo(['-f', 'image.tar'], { env: env() });
    expect(forced.status, forced.stderr).toBe(0);
    expect(forced.stderr).not.toMatch(/kept from the previous archive/);
    expect(project.sha256('image.tar')).toBe(clean);
  });

  it('kill -9 during the in-place rewrite: the target is gone, and the next build gives the right bytes with exit 0', async () => {
    for (const [round, when] of [[1, 1], [2, 2]] as const) {
      // A new edit each round, so image.tar is rebuilt from its previous bytes.
      writeFileSync(join(project.dir, 'app/greet.sh'), readFileSync(join(project.dir, 'app/greet.sh'), 'utf8').replace(/(Good day|Round \d), \$name,/, `Round ${round}, $name,`));
      const assembled = await project.redo(['image.image.json'], { env: env() });
      expect(assembled.status, assembled.stderr).toBe(0);
      // SIGKILL at the archive writer's first ftruncate (the file taken back, before it is
      // cut) or its second (every byte written, before the engine renames it into place).
      const killed = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=ftruncate', '-e', `inject=ftruncate:signal=SIGKILL:when=${when}`, process.execPath, join(repoRoot, 'bin', 'redo-ts.js'), 'image.tar'], {
        cwd: project.dir,
        env: cliEnvironment(env()),
        encoding: 'utf8',
      });
      expect(killed.status === 0, killed.stderr).toBe(false);
      expect(existsSync(join(project.dir, 'image.tar')), 'the target after the kill').toBe(false);
      const again = await project.redo(['image.tar'], { env: env() });
      expect(again.status, again.stderr).toBe(0);
      const rebuilt = project.sha256('image.tar');
      // A clean write of the same image (no previous archive to take back) gives the same bytes.
      rmSync(join(project.dir, 'image.tar'));
      const clean = await project.redo(['image.tar'], { env: env() });
      expect(clean.status, clean.stderr).toBe(0);
      expect(clean.stderr).not.toMatch(/kept from the previous archive/);
      expect(rebuilt).toBe(project.sha256('image.tar'));
    }
  });

  it('a removed store is filled again from the record and the layer targets, giving the same bytes', async () => {
    const built = await project.redo(['image.oci.tar'], { env: env() });
    expect(built.status, built.stderr).toBe(0);
    const before = project.sha256('image.oci.tar');
    rmSync(join(project.dir, '.redo/store'), { recursive: true, force: true });
    const again = await project.redo(['-f', 'image.oci.tar'], { env: env() });
    expect(again.status, again.stderr).toBe(0);
    expect(project.sha256('image.oci.tar')).toBe(before);
    // That view read the record in full (the store had no head of it) and kept its head:
    // the next view does not read the record.
    const next = tracedRedo(project.dir, ['-f', 'image.tar'], env());
    expect(next.status, next.stderr).toBe(0);
    expect(readUnder(next.bytesByPath, join(project.dir, 'image.image.json'))).toBe(0);

  });
});
