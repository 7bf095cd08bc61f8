/**
 * Hostile policy modules for the evaluation deadline (issue #12):
 *
 * - `loopingModuleWasm()`: a hand-written OPA-ABI 1.2 module (no compiler involved, as a bundle
 *   from any tool could be) that exports the four Arbiter entrypoints, answers the smoke
 *   evaluation, and loops forever in `opa_eval` when the input JSON is `LOOP_INPUT_BYTES` long or
 *   longer.
 * - `HEAVY_REGO`: honest Rego doing huge work (a comprehension over two large `numbers.range`s)
 *   when `input.context.heavy` is true.
 */
import { Bytes } from "../../src/compiler/wasm-module.ts";

/** Inputs this long (JSON bytes) or longer make the looping module spin. */
export const LOOP_INPUT_BYTES = 2048;

/** The Decide result the looping module gives for shorter inputs. */
export const LOOPING_MODULE_DECIDE = {
  allow: true,
  reasons: ["handwritten_module"],
  risk_tier: 0,
  requires_approval: false,
  obligations: {},
};

const I32 = 0x7f;

function funcType(params: number, results: number): Uint8Array {
  const b = new Bytes().byte(0x60).u32(params);
  for (let i = 0; i < params; i++) b.byte(I32);
  b.u32(results);
  for (let i = 0; i < results; i++) b.byte(I32);
  return b.view().slice();
}

function section(out: Bytes, id: number, body: Bytes): void {
  out.byte(id).sized(body);
}

/**
 * Values are their JSON text, null-terminated, in linear memory: `opa_json_parse` and
 * `opa_json_dump` are identities and `opa_malloc` is a bump allocator that writes the terminator.
 */
export function loopingModuleWasm(): Uint8Array {
  const statics: [string, string][] = [
    ["builtins", "{}"],
    [
      "entrypoints",
      JSON.stringify({ "arbiter/decide": 0, "arbiter/route": 1, "arbiter/guard_memory": 2, "arbiter/finalize": 3 }),
    ],
    ["decide", JSON.stringify([{ result: LOOPING_MODULE_DECIDE }])],
    ["empty", "[]"],
  ];
  const addr: Record<string, number> = {};
  const data = new Bytes();
  const base = 16;
  for (const [name, text] of statics) {
    addr[name] = base + data.length;
    data.bytes(new TextEncoder().encode(text)).byte(0);
  }
  const types = [funcType(0, 1), funcType(1, 1), funcType(2, 1), funcType(1, 0), funcType(7, 1)];
  // name, type, locals, code (without the final end)
  const fns: [string, number, Bytes][] = [
    // opa_malloc(len): p = heap; mem[p + len] = 0; heap = p + len + 1; p
    [
      "opa_malloc",
      1,
      new Bytes()
        .byte(0x23)
        .u32(0)
        .byte(0x23)
        .u32(0)
        .byte(0x20)
        .u32(0)
        .byte(0x6a)
        .byte(0x41)
        .s32(0)
        .byte(0x3a)
        .u32(0)
        .u32(0)
        .byte(0x23)
        .u32(0)
        .byte(0x20)
        .u32(0)
        .byte(0x6a)
        .byte(0x41)
        .s32(1)
        .byte(0x6a)
        .byte(0x24)
        .u32(0),
    ],
    ["opa_json_parse", 2, new Bytes().byte(0x20).u32(0)],
    ["opa_json_dump", 1, new Bytes().byte(0x20).u32(0)],
    ["opa_heap_ptr_get", 0, new Bytes().byte(0x23).u32(0)],
    ["opa_heap_ptr_set", 3, new Bytes().byte(0x20).u32(0).byte(0x24).u32(0)],
    ["builtins", 0, new Bytes().byte(0x41).s32(addr.builtins!)],
    ["entrypoints", 0, new Bytes().byte(0x41).s32(addr.entrypoints!)],
    // opa_eval(_, entrypoint, data, input, inputLen, heapPtr, format)
    [
      "opa_eval",
      4,
      new Bytes()
        .byte(0x20)
        .u32(4)
        .byte(0x41)
        .s32(LOOP_INPUT_BYTES)
        .byte(0x4f) // i32.ge_u
        .byte(0x04)
        .byte(0x40)
        .byte(0x03)
        .byte(0x40)
        .byte(0x0c)
        .u32(0)
        .byte(0x0b)
        .byte(0x0b) // if loop br 0 end end
        .byte(0x20)
        .u32(5)
        .byte(0x24)
        .u32(0)
        .byte(0x20)
        .u32(1)
        .byte(0x45)
        .byte(0x04)
        .byte(I32)
        .byte(0x41)
        .s32(addr.decide!)
        .byte(0x05)
        .byte(0x41)
        .s32(addr.empty!)
        .byte(0x0b),
    ],
  ];
  const out = new Bytes().bytes(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  const typeSec = new Bytes().u32(types.length);
  for (const t of types) typeSec.bytes(t);
  section(out, 1, typeSec);
  section(out, 2, new Bytes().u32(1).name("env").name("memory").byte(0x02).byte(0x00).u32(1));
  const funcSec = new Bytes().u32(fns.length);
  for (const [, type] of fns) funcSec.u32(type);
  section(out, 3, funcSec);
  // g0: heap pointer (after the statics), g1/g2: ABI version 1.2
  section(
    out,
    6,
    new Bytes()
      .u32(3)
      .byte(I32)
      .byte(1)
      .byte(0x41)
      .s32(4096)
      .byte(0x0b)
      .byte(I32)
      .byte(0)
      .byte(0x41)
      .s32(1)
      .byte(0x0b)
      .byte(I32)
      .byte(0)
      .byte(0x41)
      .s32(2)
      .byte(0x0b),
  );
  const exportSec = new Bytes().u32(fns.length + 2);
  fns.forEach(([name], i) => exportSec.name(name).byte(0).u32(i));
  exportSec.name("opa_wasm_abi_version").byte(3).u32(1);
  exportSec.name("opa_wasm_abi_minor_version").byte(3).u32(2);
  section(out, 7, exportSec);
  const codeSec = new Bytes().u32(fns.length);
  for (const [, , code] of fns) codeSec.sized(new Bytes().u32(0).bytes(code.view()).byte(0x0b));
  section(out, 10, codeSec);
  section(out, 11, new Bytes().u32(1).byte(0).byte(0x41).s32(base).byte(0x0b).sized(data));
  return out.view().slice();
}

/**
 * Honest Rego doing huge work: for `input.context.heavy == true`, a comprehension over
 * 100,000 x 100,000 pairs (about 10^10 steps). Otherwise the fixture's usual answers.
 */
export const HEAVY_REGO = `package arbiter.decide
import rego.v1

default allow := false
allow if input.action == "read"

reasons contains "heavy_done" if {
  input.context.heavy == true
  count([x | some x in numbers.range(1, 100000); some y in numbers.range(1, 100000); x == y + 100000]) > 0
}
reasons contains "light" if not input.context.heavy
`;
