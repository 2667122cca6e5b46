/* SPDX-License-Identifier: Apache-2.0 */
/* Migration records on disk: DIR/migrations/ID.pb, a MigrationRecord, replaced atomically. */
#include "daemon.h"

#include "godwit/log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Ended records are kept this long: a source that asks again later still gets the answer. */
#define MIGREC_KEEP_S (7 * 24 * 3600)

#define STEP(x) GODWIT__INTERNAL__V1__MIGRATION_STEP__MIGRATION_STEP_##x

/* Migration IDs are hex, made by godwitd; anything else never names a file. */
static bool id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n < 8 || n > 39)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdefABCDEF", id[i]))
			return false;
	return true;
}

static void migrec_dir(const struct gwd *d, char *out, size_t n)
{
	snprintf(out, n, "%s/migrations", d->state_dir);
}

int gwd_migrec_save(struct gwd *d, Godwit__Internal__V1__MigrationRecord *rec)
{
	if (!id_ok(rec->id)) {
		GW_ERR("migrations", "not saving a record with a malformed id");
		return -EINVAL;
	}
	rec->updated_unix = gwd_now();
	size_t len = godwit__internal__v1__migration_record__get_packed_size(rec);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	godwit__internal__v1__migration_record__pack(rec, buf);
	char dir[400], leaf[64];
	migrec_dir(d, dir, sizeof(dir));
	snprintf(leaf, sizeof(leaf), "%s.pb", rec->id);
	int rc = 0;
	if (mkdir(dir, 0700) == 0)
		rc = gwd_dir_sync(d->state_dir); /* the new directory itself, durable first */
	else if (errno != EEXIST)
		rc = -errno;
	if (rc == 0)
		rc = gwd_file_replace(dir, leaf, buf, len);
	free(buf);
	if (rc)
		GW_ERR("migrations", "cannot save the record of migration %s in %s: %s", rec->id,
		       dir, strerror(-rc));
	return rc;
}

static Godwit__Internal__V1__MigrationRecord *load_path(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	uint8_t buf[65536];
	size_t len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	Godwit__Internal__V1__MigrationRecord *rec =
	    godwit__internal__v1__migration_record__unpack(NULL, len, buf);
	if (rec && !id_ok(rec->id)) {
		godwit__internal__v1__migration_record__free_unpacked(rec, NULL);
		rec = NULL;
	}
	if (!rec)
		GW_WARN("migrations", "%s is unreadable or not a migration record; ignoring it",
			path);
	return rec;
}

Godwit__Internal__V1__MigrationRecord *gwd_migrec_load(struct gwd *d, const char *id)
{
	if (!id_ok(id))
		return NULL;
	char dir[400], path[480];
	migrec_dir(d, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/%s.pb", dir, id);
	if (access(path, F_OK) != 0)
		return NULL;
	Godwit__Internal__V1__MigrationRecord *rec = load_path(path);
	if (rec && strcmp(rec->id, id)) {
		godwit__internal__v1__migration_record__free_unpacked(rec, NULL);
		return NULL;
	}
	return rec;
}

void gwd_migrec_free(Godwit__Internal__V1__MigrationRecord *rec)
{
	if (rec)
		godwit__internal__v1__migration_record__free_unpacked(rec, NULL);
}

int gwd_migrec_step(struct gwd *d, const char *id)
{
	Godwit__Internal__V1__MigrationRecord *rec = gwd_migrec_load(d, id);
	int step = rec ? (int)rec->step : 0;
	gwd_migrec_free(rec);
	return step;
}

static bool step_final(int step)
{
	return step == STEP(COMMITTED) || step == STEP(ABORTED) || step == STEP(ENDED);
}

void gwd_migrec_each(struct gwd *d,
		     void (*fn)(struct gwd *d, Godwit__Internal__V1__MigrationRecord *rec))
{
	char dir[400];
	migrec_dir(d, dir, sizeof(dir));
	DIR *dh = opendir(dir);
	if (!dh)
		return;
	struct dirent *e;
	while ((e = readdir(dh))) {
		size_t n = strlen(e->d_name);
		if (e->d_name[0] == '.' || n < 4 || strcmp(e->d_name + n - 3, ".pb"))
			continue;
		char path[700];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		Godwit__Internal__V1__MigrationRecord *rec = load_path(path);
		if (!rec)
			continue;
		if (step_final(rec->step) && gwd_now() - rec->updated_unix > MIGREC_KEEP_S) {
			unlink(path);
			gwd_migrec_free(rec);
			continue;
		}
		fn(d, rec);
	}
	closedir(dh);
}
