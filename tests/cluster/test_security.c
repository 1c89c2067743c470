/*
 * test_security.c: CurveZMQ and hostile input against live nodes.
 *
 * Who may connect (allow-listed client keys, peer keys bound to node ids,
 * plain clients), what a misconfigured node does (a secret key others can
 * read), what crosses the wire (a packet capture holds no plaintext key or
 * value; the same capture of a plain ring does), and what hostile bytes do
 * to both ports (an error reply or a closed connection, the node stays up,
 * its memory stays bounded, and it answers the next good request).
 */
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "client/ringkv.h"
#include "common/cert.h"
#include "common/clock.h"
#include "common/codec.h"
#include "common/object.h"
#include "common/wire.h"
#include "tests/support/cluster.h"
#include "tests/support/testutil.h"

#define WAIT_MS 15000

static struct cluster cl;

static void start3(void)
{
    cluster_start(&cl, 3, NULL, NULL);
}

static void stop(void)
{
    cluster_stop(&cl);
}

/* A client of node 0 by seed, with the given key (NULL: none, plain). */
static int connect_with(const char *client_key, const char *keys_dir, struct ringkv_client **out)
{
    struct ringkv_options o;
    ringkv_options_default(&o);
    char seed[64];
    snprintf(seed, sizeof seed, "n1@127.0.0.1:%u", cl.client_port[0]);
    o.seeds = seed;
    o.keys_dir = keys_dir;
    o.client_key = client_key;
    o.connect_timeout_ms = 1500;
    return ringkv_connect(&o, out);
}

static void good_client_works(void)
{
    struct ringkv_client *c = cluster_client(&cl);
    ck_assert_int_eq(ringkv_put(c, "still", 5, "fine", 4, NULL, NULL), RINGKV_OK);
    struct ringkv_result r;
    ck_assert_int_eq(ringkv_get(c, "still", 5, NULL, &r), RINGKV_OK);
    ringkv_result_free(&r);
    ringkv_close(c);
}

START_TEST(unknown_client_key_is_refused)
{
    char dir[4200], key[4300];
    snprintf(dir, sizeof dir, "%s/rogue", cl.dir);
    struct cert k;
    struct rkv_error err;
    ck_assert_int_eq(cert_generate("rogue", &k, &err), RKV_OK);
    ck_assert_int_eq(cert_save(&k, dir, false, &err), RKV_OK);
    snprintf(key, sizeof key, "%s/rogue.key_secret", dir);
    struct ringkv_client *c;
    int rc = connect_with(key, cl.keys, &c);
    ck_assert_int_eq(rc, RINGKV_EUNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(ringkv_errmsg(c), "refused this client's key"));
    ringkv_close(c);
    struct ringkv_client *good = cluster_client(&cl);
    ck_assert_uint_ge(cluster_stat(good, "n1", "auth_refused"), 1);
    ringkv_close(good);
    good_client_works();
}
END_TEST

START_TEST(plain_client_fails_cleanly)
{
    struct ringkv_client *c;
    ck_assert_int_eq(connect_with(NULL, NULL, &c), RINGKV_EUNAVAILABLE);
    ringkv_close(c);
    good_client_works();
}
END_TEST

struct refused_ctx {
    struct ringkv_client *c;
    uint64_t before;
};

static bool more_refused(void *arg)
{
    struct refused_ctx *r = arg;
    return cluster_stat(r->c, "n1", "auth_refused") > r->before;
}

