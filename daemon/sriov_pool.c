/* SPDX-License-Identifier: Apache-2.0 */
/* The VF pool: the PFs godwitd declares (--emul-nic, --pf) and which VM holds each VF. No
 * locking here: godwitd calls it under d->lock. */
#include "sriov_pool.h"

#include "godwit/parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EMUL_NIC_SYNTAX                                                                            \
	"use gen=N,vfs=M[,uplink=SPEC] with N 1..2, M 1..7 and SPEC none, udp:HOST:PORT, "         \
	"unix:PATH, tap:NAME, packet:IFNAME or dpdk:DEVICE[,KEY=VALUE...] (last); or "             \
	"'none' alone"

const char *gwd_backend_name(enum gwd_backend b)
{
	return b == GWD_BACKEND_VFIO ? "vfio" : "emul";
}

int gwd_backend_parse(const char *s, int *out)
{
	if (!s || !s[0])
		*out = -1;
	else if (!strcmp(s, "emul"))
		*out = GWD_BACKEND_EMUL;
	else if (!strcmp(s, "vfio"))
		*out = GWD_BACKEND_VFIO;
	else
		return -EINVAL;
	return 0;
}

static int check_udp(const char *hp, char *why, size_t n)
{
	const char *colon = strrchr(hp, ':');
	uint64_t port;
	if (!colon || colon == hp || gw_parse_u64(colon + 1, 1, 65535, &port)) {
		snprintf(why, n, "uplink udp:%s: use udp:HOST:PORT with PORT 1..65535", hp);
		return -EINVAL;
	}
	return 0;
}

int gwd_uplink_check(const char *spec, char *why, size_t n)
{
	/* A DPDK device's arguments hold ',' and '=' (net_af_packet0,iface=eth1): such an
	 * uplink comes last in --emul-nic and in godwit-vmm's --vf, which take the rest. */
	if (spec && !strncmp(spec, "dpdk:", 5) && spec[5] && spec[5] != ',' &&
	    strlen(spec) < GWD_UPLINK_SZ && !strpbrk(spec, " \t\n"))
		return 0;
	if (!spec || !spec[0] || strlen(spec) >= GWD_UPLINK_SZ || strpbrk(spec, ", \t\n=")) {
		snprintf(why, n,
			 "uplink '%.40s' is empty, too long or holds ',', '=' or blanks: use none, "
			 "udp:HOST:PORT, unix:PATH, tap:NAME, packet:IFNAME or "
			 "dpdk:DEVICE[,KEY=VALUE...]",
			 spec ? spec : "");
		return -EINVAL;
	}
	if (!strcmp(spec, "none"))
		return 0;
	if (!strncmp(spec, "udp:", 4))
		return check_udp(spec + 4, why, n);
	if (!strncmp(spec, "unix:", 5) && spec[5] && strlen(spec + 5) < 108)
		return 0;
	/* IFNAMSIZ is 16 with its NUL; '/' would make it a path under /sys/class/net. */
	if (!strncmp(spec, "tap:", 4) && spec[4] && strlen(spec + 4) < 16 && !strchr(spec, '/'))
		return 0;
	if (!strncmp(spec, "packet:", 7) && spec[7] && strlen(spec + 7) < 16 && !strchr(spec, '/'))
		return 0;
	snprintf(why, n,
		 "uplink '%s' is not a packet port: use none, udp:HOST:PORT, unix:PATH (under "
		 "108 bytes), tap:NAME or packet:IFNAME (under 16 characters), or "
		 "dpdk:DEVICE[,KEY=VALUE...]",
		 spec);
	return -EINVAL;
}

