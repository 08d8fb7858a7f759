// Device bundle entry (node:test): the optim checks. Built by tools/device/build-bundle.sh.
import { cases } from '../cases/optim.js';
import { cases as sideStream } from '../cases/side-stream.js';
import { runGroup } from './node-runner.js';

runGroup('optim', [...cases, ...sideStream]);
