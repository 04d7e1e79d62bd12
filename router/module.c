/*
 * module.c: the table of modules and the calls that run their hooks (module.h).
 */
#include "router/module.h"
#include "router/mam.h"
#include "router/router.h"

#include <string.h>

/* Blocking first: every later module's stanza hooks see only what passed both
 * blocklists (XEP-0191 §3.4). Subscriptions last: they take every subscription presence
 * left, so a module that wants to see one goes above them. */
const struct module *const mod_table[] = {
    &mod_blocking,
    &mod_disco,
    &mod_ping,
    &mod_version,
    &mod_roster,
    &mod_mam, /* before carbons: copies carry the stanza-id */
    &mod_carbons,
    &mod_offline,
    &mod_sm,
    &mod_pep,
    &mod_pep_caps,
    &mod_private,
    &mod_vcard,
    &mod_muc,
    &mod_sub,
    NULL,
};

const struct module *const *mod_active = mod_table;

const struct module *mod_for_ns(const char *ns)
{
    for (const struct module *const *m = mod_active; *m; m++)
        for (const char *const *n = (*m)->iq_ns; n && *n; n++)
            if (!strcmp(*n, ns))
                return *m;
    return NULL;
}

#define EACH(hook) \
    for (const struct module *const *m_ = mod_active; *m_; m_++) \
        if ((*m_)->hook)

bool mod_outbound(struct shard *s, struct user *u, struct session *ss, struct stanza *st)
{
    EACH(outbound) if ((*m_)->outbound(s, u, ss, st)) return true;
    return false;
}

bool mod_home(struct shard *s, const struct stanza *st)
{
    EACH(home) if ((*m_)->home(s, st)) return true;
    return false;
}

bool mod_inbound(struct shard *s, struct user *v, struct stanza *st)
{
    EACH(inbound) if ((*m_)->inbound(s, v, st)) return true;
    return false;
}

void mod_iq_response(struct shard *s, struct user *u, const struct stanza *st)
{
    EACH(iq_response)(*m_)->iq_response(s, u, st);
}

void mod_presence_own(struct shard *s, struct user *u, struct session *ss,
                      const struct stanza *st)
{
    EACH(presence_own)(*m_)->presence_own(s, u, ss, st);
}

void mod_presence_in(struct shard *s, struct user *v, const char *from, size_t from_len,
                     const char *stanza, size_t len)
{
    EACH(presence_in)(*m_)->presence_in(s, v, from, from_len, stanza, len);
}

void mod_user_loaded(struct shard *s, struct user *u)
{
    EACH(user_loaded)(*m_)->user_loaded(s, u);
}

void mod_session_end(struct shard *s, struct user *u, struct session *ss)
{
    EACH(session_end)(*m_)->session_end(s, u, ss);
}

void mod_user_free(struct shard *s, struct user *u)
{
    EACH(user_free)(*m_)->user_free(s, u);
}

void mod_disco_server(const struct shard *s, bool remote, struct buf *b)
{
    EACH(disco_server)(*m_)->disco_server(s, remote, b);
}

void mod_disco_account(const struct shard *s, struct buf *b)
{
    EACH(disco_account)(*m_)->disco_account(s, b);
}

void mod_disco_items(const struct shard *s, struct buf *b)
{
    EACH(disco_items)(*m_)->disco_items(s, b);
}

bool mod_disco_account_items(struct shard *s, struct user *v, const struct stanza *st, bool own,
                             struct buf *b)
{
    EACH(disco_account_items) if (!(*m_)->disco_account_items(s, v, st, own, b)) return false;
    return true;
}

int mod_shard_init(struct shard *s)
{
    for (const struct module *const *m = mod_active; *m; m++) {
        int rc = (*m)->shard_init ? (*m)->shard_init(s) : 0;
        if (rc < 0) {
            while (m-- > mod_active)
                if ((*m)->shard_free)
                    (*m)->shard_free(s);
            return rc;
        }
    }
    return 0;
}

void mod_shard_free(struct shard *s)
{
    EACH(shard_free)(*m_)->shard_free(s);
}

void mod_user_state(struct shard *s, struct user *u, int res, const struct store_roster *r)
{
    EACH(user_state)(*m_)->user_state(s, u, res, r);
}

void mod_delivered(struct shard *s, struct user *v, const struct stanza *st,
                   struct session *const *got, unsigned ngot)
{
    EACH(delivered)(*m_)->delivered(s, v, st, got, ngot);
}

bool mod_undeliverable(struct shard *s, struct user *v, const struct stanza *st)
{
    EACH(undeliverable) if ((*m_)->undeliverable(s, v, st)) return true;
    return false;
}

void mod_initial_presence(struct shard *s, struct user *u, struct session *ss)
{
    EACH(initial_presence)(*m_)->initial_presence(s, u, ss);
}

void mod_receiving(struct shard *s, struct user *u, struct session *ss)
{
    EACH(receiving)(*m_)->receiving(s, u, ss);
}
