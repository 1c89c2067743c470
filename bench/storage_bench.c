/*
 * storage_bench.c: the storage engine benchmark. Drives ringkv's bitcask
 * engine and three peers (LMDB, LevelDB, RocksDB, through their C APIs) over
 * the same workloads in one run and prints one table: ops/s, p50 and p99
 * latency, and on ringkv's rows its throughput divided by each peer's.
 *
 * Design. Every engine sits behind a table of five operations (struct
 * engine_ops: open, put, commit, get, close). The driver owns everything
 * else: it makes every key, value and operation from one seeded PRNG,
 * reseeded per workload, so all engines see the same operations in the same
 * order, and it times every operation the same way, so the measuring costs
 * each engine the same. Engines run one after another (ringkv first, so its
 * memory is measured from a clean heap), each in its own directory
 * (DIR/<engine>) that is deleted and recreated for every fresh store.
 *
 * Keys are 16 decimal digits. Stored keys are the even numbers 2i, i < keys;
 * readmissing asks for odd numbers 2i+1, which sort between stored keys, so
 * no engine can answer them from key ranges alone. Values are random
 * (incompressible) bytes taken at varying offsets of a 1 MiB pool.
 *
 * Workloads, in the order they run:
 *   fillseq      keys in ascending order into a fresh store
 *   fillrandom   keys in a seeded random permutation into a fresh store
 *   readrandom   keys random reads of stored keys       } on the filled store
 *   readmissing  keys random reads of absent keys       } (an untimed
 *   overwrite    keys random puts of stored keys        }  fillrandom first
 *   mixed        keys ops, each a read or a put (50/50) }  if none ran)
 *   durable      --durable-ops puts, a durable commit every --batch puts
 *   durable1     --durable-ops puts, a durable commit after every put
 *
 * Commits. Non-durable workloads commit every GROUP_OPS puts: ringkv
 * store_commit with sync "none" (its group commit); LMDB one write txn per
 * group in an MDB_NOSYNC env; LevelDB and RocksDB one WriteBatch per group
 * written with sync=false. Durable workloads open a fresh store with
 * durability on (ringkv sync "always", LMDB default sync, LevelDB/RocksDB
 * sync=true) and commit every --batch puts (durable) or every put (durable1).
 * Reads see the engine's newest committed state (ringkv and LMDB also see the
 * open group; a WriteBatch is invisible until written).
 *
 * Latency. Every op is timed between two CLOCK_MONOTONIC reads. For
 * non-durable workloads that is the call itself; the put that closes a group
 * also pays for the commit. For durable workloads an op's latency is its ack
 * latency: from the start of its put until the commit that covers it
 * returns. ops/s is ops over the wall time of the whole loop, key making and
 * timing included, final commit included.
 *
 * --open-test N times ringkv's store_open on N keys, from hint files and by
 * scanning logs (options.ignore_hints), with a warm and a cold page cache.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <leveldb/c.h>
#include <lmdb.h>
#include <rocksdb/c.h>
#include <xxhash.h>

#include "bench/machine.h"
#include "common/buf.h"
#include "common/err.h"
#include "storage/storage.h"

#define KEY_BYTES         16
#define GROUP_OPS         1000u /* puts per commit, non-durable workloads */
#define LMDB_READ_TXN_OPS 1000u /* reads per LMDB read txn before a renew */
#define LMDB_MAPSIZE_MIN  (4ull << 30)
#define PEER_CACHE_BYTES  ((size_t)64 << 20)
#define PEER_BLOOM_BITS   10
#define VALUE_POOL_SPAN   (1u << 20)   /* a power of two */
#define KEYS_MAX          200000000ull /* latencies take 4 bytes per op */
#define BATCH_MAX         65536u       /* ringkv's default batch_ops_max */
#define DURABLE_TARGET    5.0          /* ringkv durable / durable1 */

#define DEFAULT_KEYS        1000000ull
#define DEFAULT_VALUE_BYTES 100u
#define DEFAULT_BATCH       64u
#define DEFAULT_DURABLE_OPS 20000ull
#define DEFAULT_SEED        0x72696e676b76ull /* "ringkv" */
#define DEFAULT_DIR         "build/bench-data"

static void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("storage-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ---- time, randomness, keys ---- */

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64: small, fast, and good enough to pick keys. */
static inline uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) (multiply-shift; the bias is below 2^-32). */
static inline uint64_t rng_below(uint64_t *state, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(state) * n) >> 64);
}

/* The 16 decimal digits of v, no terminator. */
static inline void key_format(char *key, uint64_t v)
{
    for (int i = KEY_BYTES - 1; i >= 0; i--) {
        key[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

static uint16_t ringkv_partition(const char *key)
{
    return (uint16_t)(XXH3_64bits(key, KEY_BYTES) >> 56); /* 256 partitions, as ringkvd */
}

/* ---- files and memory ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* rm -rf path; 0 if it is gone. */
static int rm_tree(const char *path)
{
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0)
        return 0;
    return errno == ENOENT ? 0 : -1;
}

static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* Writes back everything dirty on dir's file system, so that the previous
 * phase's writeback does not land in the next phase's time. */
static void fs_settle(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        syncfs(fd);
        close(fd);
    }
}

static int evict_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag != FTW_F)
        return 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    fdatasync(fd); /* only clean pages can be dropped */
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    return 0;
}

/* Drops dir's files from the page cache (no root needed: our own files). */
static void cache_evict(const char *dir)
{
    nftw(dir, evict_entry, 16, FTW_PHYS);
}

struct rss {
    long vm_kb;   /* VmRSS */
    long anon_kb; /* RssAnon: heap and anonymous maps, not file pages */
};

static void rss_read(struct rss *r)
{
    *r = (struct rss){.vm_kb = -1, .anon_kb = -1};
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        sscanf(line, "VmRSS: %ld", &r->vm_kb);
        sscanf(line, "RssAnon: %ld", &r->anon_kb);
    }
    fclose(f);
}

/* ---- configuration ---- */

enum eng_id { ENG_RINGKV, ENG_LMDB, ENG_LEVELDB, ENG_ROCKSDB, ENG_COUNT };

enum wl_id {
    WL_FILLSEQ,
    WL_FILLRANDOM,
    WL_READRANDOM,
    WL_READMISSING,
    WL_OVERWRITE,
    WL_MIXED,
    WL_DURABLE,
    WL_DURABLE1,
    WL_COUNT
};

struct bench_cfg {
    uint64_t keys;
    uint32_t value_bytes;
    uint32_t batch; /* puts per durable commit in "durable" */
    uint64_t durable_ops;
    uint64_t seed;
    const char *dir;
    uint64_t open_test_keys; /* 0: the comparison; else --open-test */
    bool engine_on[ENG_COUNT];
    bool wl_on[WL_COUNT];
};

/* ---- engines ---- */

struct engine_ops {
    const char *name;
    /* Opens a new store in dir (an empty directory); NULL after printing why. */
    void *(*open)(const struct bench_cfg *cfg, const char *dir, bool durable);
    /* put, commit: 0, or -1 after printing why. put adds to the open group;
     * commit ends it (durably if the store was opened durable). */
    int (*put)(void *h, const char *key, const uint8_t *value, size_t value_len);
    int (*commit)(void *h);
    /* 1 (found; value copied to engine-owned memory, its length in
     * *value_len), 0 (absent), -1 (error, printed). */
    int (*get)(void *h, const char *key, size_t *value_len);
    void (*close)(void *h);
    /* One line on the settings used. */
    void (*describe)(const struct bench_cfg *cfg, FILE *out);
    /* ringkv only (NULL for peers). */
    void (*stats)(void *h, struct store_stats *st);
};

