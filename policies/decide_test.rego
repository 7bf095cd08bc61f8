# Tests of the Decide logic against the shipped configuration (policies/data.json).
package arbiter.decide_test

import data.arbiter.lib.decide

cfg := data.arbiter.config.decide

base := {
	"tenant_id": "acme",
	"request_id": "r-1",
	"subject": {"id": "u1", "roles": ["engineer"], "attributes": {}},
	"action": "read",
	"resource": {"type": "service", "id": "billing", "tenant_id": "acme", "attributes": {}},
	"context": {},
	"now": {"rfc3339": "2026-11-22T03:04:05.678Z", "ns": 1795316645678000000},
	"approval": {"present": false, "valid": false, "reason": "approval_missing"},
}

# object.union merges nested objects, so a test names only the fields it changes.
run(overrides) := decide.result(object.union(base, overrides), cfg)

valid_approval := {"approval": {"present": true, "valid": true, "reason": ""}}

test_read_allowed_tier_0 if {
	r := run({})
	r.allow == true
	r.risk_tier == 0
	r.requires_approval == false
	r.reasons == {"role_permitted"}
	r.obligations == {"redact_fields": [], "allow_fields": []}
}

test_safe_write_outside_production_tier_1 if {
	r := run({"action": "deploy", "resource": {"attributes": {"environment": "staging"}}})
	r.allow == true
	r.risk_tier == 1
	r.requires_approval == false
	r.reasons == {"role_permitted"}
}

test_no_matching_role_denied if {
	r := run({"subject": {"roles": ["viewer"]}, "action": "deploy"})
	r.allow == false
	r.reasons == {"not_permitted"}
	r.risk_tier == 1
}

test_no_roles_denied if {
	r := run({"subject": {"roles": []}})
	r.allow == false
	r.reasons == {"not_permitted"}
}

test_viewer_wildcard_resource_type if {
	r := run({"subject": {"roles": ["viewer"]}, "resource": {"type": "anything"}, "action": "list"})
	r.allow == true
	r.reasons == {"role_permitted"}
}

test_cross_tenant_denied if {
	r := run({"resource": {"tenant_id": "globex"}})
	r.allow == false
	r.reasons == {"cross_tenant", "role_permitted"}
}

test_cross_tenant_denied_even_for_admin if {
	r := run({"subject": {"roles": ["admin"]}, "resource": {"tenant_id": "globex"}})
	r.allow == false
	"cross_tenant" in r.reasons
}

test_unknown_action_denied_even_for_admin if {
	r := run({"subject": {"roles": ["admin"]}, "action": "teleport"})
	r.allow == false
	r.reasons == {"unknown_action", "role_permitted"}
	r.risk_tier == 3
	r.requires_approval == false
}

test_action_names_are_case_sensitive if {
	r := run({"action": "READ"})
	r.allow == false
	"unknown_action" in r.reasons
}

test_production_write_tier_2_needs_approval if {
	r := run({"action": "deploy", "resource": {"attributes": {"environment": "production"}}})
	r.allow == false
	r.risk_tier == 2
	r.requires_approval == true
	r.reasons == {"production_write", "approval_required", "role_permitted"}
}

test_production_from_context_ignoring_case if {
	r := run({"action": "deploy", "context": {"environment": "PROD"}})
	r.risk_tier == 2
	"production_write" in r.reasons
}

test_production_read_stays_tier_0 if {
	r := run({"action": "read", "resource": {"attributes": {"environment": "production"}}})
	r.allow == true
	r.risk_tier == 0
}

test_production_write_with_valid_approval_allowed if {
	r := run(object.union(
		{"action": "deploy", "resource": {"attributes": {"environment": "production"}}},
		valid_approval,
	))
	r.allow == true
	r.risk_tier == 2
	r.requires_approval == true
	r.reasons == {"production_write", "approval_valid", "role_permitted"}
}

test_approval_does_not_override_rbac if {
	r := run(object.union(
		{"subject": {"roles": ["viewer"]}, "action": "deploy", "resource": {"attributes": {"environment": "production"}}},
		valid_approval,
	))
	r.allow == false
	r.reasons == {"production_write", "approval_valid", "not_permitted"}
}

