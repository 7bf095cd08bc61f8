/**
 * HPACK (RFC 7541) for the server side of Arbiter's HTTP/2 layer.
 *
 * - `HpackDecoder`: the full decoder (static and dynamic table, table size updates, Huffman
 *   strings), one per connection, fed every header block the peer sends, in order.
 * - `encodeHeaderBlock`: the encoder we need as a server. It never indexes into the dynamic
 *   table (literal without indexing, static-table names where they exist), so a block depends
 *   on nothing but its headers: the common blocks are built once and reused for every response.
 *
 * Header names and values are octet strings; they are read as latin1 (one char per octet), the
 * way node:http2 does, so a string's length is its size in the table's accounting.
 */

export class HpackError extends Error {
  override readonly name = "HpackError";
}

// RFC 7541 Appendix A.
const STATIC: ReadonlyArray<readonly [string, string]> = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

// RFC 7541 Appendix B: code length in bits of each symbol 0..256 (256 = EOS). The code is
// canonical (codes assigned in order of length, then symbol), so the lengths define it.
const HUFFMAN_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28,
  28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6,
  5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23,
  22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22,
  23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, 26, 26,
  20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27,
  27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27,
  27, 27, 27, 26, 30,
];
const EOS = 256;
const MAX_CODE_LEN = 30;

// Canonical decoding tables: for each length, the first code, how many codes, and where that
// length's symbols start in SYMBOLS (symbols sorted by length, then value).
const FIRST = new Int32Array(MAX_CODE_LEN + 1);
const COUNT = new Int32Array(MAX_CODE_LEN + 1);
const OFFSET = new Int32Array(MAX_CODE_LEN + 1);
const SYMBOLS = new Uint16Array(257);
/** Codes for encoding (tests encode with them; responses are sent without Huffman). */
export const HUFFMAN_CODES = new Uint32Array(257);
{
  for (const len of HUFFMAN_LENGTHS) COUNT[len]!++;
  let code = 0;
  let index = 0;
  for (let len = 1; len <= MAX_CODE_LEN; len++) {
    code = (code + (len > 1 ? COUNT[len - 1]! : 0)) << (len > 1 ? 1 : 0);
    FIRST[len] = code;
    OFFSET[len] = index;
    index += COUNT[len]!;
  }
  const next = FIRST.slice();
  let k = 0;
  for (let len = 1; len <= MAX_CODE_LEN; len++) {
    for (let sym = 0; sym <= EOS; sym++) {
      if (HUFFMAN_LENGTHS[sym] === len) {
        SYMBOLS[k++] = sym;
        HUFFMAN_CODES[sym] = next[len]!++;
      }
    }
  }
}

// Decoded Huffman strings go through one scratch buffer, grown when needed.
let scratch = Buffer.allocUnsafe(4096);

function huffmanDecode(src: Uint8Array, start: number, end: number): string {
  // Every symbol takes at least 5 bits, so the output is at most 8/5 of the input.
  const max = Math.ceil(((end - start) * 8) / 5);
  if (scratch.length < max) scratch = Buffer.allocUnsafe(Math.max(max, scratch.length * 2));
  const out = scratch;
  let n = 0;
  let code = 0;
  let len = 0;
  for (let i = start; i < end; i++) {
    const byte = src[i]!;
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((byte >> bit) & 1);
      len++;
      const idx = code - FIRST[len]!;
      if (idx >= 0 && idx < COUNT[len]!) {
        const sym = SYMBOLS[OFFSET[len]! + idx]!;
        if (sym === EOS) throw new HpackError("Huffman string contains EOS");
        out[n++] = sym;
        code = 0;
        len = 0;
      } else if (len === MAX_CODE_LEN) {
        throw new HpackError("invalid Huffman code");
      }
    }
  }
  // Padding: fewer than 8 bits, all ones (a prefix of EOS).
  if (len > 7 || code !== (1 << len) - 1) throw new HpackError("invalid Huffman padding");
  return out.toString("latin1", 0, n);
}

/** Huffman-encodes a latin1 string (used by tests and benchmarks to build client blocks). */
export function huffmanEncode(text: string): Buffer {
  const bytes: number[] = [];
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < text.length; i++) {
    const sym = text.charCodeAt(i) & 0xff;
    const len = HUFFMAN_LENGTHS[sym]!;
    const code = HUFFMAN_CODES[sym]!;
    for (let b = len - 1; b >= 0; b--) {
      acc = (acc << 1) | ((code >>> b) & 1);
      if (++bits === 8) {
        bytes.push(acc);
        acc = 0;
        bits = 0;
      }
    }
  }
  if (bits > 0) bytes.push((acc << (8 - bits)) | ((1 << (8 - bits)) - 1));
  return Buffer.from(bytes);
}

