/* SPDX-License-Identifier: Apache-2.0 */
/* The inventory source godwitd --libvirt chooses, and the sysfs one (host_pci.c behind the
 * interface of inventory.h). */
#include "inventory.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int sysfs_pf_read(struct gwd_inventory *inv, const char *addr, struct gwd_host_pf *pf,
			 char *why, size_t n)
{
	return gwd_host_pf_read(&inv->sysfs, addr, pf, why, n);
}

static int sysfs_vf_bind(struct gwd_inventory *inv, const struct gwd_host_vf *vf, char *why,
			 size_t n)
{
	return gwd_host_vf_bind(&inv->sysfs, vf, why, n);
}

static int sysfs_vf_unbind(struct gwd_inventory *inv, const struct gwd_host_vf *vf, char *why,
			   size_t n)
{
	return gwd_host_vf_unbind(&inv->sysfs, vf, why, n);
}

static void sysfs_vf_check(struct gwd_inventory *inv, struct gwd_host_vf *vf)
{
	gwd_host_vf_check(&inv->sysfs, vf);
}

/* sysfs knows no domains: nothing is held outside godwit. */
static int sysfs_users(struct gwd_inventory *inv, struct gwd_vf_user *out, unsigned max,
		       unsigned *count, char *why, size_t n)
{
	(void)inv, (void)out, (void)max, (void)why, (void)n;
	*count = 0;
	return 0;
}

static void sysfs_close(struct gwd_inventory *inv)
{
	(void)inv;
}

static const struct gwd_inventory_ops sysfs_ops = {
    .kind = "sysfs",
    .pf_read = sysfs_pf_read,
    .vf_bind = sysfs_vf_bind,
    .vf_unbind = sysfs_vf_unbind,
    .vf_check = sysfs_vf_check,
    .users = sysfs_users,
    .close = sysfs_close,
};

void gwd_inventory_sysfs(struct gwd_inventory *inv)
{
	memset(inv, 0, sizeof(*inv));
	pthread_mutex_init(&inv->lock, NULL);
	inv->ops = &sysfs_ops;
	gwd_sysfs_init(&inv->sysfs);
	snprintf(inv->desc, sizeof(inv->desc), "sysfs");
}

int gwd_inventory_open(struct gwd_inventory *inv, const char *spec, char *why, size_t n)
{
	gwd_inventory_sysfs(inv);
	if (!spec || !spec[0]) {
		snprintf(why, n,
			 "--libvirt needs a value: auto, none, or a libvirt URI such as "
			 "qemu:///system");
		return -EINVAL;
	}
	if (!strcmp(spec, "none"))
		return 0;
	if (strcmp(spec, "auto"))
		return gwd_inventory_libvirt(inv, spec, why, n);
	if (!gwd_libvirt_socket_answers()) {
		snprintf(inv->desc, sizeof(inv->desc),
			 "sysfs (--libvirt auto: no libvirt daemon answers on this host)");
		return 0;
	}
	char sub[GWD_INV_DESC_SZ - 80];
	if (gwd_inventory_libvirt(inv, "qemu:///system", sub, sizeof(sub))) {
		/* auto promises sysfs when libvirt cannot serve; the reason stays visible. */
		gwd_inventory_sysfs(inv);
		snprintf(inv->desc, sizeof(inv->desc), "sysfs (--libvirt auto: %s)", sub);
	}
	return 0;
}

void gwd_inventory_close(struct gwd_inventory *inv)
{
	if (inv->ops)
		inv->ops->close(inv);
	inv->ops = NULL;
}
