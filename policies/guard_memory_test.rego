# Tests of the GuardMemory logic against the shipped configuration (policies/data.json).
package arbiter.guard_memory_test

import data.arbiter.lib.guard_memory

cfg := data.arbiter.config.guard_memory

base := {
	"tenant_id": "acme",
	"request_id": "r-1",
	"agent_id": "agent-7",
	"session_id": "s-1",
	"operation": "WRITE",
	"store": "notes/user",
	"retention": {"set": true, "ttl_seconds": 3600},
	"content": {"present": true, "text": "likes green tea", "bytes": 15},
	"session": {"writes": 0},
	"now": {"rfc3339": "2026-11-22T03:04:05.678Z", "ns": 1795316645678000000},
}

run(overrides) := guard_memory.result(object.union(base, overrides), cfg)

denied(overrides, reason) if run(overrides) == {"allow": false, "reasons": [reason]}

allowed(overrides) if run(overrides) == {"allow": true, "reasons": ["memory_allowed"]}

test_write_allowed if allowed({})

test_wildcard_store_match if allowed({"store": "notes/project/x"})

test_exact_store_match if allowed({"store": "scratch"})

test_exact_entry_is_not_a_prefix if denied({"store": "scratchpad"}, "store_not_allowed")

test_wildcard_needs_the_prefix if denied({"store": "notes"}, "store_not_allowed")

test_read_blocked_by_allowlist if {
	denied({"operation": "READ", "store": "secrets/vault", "retention": {"set": false, "ttl_seconds": 0}, "content": {"present": false, "text": "", "bytes": 0}}, "store_not_allowed")
}

test_read_allowed_store if {
	allowed({"operation": "READ", "retention": {"set": false, "ttl_seconds": 0}, "content": {"present": false, "text": "", "bytes": 0}})
}

test_delete_blocked_by_allowlist if denied({"operation": "DELETE", "store": "other"}, "store_not_allowed")

test_star_allows_every_store if {
	c := object.union(cfg, {"store_allowlist": ["*"]})
	guard_memory.result(object.union(base, {"store": "anything/at/all"}), c).allow == true
}

test_empty_allowlist_denies_everything if {
	c := object.union(cfg, {"store_allowlist": []})
	guard_memory.result(base, c).reasons == ["store_not_allowed"]
}

test_missing_ttl_with_ceiling if denied({"retention": {"set": false, "ttl_seconds": 0}}, "retention_missing")

test_zero_ttl_counts_as_missing if denied({"retention": {"set": true, "ttl_seconds": 0}}, "retention_missing")

test_missing_ttl_without_ceiling_allowed if {
	c := object.union(cfg, {"ttl_ceiling_seconds": null})
	guard_memory.result(object.union(base, {"retention": {"set": false, "ttl_seconds": 0}}), c).allow == true
}

test_ttl_at_ceiling_allowed if allowed({"retention": {"ttl_seconds": 2592000}})

test_ttl_over_ceiling if denied({"retention": {"ttl_seconds": 2592001}}, "retention_exceeds_ceiling")

test_read_without_ttl_allowed if allowed({"operation": "READ", "retention": {"set": false, "ttl_seconds": 0}})

test_content_at_limit_allowed if allowed({"content": {"bytes": 65536}})

test_content_over_limit if denied({"content": {"bytes": 65537}}, "content_too_large")

test_deny_pattern_private_key if {
	denied({"content": {"text": "-----BEGIN RSA PRIVATE KEY-----\nMIIE", "bytes": 36}}, "content_denied_pattern")
}

test_deny_pattern_ssn if denied({"content": {"text": "ssn 123-45-6789 ok", "bytes": 18}}, "content_denied_pattern")

test_deny_pattern_aws_key if denied({"content": {"text": "key AKIAABCDEFGHIJKLMNOP", "bytes": 24}}, "content_denied_pattern")

test_deny_pattern_password_assignment if denied({"content": {"text": "Password: hunter2", "bytes": 17}}, "content_denied_pattern")

test_similar_text_not_denied if allowed({"content": {"text": "call 123-456-7890 about the password reset", "bytes": 42}})

test_deny_patterns_from_data if {
	c := object.union(cfg, {"deny_patterns": ["falcon"]})
	guard_memory.result(object.union(base, {"content": {"text": "project falcon"}}), c).reasons == ["content_denied_pattern"]
}

test_quota_last_allowed_write if allowed({"session": {"writes": 99}})

test_quota_exceeded if denied({"session": {"writes": 100}}, "session_quota_exceeded")

test_quota_does_not_apply_to_reads if {
	allowed({"operation": "READ", "session": {"writes": 100}, "retention": {"set": false, "ttl_seconds": 0}})
}

test_quota_from_data if {
	c := object.union(cfg, {"session_write_quota": 2})
	guard_memory.result(object.union(base, {"session": {"writes": 2}}), c).reasons == ["session_quota_exceeded"]
}

# The checks run in the documented order: the first failing one is the reason.
test_order_store_before_retention if denied({"store": "x", "retention": {"set": false, "ttl_seconds": 0}}, "store_not_allowed")

test_order_retention_before_size if denied({"retention": {"ttl_seconds": 99999999}, "content": {"bytes": 99999999}}, "retention_exceeds_ceiling")

test_order_size_before_pattern if denied({"content": {"text": "123-45-6789", "bytes": 70000}}, "content_too_large")

test_order_pattern_before_quota if denied({"content": {"text": "123-45-6789"}, "session": {"writes": 500}}, "content_denied_pattern")
