// chooseSandboxTool: bwrap first, unshare where asked, never the host.
import { describe, expect, it } from 'vitest';
import { RedoError } from '../../../lib/errors.js';
import { chooseSandboxTool } from '../../../lib/sandbox/sandbox.js';

describe('chooseSandboxTool', () => {
  it('takes bwrap when it is installed and nothing is forced', () => {
    expect(chooseSandboxTool({ PATH: '/usr/bin:/bin' }, '"x"')).toEqual({ kind: 'bwrap', path: '/usr/bin/bwrap' });
  });

  it('REDO_TS_SANDBOX=unshare forces the util-linux fall-back', () => {
    expect(chooseSandboxTool({ PATH: '/usr/bin:/bin', REDO_TS_SANDBOX: 'unshare' }, '"x"').kind).toBe('unshare');
  });

  it('a REDO_TS_SANDBOX that names no tool is ERR_SANDBOX_UNAVAILABLE, not a run on the host', () => {
    let caught: unknown;
    try {
      chooseSandboxTool({ PATH: '/usr/bin:/bin', REDO_TS_SANDBOX: 'host' }, '"targets/app.spec.yaml"');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(RedoError);
    expect((caught as RedoError).code).toBe('ERR_SANDBOX_UNAVAILABLE');
    expect((caught as RedoError).headline).toBe('redo: "targets/app.spec.yaml": REDO_TS_SANDBOX="host" names no sandbox tool');
  });
});
