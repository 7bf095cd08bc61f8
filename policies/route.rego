# Entrypoint arbiter/route: provider and model for a prompt, first match wins.
# The logic is in lib/route.rego; this package only exposes the result fields.
package arbiter.route

import data.arbiter.lib.run

provider := run.route.provider

model := run.route.model

reasons := run.route.reasons

fallbacks := run.route.fallbacks
