// The rendezvous Store (proto/rendezvous.proto): a key-value table served by rank 0 over gRPC.
// set/get/add/wait, each with a deadline; get and wait block until the keys appear. Clients
// present the run token; a PrefixStore gives each process group its own key space.
// Test: cd packages/parallel && npx vitest run src/store.test.ts
import * as grpc from '@grpc/grpc-js';
import { ParallelError } from './errors.js';
import { bind, channelOptions, createServer, grinProto, presentedToken, tokenMetadata } from './proto.js';

/** What every Store (remote or prefixed) offers. Timeouts in ms; values are bytes or strings. */
export interface Store {
  set(key: string, value: string | Uint8Array): Promise<void>;
  get(key: string, timeoutMs?: number): Promise<Buffer>;
  add(key: string, delta: number): Promise<number>;
  wait(keys: string[], timeoutMs?: number): Promise<void>;
}

export const DEFAULT_TIMEOUT_MS = 300_000;

interface Waiter {
  keys: string[];
  resolve: () => void;
  reject: (error: { code: grpc.status; details: string }) => void;
}

/** The server side, hosted by rank 0. */
export class StoreServer {
  private readonly table = new Map<string, Buffer>();
  private waiters: Waiter[] = [];
  private readonly server = createServer();
  port = 0;

  private constructor(private readonly token: string) {}

  static async listen(host: string, port: number, token: string): Promise<StoreServer> {
    const store = new StoreServer(token);
    const service = (grinProto().Store as grpc.ServiceClientConstructor).service;
    store.server.addService(service, {
      Set: store.unary((req: { key: string; value: Buffer }) => {
        store.put(req.key, Buffer.from(req.value));
        return {};
      }),
      Get: store.unary(async (req: { key: string; timeoutMs: number }) => {
        await store.until([req.key], req.timeoutMs);
        return { value: store.table.get(req.key)! };
      }),
      Add: store.unary((req: { key: string; delta: number }) => {
        const before = store.table.get(req.key);
        const value = (before ? Number(before.toString()) : 0) + Number(req.delta);
        store.put(req.key, Buffer.from(String(value)));
        return { value };
      }),
      Wait: store.unary(async (req: { keys: string[]; timeoutMs: number }) => {
        await store.until(req.keys, req.timeoutMs);
        return {};
      }),
    });
    try {
      store.port = await bind(store.server, host, port);
    } catch (error) {
      throw new ParallelError(`rendezvous Store (rank 0): ${(error as Error).message}`);
    }
    return store;
  }

  private put(key: string, value: Buffer): void {
    this.table.set(key, value);
    const ready = this.waiters.filter((w) => w.keys.every((k) => this.table.has(k)));
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }

  private until(keys: string[], timeoutMs: number): Promise<void> {
    if (keys.every((k) => this.table.has(k))) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        keys,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(
        () => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          const missing = keys.filter((k) => !this.table.has(k));
          reject({
            code: grpc.status.DEADLINE_EXCEEDED,
            details: `keys never set within ${timeoutMs} ms: ${missing.join(', ')}`,
          });
        },
        Math.min(timeoutMs, 2 ** 31 - 1),
      );
      this.waiters.push(waiter);
    });
  }

  private unary<Req, Res>(handler: (req: Req) => Res | Promise<Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const presented = presentedToken(call.metadata);
      if (presented !== this.token) {
        callback({
          code: grpc.status.UNAUTHENTICATED,
          details: `run token mismatch (${presented ? 'a different GRIN_RUN_TOKEN' : 'no token'} from ${call.getPeer()})`,
        });
        return;
      }
      Promise.resolve()
        .then(() => handler(call.request))
        .then(
          (reply) => callback(null, reply),
          (error: grpc.ServiceError | Error) =>
            callback('code' in error ? error : { code: grpc.status.INTERNAL, details: error.message }),
        );
    };
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      for (const w of this.waiters)
        w.reject({ code: grpc.status.UNAVAILABLE, details: 'the Store is shutting down' });
      this.waiters = [];
      this.server.tryShutdown(() => resolve());
      setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2000).unref();
    });
  }
}

