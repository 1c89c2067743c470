/*
 * store_int.h: storage engine internals shared by its .c files and tests.
 *
 * ## Data directory
 *
 *   LOCK                 pid of the owner; flock'ed while open, empty after
 *                        a clean close
 *   IDENT                the store's secret, which keys the record checksums
 *   0000000007.log       log file 7 (ids grow and are never reused; merge
 *                        outputs take ids after the active log's, so the
 *                        active log is the highest only until a merge)
 *   0000000007.hint      hint file of log 7 (merge outputs only)
 *   0000000009.log.merging, .hint.merging   merge outputs not yet committed
 *   MERGE                merge commit marker (present only mid-switch)
 *   MERGE.tmp            marker being written
 *
 * ## Identity (IDENT), written once when the store is created
 *
 *   0  8  magic "RKVIDNT1"
 *   8  8  secret     random; seeds both record checksums
 *  16  8  checksum   XXH3-64, seed IDENT_SEED, of bytes 0..16
 *
 * Written as IDENT.tmp, synced, renamed. A store with logs but no readable
 * IDENT cannot verify its records and refuses to open.
 *
 * ## Log record (all integers little-endian)
 *
 *   off  len  field
 *     0    8  checksum   XXH3-64, seed RECORD_SEED ^ secret, of bytes 8 .. end
 *     8    4  hcheck     low 32 bits of XXH3-64, seed HEADER_SEED ^ secret, of
 *                        bytes 12 .. 38
 *    12    8  seq        store-wide sequence number, unique per write,
 *                         1..STORE_SEQ_MAX
 *    20    8  expiry_ms  absolute ms since the epoch; 0 = never
 *    28    4  value_len  0 for a tombstone
 *    32    2  key_len
 *    34    2  partition
 *    36    1  flags      bit 0: tombstone; other bits zero
 *    37    1  format     RECORD_FORMAT (2)
 *    38       key bytes, then value bytes
 *
 * A record is valid if its format and flags are known, its header check
 * matches, its seq is at most STORE_SEQ_MAX, its lengths are within limits
 * and inside the file, and the checksum matches. Recovery keeps, for every
 * key, the valid record with the highest seq. The checksums are keyed so
 * that record-shaped bytes in a stored value never pass (record.c).
 *
 * ## Hint file (describes one log file written by merge)
 *
 *   header  0  8  magic "RKVHINT1"
 *   entries, each:
 *           0  8  seq
 *           8  8  expiry_ms
 *          16  4  offset of the record in the log
 *          20  4  value_len
 *          24  2  key_len
 *          26  2  partition
 *          28  1  flags (always 0: merge writes no tombstones)
 *          29     key bytes
 *   trailer 0  8  log_bytes  size of the log file described
 *           8  8  entries    entry count
 *          16  8  checksum   XXH3-64, seed HINT_SEED, of every byte before it
 *
 * A hint file is used only if its checksum matches and log_bytes equals the
 * log file's size; otherwise the log is scanned.
 *
 * ## Merge marker (MERGE)
 *
 *   0  8  magic "RKVMERG1"
 *   8  4  n_inputs
 *  12  4  n_outputs
 *  16     n_inputs u32 log ids to delete, then n_outputs u32 ids to rename
 *         from .merging to their final names
 *  ..  8  checksum XXH3-64, seed MARKER_SEED, of every byte before it
 *
 * Written as MERGE.tmp, synced, renamed: its presence is the commit point.
 */
#ifndef RKV_STORE_INT_H
#define RKV_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "storage/storage.h"

#define RECORD_HDR_BYTES 38
#define RECORD_FORMAT 2
#define RECORD_FLAG_TOMB 0x01
/* Sequence numbers stay below bit 63, which recovery uses to mark
 * tombstones in the keydir (KD_TOMB). */
#define STORE_SEQ_MAX ((1ull << 63) - 1)
#define RECORD_SEED 0x72696e676b762d72ull /* "ringkv-r" */
#define HEADER_SEED 0x72696e676b762d48ull /* "ringkv-H" */
#define IDENT_SEED 0x72696e676b762d69ull  /* "ringkv-i" */
#define IDENT_MAGIC "RKVIDNT1"
#define IDENT_BYTES 24
#define HINT_SEED 0x72696e676b762d68ull   /* "ringkv-h" */
#define MARKER_SEED 0x72696e676b762d6dull /* "ringkv-m" */
#define HINT_MAGIC "RKVHINT1"
#define HINT_HDR_BYTES 8
#define HINT_ENTRY_BYTES 29
#define HINT_TRAILER_BYTES 24
#define MARKER_MAGIC "RKVMERG1"
#define MARKER_IDS_MAX 65536u /* files one merge may name */
#define STORE_PATH_BYTES 4096
#define STORE_FILE_NAME_BYTES 32
/* Log file ids are 1..STORE_FILE_ID_MAX: UINT32_MAX is KD_FREE, the
 * keydir's mark of a free entry, and the name after it would wrap to 0. */
