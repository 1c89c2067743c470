/*
 * object.c: sibling sets and dotted version vectors (see object.h).
 *
 * Representation. A struct vclock is an array of entries sorted by actor. A
 * struct object is an array of siblings kept in one canonical order, sorted
 * by dot (actor, counter): two objects holding the same dots hold them at the
 * same indexes, so object_same is a linear walk and equal objects encode to
 * identical bytes. Every sibling owns its past and its value (NULL when
 * value_len is 0).
 *
 * Obsolescence. Sibling s is obsolete when another sibling's past covers
 * s's dot. A sibling's own past never covers its own dot (its counter was
 * chosen above everything its writer saw), so "some sibling's past covers
 * s's dot" and "some other sibling's past covers it" are the same test; the
 * invariant checker and the decoder both insist on it.
 *
 * object_update picks the counter 1 + the highest counter of the actor seen
 * in the local copy (dots and pasts) or in the context, so the new dot is
 * covered by no past anywhere in the copy. The context is pruned first
 * (past clock_entries_max), and the pruned past is the one that decides
 * which local siblings the write supersedes: the local result is then
 * exactly what merging the new sibling into the old copy gives, and a
 * pruned write supersedes fewer siblings, never more.
 *
 * object_sync is a pure function of the union of both sibling sets by dot:
 * keep the dots no sibling of the union covers (siblings mode), or the
 * single newest (lww). That makes it commutative and idempotent outright;
 * it is associative as long as domination is transitive, which holds for
 * histories whose contexts come from real reads and were never pruned. A
 * pruned past may forget a dot its writer saw: then the order of merges can
 * decide whether that old dot reappears as a sibling.
 * Costs: O(u^2 log p) for u siblings in the union and pasts of p entries;
 * u is at most 2 * RKV_SIBLINGS_MAX and in practice 1 to 3.
 *
 * A limitation of pruning, inherent in the contract (counters come from the
 * local copy alone): say z's write saw x's dot (x, n), y's write saw z's,
 * and pruning dropped x from y's past. A copy that has merged all three
 * holds only y's sibling and has forgotten (x, n); if x coordinates the
 * next write from it, that write gets dot (x, n) again. Replicas still
 * holding the old write then keep it under the same dot (same dots,
 * different values: no convergence), and one still holding z's sibling
 * drops the new write as covered. Nothing is pruned, so nothing of this
 * can happen, while clock_entries_max exceeds the number of actors that
 * ever write a key; a per-node counter floor would fix it for good.
 *
 * lww mode. An update takes ts_ms = max(now_ms, 1 + every ts_ms it
 * replaces or its context carries), a hybrid logical clock: a write always
 * wins over what it replaced, even when the node that wrote that value had a
 * clock running ahead. Concurrent writes are still decided by clocks. The
 * counter is max(1 + known, ts_ms): a lww merge keeps no trace of what it
 * replaced, so a copy forgets its own actor's dots the moment another
 * actor's write wins, and "1 + known" alone would hand out (x, 1) again and
 * again. A replica's newest ts_ms only grows, so ts_ms is strictly
 * increasing per actor and makes every dot unique. The lww merge picks the
 * newest over every copy, not over the union by dot, so even a reused dot
 * (a copy from before this rule) cannot pin a stale value.
 *
 * Decoding trusts nothing: counts are checked against the limits and the
 * bytes left before anything is allocated, every integer, array and bin must
 * use the shortest msgpack encoding (so a successful decode re-encodes to the
 * same bytes), and the result must pass object_invariants_ok.
 *
 * Errors leave every input as it was: new state is built aside and swapped
 * in only once nothing can fail.
 */
#include "common/object.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/err.h"
#include "common/limits.h"

/* Smallest possible encodings, used to bound counts before allocating:
 * a past entry is [a, c, t] = 4 bytes, a sibling
 * [a, c, [], t, e, false, bin8 ""] = 9 bytes. */
#define PAST_ENTRY_BYTES_MIN 4u
#define SIBLING_BYTES_MIN    9u

/* ---- conflict modes and limits ---- */

int conflict_mode_parse(const char *name)
{
    if (name == NULL)
        return -1;
    if (strcmp(name, "siblings") == 0)
        return CONFLICT_SIBLINGS;
    if (strcmp(name, "lww") == 0)
        return CONFLICT_LWW;
    return -1;
}

const char *conflict_mode_name(enum conflict_mode m)
{
    switch (m) {
    case CONFLICT_SIBLINGS:
        return "siblings";
    case CONFLICT_LWW:
        return "lww";
    }
    return "unknown";
}

void object_limits_default(struct object_limits *lim)
{
    *lim = (struct object_limits){
        .siblings_max = RKV_SIBLINGS_MAX,
        .clock_entries_max = RKV_CLOCK_ENTRIES_MAX,
        .value_bytes_max = RKV_VALUE_BYTES_MAX,
        .object_bytes_max = RKV_VALUE_BYTES_MAX,
        .conflict = CONFLICT_SIBLINGS,
    };
}

