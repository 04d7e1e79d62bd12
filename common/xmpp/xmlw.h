/*
 * xmlw: writing XML the server generates itself (stream headers, features, errors,
 * iq results) into a struct buf. Escaping is the only subtle part: text escapes
 * '<', '&', '>' and CR, attribute values also both quotes, tab and LF, so that a reader
 * gets back exactly the value given. The caller builds well-formed
 * structure; values it does not control always go through the escaping functions.
 * On allocation failure each function returns -ENOMEM and the buffer keeps a prefix:
 * callers that care drop the whole output.
 */
#ifndef STARLING_XMLW_H
#define STARLING_XMLW_H

#include "common/core/buf.h"

#include <stdbool.h>
#include <stddef.h>

/* Appends s[0..n) escaped for character data. */
int xmlw_text(struct buf *b, const char *s, size_t n);

/* Appends ` name='value'` with value[0..n) escaped. */
int xmlw_attr(struct buf *b, const char *name, const char *value, size_t n);

/* Appends a string the caller vouches for (markup). */
static inline int xmlw_raw(struct buf *b, const char *s)
{
    return buf_puts(b, s);
}

#endif
