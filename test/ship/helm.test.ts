/**
 * The Helm chart without helm: values against values.schema.json (as Helm merges and validates
 * them), template references against values.yaml, and every template parses as Kubernetes YAML
 * once its actions are replaced by placeholders.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv, type ErrorObject } from "ajv";
import { parse } from "yaml";
import {
  defineBody,
  hasPath,
  listFiles,
  mergeValues,
  parseYamlDocs,
  readText,
  stripTemplate,
  valuesPaths,
  type Values,
} from "./helm-lite.ts";

const chart = join(import.meta.dirname, "../../helm/arbiter");
const schema = JSON.parse(readText(join(chart, "values.schema.json"))) as object;
const defaults = parse(readText(join(chart, "values.yaml"))) as Values;
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
const validate = ajv.compile(schema);

function errorsOf(values: Values): string[] {
  if (validate(values)) return [];
  return (validate.errors ?? []).map((e: ErrorObject) => {
    const extra =
      e.keyword === "additionalProperties"
        ? ` (${(e.params as { additionalProperty: string }).additionalProperty})`
        : "";
    return `${e.instancePath || "/"}: ${e.message}${extra}`;
  });
}

describe("values.schema.json", () => {
  it("accepts values.yaml", () => {
    expect(errorsOf(defaults)).toEqual([]);
  });

  const examples = listFiles(join(chart, "examples"), (n) => n.endsWith(".yaml"));
  it("has examples", () => {
    expect(examples.length).toBeGreaterThanOrEqual(4);
  });
  for (const file of examples) {
    it(`accepts examples/${file} merged over values.yaml`, () => {
      const user = parse(readText(join(chart, "examples", file))) as Values;
      expect(errorsOf(mergeValues(defaults, user))).toEqual([]);
    });
  }

  it("names the path of a wrong enum value", () => {
    const bad = mergeValues(defaults, { listener: { mode: "udp" } });
    expect(errorsOf(bad)).toContain("/listener/mode: must be equal to one of the allowed values");
  });

  it("names a misspelt key", () => {
    const bad = mergeValues(defaults, { audit: { durabilty: "sync" } });
    expect(errorsOf(bad)).toEqual(["/audit: must NOT have additional properties (durabilty)"]);
  });

  it("rejects a port out of range and a relative mount path", () => {
    const bad = mergeValues(defaults, {
      health: { port: 70000 },
      bundle: { configMap: { mountPath: "etc/arbiter" } },
    });
    expect(errorsOf(bad)).toEqual([
      "/health/port: must be <= 65535",
      '/bundle/configMap/mountPath: must match pattern "^/"',
    ]);
  });

  it("requires a URL for the http bundle source", () => {
    const bad = mergeValues(defaults, { bundle: { source: "http" } });
    expect(errorsOf(bad)).toContain("/bundle/http/url: must NOT have fewer than 1 characters");
    const good = mergeValues(defaults, {
      bundle: { source: "http", http: { url: "https://bundles.example/arbiter.tar.gz" } },
    });
    expect(errorsOf(good)).toEqual([]);
  });

  it("refuses the Unix socket listener for the standalone Deployment", () => {
    const bad = mergeValues(defaults, { listener: { mode: "unix" } });
    expect(errorsOf(bad)).toContain("/standalone/enabled: must be equal to constant");
  });
});

describe("templates", () => {
  const templates = listFiles(join(chart, "templates"), () => true);

  it("reference only values that values.yaml declares", () => {
    const missing: string[] = [];
    for (const file of templates) {
      for (const path of valuesPaths(readText(join(chart, "templates", file)))) {
        if (!hasPath(defaults, path)) missing.push(`${file}: .Values.${path}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("define the standard named templates and the sidecar helpers", () => {
    const helpers = readText(join(chart, "templates/_helpers.tpl"));
    const defined = [...helpers.matchAll(/\{\{-? define "([^"]+)"/g)].map((m) => m[1]);
    for (const name of [
      "arbiter.name",
      "arbiter.fullname",
      "arbiter.chart",
      "arbiter.labels",
      "arbiter.selectorLabels",
      "arbiter.serviceAccountName",
      "arbiter.sidecarContainer",
      "arbiter.sidecarVolumes",
      "arbiter.socketVolumeMount",
    ]) {
      expect(defined).toContain(name);
    }
  });

  const manifests = templates.filter((f) => f.endsWith(".yaml"));
  const expectedKinds: Record<string, string> = {
    "deployment.yaml": "Deployment",
    "service.yaml": "Service",
    "serviceaccount.yaml": "ServiceAccount",
    "configmap-bundle.yaml": "ConfigMap",
    "servicemonitor.yaml": "ServiceMonitor",
    "pdb.yaml": "PodDisruptionBudget",
    "networkpolicy.yaml": "NetworkPolicy",
    "tests/test-health.yaml": "Pod",
  };
  it("cover the objects the chart promises", () => {
    expect(manifests).toEqual(Object.keys(expectedKinds).sort());
  });
  for (const file of manifests) {
    it(`${file} parses as YAML with apiVersion and kind`, () => {
      const docs = parseYamlDocs(file, stripTemplate(readText(join(chart, "templates", file))));
      expect(docs).toHaveLength(1);
      const obj = docs[0]!.value as { apiVersion: string; kind: string; metadata: object };
      expect(obj.kind).toBe(expectedKinds[file]);
      expect(obj.apiVersion).toMatch(/^([a-z0-9.]+\/)?v1$/);
      expect(obj.metadata).toHaveProperty("name");
    });
  }

  it("the shared container definition parses and carries gRPC probes and the hardening", () => {
    const helpers = readText(join(chart, "templates/_helpers.tpl"));
    const [doc] = parseYamlDocs("arbiter.container", stripTemplate(defineBody(helpers, "arbiter.container")));
    const c = doc!.value as Record<string, unknown>;
    expect(c.name).toBe("arbiter");
    expect(c.args).toEqual(["serve"]);
    for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
      expect(Object.keys(c[probe] as object)).toEqual([expect.stringMatching(/^placeholder_\d+$/)]);
    }
    const [probe] = parseYamlDocs("arbiter.grpcProbe", stripTemplate(defineBody(helpers, "arbiter.grpcProbe")));
    expect(Object.keys(probe!.value as object)).toEqual([
      "grpc",
      "periodSeconds",
      "timeoutSeconds",
      "failureThreshold",
    ]);
    const env = (c.env as { name: string }[]).map((e) => e.name);
    expect(env).toEqual(
      expect.arrayContaining([
        "ARBITER_GRPC_LISTEN",
        "ARBITER_ADMIN_LISTEN",
        "ARBITER_BUNDLE",
        "ARBITER_DATABASE_URL",
        "ARBITER_AUDIT",
        "ARBITER_DATA_DIR",
      ]),
    );
    // The default securityContext the container gets.
    const sc = defaults.securityContext as Record<string, unknown>;
    expect(sc).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
  });

  it("the sidecar template makes a restartable init container", () => {
    const helpers = readText(join(chart, "templates/_helpers.tpl"));
    const [doc] = parseYamlDocs(
      "arbiter.sidecarContainer",
      stripTemplate(defineBody(helpers, "arbiter.sidecarContainer")),
    );
    expect(doc!.value).toEqual([{ placeholder_1: "included", restartPolicy: "Always" }]);
  });
});

describe("stripTemplate", () => {
  it("keeps structure and replaces actions", () => {
    const src = [
      "{{- if .Values.a }}",
      "kind: {{ .Values.kind | quote }}",
      "metadata:",
      "  labels:",
      '    {{- include "x.labels" . | nindent 4 }}',
      "spec:",
      "  containers:",
      '    - {{- include "x.c" . | nindent 6 }}',
      "{{- end }}",
    ].join("\n");
    expect(parse(stripTemplate(src))).toEqual({
      kind: "PLACEHOLDER",
      metadata: { labels: { placeholder_1: "included" } },
      spec: { containers: [{ placeholder_2: "included" }] },
    });
  });

  it("reports a YAML error with the file name", () => {
    expect(() => parseYamlDocs("bad.yaml", "a: [1, 2\nb: c")).toThrow(/^bad\.yaml: /);
  });
});

/**
 * With a helm binary (HELM_BIN, or helm on PATH): the real lint and render. CI machines have no
 * helm, so these skip there; they ran with helm 3.8.1 when the chart was written.
 */
