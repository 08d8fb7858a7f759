// The `grin` command line: one subcommand per job, each with its own --help.
// Run from the workspace root with `pnpm grin <command> [flags]`; `pnpm train` runs `grin train`.

import { CliError, renderHelp } from './args.js';
import { commands } from './commands/index.js';

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

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof CliError) {
      process.stderr.write(`grin: ${error.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(
        `grin: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exitCode = 1;
    }
  },
);
