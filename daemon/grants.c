/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Grants: what lets a source godwitd bring one VM here. Whoever may start a migration here (the
 * token) asks for a grant naming the VM and the source host; the source presents it on its Peer
 * calls ("authorization: Grant ..."), and never holds this host's token. A grant starts one
 * migration before it expires, from a host whose certificate carries one of its names when the
 * API runs TLS; the migration it started is bound to it, so the Commit or Abort of that
 * migration needs the same grant from the same host, even after a restart of either daemon.
 * Only a SHA-256 of the grant is kept, in DIR/grants/, one file each, replaced atomically.
 */
#include "daemon.h"

#include "godwit/log.h"
#include "godwit/v1/migrations.pb-c.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define GRANT_TTL_S	600
#define GRANT_TTL_MAX_S 86400
#define GRANT_KEEP_S	(7 * 86400) /* a bound grant outlives its migration this long */
#define GRANT_NAMES_MAX 8
#define GRANT_HEX	64

struct grant {
	char vm[GWD_NAME_MAX + 1];
	char names[GRANT_NAMES_MAX][128];
	size_t nnames;
	int64_t expires;
	char migration[64];
};

static int grant_path(const struct gwd *d, const char *grant, char *out, size_t n)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	if (EVP_Digest(grant, strlen(grant), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return -EIO;
	char hex[65];
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	snprintf(out, n, "%s/grants/%s", d->state_dir, hex);
	return 0;
}

static int grant_read(const char *path, struct grant *g)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	memset(g, 0, sizeof(*g));
	char line[300];
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *v = strchr(line, '=');
		if (!v)
			continue;
		*v++ = '\0';
		if (!strcmp(line, "vm"))
			snprintf(g->vm, sizeof(g->vm), "%s", v);
		else if (!strcmp(line, "name") && g->nnames < GRANT_NAMES_MAX)
			snprintf(g->names[g->nnames++], sizeof(g->names[0]), "%s", v);
		else if (!strcmp(line, "expires"))
			g->expires = strtoll(v, NULL, 10);
		else if (!strcmp(line, "migration"))
			snprintf(g->migration, sizeof(g->migration), "%s", v);
	}
	fclose(f);
	return g->vm[0] ? 0 : -EINVAL;
}

/* Written to a temporary file, synced, renamed over, and the directory synced: after a crash
 * the grant is the old one or the new one. */
static int grant_write(const char *path, const struct grant *g)
{
	char tmp[600];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	fprintf(f, "vm=%s\nexpires=%lld\n", g->vm, (long long)g->expires);
	for (size_t i = 0; i < g->nnames; i++)
		fprintf(f, "name=%s\n", g->names[i]);
	if (g->migration[0])
		fprintf(f, "migration=%s\n", g->migration);
	int rc = fflush(f) == 0 && fsync(fd) == 0 ? 0 : -errno;
	if (fclose(f) && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc) {
		unlink(tmp);
		return rc;
	}
	char dir[600];
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		rc = fsync(dfd) < 0 ? -errno : 0;
		close(dfd);
	}
	return rc;
}

/* Grants that can no longer be used: unused past expiry, or bound and kept long enough. */
static void grants_sweep(const char *dir, int64_t now)
{
	DIR *dp = opendir(dir);
	if (!dp)
		return;
	struct dirent *e;
	while ((e = readdir(dp))) {
		if (strlen(e->d_name) != GRANT_HEX)
			continue;
		char p[600];
		struct grant g;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (grant_read(p, &g) == 0 && now < g.expires + (g.migration[0] ? GRANT_KEEP_S : 0))
			continue;
		unlink(p);
	}
	closedir(dp);
}