/* ringkv: store_put/store_get with partition = XXH3 >> 56, store_commit per group. */

struct rk_db {
    struct store *s;
    struct rkv_buf value; /* every get copies into this one buffer */
};

static int rk_check(const struct rk_db *db, int rc, const char *what)
{
    if (rc == RKV_OK)
        return 0;
    fprintf(stderr, "ringkv: %s: %s (%s)\n", what, rkv_strerror(rc), store_errmsg(db->s));
    return -1;
}

static void *rk_open(const struct bench_cfg *cfg, const char *dir, bool durable)
{
    (void)cfg;
    struct rk_db *db = calloc(1, sizeof *db);
    if (db == NULL)
        return NULL;
    struct store_options o;
    store_options_default(&o);
    o.sync = durable ? STORE_SYNC_ALWAYS : STORE_SYNC_NONE;
    struct rkv_error err = {.code = RKV_OK};
    if (store_open(dir, &o, &db->s, &err) != RKV_OK) {
        fprintf(stderr, "ringkv: open %s: %s\n", dir, err.msg);
        free(db);
        return NULL;
    }
    return db;
}

static int rk_put(void *h, const char *key, const uint8_t *value, size_t value_len)
{
    struct rk_db *db = h;
    int rc = store_put(db->s, ringkv_partition(key), key, KEY_BYTES, value, value_len, 0);
    return rk_check(db, rc, "put");
}

static int rk_commit(void *h)
{
    struct rk_db *db = h;
    return rk_check(db, store_commit(db->s), "commit");
}

static int rk_get(void *h, const char *key, size_t *value_len)
{
    struct rk_db *db = h;
    int rc = store_get(db->s, ringkv_partition(key), key, KEY_BYTES, &db->value, NULL);
    if (rc == RKV_ERR_NOTFOUND)
        return 0;
    if (rk_check(db, rc, "get") != 0)
        return -1;
    *value_len = db->value.len;
    return 1;
}

static void rk_close(void *h)
{
    struct rk_db *db = h;
    if (db == NULL)
        return;
    int rc = store_close(db->s);
    if (rc != RKV_OK)
        fprintf(stderr, "ringkv: close: %s\n", rkv_strerror(rc));
    rkv_buf_free(&db->value);
    free(db);
}

static void rk_stats(void *h, struct store_stats *st)
{
    struct rk_db *db = h;
    store_stats(db->s, st);
}

static void rk_describe(const struct bench_cfg *cfg, FILE *out)
{
    (void)cfg;
    struct store_options o;
    store_options_default(&o);
    fprintf(out,
            "#   ringkv   sync none + store_commit per group (durable: sync always); "
            "file_bytes_max %" PRIu64 " MiB, write_buffer %u KiB, merge_auto %s "
            "(dead >= %u%% and >= %" PRIu64 " MiB, or %u sealed files); "
            "partition = XXH3_64bits(key) >> 56\n",
            o.file_bytes_max >> 20, o.write_buffer_bytes >> 10, o.merge_auto ? "on" : "off",
            o.merge_dead_percent, o.merge_dead_bytes_min >> 20, o.merge_files_max);
}

/* LMDB: one write txn per group; reads in the open write txn, else in one
 * read-only txn that is reset and renewed every LMDB_READ_TXN_OPS reads. */

struct lm_db {
    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *wtxn;    /* the open group, or NULL */
    MDB_txn *rtxn;    /* reused read-only txn, or NULL */
    bool rtxn_active; /* false: rtxn is reset */
    uint32_t rtxn_reads;
    struct rkv_buf value; /* gets copy out of the map, like the others */
};

static int lm_check(int rc, const char *what)
{
    if (rc == MDB_SUCCESS)
        return 0;
    fprintf(stderr, "lmdb: %s: %s\n", what, mdb_strerror(rc));
    return -1;
}

