import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listTransitiveSources } from '../../../lib/engine/inspect.js';
import { StateStore, type TargetRecord } from '../../../lib/engine/state.js';
import { isRedoError } from '../../../lib/errors.js';

const record = (target: string, deps: TargetRecord['deps']): TargetRecord => ({
  version: 2,
  target,
  rule: 'default.do',
  output: null,
  identity: 'none:1',
  builds: 1,
  isAlways: false,
  stampSha256Hex: null,
  deps,
});

describe('StateStore', () => {
  let root = '';
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'redo-ts-state-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('saves and loads a record, creating .redo/VERSION', () => {
    const store = new StateStore(root);
    const saved = record('a/b.x', [{ path: 'a/b.src', mode: 'ifchange', identity: 'sha256:00' }]);
    store.save(saved);
    expect(new StateStore(root).load('a/b.x')).toEqual(saved);
    expect(store.listTargets()).toEqual(['a/b.x']);
  });

  const base = (value: unknown): string => JSON.stringify({ version: 2, records: [[1, 't', value]] });
  it.each([
    ['unparsable JSON', '{', 'ERR_STATE_CORRUPT'],
    ['a store of an unknown version', JSON.stringify({ version: 1, records: [] }), 'ERR_STATE_CORRUPT'],
    ['an entry that is not [gen, target, record]', JSON.stringify({ version: 2, records: [['t', record('t', [])]] }), 'ERR_STATE_CORRUPT'],
    ['a record of another target', base(record('other', [])), 'ERR_STATE_CORRUPT'],
    ['a newer record version', base({ ...record('t', []), version: 7 }), 'ERR_STATE_TOO_NEW'],
    ['a dependency without a path', base(record('t', [{ mode: 'ifchange' } as never])), 'ERR_STATE_CORRUPT'],
    ['a dependency of an unknown mode', base(record('t', [{ path: 'x', mode: 'maybe' } as never])), 'ERR_STATE_CORRUPT'],
    ['an output that is not a stamp', base({ ...record('t', []), output: 'x' }), 'ERR_STATE_CORRUPT'],
    ['an identity that is not a string', base({ ...record('t', []), identity: 5 }), 'ERR_STATE_CORRUPT'],
    ['a missing builds count', base({ ...record('t', []), builds: undefined }), 'ERR_STATE_CORRUPT'],
  ])('%s is reported as %s', (_name, text, code) => {
    const store = new StateStore(root);
    store.checkVersion();
    writeFileSync(join(root, '.redo', 'db', 'records.json'), text);
    let caught: unknown;
    try {
      new StateStore(root).load('t');
    } catch (error) {
      caught = error;
    }
    expect(isRedoError(caught, code as 'ERR_STATE_CORRUPT')).toBe(true);
  });

  it('the newest entry of a target wins across the base and the logs of several engines; a removal hides older ones', () => {
    const store = new StateStore(root);
    store.checkVersion();
    const db = join(root, '.redo', 'db');
    writeFileSync(join(db, 'records.json'), JSON.stringify({ version: 2, records: [[3, 'a', record('a', [])], [1, 'b', record('b', [])]] }));
    // Logs of two other engines (dead: pids that cannot run), in no particular order; a cut-short last line is ignored.
    writeFileSync(join(db, 'log.999999998-1'), `${JSON.stringify([5, 'a', { ...record('a', []), builds: 5 }])}\n${JSON.stringify([2, 'b', null])}\n[7, "a", {"ver`);
    writeFileSync(join(db, 'log.999999999-1'), `${JSON.stringify([4, 'a', { ...record('a', []), builds: 4 }])}\n${JSON.stringify([1, 'c', record('c', [])])}\n`);
    const reader = new StateStore(root);
    expect(reader.load('a')?.builds).toBe(5);
    expect(reader.load('b')).toBeUndefined();
    expect(reader.listTargets()).toEqual(['a', 'c']);
    // A save goes one above the newest gen; compaction merges dead engines' logs and its own into the base.
    store.save({ ...record('a', []), builds: 6 });
    expect(readFileSync(join(db, readdirSync(db).find((name) => name.startsWith(`log.${process.pid}-`)) ?? ''), 'utf8')).toContain('[6,"a"');
    store.compact(() => true, () => undefined);
    expect(readdirSync(db)).toEqual(['records.json']);
    const after = new StateStore(root);
    expect(after.load('a')?.builds).toBe(6);
    expect(after.listTargets()).toEqual(['a', 'c']);
  });

  it('a compaction removes the temporary base a killed compaction left, not one a live process writes', () => {
    const store = new StateStore(root);
    store.checkVersion();
    const db = join(root, '.redo', 'db');
    // Written by a compaction killed between write and rename (pid 999999999 cannot run), and by this process.
    writeFileSync(join(db, 'records.json.999999999.3.tmp'), '{"version":2,"records":[');
    writeFileSync(join(db, `records.json.${process.pid}.999.tmp`), '{}');
    store.save(record('a', []));
    store.compact(() => true, () => undefined);
    expect(readdirSync(db).sort()).toEqual(['records.json', `records.json.${process.pid}.999.tmp`]);
    expect(new StateStore(root).load('a')).toEqual(record('a', []));
  });

  it('a reader sees what another store appended after its first read', () => {
    const reader = new StateStore(root);
    expect(reader.load('t')).toBeUndefined();
    new StateStore(root).save(record('t', []));
    expect(reader.load('t')).toEqual(record('t', []));
  });

  it('a reader whose store folder is unchanged since it listed it still sees appends, new logs and a compaction', async () => {
    const writer = new StateStore(root);
    writer.save(record('t', []));
    const db = join(root, '.redo', 'db');
    // The folder's last change is old enough that the reader trusts its stat after one listing.
    await new Promise((resolve) => setTimeout(resolve, 250));
    const reader = new StateStore(root);
    expect(reader.load('t')?.builds).toBe(1);
    // Appended to a log the reader follows already: no change to the folder.
    writer.save({ ...record('t', []), builds: 2 });
    expect(reader.load('t')?.builds).toBe(2);
    // A new log of a (dead) engine.
    writeFileSync(join(db, 'log.999999999-1'), `${JSON.stringify([9, 'u', record('u', [])])}\n`);
    expect(reader.load('u')).toEqual(record('u', []));
    // A compaction by another store: logs merged into a new base and removed.
    writer.compact(() => true, () => undefined);
    expect(readdirSync(db)).toEqual(['records.json']);
    expect(reader.load('t')?.builds).toBe(2);
    expect(reader.listTargets()).toEqual(['t', 'u']);
  });

  it('version 1 state (one file per record) is converted: records kept, old files removed', () => {
    mkdirSync(join(root, '.redo', 'db', 'sub'), { recursive: true });
    writeFileSync(join(root, '.redo', 'VERSION'), 'redo-ts state 1\n');
    writeFileSync(join(root, '.redo', 'db', 'sub', 'x.o.json'), JSON.stringify({ ...record('sub/x.o', []), version: 1 }));
    writeFileSync(join(root, '.redo', 'db', 'y.json'), JSON.stringify({ ...record('y', []), version: 1 }));
    writeFileSync(join(root, '.redo', 'snapshot.json'), '{}');
    const store = new StateStore(root);
    expect(store.load('sub/x.o')).toEqual(record('sub/x.o', []));
    expect(store.listTargets()).toEqual(['sub/x.o', 'y']);
    expect(readFileSync(join(root, '.redo', 'VERSION'), 'utf8')).toBe('redo-ts state 2\n');
    expect(readdirSync(join(root, '.redo', 'db'))).toEqual(['records.json']);
    expect(existsSync(join(root, '.redo', 'snapshot.json'))).toBe(false);
  });

  it('an env dependency round-trips', () => {
    const store = new StateStore(root);
    const saved = record('t', [{ path: 'SOURCE_DATE_EPOCH', mode: 'env', identity: 'missing' }]);
    store.save(saved);
    expect(new StateStore(root).load('t')).toEqual(saved);
  });

  it('listTransitiveSources returns the sources a target reaches, sorted, without targets or ifcreate misses', () => {
    const store = new StateStore(root);
    store.save(record('app.layer', [
      { path: 'default.layer.do', mode: 'ifcreate' },
      { path: 'default.do', mode: 'ifchange', identity: 'sha256:1' },
      { path: 'app/greet.sh', mode: 'ifchange', identity: 'sha256:2' },
      { path: 'lib.a', mode: 'ifchange', identity: 'sha256:3' },
    ]));
    store.save(record('lib.a', [
      { path: 'default.do', mode: 'ifchange', identity: 'sha256:1' },
      { path: 'lib/z.c', mode: 'ifchange', identity: 'sha256:4' },
      { path: 'lib/a.c', mode: 'ifchange', identity: 'sha256:5' },
    ]));
    expect(listTransitiveSources(root, 'app.layer')).toEqual(['app/greet.sh', 'default.do', 'lib/a.c', 'lib/z.c']);
    expect(listTransitiveSources(root, 'lib/a.c')).toEqual(['lib/a.c']);
  });
});
