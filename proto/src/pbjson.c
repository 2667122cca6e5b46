/* SPDX-License-Identifier: Apache-2.0 */
/* protobuf-c messages to JSON following the proto3 JSON mapping, driven by descriptors. */
#include "godwit/buf.h"
#include "godwit/rpc.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void put_str(struct gw_buf *b, const char *s)
{
	gw_buf_put(b, s, strlen(s));
}

static void put_fmt(struct gw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_fmt(struct gw_buf *b, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	gw_buf_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void put_json_string(struct gw_buf *b, const char *s, size_t n)
{
	gw_buf_put(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			gw_buf_put(b, e, 2);
		} else if (c == '\n') {
			put_str(b, "\\n");
		} else if (c < 0x20) {
			put_fmt(b, "\\u%04x", c);
		} else {
			gw_buf_put(b, &s[i], 1);
		}
	}
	gw_buf_put(b, "\"", 1);
}

/* snake_case to lowerCamelCase, the proto3 JSON field name. */
static void put_name(struct gw_buf *b, const char *name)
{
	gw_buf_put(b, "\"", 1);
	bool up = false;
	for (const char *p = name; *p; p++) {
		if (*p == '_') {
			up = true;
			continue;
		}
		char c = up && *p >= 'a' && *p <= 'z' ? (char)(*p - 32) : *p;
		gw_buf_put(b, &c, 1);
		up = false;
	}
	put_str(b, "\":");
}

static void put_base64(struct gw_buf *b, const uint8_t *d, size_t n)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	gw_buf_put(b, "\"", 1);
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)d[i + 1] << 8;
		if (i + 2 < n)
			v |= d[i + 2];
		char o[4] = {tbl[(v >> 18) & 63], tbl[(v >> 12) & 63],
			     i + 1 < n ? tbl[(v >> 6) & 63] : '=', i + 2 < n ? tbl[v & 63] : '='};
		gw_buf_put(b, o, 4);
	}
	gw_buf_put(b, "\"", 1);
}

static void put_value(struct gw_buf *b, const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		put_fmt(b, "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		put_fmt(b, "%" PRIu32, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		put_fmt(b, "\"%" PRId64 "\"", *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		put_fmt(b, "\"%" PRIu64 "\"", *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		put_fmt(b, "%.9g", (double)*(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		put_fmt(b, "%.17g", *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		put_str(b, *(const protobuf_c_boolean *)p ? "true" : "false");
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev =
		    protobuf_c_enum_descriptor_get_value(f->descriptor, v);
		if (ev)
			put_json_string(b, ev->name, strlen(ev->name));
		else
			put_fmt(b, "%d", v);
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(const char *const *)p;
		s = s ? s : "";
		put_json_string(b, s, strlen(s));
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *d = p;
		put_base64(b, d->data, d->len);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *m = *(const ProtobufCMessage *const *)p;
		if (m)
			gw_pb_to_json(m, b);
		else
			put_str(b, "null");
		break;
	}
	}
}

static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

void gw_pb_to_json(const ProtobufCMessage *msg, struct gw_buf *out)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	gw_buf_put(out, "{", 1);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)msg;
		if (i)
			gw_buf_put(out, ",", 1);
		put_name(out, f->name);
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			const char *arr = *(const char *const *)(base + f->offset);
			gw_buf_put(out, "[", 1);
			for (size_t k = 0; k < n; k++) {
				if (k)
					gw_buf_put(out, ",", 1);
				put_value(out, f, arr + k * elem_size(f));
			}
			gw_buf_put(out, "]", 1);
		} else {
			put_value(out, f, base + f->offset);
		}
	}
	gw_buf_put(out, "}", 1);
}
