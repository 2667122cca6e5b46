/* SPDX-License-Identifier: Apache-2.0 */
/* godwit.v1.Host and grpc.health.v1.Health, and the table of everything godwitd serves. */
#include "api.h"

#include "godwit/hv.h"
#include "godwit/v1/host.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* One PF of the pool as a message on the call's arena; caller holds d->lock. */
static Godwit__V1__SriovPf *pf_copy(struct gw_rpc_call *call, const struct gwd_pool *pool,
				    unsigned i)
{
	const struct gwd_pf *pf = &pool->pfs[i];
	Godwit__V1__SriovPf *r = gw_rpc_call_alloc(call, sizeof(*r));
	Godwit__V1__GenDescriptor *g = gw_rpc_call_alloc(call, sizeof(*g));
	Godwit__V1__SriovVf *vfs = gw_rpc_call_alloc(call, SRIOV_EMUL_MAX_VFS * sizeof(*vfs));
	Godwit__V1__SriovVf **vfp = gw_rpc_call_alloc(call, SRIOV_EMUL_MAX_VFS * sizeof(*vfp));
	char summary[80];
	if (!r || !g || !vfs || !vfp)
		return NULL;
	godwit__v1__sriov_pf__init(r);
	gwd_gen_to_pb(&pf->gen, g, summary, sizeof(summary));
	g->summary = gw_rpc_call_strdup(call, summary);
	r->index = i;
	r->backend = (char *)gwd_backend_name(pf->backend);
	r->address = gw_rpc_call_strdup(call, pf->address);
	r->gen = g;
	r->uplink = gw_rpc_call_strdup(call, pf->uplink);
	r->total_vfs = pf->nvfs;
	r->free_vfs = gwd_pool_free_vfs(pool, i);
	for (unsigned v = 0; v < pf->nvfs; v++) {
		godwit__v1__sriov_vf__init(&vfs[v]);
		vfs[v].index = v;
		vfs[v].free = !pf->vfs[v].vm[0];
		vfs[v].vm = gw_rpc_call_strdup(call, pf->vfs[v].vm);
		vfs[v].mac = gw_rpc_call_strdup(call, pf->vfs[v].mac);
		vfs[v].host_address = gw_rpc_call_strdup(call, pf->vfs[v].host);
		vfs[v].driver = gw_rpc_call_strdup(call, pf->vfs[v].driver);
		vfs[v].iommu_group = gw_rpc_call_strdup(call, pf->vfs[v].group);
		vfs[v].available = !pf->vfs[v].unavailable;
		vfs[v].reason = gw_rpc_call_strdup(call, pf->vfs[v].reason);
		vfs[v].libvirt_domain = gw_rpc_call_strdup(call, pf->vfs[v].domain);
		if (pf->vfs[v].domain[0])
			vfs[v].available = false;
		vfp[v] = &vfs[v];
	}
	r->vfs = vfp;
	r->n_vfs = pf->nvfs;
	return r;
}

