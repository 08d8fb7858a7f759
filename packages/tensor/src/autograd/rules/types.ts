// The shape of the rule table: one entry per op of op-types.ts, a rule or 'nondifferentiable'.
import type { OpAttrs, OpName } from '../../core/op-types.js';
import type { GradRule } from '../node.js';

export type RuleTable = { [K in OpName]: GradRule<OpAttrs[K]> | 'nondifferentiable' };
export type RulesFor<K extends OpName> = Pick<RuleTable, K>;
