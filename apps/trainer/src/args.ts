// A small typed flag parser shared by every subcommand: --name value, --name=value, boolean
// switches, and positional words. Unknown flags and malformed values are errors that name the flag;
// a flag followed by another flag instead of its value is refused. Test: npx vitest run src/args.test.ts
export class CliError extends Error {}

export type FlagSpec =
  | { kind: 'string'; help: string; default?: string }
  | { kind: 'number'; help: string; default?: number; integer?: boolean; min?: number }
  | { kind: 'boolean'; help: string };

export interface Command {
  name: string;
  summary: string;
  usage: string;
  flags: Record<string, FlagSpec>;
  /** True when run() prints its own help for --help (commands with subcommands). */
  handlesHelp?: boolean;
  run(argv: string[]): Promise<number>;
}

/** A command's name, usage and flags without its action: what parsing and help need. */
export type CommandSpec = Omit<Command, 'run'>;

export type ParsedFlags = Record<string, string | number | boolean | undefined>;

export function parseFlags(
  command: CommandSpec,
  argv: string[],
): { flags: ParsedFlags; positional: string[] } {
  const flags: ParsedFlags = {};
  const positional: string[] = [];
  for (const [name, spec] of Object.entries(command.flags)) {
    if (spec.kind === 'boolean') flags[name] = false;
    else if (spec.default !== undefined) flags[name] = spec.default;
  }
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (!word.startsWith('--')) {
      positional.push(word);
      continue;
    }
    const eq = word.indexOf('=');
    const name = word.slice(2, eq === -1 ? undefined : eq);
    const spec = command.flags[name];
    if (!spec) {
      const valid = Object.keys(command.flags).map((f) => `--${f}`);
      throw new CliError(
        `${command.name}: unknown flag --${name}; valid flags: ${valid.join(', ') || '(none)'}`,
      );
    }
    if (spec.kind === 'boolean') {
      if (eq !== -1) throw new CliError(`${command.name}: --${name} is a switch and takes no value`);
      flags[name] = true;
      continue;
    }
    const value = eq !== -1 ? word.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new CliError(`${command.name}: --${name} needs a value`);
    // `--prompt --max-new-tokens 5` means a forgotten value, not the prompt '--max-new-tokens'.
    if (eq === -1 && value.startsWith('--'))
      throw new CliError(
        `${command.name}: --${name} needs a value, but the next word is the flag ${value}; write --${name}=${value} if that is the value`,
      );
    if (spec.kind === 'string') {
      flags[name] = value;
    } else {
      const n = Number(value);
      if (
        !Number.isFinite(n) ||
        (spec.integer && !Number.isInteger(n)) ||
        (spec.min !== undefined && n < spec.min)
      ) {
        const want = `${spec.integer ? 'an integer' : 'a number'}${spec.min !== undefined ? ` >= ${spec.min}` : ''}`;
        throw new CliError(`${command.name}: --${name} must be ${want}, got '${value}'`);
      }
      flags[name] = n;
    }
  }
  return { flags, positional };
}

export function renderHelp(command: CommandSpec): string {
  const rows = Object.entries(command.flags).map(([name, spec]) => {
    const value = spec.kind === 'boolean' ? '' : spec.kind === 'number' ? ' N' : ' VALUE';
    const def = spec.kind !== 'boolean' && spec.default !== undefined ? ` (default ${spec.default})` : '';
    return [`--${name}${value}`, `${spec.help}${def}`] as const;
  });
  const width = Math.max(0, ...rows.map(([f]) => f.length));
  const body = rows.map(([f, h]) => `  ${f.padEnd(width)}  ${h}`).join('\n');
  return `usage: ${command.usage}\n\n${command.summary}\n${rows.length ? `\nflags:\n${body}\n` : ''}`;
}
