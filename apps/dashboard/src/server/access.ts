// Who may talk to the dashboard. The Host header (and Origin, when a browser sends one) must name
// the bound address, so a DNS-rebinding page cannot reach a loopback dashboard; a non-loopback bind
// must have a token (Authorization: Bearer, or ?token= once, remembered in an HttpOnly cookie).
// Test: cd apps/dashboard && npx vitest run src/server/hardening.test.ts
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hostname, networkInterfaces } from 'node:os';

export const TOKEN_COOKIE = 'grin_dashboard_token';

export interface AccessPolicy {
  /** Host names (no port) that requests may address this server by. */
  hosts: Set<string>;
  token: string | null;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

const isWildcard = (host: string) => ['0.0.0.0', '::', '[::]', ''].includes(host);

/** The names the bound address answers to: loopback names, or the bound address (every interface for a wildcard). */
export function accessPolicy(host: string, token: string | null): AccessPolicy {
  const hosts = new Set(['localhost', '127.0.0.1', '::1']);
  hosts.add(host.replace(/^\[|\]$/g, '').toLowerCase());
  if (isWildcard(host)) {
    hosts.add(hostname().toLowerCase());
    for (const list of Object.values(networkInterfaces()))
      for (const address of list ?? []) hosts.add(address.address.toLowerCase());
  }
  return { hosts, token };
}

/** The host name of a Host header or an Origin URL, without port or brackets. */
function nameOf(value: string): string | null {
  try {
    return new URL(value.includes('://') ? value : `http://${value}`).hostname
      .replace(/^\[|\]$/g, '')
      .toLowerCase();
  } catch {
    return null;
  }
}

function sameToken(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookieToken(req: IncomingMessage): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === TOKEN_COOKIE) return decodeURIComponent(rest.join('='));
  }
  return null;
}

/** null when the request may proceed; else the status and message to refuse it with. */
export function checkAccess(
  req: IncomingMessage,
  res: ServerResponse,
  query: URLSearchParams,
  policy: AccessPolicy,
): { status: number; message: string } | null {
  const host = req.headers.host;
  const name = host ? nameOf(host) : null;
  if (!name || !policy.hosts.has(name))
    return {
      status: 421,
      message: `Host '${host ?? ''}' is not an address of this dashboard (it answers to ${[...policy.hosts].slice(0, 4).join(', ')}...)`,
    };
  const origin = req.headers.origin;
  if (origin !== undefined) {
    const from = nameOf(origin);
    if (!from || !policy.hosts.has(from))
      return { status: 403, message: `Origin '${origin}' may not read this dashboard` };
  }
  if (policy.token === null) return null;
  const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  const fromQuery = query.get('token');
  if (fromQuery !== null && sameToken(fromQuery, policy.token)) {
    res.setHeader(
      'set-cookie',
      `${TOKEN_COOKIE}=${encodeURIComponent(policy.token)}; HttpOnly; SameSite=Strict; Path=/`,
    );
    return null;
  }
  for (const given of [bearer, cookieToken(req)])
    if (given !== undefined && given !== null && sameToken(given, policy.token)) return null;
  return {
    status: 401,
    message:
      'this dashboard needs its token: open the URL that grin dashboard printed (it ends in ?token=...)',
  };
}
