/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for hv/src/boot.c's file reading (hv_boot_read_file): what a VM boots is a
 * regular file, and anything else is refused at once. */
#include "hv_priv.h"

#include "../../lib/gw_test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A FIFO nobody writes to must not hold the VM start (opening it for reading would wait for a
 * writer, fifo(7)); nor a directory or a device. SIGALRM ends a hang as a failure. */
static void test_not_regular(void)
{
	char dir[] = "/tmp/gw-boot-XXXXXX", fifo[64];
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
	const char *paths[] = {fifo, dir, "/dev/null"};
	for (size_t i = 0; i < GW_TEST_COUNT(paths); i++) {
		uint8_t *buf = NULL;
		size_t len = 0;
		alarm(10);
		CU_ASSERT_EQUAL(hv_boot_read_file(paths[i], 1u << 20, &buf, &len), -ENOEXEC);
		alarm(0);
	}
	unlink(fifo);
	rmdir(dir);
}

/* A regular file reads whole; one larger than the limit is refused. */
static void test_regular(void)
{
	char path[] = "/tmp/gw-boot-file-XXXXXX";
	int fd = mkstemp(path);
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, "0123456789", 10), 10);
	close(fd);
	uint8_t *buf = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL_FATAL(hv_boot_read_file(path, 10, &buf, &len), 0);
	CU_ASSERT_EQUAL(len, 10);
	CU_ASSERT_EQUAL(memcmp(buf, "0123456789", 10), 0);
	free(buf);
	CU_ASSERT_EQUAL(hv_boot_read_file(path, 9, &buf, &len), -E2BIG);
	unlink(path);
}

int main(void)
{
	static const struct gw_test_case cases[] = {
	    {"files that are not regular are refused at once", test_not_regular},
	    {"a regular file reads whole, up to the limit", test_regular},
	};
	return gw_test_run("boot_files", cases, GW_TEST_COUNT(cases));
}
