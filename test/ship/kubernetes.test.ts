/**
 * deploy/kubernetes: every file parses, the base runs Arbiter as a native sidecar reached over a
 * Unix socket with native gRPC probes, and the overlays build with kustomize (kubectl's built-in
 * kustomize, when kubectl is on PATH).
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import { listFiles, parseYamlDocs, readText } from "./helm-lite.ts";

const root = join(import.meta.dirname, "../../deploy/kubernetes");

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } };
}
interface Probe {
  grpc?: { port: number; service?: string };
}
interface Container {
  name: string;
  image: string;
  restartPolicy?: string;
  env?: EnvVar[];
  ports?: { name: string; containerPort: number }[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { requests?: object; limits?: object };
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface Volume {
  name: string;
  secret?: { secretName: string };
  emptyDir?: { medium?: string };
  configMap?: { name: string };
}
interface PodSpec {
  initContainers: Container[];
  containers: Container[];
  volumes: Volume[];
  securityContext: Record<string, unknown>;
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: { template: { spec: PodSpec } };
}

function deploymentOf(objects: unknown[]): PodSpec {
  const dep = (objects as K8sObject[]).find((o) => o.kind === "Deployment");
  expect(dep).toBeDefined();
  return dep!.spec!.template.spec;
}

function env(c: Container, name: string): EnvVar | undefined {
  return c.env?.find((e) => e.name === name);
}

const kubectl = spawnSync("kubectl", ["version", "--client"], { stdio: "ignore" }).status === 0;

function kustomize(dir: string): unknown[] {
  const out = execFileSync("kubectl", ["kustomize", join(root, dir)], { encoding: "utf8", timeout: 30_000 });
  return parseYamlDocs(dir, out).map((d) => d.value);
}

describe("deploy/kubernetes", () => {
  const files = listFiles(root, (n) => n.endsWith(".yaml"));

  it("every file parses as YAML", () => {
    expect(files).toEqual(
      expect.arrayContaining([
        "base/deployment.yaml",
        "base/kustomization.yaml",
        "overlays/http-bundle/kustomization.yaml",
      ]),
    );
    for (const f of files) {
      const docs = parseYamlDocs(f, readText(join(root, f)));
      expect(docs.length, f).toBeGreaterThan(0);
    }
  });

  const base = parseYamlDocs("base/deployment.yaml", readText(join(root, "base/deployment.yaml")));
  const pod = deploymentOf(base.map((d) => d.value));
  const sidecar = pod.initContainers.find((c) => c.name === "arbiter")!;
  const app = pod.containers.find((c) => c.name === "app")!;

  it("runs Arbiter as a native sidecar", () => {
    expect(sidecar).toBeDefined();
    expect(sidecar.restartPolicy).toBe("Always");
    expect(pod.containers.map((c) => c.name)).not.toContain("arbiter");
  });

  it("serves the policy RPCs on a Unix socket in an emptyDir shared with the app", () => {
    const listen = env(sidecar, "ARBITER_GRPC_LISTEN")?.value;
    expect(listen).toBe("unix:/var/run/arbiter/arbiter.sock");
    const socketDir = "/var/run/arbiter";
    const mount = sidecar.volumeMounts!.find((m) => m.mountPath === socketDir)!;
    expect(mount).toBeDefined();
    const volume = pod.volumes.find((v) => v.name === mount.name)!;
    expect(volume.emptyDir).toBeDefined();
    expect(app.volumeMounts).toContainEqual({ name: mount.name, mountPath: socketDir });
    expect(env(app, "ARBITER_ADDR")?.value).toBe("unix:///var/run/arbiter/arbiter.sock");
  });

  it("probes with native gRPC on a declared container port", () => {
    const health = sidecar.ports!.find((p) => p.name === "grpc-health")!;
    expect(env(sidecar, "ARBITER_HEALTH_LISTEN")?.value).toBe(`0.0.0.0:${health.containerPort}`);
    expect(sidecar.startupProbe!.grpc).toEqual({ port: health.containerPort, service: "arbiter.v1.PolicyService" });
    expect(sidecar.readinessProbe!.grpc).toEqual({ port: health.containerPort, service: "arbiter.v1.PolicyService" });
    expect(sidecar.livenessProbe!.grpc).toEqual({ port: health.containerPort });
  });

  it("takes the bundle from a mounted ConfigMap and the DSN from a Secret", () => {
    const bundle = env(sidecar, "ARBITER_BUNDLE")!.value!;
    const mount = sidecar.volumeMounts!.find((m) => m.mountPath === bundle)!;
    expect(mount.readOnly).toBe(true);
    expect(pod.volumes.find((v) => v.name === mount.name)!.configMap).toEqual({ name: "arbiter-policy" });
    expect(env(sidecar, "ARBITER_DATABASE_URL")!.valueFrom).toEqual({
      secretKeyRef: { name: "arbiter-db", key: "database-url" },
    });
  });

  it("is hardened and bounded", () => {
    for (const c of [sidecar, app]) {
      expect(c.securityContext, c.name).toMatchObject({
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
      });
      expect(Object.keys(c.resources!.requests!), c.name).toEqual(["cpu", "memory"]);
      expect(Object.keys(c.resources!.limits!), c.name).toEqual(["cpu", "memory"]);
    }
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
    // Writable paths are volumes only: data dir and /tmp besides the socket.
    const writable = sidecar
      .volumeMounts!.filter((m) => !m.readOnly)
      .map((m) => m.mountPath)
      .sort();
    expect(writable).toEqual(["/tmp", "/var/lib/arbiter", "/var/run/arbiter"]);
    expect(env(sidecar, "ARBITER_DATA_DIR")!.value).toBe("/var/lib/arbiter");
  });

  it.skipIf(!kubectl)("the configmap-bundle overlay builds with kustomize", () => {
    const objects = kustomize("overlays/configmap-bundle") as K8sObject[];
    expect(objects.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`).sort()).toEqual([
      "Deployment/demo/demo-app",
      "NetworkPolicy/demo/demo-app-arbiter-admin",
      "ServiceAccount/demo/demo-app",
    ]);
    const built = deploymentOf(objects).initContainers[0]!;
    expect(built.image).toBe("ghcr.io/arbiter/arbiter:0.1.0");
    expect(built.restartPolicy).toBe("Always");
  });

  it("opts in to the remote admin bind and restricts only the admin port to the namespace", () => {
    expect(env(sidecar, "ARBITER_ADMIN_LISTEN")?.value).toBe("0.0.0.0:9090");
    expect(env(sidecar, "ARBITER_ADMIN_ALLOW_REMOTE")?.value).toBe("on");
    const [doc] = parseYamlDocs("base/networkpolicy.yaml", readText(join(root, "base/networkpolicy.yaml")));
    const np = doc!.value as {
      spec: {
        podSelector: unknown;
        ingress: { from?: unknown[]; ports: { protocol: string; port: number; endPort?: number }[] }[];
      };
    };
    expect(np.spec.podSelector).toEqual({ matchLabels: { "app.kubernetes.io/name": "demo-app" } });
    const admin = np.spec.ingress.find((r) => r.ports.some((p) => p.port === 9090))!;
    expect(admin.from).toEqual([{ podSelector: {} }]);
    // Every other TCP port stays open to any source; 9090 is in no open range.
    const open = np.spec.ingress
      .filter((r) => r.from === undefined)
      .flatMap((r) => r.ports)
      .filter((p) => p.protocol === "TCP");
    for (const port of [1, 8080, 9089, 9091, 50052, 65535])
      expect(
        open.some((p) => p.port <= port && port <= (p.endPort ?? p.port)),
        String(port),
      ).toBe(true);
    expect(open.some((p) => p.port <= 9090 && 9090 <= (p.endPort ?? p.port))).toBe(false);
  });

  it.skipIf(!kubectl)("the signed-bundle overlay mounts the verification key Secret into the sidecar", () => {
    const spec = deploymentOf(kustomize("overlays/signed-bundle"));
    const c = spec.initContainers.find((x) => x.name === "arbiter")!;
    const key = env(c, "ARBITER_BUNDLE_VERIFICATION_KEY")!.value!;
    expect(env(c, "ARBITER_BUNDLE_VERIFICATION_ALG")!.value).toBe("RS256");
    const mount = c.volumeMounts!.find((m) => key.startsWith(`${m.mountPath}/`))!;
    expect(mount).toMatchObject({ name: "arbiter-bundle-verification", readOnly: true });
    expect(spec.volumes.find((v) => v.name === mount.name)).toMatchObject({
      secret: { secretName: "arbiter-bundle-verification" },
    });
    expect(env(c, "ARBITER_BUNDLE")!.value).toBe("/etc/arbiter/bundle");
  });

  it.skipIf(!kubectl)("the http-bundle overlay swaps the ConfigMap for a polled URL", () => {
    const spec = deploymentOf(kustomize("overlays/http-bundle"));
    const c = spec.initContainers[0]!;
    expect(env(c, "ARBITER_BUNDLE")!.value).toMatch(/^http:\/\/bundle-server\./);
    expect(env(c, "ARBITER_BUNDLE_POLL_SECONDS")!.value).toBe("30");
    expect(spec.volumes.some((v) => v.configMap)).toBe(false);
    expect(c.volumeMounts!.map((m) => m.name)).not.toContain("arbiter-bundle");
    expect(c.restartPolicy).toBe("Always");
  });
});