/* Parses one KEY=VALUE of --emul-nic into pf; seen keeps which keys were given. */
static int parse_kv(struct gwd_pf *pf, char *kv, unsigned *seen, char *why, size_t n)
{
	static const char *const keys[] = {"gen", "vfs", "uplink"};
	char *eq = strchr(kv, '=');
	unsigned k = 0;
	if (eq)
		*eq = '\0';
	while (k < 3 && strcmp(kv, keys[k]))
		k++;
	if (!eq || k == 3 || (*seen & (1u << k))) {
		snprintf(why, n, "'%s' is %s", kv,
			 !eq	  ? "not KEY=VALUE"
			 : k == 3 ? "not a key"
				  : "given twice");
		return -EINVAL;
	}
	*seen |= 1u << k;
	const char *v = eq + 1;
	uint64_t x;
	if (k == 0) {
		if (gw_parse_u64(v, 1, SRIOV_EMUL_GEN_MAX, &x) ||
		    sriov_emul_gen((unsigned)x, &pf->gen)) {
			snprintf(why, n, "gen '%s' is not 1 or 2", v);
			return -EINVAL;
		}
	} else if (k == 1) {
		if (gw_parse_u64(v, 1, SRIOV_EMUL_MAX_VFS, &x)) {
			snprintf(why, n, "vfs '%s' is not 1..%u", v, SRIOV_EMUL_MAX_VFS);
			return -EINVAL;
		}
		pf->nvfs = (unsigned)x;
	} else {
		if (gwd_uplink_check(v, why, n))
			return -EINVAL;
		snprintf(pf->uplink, sizeof(pf->uplink), "%s", v);
	}
	return 0;
}

static int parse_pf(struct gwd_pf *pf, const char *arg, char *why, size_t n)
{
	char buf[256], *save = NULL;
	unsigned seen = 0;
	if (strlen(arg) >= sizeof(buf)) {
		snprintf(why, n, "the value is too long");
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", arg);
	memset(pf, 0, sizeof(*pf));
	snprintf(pf->uplink, sizeof(pf->uplink), "none");
	for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		/* A dpdk: uplink takes the rest of the value, commas and all (its device's
		 * arguments), as godwit-vmm's --vf does. */
		if (!strncmp(kv, "uplink=dpdk:", 12)) {
			snprintf(buf, sizeof(buf), "%s", arg); /* the commas strtok_r cut, back */
			if (parse_kv(pf, kv, &seen, why, n))
				return -EINVAL;
			break;
		}
		if (parse_kv(pf, kv, &seen, why, n))
			return -EINVAL;
	}
	if ((seen & 3u) != 3u) {
		snprintf(why, n, "gen and vfs are both required");
		return -EINVAL;
	}
	return 0;
}

int gwd_pool_add_emul(struct gwd_pool *p, const char *arg, char *why, size_t n)
{
	char sub[200];
	bool none = strcmp(arg, "none") == 0;
	unsigned emul = 0;
	int rc = 0;
	for (unsigned i = 0; i < p->npfs; i++)
		emul += p->pfs[i].backend == GWD_BACKEND_EMUL;
	if (none ? emul > 0 : p->none) { /* 'none' before or after an emulated PF */
		snprintf(sub, sizeof(sub),
			 "'none' cannot be combined with other --emul-nic values");
		rc = -EINVAL;
	} else if (none) {
		p->none = true;
	} else if (p->npfs == GWD_PF_MAX) {
		snprintf(sub, sizeof(sub), "at most %d PFs (--emul-nic and --pf together)",
			 GWD_PF_MAX);
		rc = -EINVAL;
	} else {
		rc = parse_pf(&p->pfs[p->npfs], arg, sub, sizeof(sub));
		if (rc == 0)
			p->npfs++;
	}
	p->declared = true;
	if (rc)
		snprintf(why, n, "bad --emul-nic '%s': %s; " EMUL_NIC_SYNTAX, arg, sub);
	return rc;
}

