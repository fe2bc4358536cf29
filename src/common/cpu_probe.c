/* SPDX-License-Identifier: MIT */
/*
 * The usable-CPU probe (common/cpu_probe.h): sched_getaffinity, then the cgroup v2 quota. Reads
 * the system and nothing else; no logging (a missing or unreadable cpu.max means no quota).
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cpu_probe.h"

unsigned cpu_probe_usable(void)
{
    cpu_set_t set;
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        n = CPU_COUNT(&set);
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "re");
    if (f) {
        char quota[32];
        long period;
        if (fscanf(f, "%31s %ld", quota, &period) == 2 && strcmp(quota, "max") != 0 && period > 0) {
            long cpus = (atol(quota) + period - 1) / period;
            if (cpus >= 1 && cpus < n)
                n = cpus;
        }
        fclose(f);
    }
    return n < 1 ? 1 : (unsigned)n;
}
