// The one error class of @grin-moe/hub: its message names the repository or file, what went
// wrong and what to do, ready to print without a stack trace.
// Test: cd packages/hub && npx vitest run src
export class HubError extends Error {
  override name = 'HubError';
}
