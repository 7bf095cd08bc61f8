# Route: deterministic provider/model routing, first match wins.
# cfg is data.arbiter.config.route; inp is the Route input of docs/input-schema.md.
package arbiter.lib.route

import data.arbiter.lib

# The whole Route document.
result(inp, cfg) := {
	"provider": provider,
	"model": model(provider, inp.requested_model, cfg),
	"reasons": [reason],
	"fallbacks": fallbacks(provider, reason, cfg),
} if {
	reason := decision(inp, cfg)
	provider := reason_provider(reason, cfg)
}

# The first rule that matches, in the documented order.
decision(inp, cfg) := "sensitivity_keyword" if {
	keyword_hit(inp, cfg)
} else := "sensitive_classification" if {
	classification_hit(inp, cfg)
} else := "budget_exceeded" if {
	budget_exceeded(inp, cfg)
} else := "cost_under_threshold" if {
	inp.prompt.chars <= cfg.threshold_chars
} else := "default_provider"

# Reasons that pin the request to local providers, fallbacks included.
local_only := {"sensitivity_keyword", "sensitive_classification", "budget_exceeded"}

reason_provider(reason, cfg) := cfg.default_provider if {
	reason == "default_provider"
} else := cfg.local_provider

# A configured keyword occurs in some message, ignoring case (substring match).
keyword_hit(inp, cfg) if {
	some message in inp.messages
	text := lower(message.content)
	some keyword in cfg.sensitive_keywords
	contains(text, lower(keyword))
}

classification_hit(inp, cfg) if {
	some tag in inp.classifications
	lib.in_ignore_case(tag, cfg.sensitive_classifications)
}

# The tenant's spend is strictly over its limit in some unit. A tenant without an entry in
# cfg.budgets gets cfg.default_budget; a unit without a limit is unlimited.
budget_exceeded(inp, cfg) if {
	limits := object.get(cfg.budgets, inp.tenant_id, cfg.default_budget)
	some unit, limit in limits
	object.get(inp.tenant.spend, unit, 0) > limit
}

# The requested model when the provider offers it, else the provider's default model (the local
# provider's model is cfg.local_model).
model(provider, requested, cfg) := requested if {
	requested != ""
	requested in cfg.providers[provider].models
} else := cfg.local_model if {
	provider == cfg.local_provider
} else := cfg.providers[provider].default_model

# The provider's configured fallbacks; when the decision pinned the request to local providers,
# only fallbacks whose provider is of kind "local" remain.
fallbacks(provider, reason, cfg) := [{"provider": f.provider, "model": f.model} |
	some f in cfg.providers[provider].fallbacks
	fallback_permitted(f, reason, cfg)
]

fallback_permitted(_, reason, _) if not reason in local_only

fallback_permitted(f, reason, cfg) if {
	reason in local_only
	cfg.providers[f.provider].kind == "local"
}
