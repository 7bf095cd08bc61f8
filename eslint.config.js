// ESLint for the whole repository (`npm run lint`, run by .ci/run). typescript-eslint's
// recommended rules everywhere, plus the type-aware rules that catch what review misses here:
// promises left floating (a rejected audit append or reload nobody awaits) and `any` leaking
// through untyped JSON, protobuf and WebAssembly boundaries into decision code.
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

const unsafeAny = {
  "@typescript-eslint/no-unsafe-assignment": "error",
  "@typescript-eslint/no-unsafe-member-access": "error",
  "@typescript-eslint/no-unsafe-call": "error",
  "@typescript-eslint/no-unsafe-return": "error",
  "@typescript-eslint/no-unsafe-argument": "error",
};

export default tseslint.config(
  {
    ignores: [
      "dist/**",
      "gen/**",
      "node_modules/**",
      "coverage/**",
      "**/*.d.ts",
      "**/*.d.mts",
      // AssemblyScript (compiled by asc to gen/compiler/runtime.wasm), not TypeScript for Node.
      "src/compiler/runtime/**",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        {
          argsIgnorePattern: "^_",
          varsIgnorePattern: "^_",
          destructuredArrayIgnorePattern: "^_",
          ignoreRestSiblings: true,
        },
      ],
    },
  },
  {
    files: ["**/*.ts"],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/await-thenable": "error",
    },
  },
  // Production code and benches: no `any` may flow into a typed value unchecked.
  { files: ["src/**/*.ts", "bench/**/*.ts"], rules: unsafeAny },
  // Tests read untyped JSON answers from real servers and processes and assert on them; an
  // assertion on an `any` field fails loudly at run time, so the unsafe-any rules stay off there.
  { files: ["test/**/*.ts"], rules: { "@typescript-eslint/no-explicit-any": "off" } },
  { files: ["**/*.js", "**/*.mjs"], languageOptions: { globals: globals.node } },
  {
    // k6 scripts run inside k6's JavaScript runtime, not Node.
    files: ["k6/**/*.js"],
    languageOptions: { globals: { __ENV: "readonly", __VU: "readonly", __ITER: "readonly", open: "readonly" } },
  },
);
