#!/usr/bin/env node
// Copies a Docker build context with the rules of its .dockerignore, so .ci/docker-steps.sh
// builds from exactly the files `docker build -f deploy/Dockerfile .` would send.
//
// usage: node deploy/context.mjs SRC_DIR DEST_DIR   (prints the number of files copied)
//
// Rules as Docker applies them: patterns are relative to the context root (a leading "/" is
// ignored), "*" and "?" stay within one path segment, "**" spans any number of segments, a
// pattern that matches a directory matches everything below it, "!" re-includes, and the last
// matching pattern decides.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, existsSync, statSync, chmodSync } from "node:fs";
import { dirname, join } from "node:path";

export function parseDockerignore(text) {
  const rules = [];
  for (const raw of text.split("\n")) {
    let line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const negate = line.startsWith("!");
    if (negate) line = line.slice(1).trim();
    line = line.replace(/^\/+/, "").replace(/\/+$/, "");
    if (line === "") continue;
    rules.push({ negate, pattern: line, regex: toRegex(line) });
  }
  return rules;
}

function toRegex(pattern) {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*" && pattern[i + 1] === "*") {
      // "**/" matches zero or more whole segments; a trailing "**" matches the rest.
      if (pattern[i + 2] === "/") {
        re += "(?:.*/)?";
        i += 2;
      } else {
        re += ".*";
        i += 1;
      }
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** True when the slash-separated relative path is excluded by the rules. */
export function isExcluded(rules, path) {
  const parents = [];
  const parts = path.split("/");
  for (let i = 1; i <= parts.length; i++) parents.push(parts.slice(0, i).join("/"));
  let excluded = false;
  for (const rule of rules) {
    if (parents.some((p) => rule.regex.test(p))) excluded = !rule.negate;
  }
  return excluded;
}

export function copyContext(src, dest) {
  const ignoreFile = join(src, ".dockerignore");
  const rules = existsSync(ignoreFile) ? parseDockerignore(readFileSync(ignoreFile, "utf8")) : [];
  const exceptions = rules.filter((r) => r.negate).map((r) => r.pattern);
  let copied = 0;
  const walk = (rel) => {
    for (const entry of readdirSync(join(src, rel), { withFileTypes: true })) {
      const path = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (entry.name === ".git") continue;
      if (entry.isDirectory()) {
        // Skip an excluded directory unless an exception could re-include something below it.
        const mayReinclude = exceptions.some(
          (p) => p.startsWith(`${path}/`) || p.startsWith("**") || p.startsWith("*"),
        );
        if (isExcluded(rules, path) && !mayReinclude) continue;
        walk(path);
      } else if (entry.isFile() && !isExcluded(rules, path)) {
        const to = join(dest, path);
        mkdirSync(dirname(to), { recursive: true });
        copyFileSync(join(src, path), to);
        chmodSync(to, statSync(join(src, path)).mode & 0o777);
        copied++;
      }
    }
  };
  walk("");
  return copied;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [src, dest] = process.argv.slice(2);
  if (!src || !dest) {
    process.stderr.write("usage: node deploy/context.mjs SRC_DIR DEST_DIR\n");
    process.exitCode = 2;
  } else {
    mkdirSync(dest, { recursive: true });
    process.stdout.write(`${copyContext(src, dest)}\n`);
  }
}