/* ---- version vectors ---- */

void vclock_init(struct vclock *vc)
{
    vc->e = NULL;
    vc->n = vc->cap = 0;
}

void vclock_free(struct vclock *vc)
{
    if (vc == NULL)
        return;
    rkv_free(vc->e);
    vclock_init(vc);
}

static int vc_reserve(struct vclock *vc, uint32_t need)
{
    if (need <= vc->cap)
        return RKV_OK;
    void *p = vc->e;
    size_t cap = vc->cap;
    int rc = rkv_grow(&p, &cap, need, sizeof *vc->e);
    if (rc != RKV_OK)
        return rc;
    vc->e = p;
    vc->cap = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
    return RKV_OK;
}

int vclock_copy(struct vclock *dst, const struct vclock *src)
{
    if (dst == src)
        return RKV_OK;
    int rc = vc_reserve(dst, src->n);
    if (rc != RKV_OK)
        return rc;
    if (src->n)
        memcpy(dst->e, src->e, src->n * sizeof *src->e);
    dst->n = src->n;
    return RKV_OK;
}

/* Index of actor's entry, or where it would go; true if present. */
static bool vc_find(const struct vclock *vc, uint64_t actor, uint32_t *pos)
{
    uint32_t lo = 0, hi = vc->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (vc->e[mid].actor < actor)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return lo < vc->n && vc->e[lo].actor == actor;
}

uint64_t vclock_get(const struct vclock *vc, uint64_t actor)
{
    uint32_t pos;
    return vc_find(vc, actor, &pos) ? vc->e[pos].counter : 0;
}

bool vclock_covers(const struct vclock *vc, uint64_t actor, uint64_t counter)
{
    return vclock_get(vc, actor) >= counter;
}

bool vclock_descends(const struct vclock *a, const struct vclock *b)
{
    uint32_t i = 0;
    for (uint32_t j = 0; j < b->n; j++) {
        while (i < a->n && a->e[i].actor < b->e[j].actor)
            i++;
        if (i == a->n || a->e[i].actor != b->e[j].actor || a->e[i].counter < b->e[j].counter)
            return false;
    }
    return true;
}

