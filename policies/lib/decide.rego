# Decide: RBAC, cross-tenant isolation, risk tiers, approvals and redaction obligations.
# cfg is data.arbiter.config.decide; inp is the Decide input of docs/input-schema.md.
package arbiter.lib.decide

import data.arbiter.lib

# The whole Decide document.
result(inp, cfg) := {
	"allow": count(denials) == 0,
	"reasons": denials | notes,
	"risk_tier": tier,
	"requires_approval": requires_approval(inp, cfg, tier),
	"obligations": obligations(inp, cfg),
} if {
	tier := risk_tier(inp, cfg)
	denials := deny_reasons(inp, cfg, tier)
	notes := info_reasons(inp, cfg, tier)
}

# ---- denials: any one of them denies ----------------------------------------------------------

deny_reasons(inp, cfg, tier) := {code |
	some code in ["cross_tenant", "unknown_action", "not_permitted", "approval_required"]
	denies(code, inp, cfg, tier)
} | approval_failure(inp, cfg, tier)

denies("cross_tenant", inp, _, _) if inp.resource.tenant_id != inp.tenant_id

denies("unknown_action", inp, cfg, _) if not known_action(inp.action, cfg)

denies("not_permitted", inp, cfg, _) if not role_permits(inp, cfg)

denies("approval_required", inp, cfg, tier) if {
	requires_approval(inp, cfg, tier)
	not inp.approval.valid == true
}

# Why the presented approval token did not count (the approval store's code, e.g. approval_expired),
# reported only when the action needs an approval.
approval_failure(inp, cfg, tier) := {inp.approval.reason} if {
	requires_approval(inp, cfg, tier)
	inp.approval.present == true
	not inp.approval.valid == true
	is_string(inp.approval.reason)
	inp.approval.reason != ""
} else := set()

# ---- informational reasons: why the tier is what it is, and what allowed ------------------------

info_reasons(inp, cfg, tier) := (tier_triggers(inp, cfg) | {code |
	some code in ["role_permitted", "approval_valid"]
	notes(code, inp, cfg, tier)
})

notes("role_permitted", inp, cfg, _) if role_permits(inp, cfg)

notes("approval_valid", inp, cfg, tier) if {
	requires_approval(inp, cfg, tier)
	inp.approval.valid == true
}

# ---- actions and RBAC -------------------------------------------------------------------------

known_action(action, cfg) if action in cfg.actions.read

known_action(action, cfg) if action in cfg.actions.write

known_action(action, cfg) if action in cfg.risk.destructive_verbs

read_action(action, cfg) if action in cfg.actions.read

# Some role of the subject grants the action on the resource type (or on "*"); a granted action
# "*" grants every action.
role_permits(inp, cfg) if {
	some role in inp.subject.roles
	grants := cfg.roles[role]
	some rtype in [inp.resource.type, "*"]
	some granted in grants[rtype]
	action_granted(granted, inp.action)
}

action_granted(granted, _) if granted == "*"

action_granted(granted, action) if granted == action

# ---- risk tiers -------------------------------------------------------------------------------

# Tier 3 for an unknown action (it is denied anyway); otherwise the highest of the base tier
# (0 for reads, 1 for other actions) and the tiers of the triggers that apply.
risk_tier(inp, cfg) := 3 if {
	not known_action(inp.action, cfg)
} else := max({base_tier(inp, cfg)} | {trigger_tier[t] | some t in tier_triggers(inp, cfg)})

base_tier(inp, cfg) := 0 if read_action(inp.action, cfg)

base_tier(inp, cfg) := 1 if not read_action(inp.action, cfg)

trigger_tier := {
	"destructive_action": 3,
	"bulk_operation": 3,
	"payment_mutation": 3,
	"production_write": 2,
	"dns_change": 2,
	"critical_finance_record": 2,
}

tier_triggers(inp, cfg) := {t |
	some t, _ in trigger_tier
	triggers(t, inp, cfg)
}

# A destructive verb anywhere in the action name ("delete", "bulk_delete", "db.drop").
triggers("destructive_action", inp, cfg) if {
	some token in lib.name_tokens(inp.action)
	token in cfg.risk.destructive_verbs
}

# A non-read action over more than bulk_threshold records: a number (or numeric string), or an
# array whose length counts, under one of bulk_count_keys in the context or the resource attributes.
triggers("bulk_operation", inp, cfg) if {
	not read_action(inp.action, cfg)
	some key in cfg.risk.bulk_count_keys
	some source in [inp.context, inp.resource.attributes]
	record_count(source[key]) > cfg.risk.bulk_threshold
}

triggers("payment_mutation", inp, cfg) if {
	not read_action(inp.action, cfg)
	inp.resource.type in cfg.risk.payment_resource_types
}

triggers("payment_mutation", inp, cfg) if inp.action in cfg.risk.payment_actions

triggers("production_write", inp, cfg) if {
	not read_action(inp.action, cfg)
	some source in [inp.resource.attributes, inp.context]
	env := source[cfg.risk.environment_key]
	is_string(env)
	lib.in_ignore_case(env, cfg.risk.production_environments)
}

triggers("dns_change", inp, cfg) if {
	not read_action(inp.action, cfg)
	inp.resource.type in cfg.risk.dns_resource_types
}

triggers("critical_finance_record", inp, cfg) if {
	not read_action(inp.action, cfg)
	inp.resource.type in cfg.risk.critical_finance_resource_types
}

record_count(v) := v if is_number(v)

record_count(v) := count(v) if is_array(v)

# A count sent as a numeric string ("250") counts too, so the trigger cannot be dodged by quoting.
record_count(v) := to_number(v) if is_string(v)

# Tier 2 and above needs an approval; an unknown action is denied whatever the approval says.
requires_approval(inp, cfg, tier) := true if {
	known_action(inp.action, cfg)
	tier >= 2
} else := false

# ---- obligations ------------------------------------------------------------------------------

# Redaction rules of cfg.redaction that match the resource type (or "*") and one of the subject's
# roles. redact_fields is the union over matching rules; allow_fields the intersection over
# matching rules that set it (the most restrictive wins), minus every redacted field.
obligations(inp, cfg) := {
	"redact_fields": sort(redact),
	"allow_fields": sort({f | some f in allowed; not f in redact}),
} if {
	rules := [rule | some rule in cfg.redaction; rule_applies(rule, inp)]
	redact := {f | some rule in rules; some f in object.get(rule, "redact_fields", [])}
	allow_sets := {{f | some f in rule.allow_fields} | some rule in rules; is_array(object.get(rule, "allow_fields", null))}
	allowed := intersect_all(allow_sets)
}

intersect_all(sets) := intersection(sets) if count(sets) > 0

intersect_all(sets) := set() if count(sets) == 0

rule_applies(rule, inp) if {
	rule.resource_type in ["*", inp.resource.type]
	some role in inp.subject.roles
	role in rule.roles
}