test_approval_does_not_override_cross_tenant if {
	r := run(object.union({"action": "delete", "resource": {"tenant_id": "globex"}}, valid_approval))
	r.allow == false
	"cross_tenant" in r.reasons
}

test_invalid_approval_reports_store_reason if {
	r := run({
		"action": "deploy",
		"resource": {"attributes": {"environment": "production"}},
		"approval": {"present": true, "valid": false, "reason": "approval_expired"},
	})
	r.allow == false
	r.reasons == {"production_write", "approval_required", "approval_expired", "role_permitted"}
}

test_replayed_approval_denied if {
	r := run({"action": "delete", "approval": {"present": true, "valid": false, "reason": "approval_replayed"}})
	r.allow == false
	r.reasons == {"destructive_action", "approval_required", "approval_replayed", "role_permitted"}
}

test_wrong_tenant_and_wrong_action_approvals_denied if {
	r1 := run({"action": "delete", "approval": {"present": true, "valid": false, "reason": "approval_wrong_tenant"}})
	r1.allow == false
	"approval_wrong_tenant" in r1.reasons
	r2 := run({"action": "delete", "approval": {"present": true, "valid": false, "reason": "approval_wrong_action"}})
	r2.allow == false
	"approval_wrong_action" in r2.reasons
}

test_unknown_approval_token_denied if {
	r := run({"action": "drop", "resource": {"type": "database"}, "approval": {"present": true, "valid": false, "reason": "approval_unknown"}})
	r.allow == false
	r.reasons == {"destructive_action", "approval_required", "approval_unknown", "role_permitted"}
}

test_missing_approval_reason_not_repeated if {
	r := run({"action": "delete"})
	not "approval_missing" in r.reasons
	"approval_required" in r.reasons
}

test_approval_on_low_tier_is_ignored if {
	r := run({"approval": {"present": true, "valid": false, "reason": "approval_expired"}})
	r.allow == true
	r.reasons == {"role_permitted"}
}

test_each_destructive_verb_tier_3 if {
	tiers := {verb: r.risk_tier |
		some verb in ["delete", "destroy", "uninstall", "drop", "truncate", "purge"]
		r := run({"subject": {"roles": ["admin"]}, "action": verb})
	}
	tiers == {"delete": 3, "destroy": 3, "uninstall": 3, "drop": 3, "truncate": 3, "purge": 3}
}

test_destructive_without_approval_denied if {
	r := run({"action": "delete"})
	r.allow == false
	r.risk_tier == 3
	r.requires_approval == true
	r.reasons == {"destructive_action", "approval_required", "role_permitted"}
}

test_destructive_with_approval_allowed if {
	r := run(object.union({"action": "delete"}, valid_approval))
	r.allow == true
	r.risk_tier == 3
	r.reasons == {"destructive_action", "approval_valid", "role_permitted"}
}

test_destructive_verb_inside_action_name if {
	c := object.union(cfg, {"actions": {"write": ["bulk_delete"]}})
	r := decide.result(object.union(base, {"subject": {"roles": ["admin"]}, "action": "bulk_delete"}), c)
	r.risk_tier == 3
	"destructive_action" in r.reasons
}

test_bulk_101_records_tier_3 if {
	r := run({"action": "update", "context": {"record_count": 101}})
	r.risk_tier == 3
	r.allow == false
	r.reasons == {"bulk_operation", "approval_required", "role_permitted"}
}

test_bulk_exactly_100_records_not_bulk if {
	r := run({"action": "update", "context": {"record_count": 100}})
	r.risk_tier == 1
	r.allow == true
}