/** A decoded header list: name/value pairs in the order received. */
export type HeaderList = Array<readonly [string, string, boolean?]>;

export class HpackDecoder {
  /** Dynamic table, newest first; the flag says the field is well-formed (`validField`). */
  readonly #table: Array<readonly [string, string, boolean]> = [];
  #size = 0;
  #maxSize: number;
  /** The limit the peer may raise its table to (our SETTINGS_HEADER_TABLE_SIZE). */
  readonly #settingsMax: number;

  constructor(settingsMaxTableSize = 4096) {
    this.#maxSize = settingsMaxTableSize;
    this.#settingsMax = settingsMaxTableSize;
  }

  /**
   * Decodes one complete header block. `maxListSize` bounds the decoded list (name + value + 32
   * per field, as SETTINGS_MAX_HEADER_LIST_SIZE counts it); past it, decoding still runs to
   * the end (the table must stay in step with the peer) and `oversized` is set. `malformed` is
   * set when a field breaks RFC 9113 8.2.1 (checked once per literal, remembered in the table,
   * so indexed fields cost nothing).
   */
  decode(block: Buffer, maxListSize: number): { headers: HeaderList; oversized: boolean; malformed: boolean } {
    const headers: HeaderList = [];
    let listSize = 0;
    let malformed = false;
    let pos = 0;
    const end = block.length;
    let fieldsSeen = false;
    while (pos < end) {
      const b = block[pos]!;
      let name: string;
      let value: string;
      at = pos;
      if (b & 0x80) {
        // Indexed header field: the table's own entry goes into the list (no copy).
        const e = this.#entry(readInt(block, 7));
        pos = at;
        name = e[0];
        value = e[1];
        if (e[2] === false) malformed = true;
        fieldsSeen = true;
        listSize += name.length + value.length + 32;
        if (listSize <= maxListSize) headers.push(e);
        continue;
      } else if ((b & 0xe0) === 0x20) {
        // Dynamic table size update: only at the start of a block.
        if (fieldsSeen) throw new HpackError("table size update after a header field");
        const size = readInt(block, 5);
        pos = at;
        if (size > this.#settingsMax) throw new HpackError(`table size update ${size} exceeds ${this.#settingsMax}`);
        this.#maxSize = size;
        this.#evict(0);
        continue;
      } else {
        // Literal: with incremental indexing (01), without (0000) or never indexed (0001).
        const indexing = (b & 0xc0) === 0x40;
        const index = readInt(block, indexing ? 6 : 4);
        name = index === 0 ? readString(block, true) : this.#entry(index)[0];
        // Values are memoized for pseudo-headers only (:path, :authority): never a credential.
        value = readString(block, name.charCodeAt(0) === 58);
        pos = at;
        const valid = validField(name, value);
        if (!valid) malformed = true;
        if (indexing) this.#insert(name, value, valid);
      }
      fieldsSeen = true;
      listSize += name.length + value.length + 32;
      if (listSize <= maxListSize) headers.push([name, value]);
    }
    return { headers, oversized: listSize > maxListSize, malformed };
  }

  #entry(index: number): readonly [string, string, boolean?] {
    if (index === 0) throw new HpackError("header index 0");
    if (index <= STATIC.length) return STATIC[index - 1]!;
    const e = this.#table[index - STATIC.length - 1];
    if (e === undefined) throw new HpackError(`header index ${index} is not in the table`);
    return e;
  }

  #insert(name: string, value: string, valid: boolean): void {
    const size = name.length + value.length + 32;
    if (size > this.#maxSize) {
      // An entry larger than the table empties it and is not added (RFC 7541 4.4).
      this.#table.length = 0;
      this.#size = 0;
      return;
    }
    this.#evict(size);
    this.#table.unshift([name, value, valid]);
    this.#size += size;
  }

  /** Evicts the oldest entries until `incoming` more bytes fit. */
  #evict(incoming: number): void {
    while (this.#size + incoming > this.#maxSize && this.#table.length > 0) {
      const [n, v] = this.#table.pop()!;
      this.#size -= n.length + v.length + 32;
    }
  }
}

/**
 * RFC 9113 8.2.1: a name has no uppercase, controls, space, DEL or non-ASCII octets and no colon
 * past a pseudo-header's first; a value has no NUL, CR or LF.
 */
