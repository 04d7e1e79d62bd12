/*
 * store_mam_sql.h: the archive query both back ends run (store_sqlite_mam.c,
 * store_pgsql_mam.c), spelled once; each passes its own placeholders (with PostgreSQL's
 * casts): the owner, the bare and the full JID to match (NULL: any), the ids at least
 * and at most, strictly after and before, the page's limit, and the page's order ("" or
 * " DESC": the oldest or the newest). One statement, one snapshot: the first row (k = 0)
 * has the count of every match and of those before the page, the others (k = 1) are
 * the page, oldest first whatever the order it was picked in.
 */
#ifndef STARLING_STORE_MAM_SQL_H
#define STARLING_STORE_MAM_SQL_H

#define MAM_QUERY_SQL(owner, bare, full, lo, hi, after, before, limit, order)                      \
    "WITH f AS (SELECT id, stanza FROM mam WHERE owner = " owner " AND (" bare " IS NULL OR"     \
    " with_bare = " bare ") AND (" full " IS NULL OR with_full = " full ") AND id >= " lo          \
    " AND id <= " hi "),"                                                                          \
    " p AS (SELECT id, stanza FROM f WHERE id > " after " AND id < " before                       \
    " ORDER BY id" order " LIMIT " limit ")"                                                       \
    " SELECT 0 AS k, (SELECT count(*) FROM f) AS id,"                                             \
    " (SELECT count(*) FROM f WHERE f.id < (SELECT min(p.id) FROM p)) AS n, NULL AS stanza"        \
    " UNION ALL SELECT 1, id, 0, stanza FROM p ORDER BY k, id"

#endif
