/*
 * test_redis.c: the Redis-protocol endpoint of live nodes (docs/resp.md).
 *
 * Commands answered as Redis answers them, through a pipeline sent in one
 * write and through requests trickled one byte at a time; writes through
 * one node read through another; siblings made by the native client shown
 * as the newest and then overwritten by SET; malformed bytes answered with
 * an error and a closed connection while the node serves on; and
 * resp.connections_max enforced. Every read waits with a deadline.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/ringkv.h"
#include "common/clock.h"
#include "tests/support/cluster.h"
#include "tests/support/testutil.h"

#define WAIT_MS 10000

static struct cluster cl;

static void start3(void)
{
    struct cluster_opts o = {.n = 3, .resp = true, .extra_resp = "connections_max = 4"};
    cluster_start_opts(&cl, &o);
}

static void stop(void)
{
    cluster_stop(&cl);
}

/* ---- a minimal RESP client ---- */

struct conn {
    int fd;
    char buf[1 << 16];
    size_t len, off;
};

static void conn_open(struct conn *c, int node)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(c->fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(cl.resp_port[node]),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->len = c->off = 0;
}

static void conn_close(struct conn *c)
{
    close(c->fd);
}

static void send_all(struct conn *c, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t w = send(c->fd, s, len, MSG_NOSIGNAL);
        ck_assert_msg(w > 0, "send: %s", strerror(errno));
        s += w;
        len -= (size_t)w;
    }
}

/* More bytes, waiting at most until the deadline; false at end of stream. */
static bool fill(struct conn *c, uint64_t deadline)
{
    if (c->off > 0) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    ck_assert_uint_lt(c->len, sizeof c->buf);
    for (;;) {
        uint64_t now = rkv_clock_mono_ms();
        ck_assert_msg(now < deadline, "no reply within %d ms", WAIT_MS);
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, (int)(deadline - now)) <= 0)
            continue;
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return false;
        ck_assert_int_gt(r, 0);
        c->len += (size_t)r;
        return true;
    }
}

/* One line of the reply, without its CRLF, into out. */
static bool read_line(struct conn *c, char *out, size_t cap, uint64_t deadline)
{
    for (;;) {
        char *nl = memchr(c->buf + c->off, '\n', c->len - c->off);
        if (nl != NULL) {
            size_t n = (size_t)(nl - (c->buf + c->off));
            ck_assert(n >= 1 && nl[-1] == '\r' && n - 1 < cap);
            memcpy(out, c->buf + c->off, n - 1);
            out[n - 1] = '\0';
            c->off += n + 1;
            return true;
        }
        if (!fill(c, deadline))
            return false;
    }
}

/* The next reply, written flat: "+OK", "-ERR ...", ":3", "$value", "nil",
 * "[a,b]" for arrays. False at end of stream. */
static bool reply_into(struct conn *c, char *out, size_t cap, uint64_t deadline)
{
    char line[1024];
    if (!read_line(c, line, sizeof line, deadline))
        return false;
    if (line[0] == '$') {
        long n = strtol(line + 1, NULL, 10);
        if (n < 0) {
            snprintf(out, cap, "nil");
            return true;
        }
        while (c->len - c->off < (size_t)n + 2)
            ck_assert(fill(c, deadline));
        ck_assert_uint_lt((size_t)n + 1, cap);
        out[0] = '$';
        memcpy(out + 1, c->buf + c->off, (size_t)n);
        out[n + 1] = '\0';
        c->off += (size_t)n + 2;
        return true;
    }
    if (line[0] == '*') {
        long n = strtol(line + 1, NULL, 10);
        size_t o = (size_t)snprintf(out, cap, "[");
        for (long i = 0; i < n; i++) {
            char item[1024];
            ck_assert(reply_into(c, item, sizeof item, deadline));
            o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "," : "", item);
        }
        snprintf(out + o, cap - o, "]");
        return true;
    }
    snprintf(out, cap, "%s", line);
    return true;
}

static const char *reply(struct conn *c)
{
    static char out[4096];
    ck_assert_msg(reply_into(c, out, sizeof out, rkv_clock_mono_ms() + WAIT_MS),
                  "the connection closed before a reply");
    return out;
}

