/*
 * memvfs.h: an in-memory filesystem behind struct store_fileops, for tests.
 *
 * It models what a real disk promises and no more: file data becomes
 * durable at fdatasync, directory entries (creates, renames, unlinks) at
 * sync_dir. memvfs_image() takes the durable state after a simulated power
 * loss, optionally with torn tails: a random part of each file's unsynced
 * appends survives, possibly with garbage or zeros at its end.
 *
 * Faults: the Nth pwrite or fdatasync can fail with a chosen errno, writes
 * can be short, and memvfs_crash_after() freezes the filesystem after N
 * mutating calls (every later call fails with EIO and changes nothing), to
 * crash a store at an exact step. Thread-safe (one mutex).
 */
#ifndef RKV_MEMVFS_H
#define RKV_MEMVFS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "storage/storage.h"

struct memvfs;

struct memvfs *memvfs_new(void);
void memvfs_free(struct memvfs *v);
/* The fileops table; valid while v lives. */
const struct store_fileops *memvfs_ops(struct memvfs *v);

/* The pwrite/fdatasync after the next `after` ones fails with -err, and so
 * does every later one until memvfs_clear_faults. */
void memvfs_fail_writes(struct memvfs *v, uint64_t after, int err);
void memvfs_fail_syncs(struct memvfs *v, uint64_t after, int err);
/* pwrite transfers a random 1..len bytes. */
void memvfs_short_writes(struct memvfs *v, bool on, uint64_t seed);
void memvfs_clear_faults(struct memvfs *v);
/* After n more mutating calls, everything fails with EIO. */
void memvfs_crash_after(struct memvfs *v, uint64_t n);
bool memvfs_crashed(struct memvfs *v);
/* Mutating calls made so far. */
uint64_t memvfs_mutations(struct memvfs *v);

enum memvfs_tear {
    MEMVFS_TEAR_NONE = 0, /* unsynced data is simply lost */
    MEMVFS_TEAR_RANDOM,   /* a random prefix of it survives, maybe damaged */
};
/* A new filesystem holding what survives a power loss now. */
struct memvfs *memvfs_image(struct memvfs *v, uint64_t seed, enum memvfs_tear tear);
/* A new filesystem holding exactly the current (unsynced included) state,
 * all of it durable. */
struct memvfs *memvfs_clone(struct memvfs *v);

/* Direct access to current file contents, for corruption tests. */
int memvfs_read_file(struct memvfs *v, const char *path, struct rkv_buf *out);
int memvfs_write_file(struct memvfs *v, const char *path, const void *data, size_t len);
/* Names (full paths) of files under dir, newline-separated, into out. */
int memvfs_list(struct memvfs *v, const char *dir, struct rkv_buf *out);

#endif
