/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kTLS on the receiving side, by hand. OpenSSL 3.0 gives the kernel a TLS 1.3 connection's
 * sending side only, so the destination, which receives nearly all of a migration's bytes,
 * would decrypt them in user space and copy them once more. The kernel needs three things
 * (Documentation/networking/tls.rst): the key and IV of the peer's application traffic
 * secret (RFC 8446 7.3), and the sequence number of the next record. The secret comes from
 * OpenSSL's key log callback, kept per SSL object; the sequence number is the count of
 * records OpenSSL decrypted after the handshake (the message callback sees each), which is
 * exact because read-ahead stays off until this is done, so OpenSSL never holds bytes of a
 * record it has not processed.
 */
#include "ktls_rx.h"

#include <endian.h>
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

#define SECRET_MAX 64 /* SHA-384's 48 bytes, with room */
#define KEY_LEN	   16 /* AES-128 */
#define IV_LEN	   12 /* RFC 8446 5.3: the per-record nonce's length */

struct rx_state {
	uint8_t secret[SECRET_MAX];
	size_t len;
	uint64_t records; /* records read under the application keys, by OpenSSL */
};

/* OpenSSL's slot for rx_state in each SSL object: allocated once for the process, then
 * only read. */
static pthread_once_t rx_once = PTHREAD_ONCE_INIT;
static int rx_index = -1;

static void rx_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (ptr) {
		OPENSSL_cleanse(ptr, sizeof(struct rx_state));
		free(ptr);
	}
}

static void rx_index_init(void)
{
	rx_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, rx_free);
}

static struct rx_state *state_of(const SSL *ssl)
{
	return rx_index >= 0 ? SSL_get_ex_data(ssl, rx_index) : NULL;
}

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "LABEL <client random> <secret>", in hex (the NSS key log format OpenSSL writes). Keeps
 * the peer's application traffic secret: the client's on the server, and the reverse. */
static void keylog(const SSL *ssl, const char *line)
{
	struct rx_state *st = state_of(ssl);
	const char *want =
	    SSL_is_server(ssl) ? "CLIENT_TRAFFIC_SECRET_0 " : "SERVER_TRAFFIC_SECRET_0 ";
	if (!st || strncmp(line, want, strlen(want)) != 0)
		return;
	const char *hex = strrchr(line, ' ');
	if (!hex)
		return;
	hex++;
	size_t n = strlen(hex);
	if (n % 2 || n / 2 > SECRET_MAX)
		return;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_nibble(hex[2 * i]), lo = hex_nibble(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			st->len = 0;
			return;
		}
		st->secret[i] = (uint8_t)(hi << 4 | lo);
	}
	st->len = n / 2;
}

/* Each record OpenSSL decrypts in TLS 1.3 reports its inner content type; those read after
 * the handshake used the application keys, and each advanced their sequence number. */
static void msg(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl,
		void *arg)
{
	(void)version, (void)buf, (void)len, (void)arg;
	struct rx_state *st;
	if (write_p || content_type != SSL3_RT_INNER_CONTENT_TYPE || !SSL_is_init_finished(ssl))
		return;
	if ((st = state_of(ssl)))
		st->records++;
}

int mig_ktls_rx_prepare(SSL_CTX *ctx)
{
	pthread_once(&rx_once, rx_index_init);
	if (rx_index < 0)
		return -ENOMEM;
	SSL_CTX_set_keylog_callback(ctx, keylog);
	SSL_CTX_set_msg_callback(ctx, msg);
	return 0;
}

int mig_ktls_rx_attach(SSL *ssl)
{
	if (rx_index < 0)
		return 0; /* prepare was not called: kTLS was not asked for */
	struct rx_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	if (!SSL_set_ex_data(ssl, rx_index, st)) {
		free(st);
		return -ENOMEM;
	}
	return 0;
}

/* HKDF-Expand-Label(secret, label, "", len) with SHA-256 (RFC 8446 7.1). */
static int expand_label(const struct rx_state *st, const char *label, uint8_t *out, size_t len)
{
	uint8_t info[2 + 1 + 255 + 1];
	size_t ll = strlen("tls13 ") + strlen(label), n = 0;
	info[n++] = (uint8_t)(len >> 8);
	info[n++] = (uint8_t)len;
	info[n++] = (uint8_t)ll;
	memcpy(info + n, "tls13 ", 6);
	memcpy(info + n + 6, label, strlen(label));
	n += ll;
	info[n++] = 0; /* no context */
	return mig_hkdf_sha256(true, st->secret, st->len, NULL, 0, info, n, out, len);
}

