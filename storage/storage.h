/*
 * storage.h: the ringkv storage engine, a bitcask.
 *
 * A store is one data directory holding append-only log files and an
 * in-memory keydir that maps every key to the place of its newest record.
 * Values are opaque bytes: ringkv stores encoded sibling sets in them, the
 * engine never looks inside. Keys live in partitions (a u16 chosen by the
 * caller, the ring partition in ringkvd) so that one partition can be listed
 * without touching the others.
 *
 * Writes and batches. store_put and store_del append to the active log and
 * are visible to store_get at once, but they belong to the open batch until
 * store_commit, which makes the whole batch durable according to the sync
 * policy and only then lets the keydir (and store_list, and merge) see it.
 * ringkvd commits once per event-loop turn: that is its group commit. If a
 * write fails (no space, I/O error), the open batch is rolled back as a
 * whole: every later put/del fails with the same error until store_commit
 * reports it, and nothing of the batch remains visible or on disk. If an
 * fdatasync fails, nothing is known about what reached the disk: the handle
 * becomes failed and refuses writes (RKV_ERR_FAILED) until it is reopened.
 * Batches are atomic with respect to errors, not to crashes: after a crash a
 * batch that was not committed may be partly present.
 *
 * Durability (enum store_sync):
 *   STORE_SYNC_ALWAYS    store_commit returns after one fdatasync covering
 *                        every write of the batch (group commit).
 *   STORE_SYNC_INTERVAL  store_commit writes to the OS; an fdatasync runs at
 *                        most every sync_interval_ms, from store_commit or
 *                        store_tick. A power loss can lose that window.
 *   STORE_SYNC_NONE      data reaches the OS at each commit and the disk when
 *                        the OS decides. A process crash loses nothing that
 *                        was committed; a power loss can lose anything.
 *
 * Merge. A background thread rewrites the sealed (no longer written) log
 * files without dead, deleted or expired records, and writes a hint file
 * beside each output so the next open need not scan logs. It starts when
 * dead bytes or the count of sealed files pass their thresholds, or on
 * store_merge. Reads and writes go on meanwhile; the switch to the new files
 * is committed by one rename and is crash-safe at every step.
 *
 * Threads. A store handle is used by one thread at a time (ringkvd's event
 * loop); the engine's own merge thread synchronises with it internally.
 * Different handles are independent. Two handles never share a directory:
 * a LOCK file enforces it across processes.
 *
 * Files. A file-operations table (struct store_fileops) carries every disk
 * access, so tests can inject errors, short writes and power loss.
 * The byte formats of records, hint files and the merge marker are the
 * offset tables in storage/store_int.h and docs/storage.md.
 */
#ifndef RKV_STORAGE_H
#define RKV_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/err.h"

struct store;

/*
 * The disk. Every function returns 0 (or a count) on success and a negative
 * errno on failure, like the kernel. All are called from the store's thread
 * and from its merge thread, so they must be thread-safe.
 */
struct store_fileops {
    void *ctx;
    /* Opens path (flags as open(2)); returns an fd >= 0. */
    int (*open)(void *ctx, const char *path, int flags, unsigned mode);
    int (*close)(void *ctx, int fd);
    /* May transfer fewer bytes than asked; the engine loops. */
    ssize_t (*pread)(void *ctx, int fd, void *buf, size_t len, uint64_t off);
    ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t len, uint64_t off);
    int (*fdatasync)(void *ctx, int fd);
    int (*ftruncate)(void *ctx, int fd, uint64_t len);
    int (*fsize)(void *ctx, int fd, uint64_t *size);
    int (*rename)(void *ctx, const char *from, const char *to);
    int (*unlink)(void *ctx, const char *path);
    /* Creates dir if missing (one level); 0 if it exists. */
    int (*mkdir)(void *ctx, const char *dir);
    /* Makes the directory's entries (creates, renames, unlinks) durable. */
    int (*sync_dir)(void *ctx, const char *dir);
    /* Calls fn for every entry name except . and ..; stops early if fn != 0. */
    int (*list_dir)(void *ctx, const char *dir, int (*fn)(void *arg, const char *name),
                    void *arg);
    /* Takes an exclusive advisory lock on fd without waiting; -EWOULDBLOCK if
     * another process holds it. Released when fd is closed. */
    int (*lock)(void *ctx, int fd);
    /* Optional (may be NULL): maps len bytes of fd read-only. Reads then copy
     * from the map instead of calling pread. Returns NULL on failure. */
    const void *(*map)(void *ctx, int fd, uint64_t len);
    void (*unmap)(void *ctx, const void *addr, uint64_t len);
};

/* The real disk: POSIX calls, mmap reads. Never NULL, never freed. */
const struct store_fileops *store_fileops_posix(void);

enum store_sync {
    STORE_SYNC_ALWAYS = 0,
    STORE_SYNC_INTERVAL = 1,
    STORE_SYNC_NONE = 2,
};

