// @grin-moe/hub/testing: the loopback Hub the tests of this package and of the CLI run against.
// Test: cd packages/hub && npx vitest run src
export {
  type FakeHub,
  type FakeHubRequest,
  type FakeRepo,
  safetensorsBytes,
  startFakeHub,
} from './fake-hub.js';
