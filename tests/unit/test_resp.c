/*
 * test_resp.c: the RESP2 parser and encoders (common/resp.h): both request
 * forms, requests split at every byte, pipelines, every protocol error,
 * bounds, and reply bytes exactly as Redis writes them.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/resp.h"
#include "tests/support/testutil.h"

/* Parses all of s, fed in pieces of `step` bytes the way a connection
 * would get them (consumed bytes dropped from the front), and writes the
 * requests as "arg arg|arg|" into out. Returns the last status. */
static enum resp_status parse_all(const char *s, size_t len, size_t step, char *out,
                                  size_t out_len, struct resp_parser *p)
{
    struct rkv_buf in = {0};
    size_t fed = 0, o = 0;
    enum resp_status st = RESP_MORE;
    out[0] = '\0';
    while (fed < len || st != RESP_MORE) {
        if (st == RESP_MORE) {
            size_t k = len - fed < step ? len - fed : step;
            ck_assert_int_eq(rkv_buf_append(&in, s + fed, k), RKV_OK);
            fed += k;
        }
        size_t used;
        st = resp_parse(p, in.data, in.len, &used);
        if (st == RESP_BAD)
            break;
        if (st == RESP_REQUEST) {
            for (uint32_t i = 0; i < p->n; i++) {
                o += (size_t)snprintf(out + o, out_len - o, "%s%.*s", i ? " " : "",
                                      (int)p->args[i].len,
                                      (const char *)resp_arg_ptr(p, in.data, i));
            }
            o += (size_t)snprintf(out + o, out_len - o, "|");
        }
        if (st != RESP_MORE) {
            memmove(in.data, in.data + used, in.len - used);
            in.len -= used;
        }
        if (st == RESP_MORE && fed == len)
            break;
    }
    rkv_buf_free(&in);
    return st;
}

START_TEST(requests_in_every_split)
{
    static const char *s = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\n"
                           "PING\r\n"
                           "\r\n"
                           "*0\r\n"
                           "  GET\t k  \n"
                           "*2\r\n$3\r\nGET\r\n$0\r\n\r\n";
    const char *want = "SET key va\r\nl|PING|GET k|GET |";
    for (size_t step = 1; step <= strlen(s); step++) {
        struct resp_parser p;
        resp_parser_init(&p, 16, 1024, 4096);
        char out[256];
        enum resp_status st = parse_all(s, strlen(s), step, out, sizeof out, &p);
        ck_assert_int_eq(st, RESP_MORE);
        ck_assert_msg(strcmp(out, want) == 0, "step %zu: %s", step, out);
        resp_parser_free(&p);
    }
}
END_TEST

