// Types of ghz.js for the TypeScript gate (bench/gate); k6 loads the .js directly.
export declare const GHZ_PERCENTILES: readonly number[];
export declare const GRPC_CODE_NAMES: readonly string[];

export interface GhzSummary {
  name: string;
  date: string;
  count: number;
  totalMs: number;
  averageMs: number;
  fastestMs: number;
  slowestMs: number;
  percentilesMs: Record<string, number>;
  statusCodes: Record<string, number>;
  errors?: Record<string, number>;
  options?: Record<string, unknown>;
}

/** ghz's JSON report: durations in integer nanoseconds. */
export interface GhzReport {
  name: string;
  date: string;
  options: Record<string, unknown>;
  count: number;
  total: number;
  average: number;
  fastest: number;
  slowest: number;
  rps: number;
  errorDistribution: Record<string, number>;
  statusCodeDistribution: Record<string, number>;
  latencyDistribution: { percentage: number; latency: number }[];
}

export declare function ghzReport(s: GhzSummary): GhzReport;
