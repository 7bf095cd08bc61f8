import { generateWasm } from "../../src/compiler/codegen.ts";
import opa from "@open-policy-agent/opa-wasm";
import type { Policy } from "../../src/compiler/ir.ts";
const policy: Policy = {
  hostBuiltins: [],
  plans: [{ name: "test/allow", func: "allow" }],
  funcs: [{
    name: "allow", params: 2, locals: 6, result: 5, memoize: true,
    body: [
      { op: "const", target: 2, json: '"user"' },
      { op: "dot", target: 3, source: 0, key: 2 },
      { op: "const", target: 4, json: '"alice"' },
      { op: "builtin", target: 5, name: "equal", args: [3, 4] },
    ],
  }],
};
let t = performance.now();
const wasm = generateWasm(policy);
console.log("gen ms", performance.now() - t, wasm.length);
const p = await opa.loadPolicy(wasm);
console.log(JSON.stringify(p.evaluate({ user: "alice" })), JSON.stringify(p.evaluate({ user: "bob" })), JSON.stringify(p.evaluate({})));
