// Device bundle entry (node:test): the reduce checks. Built by tools/device/build-bundle.sh.
import { cases } from '../cases/reduce.js';
import { runGroup } from './node-runner.js';

runGroup('reduce', cases);