static void expect(struct conn *c, const char *want)
{
    const char *got = reply(c);
    ck_assert_msg(strcmp(got, want) == 0, "got \"%s\", want \"%s\"", got, want);
}

static void expect_prefix(struct conn *c, const char *want)
{
    const char *got = reply(c);
    ck_assert_msg(strncmp(got, want, strlen(want)) == 0, "got \"%s\", want \"%s...\"", got, want);
}

static void expect_closed(struct conn *c)
{
    char out[256];
    ck_assert_msg(!reply_into(c, out, sizeof out, rkv_clock_mono_ms() + WAIT_MS),
                  "more after the end: %s", out);
}

/* Sends one command as multibulk. */
static void cmd(struct conn *c, int argc, const char *const *argv)
{
    char b[4096];
    size_t o = (size_t)snprintf(b, sizeof b, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++)
        o += (size_t)snprintf(b + o, sizeof b - o, "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
    send_all(c, b, o);
}

#define CMD(c, ...)                                                                                \
    cmd((c), (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)),                  \
        (const char *[]){__VA_ARGS__})

/* ---- tests ---- */

START_TEST(commands_answer_as_redis_does)
{
    struct conn c;
    conn_open(&c, 0);
    /* one pipeline, sent before any reply is read */
    CMD(&c, "PING");
    CMD(&c, "SET", "k", "v1");
    CMD(&c, "GET", "k");
    CMD(&c, "SET", "k", "v2");
    CMD(&c, "GET", "k");
    CMD(&c, "SET", "nx", "a", "NX");
    CMD(&c, "SET", "nx", "b", "NX");
    CMD(&c, "SET", "xx", "a", "XX");
    CMD(&c, "SET", "nx", "c", "XX");
    CMD(&c, "GET", "nx");
    CMD(&c, "MSET", "a", "1", "b", "2");
    CMD(&c, "MGET", "a", "b", "none");
    CMD(&c, "DEL", "a", "none", "a");
    CMD(&c, "EXISTS", "a", "b", "b");
    CMD(&c, "GET", "a");
    CMD(&c, "EXPIRE", "b", "100");
    CMD(&c, "TTL", "k");
    CMD(&c, "PTTL", "none");
    CMD(&c, "EXPIRE", "none", "100");
    CMD(&c, "SETEX", "e", "100", "x");
    CMD(&c, "SET", "k", "v", "EX", "0");
    CMD(&c, "SET", "k", "v", "BOGUS");
    CMD(&c, "ECHO", "hello");
    CMD(&c, "SELECT", "0");
    CMD(&c, "SELECT", "1");
    CMD(&c, "GET");
    CMD(&c, "NOSUCH", "x");
    CMD(&c, "FLUSHALL");
    CMD(&c, "HELLO", "3");
    CMD(&c, "CLIENT", "SETNAME", "tester");
    CMD(&c, "CLIENT", "GETNAME");
    CMD(&c, "CONFIG", "GET", "save");
    expect(&c, "+PONG");
    expect(&c, "+OK");
    expect(&c, "$v1");
    expect(&c, "+OK");
    expect(&c, "$v2");
    expect(&c, "+OK");
    expect(&c, "nil");
    expect(&c, "nil");
    expect(&c, "+OK");
    expect(&c, "$c");
    expect(&c, "+OK");
    expect(&c, "[$1,$2,nil]");
    expect(&c, ":1"); /* DEL counts a key once, even when named twice */
    expect(&c, ":2");
    expect(&c, "nil");
    expect(&c, ":1");
    expect(&c, ":-1");
    expect(&c, ":-2");
    expect(&c, ":0");
    expect(&c, "+OK");
    expect(&c, "-ERR invalid expire time in 'set' command");
    expect(&c, "-ERR syntax error");
    expect(&c, "$hello");
    expect(&c, "+OK");
    expect(&c, "-ERR DB index is out of range");
    expect(&c, "-ERR wrong number of arguments for 'get' command");
    expect_prefix(&c, "-ERR unknown command 'NOSUCH'");
    expect_prefix(&c, "-ERR FLUSHALL is disabled");
    expect(&c, "-NOPROTO unsupported protocol version");
    expect(&c, "+OK");
    expect(&c, "$tester");
    expect(&c, "[$save,$]");
    /* TTLs in seconds and milliseconds, rounded as Redis does */
    CMD(&c, "TTL", "b");
    const char *ttl = reply(&c);
    ck_assert_msg(strcmp(ttl, ":100") == 0 || strcmp(ttl, ":99") == 0, "TTL: %s", ttl);
    CMD(&c, "PTTL", "e");
    long pttl = strtol(reply(&c) + 1, NULL, 10);
    ck_assert_msg(pttl > 90000 && pttl <= 100000, "PTTL: %ld", pttl);
    /* what one node wrote, another reads */
    struct conn d;
    conn_open(&d, 2);
    CMD(&d, "GET", "k");
    expect(&d, "$v2");
    CMD(&d, "MGET", "nx", "e");
    expect(&d, "[$c,$x]");
    /* inline commands, as typed into telnet */
    static const char typed[] = "PING\r\nSET  inl  9\nGET inl\r\n";
    send_all(&d, typed, sizeof typed - 1);
    expect(&d, "+PONG");
    expect(&d, "+OK");
    expect(&d, "$9");
    CMD(&d, "QUIT");
    expect(&d, "+OK");
    expect_closed(&d);
    conn_close(&d);
    conn_close(&c);
}
END_TEST

