/*
 * keydir.c: the in-memory index from key to newest record, per partition.
 *
 * Layout and cost. Each partition has three arrays:
 *   entries  32-byte struct kd_entry per key (location, seq, expiry, value
 *            size, where its key is). Indices are stable: a removed entry
 *            goes on a free list and is reused, never moved, so a listing
 *            cursor is just an index.
 *   arena    the key bytes, each behind a 2-byte length. Keys never change
 *            for an entry, so the arena only grows; removals leave garbage
 *            that is compacted away when it passes half the arena.
 *   slots    an open-addressing index (linear probing) kept between 50%
 *            and 75% full. A slot is 4 bytes: an 8-bit tag from the key's
 *            hash and a 24-bit entry number (so a partition holds at most
 *            KD_PART_KEYS_MAX keys). A probe reads an entry and its key only
 *            when the tag matches (1 in 256 otherwise), so a miss scans a few
 *            adjacent slots and touches nothing else. The home slot is the
 *            low 32 bits of the key's XXH3 hash scaled to the table size (so
 *            the size need not be a power of two and can grow by 1.5x); the
 *            tag is bits 32-39. Neither uses the top bits, which are the
 *            ring partition: a partition's keys share them. Removal uses
 *            backward shift, so there are no tombstone slots.
 * Entries and arena grow by 1.25x. The cost per key beyond its bytes is
 * therefore 32 (entry) + 2 (length) + 4/load (slot, 5.3-8 bytes) plus the
 * unused tails of the three arrays, about 45 bytes on average; bench/
 * measures it.
 *
 * The index stores only the tag, not the hash: a resize or a backward shift
 * rehashes keys from the arena. That keeps the slot at 4 bytes; keys are
 * short, and XXH3 on a short key costs a few ns.
 *
 * Not thread-safe: the store guards it with its mutex.
 */
#include "storage/store_int.h"

#include <xxhash.h>

#include "common/alloc.h"
#include "common/limits.h"

#define KD_PAGE_BITS 8
#define KD_PAGE_SIZE (1u << KD_PAGE_BITS)
#define KD_PAGES (RKV_PARTITIONS_MAX / KD_PAGE_SIZE)
#define KD_SLOTS_MIN 8u
#define KD_ENTRIES_MIN 8u
#define KD_ARENA_MIN 128u

int keydir_init(struct keydir *kd)
{
    memset(kd, 0, sizeof *kd);
    kd->pages = rkv_calloc(KD_PAGES, sizeof *kd->pages);
    if (kd->pages == NULL)
        return RKV_ERR_NOMEM;
    kd->bytes = KD_PAGES * sizeof *kd->pages;
    return RKV_OK;
}

static void part_free(struct kd_part *p)
{
    if (p == NULL)
        return;
    rkv_free(p->entries);
    rkv_free(p->slots);
    rkv_free(p->arena);
    rkv_free(p);
}

void keydir_free(struct keydir *kd)
{
    if (kd->pages == NULL)
        return;
    for (unsigned pg = 0; pg < KD_PAGES; pg++) {
        struct kd_part **page = kd->pages[pg];
        if (page == NULL)
            continue;
        for (unsigned i = 0; i < KD_PAGE_SIZE; i++)
            part_free(page[i]);
        rkv_free(page);
    }
    rkv_free(kd->pages);
    memset(kd, 0, sizeof *kd);
}

uint64_t keydir_hash(const void *key, size_t key_len)
{
    return XXH3_64bits(key, key_len);
}

/* kd->pages is an array of pages, each an array of KD_PAGE_SIZE parts. */
static struct kd_part *part_get(const struct keydir *kd, uint16_t part)
{
    struct kd_part **page = kd->pages[part >> KD_PAGE_BITS];
    return page ? page[part & (KD_PAGE_SIZE - 1)] : NULL;
}

static struct kd_part *part_get_or_create(struct keydir *kd, uint16_t part)
{
    struct kd_part ***pagep = &kd->pages[part >> KD_PAGE_BITS];
    if (*pagep == NULL) {
        *pagep = rkv_calloc(KD_PAGE_SIZE, sizeof **pagep);
        if (*pagep == NULL)
            return NULL;
        kd->bytes += KD_PAGE_SIZE * sizeof **pagep;
    }
    struct kd_part **slot = &(*pagep)[part & (KD_PAGE_SIZE - 1)];
    if (*slot == NULL) {
        *slot = rkv_calloc(1, sizeof **slot);
        if (*slot == NULL)
            return NULL;
        kd->bytes += sizeof **slot;
    }
    return *slot;
}