static uint64_t lm_mapsize(const struct bench_cfg *cfg)
{
    uint64_t need = cfg->keys * (KEY_BYTES + cfg->value_bytes + 64ull) * 4;
    need = (need + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
    return need > LMDB_MAPSIZE_MIN ? need : LMDB_MAPSIZE_MIN;
}

static void *lm_open(const struct bench_cfg *cfg, const char *dir, bool durable)
{
    struct lm_db *db = calloc(1, sizeof *db);
    if (db == NULL)
        return NULL;
    unsigned flags = MDB_NOTLS | (durable ? 0 : MDB_NOSYNC);
    MDB_txn *txn = NULL;
    int rc = mdb_env_create(&db->env);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_set_mapsize(db->env, (size_t)lm_mapsize(cfg));
    if (rc == MDB_SUCCESS)
        rc = mdb_env_open(db->env, dir, flags, 0644);
    if (rc == MDB_SUCCESS)
        rc = mdb_txn_begin(db->env, NULL, 0, &txn);
    if (rc == MDB_SUCCESS)
        rc = mdb_dbi_open(txn, NULL, 0, &db->dbi);
    if (rc == MDB_SUCCESS) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (rc != MDB_SUCCESS) {
        lm_check(rc, "open");
        if (txn)
            mdb_txn_abort(txn);
        if (db->env)
            mdb_env_close(db->env);
        free(db);
        return NULL;
    }
    return db;
}

static void lm_read_end(struct lm_db *db)
{
    if (db->rtxn_active) {
        mdb_txn_reset(db->rtxn);
        db->rtxn_active = false;
    }
}

static int lm_put(void *h, const char *key, const uint8_t *value, size_t value_len)
{
    struct lm_db *db = h;
    if (db->wtxn == NULL) {
        lm_read_end(db); /* do not pin an old snapshot while writing */
        int rc = mdb_txn_begin(db->env, NULL, 0, &db->wtxn);
        if (rc != MDB_SUCCESS) {
            db->wtxn = NULL;
            return lm_check(rc, "begin write txn");
        }
    }
    MDB_val k = {.mv_size = KEY_BYTES, .mv_data = (void *)key};
    MDB_val v = {.mv_size = value_len, .mv_data = (void *)value};
    return lm_check(mdb_put(db->wtxn, db->dbi, &k, &v, 0), "put");
}

static int lm_commit(void *h)
{
    struct lm_db *db = h;
    if (db->wtxn == NULL)
        return 0;
    int rc = mdb_txn_commit(db->wtxn);
    db->wtxn = NULL;
    return lm_check(rc, "commit");
}

static MDB_txn *lm_read_txn(struct lm_db *db)
{
    if (db->wtxn)
        return db->wtxn;
    if (db->rtxn_active && ++db->rtxn_reads >= LMDB_READ_TXN_OPS)
        lm_read_end(db);
    if (!db->rtxn_active) {
        int rc = db->rtxn ? mdb_txn_renew(db->rtxn)
                          : mdb_txn_begin(db->env, NULL, MDB_RDONLY, &db->rtxn);
        if (lm_check(rc, "begin read txn") != 0)
            return NULL;
        db->rtxn_active = true;
        db->rtxn_reads = 0;
    }
    return db->rtxn;
}

static int lm_get(void *h, const char *key, size_t *value_len)
{
    struct lm_db *db = h;
    MDB_txn *txn = lm_read_txn(db);
    if (txn == NULL)
        return -1;
    MDB_val k = {.mv_size = KEY_BYTES, .mv_data = (void *)key};
    MDB_val v;
    int rc = mdb_get(txn, db->dbi, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (lm_check(rc, "get") != 0)
        return -1;
    if (rkv_buf_set(&db->value, v.mv_data, v.mv_size) != RKV_OK) {
        fprintf(stderr, "lmdb: get: out of memory\n");
        return -1;
    }
    *value_len = v.mv_size;
    return 1;
}

static void lm_close(void *h)
{
    struct lm_db *db = h;
    if (db == NULL)
        return;
    lm_commit(db);
    if (db->rtxn)
        mdb_txn_abort(db->rtxn);
    mdb_env_close(db->env);
    rkv_buf_free(&db->value);
    free(db);
}

static void lm_describe(const struct bench_cfg *cfg, FILE *out)
{
    fprintf(out,
            "#   lmdb     %s; one write txn per group, env MDB_NOTLS|MDB_NOSYNC (durable: "
            "MDB_NOTLS, sync at every commit); mapsize %" PRIu64 " MiB; reads in one "
            "read-only txn renewed every %u reads (or the open write txn); values copied "
            "out\n",
            mdb_version(NULL, NULL, NULL), lm_mapsize(cfg) >> 20, LMDB_READ_TXN_OPS);
}

/* LevelDB: one WriteBatch per group. */

struct ld_db {
    leveldb_t *db;
    leveldb_options_t *opt;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *bloom; /* not owned by opt: destroyed after close */
    leveldb_writeoptions_t *wopt;
    leveldb_readoptions_t *ropt;
    leveldb_writebatch_t *batch;
    size_t batch_ops;
};

static int ld_check(char *err, const char *what)
{
    if (err == NULL)
        return 0;
    fprintf(stderr, "leveldb: %s: %s\n", what, err);
    leveldb_free(err);
    return -1;
}

static int ld_commit(void *h)
{
    struct ld_db *db = h;
    if (db->batch_ops == 0)
        return 0;
    char *err = NULL;
    leveldb_write(db->db, db->wopt, db->batch, &err);
    leveldb_writebatch_clear(db->batch);
    db->batch_ops = 0;
    return ld_check(err, "write");
}

static void ld_close(void *h)
{
    struct ld_db *db = h;
    if (db == NULL)
        return;
    if (db->db) {
        ld_commit(db);
        leveldb_close(db->db);
    }
    leveldb_writebatch_destroy(db->batch);
    leveldb_readoptions_destroy(db->ropt);
    leveldb_writeoptions_destroy(db->wopt);
    leveldb_options_destroy(db->opt);
    leveldb_filterpolicy_destroy(db->bloom);
    leveldb_cache_destroy(db->cache);
    free(db);
}

static void *ld_open(const struct bench_cfg *cfg, const char *dir, bool durable)
{
    (void)cfg;
    struct ld_db *db = calloc(1, sizeof *db);
    if (db == NULL)
        return NULL;
    db->opt = leveldb_options_create();
    db->cache = leveldb_cache_create_lru(PEER_CACHE_BYTES);
    db->bloom = leveldb_filterpolicy_create_bloom(PEER_BLOOM_BITS);
    db->wopt = leveldb_writeoptions_create();
    db->ropt = leveldb_readoptions_create();
    db->batch = leveldb_writebatch_create();
    leveldb_options_set_create_if_missing(db->opt, 1);
    leveldb_options_set_cache(db->opt, db->cache);
    leveldb_options_set_filter_policy(db->opt, db->bloom);
    leveldb_writeoptions_set_sync(db->wopt, durable);
    char *err = NULL;
    db->db = leveldb_open(db->opt, dir, &err);
    if (ld_check(err, "open") != 0 || db->db == NULL) {
        ld_close(db);
        return NULL;
    }
    return db;
}

static int ld_put(void *h, const char *key, const uint8_t *value, size_t value_len)
{
    struct ld_db *db = h;
    leveldb_writebatch_put(db->batch, key, KEY_BYTES, (const char *)value, value_len);
    db->batch_ops++;
    return 0;
}

static int ld_get(void *h, const char *key, size_t *value_len)
{
    struct ld_db *db = h;
    char *err = NULL;
    size_t len = 0;
    char *v = leveldb_get(db->db, db->ropt, key, KEY_BYTES, &len, &err);
    if (ld_check(err, "get") != 0)
        return -1;
    if (v == NULL)
        return 0;
    leveldb_free(v);
    *value_len = len;
    return 1;
}

static void ld_describe(const struct bench_cfg *cfg, FILE *out)
{
    (void)cfg;
    fprintf(out,
            "#   leveldb  %d.%d; one WriteBatch per group, sync=false (durable: sync=true); "
            "create_if_missing, LRU block cache %zu MiB, bloom filter %d bits/key; library "
            "defaults otherwise (write_buffer 4 MiB, max_open_files 1000, block 4 KiB, "
            "snappy)\n",
            leveldb_major_version(), leveldb_minor_version(), PEER_CACHE_BYTES >> 20,
            PEER_BLOOM_BITS);
}

/* RocksDB: one WriteBatch per group. */

struct rd_db {
    rocksdb_t *db;
    rocksdb_options_t *opt;
    rocksdb_cache_t *cache;
    rocksdb_writeoptions_t *wopt;
    rocksdb_readoptions_t *ropt;
    rocksdb_writebatch_t *batch;
    size_t batch_ops;
};

static int rd_check(char *err, const char *what)
{
    if (err == NULL)
        return 0;
    fprintf(stderr, "rocksdb: %s: %s\n", what, err);
    rocksdb_free(err);
    return -1;
}

static int rd_commit(void *h)
{
    struct rd_db *db = h;
    if (db->batch_ops == 0)
        return 0;
    char *err = NULL;
    rocksdb_write(db->db, db->wopt, db->batch, &err);
    rocksdb_writebatch_clear(db->batch);
    db->batch_ops = 0;
    return rd_check(err, "write");
}

static void rd_close(void *h)
{
    struct rd_db *db = h;
    if (db == NULL)
        return;
    if (db->db) {
        rd_commit(db);
        rocksdb_close(db->db);
    }
    rocksdb_writebatch_destroy(db->batch);
    rocksdb_readoptions_destroy(db->ropt);
    rocksdb_writeoptions_destroy(db->wopt);
    rocksdb_options_destroy(db->opt);
    rocksdb_cache_destroy(db->cache);
    free(db);
}

/* Options shared by rd_open and rd_describe. The table options take over
 * the bloom policy; the factory copies the table options. */
static rocksdb_options_t *rd_options(rocksdb_cache_t *cache)
{
    rocksdb_options_t *opt = rocksdb_options_create();
    rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(t, cache);
    rocksdb_block_based_options_set_filter_policy(
        t, rocksdb_filterpolicy_create_bloom(PEER_BLOOM_BITS));
    rocksdb_options_set_block_based_table_factory(opt, t);
    rocksdb_block_based_options_destroy(t);
    rocksdb_options_set_create_if_missing(opt, 1);
    return opt;
}

static void *rd_open(const struct bench_cfg *cfg, const char *dir, bool durable)
{
    (void)cfg;
    struct rd_db *db = calloc(1, sizeof *db);
    if (db == NULL)
        return NULL;
    db->cache = rocksdb_cache_create_lru(PEER_CACHE_BYTES);
    db->opt = rd_options(db->cache);
    db->wopt = rocksdb_writeoptions_create();
    db->ropt = rocksdb_readoptions_create();
    db->batch = rocksdb_writebatch_create();
    rocksdb_writeoptions_set_sync(db->wopt, durable);
    char *err = NULL;
    db->db = rocksdb_open(db->opt, dir, &err);
    if (rd_check(err, "open") != 0 || db->db == NULL) {
        rd_close(db);
        return NULL;
    }
    return db;
}

static int rd_put(void *h, const char *key, const uint8_t *value, size_t value_len)
{
    struct rd_db *db = h;
    rocksdb_writebatch_put(db->batch, key, KEY_BYTES, (const char *)value, value_len);
    db->batch_ops++;
    return 0;
}

static int rd_get(void *h, const char *key, size_t *value_len)
{
    struct rd_db *db = h;
    char *err = NULL;
    size_t len = 0;
    char *v = rocksdb_get(db->db, db->ropt, key, KEY_BYTES, &len, &err);
    if (rd_check(err, "get") != 0)
        return -1;
    if (v == NULL)
        return 0;
    rocksdb_free(v);
    *value_len = len;
    return 1;
}

static const char *rd_compression_name(int c)
{
    static const char *const names[] = {
        [rocksdb_no_compression] = "none",       [rocksdb_snappy_compression] = "snappy",
        [rocksdb_zlib_compression] = "zlib",     [rocksdb_bz2_compression] = "bz2",
        [rocksdb_lz4_compression] = "lz4",       [rocksdb_lz4hc_compression] = "lz4hc",
        [rocksdb_xpress_compression] = "xpress", [rocksdb_zstd_compression] = "zstd",
    };
    return c >= 0 && (size_t)c < sizeof names / sizeof names[0] && names[c] ? names[c] : "?";
}

static void rd_describe(const struct bench_cfg *cfg, FILE *out)
{
    (void)cfg;
    rocksdb_cache_t *cache = rocksdb_cache_create_lru(PEER_CACHE_BYTES);
    rocksdb_options_t *o = rd_options(cache);
    fprintf(out,
            "#   rocksdb  one WriteBatch per group, sync=false (durable: sync=true); "
            "create_if_missing, block-based table, LRU block cache %zu MiB, bloom filter %d "
            "bits/key; library defaults otherwise (write_buffer %zu MiB, "
            "max_background_jobs %d, max_open_files %d, %s)\n",
            PEER_CACHE_BYTES >> 20, PEER_BLOOM_BITS, rocksdb_options_get_write_buffer_size(o) >> 20,
            rocksdb_options_get_max_background_jobs(o), rocksdb_options_get_max_open_files(o),
            rd_compression_name(rocksdb_options_get_compression(o)));
    rocksdb_options_destroy(o);
    rocksdb_cache_destroy(cache);
}

static const struct engine_ops engines[ENG_COUNT] = {
    [ENG_RINGKV] = {.name = "ringkv",
                    .open = rk_open,
                    .put = rk_put,
                    .commit = rk_commit,
                    .get = rk_get,
                    .close = rk_close,
                    .describe = rk_describe,
                    .stats = rk_stats},
    [ENG_LMDB] = {.name = "lmdb",
                  .open = lm_open,
                  .put = lm_put,
                  .commit = lm_commit,
                  .get = lm_get,
                  .close = lm_close,
                  .describe = lm_describe,
                  .stats = NULL},
    [ENG_LEVELDB] = {.name = "leveldb",
                     .open = ld_open,
                     .put = ld_put,
                     .commit = ld_commit,
                     .get = ld_get,
                     .close = ld_close,
                     .describe = ld_describe,
                     .stats = NULL},
    [ENG_ROCKSDB] = {.name = "rocksdb",
                     .open = rd_open,
                     .put = rd_put,
                     .commit = rd_commit,
                     .get = rd_get,
                     .close = rd_close,
                     .describe = rd_describe,
                     .stats = NULL},
};

/* ---- workloads ---- */

enum wl_store {
    WL_STORE_FRESH,   /* a new store */
    WL_STORE_FILLED,  /* the store a fill left (or a new one, filled untimed) */
    WL_STORE_DURABLE, /* a new store opened durable */
};

struct wl_def {
    const char *name;
    enum wl_store store;
    bool durable_ops; /* runs --durable-ops ops, else --keys */
    bool ack_latency; /* latency lasts until the covering commit returns */
};

static const struct wl_def wl_defs[WL_COUNT] = {
    [WL_FILLSEQ] = {.name = "fillseq", .store = WL_STORE_FRESH},
    [WL_FILLRANDOM] = {.name = "fillrandom", .store = WL_STORE_FRESH},
    [WL_READRANDOM] = {.name = "readrandom", .store = WL_STORE_FILLED},
    [WL_READMISSING] = {.name = "readmissing", .store = WL_STORE_FILLED},
    [WL_OVERWRITE] = {.name = "overwrite", .store = WL_STORE_FILLED},
    [WL_MIXED] = {.name = "mixed", .store = WL_STORE_FILLED},
    [WL_DURABLE] = {.name = "durable",
                    .store = WL_STORE_DURABLE,
                    .durable_ops = true,
                    .ack_latency = true},
    [WL_DURABLE1] = {.name = "durable1",
                     .store = WL_STORE_DURABLE,
                     .durable_ops = true,
                     .ack_latency = true},
};

struct result {
    bool ran;
    uint64_t ops;
    double secs;
    double ops_per_s;
    double p50_us, p99_us;
    double commit_us; /* mean time of one commit call */
    char note[96];
};

/* ringkv's memory after a fill. */
struct mem_report {
    bool ran;
    uint64_t keys;
    uint64_t keydir_bytes;
    long rss_kb_delta, anon_kb_delta;
};

struct bench {
    struct bench_cfg cfg;
    uint32_t *perm; /* fill order: a seeded permutation of [0, n_perm) */
    uint64_t n_perm;
    uint8_t *pool;    /* VALUE_POOL_SPAN + value_bytes random bytes */
    uint32_t *lat_ns; /* one latency per op of the running workload */
    uint64_t lat_cap;
    struct result res[WL_COUNT][ENG_COUNT];
    struct mem_report mem[WL_COUNT];
};

/* One workload's run on one engine. */
struct run {
    struct bench *b;
    const struct engine_ops *ops;
    void *h;
    enum wl_id wl;
    uint64_t n;     /* ops */
    uint32_t group; /* puts per commit */
    bool ack_latency;
    uint64_t rng;
    uint64_t *pend_i; /* ops of the open group (ack latency) */
    uint64_t *pend_t0;
    uint32_t n_pend;
    uint64_t commit_ns, commits;
    uint64_t misses, false_hits, bad_len;
};

struct op {
    bool put;
    uint64_t key_num; /* even: stored key; odd: a key never stored */
};

static struct op op_pick(struct run *r, uint64_t i)
{
    uint64_t keys = r->b->cfg.keys;
    switch (r->wl) {
    case WL_FILLSEQ:
        return (struct op){.put = true, .key_num = 2 * i};
    case WL_FILLRANDOM:
        return (struct op){.put = true, .key_num = 2 * (uint64_t)r->b->perm[i]};
    case WL_READRANDOM:
        return (struct op){.put = false, .key_num = 2 * rng_below(&r->rng, keys)};
    case WL_READMISSING:
        return (struct op){.put = false, .key_num = 2 * rng_below(&r->rng, keys) + 1};
    case WL_OVERWRITE:
        return (struct op){.put = true, .key_num = 2 * rng_below(&r->rng, keys)};
    case WL_MIXED: {
        bool put = (rng_next(&r->rng) & 1) != 0;
        return (struct op){.put = put, .key_num = 2 * rng_below(&r->rng, keys)};
    }
    case WL_DURABLE:
    case WL_DURABLE1:
        return (struct op){.put = true, .key_num = 2 * (uint64_t)r->b->perm[i % keys]};
    case WL_COUNT:
        break;
    }
    abort();
}

static const uint8_t *value_for(const struct bench *b, uint64_t key_num, uint64_t i)
{
    return b->pool + ((key_num * 0x9e3779b1u + i * 64) & (VALUE_POOL_SPAN - 1));
}

static inline void lat_store(struct bench *b, uint64_t i, uint64_t ns)
{
    b->lat_ns[i] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static void run_commit(struct run *r)
{
    uint64_t t0 = now_ns();
    if (r->ops->commit(r->h) != 0)
        bench_die("%s: %s: commit failed", r->ops->name, wl_defs[r->wl].name);
    uint64_t t = now_ns();
    r->commit_ns += t - t0;
    r->commits++;
    if (r->ack_latency) {
        for (uint32_t j = 0; j < r->n_pend; j++)
            lat_store(r->b, r->pend_i[j], t - r->pend_t0[j]);
    }
    r->n_pend = 0;
}

static void run_put(struct run *r, const char *key, const uint8_t *value, uint64_t i, uint64_t t0)
{
    if (r->ops->put(r->h, key, value, r->b->cfg.value_bytes) != 0)
        bench_die("%s: %s: put failed", r->ops->name, wl_defs[r->wl].name);
    r->pend_i[r->n_pend] = i;
    r->pend_t0[r->n_pend++] = t0;
    if (r->n_pend == r->group)
        run_commit(r);
}

static void run_get(struct run *r, const char *key, bool missing)
{
    size_t len = 0;
    int found = r->ops->get(r->h, key, &len);
    if (found < 0)
        bench_die("%s: %s: get failed", r->ops->name, wl_defs[r->wl].name);
    if (missing && found)
        r->false_hits++;
    else if (!missing && !found)
        r->misses++;
    else if (found && len != r->b->cfg.value_bytes)
        r->bad_len++;
}

static void run_one(struct run *r, uint64_t i)
{
    struct op op = op_pick(r, i);
    char key[KEY_BYTES];
    key_format(key, op.key_num);
    const uint8_t *value = value_for(r->b, op.key_num, i);
    uint64_t t0 = now_ns();
    if (op.put)
        run_put(r, key, value, i, t0);
    else
        run_get(r, key, (op.key_num & 1) != 0);
    uint64_t t1 = now_ns();
    if (!op.put || !r->ack_latency)
        lat_store(r->b, i, t1 - t0);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile, in permille, of the sorted lat[0..n); in µs. */
static double lat_percentile_us(const uint32_t *lat, uint64_t n, unsigned permille)
{
    uint64_t rank = (n * permille + 999) / 1000;
    return lat[rank ? rank - 1 : 0] / 1000.0;
}

static void run_result(struct run *r, uint64_t elapsed_ns, struct result *res)
{
    qsort(r->b->lat_ns, (size_t)r->n, sizeof *r->b->lat_ns, cmp_u32);
    *res = (struct result){
        .ran = true,
        .ops = r->n,
        .secs = elapsed_ns / 1e9,
        .ops_per_s = r->n / (elapsed_ns / 1e9),
        .p50_us = lat_percentile_us(r->b->lat_ns, r->n, 500),
        .p99_us = lat_percentile_us(r->b->lat_ns, r->n, 990),
        .commit_us = r->commits ? r->commit_ns / 1e3 / r->commits : 0,
    };
    if (r->misses || r->false_hits || r->bad_len)
        snprintf(res->note, sizeof res->note,
                 "WRONG: %" PRIu64 " misses, %" PRIu64 " false hits, %" PRIu64 " bad lengths",
                 r->misses, r->false_hits, r->bad_len);
}

static uint32_t wl_group(const struct bench_cfg *cfg, enum wl_id wl)
{
    return wl == WL_DURABLE1 ? 1 : wl == WL_DURABLE ? cfg->batch : GROUP_OPS;
}

/* Runs workload wl on the open store h; the result goes to *res. */
static void run_workload(struct bench *b, const struct engine_ops *ops, void *h, enum wl_id wl,
                         struct result *res)
{
    const struct wl_def *d = &wl_defs[wl];
    struct run r = {
        .b = b,
        .ops = ops,
        .h = h,
        .wl = wl,
        .n = d->durable_ops ? b->cfg.durable_ops : b->cfg.keys,
        .group = wl_group(&b->cfg, wl),
        .ack_latency = d->ack_latency,
        .rng = b->cfg.seed ^ (0x9e3779b97f4a7c15ull * (wl + 1u)),
    };
    r.pend_i = malloc(r.group * sizeof *r.pend_i);
    r.pend_t0 = malloc(r.group * sizeof *r.pend_t0);
    if (r.pend_i == NULL || r.pend_t0 == NULL)
        bench_die("out of memory");
    uint64_t t_start = now_ns();
    for (uint64_t i = 0; i < r.n; i++)
        run_one(&r, i);
    if (r.n_pend)
        run_commit(&r);
    uint64_t elapsed = now_ns() - t_start;
    run_result(&r, elapsed, res);
    free(r.pend_i);
    free(r.pend_t0);
}

/* ---- sessions: one engine's store across workloads ---- */

struct session {
    enum eng_id eng;
    const struct engine_ops *ops;
    void *h;
    char dir[PATH_MAX];
    bool filled;         /* holds every stored key, opened non-durable */
    struct rss rss_open; /* just before the store was opened */
};

static void session_close(struct session *s)
{
    if (s->h)
        s->ops->close(s->h);
    s->h = NULL;
    s->filled = false;
}

static void session_fresh(struct bench *b, struct session *s, bool durable)
{
    session_close(s);
    if (rm_tree(s->dir) != 0 || mkdir_p(s->dir) != 0)
        bench_die("cannot recreate %s: %s", s->dir, strerror(errno));
    fs_settle(s->dir);
    malloc_trim(0);
    rss_read(&s->rss_open);
    s->h = s->ops->open(&b->cfg, s->dir, durable);
    if (s->h == NULL)
        bench_die("%s: cannot open a store in %s", s->ops->name, s->dir);
}

/* Gets the store workload wl runs on; true if it had to be filled first. */
static bool session_prepare(struct bench *b, struct session *s, enum wl_id wl)
{
    enum wl_store need = wl_defs[wl].store;
    if (need == WL_STORE_FILLED && s->h && s->filled)
        return false;
    session_fresh(b, s, need == WL_STORE_DURABLE);
    if (need != WL_STORE_FILLED)
        return false;
    struct result unused;
    run_workload(b, s->ops, s->h, WL_FILLRANDOM, &unused);
    s->filled = true;
    return true;
}

static void mem_measure(struct bench *b, const struct session *s, enum wl_id wl)
{
    struct store_stats st;
    struct rss now;
    s->ops->stats(s->h, &st);
    rss_read(&now);
    b->mem[wl] = (struct mem_report){
        .ran = true,
        .keys = st.keys,
        .keydir_bytes = st.keydir_bytes,
        .rss_kb_delta = now.vm_kb - s->rss_open.vm_kb,
        .anon_kb_delta = now.anon_kb - s->rss_open.anon_kb,
    };
}

static void note_append(struct result *res, const char *text)
{
    size_t len = strlen(res->note);
    snprintf(res->note + len, sizeof res->note - len, "%s%s", len ? "; " : "", text);
}

/* ringkv: what merge did during the workload. */
static void note_merges(struct result *res, const struct store_stats *before,
                        const struct store_stats *after)
{
    char text[64];
    snprintf(text, sizeof text, "merges %" PRIu64 "%s", after->merges - before->merges,
             after->merge_running ? " (+1 running)" : "");
    note_append(res, text);
}

static void bench_workload(struct bench *b, struct session *s, enum wl_id wl)
{
    struct result *res = &b->res[wl][s->eng];
    bool prefilled = session_prepare(b, s, wl);
    struct store_stats st0, st1;
    if (s->ops->stats)
        s->ops->stats(s->h, &st0);
    run_workload(b, s->ops, s->h, wl, res);
    if (prefilled)
        note_append(res, "store prefilled untimed");
    if (s->ops->stats) {
        s->ops->stats(s->h, &st1);
        note_merges(res, &st0, &st1);
    }
    if (wl == WL_FILLSEQ || wl == WL_FILLRANDOM) {
        s->filled = true;
        if (s->ops->stats)
            mem_measure(b, s, wl);
    }
    if (wl_defs[wl].store == WL_STORE_DURABLE)
        s->filled = false;
    fprintf(stderr, "  %-8s %-12s %12.0f ops/s  p50 %8.2f us  p99 %9.2f us  commit %9.2f us  %s\n",
            s->ops->name, wl_defs[wl].name, res->ops_per_s, res->p50_us, res->p99_us,
            res->commit_us, res->note);
}

static void bench_engine(struct bench *b, enum eng_id eng)
{
    struct session s = {.eng = eng, .ops = &engines[eng]};
    if (snprintf(s.dir, sizeof s.dir, "%s/%s", b->cfg.dir, s.ops->name) >= (int)sizeof s.dir)
        bench_die("--dir is too long");
    for (int wl = 0; wl < WL_COUNT; wl++)
        if (b->cfg.wl_on[wl])
            bench_workload(b, &s, (enum wl_id)wl);
    session_close(&s);
    if (rm_tree(s.dir) != 0)
        fprintf(stderr, "storage-bench: cannot remove %s: %s\n", s.dir, strerror(errno));
}

/* ---- output ---- */

/* Cost of the two clock reads around an op (minimum of many tries). */
static uint64_t timer_overhead_ns(void)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 10000; i++) {
        uint64_t t0 = now_ns(), t1 = now_ns();
        if (t1 - t0 < best)
            best = t1 - t0;
    }
    return best;
}

static void print_machine(const struct bench_cfg *cfg)
{
    bench_print_machine(stdout, "storage-bench");
    printf("# keys %" PRIu64 " x %d-byte keys, %u-byte values, seed 0x%" PRIx64
           ", data under %s, timer %" PRIu64 " ns/op\n",
           cfg->open_test_keys ? cfg->open_test_keys : cfg->keys, KEY_BYTES, cfg->value_bytes,
           cfg->seed, cfg->dir, timer_overhead_ns());
}

static void print_setup(const struct bench_cfg *cfg)
{
    print_machine(cfg);
    printf("# group %u puts/commit; durable: --batch %u puts per durable commit, durable1: 1; "
           "%" PRIu64 " ops each\n",
           GROUP_OPS, cfg->batch, cfg->durable_ops);
    printf("# engines (non-durable workloads commit every %u puts, the same group for "
           "every engine):\n",
           GROUP_OPS);
    for (int e = 0; e < ENG_COUNT; e++)
        if (cfg->engine_on[e])
            engines[e].describe(cfg, stdout);
    printf("# keys: 16 digits; stored keys are 2i (i < keys), readmissing reads 2i+1 "
           "(between stored keys); values are random bytes\n"
           "# latency: per call (the put closing a group includes its commit); durable "
           "workloads: ack latency, put start to end of its durable commit. commit us: mean "
           "time of one commit call (a group of %u puts; durable: --batch puts or 1); for "
           "leveldb/rocksdb that is all the write work, the puts only fill a WriteBatch\n"
           "# xPEER: ringkv ops/s / PEER ops/s (> 1: ringkv is faster)\n",
           GROUP_OPS);
    fflush(stdout);
}

/* Width of the "x PEER" column. */
static int ratio_width(int eng)
{
    return (int)strlen(engines[eng].name) + 4;
}

static void print_table_header(const struct bench_cfg *cfg)
{
    printf("\n%-12s %-8s %12s %10s %10s %10s", "workload", "engine", "ops/s", "p50 us", "p99 us",
           "commit us");
    for (int e = 0; e < ENG_COUNT; e++) {
        if (e == ENG_RINGKV || !cfg->engine_on[e])
            continue;
        char label[32];
        snprintf(label, sizeof label, "x %s", engines[e].name);
        printf(" %*s", ratio_width(e), label);
    }
    printf("  notes\n");
}

static void print_row(const struct bench *b, enum wl_id wl, enum eng_id eng)
{
    const struct result *r = &b->res[wl][eng];
    const struct result *rk = &b->res[wl][ENG_RINGKV];
    printf("%-12s %-8s %12.0f %10.2f %10.2f", wl_defs[wl].name, engines[eng].name, r->ops_per_s,
           r->p50_us, r->p99_us);
    if (r->commit_us > 0)
        printf(" %10.2f", r->commit_us);
    else
        printf(" %10s", "-"); /* no puts, no commits */
    for (int e = 0; e < ENG_COUNT; e++) {
        if (e == ENG_RINGKV || !b->cfg.engine_on[e])
            continue;
        const struct result *peer = &b->res[wl][e];
        if (eng == ENG_RINGKV && rk->ran && peer->ran && peer->ops_per_s > 0)
            printf(" %*.2f", ratio_width(e), rk->ops_per_s / peer->ops_per_s);
        else
            printf(" %*s", ratio_width(e), "");
    }
    printf("  %s\n", r->note);
}

static void print_table(const struct bench *b)
{
    print_table_header(&b->cfg);
    for (int wl = 0; wl < WL_COUNT; wl++)
        for (int e = 0; e < ENG_COUNT; e++)
            if (b->res[wl][e].ran)
                print_row(b, (enum wl_id)wl, (enum eng_id)e);
}

static void print_memory(const struct bench *b)
{
    for (int wl = 0; wl < WL_COUNT; wl++) {
        const struct mem_report *m = &b->mem[wl];
        if (!m->ran || m->keys == 0)
            continue;
        double per_key = (double)m->keydir_bytes / m->keys;
        printf("# ringkv memory after %s (%" PRIu64 " keys): keydir %.1f bytes/key (%.1f "
               "beyond the %d key bytes); VmRSS delta %.1f bytes/key (RssAnon %.1f)\n",
               wl_defs[wl].name, m->keys, per_key, per_key - KEY_BYTES, KEY_BYTES,
               m->rss_kb_delta * 1024.0 / m->keys, m->anon_kb_delta * 1024.0 / m->keys);
    }
}

static void print_target(const struct bench *b)
{
    const struct result *d = &b->res[WL_DURABLE][ENG_RINGKV];
    const struct result *d1 = &b->res[WL_DURABLE1][ENG_RINGKV];
    if (!d->ran || !d1->ran || d1->ops_per_s <= 0)
        return;
    double ratio = d->ops_per_s / d1->ops_per_s;
    printf("# ringkv group commit: durable (batch %u) / durable1 = %.1fx (target >= %.0fx): "
           "%s\n",
           b->cfg.batch, ratio, DURABLE_TARGET, ratio >= DURABLE_TARGET ? "met" : "NOT met");
}

/* ---- --open-test: ringkv store_open from hints and by scanning ---- */

static void ot_fill(struct bench *b, const char *dir)
{
    struct store_options o;
    store_options_default(&o);
    o.sync = STORE_SYNC_NONE;
    struct store *s;
    struct rkv_error err = {.code = RKV_OK};
    if (store_open(dir, &o, &s, &err) != RKV_OK)
        bench_die("ringkv: open %s: %s", dir, err.msg);
    uint64_t n = b->cfg.open_test_keys, t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        char key[KEY_BYTES];
        key_format(key, 2 * (uint64_t)b->perm[i]);
        int rc = store_put(s, ringkv_partition(key), key, KEY_BYTES,
                           value_for(b, 2 * (uint64_t)b->perm[i], i), b->cfg.value_bytes, 0);
        if (rc == RKV_OK && (i + 1) % GROUP_OPS == 0)
            rc = store_commit(s);
        if (rc != RKV_OK)
            bench_die("ringkv: fill: %s", store_errmsg(s));
        if ((i + 1) % (n / 10 ? n / 10 : 1) == 0)
            fprintf(stderr, "  fill: %" PRIu64 " of %" PRIu64 " keys, %.1f s\n", i + 1, n,
                    (now_ns() - t0) / 1e9);
    }
    if (store_commit(s) != RKV_OK)
        bench_die("ringkv: fill: %s", store_errmsg(s));
    double secs = (now_ns() - t0) / 1e9;
    struct store_stats st;
    store_stats(s, &st);
    printf("# fill: %" PRIu64 " keys in %.1f s (%.0f ops/s), %u log files, %.1f MiB on disk, "
           "keydir %.1f bytes/key\n",
           n, secs, n / secs, st.files, st.disk_bytes / 1048576.0,
           (double)st.keydir_bytes / st.keys);
    fflush(stdout);
    if (store_close(s) != RKV_OK)
        bench_die("ringkv: close after fill failed");
}

/* store_merge only takes sealed logs, and the log a store was writing when
 * it closed is sealed only by the next open: open, merge, close. */
static void ot_merge(const char *dir)
{
    struct store *s;
    struct rkv_error err = {.code = RKV_OK};
    if (store_open(dir, NULL, &s, &err) != RKV_OK)
        bench_die("ringkv: open %s: %s", dir, err.msg);
    uint64_t t0 = now_ns();
    int rc = store_merge(s);
    if (rc == RKV_OK || rc == RKV_ERR_BUSY)
        rc = store_merge_wait(s);
    if (rc != RKV_OK)
        bench_die("ringkv: merge: %s (%s)", rkv_strerror(rc), store_errmsg(s));
    struct store_stats st;
    store_stats(s, &st);
    printf("# merge: %.1f s, merges %" PRIu64 ", %u log files, %.1f MiB on disk, %.1f MiB "
           "dead\n",
           (now_ns() - t0) / 1e9, st.merges, st.files, st.disk_bytes / 1048576.0,
           st.dead_bytes / 1048576.0);
    fflush(stdout);
    if (store_close(s) != RKV_OK)
        bench_die("ringkv: close after merge failed");
}

/* Times one store_open; returns its wall time in seconds. */
static double ot_open(const char *dir, bool ignore_hints, bool cold)
{
    if (cold)
        cache_evict(dir);
    malloc_trim(0);
    struct store_options o;
    store_options_default(&o);
    o.ignore_hints = ignore_hints;
    struct store *s;
    struct rkv_error err = {.code = RKV_OK};
    uint64_t t0 = now_ns();
    if (store_open(dir, &o, &s, &err) != RKV_OK)
        bench_die("ringkv: open %s: %s", dir, err.msg);
    double secs = (now_ns() - t0) / 1e9;
    const struct store_open_report *r = store_open_report(s);
    printf("open  %-5s %-6s %9.3f s   log_files %u, hint_files %u, records %" PRIu64
           ", keys %" PRIu64 ", report elapsed %.3f s\n",
           cold ? "cold" : "warm", ignore_hints ? "scan" : "hints", secs, r->log_files,
           r->hint_files, r->records, r->keys, r->elapsed_us / 1e6);
    fflush(stdout);
    if (store_close(s) != RKV_OK)
        bench_die("ringkv: close failed");
    return secs;
}

static void open_test(struct bench *b)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/open-test", b->cfg.dir) >= (int)sizeof dir)
        bench_die("--dir is too long");
    if (rm_tree(dir) != 0 || mkdir_p(dir) != 0)
        bench_die("cannot recreate %s: %s", dir, strerror(errno));
    print_machine(&b->cfg);
    printf("# open-test: ringkv, %" PRIu64 " keys filled in random order (sync none, commit "
           "every %u puts), merged so every log has a hint file\n",
           b->cfg.open_test_keys, GROUP_OPS);
    fflush(stdout);
    ot_fill(b, dir);
    ot_merge(dir);
    fs_settle(dir);
    double t[2][2]; /* [cold][scan] */
    for (int cold = 0; cold < 2; cold++)
        for (int scan = 0; scan < 2; scan++)
            t[cold][scan] = ot_open(dir, scan, cold);
    printf("# scan / hints: warm %.2fx, cold %.2fx\n", t[0][1] / t[0][0], t[1][1] / t[1][0]);
    if (rm_tree(dir) != 0)
        fprintf(stderr, "storage-bench: cannot remove %s: %s\n", dir, strerror(errno));
}

