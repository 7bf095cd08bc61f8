/**
 * `arbiter build`, `arbiter eval` and `arbiter test` run as the real command (`bin/arbiter.js`)
 * in a temporary directory: exit codes, stdout and stderr.
 */
import { spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readBundle, unpackBundle } from "../../src/compiler/index.ts";
import { loadCompiledPolicy } from "../../src/engine/load-policy.ts";
import { verifyBundleSignature } from "../../src/engine/bundle-signature.ts";

const BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "arbiter.js");
const V0_FIXTURE = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "v0-policy");
let dir: string;

function arbiter(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 50_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function write(path: string, text: string): void {
  const p = join(dir, path);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, text);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "arbiter-cli-"));
  write(
    "policy/arbiter/decide/decide.rego",
    `package arbiter.decide

default allow := false

allow if {
	some role in input.roles
	"read" in data.roles[role]
}

reasons contains "no_roles" if count(input.roles) == 0
`,
  );
  write("policy/roles/data.json", '{"viewer": ["read"], "admin": ["read", "write"]}');
  write(
    "policy/arbiter/decide/decide_test.rego",
    `package arbiter.decide_test

import data.arbiter.decide

test_roles_loaded if data.roles.admin[1] == "write"

test_no_reasons_without_input if count(decide.reasons) == 0
`,
  );
  write("input.json", '{"roles": ["viewer"]}');
  write("extra.json", '{"roles": {"viewer": ["list"]}}');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("arbiter build + eval", () => {
  it("builds a bundle and evaluates an entrypoint, with -d data merged over the bundle's", async () => {
    const built = await arbiter(["build", "-o", "out/bundle.tar.gz", "--revision", "rev-7", "policy"]);
    expect(built.stderr).toBe("");
    expect(built.stdout).toBe("wrote out/bundle.tar.gz (revision rev-7; entrypoints: arbiter/decide)\n");
    expect(built.code).toBe(0);

    const ev = await arbiter(["eval", "-b", "out/bundle.tar.gz", "-e", "arbiter/decide", "-i", "input.json"]);
    expect(ev.stderr).toBe("");
    expect(ev.code).toBe(0);
    expect(ev.stdout).toBe(`${JSON.stringify([{ result: { allow: true, reasons: [] } }], null, 2)}\n`);

    const withData = await arbiter([
      "eval",
      "-b",
      "out/bundle.tar.gz",
      "-e",
      "arbiter/decide",
      "-i",
      "input.json",
      "-d",
      "extra.json",
    ]);
    expect(withData.stderr).toBe("");
    expect(withData.code).toBe(0);
    expect(JSON.parse(withData.stdout)).toEqual([{ result: { allow: false, reasons: [] } }]);

    const missing = await arbiter(["eval", "-b", "out/bundle.tar.gz", "-e", "arbiter/route"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(
      'arbiter eval: entrypoint "arbiter/route" is not in the bundle (it has: arbiter/decide)\n',
    );
  });

  it("--strict-builtin-errors: a failing builtin is an error instead of undefined (build and eval)", async () => {
    write("strict/arbiter/decide/p.rego", "package arbiter.decide\n\nn := to_number(input.s)\n");
    write("strict-input.json", '{"s": "not a number"}');
    const built = await arbiter(["build", "-e", "arbiter/decide/n", "-o", "strict.tar.gz", "strict"]);
    expect(built.code).toBe(0);
    const lenient = await arbiter(["eval", "-b", "strict.tar.gz", "-e", "arbiter/decide/n", "-i", "strict-input.json"]);
    expect(lenient.code).toBe(0);
    expect(JSON.parse(lenient.stdout)).toEqual([]);
    const strict = await arbiter([
      "eval",
      "--strict-builtin-errors",
      "-b",
      "strict.tar.gz",
      "-e",
      "arbiter/decide/n",
      "-i",
      "strict-input.json",
    ]);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toBe(
      "arbiter eval: to_number: builtin error (strict builtin errors): the arguments are of the wrong type or out of range\n",
    );
    const strictBuilt = await arbiter([
      "build",
      "--strict-builtin-errors",
      "-e",
      "arbiter/decide/n",
      "-o",
      "strict2.tar.gz",
      "strict",
    ]);
    expect(strictBuilt.code).toBe(0);
    const ev = await arbiter(["eval", "-b", "strict2.tar.gz", "-e", "arbiter/decide/n", "-i", "strict-input.json"]);
    expect(ev.code).toBe(1);
    expect(ev.stderr).toContain("to_number: builtin error (strict builtin errors)");
    const bad = await arbiter(["eval", "--strict-builtin-errors=yes", "-b", "strict.tar.gz", "-e", "arbiter/decide/n"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe("arbiter eval: flag --strict-builtin-errors takes no value\n");
  });

  it("fails the build on a compile error, naming file, line and column", async () => {
    write("bad/p.rego", "package arbiter.decide\n\nallow if {\n\tcount(input.x) == 1 with foo as 2\n}\n");
    const r = await arbiter(["build", "-o", "bad.tar.gz", "bad"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("bad/p.rego:4:27: with keyword target must reference existing input, data, or a function\n");
  });
});

describe("arbiter test", () => {
  it("passes when every test rule is true", async () => {
    const r = await arbiter(["test", "policy"]);
    expect(r.stdout).toBe("2 passed, 0 failed\n");
    expect(r.code).toBe(0);
  });

  it("prints each failure and exits 2 (as opa test)", async () => {
    write("failing/p.rego", "package t\n\nv := 2\n");
    write("failing/p_test.rego", "package t\n\ntest_ok if v == 2\n\ntest_wrong if v == 3\n\ntest_not_bool := 7\n");
    const r = await arbiter(["test", "failing"]);
    expect(r.stdout).toBe(
      [
        "FAIL failing/p_test.rego:5: data.t.test_wrong",
        "FAIL failing/p_test.rego:7: data.t.test_not_bool",
        "1 passed, 2 failed",
        "",
      ].join("\n"),
    );
    expect(r.code).toBe(2);
  });

  it("shows print() output under a failing test, and under every test with --verbose (as opa test)", async () => {
    write(
      "printing/p_test.rego",
      [
        "package t",
        "",
        'allow if input.user == "alice"',
        "",
        "test_ok if {",
        '  print("checking", {"b", "a"}, [1, {"k": null}], input.missing)',
        '  allow with input as {"user": "alice"}',
        "}",
        "",
        "test_bad if {",
        "  some x in [1, 2]",
        '  print("x is", x)',
        '  allow with input as {"user": "bob"}',
        "}",
        "",
      ].join("\n"),
    );
    const quiet = await arbiter(["test", "printing"]);
    expect(quiet.stdout).toBe(
      ["FAIL printing/p_test.rego:10: data.t.test_bad", "  x is 1", "  x is 2", "1 passed, 1 failed", ""].join("\n"),
    );
    const verbose = await arbiter(["test", "--verbose", "printing"]);
    expect(verbose.stdout).toBe(
      [
        "PASS printing/p_test.rego:5: data.t.test_ok",
        '  checking {"a", "b"} [1, {"k": null}] <undefined>',
        "FAIL printing/p_test.rego:10: data.t.test_bad",
        "  x is 1",
        "  x is 2",
        "1 passed, 1 failed",
        "",
      ].join("\n"),
    );
  });

  it("reports evaluation errors as ERROR and exits 2", async () => {
    write("erroring/p_test.rego", "package t\n\nx := 1 if true\nx := 2 if true\n\ntest_conflict if x == 1\n");
    write("erroring/q_test.rego", "package u\n\ntest_fine if true\n");
    const r = await arbiter(["test", "erroring"]);
    expect(r.stdout).toBe(
      [
        "ERROR erroring/p_test.rego:6: data.t.test_conflict: complete rules must not produce multiple outputs",
        "1 passed, 1 failed",
        "",
      ].join("\n"),
    );
    expect(r.code).toBe(2);
  });

  it("runs OPA-style tests that mock input and data with `with`", async () => {
    write(
      "mocks/authz.rego",
      "package authz\n\ndefault allow := false\n\nallow if {\n\tsome role in input.user.roles\n\tinput.action in data.permissions[role]\n}\n\nroles := input.user.roles\n",
    );
    write("mocks/data.json", '{"permissions": {"viewer": ["read"]}}');
    write(
      "mocks/authz_test.rego",
      [
        "package authz_test",
        "",
        "import data.authz",
        "",
        'test_viewer_reads if authz.allow with input as {"user": {"roles": ["viewer"]}, "action": "read"}',
        "",
        'test_viewer_cannot_write if not authz.allow with input as {"user": {"roles": ["viewer"]}, "action": "write"}',
        "",
        "test_editor_via_data_mock if {",
        '\tauthz.allow with input as {"user": {"roles": ["editor"]}, "action": "write"} with data.permissions as {"editor": ["write"]}',
        "}",
        "",
        "test_input_path_mock if {",
        '\tauthz.roles == ["admin"] with input.user.roles as ["admin"]',
        '\tcount(authz.roles) == 0 with input.user as {"roles": []}',
        "}",
        "",
        'test_mock_is_scoped if {\n\tauthz.allow with input as {"user": {"roles": ["viewer"]}, "action": "read"}\n\tnot authz.allow\n}',
        "",
      ].join("\n"),
    );
    const r = await arbiter(["test", "mocks"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("5 passed, 0 failed\n");
    expect(r.code).toBe(0);
  });

  it("--coverage prints OPA's JSON report: lines reached, lines not reached, per file and in total", async () => {
    write(
      "cov/p.rego",
      [
        "package p", // 1
        "", // 2
        "default allow := false", // 3
        "", // 4
        "allow if {", // 5
        '\tinput.role == "admin"', // 6
        "\tinput.ok", // 7
        "}", // 8
        "", // 9
        "label := x if {", // 10
        "\tx := upper(input.name)", // 11
        "}", // 12
        "", // 13
        'never if input.role == "nobody"', // 14
        "", // 15
        "names := [n |", // 16
        "\tsome n in input.names", // 17
        "]", // 18
        "",
      ].join("\n"),
    );
    write(
      "cov/p_test.rego",
      'package p\n\ntest_admin if allow with input as {"role": "admin", "ok": true}\n\ntest_viewer if not allow with input as {"role": "viewer"}\n',
    );
    const r = await arbiter(["test", "cov", "--coverage"]);
    expect(r.stderr).toBe("2 passed, 0 failed\n");
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    // Reached: the default (3), the allow head (5, its body succeeded for the admin) and both of
    // its expressions (6, 7). Never reached: label (10, 11), never (14) and names with the
    // expression inside its comprehension (16, 17): no test asks for them.
    expect(report.files["cov/p.rego"]).toEqual({
      covered: [
        { start: { row: 3 }, end: { row: 3 } },
        { start: { row: 5 }, end: { row: 7 } },
      ],
      not_covered: [
        { start: { row: 10 }, end: { row: 11 } },
        { start: { row: 14 }, end: { row: 14 } },
        { start: { row: 16 }, end: { row: 17 } },
      ],
      covered_lines: 4,
      not_covered_lines: 5,
      coverage: 44.44,
    });
    expect(report.files["cov/p_test.rego"]).toMatchObject({ covered_lines: 2, not_covered_lines: 0, coverage: 100 });
    expect(report).toMatchObject({ covered_lines: 6, not_covered_lines: 5, coverage: 54.55 });

    const low = await arbiter(["test", "cov", "--coverage", "--threshold", "60"]);
    expect(low.code).toBe(2);
    expect(low.stderr).toBe("2 passed, 0 failed\nCode coverage threshold not met: got 54.55 instead of 60\n");
    expect((await arbiter(["test", "cov", "--coverage", "--threshold", "50"])).code).toBe(0);
    const bad = await arbiter(["test", "cov", "--threshold", "60"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("--threshold needs --coverage");
  });

  it("runs OPA-style tests that mock functions and builtins (http.send) with `with`", async () => {
    write(
      "fmocks/svc.rego",
      [
        "package svc",
        "",
        'allow if "admin" in http.send({"method": "GET", "url": "https://ids/roles", "body": input}).body.roles',
        "",
        "fresh if time.now_ns() - input.issued_ns < limit(input.kind)",
        "",
        "limit(_) := 10",
        "",
      ].join("\n"),
    );
    write(
      "fmocks/svc_test.rego",
      [
        "package svc_test",
        "",
        "import data.svc",
        "",
        'admin_resp(req) := {"body": {"roles": ["admin"]}} if req.body.name == "alice"',
        "",
        'admin_resp(req) := {"body": {"roles": []}} if req.body.name != "alice"',
        "",
        'test_alice if svc.allow with http.send as admin_resp with input.name as "alice"',
        "",
        'test_bob if not svc.allow with http.send as admin_resp with input.name as "bob"',
        "",
        'test_fresh if svc.fresh with time.now_ns as 105 with input as {"issued_ns": 100, "kind": "x"}',
        "",
        'test_limit_mock if not svc.fresh with time.now_ns as 105 with data.svc.limit as 3 with input as {"issued_ns": 100, "kind": "x"}',
        "",
      ].join("\n"),
    );
    const r = await arbiter(["test", "fmocks"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("4 passed, 0 failed\n");
    expect(r.code).toBe(0);
  });

  it("reports syntax errors of every file before giving up", async () => {
    write("syntax/a_test.rego", "package a\n\ntest_a := [\n");
    write("syntax/b_test.rego", "package b\n\ntest_b if {\n");
    const r = await arbiter(["test", "syntax"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'syntax/a_test.rego:4:1: unexpected end of file: expected a term\nsyntax/b_test.rego:4:1: unexpected end of file: expected "}"\n',
    );
  });
});

describe("arbiter build --signing-key", () => {
  it("writes a .signatures.json over every file that verifies with the public key (ES256)", async () => {
    const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    write("keys/ec.pem", privateKey.export({ type: "pkcs8", format: "pem" }) as string);
    const built = await arbiter([
      "build",
      "-o",
      "signed.tar.gz",
      "--signing-key",
      "keys/ec.pem",
      "--signing-alg",
      "ES256",
      "--signing-key-id",
      "ci-2026",
      "--signing-scope",
      "write",
      "policy",
    ]);
    expect(built.stderr).toBe("");
    expect(built.code).toBe(0);
    expect(built.stdout).toMatch(
      /^wrote signed\.tar\.gz \(revision [0-9a-f]{12}; entrypoints: arbiter\/decide; signed ES256 key id ci-2026\)\n$/,
    );
    const files = unpackBundle(readFileSync(join(dir, "signed.tar.gz")));
    expect([...files.keys()].sort()).toEqual([
      ".manifest",
      ".signatures.json",
      "arbiter/decide/decide.rego",
      "data.json",
      "policy.wasm",
    ]);
    const verified = await verifyBundleSignature(files, {
      key: publicKey,
      algorithm: "ES256",
      keyId: "ci-2026",
      scope: "write",
    });
    expect(verified).toEqual({ keyId: "ci-2026", scope: "write", files: 4 });
    const token = (JSON.parse(new TextDecoder().decode(files.get(".signatures.json"))) as { signatures: string[] })
      .signatures[0]!;
    expect(JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString())).toEqual({
      alg: "ES256",
      kid: "ci-2026",
    });
  });

  it("--no-sources writes a flat signed bundle (ConfigMap keys cannot hold directories)", async () => {
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    write("keys/ed.pem", privateKey.export({ type: "pkcs8", format: "pem" }) as string);
    const built = await arbiter([
      "build",
      "--no-sources",
      "-o",
      "flat.tar.gz",
      "--signing-key",
      "keys/ed.pem",
      "--signing-alg",
      "EdDSA",
      "policy",
    ]);
    expect(built.code, built.stderr).toBe(0);
    const files = unpackBundle(readFileSync(join(dir, "flat.tar.gz")));
    expect([...files.keys()].sort()).toEqual([".manifest", ".signatures.json", "data.json", "policy.wasm"]);
    expect(await verifyBundleSignature(files, { key: publicKey, algorithm: "EdDSA" })).toEqual({
      keyId: undefined,
      scope: undefined,
      files: 3,
    });
  });

  it("refuses signing flags without a key, an unknown algorithm and a key of the wrong type", async () => {
    const noKey = await arbiter(["build", "-o", "x.tar.gz", "--signing-alg", "ES256", "policy"]);
    expect(noKey).toMatchObject({
      code: 2,
      stderr: "arbiter build: --signing-alg, --signing-key-id and --signing-scope need --signing-key\n",
    });
    write("keys/hmac.key", "too-short");
    const weak = await arbiter([
      "build",
      "-o",
      "x.tar.gz",
      "--signing-key",
      "keys/hmac.key",
      "--signing-alg",
      "HS256",
      "policy",
    ]);
    expect(weak).toMatchObject({
      code: 2,
      stderr:
        "arbiter build: --signing-key keys/hmac.key: not usable for HS256: an HS256 secret must be at least 32 bytes, got 9\n",
    });
    const alg = await arbiter([
      "build",
      "-o",
      "x.tar.gz",
      "--signing-key",
      "keys/hmac.key",
      "--signing-alg",
      "none",
      "policy",
    ]);
    expect(alg.code).toBe(2);
    expect(alg.stderr).toContain(
      'arbiter build: --signing-alg: expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, HS256, HS384, HS512, EdDSA, got "none"',
    );
  });
});

describe("Rego v0 (--v0-compatible)", () => {
  it("a v0 policy set builds with --v0-compatible (or a manifest's rego_version 0) and answers like its v1 rewrite", async () => {
    const refused = await arbiter(["build", "-e", "authz", "-o", "v0-refused.tar.gz", join(V0_FIXTURE, "v0")]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      `${join(V0_FIXTURE, "v0", "authz.rego")}:8:7: \`if\` keyword is required before rule body\n`,
    );

    const v0 = await arbiter(["build", "--v0-compatible", "-e", "authz", "-o", "v0.tar.gz", join(V0_FIXTURE, "v0")]);
    expect(v0.stderr).toBe("");
    expect(v0.code).toBe(0);
    const v1 = await arbiter(["build", "-e", "authz", "-o", "v1.tar.gz", join(V0_FIXTURE, "v1")]);
    expect(v1.code).toBe(0);
    cpSync(join(V0_FIXTURE, "v0"), join(dir, "v0-manifest"), { recursive: true });
    write("v0-manifest/.manifest", '{"rego_version": 0}');
    const byManifest = await arbiter(["build", "-e", "authz", "-o", "v0m.tar.gz", "v0-manifest"]);
    expect(byManifest.stderr).toBe("");
    expect(byManifest.code).toBe(0);

    const load = async (file: string) => {
      const b = await readBundle(join(dir, file));
      return { manifest: b.manifest, policy: await loadCompiledPolicy(b.wasm, b.data) };
    };
    const [a, b, c] = [await load("v0.tar.gz"), await load("v1.tar.gz"), await load("v0m.tar.gz")];
    expect(a.manifest.rego_version).toBe(0);
    expect(c.manifest.rego_version).toBe(0);
    expect(b.manifest.rego_version).toBe(1);
    const inputs = [
      { user: { id: "u1", role: "viewer" }, action: "read", resource: { owner: "u1" } },
      { user: { id: "u1", role: "viewer" }, action: "write", resource: { owner: "u1" } },
      { user: { id: "root", role: "admin" }, action: "delete", resource: { owner: "u2" } },
      { user: { id: "root", role: "admin", suspended: true }, action: "read", resource: {} },
      { user: { role: "viewer" }, action: "read", resource: {} },
      {},
    ];
    for (const input of inputs) {
      const want = b.policy.evaluate(input, "authz");
      expect(a.policy.evaluate(input, "authz"), JSON.stringify(input)).toEqual(want);
      expect(c.policy.evaluate(input, "authz"), JSON.stringify(input)).toEqual(want);
    }
    // The answers differ across inputs (the comparison is not vacuous).
    expect(b.policy.evaluate(inputs[0], "authz")).toMatchObject([
      { result: { allow: true, level: "low", actions: ["read"] } },
    ]);
    expect(b.policy.evaluate(inputs[3], "authz")).toMatchObject([
      { result: { allow: false, level: "high", deny: ["user root is suspended"] } },
    ]);
  });

  it("arbiter test: v0 tests, --run, --verbose, and opa test's exit codes (2 failures, 1 compile errors)", async () => {
    write(
      "v0test/p.rego",
      "package p\n\ndefault allow = false\n\nallow { input.ok }\n\nmsgs[m] { m := input.msgs[_] }\n",
    );
    write(
      "v0test/p_test.rego",
      'package p\n\ntest_allow { allow with input as {"ok": true} }\n\ntest_deny { not allow }\n\ntest_msgs { msgs == {"a"} with input.msgs as ["a", "a"] }\n\ntest_broken { allow }\n',
    );
    const v1Mode = await arbiter(["test", "v0test"]);
    expect(v1Mode.code).toBe(1);
    expect(v1Mode.stderr).toContain("`if` keyword is required before rule body");
    const all = await arbiter(["test", "--v0-compatible", "v0test"]);
    expect(all.stdout).toBe("FAIL v0test/p_test.rego:9: data.p.test_broken\n3 passed, 1 failed\n");
    expect(all.code).toBe(2);
    const some = await arbiter(["test", "--v0-compatible", "--verbose", "--run", "test_(allow|deny)$", "v0test"]);
    expect(some.stdout).toBe(
      "PASS v0test/p_test.rego:3: data.p.test_allow\nPASS v0test/p_test.rego:5: data.p.test_deny\n2 passed, 0 failed\n",
    );
    expect(some.code).toBe(0);
    const none = await arbiter(["test", "--v0-compatible", "-r", "nomatch", "v0test"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toBe(
      "arbiter test: no test rules (test_*) matching nomatch found in --v0-compatible -r nomatch v0test\n",
    );
  });
});