const helmBin = process.env.HELM_BIN ?? "helm";
const hasHelm = spawnSync(helmBin, ["version"], { stdio: "ignore" }).status === 0;

function helm(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(helmBin, args, { encoding: "utf8", timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

interface RenderedPod {
  initContainers?: { name: string; restartPolicy?: string; env: { name: string; value?: string }[] }[];
  containers: {
    name: string;
    env?: { name: string; value?: string }[];
    volumeMounts?: { name: string }[];
    startupProbe?: { grpc: { port: number } };
  }[];
  volumes: { name: string }[];
}
interface Rendered {
  kind: string;
  spec?: { template?: { spec: RenderedPod } };
}

describe.skipIf(!hasHelm)("helm lint and helm template", () => {
  const examples = listFiles(join(chart, "examples"), (n) => n.endsWith(".yaml"));

  it("lints and renders the defaults and every example", () => {
    for (const file of ["", ...examples]) {
      const values = file ? ["-f", join(chart, "examples", file)] : [];
      const lint = helm(["lint", chart, ...values]);
      expect(lint.code, `${file}: ${lint.out}${lint.err}`).toBe(0);
      const tpl = helm(["template", "arbiter", chart, "--kube-version", "1.30.0", ...values]);
      expect(tpl.code, `${file}: ${tpl.err}`).toBe(0);
      const docs = parseYamlDocs(file || "values.yaml", tpl.out).map((d) => d.value as Rendered);
      for (const d of docs) expect(d.kind, file).toMatch(/^[A-Z]/);
      const dep = docs.find((d) => d.kind === "Deployment");
      if (file === "sidecar-only.yaml") expect(dep).toBeUndefined();
      else expect(dep!.spec!.template!.spec.containers[0]!.startupProbe!.grpc.port).toBe(50052);
      // `helm test`: a hook pod calling the health listener through the Service's grpc-health port.
      const testPod = docs.find((d) => d.kind === "Pod") as
        | (Rendered & {
            metadata: { annotations: Record<string, string> };
            spec: { containers: { command: string[] }[] };
          })
        | undefined;
      if (file === "sidecar-only.yaml") expect(testPod).toBeUndefined();
      else {
        expect(testPod!.metadata.annotations["helm.sh/hook"]).toBe("test");
        expect(testPod!.spec.containers[0]!.command).toEqual([
          "node",
          "deploy/healthcheck.mjs",
          "--target",
          "arbiter:50052",
          "--service",
          "arbiter.v1.PolicyService",
          "--timeout-ms",
          "5000",
        ]);
        const svc = docs.find((d) => d.kind === "Service") as unknown as {
          spec: { ports: { name: string; port: number }[] };
        };
        expect(svc.spec.ports).toContainEqual(expect.objectContaining({ name: "grpc-health", port: 50052 }));
      }
    }
  });

  it("refuses bad values with the schema path and plaintext on a non-loopback host", () => {
    const typo = helm(["template", "arbiter", chart, "--kube-version", "1.30.0", "--set", "audit.durabilty=sync"]);
    expect(typo.code).not.toBe(0);
    expect(typo.err).toContain("Additional property durabilty is not allowed");
    const plain = helm([
      "template",
      "arbiter",
      chart,
      "--kube-version",
      "1.30.0",
      "--set",
      "listener.tls.enabled=false",
    ]);
    expect(plain.code).not.toBe(0);
    expect(plain.err).toContain(
      'listener.host "0.0.0.0" is not loopback: set listener.tls.enabled=true with listener.tls.secretName, or use listener.mode=unix',
    );
  });

  it("opts in to the remote admin bind only with the NetworkPolicy, and mounts the bundle verification key", () => {
    const render = (...set: string[]) => {
      const tpl = helm(["template", "arbiter", chart, "--kube-version", "1.30.0", ...set.flatMap((s) => ["--set", s])]);
      expect(tpl.code, tpl.err).toBe(0);
      return parseYamlDocs("render", tpl.out).map(
        (d) => d.value as Rendered & { spec?: { ingress?: { from?: unknown[]; ports: { port: string }[] }[] } },
      );
    };
    const envOf = (docs: Rendered[]) =>
      docs.find((d) => d.kind === "Deployment")!.spec!.template!.spec.containers[0]!.env!;
    const remote = render();
    expect(envOf(remote)).toContainEqual({ name: "ARBITER_ADMIN_ALLOW_REMOTE", value: "on" });
    const policy = remote.find((d) => d.kind === "NetworkPolicy")!;
    const adminRule = policy.spec!.ingress!.find((r) => r.ports.some((p) => p.port === "admin"))!;
    expect(adminRule.from).toEqual([{ podSelector: {} }]);
    const local = render("admin.host=127.0.0.1");
    expect(envOf(local).map((e) => e.name)).not.toContain("ARBITER_ADMIN_ALLOW_REMOTE");
    expect(local.map((d) => d.kind)).not.toContain("NetworkPolicy");

    const signed = render(
      "bundle.verification.enabled=true",
      "bundle.verification.secretName=bv",
      "bundle.verification.algorithm=ES256",
    );
    const dep = signed.find((d) => d.kind === "Deployment")!.spec!.template!.spec;
    expect(envOf(signed)).toEqual(
      expect.arrayContaining([
        { name: "ARBITER_BUNDLE_VERIFICATION_KEY", value: "/etc/arbiter/bundle-verification/verification.pem" },
        { name: "ARBITER_BUNDLE_VERIFICATION_ALG", value: "ES256" },
      ]),
    );
    expect(dep.containers[0]!.volumeMounts).toContainEqual({
      name: "arbiter-bundle-verification",
      mountPath: "/etc/arbiter/bundle-verification",
      readOnly: true,
    });
    expect(dep.volumes).toContainEqual({
      name: "arbiter-bundle-verification",
      secret: { secretName: "bv", items: [{ key: "verification.pem", path: "verification.pem" }] },
    });
    const missing = helm([
      "template",
      "arbiter",
      chart,
      "--kube-version",
      "1.30.0",
      "--set",
      "bundle.verification.enabled=true",
    ]);
    expect(missing.code).not.toBe(0);
    expect(missing.err).toContain("bundle.verification.secretName is required when bundle.verification.enabled=true");
  });

  it("renders the README's sidecar example in a parent chart", () => {
    const dir = mkdtempSync(join(tmpdir(), "arbiter-parent-"));
    try {
      cpSync(join(import.meta.dirname, "fixtures/parent-chart"), dir, { recursive: true });
      const chartYaml = readText(join(dir, "Chart.yaml")).replace(/repository: .*/, `repository: file://${chart}`);
      writeFileSync(join(dir, "Chart.yaml"), chartYaml);
      const dep = helm(["dependency", "build", dir]);
      expect(dep.code, dep.out + dep.err).toBe(0);
      const tpl = helm(["template", "rel", dir, "--kube-version", "1.30.0"]);
      expect(tpl.code, tpl.err).toBe(0);
      const docs = parseYamlDocs("parent", tpl.out).map((d) => d.value as Rendered);
      expect(docs.map((d) => d.kind)).toEqual(["Deployment"]);
      const pod = docs[0]!.spec!.template!.spec;
      const sidecar = pod.initContainers![0]!;
      expect(sidecar.name).toBe("arbiter");
      expect(sidecar.restartPolicy).toBe("Always");
      expect(sidecar.env.find((e) => e.name === "ARBITER_GRPC_LISTEN")!.value).toBe(
        "unix:/var/run/arbiter/arbiter.sock",
      );
      const app = pod.containers[0]!;
      expect(app.env!.find((e) => e.name === "ARBITER_ADDR")!.value).toBe("unix:///var/run/arbiter/arbiter.sock");
      expect(app.volumeMounts!.map((m) => m.name)).toEqual(["arbiter-socket"]);
      expect(pod.volumes.map((v) => v.name)).toEqual([
        "arbiter-data",
        "arbiter-tmp",
        "arbiter-socket",
        "arbiter-bundle",
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
