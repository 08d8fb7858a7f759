// Device bundle entry (node:test): the layout checks. Built by tools/device/build-bundle.sh.
import { cases } from '../cases/layout.js';
import { runGroup } from './node-runner.js';

runGroup('layout', cases);
