/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS on the gRPC layer, with certificates scripts/make-test-ca.sh makes: the server's
 * certificate is checked against the CA and the name dialled, Peer methods need a client
 * certificate the CA signed, and the loader refuses a key that is not the certificate's, an
 * expired certificate, one of another CA and a key others can read.
 */
#include "godwit/log.h"
#include "godwit/rpc.h"
#include "godwit/v1/peer.pb-c.h"
#include "godwit/v1/vms.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"

#include "../../../proto/src/rpc_priv.h"
#include "../../lib/gw_test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static struct gw_rpc_server *srv;
static struct gw_rpc_tls *srv_tls;
static char target[64];

static int t_get(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		 ProtobufCMessage **resp)
{
	(void)ctx;
	const Godwit__V1__VmRef *req = (const void *)rq;
	Godwit__V1__Vm *vm = gw_rpc_call_alloc(call, sizeof(*vm));
	godwit__v1__vm__init(vm);
	vm->name = gw_rpc_call_printf(call, "vm-%s", req->name);
	*resp = &vm->base;
	return 0;
}

/* Commit, as a Peer method: the handler admits host "h-peer" with the grant "g1". */
static int t_commit(void *ctx, struct gw_rpc_call *call, const ProtobufCMessage *rq,
		    ProtobufCMessage **resp)
{
	(void)ctx;
	(void)rq;
	const char *grant = gw_rpc_call_credential(call, "Grant");
	if (!gw_rpc_call_peer_has_name(call, "h-peer") || !grant || strcmp(grant, "g1")) {
		gw_rpc_call_error(call, "refused: host '%s', grant %s",
				  gw_rpc_call_peer_names(call), grant ? grant : "none");
		return -EACCES;
	}
	Godwit__V1__CommitResponse *r = gw_rpc_call_alloc(call, sizeof(*r));
	godwit__v1__commit_response__init(r);
	*resp = &r->base;
	return 0;
}

static const struct gw_rpc_method methods[] = {
    {.service = &godwit__v1__vms__descriptor, .name = "Get", .unary = t_get},
    {.service = &godwit__v1__peer__descriptor, .name = "Commit", .unary = t_commit, .peer = true},
};

static int make(const char *args)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "%s/scripts/make-test-ca.sh %s %s", GW_SOURCE_DIR, dir, args);
	return system(cmd);
}

static void path(char *out, size_t n, const char *leaf)
{
	snprintf(out, n, "%s/%s", dir, leaf);
}

/* DIR/NAME.pem and its key, with CA DIR/CA.pem: the loaded material, or NULL. */
static struct gw_rpc_tls *load(const char *name, const char *ca, char *why, size_t n)
{
	char c[128], k[128], a[128], leaf[64];
	snprintf(leaf, sizeof(leaf), "%s.pem", name);
	path(c, sizeof(c), leaf);
	snprintf(leaf, sizeof(leaf), "%s-key.pem", name);
	path(k, sizeof(k), leaf);
	snprintf(leaf, sizeof(leaf), "%s.pem", ca);
	path(a, sizeof(a), leaf);
	struct gw_rpc_tls *t = NULL;
	gw_rpc_tls_load(name[0] ? c : NULL, name[0] ? k : NULL, a, &t, why, n);
	return t;
}

/* Get over TLS with the token, as a client holding `client` (or none) and trusting `ca`. */
static enum gw_rpc_code get_tls(const char *to, const char *client, const char *ca,
				const char *server_name, struct gw_rpc_status *st)
{
	char why[256];
	struct gw_rpc_tls *t = load(client, ca, why, sizeof(why));
	if (!t)
		return GW_RPC_INTERNAL;
	struct gw_rpc_client *c;
	if (gw_rpc_client_open_tls(to, "tok", 0, t, server_name, &c)) {
		gw_rpc_tls_free(t);
		return GW_RPC_INTERNAL;
	}
	Godwit__V1__VmRef ref = GODWIT__V1__VM_REF__INIT;
	ref.name = (char *)"a";
	ProtobufCMessage *resp = NULL;
	enum gw_rpc_code code =
	    gw_rpc_unary(c, &godwit__v1__vms__descriptor, "Get", &ref.base, &resp, 10000, st);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	gw_rpc_client_close(c);
	gw_rpc_tls_free(t);
	return code;
}

/* Peer Commit as a client holding `client`, with a grant. */
static enum gw_rpc_code commit(const char *client, const char *ca, const char *grant,
			       struct gw_rpc_status *st)
{
	char why[256];
	struct gw_rpc_tls *t = load(client, ca, why, sizeof(why));
	if (!t)
		return GW_RPC_INTERNAL;
	struct gw_rpc_client *c;
	if (gw_rpc_client_open_tls(target, NULL, 0, t, NULL, &c)) {
		gw_rpc_tls_free(t);
		return GW_RPC_INTERNAL;
	}
	if (grant)
		gw_rpc_client_set_auth(c, "Grant", grant);
	Godwit__V1__CommitRequest rq = GODWIT__V1__COMMIT_REQUEST__INIT;
	rq.migration_id = (char *)"m1";
	ProtobufCMessage *resp = NULL;
	enum gw_rpc_code code =
	    gw_rpc_unary(c, &godwit__v1__peer__descriptor, "Commit", &rq.base, &resp, 10000, st);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	gw_rpc_client_close(c);
	gw_rpc_tls_free(t);
	return code;
}

