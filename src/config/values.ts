/**
 * The value forms of the `ARBITER_*` settings (listen addresses, bounded integers, enumerations)
 * and the one error every bad setting raises; `config.ts` reads the variables with them.
 */
import { isIP } from "node:net";

export class ConfigError extends Error {
  override name = "ConfigError";
}

export type ListenTarget =
  | { readonly kind: "tcp"; readonly host: string; readonly port: number }
  | { readonly kind: "unix"; readonly path: string };

/** Parses `host:port`, `[v6]:port` or `unix:/absolute/or/relative/path`. */
export function parseListen(name: string, value: string): ListenTarget {
  const expected = `${name}: expected host:port, [ipv6]:port or unix:/path, got "${value}"`;
  if (value.startsWith("unix:")) {
    const path = value.slice(5);
    if (path === "") throw new ConfigError(expected);
    return { kind: "unix", path };
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  if (!m) throw new ConfigError(expected);
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(`${name}: port must be 0-65535, got "${value}"`);
  if (m[1] !== undefined && isIP(host) !== 6) throw new ConfigError(expected);
  return { kind: "tcp", host, port };
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  return isIP(host) === 4 && host.startsWith("127.");
}

export function int(name: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new ConfigError(`${name}: expected an integer from ${min} to ${max}, got "${value}"`);
  }
  return Number(value);
}

export function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(`${name}: expected one of ${allowed.join(", ")}, got "${value}"`);
  }
  return value as T;
}

/** `host:port` / `unix:/path` form of a listen target. */
export function formatListen(t: ListenTarget): string {
  if (t.kind === "unix") return `unix:${t.path}`;
  return t.host.includes(":") ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}