#define STORE_FILE_ID_MAX (UINT32_MAX - 1)

/* ---- records (record.c) ---- */

struct record {
    uint64_t seq;
    uint64_t expiry_ms;
    uint32_t value_len;
    uint16_t key_len;
    uint16_t partition;
    uint8_t flags;
    const uint8_t *key;   /* points into the bytes parsed */
    const uint8_t *value;
};

static inline size_t record_bytes(size_t key_len, size_t value_len)
{
    return RECORD_HDR_BYTES + key_len + value_len;
}

/* The checksum seeds of one store, from its secret. */
struct record_keys {
    uint64_t record;
    uint64_t header;
};
void record_keys_init(struct record_keys *k, uint64_t secret);

/* Writes the record (header, key, value, checksums) to dst, which has
 * record_bytes(key_len, value_len) bytes. */
void record_encode(uint8_t *dst, const struct record *r, const struct record_keys *k);

/* Computes both checksums of the record at p, whose other header fields,
 * key and value are in place. */
void record_seal(uint8_t *p, const struct record_keys *k);

/* Parses the record at p (avail bytes to the end of the file). Returns true
 * and fills r if it is valid (see above). */
bool record_parse(const uint8_t *p, size_t avail, const struct record_keys *k, struct record *r);

/* Scans a whole log image: calls fn for each valid record with its offset,
 * skips damaged regions, and reports where a torn tail starts. */
struct scan_result {
    uint64_t records;
    uint64_t body_checks; /* full-record checksums computed: the scan's work */
    uint64_t bad_records;
    uint64_t bad_bytes;
    uint64_t valid_end; /* bytes from here to the end are garbage: truncate */
};
typedef int scan_fn(void *ctx, const struct record *r, uint32_t offset);
int record_scan(const uint8_t *data, uint64_t len, const struct record_keys *k, scan_fn *fn,
                void *ctx, struct scan_result *res);

/* ---- keydir (keydir.c) ---- */

#define KD_TOMB (1ull << 63)    /* in kd_entry.seq: a tombstone (recovery only) */
#define KD_FREE UINT32_MAX      /* in kd_entry.file_id: unused entry */
#define KD_PART_KEYS_MAX 0xFFFFFEu /* keys one partition can hold (24-bit slot entries) */

/* 32 bytes per key, plus the key in the partition's arena (2-byte length
 * prefix) and a 4-byte slot (8-bit hash tag, 24-bit entry number) in the
 * index at 50-75% load. */
struct kd_entry {
    uint64_t seq;        /* KD_TOMB may be or'ed in during recovery */
    uint64_t expiry_ms;
    uint32_t file_id;    /* KD_FREE: on the free list, next free in offset */
    uint32_t offset;
    uint32_t value_len;
    uint32_t key_off;    /* into kd_part.arena */
};

struct kd_part {
    struct kd_entry *entries;
    uint32_t n_entries;   /* used, including free ones */
    uint32_t cap_entries;
    uint32_t free_head;   /* index + 1 of the first free entry; 0: none */
    uint32_t n_live;
    uint32_t *slots;      /* entry index + 1; 0: empty. Linear probing. */
    uint32_t n_slots;
    uint8_t *arena;       /* keys: u16 length, then bytes */
    uint32_t arena_len;
    uint32_t arena_cap;
    uint32_t arena_garbage;
};

struct keydir {
    struct kd_part ***pages; /* 256 pages of 256 partitions, NULL until used */
    uint64_t n_live;
    uint64_t bytes;         /* heap bytes held */
};

int keydir_init(struct keydir *kd);
void keydir_free(struct keydir *kd);
uint64_t keydir_hash(const void *key, size_t key_len);
/* Live keys of one partition. */
uint32_t keydir_part_count(const struct keydir *kd, uint16_t part);
/* The entry for key, or NULL. The pointer is valid until the next change. */
struct kd_entry *keydir_find(struct keydir *kd, uint16_t part, const void *key,
                             size_t key_len, uint64_t hash);
/* The entry for key, created (zeroed, *created = true) if missing. NULL if
 * out of memory. */
struct kd_entry *keydir_upsert(struct keydir *kd, uint16_t part, const void *key,
                               size_t key_len, uint64_t hash, bool *created);
void keydir_remove(struct keydir *kd, uint16_t part, struct kd_entry *e);
/* The key bytes of e. */
const uint8_t *keydir_key(const struct keydir *kd, uint16_t part, const struct kd_entry *e,
                          uint16_t *key_len);
