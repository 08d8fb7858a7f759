// Device bundle entry (node:test): the fused attention checks. Built by tools/device/build-bundle.sh.
import { cases } from '../cases/attention.js';
import { runGroup } from './node-runner.js';

runGroup('attention', cases);
