/*
 * log.h: the one logging facility.
 *
 * Lines go to a sink, stderr by default, formatted as
 *   2026-11-21T10:00:00.123Z WARN storage: message
 * Each line is built in a local buffer and handed to the sink whole, so lines
 * from different threads never interleave. Level and sink are process-wide
 * settings made once at start-up (before threads), like the allocation hook.
 * The sans-I/O modules (ring, gossip, coordinator) do not log: they report
 * through their return values and node/ logs for them.
 */
#ifndef RKV_LOG_H
#define RKV_LOG_H

enum rkv_log_level {
    RKV_LOG_DEBUG = 0,
    RKV_LOG_INFO = 1,
    RKV_LOG_WARN = 2,
    RKV_LOG_ERROR = 3,
    RKV_LOG_OFF = 4,
};

/* Receives one formatted line (no trailing newline). */
typedef void rkv_log_sink_fn(void *ctx, enum rkv_log_level level, const char *line);

/* Lines below level are dropped. Default RKV_LOG_INFO. */
void rkv_log_set_level(enum rkv_log_level level);
enum rkv_log_level rkv_log_get_level(void);

/* NULL restores the stderr sink. */
void rkv_log_set_sink(rkv_log_sink_fn *sink, void *ctx);

/* Parses "debug", "info", "warn", "error", "off"; returns -1 if unknown. */
int rkv_log_level_parse(const char *name);
const char *rkv_log_level_name(enum rkv_log_level level);

void rkv_log(enum rkv_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define RKV_DEBUG(mod, ...) rkv_log(RKV_LOG_DEBUG, mod, __VA_ARGS__)
#define RKV_INFO(mod, ...) rkv_log(RKV_LOG_INFO, mod, __VA_ARGS__)
#define RKV_WARN(mod, ...) rkv_log(RKV_LOG_WARN, mod, __VA_ARGS__)
#define RKV_ERROR(mod, ...) rkv_log(RKV_LOG_ERROR, mod, __VA_ARGS__)

#endif
