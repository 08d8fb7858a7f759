// Device bundle entry (node:test): the elementwise checks. Built by tools/device/build-bundle.sh.
import { cases } from '../cases/elementwise.js';
import { runGroup } from './node-runner.js';

runGroup('elementwise', cases);