static int host_get_info(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
			 ProtobufCMessage **resp)
{
	(void)rq;
	struct gwd *d = ctx;
	Godwit__V1__HostInfo *h = gw_rpc_call_alloc(call, sizeof(*h));
	Godwit__V1__KvmInfo *k = gw_rpc_call_alloc(call, sizeof(*k));
	if (!h || !k)
		return -ENOMEM;
	godwit__v1__host_info__init(h);
	godwit__v1__kvm_info__init(k);
	struct hv_kvm_info ki;
	hv_kvm_probe(&ki);
	k->available = ki.available;
	k->api_version = ki.api_version;
	k->irqchip = ki.irqchip;
	k->manual_dirty_log = ki.manual_dirty_log;
	k->tsc_control = ki.tsc_control;
	k->max_vcpus = ki.max_vcpus;
	k->error = gw_rpc_call_strdup(call, ki.error);
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	h->host_id = gw_rpc_call_strdup(call, d->host_id);
	h->hostname = gw_rpc_call_strdup(call, host);
	h->version = gw_rpc_call_strdup(call, GODWIT_VERSION);
	h->kvm = k;
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	h->memory_total_bytes = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
	h->cpus = (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
	/* SR-IOV NICs are in sriov_pfs; devices is for other kinds (none yet). */
	h->n_devices = 0;
	/* What a grant names this host by, when it is a migration's source. */
	h->tls = d->tls != NULL;
	char **names = gw_rpc_call_alloc(call, 8 * sizeof(char *));
	for (const char *p = d->tls_names; names && *p && h->n_tls_names < 8;) {
		size_t l = strcspn(p, ",");
		char *nm = gw_rpc_call_alloc(call, l + 1);
		if (!nm)
			break;
		memcpy(nm, p, l);
		nm[l] = '\0';
		names[h->n_tls_names++] = nm;
		p += l + (p[l] == ',');
	}
	h->tls_names = names;
	h->inventory = gw_rpc_call_strdup(call, d->inv.desc);
	pthread_mutex_lock(&d->lock);
	gwd_pool_refresh(d);
	h->sriov_pfs = gw_rpc_call_alloc(call, GWD_PF_MAX * sizeof(*h->sriov_pfs));
	for (unsigned i = 0; h->sriov_pfs && i < d->pool.npfs; i++) {
		Godwit__V1__SriovPf *pf = pf_copy(call, &d->pool, i);
		if (!pf)
			break;
		h->sriov_pfs[h->n_sriov_pfs++] = pf;
	}
	for (struct gwd_vm *v = d->vms; v; v = v->next) {
		h->vms++;
		if (v->monitor_running)
			h->vms_running++;
	}
	pthread_mutex_unlock(&d->lock);
	*resp = &h->base;
	return 0;
}

static bool known_service(const char *s)
{
	static const char *const services[] = {"", "godwit.v1.Host", "godwit.v1.Vms",
					       "godwit.v1.Migrations", "godwit.v1.Peer"};
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
		if (strcmp(s, services[i]) == 0)
			return true;
	}
	return false;
}

static int health_check(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
			ProtobufCMessage **resp)
{
	struct gwd *d = ctx;
	const Grpc__Health__V1__HealthCheckRequest *req = (const void *)rq;
	const char *svc = req->service ? req->service : "";
	/* The health protocol answers NOT_FOUND for a service the server does not know. */
	if (!known_service(svc)) {
		gw_rpc_call_error(call, "unknown service '%s'", svc);
		return -ENOENT;
	}
	Grpc__Health__V1__HealthCheckResponse *r = gw_rpc_call_alloc(call, sizeof(*r));
	if (!r)
		return -ENOMEM;
	grpc__health__v1__health_check_response__init(r);
	r->status = d->shutting_down
			? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
			: GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	*resp = &r->base;
	return 0;
}

static int health_watch(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq)
{
	struct gwd *d = ctx;
	const Grpc__Health__V1__HealthCheckRequest *req = (const void *)rq;
	Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	r.status = known_service(req->service ? req->service : "")
		       ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
		       : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
	int rc = gw_rpc_stream_send(call, &r.base);
	/* The status only changes when the daemon goes away, which ends the stream. */
	while (rc == 0 && !gw_rpc_call_wait_cancel(call, 1000) && !d->shutting_down)
		;
	return rc;
}

static const struct gw_rpc_method host_methods[] = {
    {.service = &godwit__v1__host__descriptor, .name = "GetInfo", .unary = host_get_info},
    {.service = &grpc__health__v1__health__descriptor,
     .name = "Check",
     .unary = health_check,
     .public = true},
    {.service = &grpc__health__v1__health__descriptor,
     .name = "Watch",
     .stream = health_watch,
     .public = true},
};

size_t gwd_api_methods(struct gw_rpc_method *out, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < sizeof(host_methods) / sizeof(host_methods[0]) && n < cap; i++)
		out[n++] = host_methods[i];
	for (size_t i = 0; i < gwd_vms_nmethods && n < cap; i++)
		out[n++] = gwd_vms_methods[i];
	for (size_t i = 0; i < gwd_peer_nmethods && n < cap; i++)
		out[n++] = gwd_peer_methods[i];
	for (size_t i = 0; i < gwd_migrations_nmethods && n < cap; i++)
		out[n++] = gwd_migrations_methods[i];
	for (size_t i = 0; i < gwd_grant_nmethods && n < cap; i++)
		out[n++] = gwd_grant_methods[i];
	return n;
}
