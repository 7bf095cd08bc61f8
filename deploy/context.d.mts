// Types of context.mjs for the TypeScript tests.
export interface IgnoreRule {
  negate: boolean;
  pattern: string;
  regex: RegExp;
}
export declare function parseDockerignore(text: string): IgnoreRule[];
export declare function isExcluded(rules: IgnoreRule[], path: string): boolean;
/** Copies SRC to DEST honouring SRC/.dockerignore; returns the number of files copied. */
export declare function copyContext(src: string, dest: string): number;
