/*
 * fuzz_storage.c: libFuzzer target for storage recovery (storage/recover.c,
 * record.c, hint.c, the merge marker in merge.c).
 *
 * The input becomes the files of a data directory in memvfs, the in-memory
 * filesystem of the tests, and store_open recovers it. Open may fail, but
 * only cleanly (RKV_ERR_CORRUPT for a damaged MERGE marker, RKV_ERR_IO,
 * RKV_ERR_TOOBIG); it must never crash, hang or take memory out of
 * proportion to the files. When it succeeds the target checks what an open
 * store promises:
 *
 *   - the keydir's structure holds (check_keydir) after open, after a
 *     write and after the reopen below;
 *   - every key store_list returns, in every partition that holds one,
 *     reads back with store_get as its value (of the listed length) or as
 *     RKV_ERR_CORRUPT (a hint may point at bytes that fail their
 *     checksum or disagree with it: reads verify every record again);
 *   - the store is usable: a put, a commit and a get of a probe key work
 *     (unless a record holds the last seq there can be, STORE_SEQ_MAX:
 *     then the put is refused with RKV_ERR_TOOBIG and nothing changes);
 *   - store_close succeeds, and a second open of what it left succeeds and
 *     reads back every value that read back before, the probe's included
 *     (invariant 7: a reopen holds every synced record), and, without a
 *     merge in between, finds the same number of keys (plus the probe).
 *
 * Input layout (byte 0 is a set of flags):
 *   bit 0 = 0  files mode: byte 1 gives the count (1 + b % 4); each file is
 *              a name byte (an index into fuzz_seed_names), a 16-bit
 *              little-endian length and that many bytes (cut to what is
 *              left).
 *   bit 0 = 1  hint mode: a valid small log 0000000001.log (fuzz_seed_log)
 *              is written by the target, and the rest of the input is its
 *              0000000001.hint.
 *   bit 1      fix checksums first (and the fields checked with them), so
 *              that the fuzzer gets past them and into the structure: log
 *              records get their format byte, lengths that fit and their
 *              checksum; hint files their magic, entry count, log size and
 *              checksum; MERGE markers their magic, id counts, ids among
 *              1..4 and checksum.
 *   bit 2      ignore_hints.
 *   bit 3      merge: after the probe's put, store_merge rewrites every file
 *              recovery loaded (with hint files), and every value that read
 *              back before must read back the same after it, and after the
 *              reopen (which then loads the merge's hint files).
 * The clock is fixed, so expiry is deterministic. Nothing is kept between
 * inputs; each run builds and frees its own filesystem.
 */
#include <stdbool.h>
#include <string.h>

#include "common/limits.h"
#include "common/log.h"
#include "storage/store_int.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/storage_seed.h"
#include "tests/support/memvfs.h"

#define DIR        "/fz"
#define PROBE_KEY  "fuzz-probe"
#define PROBE_PART 7
#define FILES_MAX  4

#define FLAG_HINT_MODE    0x01
#define FLAG_FIX          0x02
#define FLAG_IGNORE_HINTS 0x04
#define FLAG_MERGE        0x08

