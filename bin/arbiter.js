#!/usr/bin/env node
// Entry point for the `arbiter` command: the compiled JavaScript in dist/ (`npm run build`, run by
// `prepare` on `npm ci`/`npm install`), so the sidecar and the image start without a TypeScript
// loader.
//
// In a source checkout (src/ beside dist/) where a file under src/ or gen/ is newer than the last
// build, or dist/ was never built, the sources run through tsx instead (a dev dependency): tests
// and a developer's `node bin/arbiter.js` after an edit never run a stale build. The installed
// package and the image hold no src/, so they always run dist/.
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const stampFile = join(root, "dist", ".build-stamp");

/** True when a source newer than the build stamp exists (or there is no build at all). */
function sourcesNewer() {
  if (!existsSync(join(root, "src", "cli.ts"))) return false;
  if (!existsSync(stampFile)) return true;
  const built = statSync(stampFile).mtimeMs;
  for (const top of ["src", "gen"]) {
    for (const e of readdirSync(join(root, top), { recursive: true, withFileTypes: true })) {
      if (e.isFile() && statSync(join(e.parentPath, e.name)).mtimeMs > built) return true;
    }
  }
  return false;
}

let cli;
if (sourcesNewer()) {
  let register;
  try {
    ({ register } = await import("tsx/esm/api"));
  } catch {
    process.stderr.write(
      existsSync(stampFile)
        ? "arbiter: warning: src/ changed since the last build and tsx is not installed; running the stale dist/ (npm run build)\n"
        : "arbiter: dist/ is not built and tsx is not installed: run `npm run build` (needs the dev dependencies)\n",
    );
    if (!existsSync(stampFile)) process.exit(1);
  }
  if (register) {
    register();
    cli = await import(pathToFileURL(join(root, "src", "cli.ts")).href);
  }
}
cli ??= await import("../dist/src/cli.js");
process.exitCode = await cli.main(process.argv.slice(2));
