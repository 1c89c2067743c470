/*
 * limits.h: every hard size limit of ringkv, in one place.
 *
 * These are the ceilings the code is built for; cluster.toml may set lower
 * limits, never higher ones. Anything over a limit is an RKV_ERR_TOOBIG
 * error before any byte is written or any memory is taken for it.
 */
#ifndef RKV_LIMITS_H
#define RKV_LIMITS_H

/* Storage engine. */
#define RKV_KEY_BYTES_MAX 65535u                 /* record key_len is a u16 */
#define RKV_VALUE_BYTES_MAX (64u * 1024 * 1024)  /* one stored value (a sibling set) */
#define RKV_PARTITIONS_MAX 65536u                /* record partition is a u16 */
#define RKV_FILE_BYTES_MAX 0xFFFFFFFFu           /* keydir offsets are u32 */
#define RKV_FILE_BYTES_MIN 4096u
#define RKV_BATCH_OPS_MAX 1048576u               /* ops between two commits */
#define RKV_WRITE_BUFFER_BYTES_MAX (64u * 1024 * 1024)

#endif
