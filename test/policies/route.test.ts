/**
 * Route end to end: the shipped pack (plus one budgeted tenant) in a real sidecar, called through
 * a real gRPC client; RecordUsage moves a tenant across its budget.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packCopy, startSidecar, type Sidecar } from "./harness.ts";

let sidecar: Sidecar;
beforeAll(async () => {
  const dir = await packCopy((config) => {
    config.route.budgets = { "budget-co": { usd: 10 }, "token-co": { tokens: 5000 } };
  });
  sidecar = await startSidecar(dir);
}, 60_000);
afterAll(async () => {
  await sidecar?.close();
});

const LOCAL_ONLY = [{ provider: "local", model: "qwen2.5-7b" }];
const LOCAL_WITH_CLOUD = [
  { provider: "local", model: "qwen2.5-7b" },
  { provider: "openai", model: "gpt-4o-mini" },
];
const OPENAI_FALLBACKS = [
  { provider: "anthropic", model: "claude-3-5-haiku" },
  { provider: "local", model: "llama3.1-8b" },
];

interface RouteCase {
  readonly name: string;
  readonly messages: string[];
  readonly classifications?: string[];
  readonly model?: string;
  readonly tenant?: string;
  readonly provider: string;
  readonly expectModel: string;
  readonly reason: string;
  readonly fallbacks: { provider: string; model: string }[];
}

const long = (n: number) => "x".repeat(n);

const CASES: RouteCase[] = [
  { name: "long prompt goes to the default provider", messages: [long(1500)], provider: "openai", expectModel: "gpt-4o-mini", reason: "default_provider", fallbacks: OPENAI_FALLBACKS },
  { name: "threshold: exactly 1000 chars stays local", messages: [long(1000)], provider: "local", expectModel: "llama3.1-8b", reason: "cost_under_threshold", fallbacks: LOCAL_WITH_CLOUD },
  { name: "threshold: 1001 chars goes to the default provider", messages: [long(1001)], provider: "openai", expectModel: "gpt-4o-mini", reason: "default_provider", fallbacks: OPENAI_FALLBACKS },
  { name: "threshold counts all messages together (600 + 401)", messages: [long(600), long(401)], provider: "openai", expectModel: "gpt-4o-mini", reason: "default_provider", fallbacks: OPENAI_FALLBACKS },
  { name: "threshold counts code points, not UTF-16 units", messages: ["😀".repeat(1000)], provider: "local", expectModel: "llama3.1-8b", reason: "cost_under_threshold", fallbacks: LOCAL_WITH_CLOUD },
  { name: "short prompt stays local", messages: ["hi"], provider: "local", expectModel: "llama3.1-8b", reason: "cost_under_threshold", fallbacks: LOCAL_WITH_CLOUD },
  { name: "keyword in the third message, mixed case", messages: ["You are helpful.", long(800), `Here is my SoCiAl SeCuRiTy number ${long(900)}`], provider: "local", expectModel: "llama3.1-8b", reason: "sensitivity_keyword", fallbacks: LOCAL_ONLY },
  { name: "keyword password upper case", messages: [`THE PASSWORD IS ${long(2000)}`], provider: "local", expectModel: "llama3.1-8b", reason: "sensitivity_keyword", fallbacks: LOCAL_ONLY },
  { name: "multi-word keyword", messages: [`attach the medical record ${long(2000)}`], provider: "local", expectModel: "llama3.1-8b", reason: "sensitivity_keyword", fallbacks: LOCAL_ONLY },
  { name: "keyword in a short prompt is still sensitivity", messages: ["my ssn"], provider: "local", expectModel: "llama3.1-8b", reason: "sensitivity_keyword", fallbacks: LOCAL_ONLY },
  { name: "sensitive classification", messages: [long(2000)], classifications: ["public", "pii"], provider: "local", expectModel: "llama3.1-8b", reason: "sensitive_classification", fallbacks: LOCAL_ONLY },
  { name: "sensitive classification ignores case", messages: [long(2000)], classifications: ["PHI"], provider: "local", expectModel: "llama3.1-8b", reason: "sensitive_classification", fallbacks: LOCAL_ONLY },
  { name: "non-sensitive classifications do not matter", messages: [long(2000)], classifications: ["public", "internal"], provider: "openai", expectModel: "gpt-4o-mini", reason: "default_provider", fallbacks: OPENAI_FALLBACKS },
  { name: "keyword wins over classification", messages: [`a secret ${long(2000)}`], classifications: ["pci"], provider: "local", expectModel: "llama3.1-8b", reason: "sensitivity_keyword", fallbacks: LOCAL_ONLY },
  { name: "requested cloud model kept", messages: [long(2000)], model: "gpt-4o", provider: "openai", expectModel: "gpt-4o", reason: "default_provider", fallbacks: OPENAI_FALLBACKS },
  { name: "unknown requested model replaced", messages: [long(2000)], model: "gpt-9", provider: "openai", expectModel: "gpt-4o-mini", reason: "default_provider", fallbacks: OPENAI_FALLBACKS },
  { name: "requested cloud model ignored when sensitive", messages: [`confidential ${long(2000)}`], model: "gpt-4o", provider: "local", expectModel: "llama3.1-8b", reason: "sensitivity_keyword", fallbacks: LOCAL_ONLY },
  { name: "requested local model kept", messages: ["hi"], model: "qwen2.5-7b", provider: "local", expectModel: "qwen2.5-7b", reason: "cost_under_threshold", fallbacks: LOCAL_WITH_CLOUD },
  { name: "tenant under budget with nothing recorded", messages: [long(2000)], tenant: "budget-co", provider: "openai", expectModel: "gpt-4o-mini", reason: "default_provider", fallbacks: OPENAI_FALLBACKS },
  { name: "keyword as a substring of a word still counts", messages: [`mysecretplan ${long(2000)}`], provider: "local", expectModel: "llama3.1-8b", reason: "sensitivity_keyword", fallbacks: LOCAL_ONLY },
  { name: "no keyword anywhere", messages: ["plain words", "more plain words", long(2000)], provider: "openai", expectModel: "gpt-4o-mini", reason: "default_provider", fallbacks: OPENAI_FALLBACKS },
];

async function route(c: Pick<RouteCase, "messages" | "classifications" | "model" | "tenant">) {
  return sidecar.call("Route", {
    tenantId: c.tenant ?? "acme",
    messages: c.messages.map((content, i) => ({ role: i === 0 && c.messages.length > 1 ? "system" : "user", content })),
    classifications: c.classifications ?? [],
    requestedModel: c.model ?? "",
  });
}

const plain = (fs: readonly { provider: string; model: string }[]) => fs.map((f) => ({ provider: f.provider, model: f.model }));

describe("Route through the sidecar", () => {
  it("has at least 20 table cases", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(20);
  });

  it.each(CASES)("$name", async (c) => {
    const res = await route(c);
    expect({ provider: res.provider, model: res.model, reasons: res.reasons, fallbacks: plain(res.fallbacks) }).toEqual({
      provider: c.provider,
      model: c.expectModel,
      reasons: [c.reason],
      fallbacks: c.fallbacks,
    });
  });

  it("fallbacks never include a cloud provider after a sensitivity decision", async () => {
    for (const c of CASES.filter((x) => x.reason.startsWith("sensitiv"))) {
      const res = await route(c);
      expect(res.provider).toBe("local");
      for (const f of res.fallbacks) expect(f.provider).toBe("local");
    }
  });

  it("a tenant crosses its budget once recorded usage is over the limit", async () => {
    const prompt = { messages: [long(2000)], tenant: "budget-co" };
    expect((await route(prompt)).provider).toBe("openai");

    const first = await sidecar.call("RecordUsage", { tenantId: "budget-co", unit: "usd", amount: 6 });
    expect(first.windowSpend).toBe(6);
    const resetsAt = new Date(first.windowResetsAt);
    expect(resetsAt.getTime() % 86_400_000).toBe(0); // next 00:00 UTC
    expect(resetsAt.getTime() - Date.now()).toBeGreaterThan(0);
    expect(resetsAt.getTime() - Date.now()).toBeLessThanOrEqual(86_400_000);
    expect((await route(prompt)).provider).toBe("openai");

    const second = await sidecar.call("RecordUsage", { tenantId: "budget-co", unit: "usd", amount: 4 });
    expect(second.windowSpend).toBe(10);
    // exactly at the limit is not over it
    expect((await route(prompt)).reasons).toEqual(["default_provider"]);

    const third = await sidecar.call("RecordUsage", { tenantId: "budget-co", unit: "usd", amount: 0.01 });
    expect(third.windowSpend).toBeCloseTo(10.01, 10);
    const over = await route(prompt);
    expect({ provider: over.provider, reasons: over.reasons, fallbacks: plain(over.fallbacks) }).toEqual({
      provider: "local",
      reasons: ["budget_exceeded"],
      fallbacks: LOCAL_ONLY,
    });
    // sensitivity still comes first for the same tenant
    expect((await route({ ...prompt, classifications: ["pii"] })).reasons).toEqual(["sensitive_classification"]);
    // other tenants and other units are untouched
    expect((await route({ messages: [long(2000)] })).provider).toBe("openai");
    await sidecar.call("RecordUsage", { tenantId: "token-co", unit: "usd", amount: 1_000_000 });
    expect((await route({ messages: [long(2000)], tenant: "token-co" })).provider).toBe("openai");
    await sidecar.call("RecordUsage", { tenantId: "token-co", unit: "tokens", amount: 5001 });
    expect((await route({ messages: [long(2000)], tenant: "token-co" })).reasons).toEqual(["budget_exceeded"]);
  });

  it.each([
    ["a negative amount", { amount: -1 }, "amount"],
    ["a non-finite amount", { amount: Number.POSITIVE_INFINITY }, "amount"],
    ["an empty unit", { unit: "" }, "unit"],
  ])("RecordUsage rejects %s with INVALID_ARGUMENT and records nothing", async (_name, change, field) => {
    const err = await sidecar
      .call("RecordUsage", { tenantId: "invalid-co", unit: "usd", amount: 1, ...change })
      .then(() => undefined, (e: { code: number; details: string }) => e);
    expect(err?.code).toBe(3); // INVALID_ARGUMENT
    expect(err?.details).toContain(field);
    expect((await sidecar.call("RecordUsage", { tenantId: "invalid-co", unit: "usd", amount: 0 })).windowSpend).toBe(0);
  });
});