/* The live entry at index >= *pos in part, advancing *pos past it; NULL at end. */
struct kd_entry *keydir_next(struct keydir *kd, uint16_t part, uint32_t *pos);
/* Calls fn for every live entry of every partition, in partition order; fn
 * may remove the entry it is given (keydir_remove) and change nothing else.
 * A non-zero return of fn stops the walk and is returned; else 0. */
typedef int keydir_visit_fn(void *ctx, uint16_t part, struct kd_entry *e);
int keydir_each(struct keydir *kd, keydir_visit_fn *fn, void *ctx);
/* Removes every live entry for which pred(ctx, e) is true, in every
 * partition; returns how many. pred must not change the keydir. */
typedef bool keydir_pred(void *ctx, const struct kd_entry *e);
uint64_t keydir_remove_if(struct keydir *kd, keydir_pred *pred, void *ctx);
/* Checks every structural invariant; for tests. */
bool keydir_invariants_ok(const struct keydir *kd);

/* ---- files and the handle ---- */

struct store_file {
    uint32_t id;
    int fd;
    const uint8_t *map;  /* NULL if reads use pread */
    uint64_t map_len;
    uint64_t size;       /* bytes in the file (active: flushed + buffered) */
    uint64_t dead;       /* bytes of superseded, deleted or damaged records */
    bool sealed;         /* no more writes, all records committed */
    bool dirty;          /* written since its last fdatasync (owner thread) */
};

struct batch_op {
    uint64_t hash;
    uint64_t seq;
    uint64_t expiry_ms;
    uint32_t file_id;
    uint32_t offset;
    uint32_t value_len;
    uint32_t key_off;  /* into batch.keys */
    uint16_t key_len;
    uint16_t partition;
    bool tomb;
};

/* The open batch: ops since the last commit, indexed by key for reads. */
struct batch {
    struct batch_op *ops;
    size_t n_ops, cap_ops;
    struct rkv_buf keys;
    uint32_t *index;    /* op index + 1, linear probing, power-of-two size */
    size_t index_mask;
    uint32_t start_file_id;  /* where the batch began */
    uint64_t start_offset;
    int error;               /* a write failed: the batch was rolled back */
};

struct store {
    char *dir;
    uint64_t secret;         /* from IDENT */
    struct record_keys keys; /* record checksum seeds, from secret */
    struct store_options opt;
    const struct store_fileops *ops;
    int lock_fd;
    struct store_open_report report;
    char errmsg[RKV_ERROR_MSG_BYTES];
    int failed;              /* sticky: RKV_OK or the error that failed it */

    /* Guarded by mu: shared with the merge thread. */
    pthread_mutex_t mu;
    struct keydir kd;
    struct store_file *files; /* sorted by id */
    size_t n_files, cap_files;
    uint32_t next_file_id;
    struct store_file *retired; /* unlinked by merge; closed by the owner thread */
    size_t n_retired, cap_retired;
    atomic_bool have_retired;

    /* Owner thread only. */
    uint32_t active_id;
    int active_fd;
    uint64_t active_size;    /* flushed + buffered bytes of the active file */
    uint64_t next_seq;
    uint8_t *wbuf;           /* unflushed tail of the active file */
    size_t wbuf_len;
    uint64_t wbuf_off;       /* file offset of wbuf[0] */
    struct batch batch;
    struct rkv_buf scratch;  /* pread target, oversized records */
    struct rkv_buf listkey;  /* store_list's copy of the current key */
    uint64_t unsynced_bytes;
    uint64_t last_sync_ms;    /* STORE_SYNC_INTERVAL: when (write.c's sync clock) */

    /* Merge thread. */
    pthread_t merge_thread;
    bool merge_thread_started;
    pthread_cond_t merge_cv;      /* wakes the merge thread */
    pthread_cond_t merge_done_cv; /* wakes store_merge_wait */
    bool merge_stop, merge_requested, merge_running;
    bool merge_disabled;          /* a failure after commit: reopen to finish */
    int merge_last_error;
    uint64_t merges;
    uint64_t merge_bytes_reclaimed;

    /* Sync thread (syncer.c), for store_commit_async; its state is under mu. */
    pthread_t sync_thread;
    bool sync_thread_started;
    pthread_cond_t sync_cv;       /* wakes the sync thread */
    pthread_cond_t sync_idle_cv;  /* sync_busy cleared */
    bool sync_stop;
    bool sync_busy;               /* it holds fd numbers of table files */
    uint64_t sync_asked;          /* the highest ticket handed to it */
    uint64_t sync_done;           /* the highest ticket durable */
    int sync_error;               /* sticky: a failed fdatasync */
    int sync_efd;                 /* eventfd written after each round; -1 */
};

