# GuardMemory: agent memory governance, checks in the documented order, the first failure wins.
# cfg is data.arbiter.config.guard_memory; inp is the GuardMemory input of docs/input-schema.md.
package arbiter.lib.guard_memory

# The whole GuardMemory document.
result(inp, cfg) := {"allow": false, "reasons": [reason]} if {
	reason := denial(inp, cfg)
} else := {"allow": true, "reasons": ["memory_allowed"]}

denial(inp, cfg) := "store_not_allowed" if {
	not store_allowed(inp.store, cfg.store_allowlist)
} else := "retention_missing" if {
	inp.operation == "WRITE"
	retention_missing(inp, cfg)
} else := "retention_exceeds_ceiling" if {
	inp.operation == "WRITE"
	is_number(cfg.ttl_ceiling_seconds)
	inp.retention.ttl_seconds > cfg.ttl_ceiling_seconds
} else := "content_too_large" if {
	inp.content.bytes > cfg.max_content_bytes
} else := "content_denied_pattern" if {
	inp.content.present == true
	some pattern in cfg.deny_patterns
	regex.match(pattern, inp.content.text)
} else := "session_quota_exceeded" if {
	inp.operation == "WRITE"
	inp.session.writes >= cfg.session_write_quota
}

# Exact name, a trailing "*" prefix wildcard ("notes/*"), or "*" for every store.
store_allowed(store, allowlist) if {
	some entry in allowlist
	store_matches(store, entry)
}

store_matches(_, entry) if entry == "*"

store_matches(store, entry) if {
	not endswith(entry, "*")
	store == entry
}

store_matches(store, entry) if {
	entry != "*"
	endswith(entry, "*")
	startswith(store, trim_suffix(entry, "*"))
}

# With a ceiling configured, a write must carry a positive TTL: no TTL (or 0) means indefinite
# retention in most stores.
retention_missing(inp, cfg) if {
	is_number(cfg.ttl_ceiling_seconds)
	not inp.retention.set == true
}

retention_missing(inp, cfg) if {
	is_number(cfg.ttl_ceiling_seconds)
	inp.retention.set == true
	inp.retention.ttl_seconds <= 0
}
