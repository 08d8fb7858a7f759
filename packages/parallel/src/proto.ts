// Loads the checked-in .proto files (packages/parallel/proto) with @grpc/proto-loader. The path is
// resolved from this module, which sits one level under the package root both in src/ and dist/.
// Test: cd packages/parallel && npx vitest run src/store.test.ts
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

export const TOKEN_HEADER = 'grin-run-token';

export function protoPath(name: 'rendezvous' | 'collective'): string {
  return fileURLToPath(new URL(`../proto/${name}.proto`, import.meta.url));
}

let cached: grpc.GrpcObject | null = null;

/** The grin.parallel package: Store (with client constructor) and Peer service definitions. */
export function grinProto(): grpc.GrpcObject {
  if (!cached) {
    const definition = loadSync([protoPath('rendezvous'), protoPath('collective')], {
      longs: Number,
      defaults: true,
      keepCase: false,
    });
    cached = (grpc.loadPackageDefinition(definition).grin as grpc.GrpcObject).parallel as grpc.GrpcObject;
  }
  return cached;
}

export function tokenMetadata(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set(TOKEN_HEADER, token);
  return metadata;
}

/** The token a call presented, or '' when none. */
export function presentedToken(metadata: grpc.Metadata): string {
  const value = metadata.get(TOKEN_HEADER)[0];
  return typeof value === 'string' ? value : (value?.toString() ?? '');
}

/**
 * Raised HTTP/2 flow-control window (both directions) and message limits for large Store values;
 * tensors travel on the socket data plane (socket-transport.ts), not over gRPC.
 */
export const WINDOW_BYTES = 64 * 1024 * 1024;
/**
 * Keepalive finds a peer whose host vanished (a dead process on a live host resets its connections
 * at once). A PING is answered only when the peer's event loop runs, and a rank's loop is blocked
 * for as long as a synchronous forward, backward or validation takes: seconds to minutes on a CPU.
 * With a 10 s timeout, rank 0's final validation under load dropped every connection ("Connection
 * dropped"), so the timeout is the Store's default deadline instead.
 */
export const KEEPALIVE_TIME_MS = 60_000;
export const KEEPALIVE_TIMEOUT_MS = 300_000;
export const channelOptions: grpc.ChannelOptions = {
  'grpc-node.flow_control_window': WINDOW_BYTES,
  'grpc.max_send_message_length': -1,
  'grpc.max_receive_message_length': -1,
  'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
  'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
  'grpc.keepalive_permit_without_calls': 1,
};

/**
 * A server whose HTTP/2 sessions advertise the raised window: grpc-js passes no window option to
 * its server sessions, so the settings are added to its session options.
 */
export function createServer(): grpc.Server {
  const server = new grpc.Server({
    'grpc.max_send_message_length': -1,
    'grpc.max_receive_message_length': -1,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
    'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
  });
  const internals = server as unknown as { commonServerOptions: { settings?: Record<string, number> } };
  internals.commonServerOptions.settings = {
    ...internals.commonServerOptions.settings,
    initialWindowSize: WINDOW_BYTES,
  };
  return server;
}

export function bind(server: grpc.Server, host: string, port: number): Promise<number> {
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, bound) => {
      if (error) reject(new Error(`cannot listen on ${address}: ${error.message}`));
      else resolve(bound);
    });
  });
}
