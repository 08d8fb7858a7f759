// Device bundle entry (node:test): the nn checks. Built by tools/device/build-bundle.sh.
import { cases } from '../cases/nn.js';
import { runGroup } from './node-runner.js';

runGroup('nn', cases);
