/**
 * print() output (host-print.ts): OPA's builtinPrint lines, and the builtin the sidecar keeps for
 * a policy that calls internal.print itself (true, printing nothing), through a compiled policy.
 */
import { describe, expect, it } from "vitest";
import { MAX_PRINT_LINES, printLines } from "../../src/compiler/host-print.ts";
import { RegoSet } from "../../src/compiler/host-typed-json.ts";
import { regoFailures } from "./host-opa-helpers.ts";

describe("internal.print", () => {
  it("prints one line per combination of operand values; an undefined operand as <undefined>", () => {
    const set = (...items: ConstructorParameters<typeof RegoSet>[0]) => new RegoSet(items);
    expect(printLines([set("x is"), set(1n, 2n)])).toEqual(["x is 1", "x is 2"]);
    expect(printLines([set("a"), set(), set(set("s")), set([null, true]), set({ k: "v" })])).toEqual([
      'a <undefined> {"s"} [null, true] {"k": "v"}',
    ]);
    expect(printLines([])).toEqual([""]);
    const many = set(...Array.from({ length: 100 }, (_, i) => BigInt(i)));
    expect(printLines([many, many, many])).toHaveLength(MAX_PRINT_LINES);
  });

  it("is true and prints nothing in a policy built for the sidecar, by Arbiter or by opa build", async () => {
    expect(await regoFailures([['internal.print([{"a"}, set()])', true]])).toEqual([]);
    const { builtinImpl } = await import("../../src/engine/policy-instance.ts");
    const { hostBuiltins } = await import("../../src/compiler/index.ts");
    // opa build passes plain values (a set as an array), not Arbiter's typed text.
    expect(
      builtinImpl("internal.print", hostBuiltins as Record<string, (...a: unknown[]) => unknown>)!([["a"], []]),
    ).toBe(true);
  });
});
