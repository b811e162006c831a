#include "agent/sysinfo.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

/* Bounded copy that always terminates; truncation is fine for OS names. */
static void copy(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static const char *arch_name(const char *machine)
{
	if (!strcmp(machine, "aarch64") || !strcmp(machine, "arm64"))
		return "arm64";
	if (!strncmp(machine, "armv", 4) || !strcmp(machine, "arm"))
		return "arm";
	if (!strcmp(machine, "x86_64") || !strcmp(machine, "amd64"))
		return "x86_64";
	if (!strcmp(machine, "i686") || !strcmp(machine, "i386"))
		return "x86";
	return machine;
}

static int read_line(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	char *ok = fgets(buf, (int)cap, f);
	fclose(f);
	if (ok == NULL)
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static uint32_t count_prefix(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	uint32_t n = 0;
	struct dirent *e;
	/* Bounded: device directories are small, but a bad sysroot must not
	 * keep us here. */
	for (int i = 0; i < 4096 && (e = readdir(d)) != NULL; i++)
		if (!strncmp(e->d_name, prefix, strlen(prefix)))
			n++;
	closedir(d);
	return n;
}

static void add_accel(cn_meta *m, const char *kind, uint32_t count)
{
	if (count == 0 || m->n_accel >= CN_ACCEL_MAX)
		return;
	copy(m->accel[m->n_accel].kind, sizeof m->accel[0].kind, kind);
	m->accel[m->n_accel].count = count;
	m->n_accel++;
}

void cn_sysinfo_capacity(cn_meta *m, const char *sysroot)
{
	struct utsname u;
	char path[512];
	if (uname(&u) == 0) {
		copy(m->arch, sizeof m->arch, arch_name(u.machine));
		char os[sizeof m->os];
		copy(os, sizeof os, u.sysname);
		for (char *p = os; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		copy(m->os, sizeof m->os, os);
	}
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	m->cpus = cpus > 0 ? (uint32_t)cpus : 1;
	struct sysinfo si;
	if (sysinfo(&si) == 0)
		m->mem_mb = (uint32_t)((uint64_t)si.totalram * si.mem_unit >> 20);
	/* Accelerators: NVIDIA GPUs (/dev/nvidiaN), DRM render nodes of other
	 * GPUs, and the kernel's compute-accelerator class (/dev/accel/accelN,
	 * NPUs). Counting device nodes needs no vendor library. */
	m->n_accel = 0;
	snprintf(path, sizeof path, "%s/dev", sysroot);
	uint32_t nvidia = 0;
	for (int i = 0; i < 16; i++) {
		char p[600];
		snprintf(p, sizeof p, "%s/nvidia%d", path, i);
		if (access(p, F_OK) == 0)
			nvidia++;
	}
	add_accel(m, "gpu", nvidia ? nvidia : 0);
	snprintf(path, sizeof path, "%s/dev/accel", sysroot);
	add_accel(m, "npu", count_prefix(path, "accel"));
}

void cn_sysinfo_health(cn_meta *m, const char *sysroot)
{
	double load[1];
	if (getloadavg(load, 1) == 1)
		m->load_milli = (uint32_t)(load[0] * 1000.0);
	struct sysinfo si;
	if (sysinfo(&si) == 0)
		m->mem_free_mb = (uint32_t)(((uint64_t)si.freeram + si.bufferram) * si.mem_unit >> 20);
	/* Power: any online mains supply means mains; otherwise a discharging
	 * battery means battery. Devices without power_supply stay unknown. */
	char dir[512], p[800], line[64];
	snprintf(dir, sizeof dir, "%s/sys/class/power_supply", sysroot);
	m->power = CN_POWER_UNKNOWN;
	m->battery_pct = 255;
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	bool mains = false, battery = false;
	struct dirent *e;
	for (int i = 0; i < 64 && (e = readdir(d)) != NULL; i++) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s/type", dir, e->d_name);
		if (read_line(p, line, sizeof line) != 0)
			continue;
		if (!strcmp(line, "Mains")) {
			snprintf(p, sizeof p, "%s/%s/online", dir, e->d_name);
			if (read_line(p, line, sizeof line) == 0 && !strcmp(line, "1"))
				mains = true;
		} else if (!strcmp(line, "Battery")) {
			battery = true;
			snprintf(p, sizeof p, "%s/%s/capacity", dir, e->d_name);
			if (read_line(p, line, sizeof line) == 0) {
				int pct = atoi(line);
				if (pct >= 0 && pct <= 100)
					m->battery_pct = (uint8_t)pct;
			}
		}
	}
	closedir(d);
	if (mains)
		m->power = CN_POWER_MAINS;
	else if (battery)
		m->power = CN_POWER_BATTERY;
}