static uint64_t fixed_clock(void *ctx)
{
    (void)ctx;
    return FUZZ_SEED_NOW_MS;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    rkv_log_set_level(RKV_LOG_OFF); /* damaged files are expected: no warnings */
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* ---- checksum fix-ups ---- */

static void fix_log(uint8_t *d, size_t len)
{
    struct record_keys keys;
    record_keys_init(&keys, FUZZ_SEED_SECRET);
    size_t off = 0;
    while (len - off >= RECORD_HDR_BYTES) {
        uint8_t *p = d + off;
        size_t room = len - off - RECORD_HDR_BYTES;
        p[37] = RECORD_FORMAT;
        p[36] &= RECORD_FLAG_TOMB;
        uint16_t key_len = rkv_get_u16(p + 32);
        if (key_len > room) {
            key_len = (uint16_t)room;
            rkv_put_u16(p + 32, key_len);
        }
        uint32_t value_len = rkv_get_u32(p + 28);
        if ((p[36] & RECORD_FLAG_TOMB) || value_len > room - key_len)
            value_len = (p[36] & RECORD_FLAG_TOMB) ? 0 : (uint32_t)(room - key_len);
        rkv_put_u32(p + 28, value_len);
        record_seal(p, &keys);
        off += record_bytes(key_len, value_len);
    }
}

/* log_bytes: the size of the log the hint describes (0: leave as is). */
static void fix_hint(uint8_t *d, size_t len, uint64_t log_bytes)
{
    if (len < HINT_HDR_BYTES + HINT_TRAILER_BYTES)
        return;
    memcpy(d, HINT_MAGIC, HINT_HDR_BYTES);
    size_t end = len - HINT_TRAILER_BYTES;
    uint64_t count = 0;
    for (size_t off = HINT_HDR_BYTES; off < end && end - off >= HINT_ENTRY_BYTES; count++) {
        d[off + 28] = 0; /* flags */
        off += HINT_ENTRY_BYTES + rkv_get_u16(d + off + 24);
    }
    if (log_bytes)
        rkv_put_u64(d + end, log_bytes);
    rkv_put_u64(d + end + 8, count);
    rkv_put_u64(d + end + 16, XXH3_64bits_withSeed(d, len - 8, HINT_SEED));
}

/* Returns the fixed length (a marker's size follows from its id count). */
static size_t fix_marker(uint8_t *d, size_t len)
{
    if (len < 24)
        return len;
    size_t n = (len - 24) / 4;
    len = 24 + 4 * n;
    memcpy(d, MARKER_MAGIC, 8);
    uint32_t n_in = (uint32_t)(d[8] % (n + 1));
    rkv_put_u32(d + 8, n_in);
    rkv_put_u32(d + 12, (uint32_t)n - n_in);
    for (size_t i = 0; i < n; i++)
        rkv_put_u32(d + 16 + 4 * i, 1 + rkv_get_u32(d + 16 + 4 * i) % 4);
    rkv_put_u64(d + len - 8, XXH3_64bits_withSeed(d, len - 8, MARKER_SEED));
    return len;
}

/* ---- building the directory ---- */

struct file {
    const char *name;
    uint8_t *data;
    size_t len;
};

static void write_files(struct memvfs *v, struct file *f, size_t n, bool fix)
{
    for (size_t i = 0; fix && i < n; i++)
        if (ends_with(f[i].name, ".log") || ends_with(f[i].name, ".log.merging"))
            fix_log(f[i].data, f[i].len);
    for (size_t i = 0; fix && i < n; i++) {
        if (ends_with(f[i].name, ".hint") || ends_with(f[i].name, ".hint.merging")) {
            uint64_t log_bytes = 0; /* the log of the same id, if there is one */
            for (size_t j = 0; j < n; j++)
                if (strncmp(f[j].name, f[i].name, 10) == 0 && ends_with(f[j].name, ".log"))
                    log_bytes = f[j].len;
            fix_hint(f[i].data, f[i].len, log_bytes);
        } else if (strncmp(f[i].name, "MERGE", 5) == 0) {
            f[i].len = fix_marker(f[i].data, f[i].len);
        }
    }
    for (size_t i = 0; i < n; i++) {
        char path[64];
        snprintf(path, sizeof path, DIR "/%s", f[i].name);
        memvfs_write_file(v, path, f[i].data, f[i].len);
    }
}

/* Files mode: the input names and fills up to FILES_MAX files. */
static void files_mode(struct memvfs *v, const uint8_t *d, size_t n, bool fix)
{
    struct file f[FILES_MAX];
    size_t nf = 0;
    if (n == 0)
        return;
    size_t want = 1 + d[0] % FILES_MAX;
    d++, n--;
    while (nf < want && n >= 3) {
        size_t len = rkv_get_u16(d + 1);
        f[nf].name = fuzz_seed_names[d[0] % FUZZ_SEED_NAMES];
        d += 3, n -= 3;
        if (len > n)
            len = n;
        f[nf].data = malloc(len ? len : 1);
        FUZZ_CHECK(f[nf].data != NULL);
        if (len)
            memcpy(f[nf].data, d, len);
        f[nf].len = len;
        d += len, n -= len;
        nf++;
    }
    write_files(v, f, nf, fix);
    for (size_t i = 0; i < nf; i++)
        free(f[i].data);
}

static void hint_mode(struct memvfs *v, const uint8_t *d, size_t n, bool fix)
{
    uint8_t log[FUZZ_SEED_LOG_BYTES];
    struct file f[2] = {
        {.name = "0000000001.log", .data = log, .len = fuzz_seed_log(log, sizeof log)},
        {.name = "0000000001.hint", .data = malloc(n ? n : 1), .len = n},
    };
    FUZZ_CHECK(f[1].data != NULL);
    if (n)
        memcpy(f[1].data, d, n);
    if (fix) /* the log is valid already; only the hint needs fixing */
        fix_hint(f[1].data, f[1].len, f[0].len);
    write_files(v, f, 2, false);
    free(f[1].data);
}

/* ---- checking an open store ---- */

/* What the store held when it was listed: every key that read back, with
 * its value. Keys that read as RKV_ERR_CORRUPT are counted, not kept. */
struct kv {
    uint16_t part;
    struct rkv_buf key, value;
};

struct snapshot {
    struct kv *kv;
    size_t n, cap;
    uint64_t corrupt;
};

static void snapshot_free(struct snapshot *sn)
{
    for (size_t i = 0; i < sn->n; i++) {
        rkv_buf_free(&sn->kv[i].key);
        rkv_buf_free(&sn->kv[i].value);
    }
    free(sn->kv);
    memset(sn, 0, sizeof *sn);
}

struct list_ctx {
    struct store *s;
    uint16_t part;
    uint64_t listed;
    struct snapshot *sn;
};

static int check_key(void *arg, const void *key, size_t key_len, const struct store_meta *meta)
{
    struct list_ctx *c = arg;
    struct rkv_buf value = {0};
    struct store_meta m;
    int rc = store_get(c->s, c->part, key, key_len, &value, &m);
    FUZZ_CHECK(rc == RKV_OK || rc == RKV_ERR_CORRUPT);
    c->listed++;
    if (rc != RKV_OK) {
        c->sn->corrupt++;
        rkv_buf_free(&value);
        return 0;
    }
    FUZZ_CHECK(value.len == meta->value_len && m.seq == meta->seq &&
               m.value_len == meta->value_len);
    struct snapshot *sn = c->sn;
    if (sn->n == sn->cap) {
        sn->cap = sn->cap ? 2 * sn->cap : 16;
        sn->kv = realloc(sn->kv, sn->cap * sizeof *sn->kv);
        FUZZ_CHECK(sn->kv != NULL);
    }
    struct kv *kv = &sn->kv[sn->n++];
    *kv = (struct kv){.part = c->part, .value = value};
    FUZZ_CHECK(rkv_buf_set(&kv->key, key, key_len) == RKV_OK);
    return 0;
}

/* The keydir's structure, partition by partition: every live entry is
 * found again by its key, the free list and the live entries make up the
 * entry array, one used slot per live entry, and the counts add up. (What
 * keydir_invariants_ok checks, minus the slot tags; that function walks all
 * 65536 partitions and would take most of the time of a run, so the target
 * walks only the pages that exist.) */
static void check_keydir(struct keydir *kd)
{
    uint64_t total = 0;
    for (uint32_t pg = 0; pg < RKV_PARTITIONS_MAX / 256; pg++) {
        for (uint32_t i = 0; kd->pages[pg] != NULL && i < 256; i++) {
            const struct kd_part *p = kd->pages[pg][i];
            uint16_t part = (uint16_t)(pg * 256 + i);
            if (p == NULL)
                continue;
            uint32_t live = 0, free_n = 0, used = 0;
            for (uint32_t e = 0; e < p->n_entries; e++) {
                const struct kd_entry *en = &p->entries[e];
                if (en->file_id == KD_FREE)
                    continue;
                live++;
                FUZZ_CHECK((en->seq & KD_TOMB) == 0);
                uint16_t klen;
                const uint8_t *k = keydir_key(kd, part, en, &klen);
                FUZZ_CHECK(keydir_find(kd, part, k, klen, keydir_hash(k, klen)) == en);
            }
            for (uint32_t f = p->free_head; f != 0; f = p->entries[f - 1].offset) {
                FUZZ_CHECK(f <= p->n_entries && p->entries[f - 1].file_id == KD_FREE);
                FUZZ_CHECK(++free_n <= p->n_entries);
            }
            for (uint32_t sl = 0; sl < p->n_slots; sl++)
                used += p->slots[sl] != 0;
            FUZZ_CHECK(live == p->n_live && live + free_n == p->n_entries && used == live);
            FUZZ_CHECK(keydir_part_count(kd, part) == live);
            total += live;
        }
    }
    FUZZ_CHECK(total == kd->n_live);
}

/* Checks the keydir, lists every partition that holds keys, reads every key
 * listed; sn (emptied first) receives what read back. */
static void check_all_keys(struct store *s, struct snapshot *sn)
{
    snapshot_free(sn);
    check_keydir(&s->kd);
    for (uint32_t part = 0; part < RKV_PARTITIONS_MAX; part++) {
        if (s->kd.pages[part >> 8] == NULL) {
            part |= 255;
            continue;
        }
        uint32_t count = keydir_part_count(&s->kd, (uint16_t)part);
        if (count == 0)
            continue;
        struct list_ctx c = {.s = s, .part = (uint16_t)part, .sn = sn};
        uint64_t cursor = 0;
        while (cursor != STORE_CURSOR_END)
            FUZZ_CHECK(store_list(s, (uint16_t)part, &cursor, 16, check_key, &c) == RKV_OK);
        FUZZ_CHECK(c.listed <= count); /* expired keys are not listed */
    }
}

/* Every key of sn still reads back with its value. */
static void check_still_there(struct store *s, const struct snapshot *sn)
{
    struct rkv_buf value = {0};
    for (size_t i = 0; i < sn->n; i++) {
        const struct kv *kv = &sn->kv[i];
        FUZZ_CHECK(store_get(s, kv->part, kv->key.data, kv->key.len, &value, NULL) == RKV_OK);
        FUZZ_CHECK(value.len == kv->value.len &&
                   (value.len == 0 || memcmp(value.data, kv->value.data, value.len) == 0));
    }
    rkv_buf_free(&value);
}

static struct store *reopen(const struct store_options *o)
{
    struct rkv_error err = {0};
    struct store *s = NULL;
    int rc = store_open(DIR, o, &s, &err);
    if (rc != RKV_OK)
        fprintf(stderr, "reopen: %s\n", err.msg);
    FUZZ_CHECK(rc == RKV_OK);
    return s;
}

static void check_store(const struct store_options *o, struct store *s, bool merge)
{
    struct snapshot sn = {0};
    uint64_t keys = s->kd.n_live;
    FUZZ_CHECK(store_open_report(s)->keys == keys);
    check_all_keys(s, &sn);

    /* a put, a commit and a get work */
    struct rkv_buf value = {0};
    int rc = store_get(s, PROBE_PART, PROBE_KEY, strlen(PROBE_KEY), &value, NULL);
    FUZZ_CHECK(rc == RKV_OK || rc == RKV_ERR_NOTFOUND || rc == RKV_ERR_CORRUPT);
    rkv_buf_free(&value);
    bool probe_is_new = keydir_find(&s->kd, PROBE_PART, PROBE_KEY, strlen(PROBE_KEY),
                                    keydir_hash(PROBE_KEY, strlen(PROBE_KEY))) == NULL;
    if (s->next_seq > STORE_SEQ_MAX) {
        /* a valid record with the last seq there can be: the store reads but
         * refuses every write, and stays as it was */
        FUZZ_CHECK(store_put(s, PROBE_PART, PROBE_KEY, strlen(PROBE_KEY), "p", 1, 0) ==
                   RKV_ERR_TOOBIG);
        probe_is_new = false;
    } else {
        FUZZ_CHECK(store_put(s, PROBE_PART, PROBE_KEY, strlen(PROBE_KEY), "p", 1, 0) == RKV_OK);
    }
    FUZZ_CHECK(store_commit(s) == RKV_OK);
    check_all_keys(s, &sn); /* the probe is in the snapshot from here on */

    if (merge) {
        /* a merge of everything recovery found keeps every readable value */
        FUZZ_CHECK(store_merge(s) == RKV_OK);
        rc = store_merge_wait(s);
        FUZZ_CHECK(rc == RKV_OK || rc == RKV_ERR_TOOBIG); /* TOOBIG: file ids used up */
        check_still_there(s, &sn);
    }
    FUZZ_CHECK(store_close(s) == RKV_OK);

    /* invariant 7: a reopen holds every synced record */
    s = reopen(o);
    check_still_there(s, &sn);
    struct snapshot again = {0};
    check_all_keys(s, &again);
    if (!merge) /* a merge may drop expired keys and damaged entries */
        FUZZ_CHECK(s->kd.n_live == keys + probe_is_new);
    FUZZ_CHECK(again.n >= sn.n);
    snapshot_free(&again);
    snapshot_free(&sn);
    FUZZ_CHECK(store_close(s) == RKV_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t flags = data[0];
    struct memvfs *v = memvfs_new();
    /* the store's identity, which the input's logs are checksummed under
     * (files the input names, IDENT included, replace it) */
    uint8_t ident[IDENT_BYTES];
    store_ident_encode(FUZZ_SEED_SECRET, ident);
    memvfs_write_file(v, DIR "/IDENT", ident, sizeof ident);
    if (flags & FLAG_HINT_MODE)
        hint_mode(v, data + 1, size - 1, flags & FLAG_FIX);
    else
        files_mode(v, data + 1, size - 1, flags & FLAG_FIX);

    struct store_options o;
    store_options_default(&o);
    o.fileops = memvfs_ops(v);
    o.break_stale_lock = true;
    o.merge_auto = false;
    o.ignore_hints = (flags & FLAG_IGNORE_HINTS) != 0;
    o.now_ms = fixed_clock;
    o.file_bytes_max = 1u << 20;
    o.write_buffer_bytes = 4096;
    struct store *s = NULL;
    struct rkv_error err = {0};
    int rc = store_open(DIR, &o, &s, &err);
    FUZZ_CHECK(rc == RKV_OK || rc == RKV_ERR_CORRUPT || rc == RKV_ERR_IO || rc == RKV_ERR_TOOBIG);
    FUZZ_CHECK(rc == RKV_OK ? s != NULL : s == NULL && err.msg[0] != '\0');
    if (rc == RKV_OK)
        check_store(&o, s, (flags & FLAG_MERGE) != 0);
    memvfs_free(v);
    return 0;
}