bool vclock_equal(const struct vclock *a, const struct vclock *b)
{
    if (a->n != b->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (a->e[i].actor != b->e[i].actor || a->e[i].counter != b->e[i].counter)
            return false;
    return true;
}

/* The join of two entries of one actor: the larger counter with its ts_ms;
 * on equal counters the larger ts_ms. */
static struct vc_entry entry_join(struct vc_entry a, struct vc_entry b)
{
    if (a.counter != b.counter)
        return a.counter > b.counter ? a : b;
    return a.ts_ms >= b.ts_ms ? a : b;
}

static uint32_t join_count(const struct vclock *a, const struct vclock *b)
{
    uint32_t i = 0, j = 0, u = 0;
    while (i < a->n || j < b->n) {
        if (j == b->n || (i < a->n && a->e[i].actor < b->e[j].actor))
            i++;
        else if (i == a->n || b->e[j].actor < a->e[i].actor)
            j++;
        else
            i++, j++;
        u++;
    }
    return u;
}

int vclock_join(struct vclock *dst, const struct vclock *src)
{
    if (dst == src || src->n == 0)
        return RKV_OK;
    uint32_t u = join_count(dst, src);
    int rc = vc_reserve(dst, u);
    if (rc != RKV_OK)
        return rc;
    /* Merge from the back, in place: the write index never passes the
     * unread part of dst. */
    int64_t i = (int64_t)dst->n - 1, j = (int64_t)src->n - 1, k = (int64_t)u - 1;
    while (j >= 0) {
        if (i >= 0 && dst->e[i].actor > src->e[j].actor) {
            dst->e[k--] = dst->e[i--];
        } else if (i >= 0 && dst->e[i].actor == src->e[j].actor) {
            dst->e[k--] = entry_join(dst->e[i], src->e[j]);
            i--, j--;
        } else {
            dst->e[k--] = src->e[j--];
        }
    }
    dst->n = u;
    return RKV_OK;
}

int vclock_bump(struct vclock *vc, uint64_t actor, uint64_t counter, uint64_t ts_ms)
{
    struct vc_entry e = {.actor = actor, .counter = counter, .ts_ms = ts_ms};
    uint32_t pos;
    if (counter == 0)
        return RKV_OK;
    if (vc_find(vc, actor, &pos)) {
        vc->e[pos] = entry_join(vc->e[pos], e);
        return RKV_OK;
    }
    int rc = vc_reserve(vc, vc->n + 1);
    if (rc != RKV_OK)
        return rc;
    memmove(&vc->e[pos + 1], &vc->e[pos], (vc->n - pos) * sizeof *vc->e);
    vc->e[pos] = e;
    vc->n++;
    return RKV_OK;
}

/* Sorted by actor without duplicates, counters > 0. */
static bool vc_sorted(const struct vclock *vc)
{
    if (vc->n > 0 && vc->e == NULL)
        return false;
    for (uint32_t i = 0; i < vc->n; i++) {
        if (vc->e[i].counter == 0)
            return false;
        if (i > 0 && vc->e[i - 1].actor >= vc->e[i].actor)
            return false;
    }
    return true;
}

/* A clock this module owns: sorted, and within its capacity. */
static bool vc_valid(const struct vclock *vc)
{
    return vc->n <= vc->cap && vc_sorted(vc);
}

/* ---- pruning ---- */

/* Newest ts_ms first, ties by the higher actor (any fixed rule will do;
 * this one is deterministic). */
static int newest_first(const void *pa, const void *pb)
{
    const struct vc_entry *a = pa, *b = pb;
    if (a->ts_ms != b->ts_ms)
        return a->ts_ms > b->ts_ms ? -1 : 1;
    return a->actor > b->actor ? -1 : a->actor < b->actor;
}

static int by_actor(const void *pa, const void *pb)
{
    const struct vc_entry *a = pa, *b = pb;
    return a->actor < b->actor ? -1 : a->actor > b->actor;
}

/* Keeps at most max entries: own's (if any, and max > 0), then the newest
 * others. O(n log n). */
static void vc_prune(struct vclock *vc, uint32_t max, uint64_t own)
{
    if (vc->n <= max)
        return;
    uint32_t pos;
    struct vc_entry own_e = {0};
    bool has_own = max > 0 && vc_find(vc, own, &pos);
    if (has_own) {
        own_e = vc->e[pos];
        memmove(&vc->e[pos], &vc->e[pos + 1], (vc->n - pos - 1) * sizeof *vc->e);
        vc->n--;
    }
    qsort(vc->e, vc->n, sizeof *vc->e, newest_first);
    vc->n = has_own ? max - 1 : max;
    if (has_own)
        vc->e[vc->n++] = own_e;
    qsort(vc->e, vc->n, sizeof *vc->e, by_actor);
}

/* ---- siblings ---- */

static void sibling_free(struct sibling *s)
{
    vclock_free(&s->past);
    rkv_free(s->value);
    s->value = NULL;
    s->value_len = 0;
}

/* dst is uninitialised; on error nothing is left allocated. */
static int sibling_copy(struct sibling *dst, const struct sibling *src)
{
    *dst = *src;
    vclock_init(&dst->past);
    dst->value = NULL;
    if (vclock_copy(&dst->past, &src->past) != RKV_OK)
        return RKV_ERR_NOMEM;
    if (src->value_len) {
        dst->value = rkv_memdup(src->value, src->value_len);
        if (dst->value == NULL) {
            vclock_free(&dst->past);
            return RKV_ERR_NOMEM;
        }
    }
    return RKV_OK;
}

/* Canonical order: by dot. */
static int dot_cmp(const struct sibling *a, const struct sibling *b)
{
    if (a->actor != b->actor)
        return a->actor < b->actor ? -1 : 1;
    if (a->counter != b->counter)
        return a->counter < b->counter ? -1 : 1;
    return 0;
}

/* lww order: by (ts_ms, actor, counter); > 0 if a is newer. */
static int newer_cmp(const struct sibling *a, const struct sibling *b)
{
    if (a->ts_ms != b->ts_ms)
        return a->ts_ms > b->ts_ms ? 1 : -1;
    return dot_cmp(a, b);
}

static bool sibling_live(const struct sibling *s, uint64_t now_ms)
{
    return !s->tomb && (s->expiry_ms == 0 || s->expiry_ms > now_ms);
}

static bool sibling_valid(const struct sibling *s)
{
    return s->counter > 0 && vc_valid(&s->past) && s->past.n <= RKV_CLOCK_ENTRIES_MAX &&
           !vclock_covers(&s->past, s->actor, s->counter) && !(s->tomb && s->value_len) &&
           !(s->value_len && s->value == NULL);
}

/* ---- objects ---- */

void object_init(struct object *o)
{
    o->s = NULL;
    o->n = o->cap = 0;
}

void object_free(struct object *o)
{
    if (o == NULL)
        return;
    for (uint32_t i = 0; i < o->n; i++)
        sibling_free(&o->s[i]);
    rkv_free(o->s);
    object_init(o);
}

int object_copy(struct object *dst, const struct object *src)
{
    if (dst == src)
        return RKV_OK;
    struct object tmp;
    object_init(&tmp);
    if (src->n) {
        tmp.s = rkv_calloc(src->n, sizeof *tmp.s);
        if (tmp.s == NULL)
            return RKV_ERR_NOMEM;
        tmp.cap = src->n;
    }
    for (; tmp.n < src->n; tmp.n++) {
        if (sibling_copy(&tmp.s[tmp.n], &src->s[tmp.n]) != RKV_OK) {
            object_free(&tmp);
            return RKV_ERR_NOMEM;
        }
    }
    object_free(dst);
    *dst = tmp;
    return RKV_OK;
}

/* Index of the first sibling whose dot some other sibling's past covers,
 * or -1. */
static int find_obsolete(const struct object *o)
{
    for (uint32_t i = 0; i < o->n; i++)
        for (uint32_t j = 0; j < o->n; j++)
            if (j != i && vclock_covers(&o->s[j].past, o->s[i].actor, o->s[i].counter))
                return (int)i;
    return -1;
}

bool object_invariants_ok(const struct object *o)
{
    if (o->n > o->cap || o->n > RKV_SIBLINGS_MAX || (o->n > 0 && o->s == NULL))
        return false;
    for (uint32_t i = 0; i < o->n; i++) {
        if (!sibling_valid(&o->s[i]))
            return false;
        if (i > 0 && dot_cmp(&o->s[i - 1], &o->s[i]) >= 0)
            return false;
    }
    return find_obsolete(o) < 0;
}

int object_context(const struct object *o, struct vclock *out)
{
    struct vclock tmp;
    vclock_init(&tmp);
    for (uint32_t i = 0; i < o->n; i++) {
        const struct sibling *s = &o->s[i];
        if (vclock_join(&tmp, &s->past) != RKV_OK ||
            vclock_bump(&tmp, s->actor, s->counter, s->ts_ms) != RKV_OK) {
            vclock_free(&tmp);
            return RKV_ERR_NOMEM;
        }
    }
    vclock_free(out);
    *out = tmp;
    return RKV_OK;
}

bool object_same(const struct object *a, const struct object *b)
{
    if (a->n != b->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (dot_cmp(&a->s[i], &b->s[i]) != 0)
            return false;
    return true;
}

uint32_t object_live_count(const struct object *o, uint64_t now_ms)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < o->n; i++)
        n += sibling_live(&o->s[i], now_ms);
    return n;
}

