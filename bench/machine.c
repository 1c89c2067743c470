/* machine.c: the machine line of the benchmarks (machine.h). */
#include "bench/machine.h"

#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

static void read_first_field(const char *path, const char *prefix, char *out, size_t n)
{
    snprintf(out, n, "?");
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char line[512];
    size_t plen = strlen(prefix);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, prefix, plen) != 0)
            continue;
        const char *v = strchr(line, ':');
        v = v ? v + 1 : line + plen;
        while (*v == ' ' || *v == '\t')
            v++;
        snprintf(out, n, "%.*s", (int)strcspn(v, "\n"), v);
        break;
    }
    fclose(f);
}

void bench_print_machine(FILE *out, const char *program)
{
    char cpu[128], mem[64], load[64];
    struct utsname u;
    if (uname(&u) != 0)
        snprintf(u.release, sizeof u.release, "?");
    read_first_field("/proc/cpuinfo", "model name", cpu, sizeof cpu);
    read_first_field("/proc/meminfo", "MemTotal", mem, sizeof mem);
    FILE *f = fopen("/proc/loadavg", "r");
    if (f == NULL || fgets(load, sizeof load, f) == NULL)
        snprintf(load, sizeof load, "?");
    load[strcspn(load, "\n")] = '\0';
    if (f)
        fclose(f);
    fprintf(out, "# %s: nproc %ld, cpu \"%s\", mem %s, kernel %s, loadavg %s\n", program,
            sysconf(_SC_NPROCESSORS_ONLN), cpu, mem, u.release, load);
}
