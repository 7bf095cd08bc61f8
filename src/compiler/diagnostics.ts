/** Compile errors: every problem carries a source position and is reported as `file:line:col: message`. */
export interface Diagnostic {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

export function diagnostic(file: string, line: number, col: number, message: string): Diagnostic {
  return { file, line, col, message };
}

export function formatDiagnostic(d: Diagnostic): string {
  // Problems with no source position (a bad entrypoint) carry an empty file name.
  return d.file === "" ? d.message : `${d.file}:${d.line}:${d.col}: ${d.message}`;
}

/** Thrown by `compile` and `planPolicy`: the diagnostics sorted by file and position. */
export class RegoCompileError extends Error {
  readonly diagnostics: readonly Diagnostic[];
  constructor(diagnostics: readonly Diagnostic[]) {
    const sorted = [...diagnostics].sort((a, b) =>
      a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.col - b.col,
    );
    // Drop exact duplicates (the same problem found twice through two paths).
    const unique = sorted.filter((d, i) => i === 0 || formatDiagnostic(d) !== formatDiagnostic(sorted[i - 1]!));
    super(unique.map(formatDiagnostic).join("\n"));
    this.name = "RegoCompileError";
    this.diagnostics = unique;
  }
}