int object_newest_live(const struct object *o, uint64_t now_ms)
{
    int best = -1;
    for (uint32_t i = 0; i < o->n; i++)
        if (sibling_live(&o->s[i], now_ms) && (best < 0 || newer_cmp(&o->s[i], &o->s[best]) > 0))
            best = (int)i;
    return best;
}

uint64_t object_expiry(const struct object *o)
{
    uint64_t latest = 0;
    for (uint32_t i = 0; i < o->n; i++) {
        if (o->s[i].tomb || o->s[i].expiry_ms == 0)
            return 0;
        if (o->s[i].expiry_ms > latest)
            latest = o->s[i].expiry_ms;
    }
    return latest;
}

/* ---- sizes ---- */

/* msgpack heads at their widest: array32 5, uint64 9, bin32 5, bool 1 */
#define MP_ARRAY_MAX 5u
#define MP_UINT_MAX 9u
#define MP_BIN_MAX 5u

static size_t sibling_bytes_bound(const struct sibling *s)
{
    size_t past = MP_ARRAY_MAX + (size_t)s->past.n * (MP_ARRAY_MAX + 3 * MP_UINT_MAX);
    return MP_ARRAY_MAX + 4 * MP_UINT_MAX + past + 1 + MP_BIN_MAX + s->value_len;
}

#define OBJECT_HEAD_BYTES_MAX (2 * MP_ARRAY_MAX + MP_UINT_MAX)

size_t object_bytes_bound(const struct object *o)
{
    size_t n = OBJECT_HEAD_BYTES_MAX;
    for (uint32_t i = 0; i < o->n; i++)
        n += sibling_bytes_bound(&o->s[i]);
    return n;
}

/* ---- update ---- */

/* The highest counter of actor that o or ctx knows. */
static uint64_t known_counter(const struct object *o, const struct vclock *ctx, uint64_t actor)
{
    uint64_t top = ctx ? vclock_get(ctx, actor) : 0;
    for (uint32_t i = 0; i < o->n; i++) {
        const struct sibling *s = &o->s[i];
        if (s->actor == actor && s->counter > top)
            top = s->counter;
        uint64_t c = vclock_get(&s->past, actor);
        if (c > top)
            top = c;
    }
    return top;
}

/* lww: a timestamp above everything the write replaces or saw. */
static uint64_t lww_ts(const struct object *o, const struct vclock *ctx, uint64_t now_ms)
{
    uint64_t seen = 0;
    for (uint32_t i = 0; i < o->n; i++)
        if (o->s[i].ts_ms > seen)
            seen = o->s[i].ts_ms;
    for (uint32_t i = 0; ctx && i < ctx->n; i++)
        if (ctx->e[i].ts_ms > seen)
            seen = ctx->e[i].ts_ms;
    return seen >= now_ms && seen < UINT64_MAX ? seen + 1 : now_ms;
}

