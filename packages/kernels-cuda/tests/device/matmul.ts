// Device bundle entry (node:test): the matmul checks. Built by tools/device/build-bundle.sh.
import { cases } from '../cases/matmul.js';
import { runGroup } from './node-runner.js';

runGroup('matmul', cases);
