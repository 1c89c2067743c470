/*
 * policy.c: the names of the sync policies. Kept apart from the engine so
 * that config parsing (common/config.c, also in the client library) can
 * name them without linking the storage engine.
 */
#include "storage/storage.h"

#include <string.h>

static const char *const sync_names[] = {
    [STORE_SYNC_ALWAYS] = "always",
    [STORE_SYNC_INTERVAL] = "interval",
    [STORE_SYNC_NONE] = "none",
};

int store_sync_parse(const char *name)
{
    for (int i = 0; i <= STORE_SYNC_NONE; i++)
        if (strcmp(name, sync_names[i]) == 0)
            return i;
    return -1;
}

const char *store_sync_name(enum store_sync sync)
{
    return (unsigned)sync <= STORE_SYNC_NONE ? sync_names[sync] : "?";
}
