# Finalize: exactly one terminal mode, never a partial success.
# cfg is data.arbiter.config.finalize; inp is the Finalize input of docs/input-schema.md.
package arbiter.lib.finalize

# SUPPORTED is reached only through an explicit coverage comparison: a missing or non-numeric
# coverage falls through to INSUFFICIENT_EVIDENCE.
result(inp, cfg) := {"mode": "SOURCE_UNAVAILABLE", "reasons": ["source_unavailable"]} if {
	inp.signals.source_unavailable == true
} else := {"mode": "INSUFFICIENT_PERMISSION", "reasons": ["permission_denied"]} if {
	inp.signals.permission_denied == true
} else := {"mode": "INSUFFICIENT_EVIDENCE", "reasons": ["no_claims"]} if {
	not inp.claims_total > 0
} else := {"mode": "SUPPORTED", "reasons": ["coverage_met"]} if {
	is_number(inp.coverage)
	inp.coverage >= cfg.coverage_threshold
} else := {"mode": "INSUFFICIENT_EVIDENCE", "reasons": ["coverage_below_threshold"]}