static int suite_init(void)
{
	snprintf(dir, sizeof(dir), "/tmp/gw-tls-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	/* ca: the host's CA; evil: another. srv: this host as 127.0.0.1; other: another host;
	 * old: this host, expired; peer: a godwit host as a client; rogue: one of the other CA. */
	if (make("ca") || make("ca --ca evil") || make("host srv IP:127.0.0.1,DNS:localhost") ||
	    make("host other IP:10.9.9.9,DNS:elsewhere") ||
	    make("host old IP:127.0.0.1 --days -1") || make("host peer DNS:h-peer") ||
	    make("host peer2 DNS:h-other") || make("host rogue DNS:h-peer --ca evil") ||
	    make("host lapsed DNS:h-peer --days -1"))
		return 1;
	char why[256];
	srv_tls = load("srv", "ca", why, sizeof(why));
	if (!srv_tls) {
		fprintf(stderr, "%s\n", why);
		return 1;
	}
	const char *listen[] = {"127.0.0.1:0", NULL};
	struct gw_rpc_server_config cfg = {.listen = listen, .token = "tok", .tls = srv_tls};
	if (gw_rpc_server_start(&cfg, methods, GW_TEST_COUNT(methods), NULL, &srv))
		return 1;
	snprintf(target, sizeof(target), "127.0.0.1:%d", gw_rpc_server_port(srv, 0));
	return 0;
}

static void test_tls_calls(void)
{
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL(get_tls(target, "", "ca", NULL, &st), GW_RPC_OK);
	/* A client certificate changes nothing for token calls. */
	CU_ASSERT_EQUAL(get_tls(target, "peer", "ca", NULL, &st), GW_RPC_OK);
	/* Plaintext to a TLS listener gets nowhere. */
	struct gw_rpc_client *c;
	CU_ASSERT_EQUAL_FATAL(gw_rpc_client_open(target, "tok", 0, &c), 0);
	Godwit__V1__VmRef ref = GODWIT__V1__VM_REF__INIT;
	ref.name = (char *)"a";
	ProtobufCMessage *resp = NULL;
	CU_ASSERT_NOT_EQUAL(
	    gw_rpc_unary(c, &godwit__v1__vms__descriptor, "Get", &ref.base, &resp, 5000, &st),
	    GW_RPC_OK);
	gw_rpc_client_close(c);
}

static void test_wrong_ca(void)
{
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL(get_tls(target, "", "evil", NULL, &st), GW_RPC_UNAVAILABLE);
}

/* A server whose certificate names another host, or has expired, is not talked to. */
static void test_server_identity(void)
{
	char why[256];
	struct gw_rpc_tls *t = load("other", "ca", why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	const char *listen[] = {"127.0.0.1:0", NULL};
	struct gw_rpc_server_config cfg = {.listen = listen, .token = "tok", .tls = t};
	struct gw_rpc_server *o;
	CU_ASSERT_EQUAL_FATAL(gw_rpc_server_start(&cfg, methods, GW_TEST_COUNT(methods), NULL, &o),
			      0);
	char to[64];
	snprintf(to, sizeof(to), "127.0.0.1:%d", gw_rpc_server_port(o, 0));
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL(get_tls(to, "", "ca", NULL, &st), GW_RPC_UNAVAILABLE);
	/* The same server, when the name it is dialled by is the one it carries. */
	CU_ASSERT_EQUAL(get_tls(to, "", "ca", "elsewhere", &st), GW_RPC_OK);
	gw_rpc_server_shutdown(o);
	gw_rpc_tls_free(t);

	/* An expired certificate, as a server still serving with it would present it (the
	 * loader refuses it, so it is put together here by hand). */
	struct gw_rpc_tls *old = load("", "ca", why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(old);
	FILE *f;
	char p[128], *cert = calloc(1, 8192), *key = calloc(1, 8192);
	path(p, sizeof(p), "old.pem");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f = fopen(p, "r"));
	CU_ASSERT(fread(cert, 1, 8191, f) > 0);
	fclose(f);
	path(p, sizeof(p), "old-key.pem");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f = fopen(p, "r"));
	CU_ASSERT(fread(key, 1, 8191, f) > 0);
	fclose(f);
	old->cert_pem = cert;
	old->key_pem = key;
	cfg.tls = old;
	CU_ASSERT_EQUAL_FATAL(gw_rpc_server_start(&cfg, methods, GW_TEST_COUNT(methods), NULL, &o),
			      0);
	snprintf(to, sizeof(to), "127.0.0.1:%d", gw_rpc_server_port(o, 0));
	CU_ASSERT_EQUAL(get_tls(to, "", "ca", NULL, &st), GW_RPC_UNAVAILABLE);
	gw_rpc_server_shutdown(o);
	gw_rpc_tls_free(old);
}

/* Peer methods: a client certificate of the CA is required, and the handler sees its names. */
static void test_peer_methods(void)
{
	struct gw_rpc_status st;
	CU_ASSERT_EQUAL(commit("peer", "ca", "g1", &st), GW_RPC_OK);
	/* No client certificate: refused before the handler, whatever the grant. */
	CU_ASSERT_EQUAL(commit("", "ca", "g1", &st), GW_RPC_UNAUTHENTICATED);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "host certificate"));
	/* A certificate of another host: the handler refuses it by name. */
	CU_ASSERT_EQUAL(commit("peer2", "ca", "g1", &st), GW_RPC_UNAUTHENTICATED);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "h-other"));
	/* The right host without the grant. */
	CU_ASSERT_EQUAL(commit("peer", "ca", "g2", &st), GW_RPC_UNAUTHENTICATED);
	/* A certificate of another CA, or an expired one: the handshake fails. */
	char why[256];
	struct gw_rpc_tls *t = load("rogue", "evil", why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	/* The rogue host trusts our CA as well, so only its own certificate is at fault. */
	free(t->ca_pem);
	t->ca_pem = strdup(srv_tls->ca_pem);
	struct gw_rpc_client *c;
	CU_ASSERT_EQUAL_FATAL(gw_rpc_client_open_tls(target, NULL, 0, t, NULL, &c), 0);
	gw_rpc_client_set_auth(c, "Grant", "g1");
	Godwit__V1__CommitRequest rq = GODWIT__V1__COMMIT_REQUEST__INIT;
	rq.migration_id = (char *)"m1";
	ProtobufCMessage *resp = NULL;
	CU_ASSERT_NOT_EQUAL(
	    gw_rpc_unary(c, &godwit__v1__peer__descriptor, "Commit", &rq.base, &resp, 10000, &st),
	    GW_RPC_OK);
	gw_rpc_client_close(c);
	gw_rpc_tls_free(t);
}

