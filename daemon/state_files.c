/* SPDX-License-Identifier: Apache-2.0 */
/* Files in godwitd's state directory that must survive a crash: written whole or not at all,
 * their directory entries made durable, secrets kept from other users. */
#include "daemon.h"

#include "godwit/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

int gwd_dir_sync(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* A create, rename or unlink is durable only once its directory is (fsync(2)). */
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* All of len bytes, or -errno (a full disk, a file size limit: -ENOSPC, -EFBIG). */
static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* DIR/leaf.tmp with buf in it, written and flushed; the caller puts it in place. */
static int write_tmp(const char *tmp, const void *buf, size_t len)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int rc = write_all(fd, buf, len);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

int gwd_file_replace(const char *dir, const char *leaf, const void *buf, size_t len)
{
	char path[600], tmp[620];
	snprintf(path, sizeof(path), "%s/%s", dir, leaf);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int rc = write_tmp(tmp, buf, len);
	if (rc)
		return rc;
	/* write, fsync, rename, fsync the directory: after a crash the file is the old one or
	 * the new one, and the new one stays once this returns. */
	if (rename(tmp, path) < 0) {
		rc = -errno;
		unlink(tmp);
		return rc;
	}
	return gwd_dir_sync(dir);
}

int gwd_file_create(const char *dir, const char *leaf, const void *buf, size_t len)
{
	char path[600], tmp[620];
	snprintf(path, sizeof(path), "%s/%s", dir, leaf);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int rc = write_tmp(tmp, buf, len);
	if (rc)
		return rc;
	/* link, not rename: the file appears whole, and never over one that is there. */
	if (link(tmp, path) < 0)
		rc = -errno;
	unlink(tmp);
	int src = gwd_dir_sync(dir);
	return rc ? rc : src;
}

int gwd_file_remove(const char *dir, const char *leaf)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%s", dir, leaf);
	if (unlink(path) < 0)
		return errno == ENOENT ? 0 : -errno;
	return gwd_dir_sync(dir);
}

int gwd_state_check_private(const char *path, char *why, size_t n)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		int rc = -errno;
		gw_say(why, n, "cannot stat %s: %s", path, strerror(errno));
		return rc;
	}
	if (st.st_uid != geteuid()) {
		gw_say(why, n,
		       "%s belongs to uid %u, not to this godwitd's uid %u: run 'chown %u %s'",
		       path, (unsigned)st.st_uid, (unsigned)geteuid(), (unsigned)geteuid(), path);
		return -EPERM;
	}
	if (st.st_mode & 077) {
		bool dir = S_ISDIR(st.st_mode);
		gw_say(
		    why, n,
		    "%s is open to group or others (mode %04o); it holds godwitd's %s: run 'chmod "
		    "%s %s'",
		    path, (unsigned)(st.st_mode & 07777), dir ? "token and sockets" : "secret",
		    dir ? "700" : "600", path);
		return -EPERM;
	}
	return 0;
}

int gwd_secret_load(const char *dir, const char *leaf, size_t nbytes, char *out, size_t n,
		    char *why, size_t whyn)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%s", dir, leaf);
	uint8_t raw[32];
	if (nbytes > sizeof(raw) || n < 2 * nbytes + 1)
		return -EINVAL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		close(fd);
		int rc = gwd_state_check_private(path, why, whyn);
		if (rc)
			return rc;
		FILE *f = fopen(path, "r");
		if (!f) {
			rc = -errno;
			gw_say(why, whyn, "cannot read %s: %s", path, strerror(errno));
			return rc;
		}
		if (!fgets(out, (int)n, f))
			out[0] = '\0';
		rc = ferror(f) ? -EIO : 0;
		fclose(f);
		if (rc) {
			gw_say(why, whyn, "cannot read %s: %s", path, strerror(EIO));
			return rc;
		}
		out[strcspn(out, "\r\n")] = '\0';
		if (!out[0]) {
			gw_say(why, whyn, "%s is empty: remove it and godwitd makes a new one",
			       path);
			return -EINVAL;
		}
		return 0;
	}
	if (errno != ENOENT) {
		int rc = -errno;
		gw_say(why, whyn, "cannot open %s: %s", path, strerror(errno));
		return rc;
	}
	/* A secret that is not random is no secret: without the kernel's entropy, no token. */
	ssize_t got = getrandom(raw, nbytes, 0);
	if (got != (ssize_t)nbytes) {
		gw_say(why, whyn, "cannot make %s: getrandom: %s", path,
		       got < 0 ? strerror(errno) : "short read");
		return -EIO;
	}
	for (size_t i = 0; i < nbytes; i++)
		snprintf(out + 2 * i, n - 2 * i, "%02x", raw[i]);
	char line[80];
	int len = snprintf(line, sizeof(line), "%s\n", out);
	int rc = gwd_file_create(dir, leaf, line, (size_t)len);
	if (rc) {
		gw_say(why, whyn, "cannot create %s: %s", path, strerror(-rc));
		out[0] = '\0';
	}
	return rc;
}
