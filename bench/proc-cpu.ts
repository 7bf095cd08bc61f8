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
