/**
 * The shape of a host builtin: a JavaScript function the WebAssembly module calls with the
 * decoded JSON values of its arguments (opa-wasm's `customBuiltins` table). Each builtin checks
 * its own operand types at run time, so the table's element type takes any arguments.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a table of functions of different arities and argument types, each checking its operands itself
export type HostBuiltin = (...args: any[]) => unknown;
