# Shared helpers of the default policy pack.
#
# The pack's logic lives in functions of (inp, cfg) in the arbiter.lib.* packages: the entrypoint
# packages (arbiter.decide, arbiter.route, arbiter.guard_memory, arbiter.finalize) call them with
# `input` and their section of data.arbiter.config, and the *_test.rego files call them with
# literal inputs and configurations (our compiler has no `with`).
package arbiter.lib

# The section `name` of data.arbiter.config (see policies/data.json). Undefined when the section
# is missing, which makes the entrypoint undefined and Arbiter fail closed (policy_undefined);
# Arbiter's load-time data checks reject such a bundle before it gets that far.
config(name) := data.arbiter.config[name]

# The lowercase tokens of a name split on "_", "-", ".", ":" and "/" ("Bulk-Delete" -> ["bulk", "delete"]).
name_tokens(s) := split(replace(replace(replace(replace(lower(s), "-", "_"), ".", "_"), ":", "_"), "/", "_"), "_")

# True when `x` equals one of `xs` ignoring case (both strings).
in_ignore_case(x, xs) if {
	some y in xs
	lower(x) == lower(y)
}