/* Builds the new sibling (uninitialised *s): past = ctx pruned, value copied. */
static int new_sibling(struct sibling *s, const struct vclock *ctx, uint32_t entries_max,
                       uint64_t actor, uint64_t counter, uint64_t ts_ms, const void *value,
                       size_t value_len, uint64_t expiry_ms, bool tomb)
{
    *s = (struct sibling){
        .actor = actor,
        .counter = counter,
        .ts_ms = ts_ms,
        .expiry_ms = expiry_ms,
        .tomb = tomb,
        .value_len = (uint32_t)value_len,
    };
    vclock_init(&s->past);
    if (ctx && vclock_copy(&s->past, ctx) != RKV_OK)
        return RKV_ERR_NOMEM;
    vc_prune(&s->past, entries_max, actor);
    if (value_len) {
        s->value = rkv_memdup(value, value_len);
        if (s->value == NULL) {
            vclock_free(&s->past);
            return RKV_ERR_NOMEM;
        }
    }
    return RKV_OK;
}

/* Makes room for n siblings. On error o is unchanged. */
static int obj_reserve(struct object *o, uint32_t n)
{
    if (n <= o->cap)
        return RKV_OK;
    void *p = o->s;
    size_t cap = o->cap;
    int rc = rkv_grow(&p, &cap, n, sizeof *o->s);
    if (rc != RKV_OK)
        return rc;
    o->s = p;
    o->cap = (uint32_t)cap;
    return RKV_OK;
}

/* Drops the siblings past covers (all of them if all), then inserts ns in
 * dot order. Room for the result is already reserved: nothing fails. */
static void replace_covered(struct object *o, struct sibling *ns, bool all)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < o->n; i++) {
        if (all || vclock_covers(&ns->past, o->s[i].actor, o->s[i].counter))
            sibling_free(&o->s[i]);
        else
            o->s[k++] = o->s[i];
    }
    uint32_t pos = k;
    while (pos > 0 && dot_cmp(&o->s[pos - 1], ns) > 0)
        pos--;
    memmove(&o->s[pos + 1], &o->s[pos], (k - pos) * sizeof *o->s);
    o->s[pos] = *ns;
    o->n = k + 1;
}

int object_update(struct object *o, const struct vclock *ctx, uint64_t actor, uint64_t now_ms,
                  const void *value, size_t value_len, uint64_t expiry_ms, bool tomb,
                  const struct object_limits *lim)
{
    assert(ctx == NULL || vc_sorted(ctx));
    if (tomb && value_len)
        return RKV_ERR_INVAL;
    if (value_len > lim->value_bytes_max || value_len > UINT32_MAX)
        return RKV_ERR_TOOBIG;
    bool lww = lim->conflict == CONFLICT_LWW;
    uint64_t top = known_counter(o, ctx, actor);
    if (top >= RKV_COUNTER_MAX - 1)
        return RKV_ERR_TOOBIG; /* decoding refuses such counters */
    uint32_t entries_max = lim->clock_entries_max < RKV_CLOCK_ENTRIES_MAX ? lim->clock_entries_max
                                                                          : RKV_CLOCK_ENTRIES_MAX;
    uint64_t ts = lww ? lww_ts(o, ctx, now_ms) : now_ms;
    uint64_t counter = lww && ts > top + 1 ? ts : top + 1;
    if (counter >= RKV_COUNTER_MAX)
        return RKV_ERR_TOOBIG;
    struct sibling ns;
    int rc =
        new_sibling(&ns, ctx, entries_max, actor, counter, ts, value, value_len, expiry_ms, tomb);
    if (rc != RKV_OK)
        return rc;
    uint32_t kept = 0;
    size_t bytes = OBJECT_HEAD_BYTES_MAX + sibling_bytes_bound(&ns);
    for (uint32_t i = 0; !lww && i < o->n; i++) {
        if (vclock_covers(&ns.past, o->s[i].actor, o->s[i].counter))
            continue;
        kept++;
        bytes += sibling_bytes_bound(&o->s[i]);
    }
    uint32_t siblings_max =
        lim->siblings_max < RKV_SIBLINGS_MAX ? lim->siblings_max : RKV_SIBLINGS_MAX;
    if (kept + 1 > siblings_max || bytes > lim->object_bytes_max)
        rc = RKV_ERR_TOOBIG;
    else
        rc = obj_reserve(o, kept + 1);
    if (rc != RKV_OK) {
        sibling_free(&ns);
        return rc;
    }
    replace_covered(o, &ns, lww);
    return RKV_OK;
}

/* ---- sync ---- */

/* One sibling of the union of dst and src. */
struct pick {
    const struct sibling *s;
    uint32_t idx; /* in dst->s or src->s */
    bool in_dst;  /* dst's copy wins when both hold the dot */
    bool keep;
};

#define PICKS_MAX (2 * RKV_SIBLINGS_MAX)