static int grant_issue(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		       ProtobufCMessage **resp)
{
	struct gwd *d = ctx;
	const Godwit__V1__GrantIncomingRequest *req = (const void *)rq;
	char why[200];
	if (gwd_validate_name(req->vm, why, sizeof(why))) {
		gw_rpc_call_error(call, "%s", why);
		return -EINVAL;
	}
	if (req->n_source_names > GRANT_NAMES_MAX || req->ttl_s > GRANT_TTL_MAX_S) {
		gw_rpc_call_error(call, "at most %d source names and a ttl of %d s",
				  GRANT_NAMES_MAX, GRANT_TTL_MAX_S);
		return -EINVAL;
	}
	struct grant g = {.nnames = req->n_source_names};
	snprintf(g.vm, sizeof(g.vm), "%s", req->vm);
	for (size_t i = 0; i < req->n_source_names; i++) {
		const char *nm = req->source_names[i];
		if (!nm[0] || strlen(nm) >= sizeof(g.names[0]) || strpbrk(nm, ",\n=")) {
			gw_rpc_call_error(call, "source name \"%.40s\" is not a certificate name",
					  nm);
			return -EINVAL;
		}
		snprintf(g.names[i], sizeof(g.names[i]), "%s", nm);
	}
	g.expires = gwd_now() + (req->ttl_s ? req->ttl_s : GRANT_TTL_S);
	uint8_t raw[32];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		gw_rpc_call_error(call, "no randomness for a grant: %s", strerror(errno));
		return -EIO;
	}
	char *secret = gw_rpc_call_alloc(call, GRANT_HEX + 1);
	if (!secret)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(secret + 2 * i, 3, "%02x", raw[i]);
	char dir[600], path[600];
	snprintf(dir, sizeof(dir), "%s/grants", d->state_dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		gw_rpc_call_error(call, "cannot make %s: %s", dir, strerror(errno));
		return -EIO;
	}
	grants_sweep(dir, gwd_now());
	int rc = grant_path(d, secret, path, sizeof(path));
	if (!rc)
		rc = grant_write(path, &g);
	if (rc) {
		gw_rpc_call_error(call, "cannot save the grant in %s: %s", dir, strerror(-rc));
		return rc;
	}
	Godwit__V1__Grant *out = gw_rpc_call_alloc(call, sizeof(*out));
	char **names = gw_rpc_call_alloc(call, sizeof(char *) * (g.nnames + 1));
	if (!out || !names)
		return -ENOMEM;
	godwit__v1__grant__init(out);
	out->grant = secret;
	out->vm = gw_rpc_call_strdup(call, g.vm);
	out->expires_unix = g.expires;
	for (size_t i = 0; i < g.nnames; i++)
		names[i] = gw_rpc_call_strdup(call, g.names[i]);
	out->source_names = names;
	out->n_source_names = g.nnames;
	*resp = &out->base;
	GW_INFO(g.vm, "grant for an incoming migration from %s, until %lld",
		g.nnames ? g.names[0] : "any host of the CA", (long long)g.expires);
	return 0;
}

/* Whether the caller's certificate carries one of the grant's names (any, without names or
 * without TLS: then the grant alone authenticates). */
static bool grant_host_ok(const struct gwd *d, struct gw_rpc_call *call, const struct grant *g)
{
	if (!d->tls || !g->nnames)
		return true;
	for (size_t i = 0; i < g->nnames; i++)
		if (gw_rpc_call_peer_has_name(call, g->names[i]))
			return true;
	return false;
}

static int grant_check_locked(struct gwd *d, struct gw_rpc_call *call, const char *vm,
			      const char *migration_id)
{
	const char *secret = gw_rpc_call_credential(call, "Grant");
	if (!secret || strlen(secret) != GRANT_HEX) {
		gw_rpc_call_error(call, "Peer calls need the grant the destination gave for this "
					"migration (GrantIncoming)");
		return -EACCES;
	}
	char path[600];
	struct grant g;
	int rc = grant_path(d, secret, path, sizeof(path));
	if (rc || grant_read(path, &g)) {
		gw_rpc_call_error(call, "unknown or expired grant: ask this host for a new one "
					"(GrantIncoming)");
		return -EACCES;
	}
	if (!grant_host_ok(d, call, &g)) {
		gw_rpc_call_error(call, "the grant is for host %s, not for %s", g.names[0],
				  gw_rpc_call_peer_names(call));
		return -EACCES;
	}
	if (!vm) {
		/* Commit or Abort: of the migration the grant started. */
		if (strcmp(g.migration, migration_id) != 0) {
			gw_rpc_call_error(call, "the grant is not for migration %s", migration_id);
			return -EACCES;
		}
		return 0;
	}
	if (strcmp(g.vm, vm) != 0) {
		gw_rpc_call_error(call, "the grant is for VM %s, not %s", g.vm, vm);
		return -EACCES;
	}
	if (g.migration[0]) {
		if (strcmp(g.migration, migration_id) == 0)
			return 0;
		gw_rpc_call_error(call, "the grant was used by migration %s already", g.migration);
		return -EACCES;
	}
	if (gwd_now() >= g.expires) {
		gw_rpc_call_error(call, "the grant expired: ask this host for a new one");
		return -EACCES;
	}
	snprintf(g.migration, sizeof(g.migration), "%s", migration_id);
	if ((rc = grant_write(path, &g))) {
		gw_rpc_call_error(call, "cannot record the grant's use: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

int gwd_grant_check(struct gwd *d, struct gw_rpc_call *call, const char *vm,
		    const char *migration_id)
{
	/* The host's owner (the unix socket) may do anything here, Peer calls included. */
	if (gw_rpc_call_is_local(call))
		return 0;
	/* Under the daemon's lock: two calls with one grant cannot both bind it. */
	pthread_mutex_lock(&d->lock);
	int rc = grant_check_locked(d, call, vm, migration_id ? migration_id : "");
	pthread_mutex_unlock(&d->lock);
	return rc;
}

const struct gw_rpc_method gwd_grant_methods[] = {
    {.service = &godwit__v1__migrations__descriptor, .name = "GrantIncoming", .unary = grant_issue},
};
const size_t gwd_grant_nmethods = sizeof(gwd_grant_methods) / sizeof(gwd_grant_methods[0]);
