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
