/*
 * muc_mam.c: a room's archive (muc.h, mam.h's room API): each groupchat message with a
 * body is archived under the room's bare JID and goes out with the room's stanza-id;
 * MAM queries to the room JID are answered for those the room lets read it.
 *
 * Every room archives while mam.enabled, persistent or not, configured or not: as
 * ejabberd's default (Prosody asks the owner, muc#roomconfig_enablearchiving), since a
 * temporary room's talk is as worth finding as a persistent one's, and there is no
 * per-room switch to forget. The archive outlives the room: a room created again under
 * the same JID finds its predecessor's archive, and mam.retention sweeps it as any.
 */
#include "router/mam.h"
#include "router/muc.h"
#include "router/router.h"

#include <string.h>

void muc_archive_hook(struct shard *s, const struct muc_room *r, const struct muc_occupant *o,
                      struct buf *b)
{
    if (!s->cfg->mam.enabled)
        return;
    struct buf with = {0};
    buf_append(&with, r->jid, r->jid_len);
    buf_puts(&with, "/");
    buf_append(&with, o->nick, o->nick_len);
    /* Stored as the occupants get it but for the stanza-id, which a result carries as
     * its id. */
    uint64_t id = mam_archive(s, r->jid, buf_data(&with), buf_used(&with), r->jid_len,
                              buf_data(b), buf_used(b));
    buf_free(&with);
    if (!id)
        return; /* delivered, not archived (mam.c counts and logs it) */
    struct buf out = {0};
    mam_with_stanza_id(&out, buf_data(b), buf_used(b), r->jid, r->jid_len, id);
    buf_free(b);
    *b = out;
}

/* Who may read a room's archive (XEP-0313 §5.1.2 leaves it to the room: those who
 * could join). Never an outcast; in a members-only room its members (admins and owners
 * too) and occupants; in a password-protected one its occupants (who gave the password)
 * and members; else anyone. Prosody's rule, and the password one added. NULL, or the
 * error's condition. */
static const char *may_read(const struct muc_room *r, const struct stanza *st)
{
    enum muc_aff a = muc_aff_of(r, st->from, st->from_len);
    bool in = muc_occ_by_jid(r, st->from, st->from_len) != NULL;
    if (a == MUC_AFF_OUTCAST)
        return "forbidden";
    if ((r->cfg.membersonly || r->cfg.password) && !in && a < MUC_AFF_MEMBER)
        return "forbidden";
    return NULL;
}

void muc_mam_iq(struct shard *s, struct muc_room *r, const struct stanza *st,
                const struct xml_node *iq, const struct xml_node *q)
{
    const char *err = s->cfg->mam.enabled ? may_read(r, st) : NULL;
    if (err) {
        out_error(s, st, "auth", err);
        return;
    }
    mam_query(s, r->jid, r->jid, r->jid_len, st, iq, q); /* it answers mam.enabled false */
}
