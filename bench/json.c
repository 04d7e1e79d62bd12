#include "bench/json.h"

#include <inttypes.h>
#include <math.h>

void json_init(struct json *j, FILE *f)
{
    j->f = f;
    j->depth = 0;
    j->first[0] = true;
    j->inline_[0] = false;
}

static void escaped(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* The comma, newline and indentation before a value, and its key. */
static void lead(struct json *j, const char *key)
{
    bool first = j->first[j->depth];
    if (!first)
        fputc(',', j->f);
    j->first[j->depth] = false;
    if (j->depth && j->inline_[j->depth]) {
        if (!first)
            fputc(' ', j->f);
    } else if (j->depth) {
        fputc('\n', j->f);
        for (int i = 0; i < j->depth; i++)
            fputs("  ", j->f);
    }
    if (key) {
        escaped(j->f, key);
        fputs(": ", j->f);
    }
}

static void open_(struct json *j, const char *key, char c, bool on_one_line)
{
    lead(j, key);
    fputc(c, j->f);
    if (j->depth + 1 >= JSON_MAX_DEPTH)
        return; /* deeper than any result file goes: the output is cut, not overrun */
    j->depth++;
    j->first[j->depth] = true;
    j->inline_[j->depth] = on_one_line || j->inline_[j->depth - 1];
    j->close[j->depth] = c == '{' ? '}' : ']';
}

void json_obj(struct json *j, const char *key)
{
    open_(j, key, '{', false);
}

void json_arr(struct json *j, const char *key, bool on_one_line)
{
    open_(j, key, '[', on_one_line);
}

void json_end(struct json *j)
{
    if (!j->depth)
        return;
    bool was_inline = j->inline_[j->depth], empty = j->first[j->depth];
    char c = j->close[j->depth];
    j->depth--;
    if (!was_inline && !empty) {
        fputc('\n', j->f);
        for (int i = 0; i < j->depth; i++)
            fputs("  ", j->f);
    }
    fputc(c, j->f);
    if (!j->depth)
        fputc('\n', j->f);
}

void json_str(struct json *j, const char *key, const char *v)
{
    lead(j, key);
    if (v)
        escaped(j->f, v);
    else
        fputs("null", j->f);
}

void json_num(struct json *j, const char *key, double v)
{
    lead(j, key);
    if (isfinite(v))
        fprintf(j->f, "%.6g", v);
    else
        fputs("null", j->f);
}

void json_u64(struct json *j, const char *key, uint64_t v)
{
    lead(j, key);
    fprintf(j->f, "%" PRIu64, v);
}

void json_i64(struct json *j, const char *key, int64_t v)
{
    lead(j, key);
    fprintf(j->f, "%" PRId64, v);
}

void json_bool(struct json *j, const char *key, bool v)
{
    lead(j, key);
    fputs(v ? "true" : "false", j->f);
}
