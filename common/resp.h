/*
 * resp.h: the Redis protocol (RESP2), sans-I/O: a resumable request parser
 * and reply encoders. node/resp.c owns the sockets.
 *
 * Requests come in two forms:
 *   multibulk  *<n>\r\n then n times $<len>\r\n<len bytes>\r\n
 *   inline     one line of words separated by spaces or tabs, ended by \n
 *              (a \r before it is dropped); no quoting: a word is bytes
 *              between blanks
 * which is what redis-cli, redis-benchmark and client libraries send.
 *
 * The parser works on the bytes of the connection that are not consumed
 * yet, buf[0..len), which the caller keeps, appends to and passes again
 * after each read. It remembers how far it got, so a request that arrives
 * in many reads is scanned once (bulk bodies are skipped by length, never
 * scanned), and it never copies: arguments are offsets into buf, so they
 * stay right when the caller's buffer moves. When a request is complete
 * the caller handles it, then drops its bytes (consumed) from the front of
 * its buffer before the next call.
 *
 * Bounds: at most args_max arguments, each at most bulk_max bytes, the
 * whole request at most request_max bytes; a number line (*<n> or $<len>) at most RESP_NUMBER_LINE_MAX bytes; an
 * inline request at most RESP_INLINE_MAX bytes. Anything else is a
 * protocol error with Redis's wording, after which the connection must be
 * closed (its byte stream can no longer be framed). Memory: the argument
 * table grows with the arguments actually received, never with a claimed
 * count.
 */
#ifndef RKV_RESP_H
#define RKV_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define RESP_INLINE_MAX (64u * 1024)
#define RESP_NUMBER_LINE_MAX 32u
#define RESP_ERROR_BYTES 128

/* One argument: buf[off .. off + len). */
struct resp_arg {
    uint32_t off;
    uint32_t len;
};

struct resp_parser {
    /* set by the caller (resp_parser_init) */
    uint32_t args_max;
    uint32_t bulk_max;
    uint32_t request_max;
    /* the request being read */
    int state;               /* 0: none yet, 1: inline, 2: multibulk */
    size_t pos;              /* bytes of buf already parsed */
    int64_t want;            /* multibulk: arguments announced */
    uint32_t n;              /* arguments complete */
    struct resp_arg *args;   /* owned; grows up to args_max */
    uint32_t cap;
    char error[RESP_ERROR_BYTES];
};

enum resp_status {
    RESP_MORE = 0,    /* incomplete: read more and call again */
    RESP_REQUEST = 1, /* p->args[0 .. p->n) is a request of *consumed bytes */
    RESP_EMPTY = 2,   /* *consumed bytes that hold no request (empty line, *0) */
    RESP_BAD = 3,     /* p->error says what; close the connection */
};

void resp_parser_init(struct resp_parser *p, uint32_t args_max, uint32_t bulk_max,
                      uint32_t request_max);
void resp_parser_free(struct resp_parser *p);

/* Parses the request at the start of buf[0..len). After RESP_REQUEST or
 * RESP_EMPTY the parser is ready for the next request, which starts at
 * buf + *consumed (the caller drops those bytes first). */
enum resp_status resp_parse(struct resp_parser *p, const uint8_t *buf, size_t len,
                            size_t *consumed);

/* Argument i as a pointer into buf. */
static inline const uint8_t *resp_arg_ptr(const struct resp_parser *p, const uint8_t *buf,
                                          uint32_t i)
{
    return buf + p->args[i].off;
}

/* Case-insensitive comparison of an argument with a command or option name. */
bool resp_arg_is(const uint8_t *arg, uint32_t len, const char *name);
/* A decimal integer argument as Redis reads it (optional '-', no blanks, no
 * '+', within int64). False if it is not one. */
bool resp_arg_int(const uint8_t *arg, uint32_t len, int64_t *out);

/* Reply encoders: each appends to out; RKV_OK or RKV_ERR_NOMEM. */
int resp_simple(struct rkv_buf *out, const char *s);          /* +s */
/* -text: text starts with the error code ("ERR syntax error"); CR and LF
 * in it become blanks, and it is cut at RESP_ERROR_BYTES. */
int resp_error(struct rkv_buf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int resp_int(struct rkv_buf *out, int64_t v);                 /* :v */
int resp_bulk(struct rkv_buf *out, const void *p, size_t len); /* $len */
int resp_bulk_str(struct rkv_buf *out, const char *s);
int resp_nil(struct rkv_buf *out);                            /* $-1 */
int resp_array(struct rkv_buf *out, uint64_t n);              /* *n, then n replies */

#endif
