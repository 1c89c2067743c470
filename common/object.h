/*
 * object.h: stored objects (sibling sets) and their versions, the one place
 * where versions are compared and merged. The coordinator, replicas on
 * write, read repair, handoff and anti-entropy all go through it.
 *
 * ## Versions: dotted version vectors
 *
 * Every write gets a dot (actor, counter): the actor is the coordinating
 * node's vector-clock identity (a random 64-bit id that a node replaces when
 * it loses its data, so an actor is never reused), the counter one more
 * than the highest counter of that actor the coordinator's local copy knows.
 * Each sibling keeps its dot and its past: the version vector (the client's
 * context) that the writer had seen. Sibling s is obsolete once some other
 * sibling t has a past that covers s's dot (t's writer saw s). A plain
 * version vector per sibling would make two writes without context through
 * the same coordinator look ordered and silently drop one; with dots they
 * stay siblings.
 *
 * Why version-vector contexts are exact enough: a coordinator mints a dot
 * in its local copy before anything else, and replicas are always sent
 * whole objects (never single siblings), so any copy holding dot (a, n)
 * also holds every earlier dot of a for that key, or a sibling that saw it.
 * A context {a: n} therefore never claims knowledge of a write it has not
 * seen. The one way the local copy can lose a minted dot is a failed or
 * lost write to disk (a crash before the group commit, a failed commit);
 * the node then never uses that actor again (node.c: the ACTOR file is kept
 * only after a clean stop, and a failed commit takes a new actor), so no
 * dot is minted twice.
 *
 * The client's context is the join of every sibling's past and dot: a put
 * with that context supersedes exactly the siblings the client read.
 *
 * ## Byte formats (msgpack; see docs/protocol.md)
 *
 *   object  = [1, [sibling, ...]]
 *   sibling = [actor, counter, past, ts_ms, expiry_ms, tomb, value]
 *             actor, counter, ts_ms, expiry_ms: uint; tomb: bool; value: bin
 *   past    = [[actor, counter, ts_ms], ...]     sorted by actor, counters > 0
 *   context = [1, past]                          (what clients hold, opaque)
 *
 * ts_ms is the coordinator's wall clock at the write (in a past: when that
 * actor's entry last rose). It orders lww, picks the newest sibling for
 * protocols without siblings, and decides which entries pruning drops.
 *
 * ## Conflict modes
 *
 * siblings: concurrent writes are all kept (invariant 4).
 * lww: an update replaces everything and a merge keeps only the sibling with
 * the highest (ts_ms, actor, counter): concurrent writes ARE lost, and clock
 * skew between nodes decides which.
 *
 * ## Limits and pruning
 *
 * An update that would leave more than siblings_max siblings, or an object
 * over object_bytes_max, fails with RKV_ERR_TOOBIG and changes nothing: the
 * client must resolve (put with a context) first; nothing is dropped
 * silently. A merge of replicas keeps every sibling up to RKV_SIBLINGS_MAX
 * and the size its caller allows (nodes allow twice object_bytes_max, so
 * two replicas that each took writes up to the limit still converge), and
 * fails past it. Counters at or above RKV_COUNTER_MAX are refused when
 * decoded: only a forged context could carry one. A past longer than
 * clock_entries_max is pruned at update time by dropping the entries with
 * the oldest ts_ms, never the coordinator's own: pruning can only make
 * siblings appear (a write no longer covers what it saw), never hide one.
 *
 * Ownership: every struct here owns its arrays and value bytes (rkv_malloc);
 * functions copy what they are given. Not thread-safe; no global state.
 */
#ifndef RKV_OBJECT_H
#define RKV_OBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define OBJECT_FORMAT 1
#define CONTEXT_FORMAT 1

enum conflict_mode {
    CONFLICT_SIBLINGS = 0,
    CONFLICT_LWW = 1,
};

/* Parses "siblings" / "lww"; -1 if unknown. */
int conflict_mode_parse(const char *name);
const char *conflict_mode_name(enum conflict_mode m);

struct object_limits {
    uint32_t siblings_max;      /* for updates; <= RKV_SIBLINGS_MAX */
    uint32_t clock_entries_max; /* <= RKV_CLOCK_ENTRIES_MAX */
    uint32_t value_bytes_max;   /* per sibling value */
    uint32_t object_bytes_max;  /* the encoded result of an update or a sync */
    enum conflict_mode conflict;
};

/* The hard ceilings, as limits (for decoding data of unknown origin). */
void object_limits_default(struct object_limits *lim);

struct vc_entry {
    uint64_t actor;
    uint64_t counter; /* > 0 */
    uint64_t ts_ms;
};

/* A version vector: entries sorted by actor, no duplicates. */
struct vclock {
    struct vc_entry *e;
    uint32_t n, cap;
};