#define SLOT_IDX_MASK 0xFFFFFFu
#define SLOT_TAG_SHIFT 24

static inline uint32_t slot_home(uint64_t hash, uint32_t n_slots)
{
    return (uint32_t)(((hash & 0xFFFFFFFFu) * (uint64_t)n_slots) >> 32);
}

static inline uint32_t slot_tag(uint64_t hash)
{
    return (uint32_t)(hash >> 32) & 0xFFu;
}

static inline uint32_t slot_make(uint64_t hash, uint32_t idx)
{
    return slot_tag(hash) << SLOT_TAG_SHIFT | (idx + 1);
}

/* The entry index a used slot points at. */
static inline uint32_t slot_idx(uint32_t slot)
{
    return (slot & SLOT_IDX_MASK) - 1;
}

static inline uint32_t slot_next(uint32_t i, uint32_t n_slots)
{
    return i + 1 == n_slots ? 0 : i + 1;
}

static inline const uint8_t *entry_key(const struct kd_part *p, const struct kd_entry *e,
                                       uint16_t *len)
{
    const uint8_t *a = p->arena + e->key_off;
    *len = rkv_get_u16(a);
    return a + 2;
}

static uint64_t entry_hash(const struct kd_part *p, const struct kd_entry *e)
{
    uint16_t len;
    const uint8_t *k = entry_key(p, e, &len);
    return keydir_hash(k, len);
}

uint32_t keydir_part_count(const struct keydir *kd, uint16_t part)
{
    const struct kd_part *p = part_get(kd, part);
    return p ? p->n_live : 0;
}

const uint8_t *keydir_key(const struct keydir *kd, uint16_t part, const struct kd_entry *e,
                          uint16_t *key_len)
{
    return entry_key(part_get(kd, part), e, key_len);
}

/* Slot index holding key, or the empty slot where it would go. */
static uint32_t probe(const struct kd_part *p, const void *key, size_t key_len, uint64_t hash,
                      bool *found)
{
    uint32_t i = slot_home(hash, p->n_slots), tag = slot_tag(hash);
    for (;;) {
        uint32_t s = p->slots[i];
        if (s == 0) {
            *found = false;
            return i;
        }
        if (s >> SLOT_TAG_SHIFT == tag) {
            uint16_t len;
            const uint8_t *k = entry_key(p, &p->entries[slot_idx(s)], &len);
            if (len == key_len && (key_len == 0 || memcmp(k, key, key_len) == 0)) {
                *found = true;
                return i;
            }
        }
        i = slot_next(i, p->n_slots);
    }
}

struct kd_entry *keydir_find(struct keydir *kd, uint16_t part, const void *key,
                             size_t key_len, uint64_t hash)
{
    struct kd_part *p = part_get(kd, part);
    if (p == NULL || p->n_live == 0)
        return NULL;
    bool found;
    uint32_t i = probe(p, key, key_len, hash, &found);
    return found ? &p->entries[slot_idx(p->slots[i])] : NULL;
}

/* Rebuilds the index with n_slots slots. */
static int slots_resize(struct keydir *kd, struct kd_part *p, uint32_t n_slots)
{
    uint32_t *slots = rkv_calloc(n_slots, sizeof *slots);
    if (slots == NULL)
        return RKV_ERR_NOMEM;
    for (uint32_t e = 0; e < p->n_entries; e++) {
        if (p->entries[e].file_id == KD_FREE)
            continue;
        uint64_t h = entry_hash(p, &p->entries[e]);
        uint32_t i = slot_home(h, n_slots);
        while (slots[i] != 0)
            i = slot_next(i, n_slots);
        slots[i] = slot_make(h, e);
    }
    kd->bytes += (uint64_t)n_slots * sizeof *slots;
    kd->bytes -= (uint64_t)p->n_slots * sizeof *p->slots;
    rkv_free(p->slots);
    p->slots = slots;
    p->n_slots = n_slots;
    return RKV_OK;
}

/* Grows *arr (of *cap elements) by 1.25x so it holds need elements. */
static int grow_quarter(struct keydir *kd, void **arr, uint32_t *cap, uint64_t need,
                        size_t elem, uint32_t min)
{
    if (need <= *cap)
        return RKV_OK;
    uint64_t ncap = (uint64_t)*cap + *cap / 4;
    if (ncap < need)
        ncap = need;
    if (ncap < min)
        ncap = min;
    if (ncap > UINT32_MAX)
        ncap = UINT32_MAX;
    if (ncap < need)
        return RKV_ERR_TOOBIG;
    void *a = rkv_realloc(*arr, (size_t)ncap * elem);
    if (a == NULL)
        return RKV_ERR_NOMEM;
    kd->bytes += (ncap - *cap) * elem;
    *arr = a;
    *cap = (uint32_t)ncap;
    return RKV_OK;
}

