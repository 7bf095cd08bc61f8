# Entrypoint arbiter/decide: authorization, risk tier, approvals, obligations.
# The logic is in lib/decide.rego; this package only exposes the result fields.
package arbiter.decide

import data.arbiter.lib.run

default allow := false

allow := run.decide.allow

reasons := run.decide.reasons

risk_tier := run.decide.risk_tier

requires_approval := run.decide.requires_approval

obligations := run.decide.obligations
