// Prints the median of each hyperfine result in a folder as a redo-ts vs make table.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
const median = (name) => {
  const times = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')).results[0].times.slice().sort((a, b) => a - b);
  const middle = Math.floor(times.length / 2);
  return times.length % 2 === 1 ? times[middle] : (times[middle - 1] + times[middle]) / 2;
};
const rows = [
  ['full build', 'full'],
  ['no-op rebuild', 'noop'],
  ['touch one source', 'touch'],
  ['change one source', 'change'],
  ['full build -j2', 'full-j2'],
];
console.log(`${'scenario'.padEnd(20)}${'redo-ts'.padStart(10)}${'make'.padStart(10)}${'ratio'.padStart(8)}`);
for (const [label, key] of rows) {
  const redo = median(`redo-${key}`);
  const make = median(`make-${key}`);
  console.log(`${label.padEnd(20)}${`${redo.toFixed(3)} s`.padStart(10)}${`${make.toFixed(3)} s`.padStart(10)}${(redo / make).toFixed(2).padStart(8)}`);
}
