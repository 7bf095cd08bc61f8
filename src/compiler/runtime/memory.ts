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

/** Allocates `size` bytes aligned to 8, growing the memory when needed. */
export function alloc(size: usize): usize {
  const p = (heapPtr + 7) & ~(<usize>7);
  const end = p + size;
  const limit = (<usize>memory.size()) << 16;
  if (end > limit) {
    const pages = <i32>((end - limit + 0xffff) >> 16);
    if (memory.grow(pages) < 0) fatal("out of memory");
  }
  heapPtr = end;
  return p;
}

/** Extends the most recent allocation in place when possible; returns false otherwise. */
export function extendLast(p: usize, oldSize: usize, newSize: usize): bool {
  if (p + oldSize != heapPtr) return false;
  const end = p + newSize;
  const limit = (<usize>memory.size()) << 16;
  if (end > limit) {
    const pages = <i32>((end - limit + 0xffff) >> 16);
    if (memory.grow(pages) < 0) fatal("out of memory");
  }
  heapPtr = end;
  return true;
}

/** Aborts the evaluation with an ASCII message (the SDK throws it as a string). */
export function fatal(msg: string): void {
  const n = msg.length;
  const p = alloc(<usize>n + 1);
  for (let i = 0; i < n; i++) store<u8>(p + i, <u8>msg.charCodeAt(i));
  store<u8>(p + n, 0);
  opa_abort(p);
  unreachable();
}

/** Aborts with `prefix` followed by `len` raw UTF-8 bytes at `bytes`. */
export function fatalBytes(bytes: usize, len: usize): void {
  const p = alloc(len + 1);
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
