/** Flow windows, SETTINGS handling and the per-second flood counter, each on its own. */
import { describe, expect, it } from "vitest";
import { MAX_WINDOW, RecvWindow, SendWindow } from "../../../src/transport/h2/flow.ts";
import { FrameType, H2Error } from "../../../src/transport/h2/frame.ts";
import { PerSecond } from "../../../src/transport/h2/rate-limit.ts";
import {
  DEFAULT_WINDOW,
  isSettingsError,
  PeerSettings,
  serverSettingsFrame,
  SettingId,
  STREAM_WINDOW,
} from "../../../src/transport/h2/settings.ts";

function settings(...pairs: Array<[number, number]>): Buffer {
  const b = Buffer.alloc(6 * pairs.length);
  pairs.forEach(([k, v], i) => {
    b.writeUInt16BE(k, 6 * i);
    b.writeUInt32BE(v, 6 * i + 2);
  });
  return b;
}

describe("SendWindow", () => {
  it("spends, grows, goes negative on a lowered setting, and never offers a negative count", () => {
    const w = new SendWindow(100);
    expect(w.available(150)).toBe(100);
    w.consume(100);
    expect(w.available(10)).toBe(0);
    expect(w.grow(-50)).toBe(true);
    expect(w.size).toBe(-50);
    expect(w.available(10)).toBe(0);
    expect(w.grow(MAX_WINDOW + 50)).toBe(true);
    expect(w.grow(1)).toBe(false); // 2^31 is a FLOW_CONTROL_ERROR
  });
});

describe("RecvWindow", () => {
  it("asks for an update once half is used, restoring the initial size, and flags an overrun", () => {
    const w = new RecvWindow(1000);
    expect(w.consume(499)).toBe(true);
    expect(w.update()).toBe(0);
    expect(w.consume(1)).toBe(true);
    expect(w.update()).toBe(500);
    expect(w.size).toBe(1000);
    expect(w.consume(1001)).toBe(false);
  });
});

describe("settings", () => {
  it("our SETTINGS frame names the stream limit, the stream window and the header list size", () => {
    const f = serverSettingsFrame(100, 65_536);
    expect(f[3]).toBe(FrameType.SETTINGS);
    const pairs = [];
    for (let p = 9; p < f.length; p += 6) pairs.push([f.readUInt16BE(p), f.readUInt32BE(p + 2)]);
    expect(pairs).toEqual([
      [SettingId.MAX_CONCURRENT_STREAMS, 100],
      [SettingId.INITIAL_WINDOW_SIZE, STREAM_WINDOW],
      [SettingId.MAX_HEADER_LIST_SIZE, 65_536],
    ]);
  });

  it("applies the peer's window, frame size and table size; the window delta accumulates", () => {
    const peer = new PeerSettings();
    expect(peer.initialWindow).toBe(DEFAULT_WINDOW);
    const change = peer.apply(
      settings(
        [SettingId.INITIAL_WINDOW_SIZE, 1000],
        [SettingId.MAX_FRAME_SIZE, 32_768],
        [SettingId.HEADER_TABLE_SIZE, 0],
        [0x99, 7],
      ),
    );
    expect(change).toEqual({ windowDelta: 1000 - DEFAULT_WINDOW, maxFrame: 32_768, tableSizeUpdate: true });
    expect(peer.initialWindow).toBe(1000);
    expect(peer.apply(settings([SettingId.INITIAL_WINDOW_SIZE, 3000]))).toEqual({
      windowDelta: 2000,
      maxFrame: undefined,
      tableSizeUpdate: false,
    });
    expect(peer.apply(settings([SettingId.HEADER_TABLE_SIZE, 4096]))).toMatchObject({ tableSizeUpdate: false });
  });

  it("refuses the values RFC 9113 6.5.2 forbids, with the code it names", () => {
    const err = (b: Buffer) => {
      const r = new PeerSettings().apply(b);
      return isSettingsError(r) ? [r.code, r.message] : r;
    };
    expect(err(Buffer.alloc(5))).toEqual([H2Error.FRAME_SIZE_ERROR, "SETTINGS payload not a multiple of 6"]);
    expect(err(settings([SettingId.ENABLE_PUSH, 2]))).toEqual([
      H2Error.PROTOCOL_ERROR,
      "SETTINGS_ENABLE_PUSH must be 0 or 1",
    ]);
    expect(err(settings([SettingId.INITIAL_WINDOW_SIZE, 2 ** 31]))).toEqual([
      H2Error.FLOW_CONTROL_ERROR,
      "SETTINGS_INITIAL_WINDOW_SIZE too large",
    ]);
    expect(err(settings([SettingId.MAX_FRAME_SIZE, 16_383]))).toEqual([
      H2Error.PROTOCOL_ERROR,
      "SETTINGS_MAX_FRAME_SIZE out of range",
    ]);
    expect(err(settings([SettingId.MAX_FRAME_SIZE, 2 ** 24]))).toEqual([
      H2Error.PROTOCOL_ERROR,
      "SETTINGS_MAX_FRAME_SIZE out of range",
    ]);
  });
});

describe("PerSecond", () => {
  it("allows max events per one-second window, then reports excess; a new window starts over", () => {
    let now = 5000;
    const c = new PerSecond(() => now);
    for (let i = 0; i < 3; i++) expect(c.exceeds(3)).toBe(false);
    expect(c.exceeds(3)).toBe(true);
    now += 999;
    expect(c.exceeds(3)).toBe(true);
    now += 2;
    expect(c.exceeds(3)).toBe(false);
  });

  it("reset starts the count again", () => {
    const c = new PerSecond(() => 0);
    expect(c.exceeds(1)).toBe(false);
    c.reset();
    expect(c.exceeds(1)).toBe(false);
    expect(c.exceeds(1)).toBe(true);
  });
});

describe("ResetMemory", () => {
  it("remembers the last resets, within a grace period", async () => {
    const { ResetMemory, RESET_GRACE_MS } = await import("../../../src/transport/h2/closed-streams.ts");
    let now = 0;
    const m = new ResetMemory(2, () => now);
    m.remember(1);
    m.remember(3);
    expect([m.has(1), m.inGrace(1)]).toEqual([true, true]);
    now += RESET_GRACE_MS;
    expect([m.has(1), m.inGrace(1)]).toEqual([true, false]);
    m.remember(5); // evicts 1, the oldest
    expect([m.has(1), m.has(3), m.has(5), m.inGrace(5)]).toEqual([false, true, true, true]);
  });
});
