/*
 * fuzz_gossip.c: libFuzzer target for the gossip message decoder
 * (gossip_on_message and gossip_on_message_from, gossip/gossip.h).
 *
 * ringkvd hands every WIRE_GOSSIP frame a peer sends to
 * gossip_on_message_from (node/membership.c), so this target is invariant
 * 8 for membership: any bytes give an error, with nothing applied, or an
 * applied message, never a crash, a hang or memory sized by a claim.
 *
 * One node (self "n0" of cluster "fuzz-ring", a few seeds, a fixed PRNG
 * seed; tests/fuzz/gossip_seed.h) is built per input, optionally given a
 * table first by a valid ACK2, and fed the input's frames (layout in
 * gossip_seed.h) with a clock that only moves forward and a gossip_tick
 * where a frame asks for one. After every call it checks:
 *
 *   - gossip_invariants_ok; at most RKV_NODES_MAX members; self is in the
 *     table under its id; self's status is the one it started with, or
 *     REMOVED (an operator's remove, accepted) and then stays REMOVED;
 *   - the return code is RKV_OK, RKV_ERR_PROTO or RKV_ERR_TOOBIG (the last
 *     exactly when the frame is over message_bytes_max; RKV_ERR_NOMEM
 *     cannot happen, nothing fails allocations here), errmsg is set
 *     exactly on an error;
 *   - a refused message changes nothing: every member's (id, incarnation,
 *     version, heartbeat, status) and the outbox are as before;
 *   - the merge rule: no member disappears and none's (incarnation,
 *     version, heartbeat, status) goes down, ticks included; after an
 *     applied ACK or ACK2, the held state of every id it names is at least
 *     the state it carried (self's too: a rumour is either refuted, self
 *     ending newer, or is the accepted remove), unless the table was full
 *     or the rumour of self has incarnation and version at RKV_COUNTER_MAX
 *     - 1 (nothing is left to refute it with);
 *   - the outbox is well-formed: each message is fed to a second instance
 *     ("peer", authenticated as "n0") and must be applied, and with
 *     FG_ANSWERS_BACK the peer's answers come back to the node (as from
 *     "peer") and must be applied too;
 *   - a frame delivered twice (FG_CTL_TWICE): if the first was applied, the
 *     second changes no member's state (applying is idempotent).
 *
 * The frames are given to gossip_on_message_from as from fg_senders[] (or
 * to gossip_on_message when the sender is unauthenticated), so messages
 * from another sender are refused up front.
 *
 * gossip/gossip.c comes from the fuzz library (FUZZ_LIB_SRC); this file
 * uses only what gossip.h declares.
 *
 * Nothing is kept between inputs; all that is allocated is freed.
 */
#include "gossip/gossip.h"

#include <stdbool.h>
#include <string.h>

#include "common/buf.h"
#include "common/codec.h"
#include "common/err.h"
#include "common/limits.h"
#include "gossip/gossip.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/gossip_seed.h"

#define FZ_DEPTH_MAX 4 /* SYN -> ACK -> ACK2 needs 3 */

/* A member's state as the merge rule sees it. */
struct fz_entry {
    char id[RKV_NODE_ID_BYTES_MAX + 1];
    uint64_t inc, ver, hb;
    uint32_t status;
};

struct fz_table {
    size_t n;
    struct fz_entry *e;
};

struct fz_run {
    struct gossip *g, *peer;
    const char *sender; /* NULL: unauthenticated */
    enum gossip_status self_status0;
    bool self_removed;
    bool answers_back;
    uint32_t message_bytes_max;
    uint64_t now;
};

static void fz_snapshot(const struct gossip *g, struct fz_table *t)
{
    t->n = gossip_member_count(g);
    t->e = calloc(t->n ? t->n : 1, sizeof *t->e);
    FUZZ_CHECK(t->e != NULL);
    for (size_t i = 0; i < t->n; i++) {
        const struct gossip_node *m = gossip_member(g, i);
        FUZZ_CHECK(m != NULL);
        memcpy(t->e[i].id, m->id, sizeof t->e[i].id);
        t->e[i].inc = m->incarnation;
        t->e[i].ver = m->version;
        t->e[i].hb = m->heartbeat;
        t->e[i].status = (uint32_t)m->status;
    }
}

static bool fz_table_equal(const struct fz_table *a, const struct fz_table *b)
{
    return a->n == b->n && memcmp(a->e, b->e, a->n * sizeof *a->e) == 0;
}

static int fz_u64_cmp(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}

/* The merge order: (incarnation, version, heartbeat, status). */
static int fz_order(uint64_t inc_a, uint64_t ver_a, uint64_t hb_a, uint32_t st_a, uint64_t inc_b,
                    uint64_t ver_b, uint64_t hb_b, uint32_t st_b)
{
    int c = fz_u64_cmp(inc_a, inc_b);
    if (c == 0)
        c = fz_u64_cmp(ver_a, ver_b);
    if (c == 0)
        c = fz_u64_cmp(hb_a, hb_b);
    if (c == 0)
        c = fz_u64_cmp(st_a, st_b);
    return c;
}

