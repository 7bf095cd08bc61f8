// Type tests shared by the builtin modules (`builtins-*.ts`).

import { K_NUM, K_STR, K_SET, kindOf } from "./value";

// @ts-ignore: decorator
@inline export function isNum(v: usize): bool { return kindOf(v) == K_NUM; }
// @ts-ignore: decorator
@inline export function isStr(v: usize): bool { return kindOf(v) == K_STR; }
// @ts-ignore: decorator
@inline export function isSet(v: usize): bool { return kindOf(v) == K_SET; }
// @ts-ignore: decorator
@inline export function isInt(x: f64): bool { return floor(x) == x && isFinite(x); }
