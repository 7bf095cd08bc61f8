// Raw memory management of the policy runtime: one bump allocator over the memory the SDK
// imports (`env.memory`). Nothing is ever freed individually; the SDK resets the heap pointer
// before every evaluation (ABI 1.2 `opa_eval(..., heapPtr, ...)`), which keeps memory flat.

@external("env", "opa_abort")
declare function opa_abort(addr: usize): void;

let heapPtr: usize = 0;

export function heapGet(): usize {
  return heapPtr;
}

export function heapSet(p: usize): void {
  heapPtr = p;
}

/** Sets the heap start once at instantiation (above the static data). */
export function heapInit(): void {
  heapPtr = (__heap_base + 15) & ~15;
}

/** Grows the memory to cover addresses below `end` when needed; false when it cannot. */
function covers(end: usize): bool {
  const limit = (<usize>memory.size()) << 16;
  return end <= limit || memory.grow(<i32>((end - limit + 0xffff) >> 16)) >= 0;
}

/** Allocates `size` bytes aligned to 8, growing the memory when needed. */
export function alloc(size: usize): usize {
  const p = (heapPtr + 7) & ~(<usize>7);
  const end = p + size;
  if (!covers(end)) fatal("out of memory");
  heapPtr = end;
  return p;
}

/** Extends the most recent allocation in place when possible; returns false otherwise. */
export function extendLast(p: usize, oldSize: usize, newSize: usize): bool {
  if (p + oldSize != heapPtr) return false;
  const end = p + newSize;
  if (!covers(end)) fatal("out of memory");
  heapPtr = end;
  return true;
}

// Abort messages are written here, not on the heap: the heap may be what ran out. (`fatal` used
// to allocate its message; when the failed allocation had left fewer bytes than the message
// needed, `alloc` called `fatal` again, without end, and the evaluation died of a JavaScript
// stack overflow instead of "out of memory".)
const MSG_MAX: usize = 511;
const msgBuf: usize = memory.data(<i32>MSG_MAX + 1, 8);

/** Aborts the evaluation with an ASCII message (the SDK throws it as a string). */
export function fatal(msg: string): void {
  const n = min(<usize>msg.length, MSG_MAX);
  for (let i: usize = 0; i < n; i++) store<u8>(msgBuf + i, <u8>msg.charCodeAt(<i32>i));
  store<u8>(msgBuf + n, 0);
  opa_abort(msgBuf);
  unreachable();
}

/**
 * Aborts with `len` raw UTF-8 bytes at `bytes`: past the heap's end (growing the memory if it
 * can), else the first MSG_MAX bytes in the message buffer. Never through `alloc`, which would
 * call `fatal` again.
 */
export function fatalBytes(bytes: usize, len: usize): void {
  let p = (heapPtr + 7) & ~(<usize>7);
  if (!covers(p + len + 1)) {
    p = msgBuf;
    len = min(len, MSG_MAX);
  }
  memory.copy(p, bytes, len);
  store<u8>(p + len, 0);
  opa_abort(p);
  unreachable();
}

/** Target of AssemblyScript's `abort` (see `--use abort=` in the build script). */
export function asAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  if (message === null) fatal("internal error");
  else fatal(message);
}
