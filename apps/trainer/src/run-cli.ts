// The `grin` command line as a function: dispatches to a subcommand and turns any failure into
// one or two lines and an exit code (errors.ts), so tests drive the real CLI in-process.
// Test: cd apps/trainer && npx vitest run src/cli-errors.test.ts
import { renderHelp } from './args.js';
import { commands } from './commands/index.js';
import { reportError } from './errors.js';

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(renderTopHelp());
    return name ? 0 : 1;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(
      `grin: unknown command '${name}'; valid commands: ${commands.map((c) => c.name).join(', ')}\n`,
    );
    return 2;
  }
  // Commands with subcommands (eval) render their own per-subcommand help.
  if ((rest.includes('--help') || rest.includes('-h')) && !command.handlesHelp) {
    process.stdout.write(renderHelp(command));
    return 0;
  }
  return await command.run(rest);
}

function renderTopHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `usage: grin <command> [flags]\n\ncommands:\n${lines.join('\n')}\n\nRun 'grin <command> --help' for the flags of one command.\n`;
}

/** Runs `grin ARGV`; returns the exit code, having written any error to `stderr`. */
export async function runCli(
  argv: string[],
  stderr: { write(text: string): unknown } = process.stderr,
): Promise<number> {
  try {
    return await main(argv);
  } catch (error) {
    const { exitCode, text } = reportError(error);
    stderr.write(text);
    return exitCode;
  }
}
