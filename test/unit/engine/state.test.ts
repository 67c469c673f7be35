import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listTransitiveSources } from '../../../lib/engine/inspect.js';
import { StateStore, type TargetRecord } from '../../../lib/engine/state.js';
import { isRedoError } from '../../../lib/errors.js';

const record = (target: string, deps: TargetRecord['deps']): TargetRecord => ({
  version: 1,
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

  it.each([
    ['unparsable JSON', '{', 'ERR_STATE_CORRUPT'],
    ['a record of another target', JSON.stringify(record('other', [])), 'ERR_STATE_CORRUPT'],
    ['a newer record version', JSON.stringify({ ...record('t', []), version: 7 }), 'ERR_STATE_TOO_NEW'],
    ['a dependency without a path', JSON.stringify(record('t', [{ mode: 'ifchange' } as never])), 'ERR_STATE_CORRUPT'],
    ['a dependency of an unknown mode', JSON.stringify(record('t', [{ path: 'x', mode: 'maybe' } as never])), 'ERR_STATE_CORRUPT'],
    ['an output that is not a stamp', JSON.stringify({ ...record('t', []), output: 'x' }), 'ERR_STATE_CORRUPT'],
    ['an identity that is not a string', JSON.stringify({ ...record('t', []), identity: 5 }), 'ERR_STATE_CORRUPT'],
    ['a missing builds count', JSON.stringify({ ...record('t', []), builds: undefined }), 'ERR_STATE_CORRUPT'],
  ])('%s is reported as %s', (_name, text, code) => {
    const store = new StateStore(root);
    store.checkVersion();
    mkdirSync(join(root, '.redo', 'db'), { recursive: true });
    writeFileSync(join(root, '.redo', 'db', 't.json'), text);
    let caught: unknown;
    try {
      new StateStore(root).load('t');
    } catch (error) {
      caught = error;
    }
    expect(isRedoError(caught, code as 'ERR_STATE_CORRUPT')).toBe(true);
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
