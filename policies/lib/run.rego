# One evaluation of each entrypoint's logic against `input` and the bundle data. Zero-argument
# rules are computed once per evaluation, so each entrypoint package reads its fields from here
# without repeating the work per field.
package arbiter.lib.run

import data.arbiter.lib

decide := lib.decide.result(input, lib.config("decide"))

route := lib.route.result(input, lib.config("route"))

guard_memory := lib.guard_memory.result(input, lib.config("guard_memory"))

finalize := lib.finalize.result(input, lib.config("finalize"))
