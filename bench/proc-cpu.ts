/** CPU time of processes from /proc (Linux), for the benches that charge work to a process. */
import { readdirSync, readFileSync } from "node:fs";

const HZ = 100; // USER_HZ on Linux

/** [utime+stime, cutime+cstime] of a process in ms; undefined when it is gone. */
export function procCpu(pid: number): [number, number] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return [((Number(f[11]) + Number(f[12])) * 1000) / HZ, ((Number(f[13]) + Number(f[14])) * 1000) / HZ];
  } catch {
    return undefined;
  }
}

/** utime+stime of one thread of a process in ms (the main thread's id is the pid); NaN when gone. */
export function threadCpu(pid: number, tid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / HZ;
  } catch {
    return NaN;
  }
}

/** User and system CPU ms of a process (all its threads), apart; undefined when it is gone. */
export function procUserSys(pid: number): { user: number; sys: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { user: (Number(f[11]) * 1000) / HZ, sys: (Number(f[12]) * 1000) / HZ };
  } catch {
    return undefined;
  }
}

/** Write system calls a process has made (`syscw` of /proc/PID/io, all threads); NaN when unreadable. */
export function procWrites(pid: number): number {
  try {
    const m = /^syscw: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

function ppidOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/** CPU ms of a Postgres postmaster, its live children (backends, WAL writer, ...) and the children it has reaped. */
export function postgresCpu(postmaster: number): number {
  const own = procCpu(postmaster);
  if (!own) return NaN;
  let total = own[0] + own[1];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid !== postmaster && ppidOf(pid) === postmaster) total += procCpu(pid)?.[0] ?? 0;
  }
  return total;
}
