/*
 * module.c: the table of modules and the calls that run their hooks (module.h).
 */
#include "router/module.h"
#include "router/router.h"

#include <string.h>

const struct module *const mod_table[] = {
    &mod_disco, &mod_ping,   &mod_version, &mod_roster,
    &mod_blocking, &mod_carbons, &mod_offline, &mod_muc, NULL,
};

const struct module *mod_for_ns(const char *ns)
{
    for (const struct module *const *m = mod_table; *m; m++)
        for (const char *const *n = (*m)->iq_ns; n && *n; n++)
            if (!strcmp(*n, ns))
                return *m;
    return NULL;
}

#define EACH(hook) \
    for (const struct module *const *m_ = mod_table; *m_; m_++) \
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

int mod_shard_init(struct shard *s)
{
    for (const struct module *const *m = mod_table; *m; m++) {
        int rc = (*m)->shard_init ? (*m)->shard_init(s) : 0;
        if (rc < 0) {
            while (m-- > mod_table)
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