/* The union by dot, in dot order. Returns its size. */
static uint32_t union_dots(const struct object *a, const struct object *b, struct pick *pk)
{
    uint32_t i = 0, j = 0, u = 0;
    while (i < a->n || j < b->n) {
        int c = i == a->n ? 1 : j == b->n ? -1 : dot_cmp(&a->s[i], &b->s[j]);
        if (c <= 0) {
            pk[u++] = (struct pick){.s = &a->s[i], .idx = i, .in_dst = true};
            i++;
            j += c == 0;
        } else {
            pk[u++] = (struct pick){.s = &b->s[j], .idx = j, .in_dst = false};
            j++;
        }
    }
    return u;
}

/* Marks what survives; returns how many. Witnesses are the whole union. */
static uint32_t mark_keep(struct pick *pk, uint32_t u)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < u; i++) {
        pk[i].keep = true;
        for (uint32_t j = 0; j < u && pk[i].keep; j++)
            if (j != i && vclock_covers(&pk[j].s->past, pk[i].s->actor, pk[i].s->counter))
                pk[i].keep = false;
        k += pk[i].keep;
    }
    return k;
}

/* Builds dst's new array of the k kept picks: copies from src first (the
 * only step that can fail), then moves dst's own and frees the dropped. */
static int sync_commit(struct object *dst, const struct pick *pk, uint32_t u, uint32_t k)
{
    struct sibling *ns = rkv_calloc(k ? k : 1, sizeof *ns);
    if (ns == NULL)
        return RKV_ERR_NOMEM;
    uint32_t n = 0;
    for (uint32_t i = 0; i < u; i++) {
        if (!pk[i].keep)
            continue;
        if (!pk[i].in_dst && sibling_copy(&ns[n], pk[i].s) != RKV_OK) {
            for (uint32_t j = 0; j < n; j++)
                sibling_free(&ns[j]); /* slots meant for dst are still zeroed */
            rkv_free(ns);
            return RKV_ERR_NOMEM;
        }
        n++;
    }
    n = 0;
    for (uint32_t i = 0; i < u; i++) {
        if (pk[i].keep && pk[i].in_dst)
            ns[n] = dst->s[pk[i].idx];
        else if (pk[i].in_dst)
            sibling_free(&dst->s[pk[i].idx]);
        n += pk[i].keep;
    }
    rkv_free(dst->s);
    dst->s = ns;
    dst->n = k;
    dst->cap = k ? k : 1;
    return RKV_OK;
}

/* lww: the newest sibling of either side (dst's on a tie). Compared over
 * every copy, so a newer write wins even if it shares a stale one's dot. */
static int sync_lww(struct object *dst, const struct object *src,
                    const struct object_limits *lim, bool *changed)
{
    const struct sibling *best = NULL;
    uint32_t at = 0;
    bool in_dst = false;
    for (uint32_t i = 0; i < dst->n; i++)
        if (best == NULL || newer_cmp(&dst->s[i], best) > 0)
            best = &dst->s[i], at = i, in_dst = true;
    for (uint32_t i = 0; i < src->n; i++)
        if (best == NULL || newer_cmp(&src->s[i], best) > 0)
            best = &src->s[i], in_dst = false;
    if (best == NULL || (in_dst && dst->n == 1))
        return RKV_OK;
    if (OBJECT_HEAD_BYTES_MAX + sibling_bytes_bound(best) > lim->object_bytes_max)
        return RKV_ERR_TOOBIG;
    struct sibling keep;
    if (obj_reserve(dst, 1) != RKV_OK)
        return RKV_ERR_NOMEM;
    if (in_dst)
        keep = dst->s[at];
    else if (sibling_copy(&keep, best) != RKV_OK)
        return RKV_ERR_NOMEM;
    for (uint32_t i = 0; i < dst->n; i++)
        if (!in_dst || i != at)
            sibling_free(&dst->s[i]);
    dst->s[0] = keep;
    dst->n = 1;
    if (changed)
        *changed = true;
    return RKV_OK;
}

int object_sync(struct object *dst, const struct object *src, const struct object_limits *lim,
                bool *changed)
{
    assert(dst->n <= RKV_SIBLINGS_MAX && src->n <= RKV_SIBLINGS_MAX);
    struct pick pk[PICKS_MAX];
    if (changed)
        *changed = false;
    if (lim->conflict == CONFLICT_LWW)
        return sync_lww(dst, src, lim, changed);
    uint32_t u = union_dots(dst, src, pk);
    uint32_t k = mark_keep(pk, u);
    if (k > RKV_SIBLINGS_MAX)
        return RKV_ERR_TOOBIG;
    bool differ = false;
    size_t bytes = OBJECT_HEAD_BYTES_MAX;
    for (uint32_t i = 0; i < u; i++) {
        differ |= pk[i].keep != pk[i].in_dst;
        if (pk[i].keep)
            bytes += sibling_bytes_bound(pk[i].s);
    }
    if (!differ)
        return RKV_OK;
    if (bytes > lim->object_bytes_max)
        return RKV_ERR_TOOBIG;
    int rc = sync_commit(dst, pk, u, k);
    if (rc == RKV_OK && changed)
        *changed = true;
    return rc;
}

