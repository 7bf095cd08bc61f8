/**
 * Debounced file-system watching of a bundle source.
 *
 * - A file (bundle `.tar.gz`): the parent directory is watched and events are filtered by name,
 *   because an atomic rename replaces the inode a file watch would be attached to.
 * - A directory (bundle directory or `.rego` sources), including the Kubernetes ConfigMap layout
 *   (`dir/..data -> ..2026_11_22_...`, swapped by renaming a new symlink over `..data`): the
 *   directory is watched recursively where the platform allows; the loader re-resolves `..data`
 *   on every reload, so the watcher only has to notice that something changed.
 */
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";
import type { Logger } from "pino";

export interface SourceWatcher {
  close(): void;
}

export interface WatchOptions {
  readonly path: string;
  readonly isFile: boolean;
  readonly debounceMs: number;
  readonly onChange: () => void;
  readonly logger: Logger;
}

/** Longest debounce, in quiet periods, from the first event of a burst to the reload. */
const MAX_WAIT_FACTOR = 10;

/** Delay before re-establishing a watch that failed (e.g. its directory was replaced). */
const REWATCH_MS = 1000;

export function watchSource(options: WatchOptions): SourceWatcher {
  const { path, isFile, debounceMs, onChange, logger } = options;
  const target = isFile ? dirname(path) : path;
  const name = basename(path);
  let timer: NodeJS.Timeout | undefined;
  let rewatch: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  let closed = false;

  // Debounce, but never postpone a reload by more than MAX_WAIT_FACTOR quiet periods: a writer
  // that never stops must not keep the new bundle out forever.
  let firstEventAt = 0;
  const fire = (): void => {
    const now = Date.now();
    if (timer) clearTimeout(timer);
    else firstEventAt = now;
    const wait = Math.max(0, Math.min(debounceMs, firstEventAt + debounceMs * MAX_WAIT_FACTOR - now));
    timer = setTimeout(() => {
      timer = undefined;
      if (!closed) onChange();
    }, wait);
    timer.unref();
  };

  const open = (): void => {
    if (closed) return;
    const listener = (_event: string, filename: string | Buffer | null): void => {
      if (isFile && filename !== null && filename.toString() !== name) return;
      fire();
    };
    try {
      try {
        watcher = watch(target, { recursive: !isFile, persistent: false }, listener);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ERR_FEATURE_UNAVAILABLE_ON_PLATFORM") throw err;
        watcher = watch(target, { persistent: false }, listener);
      }
    } catch (err) {
      logger.warn({ err, path: target }, "cannot watch bundle source; retrying");
      rewatch = setTimeout(open, REWATCH_MS);
      rewatch.unref();
      return;
    }
    watcher.on("error", (err) => {
      // The watched directory went away or was replaced: watch again, and reload in case the
      // replacement carries a new bundle.
      logger.warn({ err, path: target }, "bundle watch failed; re-establishing");
      watcher?.close();
      watcher = undefined;
      rewatch = setTimeout(() => {
        open();
        fire();
      }, REWATCH_MS);
      rewatch.unref();
    });
  };
  open();

  return {
    close(): void {
      closed = true;
      if (timer) clearTimeout(timer);
      if (rewatch) clearTimeout(rewatch);
      watcher?.close();
    },
  };
}