/* Parses "always", "interval", "none"; -1 if unknown. */
int store_sync_parse(const char *name);
const char *store_sync_name(enum store_sync sync);

/* Fill with store_options_default, then change what you need. */
struct store_options {
    enum store_sync sync;
    uint32_t sync_interval_ms;     /* STORE_SYNC_INTERVAL only; default 1000 */
    uint64_t file_bytes_max;       /* rotate the active log past this; default 128 MiB */
    uint32_t write_buffer_bytes;   /* appends are gathered here; default 256 KiB */
    /* A put or delete past this many ops commits the batch first; if that
     * commit fails, the batch is rolled back as after a failed write (see
     * above). Default 65536. */
    uint32_t batch_ops_max;
    uint32_t key_bytes_max;        /* default and ceiling RKV_KEY_BYTES_MAX */
    uint32_t value_bytes_max;      /* default and ceiling RKV_VALUE_BYTES_MAX */
    /* Merge triggers, checked at every commit. */
    bool merge_auto;               /* default true; false: only store_merge starts one */
    uint32_t merge_dead_percent;   /* dead share of sealed bytes; default 40 */
    uint64_t merge_dead_bytes_min; /* and at least this many dead bytes; default 64 MiB */
    uint32_t merge_files_max;      /* or this many sealed files; default 16 */
    /* A LOCK left by a dead process: false (default) makes store_open fail
     * with RKV_ERR_STALELOCK naming the pid; true takes it over and logs it. */
    bool break_stale_lock;
    /* Ignore hint files and scan every log (for tests and repair). */
    bool ignore_hints;
    /* NULL means store_fileops_posix(). Borrowed: must outlive the store. */
    const struct store_fileops *fileops;
    /* Wall clock in ms since the epoch, for expiry; when set, it also times
     * STORE_SYNC_INTERVAL (only its differences count), so that tests can
     * move time by hand. NULL: the real clocks (CLOCK_REALTIME for expiry,
     * the monotonic clock for sync intervals). */
    uint64_t (*now_ms)(void *ctx);
    void *now_ctx;
};

void store_options_default(struct store_options *opt);

/* What store_open found. */
struct store_open_report {
    uint32_t log_files;           /* log files loaded */
    uint32_t hint_files;          /* of which loaded from a valid hint file */
    uint32_t hint_files_rejected; /* hint files present but invalid or stale */
    uint64_t records;             /* records read (logs) or entries (hints) */
    uint64_t keys;                /* live keys after recovery */
    uint64_t bytes_truncated;     /* torn or garbage tails cut off */
    uint64_t bad_records;         /* damaged regions skipped mid-file */
    uint64_t bad_bytes;           /* bytes in those regions */
    bool merge_completed;         /* a committed merge was finished at open */
    int stale_lock_pid;           /* a dead process's lock was taken over (0: none) */
    uint64_t elapsed_us;
};

struct store_stats {
    uint64_t keys;              /* live keys in the keydir (expired ones included
                                   until merge drops them) */
    uint32_t files;             /* log files, active included */
    uint64_t disk_bytes;        /* bytes in log files */
    uint64_t dead_bytes;        /* of which superseded, deleted or damaged */
    uint64_t keydir_bytes;      /* memory held by the keydir */
    uint64_t batch_ops;         /* ops in the open batch */
    uint64_t unsynced_bytes;    /* committed but not yet fdatasync'ed */
    uint64_t merges;            /* merges completed since open */
    uint64_t merge_bytes_reclaimed;
    bool merge_running;
    int merge_last_error;       /* RKV_OK or the code of the last failed merge */
    bool failed;                /* the handle is failed (see store_errmsg) */
};

/* Metadata of a stored value. */
struct store_meta {
    uint64_t seq;        /* store-wide sequence number of the record */
    uint64_t expiry_ms;  /* absolute, ms since the epoch; 0: never */
    uint32_t value_len;
};

/*
 * Opens (creating if needed) the store in dir. On success *out is a handle
 * to close with store_close. On failure *out is NULL and err (may be NULL)
 * says what failed, e.g. RKV_ERR_LOCKED ("held by pid 123"),
 * RKV_ERR_STALELOCK, RKV_ERR_CORRUPT (an unreadable merge marker),
 * RKV_ERR_IO, RKV_ERR_NOMEM, RKV_ERR_INVAL (bad options), RKV_ERR_TOOBIG
 * (a log named with the last file id there can be). Damaged log
 * records are not an error: they are skipped or cut off and counted in the
 * report (store_open_report).
 */
int store_open(const char *dir, const struct store_options *opt, struct store **out,
               struct rkv_error *err);

/*
 * Commits the open batch (like store_commit), stops and waits for a running
 * merge (which is abandoned, losing nothing), syncs, and frees everything.
 * NULL is a no-op. Returns the commit's result: RKV_OK if everything written
 * is durable.
 */
