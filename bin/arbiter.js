#!/usr/bin/env node
// Entry point for the `arbiter` command. The sources are TypeScript; tsx compiles them on load,
// so `npx arbiter` works straight after `npm ci` with no separate build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli.ts");
process.exitCode = await main(process.argv.slice(2));