START_TEST(peer_with_unknown_key_cannot_join)
{
    struct ringkv_client *c = cluster_client(&cl);
    cluster_node_signal(&cl, 2, SIGTERM);
    /* an impostor: n3's id and address, a key of its own */
    char dir[4200], cmd[32768], config[4300];
    snprintf(dir, sizeof dir, "%s/impostor", cl.dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/clients && cp %s/n1.key %s/n2.key %s/ && "
                              "cp %s/clients/* %s/clients/",
             dir, cl.keys, cl.keys, dir, cl.keys, dir);
    ck_assert_int_eq(system(cmd), 0);
    struct cert k;
    struct rkv_error err;
    ck_assert_int_eq(cert_generate("n3", &k, &err), RKV_OK);
    ck_assert_int_eq(cert_save(&k, dir, false, &err), RKV_OK);
    snprintf(config, sizeof config, "%s/impostor.toml", cl.dir);
    snprintf(cmd, sizeof cmd, "sed 's|^keys_dir = .*|keys_dir = \"impostor\"|' %s > %s", cl.config,
             config);
    ck_assert_int_eq(system(cmd), 0);
    struct refused_ctx r = {.c = c, .before = cluster_stat(c, "n1", "auth_refused")};
    char log[4300];
    snprintf(log, sizeof log, "%s/impostor.log", cl.dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(fd, STDERR_FILENO);
        execl(cluster_bin("ringkvd"), "ringkvd", "--config", config, "--node", "n3", (char *)0);
        _exit(127);
    }
    wait_for(more_refused, &r, WAIT_MS, "n1 to refuse the impostor's key");
    /* the ring does not count it: a write needing all three fails */
    int rc = ringkv_put(c, "k", 1, "v", 1, &(struct ringkv_request_options){.w = 3}, NULL);
    ck_assert_int_eq(rc, RINGKV_EQUORUM);
    ck_assert_ptr_nonnull(strstr(ringkv_errmsg(c), "n3"));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ringkv_close(c);
}
END_TEST

struct exit_ctx {
    pid_t pid;
    int status;
};

static bool exited(void *arg)
{
    struct exit_ctx *e = arg;
    return waitpid(e->pid, &e->status, WNOHANG) == e->pid;
}

START_TEST(readable_secret_key_refuses_start)
{
    cluster_node_signal(&cl, 1, SIGTERM);
    char key[4300];
    snprintf(key, sizeof key, "%s/n2.key_secret", cl.keys);
    ck_assert_int_eq(chmod(key, 0644), 0);
    cluster_node_start(&cl, 1);
    struct exit_ctx e = {.pid = cl.pid[1]};
    wait_for(exited, &e, WAIT_MS, "ringkvd to refuse its key");
    cl.pid[1] = 0;
    ck_assert(WIFEXITED(e.status) && WEXITSTATUS(e.status) == 1);
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "grep -q 'chmod 600' %s/n2.log", cl.dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(chmod(key, 0600), 0);
    cluster_node_start(&cl, 1);
    cluster_wait_ready(&cl, 1, WAIT_MS);
    good_client_works();
}
END_TEST

/* ---- hostile bytes ---- */

static uint64_t rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    uint64_t kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lu kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

/* Raw TCP garbage: not even ZMTP. */
static void tcp_garbage(uint16_t port, struct test_rng *r)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    uint8_t buf[4096];
    for (int i = 0; i < 16; i++) {
        for (size_t j = 0; j < sizeof buf; j++)
            buf[j] = (uint8_t)test_rng_next(r);
        if (send(fd, buf, sizeof buf, MSG_NOSIGNAL) < 0)
            break; /* the node closed the connection: fine */
    }
    close(fd);
}

/* A DEALER with a key the node accepts (a client's, or a peer's). */
static void *curve_dealer(void *ctx, uint16_t port, const char *server, const char *mine,
                          const char *routing_id)
{
    char path[4300];
    struct cert srv, me;
    struct rkv_error err;
    snprintf(path, sizeof path, "%s/%s.key", cl.keys, server);
    ck_assert_int_eq(cert_load_public(path, &srv, &err), RKV_OK);
    snprintf(path, sizeof path, "%s/%s.key_secret", cl.keys, mine);
    ck_assert_int_eq(cert_load_secret(path, &me, &err), RKV_OK);
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", port);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, srv.public_key, 41);
    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, me.public_key, 41);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, me.secret_key, 41);
    if (routing_id)
        zmq_setsockopt(s, ZMQ_ROUTING_ID, routing_id, strlen(routing_id));
    ck_assert_int_eq(zmq_connect(s, ep), 0);
    return s;
}

