/*
 * muc: the XEP-0045 stanzas of starling-bench's muc scenario, built and recognised
 * without I/O: the join (no history wanted), the owner's acceptance of the default
 * configuration that unlocks a room it just created (an instant room, §10.1.2), and what
 * a presence from the room says about the client's own occupant (§7.2.2: status 110,
 * with 201 when the join created the room; type='error' when the join was refused).
 */
#ifndef STARLING_BENCH_MUC_H
#define STARLING_BENCH_MUC_H

#include "common/core/buf.h"
#include "common/xmpp/xml.h"
#include "common/xmpp/xml_tree.h"

#include <stdbool.h>

#define MUC_NS       "http://jabber.org/protocol/muc"
#define MUC_NS_USER  MUC_NS "#user"
#define MUC_NS_OWNER MUC_NS "#owner"
/* The id of the instant-room request: its answer comes back as an iq event. */
#define MUC_ID_CREATE "bm-muc-create"

/* Appends <presence to='ROOM/NICK'><x xmlns='...muc'><history maxstanzas='0'/></x>
 * </presence> to b. 0 or -ENOMEM. */
int muc_join(struct buf *b, const char *room, const char *nick);

/* Appends the owner's <iq type='set'> accepting the default configuration of ROOM
 * (§10.1.2), but for the roles whose presence the room broadcasts when broadcast is not
 * NULL: muc#roomconfig_presencebroadcast, one value per comma-separated role. */
int muc_instant(struct buf *b, const char *room, const char *broadcast);

/* Whether from is ROOM/NICK, our own occupant. */
bool muc_is_self(struct xml_str from, const char *room, const char *nick);

enum muc_self {
    MUC_SELF_OTHER,   /* no status 110: not (yet) our self-presence */
    MUC_SELF_JOINED,  /* 110: we are in the room */
    MUC_SELF_CREATED, /* 110 and 201: in a room that this join created, locked until
                         configured */
    MUC_SELF_REFUSED, /* type='error': the join failed */
};

/* What a presence from our own occupant says; p is its tree, error its type. */
enum muc_self muc_self_of(const struct xml_node *p, bool error);

#endif
