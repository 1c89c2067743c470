/* testrun.c: the main of every Check program (apart from testutil.c, which
 * the fuzz targets link without Check). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/support/testutil.h"

int test_run(Suite *s)
{
    /* a test runs in a child that a failed check ends: lines it printed
     * must not wait in a buffer that dies with it */
    setvbuf(stdout, NULL, _IOLBF, 0);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