/* The hostile frames: each is an error reply or silence, never a crash. */
static size_t hostile_frame(struct test_rng *r, int kind, uint8_t *buf, size_t cap)
{
    struct rkv_buf b = {0};
    size_t n = 0;
    switch (kind) {
    case 0: /* random bytes */
        n = (size_t)test_rng_below(r, cap);
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)test_rng_next(r);
        return n;
    case 1: /* a valid GET, truncated */
        wire_encode_get(&b, 7, 0, "key", 3, 2, 0);
        n = (size_t)test_rng_below(r, b.len);
        break;
    case 2: /* an array that claims billions of elements */
        memcpy(buf, "\xdd\xff\xff\xff\xff\x01\x02", 7);
        return 7;
    case 3: /* deep nesting */
        n = cap < 600 ? cap : 600;
        memset(buf, 0x91, n);
        return n;
    case 4: { /* an unknown opcode */
        struct mp_writer w;
        mp_writer_init(&w, &b);
        wire_header(&w, 0, 99, 8, 0);
        n = b.len;
        break;
    }
    case 5: /* R out of range */
        wire_encode_get(&b, 9, 0, "key", 3, 99, 0);
        n = b.len;
        break;
    case 6: { /* a context with thousands of entries from foreign actors */
        struct rkv_buf ctx = {0};
        struct mp_writer w;
        mp_writer_init(&w, &ctx);
        mp_write_array(&w, 2);
        mp_write_uint(&w, 1);
        mp_write_array(&w, 5000);
        for (uint64_t i = 0; i < 5000; i++) {
            mp_write_array(&w, 3);
            mp_write_uint(&w, i + 1);
            mp_write_uint(&w, 1);
            mp_write_uint(&w, 0);
        }
        wire_encode_put(&b, 10, 0, "key", 3, "v", 1, ctx.data, ctx.len, 0, 0, 0);
        rkv_buf_free(&ctx);
        n = b.len;
        break;
    }
    default: /* wrong types: a map where the array goes */
        memcpy(buf, "\x84\x01\x02\x03\x04\x05\x06\x07\x08", 9);
        return 9;
    }
    if (n > cap)
        n = cap;
    memcpy(buf, b.data, n);
    rkv_buf_free(&b);
    return n;
}

