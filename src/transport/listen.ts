/**
 * Listening helpers of the gRPC port: a promise around `listen`, and the stale Unix socket file
 * check (a file left by a crashed run is removed; one a live server answers on is refused).
 */
import { rm, stat } from "node:fs/promises";
import net from "node:net";

export function listenOn(server: net.Server, opts: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once("error", onError);
    server.listen(opts, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

/**
 * A socket file left by a crashed run would make listen() fail with EADDRINUSE: remove it, but
 * only when nothing answers on it (a live server keeps its socket).
 */
export async function removeStaleSocket(path: string): Promise<void> {
  try {
    const st = await stat(path);
    if (!st.isSocket()) throw new Error(`ARBITER_GRPC_LISTEN: ${path} exists and is not a socket`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
  if (live) throw new Error(`ARBITER_GRPC_LISTEN: unix:${path} is in use by a running server`);
  await rm(path, { force: true });
}
