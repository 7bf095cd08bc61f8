-- Audit trail: one row per decision, append-only, range-partitioned by decision time (daily
-- partitions named audit_records_pYYYYMMDD, created ahead of time by the pipeline).
CREATE TABLE audit_records (
  decision_id     uuid        NOT NULL,
  ts              timestamptz NOT NULL,
  tenant_id       text        NOT NULL,
  request_id      text        NOT NULL,
  trace_id        text        NOT NULL,
  rpc             text        NOT NULL,
  principal       text        NOT NULL,
  bundle_revision text        NOT NULL,
  outcome         text        NOT NULL,
  reasons         text[]      NOT NULL,
  input_sha256    text        NOT NULL,
  latency_us      bigint      NOT NULL,
  instance_id     text        NOT NULL,
  seq             bigint      NOT NULL,
  prev_hash       text        NOT NULL,
  hash            text        NOT NULL,
  written_at      timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (ts);

-- A unique index on a partitioned table must contain the partition key. ts comes from the
-- record itself, so a replayed record carries the same (decision_id, ts) and is skipped by
-- ON CONFLICT DO NOTHING: that is the idempotency key. It also serves lookups by decision_id.
CREATE UNIQUE INDEX audit_records_decision_id_ts ON audit_records (decision_id, ts);
CREATE INDEX audit_records_tenant_ts ON audit_records (tenant_id, ts);
-- Chain head lookup at start and `arbiter audit verify`.
CREATE INDEX audit_records_instance_seq ON audit_records (instance_id, seq);

CREATE FUNCTION arbiter_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_records is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_records_append_only
  BEFORE UPDATE OR DELETE ON audit_records
  FOR EACH ROW EXECUTE FUNCTION arbiter_audit_append_only();

CREATE TRIGGER audit_records_no_truncate
  BEFORE TRUNCATE ON audit_records
  FOR EACH STATEMENT EXECUTE FUNCTION arbiter_audit_append_only();

-- Privileges, where the connecting role may set them: nobody gets UPDATE/DELETE/TRUNCATE by
-- default, and a NOLOGIN role with only INSERT and SELECT is offered for the sidecar to use.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_records FROM PUBLIC;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'arbiter_audit_writer') THEN
    CREATE ROLE arbiter_audit_writer NOLOGIN;
  END IF;
EXCEPTION
  -- Roles are cluster-wide: another database may create it concurrently, or this role may not
  -- be allowed to create roles. Either way the table is still protected by the trigger.
  WHEN duplicate_object OR unique_violation OR insufficient_privilege THEN NULL;
END
$$;
DO $$
BEGIN
  GRANT INSERT, SELECT ON audit_records TO arbiter_audit_writer;
EXCEPTION
  WHEN undefined_object OR insufficient_privilege THEN NULL;
END
$$;
