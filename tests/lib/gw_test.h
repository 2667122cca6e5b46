/* SPDX-License-Identifier: Apache-2.0 */
/* Shared CUnit runner for godwit's test binaries: runs every suite, exits non-zero on failure. */
#ifndef GODWIT_GW_TEST_H
#define GODWIT_GW_TEST_H

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>

/* ctest treats this exit code as "skipped" (SKIP_RETURN_CODE). */
#define GW_TEST_SKIP 77

struct gw_test_case {
	const char *name;
	void (*fn)(void);
};

static inline int gw_test_run(const char *suite, const struct gw_test_case *cases, size_t n)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	CU_pSuite s = CU_add_suite(suite, NULL, NULL);
	for (size_t i = 0; i < n; i++)
		CU_add_test(s, cases[i].name, cases[i].fn);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	unsigned run = CU_get_number_of_tests_run();
	CU_cleanup_registry();
	if (run != n) {
		fprintf(stderr, "%s: only %u of %zu tests ran\n", suite, run, n);
		return 1;
	}
	return failed ? 1 : 0;
}

#define GW_TEST_COUNT(a) (sizeof(a) / sizeof((a)[0]))

#endif
