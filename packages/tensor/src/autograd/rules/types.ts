// The shape of the rule table: one entry per op of op-types.ts, a rule or 'nondifferentiable'.
// Test: cd packages/tensor && npx vitest run src/core src/ops src/testing (every gradient check runs through it)
import type { CoreOpName, OpAttrs } from '../../core/op-types.js';
import type { GradRule } from '../node.js';

export type RuleTable = { [K in CoreOpName]: GradRule<OpAttrs[K]> | 'nondifferentiable' };
export type RulesFor<K extends CoreOpName> = Pick<RuleTable, K>;
