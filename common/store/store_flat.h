/*
 * store_flat: how a back end builds the results that come back as one block (a roster,
 * a list of subscription requests or of offline messages): two growing buffers, the
 * array of records and the bytes they point to (as offsets), then joined into one
 * block with the records first, which one free() releases; store_*_free() and a
 * callback's end both rely on that. Shared by the back ends (store_sqlite_im.c,
 * store_pgsql_im.c); used by the store's worker thread only, one result at a time.
 */
#ifndef STARLING_STORE_FLAT_H
#define STARLING_STORE_FLAT_H

#include "common/store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A result being built: records of rec_size bytes in `rec`, and the bytes they point to
 * in `data`, where a record's pointer holds an offset. Offset 0 is never handed out, so a
 * NULL pointer stays NULL. flat_finish() makes one block of both, records first.
 */
struct flat {
    char *rec, *data;
    size_t rec_size, nrec, rec_cap, len, cap;
    bool nomem;
};

void flat_init(struct flat *f, size_t rec_size);
void flat_drop(struct flat *f);

/* A new zeroed record, valid until the next call; NULL when memory is short. */
void *flat_rec(struct flat *f);

/* The newest record. */
void *flat_last(struct flat *f);

/* Appends n bytes, and a NUL when nul, at an offset aligned to `align` (a power of
 * two); returns the offset, or 0 when memory is short. */
size_t flat_put(struct flat *f, const void *p, size_t n, size_t align, bool nul);

/* Joins records and data into one block, records first. Returns -ENOMEM, or 0 with the
 * block (NULL when there are no records) and where the data went in it, to which the
 * records' offsets are relative. Leaves f empty either way. */
int flat_finish(struct flat *f, void **block, char **base);

/* A record's offset as a pointer into the block's data (NULL stays NULL). */
const char *flat_rebase(const char *base, const char *off);

/* flat_finish(), then in every record the `const char *` fields at offs (noffs of them)
 * made real pointers into the block; *n gets the count (0 on -ENOMEM). */
int flat_finish_rebased(struct flat *f, void **block, size_t *n, const size_t *offs,
                        unsigned noffs);

/* The same for a list of subscription requests (records of struct store_subreq) and of
 * offline messages (struct store_offline_msg): out gets the block, its pointers made
 * real. -ENOMEM (also when building ran short). Leave f empty. */
int flat_subreqs_finish(struct flat *f, struct store_subreqs *out);
int flat_offline_finish(struct flat *f, struct store_offline *out);
/* And of a user's PEP rows (struct store_pep_row; store_pep.c). */
int flat_pep_finish(struct flat *f, struct store_pep *out);

/* An archive page (records of struct store_mam_msg, oldest first) fetched with one
 * message more than max: the extra one, when there, is dropped (the newest; the oldest
 * when `last`) and makes the page not complete. out's count and index are set already.
 * -ENOMEM. Leaves f empty. */
struct store_mam_page;
struct store_mam_prefs;
int flat_mam_finish(struct flat *f, size_t max, bool last, struct store_mam_page *out);
/* Archive preferences from their stored form (lines of '+' or '-' and a JID) as one
 * block; and that form, malloc'd (NULL: no memory). */
int flat_mam_prefs(const char *lists, uint8_t dflt, struct store_mam_prefs *out);
char *flat_mam_lists(const struct store_mam_prefs *p);

/* A list of public rooms (records of struct store_muc_item; store_muc.c). -ENOMEM. Leaves
 * f empty. */
struct store_muc_list;
int flat_muc_list_finish(struct flat *f, struct store_muc_list *out);

/* An offline message's stamp from UTC microseconds since the Unix epoch. */
void flat_offline_stamp(struct store_offline_msg *m, int64_t stamp_us);

/*
 * A roster being built: one record (struct store_roster_item) per item, its strings as
 * offsets; the offsets of the newest item's groups gather in goff until
 * flat_roster_item_end() stores them in the data as its group array.
 */
struct flat_roster {
    struct flat f;
    size_t *goff, ngroups, gcap;
};

void flat_roster_init(struct flat_roster *r);
/* A group (its offset, from flat_put()) of the newest item. */
void flat_roster_group(struct flat_roster *r, size_t off);
/* Ends the newest item. */
void flat_roster_item_end(struct flat_roster *r);
/* Ends the last item and makes out->items and out->n; -ENOMEM. Leaves r empty. */
int flat_roster_finish(struct flat_roster *r, struct store_roster *out);
void flat_roster_drop(struct flat_roster *r);

#endif
