/* SPDX-License-Identifier: Apache-2.0 */
/* Method tables of godwitd's services, joined in api.c. */
#ifndef GODWIT_DAEMON_API_H
#define GODWIT_DAEMON_API_H

#include "daemon.h"
#include "godwit/vmm/v1/vmm.pb-c.h"

extern const struct gw_rpc_method gwd_vms_methods[];
extern const size_t gwd_vms_nmethods;
extern const struct gw_rpc_method gwd_peer_methods[];
extern const size_t gwd_peer_nmethods;
extern const struct gw_rpc_method gwd_migrations_methods[];
extern const size_t gwd_migrations_nmethods;
extern const struct gw_rpc_method gwd_grant_methods[];
extern const size_t gwd_grant_nmethods;

/* Builds the full table (Host, Vms, Health) in out; returns the count. */
size_t gwd_api_methods(struct gw_rpc_method *out, size_t cap);

#endif
