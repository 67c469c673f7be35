// Prints each hyperfine result in a folder as a redo-ts vs make table: median wall
// time, and mean CPU time (user + system, all processes), which a busy machine
// disturbs less than wall time; then the no-op and the clean build beside make -r and
// node -e 0, with and without NODE_EXTRA_CA_CERTS when both were measured.
import { existsSync, readFileSync } from 'node:fs';
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
  if (!existsSync(join(dir, `redo-${key}.json`))) continue;
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

// The no-op and the clean build beside make -r and node -e 0 (the floor of any Node
// command), all measured in the same run; again without NODE_EXTRA_CA_CERTS when the
// run measured that too.
const ms = (value) => `${(value * 1000).toFixed(0)} ms`;
const cpu = (result) => result.user + result.system;
const printFloor = (suffix, label) => {
  const node = load(`node-noop${suffix}`);
  const redoNoop = load(`redo-noop${suffix}`);
  const redoFull = load(`redo-full${suffix}`);
  const makeNoop = load('make-noop');
  const makeFull = load('make-full');
  console.log(`\n${label}`);
  console.log(`  node -e 0:      ${ms(median(node.times)).padStart(8)} wall ${ms(cpu(node)).padStart(8)} cpu`);
  console.log(
    `  no-op:   redo-ts ${ms(median(redoNoop.times)).padStart(8)} wall ${ms(cpu(redoNoop)).padStart(8)} cpu; make -r ${ms(median(makeNoop.times))} wall ${ms(cpu(makeNoop))} cpu; ` +
      `redo-ts beyond node -e 0: ${ms(median(redoNoop.times) - median(node.times))} wall, ${ms(cpu(redoNoop) - cpu(node))} cpu (target 20 ms)`,
  );
  console.log(
    `  clean:   redo-ts ${ms(median(redoFull.times)).padStart(8)} wall ${ms(cpu(redoFull)).padStart(8)} cpu; make -r ${ms(median(makeFull.times))} wall ${ms(cpu(makeFull))} cpu; ` +
      `redo-ts / make -r = ${(median(redoFull.times) / median(makeFull.times)).toFixed(2)} wall, ${(cpu(redoFull) / cpu(makeFull)).toFixed(2)} cpu (target 1.5)`,
  );
};
printFloor('', `NODE_EXTRA_CA_CERTS ${process.env.NODE_EXTRA_CA_CERTS ? 'set' : 'unset'}`);
if (existsSync(join(dir, 'redo-noop-noca.json'))) printFloor('-noca', 'without NODE_EXTRA_CA_CERTS (env -u)');