bool object_contains(const struct object *dst, const struct object *src)
{
    assert(dst->n <= RKV_SIBLINGS_MAX && src->n <= RKV_SIBLINGS_MAX);
    struct pick pk[PICKS_MAX];
    uint32_t u = union_dots(dst, src, pk);
    mark_keep(pk, u);
    for (uint32_t i = 0; i < u; i++)
        if (pk[i].keep != pk[i].in_dst)
            return false;
    return true;
}

/* ---- encoding ---- */

static void encode_past(struct mp_writer *w, const struct vclock *vc)
{
    mp_write_array(w, vc->n);
    for (uint32_t i = 0; i < vc->n; i++) {
        mp_write_array(w, 3);
        mp_write_uint(w, vc->e[i].actor);
        mp_write_uint(w, vc->e[i].counter);
        mp_write_uint(w, vc->e[i].ts_ms);
    }
}

int context_encode(const struct vclock *vc, struct rkv_buf *out)
{
    size_t mark = out->len;
    struct mp_writer w;
    mp_writer_init(&w, out);
    mp_write_array(&w, 2);
    mp_write_uint(&w, CONTEXT_FORMAT);
    encode_past(&w, vc);
    if (w.failed) {
        out->len = mark;
        return RKV_ERR_NOMEM;
    }
    return RKV_OK;
}

int object_encode(const struct object *o, struct rkv_buf *out)
{
    size_t mark = out->len;
    struct mp_writer w;
    mp_writer_init(&w, out);
    mp_write_array(&w, 2);
    mp_write_uint(&w, OBJECT_FORMAT);
    mp_write_array(&w, o->n);
    for (uint32_t i = 0; i < o->n; i++) {
        const struct sibling *s = &o->s[i];
        mp_write_array(&w, 7);
        mp_write_uint(&w, s->actor);
        mp_write_uint(&w, s->counter);
        encode_past(&w, &s->past);
        mp_write_uint(&w, s->ts_ms);
        mp_write_uint(&w, s->expiry_ms);
        mp_write_bool(&w, s->tomb);
        mp_write_bin(&w, s->value, s->value_len);
    }
    if (w.failed) {
        out->len = mark;
        return RKV_ERR_NOMEM;
    }
    return RKV_OK;
}

/* ---- decoding: canonical msgpack only ---- */

/* Fails r unless the value just read (starting at at) used the head byte
 * the shortest encoding would. */
static bool canonical(struct mp_reader *r, const uint8_t *at, uint8_t head)
{
    if (*at != head)
        r->failed = true;
    return !r->failed;
}

static bool rd_uint(struct mp_reader *r, uint64_t *v)
{
    const uint8_t *at = r->p;
    if (!mp_read_uint(r, v))
        return false;
    uint8_t head = *v < 0x80           ? (uint8_t)*v
                   : *v <= 0xff        ? 0xcc
                   : *v <= 0xffff      ? 0xcd
                   : *v <= 0xffffffffu ? 0xce
                                       : 0xcf;
    return canonical(r, at, head);
}

static bool rd_array(struct mp_reader *r, uint32_t *n)
{
    const uint8_t *at = r->p;
    if (!mp_read_array(r, n))
        return false;
    uint8_t head = *n < 16 ? (uint8_t)(0x90 | *n) : *n <= 0xffff ? 0xdc : 0xdd;
    return canonical(r, at, head);
}

/* An array header that must say exactly n. */
static bool rd_array_of(struct mp_reader *r, uint32_t n)
{
    uint32_t got;
    if (!rd_array(r, &got))
        return false;
    if (got != n)
        r->failed = true;
    return !r->failed;
}

static bool rd_bin(struct mp_reader *r, const uint8_t **p, uint32_t *len)
{
    const uint8_t *at = r->p;
    if (!mp_read_bin(r, p, len))
        return false;
    return canonical(r, at, *len <= 0xff ? 0xc4 : *len <= 0xffff ? 0xc5 : 0xc6);
}

/* Reads a past into vc (empty on entry). */
static int decode_past(struct mp_reader *r, uint32_t entries_max, struct vclock *vc)
{
    uint32_t n;
    if (!rd_array(r, &n))
        return RKV_ERR_PROTO;
    if (n > entries_max)
        return RKV_ERR_TOOBIG;
    if ((uint64_t)n * PAST_ENTRY_BYTES_MIN > mp_left(r))
        return RKV_ERR_PROTO;
    if (vc_reserve(vc, n) != RKV_OK)
        return RKV_ERR_NOMEM;
    for (uint32_t i = 0; i < n; i++) {
        struct vc_entry e;
        if (!rd_array_of(r, 3) || !rd_uint(r, &e.actor) || !rd_uint(r, &e.counter) ||
            !rd_uint(r, &e.ts_ms))
            return RKV_ERR_PROTO;
        if (e.counter == 0 || e.counter >= RKV_COUNTER_MAX || e.ts_ms >= RKV_COUNTER_MAX ||
            (i > 0 && vc->e[i - 1].actor >= e.actor))
            return RKV_ERR_PROTO;
        vc->e[vc->n++] = e;
    }
    return RKV_OK;
}

