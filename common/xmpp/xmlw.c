#include "common/xmpp/xmlw.h"

#include <string.h>

static int escape(struct buf *b, const char *s, size_t n, bool attr)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep;
        switch (s[i]) {
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '&':
            rep = "&amp;";
            break;
        case '\'':
            rep = attr ? "&apos;" : NULL;
            break;
        case '"':
            rep = attr ? "&quot;" : NULL;
            break;
        /* A reader normalises these to spaces in an attribute value (XML 1.0 §3.3.3),
         * and CR to LF in text (§2.11): references keep them as they are. */
        case '\t':
            rep = attr ? "&#9;" : NULL;
            break;
        case '\n':
            rep = attr ? "&#10;" : NULL;
            break;
        case '\r':
            rep = "&#13;";
            break;
        default:
            rep = NULL;
        }
        if (!rep)
            continue;
        int err = buf_append(b, s + start, i - start);
        if (!err)
            err = buf_puts(b, rep);
        if (err)
            return err;
        start = i + 1;
    }
    return buf_append(b, s + start, n - start);
}

int xmlw_text(struct buf *b, const char *s, size_t n)
{
    return escape(b, s, n, false);
}

int xmlw_attr(struct buf *b, const char *name, const char *value, size_t n)
{
    int err = buf_puts(b, " ");
    if (!err)
        err = buf_puts(b, name);
    if (!err)
        err = buf_puts(b, "='");
    if (!err)
        err = escape(b, value, n, true);
    if (!err)
        err = buf_puts(b, "'");
    return err;
}