test_bulk_counts_an_array_of_ids if {
	digits := [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
	ids := array.concat([sprintf("%d%d", [a, b]) | some a in digits; some b in digits], ["extra"])
	count(ids) == 101
	r := run({"action": "update", "resource": {"attributes": {"record_ids": ids}}})
	"bulk_operation" in r.reasons
}

test_bulk_array_of_100_ids_not_bulk if {
	digits := [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
	ids := [sprintf("%d%d", [a, b]) | some a in digits; some b in digits]
	r := run({"action": "update", "resource": {"attributes": {"record_ids": ids}}})
	r.risk_tier == 1
}

test_bulk_count_as_numeric_string if {
	r := run({"action": "update", "context": {"record_count": "250"}})
	"bulk_operation" in r.reasons
	r2 := run({"action": "update", "context": {"record_count": "many"}})
	r2.risk_tier == 1
}

test_bulk_read_stays_tier_0 if {
	r := run({"action": "read", "context": {"record_count": 5000}})
	r.risk_tier == 0
	r.allow == true
}

test_payment_mutation_tier_3 if {
	r := run({"subject": {"roles": ["finance"]}, "action": "create", "resource": {"type": "payment"}})
	r.risk_tier == 3
	r.allow == false
	r.reasons == {"payment_mutation", "approval_required", "role_permitted"}
}

test_payment_action_tier_3 if {
	r := run({"subject": {"roles": ["finance"]}, "action": "refund", "resource": {"type": "payment"}})
	r.risk_tier == 3
	"payment_mutation" in r.reasons
}

test_accounting_mutation_tier_3 if {
	r := run({"subject": {"roles": ["finance"]}, "action": "update", "resource": {"type": "journal_entry"}})
	r.risk_tier == 3
	"payment_mutation" in r.reasons
}

test_payment_read_tier_0 if {
	r := run({"subject": {"roles": ["finance"]}, "action": "read", "resource": {"type": "payment"}})
	r.risk_tier == 0
	r.allow == true
}

test_dns_change_tier_2 if {
	r := run({"action": "update", "resource": {"type": "dns_record"}})
	r.risk_tier == 2
	r.requires_approval == true
	r.reasons == {"dns_change", "approval_required", "role_permitted"}
}

test_critical_finance_record_tier_2 if {
	r := run({"subject": {"roles": ["finance"]}, "action": "update", "resource": {"type": "ledger"}})
	r.risk_tier == 2
	r.reasons == {"critical_finance_record", "approval_required", "role_permitted"}
}

test_highest_tier_wins if {
	r := run({"action": "delete", "resource": {"type": "dns_record", "attributes": {"environment": "production"}}})
	r.risk_tier == 3
	r.reasons == {"destructive_action", "dns_change", "production_write", "approval_required", "role_permitted"}
}

test_redaction_for_restricted_role if {
	r := run({"subject": {"roles": ["support"]}, "resource": {"type": "customer"}})
	r.allow == true
	r.obligations == {"redact_fields": ["card_number", "date_of_birth", "ssn"], "allow_fields": []}
}

test_allow_fields_for_analyst if {
	r := run({"subject": {"roles": ["analyst"]}, "resource": {"type": "customer"}})
	r.obligations == {"redact_fields": [], "allow_fields": ["created_at", "id", "plan", "region"]}
}

test_most_restrictive_obligations_win if {
	r := run({"subject": {"roles": ["analyst", "support", "admin"]}, "resource": {"type": "customer"}})
	r.allow == true
	r.obligations == {"redact_fields": ["card_number", "date_of_birth", "ssn"], "allow_fields": ["created_at", "id", "plan", "region"]}
}

test_no_redaction_on_other_resource_types if {
	r := run({"subject": {"roles": ["support"]}, "resource": {"type": "ticket"}})
	r.obligations == {"redact_fields": [], "allow_fields": []}
}

test_redaction_rules_from_data if {
	c := object.union(cfg, {"redaction": [{"resource_type": "*", "roles": ["engineer"], "redact_fields": ["token"]}]})
	r := decide.result(base, c)
	r.obligations == {"redact_fields": ["token"], "allow_fields": []}
}

test_roles_from_data if {
	c := object.union(cfg, {"roles": {"intern": {"service": ["read"]}}})
	r1 := decide.result(object.union(base, {"subject": {"roles": ["intern"]}}), c)
	r1.allow == true
	r2 := decide.result(object.union(base, {"subject": {"roles": ["intern"]}, "action": "list"}), c)
	r2.allow == false
}
