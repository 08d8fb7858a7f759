// Device bundle entry (node:test): the indexing checks. Built by tools/device/build-bundle.sh.
import { cases } from '../cases/indexing.js';
import { runGroup } from './node-runner.js';

runGroup('indexing', cases);
