/*
 * storage_seed.h: what fuzz_storage.c and make_corpus.c must agree on.
 *
 * fuzz_seed_names is the table of file names the storage target's input
 * picks from (by index, so a committed seed names its files with the same
 * bytes for as long as the table keeps its order: append, never reorder).
 * fuzz_seed_log builds the valid small log of the target's hint mode, so
 * the generator can write hint files that describe it exactly.
 */
#ifndef RKV_FUZZ_STORAGE_SEED_H
#define RKV_FUZZ_STORAGE_SEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "storage/store_int.h"

#define FUZZ_SEED_NOW_MS    1700000000000ull /* the target's clock */
/* The secret of the IDENT the target writes before the input's files (an
 * input may replace that IDENT too, by naming it). */
#define FUZZ_SEED_SECRET    0x66757a7a73656564ull /* "fuzzseed" */
#define FUZZ_SEED_LOG_BYTES 512

static const char *const fuzz_seed_names[] = {
    "0000000001.log",          /* 0 */
    "0000000002.log",          /* 1 */
    "0000000001.hint",         /* 2 */
    "0000000002.hint",         /* 3 */
    "MERGE",                   /* 4 */
    "0000000003.log.merging",  /* 5 */
    "0000000003.hint.merging", /* 6 */
    "0000000003.log",          /* 7 */
    "MERGE.tmp",               /* 8 */
    "LOCK",                    /* 9 */
    "4294967294.log",          /* 10: the highest id a log may have */
    "0000000003.hint",         /* 11 */
    "IDENT",                   /* 12 */
};
#define FUZZ_SEED_NAMES (sizeof fuzz_seed_names / sizeof fuzz_seed_names[0])

/* Six records over four keys in three partitions: an overwrite, an empty
 * value, a tombstone, a key that expires later and one already expired.
 * Returns the bytes written to out (at most FUZZ_SEED_LOG_BYTES). */
static inline size_t fuzz_seed_log(uint8_t *out, size_t cap)
{
    struct record_keys keys;
    record_keys_init(&keys, FUZZ_SEED_SECRET);
    static const struct {
        const char *key;
        uint16_t part;
        const char *value;
        uint64_t expiry_ms;
        bool tomb;
    } recs[] = {
        {"k0", 0, "zero", 0, false},
        {"k1", 1, "one", 0, false},
        {"k2", 0, "", 0, false},
        {"k0", 0, "zero again", FUZZ_SEED_NOW_MS + 1000, false},
        {"k3", 2, "gone", FUZZ_SEED_NOW_MS - 1, false},
        {"k1", 1, NULL, 0, true},
    };
    size_t off = 0;
    for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++) {
        size_t vlen = recs[i].value ? strlen(recs[i].value) : 0;
        struct record r = {
            .seq = i + 1,
            .expiry_ms = recs[i].expiry_ms,
            .value_len = (uint32_t)vlen,
            .key_len = (uint16_t)strlen(recs[i].key),
            .partition = recs[i].part,
            .flags = recs[i].tomb ? RECORD_FLAG_TOMB : 0,
            .key = (const uint8_t *)recs[i].key,
            .value = (const uint8_t *)recs[i].value,
        };
        size_t total = record_bytes(r.key_len, vlen);
        if (off + total > cap)
            break;
        record_encode(out + off, &r, &keys);
        off += total;
    }
    return off;
}

#endif
