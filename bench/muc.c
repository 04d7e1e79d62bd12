#include "bench/muc.h"
#include "common/xmpp/xmlw.h"

#include <errno.h>
#include <string.h>

int muc_join(struct buf *b, const char *room, const char *nick)
{
    /* The occupant JID is ROOM/NICK; escaped as one attribute value. */
    size_t rl = strlen(room), nl = strlen(nick);
    char to[1024];
    if (rl + 1 + nl >= sizeof to)
        return -ENOMEM;
    memcpy(to, room, rl);
    to[rl] = '/';
    memcpy(to + rl + 1, nick, nl);
    int err = buf_puts(b, "<presence");
    err = err ? err : xmlw_attr(b, "to", to, rl + 1 + nl);
    err =
        err ? err : buf_puts(b, "><x xmlns='" MUC_NS "'><history maxstanzas='0'/></x></presence>");
    return err;
}

int muc_instant(struct buf *b, const char *room, const char *broadcast)
{
    int err = buf_puts(b, "<iq type='set' id='" MUC_ID_CREATE "'");
    err = err ? err : xmlw_attr(b, "to", room, strlen(room));
    err = err ? err
              : buf_puts(b, "><query xmlns='" MUC_NS_OWNER "'><x xmlns='jabber:x:data' "
                            "type='submit'>");
    if (broadcast) {
        err = err ? err
                  : buf_puts(b, "<field var='FORM_TYPE'><value>" MUC_NS "#roomconfig</value>"
                                "</field><field var='muc#roomconfig_presencebroadcast'>");
        for (const char *r = broadcast; !err && *r;) {
            size_t n = strcspn(r, ",");
            err = buf_puts(b, "<value>");
            err = err ? err : xmlw_text(b, r, n);
            err = err ? err : buf_puts(b, "</value>");
            r += n + (r[n] == ',');
        }
        err = err ? err : buf_puts(b, "</field>");
    }
    return err ? err : buf_puts(b, "</x></query></iq>");
}

bool muc_is_self(struct xml_str from, const char *room, const char *nick)
{
    size_t rl = strlen(room), nl = strlen(nick);
    return from.p && from.len == rl + 1 + nl && !memcmp(from.p, room, rl) && from.p[rl] == '/' &&
           !memcmp(from.p + rl + 1, nick, nl);
}

enum muc_self muc_self_of(const struct xml_node *p, bool error)
{
    if (error)
        return MUC_SELF_REFUSED;
    bool self = false, created = false;
    const struct xml_node *x = p ? xml_node_child(p, "x", MUC_NS_USER) : NULL;
    for (const struct xml_node *s = x ? xml_node_child(x, "status", MUC_NS_USER) : NULL; s;
         s = xml_node_next(s, "status", MUC_NS_USER)) {
        const char *code = xml_node_attr(s, "code");
        self = self || (code && !strcmp(code, "110"));
        created = created || (code && !strcmp(code, "201"));
    }
    return !self ? MUC_SELF_OTHER : created ? MUC_SELF_CREATED : MUC_SELF_JOINED;
}
