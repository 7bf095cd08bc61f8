/**
 * Just enough of net.Socket for H2Session, without a network: bytes are fed with
 * `emit("data", chunk)`, output is counted and dropped. Used by the fuzz suite and by
 * bench/h2-session.ts, which measure the session layer alone.
 */
import { EventEmitter } from "node:events";

export class FakeSocket extends EventEmitter {
  written = 0;
  writableLength = 0;
  destroyed = false;
  setNoDelay(): void {}
  write(b: Buffer): boolean {
    this.written += b.length;
    return true;
  }
  pause(): void {}
  resume(): void {}
  end(): void {
    this.destroyed = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
}
