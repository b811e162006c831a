/* What this device is and how it is doing, read from the OS.
 *
 * Capacity (architecture, OS, cores, memory, accelerators) is read once at
 * start; health (load, free memory, power source, battery) is sampled
 * periodically and gossiped as metadata. Architecture names follow the
 * labels operators write in placement rules: x86_64, arm64, arm, riscv64. */
#ifndef CN_AGENT_SYSINFO_H
#define CN_AGENT_SYSINFO_H

#include "wire/msg.h"

/* Fill arch, os, cpus, mem_mb and accel of m; leaves labels alone.
 * sysroot is "" normally; tests point it at a fake /sys and /dev tree. */
void cn_sysinfo_capacity(cn_meta *m, const char *sysroot);
/* Fill load_milli, mem_free_mb, power, battery_pct. */
void cn_sysinfo_health(cn_meta *m, const char *sysroot);

#endif
