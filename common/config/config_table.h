/*
 * config_table: the directive table, private to the config module. config.c loads a
 * file by it (with config_value.c's setters, declared at the end), config_sample.c
 * writes the sample file from it; nothing else includes this header. See config.h for
 * what a directive is.
 */
#ifndef STARLING_CONFIG_TABLE_H
#define STARLING_CONFIG_TABLE_H

#include "common/config/config.h"

enum config_type {
    CONFIG_T_INT,      /* unsigned integer field of 1, 2, 4 or 8 bytes */
    CONFIG_T_SIZE,     /* the same, bytes; a string may carry a K, M or G suffix */
    CONFIG_T_DURATION, /* the same, seconds; a string may carry an s, m, h or d suffix */
    CONFIG_T_BOOL,     /* bool field */
    CONFIG_T_STRING,   /* const char * field, owned by the snapshot; min..max is its length */
    CONFIG_T_ENUM,     /* enum field: the index of the value in `choices` */
    CONFIG_T_ADDR,     /* struct config_addr field */
    CONFIG_T_ROUTE,    /* struct config_route: a list item only */
    CONFIG_T_PREFIX,   /* struct net_prefix: a list item only */
    CONFIG_T_LIST,     /* struct config_list field of `item`s; min..max is the count */
};

#define CONFIG_F_RESTART 0x1u /* takes effect only when the process restarts */
#define CONFIG_F_POW2    0x2u /* a number that must be a power of two */
#define CONFIG_F_EMPTY   0x4u /* an address that may be "" (disabled) */
#define CONFIG_F_PATH    0x8u /* a file name: relative to the loaded file's folder; "" stays "" */

struct config_directive {
    const char *name; /* dotted: "c2s.threads" is `threads` in the group `c2s` */
    enum config_type type;
    unsigned flags;
    size_t off, size;           /* of the target field in struct config */
    const char *def;            /* the default, as a value would be written in the file */
    uint64_t min, max;          /* numbers: the value; strings: the length */
    const char *const *choices; /* CONFIG_T_ENUM: the names, NULL-terminated */
    const char *doc;            /* for the sample file; '\n' separates lines */
    enum config_type item;      /* CONFIG_T_LIST: its items' type (ADDR, ROUTE or PREFIX) */
};

extern const struct config_directive config_table[];
extern const size_t config_table_len;

/* A number as the file would write it: sizes with the largest exact K, M or G suffix. */
void config_show_num(char *buf, size_t n, const struct config_directive *d, uint64_t v);

/* ---- config_value.c: a value into its field (msg, n: what is wrong, in the file's words) ---- */
static inline void *config_field(struct config *c, const struct config_directive *d)
{
    return (char *)c + d->off;
}
static inline const void *config_cfield(const struct config *c, const struct config_directive *d)
{
    return (const char *)c + d->off;
}
/* Range-checks and stores a number; `shown` is how the file wrote it. 0 or -EINVAL. */
int config_set_num(const struct config_directive *d, struct config *c, long long v,
                   const char *shown, char *msg, size_t n);
/* "IPv4:port" or "[IPv6]:port" ("" when the directive allows it). 0 or -EINVAL. */
int config_set_addr(const struct config_directive *d, struct config_addr *a, const char *s,
                    char *msg, size_t n);
/* "domain=IPv4:port" or "domain=[IPv6]:port", the domain in normal form; 0, -EINVAL or
 * -ENOMEM. */
int config_set_route(const struct config_directive *d, struct config_route *r, const char *s,
                     char *msg, size_t n);
/* Stores a value given as text: a default from the table, or a string from the file. */
int config_set_text(const struct config_directive *d, struct config *c, const char *s, char *msg,
                    size_t n);
/* A list's items of type t: their size, the i-th, and what no two may share (the address,
 * the domain of a route, or the prefix in its normal form). */
size_t config_item_size(enum config_type t);
void *config_item_at(enum config_type t, void *items, size_t i);
const char *config_item_key(enum config_type t, const void *item);
void config_list_clear(enum config_type t, struct config_list *l);
bool config_list_equal(enum config_type t, const struct config_list *a, const struct config_list *b);

#endif