int store_close(struct store *s);

/* The report of what store_open found; valid until store_close. */
const struct store_open_report *store_open_report(const struct store *s);

/* A message for the last error of a call on s (never NULL). */
const char *store_errmsg(const struct store *s);

/*
 * Adds a put to the open batch. key and value are copied; a key or value
 * of length 0 may be NULL (here and in every call that takes a key).
 * expiry_ms is an absolute time (ms since the epoch) after which the key
 * reads as absent; 0 means never. Errors: RKV_ERR_TOOBIG (key or value over
 * its limit, nothing written; or, only in a damaged or hand-made directory,
 * sequence numbers or log file ids used up), RKV_ERR_NOSPC / RKV_ERR_IO
 * (the batch was rolled back), RKV_ERR_ABORTED (an earlier error rolled the
 * batch back; call store_commit), RKV_ERR_FAILED, RKV_ERR_NOMEM.
 */
int store_put(struct store *s, uint16_t partition, const void *key, size_t key_len,
              const void *value, size_t value_len, uint64_t expiry_ms);

/*
 * Adds a delete to the open batch. RKV_ERR_NOTFOUND if the key has no
 * value (nothing is written); otherwise as store_put.
 */
int store_del(struct store *s, uint16_t partition, const void *key, size_t key_len);

/*
 * Reads the newest value of key, including writes of the open batch. The
 * value is copied into *value (replacing its contents); meta may be NULL.
 * Errors: RKV_ERR_NOTFOUND (absent, deleted or expired), RKV_ERR_CORRUPT
 * (the record fails its checksum: never returned as data), RKV_ERR_IO,
 * RKV_ERR_NOMEM.
 */
int store_get(struct store *s, uint16_t partition, const void *key, size_t key_len,
              struct rkv_buf *value, struct store_meta *meta);

/*
 * Ends the open batch: writes it out and syncs it according to the policy.
 * RKV_OK means every put and delete since the last commit is durable (as
 * the policy defines it). Errors: the error that rolled the batch back
 * (reported once, then the store accepts writes again), RKV_ERR_IO with the
 * handle now failed (fdatasync failed), RKV_ERR_FAILED.
 */
int store_commit(struct store *s);

/* Commits, then fdatasyncs whatever the policy. */
int store_sync(struct store *s);

/*
 * Pipelined durability: the fdatasync of a commit runs on the store's own
 * sync thread while the caller goes on (ringkvd acknowledges a turn's
 * writes once they are durable and meanwhile serves the next turn).
 *
 * store_commit_async ends the batch like store_commit, except that it does
 * not sync, whatever the policy: the batch is written to the OS and visible
 * to store_get at once, and *ticket names it. It is durable once
 * store_synced reports a ticket at least as high. Tickets only grow; a
 * commit that wrote nothing gets the current ticket. store_sync_fd is an
 * eventfd that becomes readable after each round of the sync thread (it is
 * started by the first store_commit_async) and stays readable until
 * store_sync_fd_clear reads it clear (one syscall); store_synced only takes
 * a lock, so it is cheap to ask after every commit.
 *
 * store_synced: the highest durable ticket in *ticket; RKV_ERR_FAILED once
 * an fdatasync of the thread has failed (no later ticket will ever be
 * durable, and the store fails at its next commit). Reads may see writes
 * that are not durable yet: a crash before their ticket can lose them.
 */
int store_commit_async(struct store *s, uint64_t *ticket);
int store_synced(struct store *s, uint64_t *ticket);
int store_sync_fd(const struct store *s);
void store_sync_fd_clear(struct store *s);

/* For STORE_SYNC_INTERVAL: runs the fdatasync if one is due. Cheap. */
int store_tick(struct store *s);

/*
 * Lists the committed keys of one partition, in no particular order. Call
 * with *cursor = 0; each call passes up to max keys to fn and updates
 * *cursor, which is STORE_CURSOR_END when the partition is exhausted. Keys
 * present for the whole listing are passed exactly once; keys added or
 * removed meanwhile may or may not be. Expired keys are skipped. fn gets a
 * borrowed key valid only during the call and may call store_get; a
 * non-zero return stops the listing and is returned.
 */
#define STORE_CURSOR_END UINT64_MAX
typedef int store_list_fn(void *ctx, const void *key, size_t key_len,
                          const struct store_meta *meta);
int store_list(struct store *s, uint16_t partition, uint64_t *cursor, size_t max,
               store_list_fn *fn, void *ctx);

/* Fills *st. */
void store_stats(struct store *s, struct store_stats *st);

/*
 * Asks for a merge now (RKV_OK), or RKV_ERR_BUSY if one is running.
 * store_merge_wait blocks until no merge runs and returns the result of the
 * last one (RKV_OK if it succeeded or none ran).
 */
int store_merge(struct store *s);
int store_merge_wait(struct store *s);

#endif
