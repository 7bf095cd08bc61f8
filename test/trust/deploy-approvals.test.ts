/**
 * How the approvers' JWKS reaches the sidecar in Kubernetes: the Helm chart's `approvals.*` values
 * and the kustomize overlay deploy/kubernetes/overlays/approvals, rendered by the real helm
 * (HELM_BIN, PATH, or ../shared/tools/helm) and kubectl kustomize when present. The rendered
 * environment is fed to loadConfig, so what the chart writes is what the sidecar accepts.
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import YAML from "yaml";
import { loadConfig } from "../../src/config/config.ts";

const repo = resolve(import.meta.dirname, "../..");

function findBin(name: string, candidates: string[]): string | undefined {
  for (const c of candidates) if (c && existsSync(c)) return c;
  const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}
const helm = findBin("helm", [process.env.HELM_BIN ?? "", join(repo, "../shared/tools/helm")]);
const kubectl = findBin("kubectl", []);

interface Container {
  name: string;
  env?: Array<{ name: string; value?: string }>;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean; subPath?: string }>;
}
interface PodSpec {
  initContainers?: Container[];
  containers: Container[];
  volumes: Array<{ name: string; configMap?: { name: string } }>;
}

function podSpec(yamlText: string): PodSpec {
  const docs = YAML.parseAllDocuments(yamlText).map(
    (d) => d.toJS() as { kind?: string; spec?: { template: { spec: PodSpec } } },
  );
  const dep = docs.find((d) => d?.kind === "Deployment");
  expect(dep).toBeDefined();
  return dep!.spec!.template.spec;
}

function arbiterContainer(pod: PodSpec): Container {
  const c = [...(pod.initContainers ?? []), ...pod.containers].find((x) => x.name === "arbiter");
  expect(c).toBeDefined();
  return c!;
}

function envOf(c: Container): Record<string, string> {
  return Object.fromEntries((c.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
}

/** The JWKS path is inside a read-only, whole-directory mount of the named ConfigMap. */
function expectJwksMount(pod: PodSpec, c: Container, configMap: string, file: string): void {
  const vol = pod.volumes.find((v) => v.configMap?.name === configMap);
  expect(vol).toBeDefined();
  const mount = c.volumeMounts?.find((m) => m.name === vol!.name);
  expect(mount).toMatchObject({ readOnly: true });
  // subPath mounts never see ConfigMap updates: rotation would need a restart.
  expect(mount!.subPath).toBeUndefined();
  expect(envOf(c).ARBITER_APPROVAL_KEYS).toBe(`${mount!.mountPath}/${file}`);
}

describe.skipIf(!helm)("helm chart: approvals.*", () => {
  const render = (...args: string[]): { code: number | null; out: string } => {
    const r = spawnSync(helm!, ["template", "r", join(repo, "helm/arbiter"), "--kube-version", "1.30.0", ...args], {
      encoding: "utf8",
      timeout: 60_000,
    });
    return { code: r.status, out: r.stdout + r.stderr };
  };

  it("without keys: no approval variables, no extra volume", () => {
    const r = render();
    expect(r.code).toBe(0);
    expect(r.out).not.toContain("ARBITER_APPROVAL");
    expect(r.out).not.toContain("arbiter-approvers");
  });

  it("examples/approvals.yaml: the JWKS ConfigMap mounted as a directory, the variables the sidecar accepts", () => {
    const r = render("-f", join(repo, "helm/arbiter/examples/approvals.yaml"));
    expect(r.code).toBe(0);
    const pod = podSpec(r.out);
    const c = arbiterContainer(pod);
    expectJwksMount(pod, c, "arbiter-approvers", "jwks.json");
    const env = envOf(c);
    expect(env.ARBITER_APPROVAL_AUDIENCE).toBe("arbiter://prod-eu");
    const config = loadConfig({ ...env, ARBITER_TLS_CERT: "/c.pem", ARBITER_TLS_KEY: "/k.pem" });
    expect(config.approvals).toEqual({
      keys: "/etc/arbiter/approvers/jwks.json",
      audience: "arbiter://prod-eu",
      keysRefreshSeconds: 60,
    });
  });

  it("a JWKS URL; both sources at once and plain http are refused", () => {
    const url = render(
      "--set",
      "approvals.jwksUrl=https://approvals.example.com/.well-known/jwks.json",
      "--set",
      "approvals.keysRefreshSeconds=300",
    );
    expect(url.code).toBe(0);
    const env = envOf(arbiterContainer(podSpec(url.out)));
    expect(env.ARBITER_APPROVAL_KEYS).toBe("https://approvals.example.com/.well-known/jwks.json");
    expect(env.ARBITER_APPROVAL_KEYS_REFRESH_SECONDS).toBe("300");
    expect(url.out).not.toContain("arbiter-approvers");

    const both = render(
      "--set",
      "approvals.jwksUrl=https://a.example/jwks",
      "--set",
      "approvals.jwksConfigMap=arbiter-approvers",
    );
    expect(both.code).not.toBe(0);
    expect(both.out).toContain("approvals: set jwksConfigMap or jwksUrl, not both");
    const http = render("--set", "approvals.jwksUrl=http://a.example/jwks");
    expect(http.code).not.toBe(0);
    expect(http.out).toContain("approvals.jwksUrl");
  });
});

describe.skipIf(!kubectl)("kustomize overlay deploy/kubernetes/overlays/approvals", () => {
  it("adds the JWKS mount and ARBITER_APPROVAL_KEYS to the sidecar, and keeps the base's", () => {
    const out = execFileSync(kubectl!, ["kustomize", join(repo, "deploy/kubernetes/overlays/approvals")], {
      encoding: "utf8",
      timeout: 30_000,
    });
    const pod = podSpec(out);
    const c = arbiterContainer(pod);
    expectJwksMount(pod, c, "arbiter-approvers", "jwks.json");
    const env = envOf(c);
    expect(env.ARBITER_BUNDLE).toBeDefined();
    expect(c.volumeMounts!.map((m) => m.name)).toEqual(
      expect.arrayContaining(["arbiter-socket", "arbiter-bundle", "arbiter-approvers"]),
    );
    // The whole rendered environment: the sidecar must start with it, not only parse our variable.
    expect(loadConfig(env).approvals.keys).toBe("/etc/arbiter/approvers/jwks.json");
  });
});
