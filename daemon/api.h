/* SPDX-License-Identifier: Apache-2.0 */
/* Method tables of godwitd's services, joined in api.c. */
#ifndef GODWIT_DAEMON_API_H
#define GODWIT_DAEMON_API_H

#include "daemon.h"

extern const struct gw_rpc_method gwd_vms_methods[];
extern const size_t gwd_vms_nmethods;

/* Builds the full table (Host, Vms, Health) in out; returns the count. */
size_t gwd_api_methods(struct gw_rpc_method *out, size_t cap);

#endif
