/*
 * toml.h: a strict parser for the subset of TOML that cluster.toml needs.
 *
 * No TOML library for C is packaged in Debian, and the config file needs
 * little of the language, so this is a small parser that accepts a subset
 * and rejects everything else with a message naming the line and column,
 * instead of guessing. Accepted (TOML 1.0 semantics):
 *
 *   # comments                 to the end of the line, anywhere a line ends
 *   key = value                bare keys [A-Za-z0-9_-]+ or "quoted" keys
 *   "basic strings"            escapes \" \\ \b \t \n \f \r \uXXXX \UXXXXXXXX
 *   integers                   decimal, optional sign, single '_' between
 *                              digits, no leading zeros, int64 range
 *   true, false
 *   [1, 2, 3]                  arrays of one element type; may span lines,
 *                              hold comments and end with a comma; nested
 *                              at most TOML_DEPTH_MAX deep
 *   [table]                    single-segment header names (bare or quoted)
 *   [[array.of.tables]]        likewise: [[node]]
 *
 * Rejected with a precise message: floats, inf and nan, hexadecimal, octal
 * and binary integers, dates and times, literal strings '...', multi-line
 * strings, inline tables {...}, dotted keys and dotted header names, \u0000
 * in strings, duplicate keys, a table defined twice, a table header that
 * reuses the name of a key or of an array of tables (and the reverse),
 * invalid UTF-8, control characters outside strings' escapes, a lone
 * carriage return, anything after a value on its line.
 *
 * Bounds: hostile input cannot crash the parser or make it take more than a
 * few megabytes. The text is at most TOML_TEXT_BYTES_MAX bytes, decoded
 * strings at most TOML_STRING_BYTES_MAX, keys TOML_KEY_BYTES_MAX, a table at
 * most TOML_TABLE_KEYS_MAX keys, the document TOML_VALUES_MAX values in all
 * (tables and array elements included); recursion follows array nesting
 * only, so it is bounded by TOML_DEPTH_MAX.
 *
 * Positions: lines and columns count from 1; a column counts characters
 * (UTF-8 code points, a tab is one), so it matches what an editor shows.
 *
 * Ownership: toml_parse returns a tree that the caller frees with
 * toml_free; every string in it is owned by the tree and NUL-terminated.
 * Readers may walk the structs directly; the only mutation is the "used"
 * mark toml_table_get sets, which lets the config layer report keys that
 * nobody asked for. Not thread-safe; no global state.
 */
#ifndef RKV_TOML_H
#define RKV_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define TOML_TEXT_BYTES_MAX   (1024u * 1024) /* a whole document */
#define TOML_STRING_BYTES_MAX 16384u         /* one decoded string */
#define TOML_KEY_BYTES_MAX    256u           /* one decoded key */
#define TOML_TABLE_KEYS_MAX   256u           /* keys of one table */
#define TOML_VALUES_MAX       65536u         /* values (and tables) of a document */
#define TOML_DEPTH_MAX        8u             /* arrays inside arrays */

enum toml_type {
    TOML_STRING = 0,
    TOML_INT = 1,
    TOML_BOOL = 2,
    TOML_ARRAY = 3,
    TOML_TABLE = 4,
};

struct toml_table;
struct toml_array;

struct toml_value {
    enum toml_type type;
    uint32_t line, col; /* where the value starts (a table: its header) */
    union {
        struct {
            char *s;    /* NUL-terminated, valid UTF-8, no NUL inside */
            size_t len; /* bytes, without the terminator */
        } str;
        int64_t i;
        bool b;
        struct toml_array *arr;
        struct toml_table *tab;
    } u;
};

struct toml_array {
    struct toml_value *v; /* elements, all of the same type */
    size_t n, cap;
    bool of_tables; /* made by [[name]] headers: elements are TOML_TABLE */
};

struct toml_kv {
    char *key;          /* NUL-terminated */
    uint32_t line, col; /* of the key; of the header for [name] / [[name]] */
    bool used;          /* looked up with toml_table_get */
    struct toml_value val;
};

/* A table keeps its keys in file order. The root is a table at 1:1 whose
 * keys are the top-level keys and one key per [table] / [[array]] name. */
struct toml_table {
    struct toml_kv *kv;
    size_t n, cap;
    uint32_t line, col; /* of its header; 1:1 for the root */
};

/*
 * Parses len bytes of text (need not be NUL-terminated; a leading UTF-8 BOM
 * is skipped). file names the text in messages, "FILE:LINE:COL: message".
 * On success *out is the root table (the caller frees it with toml_free).
 * On failure *out is NULL and err says what and where: RKV_ERR_CONFIG for
 * anything wrong with the text (including the bounds above), RKV_ERR_NOMEM.
 */
int toml_parse(const char *text, size_t len, const char *file, struct toml_table **out,
               struct rkv_error *err);
/* Frees a tree from toml_parse; NULL is a no-op. */
void toml_free(struct toml_table *root);

/* The value of key in t, or NULL. toml_table_get also marks it used. The
 * pointer is borrowed from the tree. */
const struct toml_value *toml_table_find(const struct toml_table *t, const char *key);
const struct toml_value *toml_table_get(struct toml_table *t, const char *key);
/* The first key of t (in file order) that toml_table_get never returned,
 * or NULL: the unknown keys of a schema. */
const struct toml_kv *toml_table_unused(const struct toml_table *t);

/* "a string", "an integer", "a boolean", "an array", "a table". */
const char *toml_type_name(enum toml_type type);

/* s made safe to quote in a message (keys and strings may hold any
 * character through escapes): at most TOML_SHOW_BYTES - 8 bytes, anything
 * outside printable ASCII shown as '?', "..." if cut. Returns buf. */
#define TOML_SHOW_BYTES 48
const char *toml_show(const char *s, char buf[TOML_SHOW_BYTES]);

/* rkv_error_set with the message prefixed by "file:line:col: ". */
int toml_error_at(struct rkv_error *err, int code, const char *file, uint32_t line, uint32_t col,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