/* The integer fields of a sibling, in wire order around the past. */
static int decode_sibling(struct mp_reader *r, const struct object_limits *lim,
                          uint32_t entries_max, struct sibling *s)
{
    const uint8_t *val;
    uint32_t len;
    if (!rd_array_of(r, 7) || !rd_uint(r, &s->actor) || !rd_uint(r, &s->counter))
        return RKV_ERR_PROTO;
    int rc = decode_past(r, entries_max, &s->past);
    if (rc != RKV_OK)
        return rc;
    if (!rd_uint(r, &s->ts_ms) || !rd_uint(r, &s->expiry_ms) || !mp_read_bool(r, &s->tomb) ||
        !rd_bin(r, &val, &len))
        return RKV_ERR_PROTO;
    if (len > lim->value_bytes_max)
        return RKV_ERR_TOOBIG;
    if (s->counter == 0 || s->counter >= RKV_COUNTER_MAX || s->ts_ms >= RKV_COUNTER_MAX ||
        (s->tomb && len) ||
        vclock_covers(&s->past, s->actor, s->counter))
        return RKV_ERR_PROTO;
    if (len) {
        s->value = rkv_memdup(val, len);
        if (s->value == NULL)
            return RKV_ERR_NOMEM;
        s->value_len = len;
    }
    return RKV_OK;
}

static int decode_siblings(struct mp_reader *r, const struct object_limits *lim, struct object *o)
{
    uint32_t n;
    if (!rd_array_of(r, 2))
        return RKV_ERR_PROTO;
    uint64_t format;
    if (!rd_uint(r, &format) || format != OBJECT_FORMAT || !rd_array(r, &n))
        return RKV_ERR_PROTO;
    if (n > RKV_SIBLINGS_MAX)
        return RKV_ERR_TOOBIG;
    if ((uint64_t)n * SIBLING_BYTES_MIN > mp_left(r))
        return RKV_ERR_PROTO;
    if (n) {
        o->s = rkv_calloc(n, sizeof *o->s);
        if (o->s == NULL)
            return RKV_ERR_NOMEM;
        o->cap = n;
    }
    uint32_t entries_max = lim->clock_entries_max < RKV_CLOCK_ENTRIES_MAX ? lim->clock_entries_max
                                                                          : RKV_CLOCK_ENTRIES_MAX;
    for (; o->n < n; o->n++) {
        /* counted in o->n first, so a half-read sibling is freed too */
        int rc = decode_sibling(r, lim, entries_max, &o->s[o->n]);
        if (rc != RKV_OK) {
            o->n++;
            return rc;
        }
        if (o->n > 0 && dot_cmp(&o->s[o->n - 1], &o->s[o->n]) >= 0) {
            o->n++;
            return RKV_ERR_PROTO;
        }
    }
    return RKV_OK;
}

int object_decode(const void *p, size_t len, const struct object_limits *lim, struct object *out)
{
    struct mp_reader r;
    struct object tmp;
    object_init(&tmp);
    mp_reader_init(&r, p, len);
    int rc = decode_siblings(&r, lim, &tmp);
    if (rc == RKV_OK && (!mp_done(&r) || find_obsolete(&tmp) >= 0))
        rc = RKV_ERR_PROTO;
    if (rc != RKV_OK) {
        object_free(&tmp);
        return rc;
    }
    object_free(out);
    *out = tmp;
    return RKV_OK;
}

int context_decode(const void *p, size_t len, const struct object_limits *lim, struct vclock *out)
{
    struct mp_reader r;
    struct vclock tmp;
    vclock_init(&tmp);
    int rc = RKV_OK;
    if (len > 0) {
        uint64_t format;
        uint32_t entries_max = lim->clock_entries_max < RKV_CLOCK_ENTRIES_MAX
                                   ? lim->clock_entries_max
                                   : RKV_CLOCK_ENTRIES_MAX;
        mp_reader_init(&r, p, len);
        if (!rd_array_of(&r, 2) || !rd_uint(&r, &format) || format != CONTEXT_FORMAT)
            rc = RKV_ERR_PROTO;
        else
            rc = decode_past(&r, entries_max, &tmp);
        if (rc == RKV_OK && !mp_done(&r))
            rc = RKV_ERR_PROTO;
    }
    if (rc != RKV_OK) {
        vclock_free(&tmp);
        return rc;
    }
    vclock_free(out);
    *out = tmp;
    return RKV_OK;
}