/* Every member of before is in after (both sorted by id) and not older. */
static void fz_check_monotonic(const struct fz_table *before, const struct fz_table *after)
{
    size_t j = 0;
    for (size_t i = 0; i < before->n; i++) {
        const struct fz_entry *b = &before->e[i];
        while (j < after->n && strcmp(after->e[j].id, b->id) < 0)
            j++;
        FUZZ_CHECK(j < after->n && strcmp(after->e[j].id, b->id) == 0);
        const struct fz_entry *a = &after->e[j];
        FUZZ_CHECK(fz_order(a->inc, a->ver, a->hb, a->status, b->inc, b->ver, b->hb, b->status) >=
                   0);
    }
}

/* The table's promises, after any call. */
static void fz_check_table(struct fz_run *run)
{
    struct gossip *g = run->g;
    FUZZ_CHECK(gossip_invariants_ok(g));
    FUZZ_CHECK(gossip_member_count(g) >= 1 && gossip_member_count(g) <= RKV_NODES_MAX);
    const struct gossip_node *self = gossip_self(g);
    FUZZ_CHECK(self != NULL && strcmp(self->id, FG_SELF_ID) == 0);
    FUZZ_CHECK(gossip_find(g, FG_SELF_ID) == self);
    FUZZ_CHECK(self->status == run->self_status0 || self->status == GOSSIP_REMOVED);
    FUZZ_CHECK(!run->self_removed || self->status == GOSSIP_REMOVED);
    FUZZ_CHECK(gossip_self_removed(g) == (self->status == GOSSIP_REMOVED));
    run->self_removed = self->status == GOSSIP_REMOVED;
}

/* After an applied message: every state an ACK or ACK2 carried is held, or
 * something newer is (the merge rule; refutation for self). The message is
 * read here by the format of gossip.h, independently of gossip.c. */
static void fz_check_applied(const struct gossip *g, const void *data, size_t len)
{
    struct mp_reader r;
    uint32_t fields, n, slen;
    uint64_t version, type;
    const char *s;
    mp_reader_init(&r, data, len);
    FUZZ_CHECK(mp_read_array(&r, &fields) && mp_read_uint(&r, &version) &&
               mp_read_uint(&r, &type) && mp_read_str(&r, &s, &slen) && mp_read_str(&r, &s, &slen));
    FUZZ_CHECK(version == GOSSIP_WIRE_VERSION);
    FUZZ_CHECK(type == GOSSIP_SYN || type == GOSSIP_ACK || type == GOSSIP_ACK2);
    FUZZ_CHECK(fields == (type == GOSSIP_ACK ? 6u : 5u));
    if (type == GOSSIP_SYN)
        return;
    FUZZ_CHECK(mp_read_array(&r, &n) && n <= RKV_NODES_MAX);
    for (uint32_t i = 0; i < n; i++) {
        char id[RKV_NODE_ID_BYTES_MAX + 1];
        uint64_t v[9];
        FUZZ_CHECK(mp_read_array(&r, &fields) && fields == 11);
        FUZZ_CHECK(mp_read_str(&r, &s, &slen) && slen >= 1 && slen <= RKV_NODE_ID_BYTES_MAX);
        memcpy(id, s, slen);
        id[slen] = '\0';
        FUZZ_CHECK(mp_read_str(&r, &s, &slen));
        for (int k = 0; k < 9; k++)
            FUZZ_CHECK(mp_read_uint(&r, &v[k]));
        /* v: client_port, cluster_port, vnodes, incarnation, version, heartbeat, status,
         * ring_epoch, handoff */
        FUZZ_CHECK(v[8] <= RKV_PARTITIONS_MAX);
        const struct gossip_node *held = gossip_find(g, id);
        if (held == NULL) {
            FUZZ_CHECK(gossip_member_count(g) == RKV_NODES_MAX); /* dropped: table full */
            continue;
        }
        /* a rumour of self with no counter left to go above cannot be
         * refuted (gossip.c, on_rumour_of_self) */
        if (strcmp(id, FG_SELF_ID) == 0 && v[3] == RKV_COUNTER_MAX - 1 &&
            v[4] == RKV_COUNTER_MAX - 1)
            continue;
        FUZZ_CHECK(fz_order(held->incarnation, held->version, held->heartbeat,
                            (uint32_t)held->status, v[3], v[4], v[5], (uint32_t)v[6]) >= 0);
    }
}

static void fz_deliver(struct fz_run *run, const void *data, size_t len, const char *sender,
                       bool expect_ok, bool expect_unchanged, int depth);