int mig_hkdf_sha256(bool expand_only, const void *key, size_t klen, const void *salt, size_t slen,
		    const void *info, size_t ilen, uint8_t *out, size_t olen)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	EVP_KDF_free(kdf);
	if (!kctx)
		return -ENOMEM;
	OSSL_PARAM params[6], *p = params;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, klen);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, ilen);
	if (expand_only)
		*p++ =
		    OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, (char *)"EXPAND_ONLY", 0);
	if (salt)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, slen);
	*p = OSSL_PARAM_construct_end();
	int rc = EVP_KDF_derive(kctx, out, olen, params) == 1 ? 0 : -EINVAL;
	EVP_KDF_CTX_free(kctx);
	ERR_clear_error();
	return rc;
}

bool mig_ktls_accelerated(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	/* Blocks of "name : ...", "driver : ...", ... lines; an AES cipher whose driver is not
	 * the kernel's C code (aes-generic, aes-fixed-time) is the CPU's: aes-aesni on x86,
	 * aes-ce on arm64, and so on. */
	char line[256], name[64] = "";
	bool fast = false;
	while (!fast && fgets(line, sizeof(line), f)) {
		char key[32], val[128];
		if (sscanf(line, "%31s : %127s", key, val) != 2)
			continue;
		if (strcmp(key, "name") == 0)
			snprintf(name, sizeof(name), "%s", val);
		else if (strcmp(key, "driver") == 0 && strcmp(name, "aes") == 0)
			fast =
			    strcmp(val, "aes-generic") != 0 && strcmp(val, "aes-fixed-time") != 0;
	}
	fclose(f);
	return fast;
}

int mig_ktls_rx_install(SSL *ssl, int fd)
{
	struct rx_state *st = state_of(ssl);
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	/* 0x03001301: TLS_AES_128_GCM_SHA256, whose hash gives a 32-byte secret. */
	if (!st || st->len != 32 || !SSL_is_init_finished(ssl) ||
	    SSL_version(ssl) != TLS1_3_VERSION || !c || SSL_CIPHER_get_id(c) != 0x03001301 ||
	    SSL_has_pending(ssl))
		return -ENOTSUP;
	uint8_t key[KEY_LEN], iv[IV_LEN];
	struct tls12_crypto_info_aes_gcm_128 ci;
	memset(&ci, 0, sizeof(ci));
	int rc = expand_label(st, "key", key, sizeof(key));
	if (rc == 0)
		rc = expand_label(st, "iv", iv, sizeof(iv));
	if (rc == 0) {
		ci.info.version = TLS_1_3_VERSION;
		ci.info.cipher_type = TLS_CIPHER_AES_GCM_128;
		memcpy(ci.key, key, sizeof(ci.key));
		/* The kernel's 12-byte nonce base is salt (4) then iv (8). */
		memcpy(ci.salt, iv, sizeof(ci.salt));
		memcpy(ci.iv, iv + sizeof(ci.salt), sizeof(ci.iv));
		uint64_t seq = htobe64(st->records);
		memcpy(ci.rec_seq, &seq, sizeof(ci.rec_seq));
		/* The upper layer is there already when the kernel took the sending side. */
		if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0 && errno != EEXIST)
			rc = -errno;
		else if (setsockopt(fd, SOL_TLS, TLS_RX, &ci, sizeof(ci)) < 0)
			rc = -errno;
	}
	if (rc == 0) {
		/* Our peer never pads its records (neither OpenSSL nor the kernel does by
		 * default), so the kernel may decrypt straight into the reader's buffer
		 * (Linux >= 6.0; a padded record still works, at a cost). */
		int one = 1;
		(void)setsockopt(fd, SOL_TLS, TLS_RX_EXPECT_NO_PAD, &one, sizeof(one));
	}
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(iv, sizeof(iv));
	OPENSSL_cleanse(&ci, sizeof(ci));
	OPENSSL_cleanse(st->secret, sizeof(st->secret));
	st->len = 0;
	return rc;
}