START_TEST(hostile_bytes_to_both_ports)
{
    struct test_rng r = {1234};
    uint64_t rss0 = rss_kib(cl.pid[0]);
    for (int i = 0; i < 20; i++) {
        tcp_garbage(cl.client_port[0], &r);
        tcp_garbage(cl.cluster_port[0], &r);
    }
    /* n2 goes, so that a dealer with its key and name can take its place
     * (n1 refuses a second connection with a member's name) */
    cluster_node_signal(&cl, 1, SIGKILL);
    void *ctx = zmq_ctx_new();
    void *client = curve_dealer(ctx, cl.client_port[0], "n1", "client", NULL);
    void *peer = curve_dealer(ctx, cl.cluster_port[0], "n1", "n2", "n2");
    void *liar = curve_dealer(ctx, cl.cluster_port[0], "n1", "n2", "n9"); /* n2's key, n9's name */
    static uint8_t buf[70000];
    int replies = 0, sent = 0;
    for (int i = 0; i < 3000; i++) {
        size_t n = hostile_frame(&r, i % 8, buf, sizeof buf);
        void *to = i % 3 == 0 ? client : i % 3 == 1 ? peer : liar;
        if (zmq_send(to, buf, n, 0) >= 0 && to == client)
            sent++;
        zmq_msg_t m;
        zmq_msg_init(&m);
        while (zmq_msg_recv(&m, client, ZMQ_DONTWAIT) >= 0) {
            struct wire_msg w;
            ck_assert_int_eq(wire_decode(zmq_msg_data(&m), zmq_msg_size(&m), &w), RKV_OK);
            ck_assert_uint_eq(w.type, WIRE_REPLY);
            ck_assert_uint_ne(w.status, RKV_OK); /* every hostile request is refused */
            replies++;
        }
        zmq_msg_close(&m);
    }
    /* every client frame gets its error reply */
    uint64_t deadline = rkv_clock_mono_ms() + WAIT_MS;
    while (replies < sent && rkv_clock_mono_ms() < deadline) {
        zmq_pollitem_t it = {.socket = client, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 100) == 1) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, client, 0) >= 0)
                replies++;
            zmq_msg_close(&m);
        }
    }
    ck_assert_int_eq(replies, sent);
    zmq_close(client);
    zmq_close(peer);
    zmq_close(liar);
    zmq_ctx_term(ctx);
    /* still up, memory bounded, answers good requests */
    ck_assert_int_eq(kill(cl.pid[0], 0), 0);
    uint64_t rss1 = rss_kib(cl.pid[0]);
    ck_assert_msg(rss1 < rss0 + 64 * 1024, "RSS grew from %lu to %lu KiB", rss0, rss1);
    struct ringkv_client *good = cluster_client(&cl);
    ck_assert_uint_ge(cluster_stat(good, "n1", "bad_requests"), 1);
    ck_assert_uint_ge(cluster_stat(good, "n1", "auth_refused"), 1); /* the liar */
    ringkv_close(good);
    cluster_node_start(&cl, 1);
    cluster_wait_ready(&cl, 1, WAIT_MS);
    good_client_works();
}
END_TEST

START_TEST(inflight_per_client_is_bounded)
{
    struct cluster small;
    struct cluster_opts o = {.n = 3, .extra_limits = "inflight_per_client = 4"};
    cluster_start_opts(&small, &o);
    cluster_node_signal(&small, 2, SIGSTOP); /* R=3 reads now wait for their deadline */
    struct cluster saved = cl;
    cl = small; /* curve_dealer reads cl's keys and ports */
    void *ctx = zmq_ctx_new();
    void *s = curve_dealer(ctx, small.client_port[0], "n1", "client", NULL);
    cl = saved;
    struct rkv_buf b = {0};
    for (uint64_t id = 1; id <= 64; id++) {
        b.len = 0;
        wire_encode_get(&b, id, 0, "k", 1, 3, 0);
        ck_assert_int_ge(zmq_send(s, b.data, b.len, 0), 0);
    }
    int busy = 0, other = 0;
    uint64_t deadline = rkv_clock_mono_ms() + WAIT_MS;
    while (busy + other < 64 && rkv_clock_mono_ms() < deadline) {
        zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 100) != 1)
            continue;
        zmq_msg_t m;
        zmq_msg_init(&m);
        ck_assert_int_ge(zmq_msg_recv(&m, s, 0), 0);
        struct wire_msg w;
        ck_assert_int_eq(wire_decode(zmq_msg_data(&m), zmq_msg_size(&m), &w), RKV_OK);
        if (w.status == RKV_ERR_BUSY) {
            busy++;
            ck_assert(memmem(w.message.p, w.message.len, "inflight_per_client (4)", 23));
        } else {
            other++; /* the four admitted: quorum errors at the deadline */
        }
        zmq_msg_close(&m);
    }
    ck_assert_int_eq(busy, 60);
    ck_assert_int_eq(other, 4);
    rkv_buf_free(&b);
    zmq_close(s);
    zmq_ctx_term(ctx);
    cluster_node_signal(&small, 2, SIGCONT);
    cluster_stop(&small);
}
END_TEST

/* ---- the wire ---- */

/* Captures loopback traffic on the ring's ports while fn runs; returns the
 * capture's bytes (malloc'd) and their size. */