/* A pipeline sent one byte per write: the parser resumes at every byte. */
START_TEST(requests_trickled_byte_by_byte)
{
    struct conn c;
    conn_open(&c, 1);
    static const char s[] = "*3\r\n$3\r\nSET\r\n$5\r\nslow!\r\n$10\r\n0123456789\r\n"
                            "*2\r\n$3\r\nGET\r\n$5\r\nslow!\r\nPING\r\n";
    for (size_t i = 0; i < sizeof s - 1; i++)
        send_all(&c, s + i, 1);
    expect(&c, "+OK");
    expect(&c, "$0123456789");
    expect(&c, "+PONG");
    conn_close(&c);
}
END_TEST

/* Concurrent writes stay siblings; a GET shows the newest; SET replaces them. */
START_TEST(siblings_show_the_newest_and_set_replaces_them)
{
    struct ringkv_client *rc = cluster_client(&cl);
    ck_assert_int_eq(ringkv_put(rc, "sib", 3, "older", 5, NULL, NULL), RINGKV_OK);
    /* a timestamp later by at least a millisecond */
    uint64_t t0 = rkv_clock_realtime_ms();
    while (rkv_clock_realtime_ms() == t0)
        ;
    ck_assert_int_eq(ringkv_put(rc, "sib", 3, "newer", 5, NULL, NULL), RINGKV_OK);
    struct ringkv_result r;
    ck_assert_int_eq(ringkv_get(rc, "sib", 3, NULL, &r), RINGKV_OK);
    ck_assert_uint_eq(r.n_siblings, 2);
    ringkv_result_free(&r);
    struct conn c;
    conn_open(&c, 0);
    CMD(&c, "GET", "sib");
    expect(&c, "$newer");
    CMD(&c, "SET", "sib", "final");
    expect(&c, "+OK");
    ck_assert_int_eq(ringkv_get(rc, "sib", 3, NULL, &r), RINGKV_OK);
    ck_assert_uint_eq(r.n_siblings, 1);
    ck_assert_mem_eq(r.siblings[0].value, "final", 5);
    ringkv_result_free(&r);
    conn_close(&c);
    ringkv_close(rc);
}
END_TEST

