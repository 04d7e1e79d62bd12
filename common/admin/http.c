/*
 * http.c: the request parser (http.h). One pass over the bytes each call: a request is
 * at most admin.max_request bytes and arrives in a few reads, so starting over costs
 * less than keeping a state machine's state between reads.
 */
#include "common/admin/http.h"

#include <stdbool.h>
#include <string.h>

/* RFC 9110 §5.6.2: tchar. */
static bool tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The end of the line starting at i: the index of its LF (a CR before it is not part of
 * the line), or n when it has not arrived. *end is where the line's content stops. */
static size_t line_end(const char *p, size_t n, size_t i, size_t *end)
{
    const char *lf = memchr(p + i, '\n', n - i);
    if (!lf)
        return n;
    size_t at = (size_t)(lf - p);
    *end = at > i && p[at - 1] == '\r' ? at - 1 : at;
    return at;
}

static bool ieq(const char *p, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i] >= 'A' && p[i] <= 'Z' ? (char)(p[i] - 'A' + 'a') : p[i];
        if (c != lit[i])
            return false;
    }
    return true;
}

/* Can p[0..n), a request line not complete yet, still become one? Garbage (a TLS
 * ClientHello, a binary probe) is refused at once rather than at the timeout. */
static bool line_prefix_ok(const char *p, size_t n)
{
    size_t i = 0;
    if (n && p[n - 1] == '\r')
        n--; /* its LF may be next */
    while (i < n && tchar((unsigned char)p[i]))
        i++;
    if (i < n && p[i] != ' ')
        return false;
    for (; i < n; i++)
        if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] >= 0x7f)
            return false;
    return true;
}

/* The request line p[0..n) (no CR or LF in it). 200 with r's path and minor filled, or an
 * error status. */
static int request_line(const char *p, size_t n, struct http_request *r)
{
    size_t i = 0;
    while (i < n && tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i == n || p[i] != ' ')
        return 400;
    bool get = i == 3 && !memcmp(p, "GET", 3);
    size_t t = ++i;
    while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f)
        i++;
    size_t tlen = i - t;
    if (tlen == 0 || i == n || p[i] != ' ')
        return 400;
    const char *v = p + i + 1;
    size_t vlen = n - i - 1;
    if (vlen != 8 || memcmp(v, "HTTP/", 5) || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return 400;
    if (v[5] != '1' || v[7] > '1')
        return 505;
    r->minor = (unsigned)(v[7] - '0');

    const char *path = p + t;
    size_t plen = tlen;
    if (path[0] != '/') {
        /* The absolute form (§3.2.2): a scheme, "//", the authority, then the path. */
        size_t s = 0;
        if (plen > 7 && ieq(path, 7, "http://"))
            s = 7;
        else if (plen > 8 && ieq(path, 8, "https://"))
            s = 8;
        else
            return 400;
        const char *slash = memchr(path + s, '/', plen - s);
        if (!slash) {
            path = "/";
            plen = 1;
        } else {
            plen -= (size_t)(slash - path);
            path = slash;
        }
    }
    size_t q = 0;
    while (q < plen && path[q] != '?' && path[q] != '#')
        q++;
    r->path = path;
    r->path_len = q;
    return get ? 200 : 405;
}

/* One header field p[0..n). 0 or 400. *host counts Host fields. */
static int header(const char *p, size_t n, unsigned *host)
{
    size_t i = 0;
    while (i < n && tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i == n || p[i] != ':')
        return 400; /* no name, or a space before the colon (§5.1) */
    if (ieq(p, i, "host"))
        (*host)++;
    for (size_t k = i + 1; k < n; k++) {
        unsigned char c = (unsigned char)p[k];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 400;
    }
    return 0;
}

int http_parse(const char *p, size_t n, size_t max, struct http_request *r)
{
    size_t i = 0, end = 0;
    memset(r, 0, sizeof *r);
    /* Only the first max bytes count, so the answer never depends on how many more came
     * in the same read. */
    if (n > max)
        n = max;
    /* Empty lines before the request line are skipped (§2.2). */
    while (i < n && (p[i] == '\r' || p[i] == '\n')) {
        if (p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n'))
            break;
        i++;
    }
    size_t lf = line_end(p, n, i, &end);
    if (lf == n)
        return !line_prefix_ok(p + i, n - i) ? 400 : n == max ? 414 : 0;
    if (memchr(p + i, '\r', end - i) || memchr(p + i, '\0', end - i))
        return 400;
    int status = request_line(p + i, end - i, r);
    if (status != 200)
        return status;
    unsigned host = 0;
    for (i = lf + 1;;) {
        lf = line_end(p, n, i, &end);
        if (lf == n)
            return n == max ? 431 : 0;
        if (end == i)
            break;
        if (p[i] == ' ' || p[i] == '\t')
            return 400; /* obs-fold (§5.2) */
        if (memchr(p + i, '\r', end - i) || header(p + i, end - i, &host))
            return 400;
        i = lf + 1;
    }
    if (r->minor == 1 ? host != 1 : host > 1)
        return 400;
    r->len = lf + 1;
    return 200;
}

const char *http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}
