/*
 * clock.h: the two clocks. Only node/, storage/ and tests read them; the
 * sans-I/O modules are handed the time as an argument.
 */
#ifndef RKV_CLOCK_H
#define RKV_CLOCK_H

#include <stdint.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME): expiry times. */
uint64_t rkv_clock_realtime_ms(void);
/* Monotonic milliseconds and microseconds: deadlines and intervals. */
uint64_t rkv_clock_mono_ms(void);
uint64_t rkv_clock_mono_us(void);

#endif
