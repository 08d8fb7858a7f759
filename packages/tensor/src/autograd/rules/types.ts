// The shape of the rule table: one entry per op of op-types.ts, a rule or 'nondifferentiable'.
import type { CoreOpName, OpAttrs } from '../../core/op-types.js';
import type { GradRule } from '../node.js';

export type RuleTable = { [K in CoreOpName]: GradRule<OpAttrs[K]> | 'nondifferentiable' };
export type RulesFor<K extends CoreOpName> = Pick<RuleTable, K>;