void gwd_pool_finish(struct gwd_pool *p)
{
	if (p->declared)
		return;
	struct gwd_pf *pf = &p->pfs[0];
	memset(pf, 0, sizeof(*pf));
	sriov_emul_gen(1, &pf->gen);
	pf->nvfs = SRIOV_EMUL_MAX_VFS;
	snprintf(pf->uplink, sizeof(pf->uplink), "none");
	p->npfs = 1;
	p->declared = true;
}

/* A VM may have it: available, and no libvirt domain holds it. */
static bool usable(const struct gwd_vf_slot *s)
{
	return !s->unavailable && !s->domain[0];
}

unsigned gwd_pool_free_vfs(const struct gwd_pool *p, unsigned pf)
{
	unsigned free_vfs = 0;
	for (unsigned v = 0; pf < p->npfs && v < p->pfs[pf].nvfs; v++)
		free_vfs += p->pfs[pf].vfs[v].vm[0] == '\0' && usable(&p->pfs[pf].vfs[v]);
	return free_vfs;
}

void gwd_pool_summary(const struct gwd_pool *p, char *out, size_t n)
{
	size_t len = 0;
	out[0] = '\0';
	if (p->npfs == 0)
		snprintf(out, n, "no SR-IOV NIC");
	for (unsigned i = 0; i < p->npfs && len < n; i++) {
		const struct gwd_pf *pf = &p->pfs[i];
		int w = snprintf(out + len, n - len, "%spf%u %s%s%s gen%u %u free", i ? ", " : "",
				 i, gwd_backend_name(pf->backend), pf->address[0] ? " " : "",
				 pf->address, pf->gen.gen, gwd_pool_free_vfs(p, i));
		len += w > 0 ? (size_t)w : 0;
	}
}

static void take(struct gwd_pool *p, unsigned pf, unsigned vf, const char *vm, const char *mac)
{
	struct gwd_vf_slot *s = &p->pfs[pf].vfs[vf];
	snprintf(s->vm, sizeof(s->vm), "%s", vm);
	snprintf(s->mac, sizeof(s->mac), "%s", mac ? mac : "");
}

/* The first free, available VF of the lowest-index PF that accepts; counts the VFs it
 * considered and, of those, the unavailable ones (unavail may be NULL). */
static int first_free(struct gwd_pool *p, bool (*accept)(const struct gwd_pf *, const void *),
		      const void *arg, unsigned *pf, unsigned *vf, unsigned *total,
		      unsigned *unavail)
{
	unsigned skip = 0;
	*total = 0;
	for (unsigned i = 0; i < p->npfs; i++) {
		if (!accept(&p->pfs[i], arg))
			continue;
		*total += p->pfs[i].nvfs;
		for (unsigned v = 0; v < p->pfs[i].nvfs; v++) {
			skip += !usable(&p->pfs[i].vfs[v]);
			if (!p->pfs[i].vfs[v].vm[0] && usable(&p->pfs[i].vfs[v])) {
				*pf = i;
				*vf = v;
				return 0;
			}
		}
	}
	if (unavail)
		*unavail = skip;
	return *total ? -ENOSPC : -ENODEV;
}

/* Which PFs an allocation may take from. */
struct pf_filter {
	unsigned gen;		     /* 0: any */
	int backend;		     /* -1: any */
	const struct sriov_gen *src; /* NULL, or the generation a VF must match */
};

static bool filter_accepts(const struct gwd_pf *pf, const void *arg)
{
	const struct pf_filter *f = arg;
	return (f->gen == 0 || pf->gen.gen == f->gen) &&
	       (f->backend < 0 || (int)pf->backend == f->backend) &&
	       (!f->src || sriov_gen_compare(f->src, &pf->gen, NULL, 0) == SRIOV_GEN_MATCH);
}

