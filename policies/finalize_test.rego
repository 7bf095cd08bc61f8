# Tests of the Finalize logic against the shipped configuration (policies/data.json).
package arbiter.finalize_test

import data.arbiter.lib.finalize

cfg := data.arbiter.config.finalize

base := {
	"tenant_id": "acme",
	"request_id": "r-1",
	"session_id": "s-1",
	"claims": [{"id": "c1", "evidence_ids": ["e1"]}],
	"evidence": [{"id": "e1", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "source": "wiki", "as_of": "", "well_formed": true}],
	"signals": {"permission_denied": false, "source_unavailable": false},
	"claims_total": 1,
	"supported_claim_ids": ["c1"],
	"unsupported_claim_ids": [],
	"coverage": 1,
	"now": {"rfc3339": "2026-11-22T03:04:05.678Z", "ns": 1795316645678000000},
}

run(overrides) := finalize.result(object.union(base, overrides), cfg)

test_full_coverage_supported if run({}) == {"mode": "SUPPORTED", "reasons": ["coverage_met"]}

test_zero_claims if {
	run({"claims": [], "claims_total": 0, "supported_claim_ids": [], "coverage": 0}) == {"mode": "INSUFFICIENT_EVIDENCE", "reasons": ["no_claims"]}
}

test_partial_coverage_never_supported if {
	r := run({"claims_total": 2, "supported_claim_ids": ["c1"], "unsupported_claim_ids": ["c2"], "coverage": 0.5})
	r == {"mode": "INSUFFICIENT_EVIDENCE", "reasons": ["coverage_below_threshold"]}
}

test_coverage_exactly_at_threshold if {
	c := object.union(cfg, {"coverage_threshold": 0.5})
	finalize.result(object.union(base, {"claims_total": 2, "coverage": 0.5}), c).mode == "SUPPORTED"
}

test_coverage_just_under_threshold if {
	c := object.union(cfg, {"coverage_threshold": 0.75})
	finalize.result(object.union(base, {"claims_total": 3, "coverage": 0.6666666666666666}), c).mode == "INSUFFICIENT_EVIDENCE"
}

test_source_unavailable_signal if {
	run({"signals": {"source_unavailable": true}}) == {"mode": "SOURCE_UNAVAILABLE", "reasons": ["source_unavailable"]}
}

test_permission_denied_signal if {
	run({"signals": {"permission_denied": true}}) == {"mode": "INSUFFICIENT_PERMISSION", "reasons": ["permission_denied"]}
}

test_source_unavailable_wins_over_permission if {
	run({"signals": {"permission_denied": true, "source_unavailable": true}}).mode == "SOURCE_UNAVAILABLE"
}

test_permission_wins_over_evidence if {
	run({"signals": {"permission_denied": true}, "claims_total": 0, "coverage": 0}).mode == "INSUFFICIENT_PERMISSION"
}

test_missing_coverage_is_not_supported if {
	inp := object.remove(base, ["coverage"])
	finalize.result(inp, cfg) == {"mode": "INSUFFICIENT_EVIDENCE", "reasons": ["coverage_below_threshold"]}
}
