/** Command-line entry point: argv to command; the only place that sets the exit code. */
process.stderr.write('redo-ts: the command line is not built yet\n');
process.exitCode = 2;
