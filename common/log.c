/* log.c: formatted, whole-line logging to a replaceable sink. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_BYTES 1024

static void stderr_sink(void *ctx, enum rkv_log_level level, const char *line);

static enum rkv_log_level log_level = RKV_LOG_INFO;
static rkv_log_sink_fn *log_sink = stderr_sink;
static void *log_sink_ctx;

static const char *const level_names[] = {
    [RKV_LOG_DEBUG] = "debug",
    [RKV_LOG_INFO] = "info",
    [RKV_LOG_WARN] = "warn",
    [RKV_LOG_ERROR] = "error",
    [RKV_LOG_OFF] = "off",
};

static void stderr_sink(void *ctx, enum rkv_log_level level, const char *line)
{
    (void)ctx;
    (void)level;
    char buf[LOG_LINE_BYTES + 1];
    size_t n = strlen(line);
    if (n > LOG_LINE_BYTES)
        n = LOG_LINE_BYTES;
    memcpy(buf, line, n);
    buf[n++] = '\n';
    /* One write per line: lines from threads and processes do not mix. */
    ssize_t w = write(STDERR_FILENO, buf, n);
    (void)w;
}

void rkv_log_set_level(enum rkv_log_level level)
{
    log_level = level;
}

enum rkv_log_level rkv_log_get_level(void)
{
    return log_level;
}

void rkv_log_set_sink(rkv_log_sink_fn *sink, void *ctx)
{
    log_sink = sink ? sink : stderr_sink;
    log_sink_ctx = sink ? ctx : NULL;
}

int rkv_log_level_parse(const char *name)
{
    for (int i = 0; i <= RKV_LOG_OFF; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

const char *rkv_log_level_name(enum rkv_log_level level)
{
    if ((int)level < 0 || level > RKV_LOG_OFF)
        return "?";
    return level_names[level];
}

void rkv_log(enum rkv_log_level level, const char *module, const char *fmt, ...)
{
    if (level < log_level || level >= RKV_LOG_OFF)
        return;
    char line[LOG_LINE_BYTES];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level == RKV_LOG_WARN ? "WARN" :
                     level == RKV_LOG_ERROR ? "ERROR" : level == RKV_LOG_INFO ? "INFO" : "DEBUG",
                     module);
    if (n < 0)
        return;
    if ((size_t)n < sizeof line) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
    }
    log_sink(log_sink_ctx, level, line);
}