/* Takes the outbox of g into copies (the next input call invalidates it). */
static struct rkv_buf *fz_take_outbox(struct gossip *g, const char *only_to, size_t *n_out)
{
    size_t n;
    struct gossip_out *out = gossip_outbox(g, &n);
    struct rkv_buf *copy = calloc(n ? n : 1, sizeof *copy);
    FUZZ_CHECK(copy != NULL);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(out[i].to[0] != '\0' && strlen(out[i].to) <= RKV_NODE_ID_BYTES_MAX);
        FUZZ_CHECK(out[i].msg.len > 0);
        if (only_to != NULL && strcmp(out[i].to, only_to) != 0)
            continue;
        FUZZ_CHECK(rkv_buf_append(&copy[k++], out[i].msg.data, out[i].msg.len) == RKV_OK);
    }
    gossip_outbox_clear(g);
    *n_out = k;
    return copy;
}

static void fz_free_copies(struct rkv_buf *copy, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rkv_buf_free(&copy[i]);
    free(copy);
}

/* The node's outbox goes to the peer, which must apply every message; its
 * answers to the node come back if asked. */
static void fz_flush(struct fz_run *run, int depth)
{
    size_t n;
    struct rkv_buf *msgs = fz_take_outbox(run->g, NULL, &n);
    for (size_t i = 0; i < n; i++) {
        int rc = gossip_on_message_from(run->peer, run->now, FG_SELF_ID, msgs[i].data, msgs[i].len);
        if (rc != RKV_OK)
            fprintf(stderr, "peer refused the node's message: %s\n", gossip_errmsg(run->peer));
        FUZZ_CHECK(rc == RKV_OK);
        FUZZ_CHECK(gossip_invariants_ok(run->peer));
    }
    fz_free_copies(msgs, n);
    msgs = fz_take_outbox(run->peer, FG_SELF_ID, &n);
    if (run->answers_back && depth < FZ_DEPTH_MAX)
        for (size_t i = 0; i < n; i++)
            fz_deliver(run, msgs[i].data, msgs[i].len, FG_PEER_ID, true, false, depth + 1);
    fz_free_copies(msgs, n);
}

/* One message to the node, and every check after it. Returns nothing: a
 * broken promise aborts. */
static void fz_deliver(struct fz_run *run, const void *data, size_t len, const char *sender,
                       bool expect_ok, bool expect_unchanged, int depth)
{
    struct gossip *g = run->g;
    struct fz_table before, after;
    struct gossip_stats st0, st1;
    size_t out0, out1;
    fz_snapshot(g, &before);
    gossip_outbox(g, &out0);
    gossip_stats(g, &st0);

    int rc = sender ? gossip_on_message_from(g, run->now, sender, data, len)
                    : gossip_on_message(g, run->now, data, len);

    FUZZ_CHECK(rc == RKV_OK || rc == RKV_ERR_PROTO || rc == RKV_ERR_TOOBIG);
    FUZZ_CHECK((rc == RKV_ERR_TOOBIG) == (len > run->message_bytes_max));
    FUZZ_CHECK((rc == RKV_OK) == (gossip_errmsg(g)[0] == '\0'));
    if (expect_ok && rc != RKV_OK)
        fprintf(stderr, "a valid message was refused: %s\n", gossip_errmsg(g));
    FUZZ_CHECK(!expect_ok || rc == RKV_OK);
    fz_check_table(run);
    fz_snapshot(g, &after);
    fz_check_monotonic(&before, &after);
    gossip_outbox(g, &out1);
    gossip_stats(g, &st1);
    FUZZ_CHECK(st1.received == st0.received + 1);
    if (rc != RKV_OK) {
        FUZZ_CHECK(fz_table_equal(&before, &after));
        FUZZ_CHECK(out1 == out0);
        FUZZ_CHECK(st1.refused == st0.refused + 1);
    } else {
        FUZZ_CHECK(st1.refused == st0.refused);
        fz_check_applied(g, data, len);
        if (expect_unchanged)
            FUZZ_CHECK(fz_table_equal(&before, &after));
    }
    free(before.e);
    free(after.e);
    fz_flush(run, depth);
}

static void fz_tick(struct fz_run *run)
{
    struct fz_table before, after;
    fz_snapshot(run->g, &before);
    gossip_tick(run->g, run->now);
    fz_check_table(run);
    fz_snapshot(run->g, &after);
    fz_check_monotonic(&before, &after);
    FUZZ_CHECK(gossip_next_deadline(run->g) == run->now + GOSSIP_INTERVAL_MS_DEFAULT);
    free(before.e);
    free(after.e);
    fz_flush(run, 0);
}

