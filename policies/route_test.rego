# Tests of the Route logic against the shipped configuration (policies/data.json).
package arbiter.route_test

import data.arbiter.lib.route

cfg := data.arbiter.config.route

base := {
	"tenant_id": "acme",
	"request_id": "r-1",
	"messages": [{"role": "user", "content": "hello"}],
	"requested_model": "",
	"classifications": [],
	"prompt": {"chars": 5000, "sha256": "0000000000000000000000000000000000000000000000000000000000000000", "estimated_tokens": 1250},
	"tenant": {"spend": {}},
	"now": {"rfc3339": "2026-11-22T03:04:05.678Z", "ns": 1795316645678000000},
}

run(overrides) := route.result(object.union(base, overrides), cfg)

test_long_prompt_goes_to_default_provider if {
	r := run({})
	r == {
		"provider": "openai",
		"model": "gpt-4o-mini",
		"reasons": ["default_provider"],
		"fallbacks": [
			{"provider": "anthropic", "model": "claude-3-5-haiku"},
			{"provider": "local", "model": "llama3.1-8b"},
		],
	}
}

test_requested_model_kept_when_provider_offers_it if {
	r := run({"requested_model": "gpt-4o"})
	r.provider == "openai"
	r.model == "gpt-4o"
}

test_unknown_requested_model_replaced_by_default if {
	r := run({"requested_model": "gpt-9000"})
	r.model == "gpt-4o-mini"
}

test_keyword_in_third_message_mixed_case if {
	r := run({"messages": [
		{"role": "system", "content": "You are helpful."},
		{"role": "user", "content": "Summarise this."},
		{"role": "user", "content": "My Social Security number is on file"},
	]})
	r.provider == "local"
	r.model == "llama3.1-8b"
	r.reasons == ["sensitivity_keyword"]
}

test_sensitivity_fallbacks_never_cloud if {
	r := run({"messages": [{"role": "user", "content": "the PASSWORD is hunter2"}]})
	r.provider == "local"
	r.fallbacks == [{"provider": "local", "model": "qwen2.5-7b"}]
}

test_sensitive_classification_ignoring_case if {
	r := run({"classifications": ["public", "PII"]})
	r.provider == "local"
	r.reasons == ["sensitive_classification"]
	r.fallbacks == [{"provider": "local", "model": "qwen2.5-7b"}]
}

test_keyword_wins_over_classification if {
	r := run({"classifications": ["phi"], "messages": [{"role": "user", "content": "diagnosis attached"}]})
	r.reasons == ["sensitivity_keyword"]
}

test_non_sensitive_classification_ignored if {
	r := run({"classifications": ["public", "internal"]})
	r.reasons == ["default_provider"]
}

test_budget_exceeded_goes_local if {
	c := object.union(cfg, {"budgets": {"acme": {"usd": 10}}})
	r := route.result(object.union(base, {"tenant": {"spend": {"usd": 10.5}}}), c)
	r.provider == "local"
	r.reasons == ["budget_exceeded"]
	r.fallbacks == [{"provider": "local", "model": "qwen2.5-7b"}]
}

test_budget_exactly_reached_not_exceeded if {
	c := object.union(cfg, {"budgets": {"acme": {"usd": 10}}})
	r := route.result(object.union(base, {"tenant": {"spend": {"usd": 10}}}), c)
	r.reasons == ["default_provider"]
}

test_budget_of_other_tenant_does_not_apply if {
	c := object.union(cfg, {"budgets": {"globex": {"usd": 1}}})
	r := route.result(object.union(base, {"tenant": {"spend": {"usd": 10}}}), c)
	r.reasons == ["default_provider"]
}

test_default_budget_applies_to_unlisted_tenants if {
	c := object.union(cfg, {"default_budget": {"tokens": 1000}})
	r := route.result(object.union(base, {"tenant": {"spend": {"tokens": 1001}}}), c)
	r.reasons == ["budget_exceeded"]
}

test_sensitivity_wins_over_budget if {
	c := object.union(cfg, {"budgets": {"acme": {"usd": 1}}})
	r := route.result(object.union(base, {"tenant": {"spend": {"usd": 5}}, "classifications": ["secret"]}), c)
	r.reasons == ["sensitive_classification"]
}

test_threshold_at_limit_goes_local if {
	r := run({"prompt": {"chars": 1000}})
	r.provider == "local"
	r.reasons == ["cost_under_threshold"]
	# cost-driven local routing may still fall back to the cloud
	r.fallbacks == [{"provider": "local", "model": "qwen2.5-7b"}, {"provider": "openai", "model": "gpt-4o-mini"}]
}

test_threshold_one_over_goes_default if {
	r := run({"prompt": {"chars": 1001}})
	r.provider == "openai"
	r.reasons == ["default_provider"]
}

test_threshold_from_data if {
	c := object.union(cfg, {"threshold_chars": 10})
	r := route.result(object.union(base, {"prompt": {"chars": 11}}), c)
	r.reasons == ["default_provider"]
}

test_keywords_from_data if {
	c := object.union(cfg, {"sensitive_keywords": ["Project Falcon"]})
	r := route.result(object.union(base, {"messages": [{"role": "user", "content": "status of project falcon?"}]}), c)
	r.reasons == ["sensitivity_keyword"]
}

test_requested_local_model if {
	r := run({"prompt": {"chars": 10}, "requested_model": "qwen2.5-7b"})
	r.provider == "local"
	r.model == "qwen2.5-7b"
}

test_default_provider_from_data if {
	c := object.union(cfg, {"default_provider": "anthropic"})
	r := route.result(base, c)
	r == {
		"provider": "anthropic",
		"model": "claude-3-5-haiku",
		"reasons": ["default_provider"],
		"fallbacks": [{"provider": "local", "model": "llama3.1-8b"}],
	}
}