int gwd_pool_alloc(struct gwd_pool *p, const char *vm, const char *mac, unsigned gen, int backend,
		   unsigned *pf, unsigned *vf, char *why, size_t n)
{
	char of[60] = "", has[200], un[80] = "";
	unsigned total, unavail;
	struct pf_filter f = {.gen = gen, .backend = backend};
	int rc = first_free(p, filter_accepts, &f, pf, vf, &total, &unavail);
	if (rc == 0) {
		take(p, *pf, *vf, vm, mac);
		return 0;
	}
	const char *kind = backend == GWD_BACKEND_VFIO	 ? "vfio "
			   : backend == GWD_BACKEND_EMUL ? "emul "
							 : "";
	if (gen)
		snprintf(of, sizeof(of), " of generation %u", gen);
	gwd_pool_summary(p, has, sizeof(has));
	if (p->npfs == 0)
		snprintf(why, n,
			 "this host declares no SR-IOV NIC (godwitd runs with --emul-nic none); "
			 "start godwitd with --pf DDDD:BB:DD.F or --emul-nic gen=N,vfs=M to give "
			 "VMs VFs");
	else if (rc == -ENODEV)
		snprintf(why, n,
			 "this host has no %sVF%s (it has: %s); ask for another generation or "
			 "backend, or start godwitd with another --pf or --emul-nic",
			 kind, of, has);
	else {
		if (unavail)
			snprintf(un, sizeof(un), ", %u unavailable: godwit host info says why",
				 unavail);
		snprintf(why, n,
			 "no free %sVF%s on this host (%u of %u in use%s); delete a VM that holds "
			 "one or start godwitd with another --emul-nic or --pf",
			 kind, of, total - unavail, total, un);
	}
	return rc;
}

int gwd_pool_alloc_match(struct gwd_pool *p, const char *vm, const char *mac,
			 const struct sriov_gen *src, int backend, unsigned *pf, unsigned *vf,
			 char *reason, size_t n)
{
	unsigned total;
	struct pf_filter f = {.backend = backend, .src = src};
	int rc = first_free(p, filter_accepts, &f, pf, vf, &total, NULL);
	if (rc == 0) {
		take(p, *pf, *vf, vm, mac);
		sriov_gen_compare(src, &p->pfs[*pf].gen, reason, n);
		return 0;
	}
	char has[200], what[80];
	gwd_pool_summary(p, has, sizeof(has));
	if (src->gen)
		snprintf(what, sizeof(what), "gen%u", src->gen);
	else
		sriov_gen_describe(src, what, sizeof(what));
	snprintf(reason, n, "destination has no free %s VF (has: %s)", what, has);
	return rc;
}

int gwd_pool_claim(struct gwd_pool *p, const char *vm, const char *mac, unsigned pf, unsigned vf,
		   const struct sriov_gen *gen, char *why, size_t n)
{
	if (pf >= p->npfs || vf >= p->pfs[pf].nvfs) {
		char has[200];
		gwd_pool_summary(p, has, sizeof(has));
		snprintf(why, n, "pf%u vf%u is not declared on this host (it has: %s)", pf, vf,
			 has);
		return -ENOENT;
	}
	char cmp[120];
	if (gen && sriov_gen_compare(gen, &p->pfs[pf].gen, cmp, sizeof(cmp)) != SRIOV_GEN_MATCH) {
		snprintf(why, n, "pf%u is now generation %u, the NIC was generation %u (%s)", pf,
			 p->pfs[pf].gen.gen, gen->gen, cmp);
		return -ENOENT;
	}
	if (p->pfs[pf].backend != GWD_BACKEND_EMUL) {
		snprintf(why, n, "pf%u is now the real PF %s, the NIC was an emulated VF", pf,
			 p->pfs[pf].address);
		return -ENOENT;
	}
	const char *holder = p->pfs[pf].vfs[vf].vm;
	if (holder[0] && strcmp(holder, vm)) {
		snprintf(why, n, "pf%u vf%u is held by VM '%s'", pf, vf, holder);
		return -EEXIST;
	}
	take(p, pf, vf, vm, mac);
	return 0;
}