/* Hostile bytes: an error, a closed connection, and a node that serves on. */
START_TEST(malformed_requests_close_the_connection)
{
    static const char *const bad[] = {
        "*1\r\n$x\r\n",       "*2\r\n$3\r\nGET\r\n:1\r\n", "*-5x\r\n", "*1\r\n$999999999999\r\n",
        "*1\r\n$3\r\nabcdef",
    };
    static const char *const why[] = {
        "-ERR Protocol error: invalid bulk length",
        "-ERR Protocol error: expected '$', got ':'",
        "-ERR Protocol error: invalid multibulk length",
        "-ERR Protocol error: invalid bulk length",
        "-ERR Protocol error: bulk string not followed by CRLF",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct conn c;
        conn_open(&c, 0);
        CMD(&c, "PING");
        send_all(&c, bad[i], strlen(bad[i]));
        expect(&c, "+PONG");
        expect(&c, why[i]);
        expect_closed(&c);
        conn_close(&c);
    }
    /* an inline line with no end is refused at 64 KiB, not buffered on */
    struct conn c;
    conn_open(&c, 0);
    static char line[70 * 1024];
    memset(line, 'x', sizeof line);
    send_all(&c, line, sizeof line);
    expect(&c, "-ERR Protocol error: too big inline request");
    expect_closed(&c);
    conn_close(&c);
    conn_open(&c, 0);
    CMD(&c, "PING");
    expect(&c, "+PONG");
    conn_close(&c);
}
END_TEST

/* resp.connections_max (4 here): the fifth is told and closed. */
START_TEST(connections_are_bounded)
{
    struct conn c[5];
    for (int i = 0; i < 4; i++) {
        conn_open(&c[i], 1);
        CMD(&c[i], "PING");
        expect(&c[i], "+PONG");
    }
    conn_open(&c[4], 1);
    expect(&c[4], "-ERR max number of clients reached");
    expect_closed(&c[4]);
    conn_close(&c[4]);
    /* a slot freed is a slot for the next one */
    conn_close(&c[0]);
    struct ringkv_client *rc = cluster_client(&cl);
    uint64_t deadline = rkv_clock_mono_ms() + WAIT_MS;
    for (;;) {
        conn_open(&c[0], 1);
        CMD(&c[0], "PING");
        char out[256];
        if (reply_into(&c[0], out, sizeof out, rkv_clock_mono_ms() + WAIT_MS) &&
            strcmp(out, "+PONG") == 0)
            break;
        /* the node may not have seen the close yet */
        conn_close(&c[0]);
        ck_assert_msg(rkv_clock_mono_ms() < deadline, "no room after a close");
    }
    ck_assert_uint_ge(cluster_stat(rc, "n2", "resp_refused"), 1);
    ringkv_close(rc);
    for (int i = 0; i < 4; i++)
        conn_close(&c[i]);
}
END_TEST

/* FLUSHALL, switched on: every key goes, in order with the pipeline. */
START_TEST(flushall_when_allowed)
{
    cluster_stop(&cl); /* this test wants its own ring */
    struct cluster_opts o = {.n = 3, .resp = true, .extra_resp = "flushall = true"};
    cluster_start_opts(&cl, &o);
    struct conn c;
    conn_open(&c, 1);
    char key[32];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "f%d", i);
        CMD(&c, "SET", key, "x");
    }
    CMD(&c, "FLUSHALL");
    CMD(&c, "SET", "after", "kept");
    for (int i = 0; i < 300; i++)
        expect(&c, "+OK");
    expect(&c, "+OK");
    expect(&c, "+OK");
    CMD(&c, "MGET", "f0", "f150", "f299", "after");
    expect(&c, "[nil,nil,nil,$kept]");
    CMD(&c, "EXISTS", "f1", "f2", "f3");
    expect(&c, ":0");
    CMD(&c, "FLUSHALL", "NOW");
    expect(&c, "-ERR syntax error");
    conn_close(&c);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("redis");
    TCase *tc = tcase_create("redis");
    tcase_add_checked_fixture(tc, start3, stop);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, commands_answer_as_redis_does);
    tcase_add_test(tc, requests_trickled_byte_by_byte);
    tcase_add_test(tc, siblings_show_the_newest_and_set_replaces_them);
    tcase_add_test(tc, malformed_requests_close_the_connection);
    tcase_add_test(tc, connections_are_bounded);
    tcase_add_test(tc, flushall_when_allowed);
    suite_add_tcase(su, tc);
    return test_run(su);
}