/* syncer.c. store_sync_quiesce: caller holds mu; returns once the sync
 * thread holds no file descriptor. */
int store_sync_start(struct store *s);
void store_sync_stop(struct store *s);
void store_sync_quiesce(struct store *s);
/* write.c: store_commit without any fdatasync. */
int store_commit_nosync(struct store *s);

/* Formats s->errmsg and returns code. */
int store_fail(struct store *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Builds dir/name into out (STORE_PATH_BYTES). */
void store_path(const struct store *s, char *out, const char *name);
/* Builds the path of log id's file with suffix (".log", ".hint",
 * ".log.merging", ...) into out (STORE_PATH_BYTES): dir/0000000007.log. */
void store_log_path(const struct store *s, char *out, uint32_t id, const char *suffix);
/* Sorts n log file ids ascending. */
void store_ids_sort(uint32_t *ids, size_t n);
/* The file with this id, or NULL. Caller holds mu (or is the owner thread
 * and only reads). */
struct store_file *store_file_find(struct store *s, uint32_t id);
/* Adds f to the sorted table. Caller holds mu. */
int store_file_add(struct store *s, const struct store_file *f);
/* Maps f (if the fileops can) to cover len bytes. */
void store_file_map(struct store *s, struct store_file *f, uint64_t len);
void store_file_release(struct store *s, struct store_file *f);
/* Full-loop pwrite/pread through the fileops; 0 or -errno. */
int store_write_all(struct store *s, int fd, const void *buf, size_t len, uint64_t off);
int store_read_all(struct store *s, int fd, void *buf, size_t len, uint64_t off);
/* Reads a whole file into a view: the map if there is one, else *copy. */
int store_file_view(struct store *s, struct store_file *f, struct rkv_buf *copy,
                    const uint8_t **data);
uint64_t store_now_ms(const struct store *s);
/* Takes the next log file id into *id; RKV_ERR_TOOBIG (and nothing taken)
 * once STORE_FILE_ID_MAX is used. Caller holds mu or is alone with s. */
int store_take_file_id(struct store *s, uint32_t *id);

/* invariants.c: checks the handle's invariants (file table, active log,
 * keydir entries against the files, the open batch and its index; see the
 * file) under mu. For tests, from the owner thread, after each step. On
 * failure *why (if why is not NULL) names the broken invariant; on success
 * it is set to NULL. */
bool store_invariants_ok(struct store *s, const char **why);

/* write.c: the newest op of the open batch for key, or NULL. */
const struct batch_op *batch_find(struct store *s, uint16_t partition, const void *key,
                                  size_t key_len, uint64_t hash);
/* write.c: creates log id, syncs the directory, adds it to the table. */
int store_create_log(struct store *s, uint32_t id, int *fd_out);

/* recover.c */
/* Reads IDENT, or writes a new one if the directory holds no logs. */
int store_ident(struct store *s, struct rkv_error *err);
/* The bytes of an IDENT file holding secret (tests build stores by hand). */
void store_ident_encode(uint64_t secret, uint8_t out[IDENT_BYTES]);
int store_recover(struct store *s, struct rkv_error *err);
int store_lock_acquire(struct store *s, struct rkv_error *err);
void store_lock_release(struct store *s);

/* merge.c */
int merge_thread_start(struct store *s);
void merge_thread_stop(struct store *s);
void merge_maybe_trigger(struct store *s);
void merge_reap_retired(struct store *s);
int merge_finish_marker(struct store *s, bool *completed, struct rkv_error *err);

/* hint.c. A hint_writer holds an XXH3 state that needs 64-byte alignment:
 * keep it on the stack or in static storage, not in rkv_malloc memory. */
struct hint_writer {
    struct store *s;
    int fd;
    uint64_t off;
    uint64_t entries;
    struct rkv_buf buf;
    XXH3_state_t xxh;
};
int hint_writer_open(struct hint_writer *w, struct store *s, const char *path);
int hint_writer_add(struct hint_writer *w, const struct record *r, uint32_t offset);
int hint_writer_finish(struct hint_writer *w, uint64_t log_bytes);
void hint_writer_close(struct hint_writer *w);
typedef int hint_fn(void *ctx, const struct record *r, uint32_t offset);
/* Loads a hint file; RKV_ERR_CORRUPT if it is invalid or does not describe
 * a log of log_bytes bytes (the caller then scans the log). fn is called
 * only after the whole file has been verified. */
int hint_load(struct store *s, const char *path, uint64_t log_bytes, hint_fn *fn, void *ctx,
              uint64_t *entries);

#endif
