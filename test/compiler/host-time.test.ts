/**
 * time.* host builtins (host-time.ts) through the real pipeline: nanosecond timestamps beyond
 * 2^53 cross the JavaScript boundary exactly (HOST_JSON_IO), answers match OPA's Go semantics.
 */
import { describe, expect, it } from "vitest";
import { type RegoCase, regoFailures } from "./host-opa-helpers.ts";

describe("time.*", () => {
  it("answers as OPA", async () => {
    const cases: RegoCase[] = [
      ["time.date(1517814000000000000)", [2018, 2, 5]],
      ['time.date([1517814000000000000, "America/Los_Angeles"])', [2018, 2, 4]],
      ['time.date([1517832000000000000, ""])', [2018, 2, 5]],
      ["time.date(9223372036854775807)", [2262, 4, 11]],
      ["time.date(-1)", [1969, 12, 31]],
      ["time.clock(-1)", [23, 59, 59]],
      ['time.clock([1517832000000000000, "America/New_York"])', [7, 0, 0]],
      ['time.clock([1517832000000000000, "Asia/Kolkata"])', [17, 30, 0]],
      ["time.weekday(1517832000000000000)", "Monday"],
      ["time.weekday(1518350400000000000)", "Sunday"],
      ["time.add_date(1585852421593912000, 3, 9, 12)", 1705257221593912000n],
      // Go's AddDate normalizes: January 31 plus one month is March 3 (2021)
      ["time.add_date(1612051200000000000, 0, 1, 0)", 1614729600000000000n],
      ["time.add_date(0, 2262, 1, 1)", undefined],
      ["time.diff(1580601600000000000, 1583020800000000000)", [0, 0, 28, 0, 0, 0]],
      ["time.diff(1109635200000000000, 1078012800000000000)", [1, 0, 1, 0, 0, 0]],
      ['time.diff([1517832060000000000, "UTC"], [1517832000000000000, "Asia/Shanghai"])', [0, 0, 0, 0, 1, 0]],
      ['time.parse_duration_ns("1h30m")', 5400000000000],
      ['time.parse_duration_ns("-1.5s")', -1500000000],
      ['time.parse_duration_ns(".5ms")', 500000],
      ['time.parse_duration_ns("1µs")', 1000],
      ['time.parse_duration_ns("0")', 0],
      ['time.parse_duration_ns("2562047h")', 9223369200000000000n],
      ['time.parse_duration_ns("2562048h")', undefined],
      ['time.parse_duration_ns("1")', undefined],
      ['time.parse_duration_ns("1d")', undefined],
      ["time.format(1517832000000000000)", "2018-02-05T12:00:00Z"],
      ['time.format([1517832000123000000, "Asia/Kolkata"])', "2018-02-05T17:30:00.123+05:30"],
      ['time.format([1517832000123000000, "UTC", "RFC3339"])', "2018-02-05T12:00:00Z"],
      // OPA's errors: undefined in non-strict mode
      ["time.date(1.5)", undefined],
      ['time.date([1517832000000000000, "america/new_york"])', undefined],
      ['time.date([1517832000000000000, "Nowhere/Special"])', undefined],
      // Arbiter's limits: an error, never another answer
      ['time.date([1517832000000000000, "Local"])', Error],
      ['time.format([0, "UTC", "Mon Jan 2"])', Error],
    ];
    const bad = await regoFailures(cases.map(([e, w]) => [e, typeof w === "bigint" ? Number(w) : w]));
    // Integers beyond 2^53 are checked as text below; here the SDK's JSON.parse rounds them alike.
    expect(bad).toEqual([]);
  });

  it("parses with Go layouts (time.parse_ns)", async () => {
    const cases: RegoCase[] = [
      ['time.parse_ns("2006-01-02", "2021-03-01")', "1614556800000000000"],
      ['time.parse_ns("RFC822Z", "02 Jun 17 19:00 -0700")', "1496455200000000000"],
      ['time.parse_ns("2006-01-02T15:04:05Z07:00", "2017-06-02T19:00:00-07:00")', "1496455200000000000"],
      ['time.parse_ns("RFC1123", "Tue, 10 Nov 2009 23:00:00 UTC")', "1257894000000000000"],
      ['time.parse_ns("2006-01-02 15:04:05.000", "2024-01-02 03:04:05.123")', "1704164645123000000"],
      // Go reads a fraction after the seconds even when the layout has none
      ['time.parse_ns("2006-01-02 15:04:05", "2024-01-02 03:04:05.5")', "1704164645500000000"],
      ['time.parse_ns("January 2, 2006 3:04pm", "March 7, 2023 11:30am")', "1678188600000000000"],
      ['time.parse_ns("2006-01-02T15:04:05Z07:00", "1677-09-21T00:12:43.145224192-00:00")', "-9223372036854775808"],
      ['time.parse_ns("2006-01-02T15:04:05Z07:00", "2262-04-11T23:47:16.854775808-00:00")', undefined],
      ['time.parse_ns("2006-01-02", "2021-02-29")', undefined],
      ['time.parse_ns("2006-01-02 15:04:05.000", "2024-01-02 03:04:05.12")', undefined],
      ['time.parse_ns("2006-01-02", "2021-03-01x")', undefined],
      ['time.parse_ns("Kitchen", "3:04PM")', undefined],
      ['time.parse_ns("2006-002", "2021-060")', Error],
    ];
    expect(await regoFailures(cases.map(([e, w]) => [typeof w === "string" ? `json.marshal(${e})` : e, w]))).toEqual(
      [],
    );
  });

  it("keeps nanoseconds beyond 2^53 exact", async () => {
    const cases: RegoCase[] = [
      ["json.marshal(time.add_date(1585852421593912001, 0, 0, 1))", "1585938821593912001"],
      ['json.marshal(time.parse_duration_ns("2562047h47m16.854775807s"))', "9223372036854775807"],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });

  it("fails the evaluation on OPA's errors under strict builtin errors", async () => {
    expect(
      await regoFailures(
        [
          ["time.weekday(1582977600000000000 * 1000)", Error],
          ["time.add_date(0, 2262, 1, 1)", Error],
        ],
        { strict: true },
      ),
    ).toEqual([]);
  });
});
