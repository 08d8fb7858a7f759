// The `grin` command line: one subcommand per job, each with its own --help.
// Run from the workspace root with `pnpm grin <command> [flags]`; `pnpm train` runs `grin train`.
// Failures print one or two lines (errors.ts): exit 2 for usage, 1 otherwise; GRIN_DEBUG=1 adds traces.
// Test: cd apps/trainer && npx vitest run src/cli-errors
import { reportError } from './errors.js';
import { runCli } from './run-cli.js';

function fail(error: unknown): void {
  const { exitCode, text } = reportError(error);
  process.stderr.write(text);
  process.exitCode = exitCode;
}

// An error from a timer or a stream after the command returned still ends the process the same way.
process.on('uncaughtException', (error) => {
  fail(error);
  process.exit();
});
process.on('unhandledRejection', (error) => {
  fail(error);
  process.exit();
});

runCli(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
}, fail);