struct sibling {
    uint64_t actor;   /* the dot */
    uint64_t counter;
    struct vclock past;
    uint64_t ts_ms;
    uint64_t expiry_ms; /* absolute; 0: never */
    bool tomb;          /* a delete; value_len is 0 */
    uint8_t *value;
    uint32_t value_len;
};

struct object {
    struct sibling *s;
    uint32_t n, cap;
};

/* ---- version vectors ---- */

void vclock_init(struct vclock *vc);
void vclock_free(struct vclock *vc);
int vclock_copy(struct vclock *dst, const struct vclock *src);
/* Counter of actor in vc (0 if absent). */
uint64_t vclock_get(const struct vclock *vc, uint64_t actor);
/* True if vc has seen dot (actor, counter). */
bool vclock_covers(const struct vclock *vc, uint64_t actor, uint64_t counter);
/* True if a has seen everything b has (a >= b entrywise). */
bool vclock_descends(const struct vclock *a, const struct vclock *b);
/* dst = max(dst, src) entrywise (ts_ms follows the larger counter). */
int vclock_join(struct vclock *dst, const struct vclock *src);
/* Raises actor's entry to at least counter. */
int vclock_bump(struct vclock *vc, uint64_t actor, uint64_t counter, uint64_t ts_ms);
bool vclock_equal(const struct vclock *a, const struct vclock *b);

/* Contexts: what clients hold. Decoding checks everything (client bytes
 * are hostile): RKV_ERR_PROTO if malformed, RKV_ERR_TOOBIG past
 * lim->clock_entries_max entries. An empty input decodes to an empty clock. */
int context_encode(const struct vclock *vc, struct rkv_buf *out);
int context_decode(const void *p, size_t len, const struct object_limits *lim,
                   struct vclock *out);

/* ---- objects ---- */

void object_init(struct object *o);
void object_free(struct object *o);
int object_copy(struct object *dst, const struct object *src);

/* Replaces *out (which must be initialised) with the decoded object.
 * RKV_ERR_PROTO if malformed (any byte out of place, unsorted pasts,
 * duplicate dots, a tombstone with a value), RKV_ERR_TOOBIG past lim. */
int object_decode(const void *p, size_t len, const struct object_limits *lim,
                  struct object *out);
/* Appends the encoding to out. */
int object_encode(const struct object *o, struct rkv_buf *out);

/* The join of every sibling's past and dot: the context a get returns. */
int object_context(const struct object *o, struct vclock *out);

/* An upper bound of object_encode's output for o (never below it). */
size_t object_bytes_bound(const struct object *o);

/*
 * The coordinator's write into its local copy o: a new sibling with dot
 * (actor, max known counter of actor + 1) and past ctx (NULL: empty, i.e. a
 * write that saw nothing), which supersedes the siblings ctx covers. In lww
 * mode it replaces every sibling. value is copied; tomb makes a delete (no
 * value). On error o is unchanged: RKV_ERR_TOOBIG (siblings_max, a value
 * over value_bytes_max, or a result over object_bytes_max), RKV_ERR_NOMEM.
 */
int object_update(struct object *o, const struct vclock *ctx, uint64_t actor, uint64_t now_ms,
                  const void *value, size_t value_len, uint64_t expiry_ms, bool tomb,
                  const struct object_limits *lim);

/*
 * Merges src into dst: the union of both sibling sets (a dot is the same
 * write wherever it appears), without siblings that another sibling's past
 * covers; in lww mode the single newest sibling. Commutative, associative
 * and idempotent. On error dst is unchanged: RKV_ERR_TOOBIG (more than
 * RKV_SIBLINGS_MAX would remain, or the result would be over
 * lim->object_bytes_max), RKV_ERR_NOMEM. *changed (may be NULL) says
 * whether dst gained or lost a sibling.
 */
int object_sync(struct object *dst, const struct object *src, const struct object_limits *lim,
                bool *changed);

/* True if both hold exactly the same dots. */
bool object_same(const struct object *a, const struct object *b);
/* True if dst already holds everything src would add (sync would not change it). */
bool object_contains(const struct object *dst, const struct object *src);

/* Siblings a reader sees at now_ms: not tombstones, not expired. */
uint32_t object_live_count(const struct object *o, uint64_t now_ms);
/* The index of the newest live sibling (highest ts_ms, then actor, then
 * counter), or -1 if none. */
int object_newest_live(const struct object *o, uint64_t now_ms);
/* When the whole object may be dropped as expired: the latest expiry if
 * every sibling expires and none is a tombstone, else 0 (never). */
uint64_t object_expiry(const struct object *o);

/* Checks sortedness, no duplicate dots, no obsolete sibling, sizes. */
bool object_invariants_ok(const struct object *o);

#endif