export function validField(name: string, value: string): boolean {
  if (name.length === 0) return false;
  for (let i = name.charCodeAt(0) === 58 ? 1 : 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x20 || (c >= 65 && c <= 90) || c >= 0x7f || c === 58) return false;
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13) return false;
  }
  return true;
}

/**
 * Read position of `readInt`/`readString` within the block being decoded: a module variable
 * instead of a [value, position] pair per call (decoding is synchronous, never re-entered).
 */
let at = 0;

function readInt(src: Uint8Array, prefix: number): number {
  const mask = (1 << prefix) - 1;
  let value = src[at++]! & mask;
  if (value < mask) return value;
  let shift = 0;
  for (;;) {
    if (at >= src.length) throw new HpackError("truncated integer");
    const b = src[at++]!;
    value += (b & 0x7f) * 2 ** shift;
    if (value > 0x7fffffff) throw new HpackError("integer too large");
    if ((b & 0x80) === 0) return value;
    // Five continuation bytes carry 35 bits, more than any value we accept. Without this bound
    // a run of 0x80 bytes kept value at 0 while 2 ** shift reached Infinity, and 0 * Infinity
    // made the value NaN, which passed every check and ended the block early, silently.
    shift += 7;
    if (shift > 28) throw new HpackError("integer too large");
  }
}

/**
 * Huffman-decoded names and pseudo-header values seen recently, by their encoded bytes. Clients
 * index most headers, but nghttp2-based ones (grpc-js via node:http2, curl, h2load) send `:path`
 * as a Huffman literal on every request; bit-by-bit decoding of it was ~3% of a cached Decide.
 * Bounded: cleared when full.
 */
const HUFFMAN_MEMO = new Map<string, string>();
const HUFFMAN_MEMO_MAX = 1024;
const HUFFMAN_MEMO_LEN = 64;

function readString(src: Buffer, memo: boolean): string {
  if (at >= src.length) throw new HpackError("truncated string");
  const huffman = (src[at]! & 0x80) !== 0;
  const len = readInt(src, 7);
  const start = at;
  const end = start + len;
  if (end > src.length) throw new HpackError("string runs past the header block");
  at = end;
  if (!huffman) return src.toString("latin1", start, end);
  if (!memo || len > HUFFMAN_MEMO_LEN) return huffmanDecode(src, start, end);
  const key = src.toString("latin1", start, end);
  let text = HUFFMAN_MEMO.get(key);
  if (text === undefined) {
    text = huffmanDecode(src, start, end);
    if (HUFFMAN_MEMO.size >= HUFFMAN_MEMO_MAX) HUFFMAN_MEMO.clear();
    HUFFMAN_MEMO.set(key, text);
  }
  return text;
}

// ---- encoding ------------------------------------------------------------------------------

const STATIC_NAME = new Map<string, number>();
const STATIC_PAIR = new Map<string, number>();
STATIC.forEach(([n, v], i) => {
  if (!STATIC_NAME.has(n)) STATIC_NAME.set(n, i + 1);
  if (v !== "") STATIC_PAIR.set(`${n}\0${v}`, i + 1);
});

function writeInt(out: number[], first: number, prefix: number, value: number): void {
  const mask = (1 << prefix) - 1;
  if (value < mask) {
    out.push(first | value);
    return;
  }
  out.push(first | mask);
  value -= mask;
  while (value >= 0x80) {
    out.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
}

function writeString(out: number[], text: string): void {
  writeInt(out, 0, 7, text.length);
  for (let i = 0; i < text.length; i++) out.push(text.charCodeAt(i) & 0xff);
}

/**
 * A header block for `headers` (names lowercase): static-table matches as indexed fields,
 * everything else as literals without indexing (no dynamic-table state, so blocks are reusable).
 */
export function encodeHeaderBlock(headers: ReadonlyArray<readonly [string, string]>): Buffer {
  const out: number[] = [];
  for (const [name, value] of headers) {
    const pair = STATIC_PAIR.get(`${name}\0${value}`);
    if (pair !== undefined) {
      writeInt(out, 0x80, 7, pair);
      continue;
    }
    const nameIndex = STATIC_NAME.get(name);
    if (nameIndex !== undefined) {
      writeInt(out, 0x00, 4, nameIndex);
    } else {
      out.push(0x00);
      writeString(out, name);
    }
    writeString(out, value);
  }
  return Buffer.from(out);
}
