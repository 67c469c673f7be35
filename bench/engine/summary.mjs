// Prints each hyperfine result in a folder as a redo-ts vs make table: median wall
// time, and mean CPU time (user + system, all processes), which a busy machine
// disturbs less than wall time.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
const load = (name) => JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')).results[0];
const median = (values) => {
  const sorted = values.slice().sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};
const rows = [
  ['full build', 'full'],
  ['no-op rebuild', 'noop'],
  ['touch one source', 'touch'],
  ['change one source', 'change'],
  ['full build -j2', 'full-j2'],
];
const seconds = (value) => `${value.toFixed(3)} s`.padStart(10);
console.log(`${'scenario'.padEnd(20)}${'redo-ts'.padStart(10)}${'make'.padStart(10)}${'ratio'.padStart(7)}   cpu: ${'redo-ts'.padStart(8)}${'make'.padStart(10)}${'ratio'.padStart(7)}`);
for (const [label, key] of rows) {
  const redo = load(`redo-${key}`);
  const make = load(`make-${key}`);
  const wallRedo = median(redo.times);
  const wallMake = median(make.times);
  const cpuRedo = redo.user + redo.system;
  const cpuMake = make.user + make.system;
  console.log(
    `${label.padEnd(20)}${seconds(wallRedo)}${seconds(wallMake)}${(wallRedo / wallMake).toFixed(2).padStart(7)}        ${seconds(cpuRedo)}${seconds(cpuMake)}${(cpuRedo / cpuMake).toFixed(2).padStart(7)}`,
  );
}

// The floor of any Node command, measured in the same run: what a no-op costs beyond it.
const node = load('node-noop');
const redoNoop = load('redo-noop');
const makeFull = load('make-full');
const redoFull = load('redo-full');
console.log(
  `\nnode -e 0: ${seconds(median(node.times)).trim()} wall, ${seconds(node.user + node.system).trim()} cpu; ` +
    `redo-ts no-op beyond it: ${((median(redoNoop.times) - median(node.times)) * 1000).toFixed(0)} ms wall, ` +
    `${((redoNoop.user + redoNoop.system - node.user - node.system) * 1000).toFixed(0)} ms cpu`,
);
console.log(`clean build: redo-ts / make -r = ${(median(redoFull.times) / median(makeFull.times)).toFixed(2)} wall, ${((redoFull.user + redoFull.system) / (makeFull.user + makeFull.system)).toFixed(2)} cpu`);
console.log(`NODE_EXTRA_CA_CERTS ${process.env.NODE_EXTRA_CA_CERTS ? 'set' : 'unset'}`);