struct kd_entry *keydir_upsert(struct keydir *kd, uint16_t part, const void *key,
                               size_t key_len, uint64_t hash, bool *created)
{
    struct kd_part *p = part_get_or_create(kd, part);
    if (p == NULL)
        return NULL;
    bool found = false;
    uint32_t i = 0;
    if (p->n_slots) {
        i = probe(p, key, key_len, hash, &found);
        if (found) {
            *created = false;
            return &p->entries[slot_idx(p->slots[i])];
        }
    }
    if (p->free_head == 0 && p->n_entries >= KD_PART_KEYS_MAX)
        return NULL; /* the 24-bit entry numbers are used up */
    /* Reserve everything before changing anything, so a failure leaves the
     * partition as it was. */
    if ((uint64_t)(p->n_live + 1) * 4 > (uint64_t)p->n_slots * 3) {
        uint64_t n = (uint64_t)p->n_slots + p->n_slots / 2;
        if (n < KD_SLOTS_MIN)
            n = KD_SLOTS_MIN;
        if (n > UINT32_MAX || slots_resize(kd, p, (uint32_t)n) != RKV_OK)
            return NULL;
        i = probe(p, key, key_len, hash, &found);
    }
    if (p->free_head == 0 &&
        grow_quarter(kd, (void **)&p->entries, &p->cap_entries, (uint64_t)p->n_entries + 1,
                     sizeof *p->entries, KD_ENTRIES_MIN) != RKV_OK)
        return NULL;
    if (grow_quarter(kd, (void **)&p->arena, &p->arena_cap, (uint64_t)p->arena_len + 2 + key_len,
                     1, KD_ARENA_MIN) != RKV_OK)
        return NULL;

    uint32_t idx;
    if (p->free_head) {
        idx = p->free_head - 1;
        p->free_head = p->entries[idx].offset;
    } else {
        idx = p->n_entries++;
    }
    struct kd_entry *e = &p->entries[idx];
    memset(e, 0, sizeof *e);
    e->key_off = p->arena_len;
    rkv_put_u16(p->arena + p->arena_len, (uint16_t)key_len);
    if (key_len)
        memcpy(p->arena + p->arena_len + 2, key, key_len);
    p->arena_len += 2 + (uint32_t)key_len;
    p->slots[i] = slot_make(hash, idx);
    p->n_live++;
    kd->n_live++;
    *created = true;
    return e;
}

/* Copies the live keys into a fresh arena of exactly the needed size. */
static void arena_compact(struct keydir *kd, struct kd_part *p)
{
    uint32_t need = p->arena_len - p->arena_garbage;
    uint8_t *a = rkv_malloc(need ? need : 1);
    if (a == NULL)
        return; /* keep the garbage; try again next time */
    uint32_t len = 0;
    for (uint32_t e = 0; e < p->n_entries; e++) {
        struct kd_entry *en = &p->entries[e];
        if (en->file_id == KD_FREE)
            continue;
        uint16_t klen;
        entry_key(p, en, &klen);
        memcpy(a + len, p->arena + en->key_off, 2u + klen);
        en->key_off = len;
        len += 2u + klen;
    }
    kd->bytes -= p->arena_cap;
    kd->bytes += need ? need : 1;
    rkv_free(p->arena);
    p->arena = a;
    p->arena_len = len;
    p->arena_cap = need ? need : 1;
    p->arena_garbage = 0;
}

void keydir_remove(struct keydir *kd, uint16_t part, struct kd_entry *e)
{
    struct kd_part *p = part_get(kd, part);
    uint32_t idx = (uint32_t)(e - p->entries);
    uint16_t klen;
    entry_key(p, e, &klen);
    uint32_t i = slot_home(entry_hash(p, e), p->n_slots);
    while ((p->slots[i] & SLOT_IDX_MASK) != idx + 1)
        i = slot_next(i, p->n_slots);
    /* Backward shift: pull later members of the cluster into the hole
     * unless their home lies cyclically in (hole, j]. */
    p->slots[i] = 0;
    for (uint32_t j = slot_next(i, p->n_slots); p->slots[j] != 0; j = slot_next(j, p->n_slots)) {
        uint32_t k = slot_home(entry_hash(p, &p->entries[slot_idx(p->slots[j])]), p->n_slots);
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        p->slots[i] = p->slots[j];
        p->slots[j] = 0;
        i = j;
    }
    e->file_id = KD_FREE;
    e->offset = p->free_head;
    p->free_head = idx + 1;
    p->arena_garbage += 2u + klen;
    p->n_live--;
    kd->n_live--;
    if (p->arena_garbage > 4096 && p->arena_garbage > p->arena_len / 2)
        arena_compact(kd, p);
}

