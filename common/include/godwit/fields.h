/* SPDX-License-Identifier: Apache-2.0 */
/* Device and VM state described as a table of fields, saved and loaded by one generic codec. */
#ifndef GODWIT_FIELDS_H
#define GODWIT_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#include "godwit/buf.h"

/*
 * A state object is a plain struct; its table lists the members that travel, each with a
 * field id that is part of the wire format (never renumbered, never reused). Saving writes one
 * section (gw_sect_begin) with one field per table entry, in table order; loading checks each
 * field's id, length and flags against the table (docs/state-format.md, "Field tables"). Like
 * QEMU's VMStateDescription, the table is the format: no serializer is written by hand.
 */

enum gw_field_flags {
	/* May be absent on load (the member keeps what the caller put there). The writer marks
	 * it optional on the wire, so a reader that does not know its id skips it. */
	GW_FIELD_OPTIONAL = 1u << 0,
	/* 0..size bytes in whole units of `unit` bytes; the member at count_offset (u16 or u32)
	 * holds how many units are in use. */
	GW_FIELD_VARLEN = 1u << 1,
	/* VARLEN: the count member holds bytes, not units. */
	GW_FIELD_COUNT_BYTES = 1u << 2,
	/* VARLEN: at least one unit. */
	GW_FIELD_NONEMPTY = 1u << 3,
	/* The member is a pointer to the bytes; the loader allocates them (malloc) and
	 * gw_fields_release frees them. */
	GW_FIELD_ALLOC = 1u << 4,
	/* Every byte is 0 or 1: the member is a bool or an array of bool. */
	GW_FIELD_BOOL = 1u << 5,
};

struct gw_field {
	uint16_t id;	       /* 1..65535, unique in its table */
	uint16_t flags;	       /* enum gw_field_flags */
	uint32_t offset;       /* of the member in the state struct */
	uint32_t size;	       /* bytes on the wire; VARLEN: the most */
	uint32_t unit;	       /* VARLEN: bytes per unit */
	uint32_t count_offset; /* VARLEN: the member that counts units (or bytes) */
	uint8_t count_size;    /* VARLEN: 2 or 4 */
	const char *name;
};

struct gw_fields {
	const char *name;   /* for messages: "vcpu", "uart16550" ... */
	uint32_t magic;	    /* of the section */
	uint16_t version;   /* of the section: bump it when a field changes size or meaning */
	uint16_t nfields;   /* at most GW_FIELDS_MAX */
	size_t struct_size; /* of the state struct: every member lies inside it */
	const struct gw_field *fields;
};

#define GW_FIELDS_MAX 64

#define GW_MEMBER_SIZE(type, m) sizeof(((type *)0)->m)
/* sizeof a counter member, or a compile error if it is neither a u16 nor a u32. */
#define GW_COUNT_SIZE(type, m)                                                                     \
	sizeof(char[GW_MEMBER_SIZE(type, m) == 2 || GW_MEMBER_SIZE(type, m) == 4 ? 1 : -1]) *      \
	    GW_MEMBER_SIZE(type, m)

/* A member saved as it is in memory (scalars, arrays, fixed structs). */
#define GW_FIELD(id_, type, m, flags_)                                                             \
	{                                                                                          \
		.id = (id_), .flags = (flags_), .offset = offsetof(type, m),                       \
		.size = GW_MEMBER_SIZE(type, m), .name = #m                                        \
	}

/* An array member of which the first `count` elements are in use. */
#define GW_FIELD_ARRAY(id_, type, m, count, flags_)                                                \
	{                                                                                          \
		.id = (id_), .flags = (flags_) | GW_FIELD_VARLEN, .offset = offsetof(type, m),     \
		.size = GW_MEMBER_SIZE(type, m), .unit = GW_MEMBER_SIZE(type, m[0]),               \
		.count_offset = offsetof(type, count), .count_size = GW_COUNT_SIZE(type, count),   \
		.name = #m                                                                         \
	}

/* A pointer member to `len` bytes (a multiple of unit_, at most max_), allocated on load. */
#define GW_FIELD_BUFFER(id_, type, m, len, max_, unit_, flags_)                                    \
	{                                                                                          \
		.id = (id_),                                                                       \
		.flags = (flags_) | GW_FIELD_VARLEN | GW_FIELD_ALLOC | GW_FIELD_COUNT_BYTES,       \
		.offset = offsetof(type, m), .size = (max_), .unit = (unit_),                      \
		.count_offset = offsetof(type, len), .count_size = GW_COUNT_SIZE(type, len),       \
		.name = #m                                                                         \
	}

#define GW_FIELDS_TABLE(name_, magic_, version_, type, array)                                      \
	{                                                                                          \
		.name = (name_), .magic = (magic_), .version = (version_),                         \
		.nfields = sizeof(array) / sizeof((array)[0]), .struct_size = sizeof(type),        \
		.fields = (array)                                                                  \
	}

/* On the wire, the u16 after a field's id: bit 0 says a reader may skip the field if it does
 * not know the id. Other bits are reserved (0). */
#define GW_FIELD_WIRE_OPTIONAL 0x0001u

/*
 * Appends one section holding obj's fields. 0; -EINVAL when the table is malformed or a
 * VARLEN count exceeds its member (nothing is appended then); or the buffer's error.
 */
int gw_fields_save(const struct gw_fields *t, const void *obj, struct gw_buf *out);
/*
 * Reads one section of t's magic and version from in into obj. Only the table's members are
 * written; optional fields that are absent leave their member as it was. On failure obj may
 * hold part of the input, but nothing this call allocated.
 * 0; -EPROTO for another version; -EBADMSG for truncated input, a bad CRC, a field that is
 * unknown (and not marked optional), repeated, of the wrong size, too long, not a whole
 * number of units, a bool that is not 0 or 1, or a required field that is missing;
 * -EINVAL for a malformed table; -ENOMEM.
 */
int gw_fields_load(const struct gw_fields *t, struct gw_rd *in, void *obj);
/* Frees the GW_FIELD_ALLOC members of obj and sets them to NULL and their counts to 0. */
void gw_fields_release(const struct gw_fields *t, void *obj);
/* 0 if the table is well formed (ids unique and non-zero, members inside the struct, sane
 * VARLEN descriptions), else -EINVAL. Save and load check it too. */
int gw_fields_check(const struct gw_fields *t);

/*
 * Splits one whole section (header and payload) off the front of in, without checking its
 * magic, version or CRC (its own loader does): 0 or -EBADMSG when in is too short.
 */
int gw_sect_take(struct gw_rd *in, struct gw_rd *sect);

#endif