static uint8_t *capture(struct cluster *c, void (*fn)(struct cluster *), size_t *len)
{
    ck_assert_msg(system("scripts/deps.sh capture >/dev/null 2>&1") == 0 &&
                      system("command -v tcpdump >/dev/null") == 0,
                  "tcpdump is needed (scripts/deps.sh capture installs it)");
    char pcap[4200], errlog[4200], filter[1024] = "";
    snprintf(pcap, sizeof pcap, "%s/wire.pcap", c->dir);
    snprintf(errlog, sizeof errlog, "%s/tcpdump.log", c->dir);
    size_t fl = 0;
    for (int i = 0; i < c->n; i++)
        fl += (size_t)snprintf(filter + fl, sizeof filter - fl, "%stcp port %u or tcp port %u",
                               i ? " or " : "", c->client_port[i], c->cluster_port[i]);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, STDERR_FILENO);
        execlp("tcpdump", "tcpdump", "-i", "lo", "-U", "-s", "0", "-w", pcap, filter, (char *)0);
        _exit(127);
    }
    /* wait until it listens */
    char grep[4400];
    snprintf(grep, sizeof grep, "grep -q 'listening on' %s", errlog);
    uint64_t deadline = rkv_clock_mono_ms() + WAIT_MS;
    while (system(grep) != 0) {
        ck_assert_msg(rkv_clock_mono_ms() < deadline, "tcpdump did not start");
        usleep(20000);
    }
    fn(c);
    /* tcpdump stops without writing what it has not processed yet: send a
     * marker on a captured port and wait until the file holds it (packets
     * are written in order, so everything before it is there too) */
    static const char marker[] = "capture-marker-5be1";
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(c->client_port[0]),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_gt(send(fd, marker, sizeof marker, MSG_NOSIGNAL), 0);
    uint8_t *data = malloc(64 << 20);
    deadline = rkv_clock_mono_ms() + WAIT_MS;
    for (;;) {
        FILE *f = fopen(pcap, "rb");
        *len = f ? fread(data, 1, 64 << 20, f) : 0;
        if (f)
            fclose(f);
        if (memmem(data, *len, marker, sizeof marker - 1))
            break;
        ck_assert_msg(rkv_clock_mono_ms() < deadline, "the capture never saw its marker");
        usleep(20000);
    }
    close(fd);
    kill(pid, SIGINT);
    waitpid(pid, NULL, 0);
    return data;
}

static const char secret_key[] = "wire-secret-key-4f1c9b";
static const char secret_value[] = "wire-secret-value-8d2e7a";

static void write_and_read(struct cluster *c)
{
    struct ringkv_client *cli = cluster_client(c);
    ck_assert_int_eq(ringkv_put(cli, secret_key, strlen(secret_key), secret_value,
                                strlen(secret_value), &(struct ringkv_request_options){.w = 3},
                                NULL),
                     RINGKV_OK);
    struct ringkv_result r;
    ck_assert_int_eq(ringkv_get(cli, secret_key, strlen(secret_key),
                                &(struct ringkv_request_options){.r = 3}, &r),
                     RINGKV_OK);
    ringkv_result_free(&r);
    ringkv_close(cli);
}

static bool contains(const uint8_t *hay, size_t n, const char *needle)
{
    return memmem(hay, n, needle, strlen(needle)) != NULL;
}

START_TEST(no_plaintext_on_the_wire)
{
    size_t len;
    uint8_t *pcap = capture(&cl, write_and_read, &len);
    ck_assert_uint_gt(len, 1000); /* it did capture the traffic */
    ck_assert_msg(!contains(pcap, len, secret_key), "the key crossed the wire in plaintext");
    ck_assert_msg(!contains(pcap, len, secret_value), "the value crossed the wire in plaintext");
    free(pcap);
    /* the control: the same capture of a plain ring does see them */
    struct cluster plain;
    struct cluster_opts o = {.n = 3, .plain = true};
    cluster_start_opts(&plain, &o);
    pcap = capture(&plain, write_and_read, &len);
    ck_assert_msg(contains(pcap, len, secret_key) && contains(pcap, len, secret_value),
                  "the capture misses plaintext it should see");
    free(pcap);
    cluster_stop(&plain);
}
END_TEST

