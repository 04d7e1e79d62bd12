/*
 * json: a streaming JSON writer for starling-bench's result files: nested objects and
 * arrays, keys and values written in order, strings escaped, commas and indentation
 * handled. No tree, no allocation; errors show up in the FILE (ferror) at the end.
 */
#ifndef STARLING_BENCH_JSON_H
#define STARLING_BENCH_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

struct json {
    FILE *f;
    int depth;
    bool first[JSON_MAX_DEPTH];   /* nothing written yet at this depth */
    bool inline_[JSON_MAX_DEPTH]; /* an array of scalars: on one line */
    char close[JSON_MAX_DEPTH];   /* '}' or ']' for what opened this depth */
};

void json_init(struct json *j, FILE *f);

/* In an object, key names the member; in an array, key must be NULL. */
void json_obj(struct json *j, const char *key);
void json_arr(struct json *j, const char *key, bool on_one_line);
void json_end(struct json *j); /* closes the innermost object or array */

void json_str(struct json *j, const char *key, const char *v); /* v NULL: null */
void json_num(struct json *j, const char *key, double v);      /* not finite: null */
void json_u64(struct json *j, const char *key, uint64_t v);
void json_i64(struct json *j, const char *key, int64_t v);
void json_bool(struct json *j, const char *key, bool v);

#endif
