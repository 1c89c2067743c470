/* test_common.c: errors, buffers, the allocation hook and logging. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "tests/support/testutil.h"

START_TEST(errors_have_names)
{
    for (int c = 0; c < RKV_ERR_COUNT; c++)
        ck_assert_str_ne(rkv_strerror(c), "unknown error");
    ck_assert_str_eq(rkv_strerror(RKV_ERR_COUNT), "unknown error");
    ck_assert_str_eq(rkv_strerror(-1), "unknown error");
    ck_assert_int_eq(rkv_err_from_errno(ENOSPC), RKV_ERR_NOSPC);
    ck_assert_int_eq(rkv_err_from_errno(EIO), RKV_ERR_IO);
    ck_assert_int_eq(rkv_err_from_errno(0), RKV_OK);
    struct rkv_error e;
    ck_assert_int_eq(rkv_error_set(&e, RKV_ERR_CONFIG, "line %d", 12), RKV_ERR_CONFIG);
    ck_assert_str_eq(e.msg, "line 12");
    ck_assert_int_eq(rkv_error_set(NULL, RKV_ERR_IO, "x"), RKV_ERR_IO);
}
END_TEST

START_TEST(buffers_grow_and_encode)
{
    struct rkv_buf b = {0};
    for (int i = 0; i < 10000; i++)
        ck_assert_int_eq(rkv_buf_append(&b, &i, sizeof i), RKV_OK);
    ck_assert_uint_eq(b.len, 10000 * sizeof(int));
    int x;
    memcpy(&x, b.data + 9999 * sizeof(int), sizeof x);
    ck_assert_int_eq(x, 9999);
    ck_assert_int_eq(rkv_buf_set(&b, "ab", 2), RKV_OK);
    ck_assert_uint_eq(b.len, 2);
    rkv_buf_free(&b);
    ck_assert_ptr_null(b.data);
    uint8_t p[8];
    rkv_put_u64(p, 0x0102030405060708ull);
    ck_assert_uint_eq(p[0], 0x08);
    ck_assert_uint_eq(rkv_get_u64(p), 0x0102030405060708ull);
    rkv_put_u32(p, 0xdeadbeef);
    ck_assert_uint_eq(rkv_get_u32(p), 0xdeadbeef);
    rkv_put_u16(p, 0xbeef);
    ck_assert_uint_eq(rkv_get_u16(p), 0xbeef);
}
END_TEST

START_TEST(allocation_hook_fails_on_demand)
{
    test_alloc_fail_from(2);
    void *a = rkv_malloc(10), *b = rkv_malloc(10), *c = rkv_malloc(10);
    test_alloc_reset();
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_null(c);
    ck_assert(test_alloc_failed());
    rkv_free(a);
    rkv_free(b);
    rkv_free(NULL);
    ck_assert_ptr_null(rkv_calloc(SIZE_MAX / 2, 4)); /* overflow is refused */
    struct rkv_buf buf = {0};
    test_alloc_fail_from(0);
    ck_assert_int_eq(rkv_buf_append(&buf, "x", 1), RKV_ERR_NOMEM);
    test_alloc_reset();
    ck_assert_uint_eq(buf.len, 0);
}
END_TEST

static char captured[4096];
static int captured_lines;

static void capture(void *ctx, enum rkv_log_level level, const char *line)
{
    (void)ctx;
    (void)level;
    strncat(captured, line, sizeof captured - strlen(captured) - 2);
    strcat(captured, "\n");
    captured_lines++;
}

START_TEST(logging_filters_and_formats)
{
    rkv_log_set_sink(capture, NULL);
    rkv_log_set_level(RKV_LOG_WARN);
    RKV_INFO("test", "hidden %d", 1);
    RKV_WARN("test", "shown %d", 2);
    RKV_ERROR("node", "also shown");
    rkv_log_set_sink(NULL, NULL);
    ck_assert_int_eq(captured_lines, 2);
    ck_assert_ptr_null(strstr(captured, "hidden"));
    ck_assert_ptr_nonnull(strstr(captured, "WARN test: shown 2"));
    ck_assert_ptr_nonnull(strstr(captured, "ERROR node: also shown"));
    ck_assert_int_eq(rkv_log_level_parse("debug"), RKV_LOG_DEBUG);
    ck_assert_int_eq(rkv_log_level_parse("loud"), -1);
    ck_assert_str_eq(rkv_log_level_name(RKV_LOG_ERROR), "error");
}
END_TEST

int main(void)
{
    Suite *su = suite_create("common");
    TCase *tc = tcase_create("common");
    tcase_add_test(tc, errors_have_names);
    tcase_add_test(tc, buffers_grow_and_encode);
    tcase_add_test(tc, allocation_hook_fails_on_demand);
    tcase_add_test(tc, logging_filters_and_formats);
    suite_add_tcase(su, tc);
    return test_run(su);
}
