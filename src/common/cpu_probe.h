/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * How many CPUs this process may use: what the default worker count follows. Probed by the
 * daemon and handed to the config loader (config/config.h, struct config_machine), so that
 * loading a config stays free of system probing.
 */

/*
 * The CPUs this process may run on: its affinity mask (cpusets; the online CPUs if that cannot
 * be read), capped by a cgroup v2 CPU quota (/sys/fs/cgroup/cpu.max, what a container's CPU
 * limit becomes), rounded up. At least 1; not capped otherwise.
 */
unsigned cpu_probe_usable(void);
