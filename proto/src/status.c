/* SPDX-License-Identifier: Apache-2.0 */
/* errno <-> gRPC status code (the boundary where godwit's errors become API errors). */
#include "godwit/rpc.h"

#include <errno.h>

enum gw_rpc_code gw_rpc_code_from_errno(int e)
{
	switch (-e) {
	case 0:
		return GW_RPC_OK;
	case EINVAL:
	case ENAMETOOLONG:
	case E2BIG:
	case ENOEXEC:
	case EBADMSG:
		return GW_RPC_INVALID_ARGUMENT;
	case ENOENT:
	case ESRCH:
		return GW_RPC_NOT_FOUND;
	case EEXIST:
		return GW_RPC_ALREADY_EXISTS;
	case EBUSY:
	case EALREADY:
	case ENOTEMPTY:
	case EISCONN:
		return GW_RPC_FAILED_PRECONDITION;
	case EAGAIN:
	case ECONNREFUSED:
	case ECONNRESET:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EPIPE:
	case ENODEV:
		return GW_RPC_UNAVAILABLE;
	case EACCES:
		return GW_RPC_UNAUTHENTICATED;
	case EPERM:
		return GW_RPC_PERMISSION_DENIED;
	case ENOMEM:
	case ENOSPC:
	case EMFILE:
		return GW_RPC_RESOURCE_EXHAUSTED;
	case ETIMEDOUT:
		return GW_RPC_DEADLINE_EXCEEDED;
	case ECANCELED:
		return GW_RPC_CANCELLED;
	case ENOSYS:
	case ENOTSUP:
		return GW_RPC_UNIMPLEMENTED;
	case ERANGE:
		return GW_RPC_OUT_OF_RANGE;
	case EPROTO:
		return GW_RPC_ABORTED;
	default:
		return GW_RPC_INTERNAL;
	}
}

int gw_rpc_errno_from_code(enum gw_rpc_code c)
{
	switch (c) {
	case GW_RPC_OK:
		return 0;
	case GW_RPC_CANCELLED:
		return -ECANCELED;
	case GW_RPC_INVALID_ARGUMENT:
		return -EINVAL;
	case GW_RPC_DEADLINE_EXCEEDED:
		return -ETIMEDOUT;
	case GW_RPC_NOT_FOUND:
		return -ENOENT;
	case GW_RPC_ALREADY_EXISTS:
		return -EEXIST;
	case GW_RPC_PERMISSION_DENIED:
		return -EPERM;
	case GW_RPC_RESOURCE_EXHAUSTED:
		return -ENOSPC;
	case GW_RPC_FAILED_PRECONDITION:
		return -EBUSY;
	case GW_RPC_ABORTED:
		return -EPROTO;
	case GW_RPC_OUT_OF_RANGE:
		return -ERANGE;
	case GW_RPC_UNIMPLEMENTED:
		return -ENOSYS;
	case GW_RPC_UNAVAILABLE:
		return -ECONNREFUSED;
	case GW_RPC_UNAUTHENTICATED:
		return -EACCES;
	default:
		return -EIO;
	}
}

const char *gw_rpc_code_name(enum gw_rpc_code c)
{
	static const char *const names[] = {
	    "OK",
	    "CANCELLED",
	    "UNKNOWN",
	    "INVALID_ARGUMENT",
	    "DEADLINE_EXCEEDED",
	    "NOT_FOUND",
	    "ALREADY_EXISTS",
	    "PERMISSION_DENIED",
	    "RESOURCE_EXHAUSTED",
	    "FAILED_PRECONDITION",
	    "ABORTED",
	    "OUT_OF_RANGE",
	    "UNIMPLEMENTED",
	    "INTERNAL",
	    "UNAVAILABLE",
	    "DATA_LOSS",
	    "UNAUTHENTICATED",
	};
	if ((unsigned)c < sizeof(names) / sizeof(names[0]))
		return names[c];
	return "UNKNOWN";
}