static void fz_state(struct mp_writer *w, const char *id, uint64_t inc, uint64_t ver, uint64_t hb,
                     enum gossip_status status)
{
    mp_write_array(w, 11);
    mp_write_cstr(w, id);
    mp_write_cstr(w, "10.0.0.2");
    mp_write_uint(w, 7000);
    mp_write_uint(w, 7001);
    mp_write_uint(w, 16);
    mp_write_uint(w, inc);
    mp_write_uint(w, ver);
    mp_write_uint(w, hb);
    mp_write_uint(w, (uint64_t)status);
    mp_write_uint(w, 0x5eed0000ull + inc); /* ring_epoch */
    mp_write_uint(w, hb % 4);              /* handoff */
}

/* A valid ACK2 from n1 that gives the node a table before the frames. */
static void fz_prefill(struct fz_run *run, unsigned mode)
{
    struct rkv_buf b = {0};
    struct mp_writer w;
    mp_writer_init(&w, &b);
    mp_write_array(&w, 5);
    mp_write_uint(&w, GOSSIP_WIRE_VERSION);
    mp_write_uint(&w, GOSSIP_ACK2);
    mp_write_cstr(&w, FG_CLUSTER);
    mp_write_cstr(&w, "n1");
    if (mode == 1) {
        mp_write_array(&w, 3);
        fz_state(&w, "n1", 500, 3, 40, GOSSIP_UP);
        fz_state(&w, "n2", 600, 1, 7, GOSSIP_UP);
        fz_state(&w, "seed-a", 700, 1, 0, GOSSIP_JOINING);
    } else if (mode == 2) {
        mp_write_array(&w, 4);
        fz_state(&w, "n1", 500, 3, 40, GOSSIP_UP);
        fz_state(&w, "n2", 600, 2, 9, GOSSIP_LEAVING);
        fz_state(&w, "n3", 650, 4, 1, GOSSIP_REMOVED);
        fz_state(&w, FG_SELF_ID, FG_SELF_INCARNATION, 5, 3, GOSSIP_LEAVING); /* refuted */
    } else {
        uint32_t n = RKV_NODES_MAX - 2; /* with self, one short of full */
        mp_write_array(&w, n);
        for (uint32_t i = 0; i < n; i++) {
            char id[16];
            snprintf(id, sizeof id, "m%04u", i);
            fz_state(&w, id, 100 + i, 1, i % 7, GOSSIP_UP);
        }
    }
    FUZZ_CHECK(!w.failed);
    fz_deliver(run, b.data, b.len, NULL, true, false, 0);
    rkv_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    struct gossip_options o;
    struct rkv_error err = {0};
    struct fz_run run = {0};
    fg_options(&o, flags, 0);
    FUZZ_CHECK(gossip_new(&o, &run.g, &err) == RKV_OK);
    run.message_bytes_max = o.message_bytes_max;
    fg_options(&o, flags, 1);
    FUZZ_CHECK(gossip_new(&o, &run.peer, &err) == RKV_OK);
    run.sender = fg_senders[flags & FG_SENDER_MASK];
    run.self_status0 = gossip_self(run.g)->status;
    run.answers_back = (flags & FG_ANSWERS_BACK) != 0;
    run.now = FG_T0;
    fz_check_table(&run);

    unsigned prefill = (flags & FG_PREFILL_MASK) >> FG_PREFILL_SHIFT;
    if (prefill == FG_PREFILL_FULL &&
        (flags & (FG_SMALL_WINDOW | FG_ANSWERS_BACK)) != FG_SMALL_WINDOW)
        prefill = 0; /* see gossip_seed.h: a full table costs 50 times a run */
    if (prefill != 0)
        fz_prefill(&run, prefill);

    size_t pos = 1;
    while (size - pos >= FG_FRAME_HEADER) {
        uint8_t ctl = data[pos];
        size_t len = (size_t)data[pos + 1] << 8 | data[pos + 2];
        pos += FG_FRAME_HEADER;
        if (len > size - pos)
            len = size - pos;
        /* the message gets its own allocation, so ASan sees a read past it */
        uint8_t *msg = malloc(len ? len : 1);
        FUZZ_CHECK(msg != NULL);
        memcpy(msg, data + pos, len);
        pos += len;

        run.now += fg_advance_ms[ctl & FG_CTL_ADVANCE_MASK];
        if (ctl & FG_CTL_TICK)
            fz_tick(&run);
        struct gossip_stats st;
        gossip_stats(run.g, &st);
        fz_deliver(&run, msg, len, run.sender, false, false, 0);
        if (ctl & FG_CTL_TWICE) {
            struct gossip_stats st2;
            gossip_stats(run.g, &st2);
            /* applied the first time (no refusal added): the second changes nothing */
            bool applied = st2.refused == st.refused;
            fz_deliver(&run, msg, len, run.sender, applied, applied, 0);
        }
        free(msg);
    }

    gossip_free(run.g);
    gossip_free(run.peer);
    return 0;
}
