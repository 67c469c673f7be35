// The waits-for graph and the cycle error made from it (wait-graph.ts), on their own.
import { describe, expect, it } from 'vitest';
import { WaitGraph, cycleError } from '../../../lib/engine/wait-graph.js';

describe('cycleError', () => {
  const cases: { name: string; edges: [string, string][]; target: string; requester: string; chain: string[]; details?: string[] }[] = [
    { name: 'no edge back to the requester is no cycle', edges: [['a', 'b']], target: 'c', requester: 'a', chain: ['a', 'c'] },
    { name: 'a target that asks for itself is a cycle of one', edges: [], target: 'a', requester: 'a', chain: ['a', 'a'], details: ['chain: a → a', 'cycle: a → a'] },
    {
      name: 'a path back through another target is reported whole',
      edges: [['b', 'c'], ['c', 'a']],
      target: 'b',
      requester: 'a',
      chain: ['all', 'a', 'b'],
      details: ['chain: all → a → b', 'cycle: a → b → c → a'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const waits = new WaitGraph();
      for (const [from, to] of c.edges) waits.add(from, to);
      const error = cycleError(waits, c.target, c.requester, c.chain);
      if (c.details === undefined) {
        expect(error).toBeUndefined();
        return;
      }
      expect(error?.code).toBe('ERR_CYCLE');
      expect(error?.details).toEqual(c.details);
    });
  }

  it('counts edges: one remove of two adds keeps the cycle, the second ends it', () => {
    const waits = new WaitGraph();
    waits.add('b', 'a');
    waits.add('b', 'a');
    waits.remove('b', 'a');
    expect(cycleError(waits, 'b', 'a', ['a', 'b'])).toBeDefined();
    waits.remove('b', 'a');
    expect(cycleError(waits, 'b', 'a', ['a', 'b'])).toBeUndefined();
  });

  it('finds the same path whatever order the edges came in', () => {
    const one = new WaitGraph();
    const two = new WaitGraph();
    for (const [from, to] of [['x', 'z'], ['x', 'y'], ['y', 'r'], ['z', 'r']] as const) one.add(from, to);
    for (const [from, to] of [['z', 'r'], ['y', 'r'], ['x', 'y'], ['x', 'z']] as const) two.add(from, to);
    expect(one.findPath('x', 'r')).toEqual(['x', 'y', 'r']);
    expect(two.findPath('x', 'r')).toEqual(['x', 'y', 'r']);
  });
});
