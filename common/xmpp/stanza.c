/*
 * stanza.c: kinds and types of stanzas.
 */
#include "common/xmpp/stanza.h"
#include "shm/proto.h"

#include <string.h>

static bool str_is(struct xml_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p && s.len == n && memcmp(s.p, lit, n) == 0;
}

int stanza_kind(struct xml_str name)
{
    if (str_is(name, "message"))
        return PROTO_MESSAGE;
    if (str_is(name, "presence"))
        return PROTO_PRESENCE;
    if (str_is(name, "iq"))
        return PROTO_IQ;
    return -1;
}

static int message_type(struct xml_str t)
{
    static const char *const names[] = {
        [PROTO_MSG_NORMAL] = "normal", [PROTO_MSG_CHAT] = "chat",
        [PROTO_MSG_GROUPCHAT] = "groupchat", [PROTO_MSG_HEADLINE] = "headline",
        [PROTO_MSG_ERROR] = "error",
    };
    for (int i = PROTO_MSG_CHAT; t.p && i <= PROTO_MSG_ERROR; i++)
        if (str_is(t, names[i]))
            return i;
    return PROTO_MSG_NORMAL; /* absent, "normal" or unknown (RFC 6121 §5.2.2) */
}

static int presence_type(struct xml_str t)
{
    static const char *const names[] = {
        [PROTO_PRES_UNAVAILABLE] = "unavailable", [PROTO_PRES_SUBSCRIBE] = "subscribe",
        [PROTO_PRES_SUBSCRIBED] = "subscribed",   [PROTO_PRES_UNSUBSCRIBE] = "unsubscribe",
        [PROTO_PRES_UNSUBSCRIBED] = "unsubscribed", [PROTO_PRES_PROBE] = "probe",
        [PROTO_PRES_ERROR] = "error",
    };
    if (!t.p)
        return PROTO_PRES_AVAILABLE;
    for (int i = PROTO_PRES_UNAVAILABLE; i <= PROTO_PRES_ERROR; i++)
        if (str_is(t, names[i]))
            return i;
    return -1;
}

static int iq_type(struct xml_str t)
{
    static const char *const names[] = {
        [PROTO_IQ_GET] = "get", [PROTO_IQ_SET] = "set",
        [PROTO_IQ_RESULT] = "result", [PROTO_IQ_ERROR] = "error",
    };
    for (int i = PROTO_IQ_GET; i <= PROTO_IQ_ERROR; i++)
        if (str_is(t, names[i]))
            return i;
    return -1;
}

int stanza_type(int kind, struct xml_str t)
{
    switch (kind) {
    case PROTO_MESSAGE:
        return message_type(t);
    case PROTO_PRESENCE:
        return presence_type(t);
    case PROTO_IQ:
        return iq_type(t);
    }
    return -1;
}
