/*
 * fuzz.h: what the libFuzzer targets in tests/fuzz/ share.
 *
 * A target is one LLVMFuzzerTestOneInput that feeds its bytes to a decoder
 * and then checks the properties that decoder promises. A broken promise is
 * a crash on purpose (FUZZ_CHECK prints the condition and aborts), so
 * libFuzzer saves the input like any other crash. Targets keep no state
 * between inputs: everything they allocate is freed before they return, so
 * LeakSanitizer can hold them to it.
 *
 * docs/fuzzing.md explains how to build and run them (make fuzz).
 */
#ifndef RKV_FUZZ_H
#define RKV_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* True if [p, p + len) lies inside [base, base + size). */
static inline int fuzz_inside(const void *p, size_t len, const void *base, size_t size)
{
    const uint8_t *q = p, *b = base;
    if (len == 0)
        return 1; /* an empty view may point anywhere, even NULL */
    return q >= b && q <= b + size && len <= (size_t)(b + size - q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
