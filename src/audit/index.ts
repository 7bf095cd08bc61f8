/** Public surface of the audit module. */
export type { AuditEvent, AuditRpc, AuditSink } from "./types.ts";
export {
  createAuditPipeline,
  AuditOverflowError,
  AuditClosedError,
  AuditEventError,
  type AuditPipeline,
  type AuditPipelineOptions,
  type AuditPipelineStats,
  type AuditDurability,
  type AuditOverflow,
  type AuditLogger,
} from "./pipeline.ts";
export { startEmbeddedPostgres, type EmbeddedPostgres, type EmbeddedPostgresOptions } from "./embedded-postgres.ts";
export { canonicalJson, chainRecord, GENESIS_HASH, type AuditRecord } from "./record.ts";
export { verifyChains, type VerifyResult, type ChainBreak } from "./verify.ts";