static void test_loader(void)
{
	char why[256];
	struct gw_rpc_tls *t;
	char c[128], k[128], a[128], k2[128], e[128];
	path(c, sizeof(c), "srv.pem");
	path(k, sizeof(k), "srv-key.pem");
	path(a, sizeof(a), "ca.pem");
	path(k2, sizeof(k2), "peer-key.pem");
	path(e, sizeof(e), "evil.pem");
	CU_ASSERT_EQUAL(gw_rpc_tls_load(c, k, a, &t, why, sizeof(why)), 0);
	gw_rpc_tls_free(t);
	why[0] = '\0';
	CU_ASSERT_EQUAL(gw_rpc_tls_load(c, k2, a, &t, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "is not the key of"));
	CU_ASSERT_EQUAL(gw_rpc_tls_load(c, k, e, &t, why, sizeof(why)), -EKEYREJECTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "local issuer"));
	path(c, sizeof(c), "old.pem");
	path(k, sizeof(k), "old-key.pem");
	CU_ASSERT_EQUAL(gw_rpc_tls_load(c, k, a, &t, why, sizeof(why)), -EKEYREJECTED);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "expired"));
	CU_ASSERT_EQUAL(chmod(k, 0644), 0);
	CU_ASSERT_EQUAL(gw_rpc_tls_load(c, k, a, &t, why, sizeof(why)), -EPERM);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "chmod 600"));
	CU_ASSERT_EQUAL(gw_rpc_tls_load(c, NULL, a, &t, why, sizeof(why)), -EINVAL);
	path(a, sizeof(a), "nothing.pem");
	CU_ASSERT_EQUAL(gw_rpc_tls_load(NULL, NULL, a, &t, why, sizeof(why)), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "nothing.pem"));
}

int main(void)
{
	gw_log_set_level(GW_LOG_ERROR);
	if (suite_init()) {
		fprintf(stderr, "cannot make the test certificates or start the TLS server\n");
		return 1;
	}
	static const struct gw_test_case cases[] = {
	    {"calls over TLS; plaintext to a TLS listener fails", test_tls_calls},
	    {"a server certificate of another CA is refused", test_wrong_ca},
	    {"a server certificate of another host, or expired, is refused", test_server_identity},
	    {"Peer methods need a host certificate the CA signed", test_peer_methods},
	    {"the loader refuses bad keys and certificates", test_loader},
	};
	int rc = gw_test_run("rpc-tls", cases, GW_TEST_COUNT(cases));
	gw_rpc_server_shutdown(srv);
	gw_rpc_tls_free(srv_tls);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return rc;
}