int gwd_pool_claim_host(struct gwd_pool *p, const char *vm, const char *mac, const char *host,
			unsigned *pf, unsigned *vf, char *why, size_t n)
{
	for (unsigned i = 0; i < p->npfs; i++) {
		for (unsigned v = 0; v < p->pfs[i].nvfs; v++) {
			struct gwd_vf_slot *s = &p->pfs[i].vfs[v];
			if (p->pfs[i].backend != GWD_BACKEND_VFIO || strcmp(s->host, host))
				continue;
			if (s->domain[0] && strcmp(s->vm, vm)) {
				snprintf(
				    why, n,
				    "VF %s (pf%u vf%u) is in use by libvirt domain '%s': godwit "
				    "never takes a VF a libvirt domain holds (remove it from that "
				    "domain, or undefine the domain)",
				    host, i, v, s->domain);
				return -EBUSY;
			}
			if (s->unavailable) {
				snprintf(why, n, "VF %s (pf%u vf%u) is unavailable: %s", host, i, v,
					 s->reason);
				return -EBUSY;
			}
			if (s->vm[0] && strcmp(s->vm, vm)) {
				snprintf(why, n, "VF %s (pf%u vf%u) is held by VM '%s'", host, i, v,
					 s->vm);
				return -EEXIST;
			}
			take(p, i, v, vm, mac);
			*pf = i;
			*vf = v;
			return 0;
		}
	}
	char has[200];
	gwd_pool_summary(p, has, sizeof(has));
	snprintf(why, n, "VF %s is not a VF of a --pf PF of this host (it has: %s)", host, has);
	return -ENOENT;
}

void gwd_pool_set_users(struct gwd_pool *p, const struct gwd_vf_user *u, unsigned nu)
{
	for (unsigned i = 0; i < p->npfs; i++) {
		for (unsigned v = 0; v < p->pfs[i].nvfs; v++) {
			struct gwd_vf_slot *s = &p->pfs[i].vfs[v];
			s->domain[0] = '\0';
			for (unsigned k = 0; s->host[0] && k < nu; k++) {
				if (!strcmp(u[k].addr, s->host)) {
					snprintf(s->domain, sizeof(s->domain), "%s", u[k].domain);
					break;
				}
			}
		}
	}
}

void gwd_pool_release(struct gwd_pool *p, const char *vm, unsigned pf, unsigned vf)
{
	/* Only the holder goes: a real VF's address, driver and group stay. */
	if (pf < p->npfs && vf < p->pfs[pf].nvfs && !strcmp(p->pfs[pf].vfs[vf].vm, vm)) {
		struct gwd_vf_slot *s = &p->pfs[pf].vfs[vf];
		memset(s->vm, 0, sizeof(s->vm));
		memset(s->mac, 0, sizeof(s->mac));
	}
}

void gwd_pool_release_vm(struct gwd_pool *p, const char *vm)
{
	for (unsigned i = 0; i < p->npfs; i++) {
		for (unsigned v = 0; v < p->pfs[i].nvfs; v++)
			gwd_pool_release(p, vm, i, v);
	}
}

void gwd_mac_from_name(const char *name, unsigned index, char *out, size_t n)
{
	/* FNV-1a (64 bit) over the name and the NIC index: the same VM gets the same MACs on
	 * every host, so a migrated VM keeps them. */
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *c = (const unsigned char *)name; *c; c++)
		h = (h ^ *c) * 0x100000001b3ull;
	h = (h ^ (index & 0xffu)) * 0x100000001b3ull;
	/* 0x02: locally administered (bit 1), unicast (bit 0 clear); IEEE 802 clause 8.2. */
	snprintf(out, n, "02:%02x:%02x:%02x:%02x:%02x", (unsigned)(h >> 32) & 0xffu,
		 (unsigned)(h >> 24) & 0xffu, (unsigned)(h >> 16) & 0xffu,
		 (unsigned)(h >> 8) & 0xffu, (unsigned)h & 0xffu);
}