/* ---- command line ---- */

enum opt_id {
    OPT_KEYS = 256,
    OPT_VALUE,
    OPT_BATCH,
    OPT_ENGINES,
    OPT_WORKLOADS,
    OPT_DIR,
    OPT_DURABLE_OPS,
    OPT_SEED,
    OPT_OPEN_TEST,
    OPT_HELP,
};

static const struct option cli_options[] = {
    {.name = "keys", .has_arg = required_argument, .val = OPT_KEYS},
    {.name = "value", .has_arg = required_argument, .val = OPT_VALUE},
    {.name = "batch", .has_arg = required_argument, .val = OPT_BATCH},
    {.name = "engines", .has_arg = required_argument, .val = OPT_ENGINES},
    {.name = "workloads", .has_arg = required_argument, .val = OPT_WORKLOADS},
    {.name = "dir", .has_arg = required_argument, .val = OPT_DIR},
    {.name = "durable-ops", .has_arg = required_argument, .val = OPT_DURABLE_OPS},
    {.name = "seed", .has_arg = required_argument, .val = OPT_SEED},
    {.name = "open-test", .has_arg = required_argument, .val = OPT_OPEN_TEST},
    {.name = "help", .has_arg = no_argument, .val = OPT_HELP},
    {.name = NULL},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: storage-bench [options]\n"
            "  --keys N          keys to fill and ops per workload (default %llu)\n"
            "  --value N         value bytes (default %u)\n"
            "  --batch N         puts per durable commit in 'durable' (default %u)\n"
            "  --durable-ops N   ops of durable and durable1 (default %llu)\n"
            "  --engines LIST    ringkv,lmdb,leveldb,rocksdb (default all)\n"
            "  --workloads LIST  fillseq,fillrandom,readrandom,readmissing,overwrite,mixed,\n"
            "                    durable,durable1 (default all)\n"
            "  --dir DIR         data under DIR/<engine> (default %s)\n"
            "  --seed N          PRNG seed (default 0x%llx)\n"
            "  --open-test N     ringkv only: time store_open on N keys, hints vs scan\n",
            DEFAULT_KEYS, DEFAULT_VALUE_BYTES, DEFAULT_BATCH, DEFAULT_DURABLE_OPS, DEFAULT_DIR,
            DEFAULT_SEED);
}

