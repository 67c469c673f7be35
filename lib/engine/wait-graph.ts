/** The waits-for graph between targets of one engine, where dependency cycles are found, also across concurrent requests. */

import { RedoError } from '../errors.js';

/** Counted edges "target A waits for target B"; a cycle is a path back to the waiter. */
export class WaitGraph {
  private readonly edges = new Map<string, Map<string, number>>();

  /** Records that `from` waits for `to` (counted: one target may ask twice at once). */
  add(from: string, to: string): void {
    let edges = this.edges.get(from);
    if (edges === undefined) this.edges.set(from, (edges = new Map()));
    edges.set(to, (edges.get(to) ?? 0) + 1);
  }

  /** Every target that waits or is waited for now. */
  nodes(): Set<string> {
    const nodes = new Set<string>();
    for (const [from, edges] of this.edges) {
      if (edges.size > 0) nodes.add(from);
      for (const to of edges.keys()) nodes.add(to);
    }
    return nodes;
  }

  /** Undoes one add(from, to). */
  remove(from: string, to: string): void {
    const edges = this.edges.get(from);
    if (edges === undefined) return;
    const count = (edges.get(to) ?? 1) - 1;
    if (count <= 0) edges.delete(to);
    else edges.set(to, count);
  }

  /** A path of waits-for edges from `from` to `to` (both included), or undefined; deterministic (edges visited in sorted order). */
  findPath(from: string, to: string): string[] | undefined {
    const seen = new Set<string>();
    const visit = (node: string): string[] | undefined => {
      if (node === to) return [node];
      if (seen.has(node)) return undefined;
      seen.add(node);
      for (const next of [...(this.edges.get(node)?.keys() ?? [])].sort()) {
        const rest = visit(next);
        if (rest !== undefined) return [node, ...rest];
      }
      return undefined;
    };
    return visit(from);
  }
}

/**
 * The ERR_CYCLE error for `requester` waiting for `target` when `target` already
 * waits (directly or through others) for `requester`, or undefined when there is no
 * cycle. `chain` is the request chain ending in `target`; the error names it and the
 * cycle, in a deterministic order.
 */
export function cycleError(waits: WaitGraph, target: string, requester: string, chain: string[]): RedoError | undefined {
  const cycle = target === requester ? [target] : waits.findPath(target, requester);
  if (cycle === undefined) return undefined;
  const trail = [...chain.slice(0, -1), target];
  return new RedoError('ERR_CYCLE', `redo: "${target}": dependency cycle`, {
    details: [`chain: ${trail.join(' → ')}`, `cycle: ${[requester, ...cycle].join(' → ')}`],
    hint: 'remove one of these dependencies',
  });
}
