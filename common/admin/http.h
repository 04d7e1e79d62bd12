/*
 * http: the request line and headers of an HTTP/1.0 or HTTP/1.1 request (RFC 9112), for
 * the admin listener (admin.h), which answers GET only and closes every connection after
 * one answer. A pure function over bytes, no I/O, so that it is unit-tested and fuzzed
 * (fuzz/http.c) on its own.
 *
 * What it accepts: empty lines before the request line (§2.2); a method token, one space,
 * an origin-form target ("/path?query") or an absolute-form one ("http://host/path"), one
 * space, HTTP/1.0 or HTTP/1.1, CRLF or a bare LF; header fields `name: value`; an empty
 * line. What it refuses, with the status the answer carries: anything else in the request
 * line or a header (a control byte, a space before the colon, a folded line: 400), an
 * HTTP/1.1 request without exactly one Host (400, §3.2), another version of HTTP (505), a
 * method other than GET (405, as soon as the request line is complete), more than max
 * bytes before the end of the headers (414 while still in the request line, else 431).
 * A body is not read: the connection is closed after the answer.
 *
 * Any thread; the result points into the caller's bytes.
 */
#ifndef STARLING_HTTP_H
#define STARLING_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct http_request {
    const char *path; /* the target's path, without query or fragment; "/" for "http://h" */
    size_t path_len;
    unsigned minor; /* HTTP/1.minor */
    size_t len;     /* bytes of the request line and headers, the empty line included */
};

/* Parses p[0..n): 0 when more bytes are needed (and fewer than max came), 200 for a GET
 * request complete in *r, or the error status to answer (400, 405, 414, 431, 505). */
int http_parse(const char *p, size_t n, size_t max, struct http_request *r);

/* The reason phrase of a status this listener sends ("OK", "Not Found"...). */
const char *http_reason(int status);

#endif
