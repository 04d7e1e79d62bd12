#include "bench/stats.h"

static const char *const names[ST_ERR_XMPP] = {
    [ST_CONNECTS] = "connects",
    [ST_LOGINS] = "logins",
    [ST_ONLINE] = "online",
    [ST_LOGOUTS] = "logouts",
    [ST_MSG_SENT] = "msg_sent",
    [ST_MSG_RECV] = "msg_received",
    [ST_MSG_BOUNCED] = "msg_bounced",
    [ST_MSG_LATE] = "msg_late",
    [ST_MSG_SKIPPED] = "msg_skipped",
    [ST_PRES_SENT] = "presence_sent",
    [ST_PRES_EXPECT] = "presence_expected",
    [ST_PRES_RECV] = "presence_received",
    [ST_SUB_SENT] = "subscriptions_sent",
    [ST_SUB_ACKED] = "subscriptions_approved",
    [ST_ROSTERS] = "rosters",
    [ST_ROSTER_BOTH] = "roster_items_both",
    [ST_ROSTER_ERR] = "roster_errors",
    [ST_NEED_SETUP] = "rosters_incomplete",
    [ST_OTHER] = "other_stanzas",
    [ST_MUC_READY] = "muc_room_ready",
    [ST_MUC_JOINED] = "muc_joined",
    [ST_MUC_REFUSED] = "muc_join_refused",
    [ST_MUC_EXPECT] = "groupchat_expected",
    [ST_MUC_RECV] = "groupchat_received",
    [ST_SM_REQ_RECV] = "sm_requests_answered",
    [ST_SM_ACK_RECV] = "sm_acks_received",
    [ST_BYTES_IN] = "bytes_in",
    [ST_BYTES_OUT] = "bytes_out",
    [ST_ERR_CONNECT] = "err_connect",
    [ST_ERR_IO] = "err_io",
    [ST_ERR_TIMEOUT] = "err_timeout",
    [ST_ERR_TLS] = "err_tls",
    [ST_ERR_DROPPED] = "err_dropped",
    [ST_ERR_NO_ECHO] = "err_no_presence_echo",
};

/* xmppc's failure reasons, in enum xmppc_fail order. */
static const char *const xmpp_names[XMPPC_FAIL_COUNT] = {
    [XMPPC_FAIL_NONE] = "err_none",
    [XMPPC_FAIL_STREAM] = "err_stream",
    [XMPPC_FAIL_TLS] = "err_starttls",
    [XMPPC_FAIL_MECH] = "err_mechanism",
    [XMPPC_FAIL_AUTH] = "err_auth",
    [XMPPC_FAIL_SASL] = "err_sasl_protocol",
    [XMPPC_FAIL_BIND] = "err_bind",
    [XMPPC_FAIL_CLOSED] = "err_closed_by_server",
    [XMPPC_FAIL_PROTOCOL] = "err_protocol",
    [XMPPC_FAIL_MEMORY] = "err_memory",
    [XMPPC_FAIL_UNSUPPORTED] = "err_unsupported",
};

const char *stats_name(enum stats_id i)
{
    if (i < ST_ERR_XMPP)
        return names[i] ? names[i] : "?";
    return i < ST_COUNT ? xmpp_names[i - ST_ERR_XMPP] : "?";
}

int stats_is_error(enum stats_id i)
{
    return (i >= ST_ERR_CONNECT && i != ST_ERR_XMPP + XMPPC_FAIL_NONE) || i == ST_MSG_SKIPPED;
}

void stats_sum(uint64_t dst[ST_COUNT], const struct stats *s, unsigned n, size_t stride)
{
    for (unsigned i = 0; i < ST_COUNT; i++)
        dst[i] = 0;
    for (unsigned k = 0; k < n; k++) {
        const struct stats *x = (const struct stats *)((const char *)s + k * stride);
        for (unsigned i = 0; i < ST_COUNT; i++)
            dst[i] += stats_get(x, (enum stats_id)i);
    }
}
