-- Fleet-wide state shared by every sidecar on one database (issue #10). Versions 101+ keep the
-- state migrations apart from the audit ones (001+) in arbiter_schema_migrations, so the state
-- may live in the audit database or in another one (ARBITER_STATE_DATABASE_URL).
--
-- CHECK constraints refuse impossible values; the readers clamp as well, so a table altered by
-- hand (constraint dropped, negative count) never yields an allow it would not otherwise give.

-- Usage budgets: spend per (tenant, window length, window start, unit). numeric, so sums are
-- exact: the fleet spend equals the sum of the acknowledged amounts to the last digit.
CREATE TABLE arbiter_usage_windows (
  tenant_id        text    NOT NULL,
  window_seconds   integer NOT NULL CHECK (window_seconds > 0),
  window_start_ms  bigint  NOT NULL,
  unit             text    NOT NULL,
  spend            numeric NOT NULL CHECK (spend >= 0 AND spend <> 'NaN'),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, window_seconds, window_start_ms, unit)
);
-- The refresher reads every active tenant of the current window in one query.
CREATE INDEX arbiter_usage_windows_window ON arbiter_usage_windows (window_seconds, window_start_ms);

-- One row per applied RecordUsage: the idempotency key that makes a replay from the local spool
-- (after an outage, or after a crash between the commit and the acknowledgement) count once.
CREATE TABLE arbiter_usage_events (
  event_id         uuid    PRIMARY KEY,
  tenant_id        text    NOT NULL,
  window_seconds   integer NOT NULL,
  window_start_ms  bigint  NOT NULL,
  unit             text    NOT NULL,
  amount           numeric NOT NULL CHECK (amount >= 0 AND amount <> 'NaN'),
  applied_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX arbiter_usage_events_window ON arbiter_usage_events (window_start_ms);

-- Locally created approval tokens (CreateApproval): only the token's SHA-256 is stored.
CREATE TABLE arbiter_approvals (
  token_sha256     text    PRIMARY KEY CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
  tenant_id        text    NOT NULL,
  digest           text    NOT NULL,
  approver         text    NOT NULL,
  created_at_ms    bigint  NOT NULL,
  expires_at_ms    bigint  NOT NULL,
  used_at_ms       bigint
);
CREATE INDEX arbiter_approvals_expires ON arbiter_approvals (expires_at_ms);

-- Redeemed signed grants: SHA-256 of (tenant NUL grant id); a row means "used".
CREATE TABLE arbiter_approval_grants (
  grant_sha256     text    PRIMARY KEY CHECK (grant_sha256 ~ '^[0-9a-f]{64}$'),
  tenant_id        text    NOT NULL,
  expires_at_ms    bigint  NOT NULL,
  redeemed_at_ms   bigint  NOT NULL
);
CREATE INDEX arbiter_approval_grants_expires ON arbiter_approval_grants (expires_at_ms);

-- GuardMemory allowed writes per (tenant, agent, session).
CREATE TABLE arbiter_session_writes (
  tenant_id        text    NOT NULL,
  agent_id         text    NOT NULL,
  session_id       text    NOT NULL,
  writes           integer NOT NULL CHECK (writes >= 0),
  updated_at_ms    bigint  NOT NULL,
  PRIMARY KEY (tenant_id, agent_id, session_id)
);
CREATE INDEX arbiter_session_writes_updated ON arbiter_session_writes (updated_at_ms);
