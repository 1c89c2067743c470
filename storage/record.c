/*
 * record.c: the log record format (see store_int.h) and the log scanner.
 *
 * The scanner is what recovery and merge trust: it returns only records that
 * pass every check. When it meets bytes that are not a valid record it looks
 * for the next offset where a valid record starts; if there is one, the
 * damaged region is skipped and counted, otherwise everything from the bad
 * offset on is a torn (or zero-filled) tail to truncate.
 *
 * Both checksums are keyed by the store's secret (the IDENT file), and that
 * is what makes resynchronisation safe against stored values: a client can
 * put bytes that look like records into a value, but it cannot compute the
 * checksums of the store it writes to. So a record planted in a value is
 * never accepted as real, and the search costs one 26-byte hash per offset
 * (the header check) instead of hashing whatever length a planted header
 * claims at every offset, which made recovery quadratic in the file size.
 */
#include "storage/store_int.h"

#include <xxhash.h>

#include "common/limits.h"

void record_keys_init(struct record_keys *k, uint64_t secret)
{
    k->record = RECORD_SEED ^ secret;
    k->header = HEADER_SEED ^ secret;
}

static uint64_t record_checksum(const uint8_t *p, size_t total, const struct record_keys *k)
{
    return XXH3_64bits_withSeed(p + 8, total - 8, k->record);
}

static uint32_t header_check(const uint8_t *p, const struct record_keys *k)
{
    return (uint32_t)XXH3_64bits_withSeed(p + 12, RECORD_HDR_BYTES - 12, k->header);
}

void record_seal(uint8_t *p, const struct record_keys *k)
{
    rkv_put_u32(p + 8, header_check(p, k));
    size_t total = record_bytes(rkv_get_u16(p + 32), rkv_get_u32(p + 28));
    rkv_put_u64(p, record_checksum(p, total, k));
}

void record_encode(uint8_t *dst, const struct record *r, const struct record_keys *k)
{
    rkv_put_u64(dst + 12, r->seq);
    rkv_put_u64(dst + 20, r->expiry_ms);
    rkv_put_u32(dst + 28, r->value_len);
    rkv_put_u16(dst + 32, r->key_len);
    rkv_put_u16(dst + 34, r->partition);
    dst[36] = r->flags;
    dst[37] = RECORD_FORMAT;
    if (r->key_len)
        memcpy(dst + RECORD_HDR_BYTES, r->key, r->key_len);
    if (r->value_len)
        memcpy(dst + RECORD_HDR_BYTES + r->key_len, r->value, r->value_len);
    record_seal(dst, k);
}

/* Every check but the body's checksum: cheap, and for bytes that are not
 * a record of this store it fails at the header check. Fills r. */
static bool parse_header(const uint8_t *p, size_t avail, const struct record_keys *k,
                         struct record *r)
{
    if (avail < RECORD_HDR_BYTES)
        return false;
    if (p[37] != RECORD_FORMAT || (p[36] & ~RECORD_FLAG_TOMB) != 0)
        return false;
    if (rkv_get_u32(p + 8) != header_check(p, k))
        return false; /* unforgeable without the store's secret */
    uint32_t value_len = rkv_get_u32(p + 28);
    uint16_t key_len = rkv_get_u16(p + 32);
    if (value_len > RKV_VALUE_BYTES_MAX)
        return false;
    /* A seq with bit 63 would read as a tombstone in recovery (KD_TOMB) and
     * hand that bit to every later write; the engine never writes one.
     * Found by fuzz_storage. */
    if (rkv_get_u64(p + 12) > STORE_SEQ_MAX)
        return false;
    if ((p[36] & RECORD_FLAG_TOMB) && value_len != 0)
        return false;
    if (record_bytes(key_len, value_len) > avail)
        return false;
    r->seq = rkv_get_u64(p + 12);
    r->expiry_ms = rkv_get_u64(p + 20);
    r->value_len = value_len;
    r->key_len = key_len;
    r->partition = rkv_get_u16(p + 34);
    r->flags = p[36];
    r->key = p + RECORD_HDR_BYTES;
    r->value = p + RECORD_HDR_BYTES + key_len;
    return true;
}

static bool body_ok(const uint8_t *p, const struct record *r, const struct record_keys *k)
{
    return rkv_get_u64(p) == record_checksum(p, record_bytes(r->key_len, r->value_len), k);
}

bool record_parse(const uint8_t *p, size_t avail, const struct record_keys *k, struct record *r)
{
    return parse_header(p, avail, k, r) && body_ok(p, r, k);
}

/* record_parse that counts the body checksums it computes. */
static bool parse_counted(const uint8_t *p, size_t avail, const struct record_keys *k,
                          struct record *r, uint64_t *body_checks)
{
    if (!parse_header(p, avail, k, r))
        return false;
    (*body_checks)++;
    return body_ok(p, r, k);
}

/* The first offset >= from where a valid record starts, or len. */
static uint64_t scan_resync(const uint8_t *data, uint64_t len, uint64_t from,
                            const struct record_keys *k, uint64_t *body_checks)
{
    struct record r;
    for (uint64_t off = from; off + RECORD_HDR_BYTES <= len; off++)
        if (parse_counted(data + off, len - off, k, &r, body_checks))
            return off;
    return len;
}

int record_scan(const uint8_t *data, uint64_t len, const struct record_keys *k, scan_fn *fn,
                void *ctx, struct scan_result *res)
{
    memset(res, 0, sizeof *res);
    uint64_t off = 0;
    while (off < len) {
        struct record r;
        if (off <= UINT32_MAX && parse_counted(data + off, len - off, k, &r, &res->body_checks)) {
            int rc = fn(ctx, &r, (uint32_t)off);
            if (rc != RKV_OK)
                return rc;
            res->records++;
            off += record_bytes(r.key_len, r.value_len);
            continue;
        }
        uint64_t next = scan_resync(data, len, off + 1, k, &res->body_checks);
        if (next >= len || next > UINT32_MAX)
            break; /* nothing valid follows: a torn tail */
        res->bad_records++;
        res->bad_bytes += next - off;
        off = next;
    }
    res->valid_end = off < len ? off : len;
    return RKV_OK;
}