/* Waits for the REPLICA_REPLY to id on a peer's DEALER; its status, or -1
 * if none came by the deadline. */
static int replica_reply(void *sock, uint64_t id, uint32_t deadline_ms)
{
    uint64_t until = rkv_clock_mono_ms() + deadline_ms;
    while (rkv_clock_mono_ms() < until) {
        zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, 0) < 0) {
            zmq_msg_close(&m);
            continue;
        }
        struct wire_msg w;
        int status = -1;
        if (wire_decode(zmq_msg_data(&m), zmq_msg_size(&m), &w) == RKV_OK &&
            w.type == WIRE_REPLICA_REPLY && w.id == id)
            status = (int)w.status;
        zmq_msg_close(&m);
        if (status >= 0)
            return status;
    }
    return -1;
}

/* A replica put that changes nothing (the replica has the version
 * already, as after a read repair that overtook the coordinator's put) is
 * acknowledged at once: with sync "always" no fdatasync round comes to
 * release it, and it used to wait for the next write to the node. */
START_TEST(replica_put_that_changes_nothing_is_acknowledged)
{
    struct ringkv_client *c = cluster_client(&cl);
    struct ringkv_ring_info info;
    ck_assert_int_eq(ringkv_ring(c, &info), RINGKV_OK);
    uint64_t epoch = info.epoch;
    uint32_t part = ringkv_partition(c, "same", 4);
    cluster_node_signal(&cl, 1, SIGKILL); /* the test speaks as n2 */
    void *ctx = zmq_ctx_new();
    void *peer = curve_dealer(ctx, cl.cluster_port[0], "n1", "n2", "n2");
    struct object o;
    object_init(&o);
    struct object_limits lim;
    object_limits_default(&lim);
    ck_assert_int_eq(object_update(&o, NULL, 0x5eed, rkv_clock_realtime_ms(), "v", 1, 0, false,
                                   &lim),
                     RKV_OK);
    struct rkv_buf obj = {0}, frame = {0};
    ck_assert_int_eq(object_encode(&o, &obj), RKV_OK);
    for (uint64_t id = 101; id <= 103; id++) { /* the second and third change nothing */
        frame.len = 0;
        ck_assert_int_eq(wire_encode_replica_put(&frame, id, epoch, (uint16_t)part, "same", 4,
                                                 obj.data, obj.len),
                         RKV_OK);
        ck_assert_int_ge(zmq_send(peer, frame.data, frame.len, 0), 0);
        ck_assert_msg(replica_reply(peer, id, 5000) == RKV_OK, "no acknowledgement of put %llu",
                      (unsigned long long)id);
    }
    rkv_buf_free(&obj);
    rkv_buf_free(&frame);
    object_free(&o);
    zmq_close(peer);
    zmq_ctx_term(ctx);
    ringkv_close(c);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("security");
    TCase *tc = tcase_create("curve");
    tcase_add_checked_fixture(tc, start3, stop);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, unknown_client_key_is_refused);
    tcase_add_test(tc, plain_client_fails_cleanly);
    tcase_add_test(tc, peer_with_unknown_key_cannot_join);
    tcase_add_test(tc, readable_secret_key_refuses_start);
    tcase_add_test(tc, hostile_bytes_to_both_ports);
    tcase_add_test(tc, inflight_per_client_is_bounded);
    tcase_add_test(tc, no_plaintext_on_the_wire);
    tcase_add_test(tc, replica_put_that_changes_nothing_is_acknowledged);
    suite_add_tcase(su, tc);
    return test_run(su);
}