START_TEST(protocol_errors)
{
    static const struct {
        const char *in;
        const char *error;
    } cases[] = {
        {"*x\r\n", "Protocol error: invalid multibulk length"},
        {"*17\r\n", "Protocol error: invalid multibulk length"},
        {"*1\n", "Protocol error: invalid multibulk length"},
        {"*99999999999999999999\r\n", "Protocol error: invalid multibulk length"},
        {"*1\r\n:1\r\n", "Protocol error: expected '$', got ':'"},
        {"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"},
        {"*1\r\n$1025\r\n", "Protocol error: invalid bulk length"},
        {"*1\r\n$+1\r\n", "Protocol error: invalid bulk length"},
        {"*1\r\n$01\r\n", "Protocol error: invalid bulk length"},
        {"*1\r\n$-0\r\n", "Protocol error: invalid bulk length"},
        {"*-0\r\n", "Protocol error: invalid multibulk length"},
        {"*1\r\n$3\r\nabcXY", "Protocol error: bulk string not followed by CRLF"},
        {"*1\r\n$1000000000000000000000000000000000000", "Protocol error: invalid bulk length"},
        {"*2\r\n$1000\r\n", "Protocol error: request larger than 1000 bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct resp_parser p;
        resp_parser_init(&p, 16, 1024, 1000);
        char out[64];
        enum resp_status st = parse_all(cases[i].in, strlen(cases[i].in), 1, out, sizeof out, &p);
        ck_assert_msg(st == RESP_BAD, "case %zu: status %d", i, st);
        ck_assert_msg(strcmp(p.error, cases[i].error) == 0, "case %zu: %s", i, p.error);
        resp_parser_free(&p);
    }
}
END_TEST

START_TEST(inline_bounds)
{
    struct resp_parser p;
    resp_parser_init(&p, 4, 1024, 1 << 20);
    char out[128];
    ck_assert_int_eq(parse_all("a b c d\n", 8, 3, out, sizeof out, &p), RESP_MORE);
    ck_assert_str_eq(out, "a b c d|");
    ck_assert_int_eq(parse_all("a b c d e\n", 10, 3, out, sizeof out, &p), RESP_BAD);
    ck_assert_str_eq(p.error, "Protocol error: more than 4 arguments");
    resp_parser_free(&p);

    /* a line with no end is refused at RESP_INLINE_MAX, not buffered on */
    static char line[RESP_INLINE_MAX + 10];
    memset(line, 'x', sizeof line);
    resp_parser_init(&p, 4, RESP_INLINE_MAX * 2, 1 << 20);
    ck_assert_int_eq(parse_all(line, sizeof line, 4096, out, sizeof out, &p), RESP_BAD);
    ck_assert_str_eq(p.error, "Protocol error: too big inline request");
    resp_parser_free(&p);
}
END_TEST

/* A claimed count far beyond what arrives allocates for what arrives. */
START_TEST(claims_allocate_nothing)
{
    struct resp_parser p;
    resp_parser_init(&p, 1000000, 1024, 1 << 30);
    const char *s = "*1000000\r\n$1\r\na\r\n";
    size_t used;
    ck_assert_int_eq(resp_parse(&p, (const uint8_t *)s, strlen(s), &used), RESP_MORE);
    ck_assert_uint_le(p.cap, 8);
    ck_assert_uint_eq(p.n, 1);
    resp_parser_free(&p);
}
END_TEST

START_TEST(arguments)
{
    int64_t v;
    ck_assert(resp_arg_int((const uint8_t *)"0", 1, &v) && v == 0);
    ck_assert(resp_arg_int((const uint8_t *)"-42", 3, &v) && v == -42);
    ck_assert(resp_arg_int((const uint8_t *)"9223372036854775807", 19, &v) && v == INT64_MAX);
    ck_assert(resp_arg_int((const uint8_t *)"-9223372036854775808", 20, &v) && v == INT64_MIN);
    ck_assert(!resp_arg_int((const uint8_t *)"9223372036854775808", 19, &v));
    ck_assert(!resp_arg_int((const uint8_t *)"", 0, &v));
    ck_assert(!resp_arg_int((const uint8_t *)"-", 1, &v));
    ck_assert(!resp_arg_int((const uint8_t *)"1 ", 2, &v));
    ck_assert(!resp_arg_int((const uint8_t *)"+1", 2, &v));
    ck_assert(!resp_arg_int((const uint8_t *)"007", 3, &v));
    ck_assert(!resp_arg_int((const uint8_t *)"-0", 2, &v)); /* as string2ll: fuzz_resp */
    ck_assert(resp_arg_is((const uint8_t *)"sEt", 3, "SET"));
    ck_assert(!resp_arg_is((const uint8_t *)"SETX", 4, "SET"));
    ck_assert(!resp_arg_is((const uint8_t *)"SE", 2, "SET"));
}
END_TEST

START_TEST(replies_as_redis_writes_them)
{
    struct rkv_buf b = {0};
    ck_assert_int_eq(resp_simple(&b, "OK"), RKV_OK);
    ck_assert_int_eq(resp_error(&b, "ERR bad\r\nthing %d", 7), RKV_OK);
    ck_assert_int_eq(resp_int(&b, -3), RKV_OK);
    ck_assert_int_eq(resp_bulk(&b, "a\r\nb", 4), RKV_OK);
    ck_assert_int_eq(resp_bulk(&b, "", 0), RKV_OK);
    ck_assert_int_eq(resp_nil(&b), RKV_OK);
    ck_assert_int_eq(resp_array(&b, 2), RKV_OK);
    const char *want = "+OK\r\n-ERR bad  thing 7\r\n:-3\r\n$4\r\na\r\nb\r\n$0\r\n\r\n$-1\r\n*2\r\n";
    ck_assert_uint_eq(b.len, strlen(want));
    ck_assert_mem_eq(b.data, want, b.len);
    rkv_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("resp");
    TCase *tc = tcase_create("resp");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, requests_in_every_split);
    tcase_add_test(tc, protocol_errors);
    tcase_add_test(tc, inline_bounds);
    tcase_add_test(tc, claims_allocate_nothing);
    tcase_add_test(tc, arguments);
    tcase_add_test(tc, replies_as_redis_writes_them);
    suite_add_tcase(su, tc);
    return test_run(su);
}