type Callback<T> = (error: grpc.ServiceError | null, reply: T) => void;
type StoreStub = grpc.Client & {
  Set(r: object, m: grpc.Metadata, o: grpc.CallOptions, cb: Callback<object>): void;
  Get(r: object, m: grpc.Metadata, o: grpc.CallOptions, cb: Callback<{ value: Buffer }>): void;
  Add(r: object, m: grpc.Metadata, o: grpc.CallOptions, cb: Callback<{ value: number }>): void;
  Wait(r: object, m: grpc.Metadata, o: grpc.CallOptions, cb: Callback<object>): void;
};

/** A client of rank 0's Store at host:port. */
export class StoreClient implements Store {
  private readonly stub: StoreStub;
  private readonly address: string;

  constructor(
    host: string,
    port: number,
    private readonly token: string,
    private readonly defaultTimeoutMs = DEFAULT_TIMEOUT_MS,
  ) {
    this.address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    const Client = grinProto().Store as grpc.ServiceClientConstructor;
    this.stub = new Client(
      this.address,
      grpc.credentials.createInsecure(),
      channelOptions,
    ) as unknown as StoreStub;
  }

  /** Resolves once the Store answers; a Store that never appears is an error after timeoutMs. */
  connect(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.stub.waitForReady(Date.now() + timeoutMs, (error) => {
        if (!error) return resolve();
        reject(
          new ParallelError(
            `no rendezvous Store at ${this.address} after ${timeoutMs} ms: rank 0 hosts it; check that rank 0 started and that MASTER_ADDR/MASTER_PORT point at it`,
          ),
        );
      });
    });
  }

  private call<T>(
    method: 'Set' | 'Get' | 'Add' | 'Wait',
    request: object,
    timeoutMs: number,
    what: string,
  ): Promise<T> {
    // The gRPC deadline is a little longer than the server-side wait, so the server's message wins.
    const deadline = timeoutMs >= 2 ** 31 - 10_000 ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs + 5000;
    return new Promise((resolve, reject) => {
      const stub = this.stub as unknown as Record<string, (...a: unknown[]) => void>;
      stub[method]!.call(
        this.stub,
        request,
        tokenMetadata(this.token),
        { deadline },
        (error: grpc.ServiceError | null, reply: T) => {
          if (!error) return resolve(reply);
          const why =
            error.code === grpc.status.UNAUTHENTICATED
              ? `refused: ${error.details} (every rank needs the same GRIN_RUN_TOKEN)`
              : error.code === grpc.status.UNAVAILABLE
                ? `Store at ${this.address} unreachable (${error.details}); rank 0, which hosts it, may have exited`
                : error.details;
          reject(new ParallelError(`store ${what}: ${why}`));
        },
      );
    });
  }

  async set(key: string, value: string | Uint8Array): Promise<void> {
    await this.call('Set', { key, value: Buffer.from(value) }, this.defaultTimeoutMs, `set '${key}'`);
  }
  async get(key: string, timeoutMs = this.defaultTimeoutMs): Promise<Buffer> {
    const reply = await this.call<{ value: Buffer }>('Get', { key, timeoutMs }, timeoutMs, `get '${key}'`);
    return reply.value;
  }
  async add(key: string, delta: number): Promise<number> {
    const reply = await this.call<{ value: number }>(
      'Add',
      { key, delta },
      this.defaultTimeoutMs,
      `add '${key}'`,
    );
    return Number(reply.value);
  }
  async wait(keys: string[], timeoutMs = this.defaultTimeoutMs): Promise<void> {
    await this.call('Wait', { keys, timeoutMs }, timeoutMs, `wait [${keys.join(', ')}]`);
  }
  close(): void {
    this.stub.close();
  }
}

/** The same Store with every key under `prefix/`: one per process group. */
export class PrefixStore implements Store {
  constructor(
    readonly prefix: string,
    private readonly inner: Store,
  ) {}
  private k(key: string): string {
    return `${this.prefix}/${key}`;
  }
  set(key: string, value: string | Uint8Array) {
    return this.inner.set(this.k(key), value);
  }
  get(key: string, timeoutMs?: number) {
    return this.inner.get(this.k(key), timeoutMs);
  }
  add(key: string, delta: number) {
    return this.inner.add(this.k(key), delta);
  }
  wait(keys: string[], timeoutMs?: number) {
    return this.inner.wait(
      keys.map((key) => this.k(key)),
      timeoutMs,
    );
  }
}
