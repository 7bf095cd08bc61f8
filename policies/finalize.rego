# Entrypoint arbiter/finalize: the claim-to-evidence answer gate, exactly one terminal mode.
# The logic is in lib/finalize.rego; this package only exposes the result fields.
package arbiter.finalize

import data.arbiter.lib.run

mode := run.finalize.mode

reasons := run.finalize.reasons
