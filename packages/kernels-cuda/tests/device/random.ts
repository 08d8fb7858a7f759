// Device bundle entry (node:test): the random-draw checks. Built by tools/device/build-bundle.sh.
import { cases } from '../cases/random.js';
import { runGroup } from './node-runner.js';

runGroup('random', cases);
