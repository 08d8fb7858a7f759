// How `grin` reports a failure: one or two lines naming what and where, exit 2 for usage errors
// (CliError, an unusable --out) and 1 for runtime errors, and a stack trace only with GRIN_DEBUG=1. cli.ts uses it for
// errors from a command and for any error that escapes later (a timer, a stream).
// Test: cd apps/trainer && npx vitest run src/errors.test.ts
import { CliError } from './args.js';
import { OutputPathError } from './output-path.js';

/** Lines past this are summarised; a checkpoint mismatch lists its first problems, not hundreds. */
const MAX_LINES = 8;

export interface ErrorReport {
  exitCode: 1 | 2;
  text: string;
}

function isErrno(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string';
}

/** The message of an error, made to say where when the error itself does not. */
function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error instanceof RangeError && /call stack size/.test(error.message))
    return 'internal error: stack overflow (a deeply nested input?); GRIN_DEBUG=1 shows where';
  if (isErrno(error) && error.syscall && !error.path && !/\//.test(error.message))
    return `${error.message} (no file name was given by the system call; GRIN_DEBUG=1 shows where)`;
  return error.message || error.name;
}

export function reportError(error: unknown, env: NodeJS.ProcessEnv = process.env): ErrorReport {
  // An unusable --out is a usage mistake like a bad flag.
  const exitCode = error instanceof CliError || error instanceof OutputPathError ? 2 : 1;
  const lines = messageOf(error).split('\n');
  if (lines.length > MAX_LINES) {
    const more = lines.length - MAX_LINES;
    lines.splice(MAX_LINES, more, `  ... ${more} more line${more === 1 ? '' : 's'}`);
  }
  let text = `grin: ${lines.join('\n')}\n`;
  if (env.GRIN_DEBUG === '1' && error instanceof Error && error.stack) text += `${error.stack}\n`;
  return { exitCode, text };
}
