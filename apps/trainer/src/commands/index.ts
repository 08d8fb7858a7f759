// Every subcommand of `grin`, in the order --help lists them.
// Test: cd apps/trainer && npx vitest run src/commands
import type { Command } from '../args.js';
import { benchCommand } from './bench.js';
import { checkRouterCommand } from './check-router.js';
import { dashboardCommand } from './dashboard.js';
import { evalCommand } from './eval.js';
import { generateCommand } from './generate.js';
import { logitsCommand } from './logits.js';
import { dpoCommand, sftCommand } from './post.js';
import { trainCommand } from './train.js';

export const commands: Command[] = [
  trainCommand,
  sftCommand,
  dpoCommand,
  generateCommand,
  logitsCommand,
  checkRouterCommand,
  evalCommand,
  benchCommand,
  dashboardCommand,
];
