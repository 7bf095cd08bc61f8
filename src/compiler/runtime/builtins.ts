// Builtins implemented natively by the runtime. Each `bi_<name>` (dots become underscores)
// takes value addresses and returns a value address, 0 for "undefined" (OPA's non-strict mode
// turns builtin errors, including type errors, into undefined).
//
// The builtins live in builtins-ops.ts, builtins-strings.ts and builtins-collections.ts; only the
// `bi_*` functions are re-exported here (and so from the module: index.ts exports this file).

export {
  bi_plus, bi_minus, bi_mul, bi_div, bi_rem, bi_lt, bi_lte, bi_gt, bi_gte, bi_equal, bi_neq, bi_or, bi_and, bi_internal_member_2, bi_internal_member_3, bi_count, bi_sum, bi_product, bi_max, bi_min, bi_sort, bi_abs, bi_ceil, bi_floor, bi_round, bi_to_number,
} from "./builtins-ops";
export {
  bi_concat, bi_contains, bi_startswith, bi_endswith, bi_lower, bi_upper, bi_trim, bi_trim_left, bi_trim_right, bi_trim_space, bi_trim_prefix, bi_trim_suffix, bi_split, bi_replace, bi_substring, bi_indexof,
} from "./builtins-strings";
export {
  bi_object_get, bi_object_keys, bi_object_union, bi_object_remove, bi_array_concat, bi_array_flatten, bi_array_slice, bi_union, bi_intersection, bi_is_null, bi_is_boolean, bi_is_number, bi_is_string, bi_is_array, bi_is_object, bi_is_set, bi_type_name, bi_json_marshal, bi_json_unmarshal, bi_internal_typed_marshal, bi_internal_typed_unmarshal, bi_array_reverse, bi_strings_reverse, bi_object_filter, bi_numbers_range, bi_time_parse_rfc3339_ns,
} from "./builtins-collections";
