// `redo-ts verify TARGET`: identical for a deterministic layer, names the field for a stamped one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;

function redoTs(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('REDO_') || key === 'REDO_TS_CACHE') env[key] = value;
  const result = spawnSync(process.execPath, [join(repo, 'bin/redo-ts.js'), ...args], { cwd: dir, env, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'redo-ts-verify-test-'));
  cpSync(join(repo, 'test/fixtures/302-verify'), dir, { recursive: true });
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(repo, join(dir, 'node_modules', 'redo-ts'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('redo-ts verify', () => {
  it('builds the target, rebuilds it elsewhere and prints identical with its digest', () => {
    const result = redoTs(['verify', 'layer.tar']);
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^identical: layer\.tar sha256:[0-9a-f]{64}\n$/);
  });

  it('names the first differing member and header field of a target that is not reproducible, exit 1', () => {
    const result = redoTs(['verify', 'stamp.tar']);
    expect(result.status).toBe(1);
    // A folder's mtime differs, or (within one second) the stamp file's content does.
    expect(result.stdout).toMatch(/^different: stamp\.tar\n {2}first difference: \.\/(etc\/)?(: mtime: "\d+" vs "\d+"|when: content at byte \d+: 0x[0-9a-f]+ vs 0x[0-9a-f]+)\n$/);
  });

  it('refuses to run without exactly one target', () => {
    expect(redoTs(['verify']).status).toBe(2);
  });
});
