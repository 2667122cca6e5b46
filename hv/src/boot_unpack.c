/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A bzImage's compressed kernel, decompressed by the host rather than by the guest's own
 * decompressor: liblzma runs natively where the guest's decompressor would run in the VM, and
 * the result (the vmlinux ELF, with the relocations a relocatable kernel appends) is kept in a
 * cache keyed by the payload's checksum, so the next boot of the same kernel skips it.
 */
#include "linux_boot.h"

#include "godwit/crc.h"

#include <errno.h>
#include <fcntl.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define UNPACKED_MAX (512u << 20)

static const uint8_t xz_magic[6] = {0xFD, '7', 'z', 'X', 'Z', 0x00};

static void cache_dir_default(char *out, size_t n)
{
	const char *d = getenv("GODWIT_CACHE_DIR");
	if (d && *d) {
		snprintf(out, n, "%s", d);
		return;
	}
	d = getenv("XDG_CACHE_HOME");
	if (d && *d) {
		snprintf(out, n, "%s/godwit", d);
		return;
	}
	d = getenv("HOME");
	snprintf(out, n, "%s/.cache/godwit", d && *d ? d : "/tmp");
}

static int read_cached(const char *path, size_t want, uint8_t **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int rc = -EBADMSG;
	uint8_t *buf = NULL;
	if (fstat(fd, &st) == 0 && (size_t)st.st_size == want && (buf = malloc(want))) {
		size_t got = 0;
		ssize_t r = 1;
		while (got < want && (r = read(fd, buf + got, want - got)) > 0)
			got += (size_t)r;
		if (got == want) {
			*out = buf;
			buf = NULL;
			rc = 0;
		}
	}
	free(buf);
	close(fd);
	return rc;
}

/* Best effort: a cache that cannot be written only costs the next boot the decompression. */
static void write_cached(const char *dir, const char *path, const uint8_t *data, size_t len)
{
	char tmp[600];
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	char sub[600];
	snprintf(sub, sizeof(sub), "%s", dir);
	for (char *p = sub + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			mkdir(sub, 0755);
			*p = '/';
		}
	}
	mkdir(sub, 0755);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	size_t put = 0;
	ssize_t w = 1;
	while (put < len && (w = write(fd, data + put, len - put)) > 0)
		put += (size_t)w;
	if (close(fd) == 0 && put == len && rename(tmp, path) == 0)
		return;
	unlink(tmp);
}

static int unxz(const uint8_t *in, size_t len, size_t out_len, uint8_t **out)
{
	uint8_t *buf = malloc(out_len);
	if (!buf)
		return -ENOMEM;
	lzma_stream s = LZMA_STREAM_INIT;
	if (lzma_stream_decoder(&s, UINT64_MAX, 0) != LZMA_OK) {
		free(buf);
		return -ENOMEM;
	}
	s.next_in = in;
	s.avail_in = len;
	s.next_out = buf;
	s.avail_out = out_len;
	lzma_ret r = lzma_code(&s, LZMA_FINISH);
	size_t got = out_len - s.avail_out;
	lzma_end(&s);
	/* The stream ends before the payload does: Linux appends the unpacked size after it. */
	if (r != LZMA_STREAM_END || got != out_len) {
		free(buf);
		return -EBADMSG;
	}
	*out = buf;
	return 0;
}

int hv_boot_unpack(const uint8_t *payload, size_t len, const char *cache_dir, uint8_t **out,
		   size_t *out_len, bool *cached)
{
	*cached = false;
	if (len < sizeof(xz_magic) + 4 || memcmp(payload, xz_magic, sizeof(xz_magic)) != 0)
		return -ENOTSUP;
	/* The unpacked size, which Linux's build appends to the compressed stream. */
	const uint8_t *t = payload + len - 4;
	size_t size = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
	if (size == 0 || size > UNPACKED_MAX)
		return -EBADMSG;
	char dir[400], path[600];
	if (cache_dir)
		snprintf(dir, sizeof(dir), "%s", cache_dir);
	else
		cache_dir_default(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/vmlinux-%08x-%zu", dir, gw_crc32c(0, payload, len), len);
	if (read_cached(path, size, out) == 0) {
		*out_len = size;
		*cached = true;
		return 0;
	}
	int rc = unxz(payload, len, size, out);
	if (rc)
		return rc;
	*out_len = size;
	write_cached(dir, path, *out, size);
	return 0;
}
