// `grin check-router --reference FILE [--router NAME]`: replays a PyTorch router dump (recorded
// draws included) through one of our routers and prints the max absolute and relative error of
// each output; exits 1 past tolerance (1e-6 relative in f64, 1e-4 in f32). A research fork uses it
// to check its router against its own PyTorch implementation.
// Test: cd apps/trainer && npx vitest run src/commands/check-router
import { checkRouterAgainst, readReference, routerNames, toleranceFor } from '@grin-moe/router-sparsemixer';
import { CliError, type Command, parseFlags } from '../args.js';

export const checkRouterCommand: Command = {
  name: 'check-router',
  summary: 'replay a PyTorch router dump through our router and report the errors',
  usage: 'grin check-router --reference FILE.safetensors [--router NAME] [--json]',
  flags: {
    reference: {
      kind: 'string',
      help: 'router reference dump (scores, exp1, u1, exp2, u2, upstream_grad, multiplier, selected, grad_scores, eval_*)',
    },
    router: {
      kind: 'string',
      help: `router to check (${routerNames().join(', ')})`,
      default: 'sparsemixer-v2',
    },
    json: { kind: 'boolean', help: 'print the comparison as JSON' },
  },
  async run(argv) {
    const { flags, positional } = parseFlags(checkRouterCommand, argv);
    if (positional.length) throw new CliError(`check-router: unexpected argument '${positional[0]}'`);
    const path = flags.reference as string | undefined;
    if (!path) throw new CliError('check-router: --reference FILE is required');
    const result = checkRouterAgainst(readReference(path), flags.router as string);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ reference: path, router: flags.router, ...result })}\n`);
    } else {
      const tol = toleranceFor(result.dtype);
      process.stdout.write(
        `${path}: T=${result.tokens} E=${result.experts} ${result.dtype}, router ${flags.router}, tolerance ${tol} relative\n`,
      );
      for (const c of result.comparisons) {
        const detail =
          c.mismatches !== undefined
            ? `${c.mismatches} mismatched ids`
            : `max abs ${c.maxAbs.toExponential(3)}  max rel ${c.maxRel.toExponential(3)}`;
        process.stdout.write(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(16)} ${detail}\n`);
      }
      process.stdout.write(
        result.ok ? 'all outputs within tolerance\n' : 'outputs differ beyond tolerance\n',
      );
    }
    return result.ok ? 0 : 1;
  },
};
