# Entrypoint arbiter/guard_memory: agent memory governance.
# The logic is in lib/guard_memory.rego; this package only exposes the result fields.
package arbiter.guard_memory

import data.arbiter.lib.run

default allow := false

allow := run.guard_memory.allow

reasons := run.guard_memory.reasons
