/**
 * `arbiter` command dispatcher. Each subcommand lives with its concern and is loaded on demand,
 * so `arbiter build` never pays for the server's imports and vice versa.
 */
const USAGE = `usage: arbiter <command> [options]

commands:
  serve                      run the sidecar (configuration from ARBITER_* variables)
  build [-e EP]... [-o OUT] DIR...   compile Rego to an OPA wasm bundle
  eval -b BUNDLE -e EP [-i input.json] [-d data.json]   evaluate an entrypoint
  test DIR...                run *_test.rego files
  audit verify|prune ...     check or prune the audit trail
  keygen [--out DIR] [--kid ID]   write an approver's Ed25519 key pair (private PEM, public JWKS)
  approve --key KEY.pem --tenant T --request request.json [--ttl 15m] [--approver NAME]
                             print a signed approval grant for one Decide request
  state prune ...            prune expired approvals, old budget windows, idle sessions
`;

type Command = (args: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  serve: async () => (await import("./server/serve.ts")).runServe,
  build: async () => {
    // Arbiter's entrypoints are the build default; the compiler itself knows none.
    const [{ runBuild }, { POLICY_ENTRYPOINTS }] = await Promise.all([
      import("./compiler/cli.ts"),
      import("./decision/contract.ts"),
    ]);
    return (args) => runBuild(args, undefined, { defaultEntrypoints: POLICY_ENTRYPOINTS });
  },
  eval: async () => (await import("./compiler/cli.ts")).runEval,
  test: async () => (await import("./compiler/cli.ts")).runTest,
  audit: async () => (await import("./audit/cli.ts")).runAudit,
  keygen: async () => (await import("./trust/cli.ts")).runKeygen,
  approve: async () => (await import("./trust/cli.ts")).runApprove,
  state: async () => (await import("./state/cli.ts")).runState,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "-h" || name === "--help" || name === "help") {
    process.stdout.write(USAGE);
    return name === undefined ? 2 : 0;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`arbiter: unknown command "${name}"\n${USAGE}`);
    return 2;
  }
  const run = await load();
  return run(rest);
}
