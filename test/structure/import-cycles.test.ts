/**
 * No import cycle in src/ (issue 16): a cycle makes module initialization order matter (a
 * `const` read before its module ran is a TDZ error at start-up) and ties layers that should
 * point one way. Type-only imports count too: they show the same tangle to a reader.
 * The dependency graph comes from dpdm (TypeScript-aware, resolves `.ts` specifiers).
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseCircular, parseDependencyTree } from "dpdm";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => join(e.parentPath, e.name))
    .sort(); // readdir order is the file system's: dpdm reports a cycle from the first file it meets
}

/** The import cycles among `files`, each as the paths (relative to `context`) around it. */
async function cycles(files: string[], context: string): Promise<string[][]> {
  const tree = await parseDependencyTree(files, {
    context,
    // Only the tree itself: node_modules and gen/ are leaves.
    include: new RegExp(`^${context.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/src/`),
    transform: false,
    skipDynamicImports: false,
  });
  return parseCircular(tree);
}

describe("import cycles", () => {
  it("src/ has none", async () => {
    const files = tsFiles(join(root, "src"));
    expect(files.length).toBeGreaterThan(100);
    expect(await cycles(files, root.replace(/\/$/, ""))).toEqual([]);
  }, 60_000);

  it("the check finds a cycle, a type-only one included", async () => {
    const dir = mkdtempSync(join(tmpdir(), "arbiter-cycles-"));
    try {
      const src = join(dir, "src");
      mkdirSync(src);
      writeFileSync(
        join(src, "a.ts"),
        'import { b } from "./b.ts";\nexport type A = string;\nexport const a = (): string => b;\n',
      );
      writeFileSync(join(src, "b.ts"), 'import type { A } from "./a.ts";\nexport const b: A = "b";\n');
      writeFileSync(join(src, "c.ts"), 'import { a } from "./a.ts";\nexport const c = a();\n');
      expect(await cycles(tsFiles(src), dir)).toEqual([["src/a.ts", "src/b.ts"]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
