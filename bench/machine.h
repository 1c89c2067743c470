/*
 * machine.h: the line every benchmark prints first, so that figures can
 * be read against the machine that made them: processors, CPU model,
 * memory, kernel, load average.
 */
#ifndef RKV_BENCH_MACHINE_H
#define RKV_BENCH_MACHINE_H

#include <stdio.h>

/* "# PROGRAM: nproc N, cpu "...", mem ..., kernel ..., loadavg ..." */
void bench_print_machine(FILE *out, const char *program);

#endif
