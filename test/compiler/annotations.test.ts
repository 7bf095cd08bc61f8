/**
 * METADATA annotations and rego.metadata.rule() / rego.metadata.chain() (annotations.ts) through
 * the real compiler and runtime: scopes, ordering, OPA's parsing of authors and resources, and
 * the blocks OPA refuses.
 */
import { describe, expect, it } from "vitest";
import { compile, RegoCompileError } from "../../src/compiler/index.ts";
import { loadCompiledPolicy } from "../../src/engine/load-policy.ts";

async function evaluate(modules: string[], entrypoint: string): Promise<unknown> {
  const sources = modules.map((text, i) => ({ path: `m${i}.rego`, text }));
  const policy = await loadCompiledPolicy(compile(sources, { entrypoints: [entrypoint] }).wasm);
  const rs = policy.evaluate({}, entrypoint) as Array<{ result: unknown }>;
  return rs[0]?.result;
}

function buildError(modules: string[]): string {
  try {
    compile(
      modules.map((text, i) => ({ path: `m${i}.rego`, text })),
      { entrypoints: ["a/p"] },
    );
  } catch (e) {
    if (e instanceof RegoCompileError) return e.message;
    throw e;
  }
  return "built";
}

/** A YAML "billion laughs": each level ten aliases of the one before. */
function aliasBomb(): string {
  const lines = ["#   l0: &l0 [x, x, x, x, x, x, x, x, x, x]"];
  for (let i = 1; i < 12; i++)
    lines.push(
      `#   l${i}: &l${i} [${Array(10)
        .fill(`*l${i - 1}`)
        .join(", ")}]`,
    );
  return lines.join("\n");
}

describe("rego.metadata", () => {
  it("chains rule, document, package and subpackages annotations from the rule outwards", async () => {
    const root = `# METADATA
# scope: subpackages
# organizations: [Acme]
package a`;
    const mod = `# METADATA
# description: package a.b
package a.b

# METADATA
# scope: document
# description: every p

# METADATA
# title: the first p
# authors:
# - Jane Doe <jane@example.com>
# - name: Bob
# related_resources:
# - https://example.com/p
# - ref: https://example.com/q
#   description: " more "
# custom:
#   severity: 3
#   tags: [x, y]
p := rego.metadata.chain() if true

q := {"rule": rego.metadata.rule(), "chain": rego.metadata.chain()}
`;
    expect(await evaluate([root, mod], "a/b/p")).toEqual([
      {
        path: ["a", "b", "p"],
        annotations: {
          scope: "rule",
          title: "the first p",
          authors: [{ name: "Jane Doe", email: "jane@example.com" }, { name: "Bob" }],
          related_resources: [{ ref: "https://example.com/p" }, { ref: "https://example.com/q", description: "more" }],
          custom: { severity: 3, tags: ["x", "y"] },
        },
      },
      { path: ["a", "b", "p"], annotations: { scope: "document", description: "every p" } },
      { path: ["a", "b"], annotations: { scope: "package", description: "package a.b" } },
      { path: ["a"], annotations: { scope: "subpackages", organizations: ["Acme"] } },
    ]);
    expect(await evaluate([root, mod], "a/b/q")).toEqual({
      rule: {},
      chain: [
        { path: ["a", "b", "q"] },
        { path: ["a", "b"], annotations: { scope: "package", description: "package a.b" } },
        { path: ["a"], annotations: { scope: "subpackages", organizations: ["Acme"] } },
      ],
    });
  });

  it("gives each clause its own block, the closest first, and an else clause none (as OPA)", async () => {
    const mod = `package a
# METADATA
# title: far

# METADATA
# title: near
p := [rego.metadata.rule(), count(rego.metadata.chain())] if false else := rego.metadata.rule()

# METADATA
# title: second
p := rego.metadata.rule().title if input.x

r := [rego.metadata.rule(), rego.metadata.chain()]
`;
    expect(await evaluate([mod], "a/p")).toEqual({});
    expect(await evaluate([mod], "a/r")).toEqual([{}, [{ path: ["a", "r"] }]]);
    const sources = [{ path: "m.rego", text: mod.replace("if false else", "if true else") }];
    const policy = await loadCompiledPolicy(compile(sources, { entrypoints: ["a/p"] }).wasm);
    expect(policy.evaluate({}, "a/p")).toEqual([{ result: [{ scope: "rule", title: "near" }, 2] }]);
  });

  it("reads YAML as go-yaml v3: a scalar where a string is wanted is its text, yes is a string", async () => {
    const mod = `package a
# METADATA
# title: 1.50
# description: yes
# custom:
#   on: yes
#   n: ~
#   __proto__: {polluted: true}
p := rego.metadata.rule()
`;
    expect(await evaluate([mod], "a/p")).toEqual({
      scope: "rule",
      title: "1.50",
      description: "yes",
      custom: JSON.parse('{"on": "yes", "n": null, "__proto__": {"polluted": true}}'),
    });
  });

  it("uses the rule's path: ref heads and constant keys", async () => {
    const mod = `package a
# METADATA
# title: t
x.y.z := rego.metadata.chain()[0].path

w["k"] := rego.metadata.chain()[0].path
`;
    expect(await evaluate([mod], "a/x/y/z")).toEqual(["a", "x", "y", "z"]);
    expect(await evaluate([mod], "a/w/k")).toEqual(["a", "w", "k"]);
  });

  it("ignores comments that are not a block: not in column 1, or not starting with METADATA", async () => {
    const mod = `package a
  # METADATA
  # title: indented
# metadata
# title: lower case
p := rego.metadata.rule()
`;
    expect(await evaluate([mod], "a/p")).toEqual({});
  });

  it("fails the build where OPA refuses the block, and where Arbiter cannot be exact", () => {
    const cases: [string[], string][] = [
      [
        ["# METADATA\n# scope: rule\npackage a\np := 1"],
        "annotation scope 'rule' must be applied to rule (have package)",
      ],
      [
        ["package a\n# METADATA\n# scope: package\np := 1"],
        "annotation scope 'package' must be applied to package (have rule)",
      ],
      [["package a\n# METADATA\n# scope: everything\np := 1"], "invalid annotation scope 'everything'"],
      [
        ["package a\n# METADATA\n# scope: document\n# entrypoint: true\np := 1"],
        "annotation entrypoint applied to non-rule",
      ],
      [["package a\n# METADATA\n# title: [unclosed\np := 1"], "m0.rego:2:1: yaml:"],
      [["package a\n# METADATA\n\np := 1"], "expected METADATA block, found whitespace"],
      [["package a\n# METADATA\n# authors: [' ']\np := 1"], "author is an empty string"],
      [
        ["# METADATA\n# description: one\npackage a\np := 1", "# METADATA\n# description: two\npackage a"],
        "package annotation redeclared: m0.rego:1",
      ],
      [["package a\n# METADATA\n# custom: {n: 99999999999999999999}\np := 1"], "cannot be held exactly"],
      [[`package a\n# METADATA\n# custom:\n${aliasBomb()}\np := 1`], "m0.rego:2:1: yaml: Excessive alias count"],
      [
        ["package a\n# METADATA\n# schemas:\n# - input: schema.x\np := rego.metadata.rule()"],
        "annotations with schemas are not reproduced by Arbiter",
      ],
    ];
    for (const [modules, message] of cases) expect(buildError(modules), message).toContain(message);
    // A block that reads fine and no call that needs schemas: builds.
    expect(buildError(["package a\n# METADATA\n# schemas:\n# - input: schema.x\np := 1"])).toBe("built");
  });
});
