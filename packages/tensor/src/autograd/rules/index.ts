// The one gradient table: every op of op-types.ts maps to a rule or 'nondifferentiable'.
// A new op without an entry here fails the type check (RuleTable is exhaustive).
// Test: cd packages/tensor && npx vitest run src/core src/ops src/testing (every gradient check runs through it)
import { installRules } from '../record.js';
import { coreRules } from './core.js';
import { moeRules } from './moe.js';
import { nnRules } from './nn.js';
import type { RuleTable } from './types.js';

export const gradRules: RuleTable = { ...coreRules, ...nnRules, ...moeRules };

installRules(gradRules as never);
