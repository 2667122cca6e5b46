/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keys and certificates for the gRPC API, read and checked once with OpenSSL: gRPC core would
 * take a bad file too, and fail each handshake later with nothing an operator can act on. So a
 * key that is not the certificate's, a certificate that expired or is not yet valid, or one the
 * CA did not sign is refused here, with the file named.
 */
#include "rpc_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PEM_MAX (1 << 20)

static int slurp(const char *path, char **out, char *why, size_t n)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(why, n, "cannot read %s: %s", path, strerror(errno));
		return -errno;
	}
	char *buf = malloc(PEM_MAX + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	size_t got = fread(buf, 1, PEM_MAX + 1, f);
	fclose(f);
	if (got == 0 || got > PEM_MAX) {
		snprintf(why, n, "%s is %s", path, got ? "larger than 1 MiB" : "empty");
		free(buf);
		return -EINVAL;
	}
	buf[got] = '\0';
	*out = buf;
	return 0;
}

static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	ERR_clear_error();
	return r ? r : "not PEM";
}

static X509 *pem_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return x;
}

/* Every certificate in a PEM bundle goes into the store: 0, or -EINVAL when none parses. */
static int store_add_pem(X509_STORE *st, const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	if (!b)
		return -ENOMEM;
	int added = 0;
	X509 *x;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		if (X509_STORE_add_cert(st, x) == 1)
			added++;
		X509_free(x);
	}
	ERR_clear_error(); /* the end of the bundle reads as an error */
	BIO_free(b);
	return added ? 0 : -EINVAL;
}

/* The certificate is valid now and chains to the CA bundle: 0, or -EKEYREJECTED with why. */
static int check_chain(X509 *cert, const char *ca_pem, const char *cert_path, char *why, size_t n)
{
	int rc = -ENOMEM;
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	if (!st || !ctx)
		goto out;
	if (store_add_pem(st, ca_pem)) {
		snprintf(why, n, "the CA file holds no PEM certificate");
		rc = -EINVAL;
		goto out;
	}
	rc = -EKEYREJECTED;
	if (X509_STORE_CTX_init(ctx, st, cert, NULL) != 1)
		goto out;
	if (X509_verify_cert(ctx) == 1) {
		rc = 0;
		goto out;
	}
	snprintf(why, n, "%s: %s (make it with the CA in the CA file: docs/operator-guide.md)",
		 cert_path, X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return rc;
}

/* A key readable by group or others is a key others may have: refuse it. */
static int check_key_mode(const char *path, char *why, size_t n)
{
	struct stat sb;
	if (stat(path, &sb) == 0 && (sb.st_mode & 077)) {
		snprintf(why, n, "%s is readable by group or others (mode %03o): chmod 600 it",
			 path, (unsigned)(sb.st_mode & 0777));
		return -EPERM;
	}
	return 0;
}

int gw_rpc_tls_load(const char *cert_path, const char *key_path, const char *ca_path,
		    struct gw_rpc_tls **out, char *why, size_t n)
{
	struct gw_rpc_tls *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	int rc;
	if (!ca_path) {
		snprintf(why, n, "a CA file is needed (--tls-ca)");
		rc = -EINVAL;
		goto err;
	}
	if (!cert_path != !key_path) {
		snprintf(why, n,
			 "a certificate needs its key and a key its certificate "
			 "(--tls-cert and --tls-key)");
		rc = -EINVAL;
		goto err;
	}
	if ((rc = slurp(ca_path, &t->ca_pem, why, n)))
		goto err;
	if (!cert_path) {
		*out = t;
		return 0;
	}
	if ((rc = check_key_mode(key_path, why, n)) ||
	    (rc = slurp(cert_path, &t->cert_pem, why, n)) ||
	    (rc = slurp(key_path, &t->key_pem, why, n)))
		goto err;
	rc = -EINVAL;
	if (!(cert = pem_cert(t->cert_pem))) {
		snprintf(why, n, "%s: no certificate (%s)", cert_path, ssl_reason());
		goto err;
	}
	BIO *b = BIO_new_mem_buf(t->key_pem, -1);
	key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (!key) {
		snprintf(why, n, "%s: no private key, or one with a passphrase (%s)", key_path,
			 ssl_reason());
		goto err;
	}
	if (X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		snprintf(why, n, "%s is not the key of the certificate in %s", key_path, cert_path);
		goto err;
	}
	if ((rc = check_chain(cert, t->ca_pem, cert_path, why, n)))
		goto err;
	X509_free(cert);
	EVP_PKEY_free(key);
	*out = t;
	return 0;
err:
	X509_free(cert);
	EVP_PKEY_free(key);
	gw_rpc_tls_free(t);
	return rc;
}

int gw_rpc_tls_names(const struct gw_rpc_tls *t, char *out, size_t n)
{
	out[0] = '\0';
	X509 *x = t->cert_pem ? pem_cert(t->cert_pem) : NULL;
	if (!x)
		return -ENOENT;
	GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	size_t used = 0;
	for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		char one[64] = "";
		if (g->type == GEN_DNS) {
			const unsigned char *s = ASN1_STRING_get0_data(g->d.dNSName);
			snprintf(one, sizeof(one), "%.*s", ASN1_STRING_length(g->d.dNSName),
				 (const char *)s);
		} else if (g->type == GEN_IPADD) {
			/* As gRPC reports it: dotted quad, or IPv6 text. */
			int len = ASN1_STRING_length(g->d.iPAddress);
			const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);
			if (len == 4 || len == 16)
				inet_ntop(len == 4 ? AF_INET : AF_INET6, a, one, sizeof(one));
		}
		if (!one[0] || used + strlen(one) + 2 > n)
			continue;
		used += (size_t)snprintf(out + used, n - used, "%s%s", used ? "," : "", one);
	}
	GENERAL_NAMES_free(names);
	X509_free(x);
	return 0;
}

void gw_rpc_tls_free(struct gw_rpc_tls *t)
{
	if (!t)
		return;
	free(t->ca_pem);
	free(t->cert_pem);
	if (t->key_pem) {
		explicit_bzero(t->key_pem, strlen(t->key_pem));
		free(t->key_pem);
	}
	free(t);
}