static uint64_t parse_u64(const char *s, const char *opt, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end != '\0' || *s == '-' || v < min || v > max)
        bench_die("--%s: expected a number in %" PRIu64 "..%" PRIu64 ", got \"%s\"", opt, min, max,
                  s);
    return v;
}

static int engine_find(const char *name)
{
    for (int e = 0; e < ENG_COUNT; e++)
        if (strcmp(engines[e].name, name) == 0)
            return e;
    return -1;
}

static int wl_find(const char *name)
{
    for (int w = 0; w < WL_COUNT; w++)
        if (strcmp(wl_defs[w].name, name) == 0)
            return w;
    return -1;
}

/* Parses a comma-separated list of names into on[0..n). */
static void parse_list(const char *arg, const char *opt, int (*find)(const char *), bool *on, int n)
{
    char *copy = strdup(arg), *save = NULL;
    if (copy == NULL)
        bench_die("out of memory");
    memset(on, 0, (size_t)n * sizeof *on);
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int i = find(t);
        if (i < 0)
            bench_die("--%s: unknown name \"%s\"", opt, t);
        on[i] = true;
    }
    free(copy);
}

static void cfg_parse(struct bench_cfg *cfg, int argc, char **argv)
{
    int c;
    while ((c = getopt_long(argc, argv, "h", cli_options, NULL)) != -1) {
        switch (c) {
        case OPT_KEYS:
            cfg->keys = parse_u64(optarg, "keys", 1, KEYS_MAX);
            break;
        case OPT_VALUE:
            cfg->value_bytes = (uint32_t)parse_u64(optarg, "value", 1, 1u << 24);
            break;
        case OPT_BATCH:
            cfg->batch = (uint32_t)parse_u64(optarg, "batch", 1, BATCH_MAX);
            break;
        case OPT_DURABLE_OPS:
            cfg->durable_ops = parse_u64(optarg, "durable-ops", 1, KEYS_MAX);
            break;
        case OPT_ENGINES:
            parse_list(optarg, "engines", engine_find, cfg->engine_on, ENG_COUNT);
            break;
        case OPT_WORKLOADS:
            parse_list(optarg, "workloads", wl_find, cfg->wl_on, WL_COUNT);
            break;
        case OPT_DIR:
            cfg->dir = optarg;
            break;
        case OPT_SEED:
            cfg->seed = parse_u64(optarg, "seed", 0, UINT64_MAX);
            break;
        case OPT_OPEN_TEST:
            cfg->open_test_keys = parse_u64(optarg, "open-test", 1, UINT32_MAX);
            break;
        case OPT_HELP:
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc)
        bench_die("unexpected argument \"%s\" (see --help)", argv[optind]);
}

static void cfg_default(struct bench_cfg *cfg)
{
    *cfg = (struct bench_cfg){
        .keys = DEFAULT_KEYS,
        .value_bytes = DEFAULT_VALUE_BYTES,
        .batch = DEFAULT_BATCH,
        .durable_ops = DEFAULT_DURABLE_OPS,
        .seed = DEFAULT_SEED,
        .dir = DEFAULT_DIR,
    };
    for (int e = 0; e < ENG_COUNT; e++)
        cfg->engine_on[e] = true;
    for (int w = 0; w < WL_COUNT; w++)
        cfg->wl_on[w] = true;
}

/* ---- setup ---- */

static void bench_init(struct bench *b)
{
    uint64_t rng = b->cfg.seed;
    b->n_perm = b->cfg.open_test_keys ? b->cfg.open_test_keys : b->cfg.keys;
    b->perm = malloc(b->n_perm * sizeof *b->perm);
    b->pool = malloc((size_t)VALUE_POOL_SPAN + b->cfg.value_bytes);
    uint64_t ops = b->cfg.durable_ops > b->cfg.keys ? b->cfg.durable_ops : b->cfg.keys;
    b->lat_cap = b->cfg.open_test_keys ? 0 : ops;
    b->lat_ns = malloc((b->lat_cap ? b->lat_cap : 1) * sizeof *b->lat_ns);
    if (b->perm == NULL || b->pool == NULL || b->lat_ns == NULL)
        bench_die("out of memory");
    memset(b->lat_ns, 0, (b->lat_cap ? b->lat_cap : 1) * sizeof *b->lat_ns); /* fault it in now */
    for (size_t i = 0; i < (size_t)VALUE_POOL_SPAN + b->cfg.value_bytes; i++)
        b->pool[i] = (uint8_t)rng_next(&rng);
    for (uint64_t i = 0; i < b->n_perm; i++)
        b->perm[i] = (uint32_t)i;
    for (uint64_t i = b->n_perm - 1; i > 0; i--) { /* Fisher-Yates */
        uint64_t j = rng_below(&rng, i + 1);
        uint32_t t = b->perm[i];
        b->perm[i] = b->perm[j];
        b->perm[j] = t;
    }
}

static void bench_free(struct bench *b)
{
    free(b->perm);
    free(b->pool);
    free(b->lat_ns);
}

int main(int argc, char **argv)
{
    struct bench *b = calloc(1, sizeof *b);
    if (b == NULL)
        bench_die("out of memory");
    cfg_default(&b->cfg);
    cfg_parse(&b->cfg, argc, argv);
    bench_init(b);
    if (b->cfg.open_test_keys) {
        open_test(b);
    } else {
        print_setup(&b->cfg);
        for (int e = 0; e < ENG_COUNT; e++)
            if (b->cfg.engine_on[e])
                bench_engine(b, (enum eng_id)e);
        print_table(b);
        print_memory(b);
        print_target(b);
    }
    bench_free(b);
    free(b);
    return 0;
}
