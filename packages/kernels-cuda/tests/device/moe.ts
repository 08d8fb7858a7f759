// Device bundle entry (node:test): the dropless MoE op checks. Built by tools/device/build-bundle.sh.
import { cases } from '../cases/moe.js';
import { runGroup } from './node-runner.js';

runGroup('moe', cases);