struct kd_entry *keydir_next(struct keydir *kd, uint16_t part, uint32_t *pos)
{
    struct kd_part *p = part_get(kd, part);
    if (p == NULL)
        return NULL;
    for (uint32_t i = *pos; i < p->n_entries; i++) {
        if (p->entries[i].file_id != KD_FREE) {
            *pos = i + 1;
            return &p->entries[i];
        }
    }
    *pos = p->n_entries;
    return NULL;
}

int keydir_each(struct keydir *kd, keydir_visit_fn *fn, void *ctx)
{
    for (uint32_t part = 0; part < RKV_PARTITIONS_MAX; part++) {
        if (kd->pages[part >> KD_PAGE_BITS] == NULL) {
            part |= KD_PAGE_SIZE - 1; /* a whole page of partitions is empty */
            continue;
        }
        /* Removing frees the entry in place (no entry moves), so the walk
         * goes on from the same index. */
        uint32_t pos = 0;
        struct kd_entry *e;
        while ((e = keydir_next(kd, (uint16_t)part, &pos)) != NULL) {
            int rc = fn(ctx, (uint16_t)part, e);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

struct remove_if {
    struct keydir *kd;
    keydir_pred *pred;
    void *ctx;
    uint64_t removed;
};

static int remove_if_visit(void *arg, uint16_t part, struct kd_entry *e)
{
    struct remove_if *r = arg;
    if (r->pred(r->ctx, e)) {
        keydir_remove(r->kd, part, e);
        r->removed++;
    }
    return 0;
}

uint64_t keydir_remove_if(struct keydir *kd, keydir_pred *pred, void *ctx)
{
    struct remove_if r = {.kd = kd, .pred = pred, .ctx = ctx};
    keydir_each(kd, remove_if_visit, &r);
    return r.removed;
}

static bool part_invariants_ok(struct keydir *kd, uint16_t part, uint64_t *live)
{
    struct kd_part *p = part_get(kd, part);
    uint32_t n_live = 0, n_free = 0, n_used_slots = 0;
    for (uint32_t e = 0; e < p->n_entries; e++) {
        struct kd_entry *en = &p->entries[e];
        if (en->file_id == KD_FREE)
            continue;
        n_live++;
        if ((uint64_t)en->key_off + 2 > p->arena_len)
            return false;
        uint16_t klen;
        const uint8_t *k = entry_key(p, en, &klen);
        if (en->key_off + 2u + klen > p->arena_len)
            return false;
        if (keydir_find(kd, part, k, klen, keydir_hash(k, klen)) != en)
            return false;
    }
    for (uint32_t f = p->free_head; f != 0; f = p->entries[f - 1].offset) {
        if (f > p->n_entries || p->entries[f - 1].file_id != KD_FREE || ++n_free > p->n_entries)
            return false;
    }
    for (uint32_t i = 0; i < p->n_slots; i++) {
        uint32_t sl = p->slots[i];
        if (sl == 0)
            continue;
        n_used_slots++;
        if (slot_idx(sl) >= p->n_entries || p->entries[slot_idx(sl)].file_id == KD_FREE ||
            sl != slot_make(entry_hash(p, &p->entries[slot_idx(sl)]), slot_idx(sl)))
            return false;
    }
    *live += n_live;
    return n_live == p->n_live && n_live + n_free == p->n_entries && n_used_slots == n_live &&
           (uint64_t)n_live * 4 <= (uint64_t)p->n_slots * 3 + 3 && p->arena_len <= p->arena_cap;
}

bool keydir_invariants_ok(const struct keydir *kdc)
{
    struct keydir *kd = (struct keydir *)kdc;
    uint64_t live = 0;
    for (uint32_t part = 0; part < RKV_PARTITIONS_MAX; part++) {
        if (kd->pages[part >> KD_PAGE_BITS] == NULL) {
            part |= KD_PAGE_SIZE - 1;
            continue;
        }
        if (part_get(kd, (uint16_t)part) == NULL)
            continue;
        if (!part_invariants_ok(kd, (uint16_t)part, &live))
            return false;
    }
    return live == kd->n_live;
}
