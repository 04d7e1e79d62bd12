/* The sample configuration, written from the directive table. */
#include "common/config/config.h"
#include "common/config/config_table.h"

#include <errno.h>
#include <string.h>

static void put_comment(FILE *f, const char *indent, const char *text)
{
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        fprintf(f, "%s# %.*s\n", indent, (int)n, p);
        p += n + (nl ? 1 : 0);
    }
}

/* The line under a directive's description: its values and whether reload applies it. */
static void put_values(FILE *f, const char *indent, const struct config_directive *d)
{
    char lo[24], hi[24];
    fprintf(f, "%s# ", indent);
    switch (d->type) {
    case CONFIG_T_INT:
    case CONFIG_T_SIZE:
    case CONFIG_T_DURATION:
        config_show_num(lo, sizeof lo, d, d->min);
        config_show_num(hi, sizeof hi, d, d->max);
        fprintf(f, "%s..%s%s%s", lo, hi, d->type == CONFIG_T_DURATION ? " seconds" : "",
                d->type == CONFIG_T_SIZE ? " bytes" : "");
        if (d->flags & CONFIG_F_POW2)
            fputs(", a power of two", f);
        break;
    case CONFIG_T_BOOL:
        fputs("true or false", f);
        break;
    case CONFIG_T_ENUM:
        for (int i = 0; d->choices[i]; i++)
            fprintf(f, "%s%s", i ? " | " : "", d->choices[i]);
        break;
    case CONFIG_T_STRING:
        if (d->flags & CONFIG_F_PATH)
            fputs(d->min ? "a file name, relative to this file's folder"
                         : "a file name, relative to this file's folder, or \"\"",
                  f);
        else
            fputs(d->min ? "a string" : "a string, may be empty", f);
        break;
    case CONFIG_T_ADDR:
        fputs("\"IPv4:port\" or \"[IPv6]:port\"", f);
        break;
    case CONFIG_T_LIST:
        config_show_num(hi, sizeof hi, d, d->max);
        fprintf(f, "a list of at most %s %s", hi,
                d->item == CONFIG_T_ROUTE    ? "\"domain=IPv4:port\" or \"domain=[IPv6]:port\""
                : d->item == CONFIG_T_PREFIX ? "addresses or prefixes, \"IP\" or \"IP/bits\""
                                             : "\"IPv4:port\" or \"[IPv6]:port\"");
        break;
    case CONFIG_T_ROUTE:
    case CONFIG_T_PREFIX:
        break;
    }
    fputs(d->flags & CONFIG_F_RESTART ? "; a restart applies it\n" : "; a reload applies it\n", f);
}

static void put_value(FILE *f, const struct config_directive *d)
{
    const char *s = d->def;
    if (d->type == CONFIG_T_LIST) {
        fputs("[]", f); /* a list's default is empty */
        return;
    }
    bool bare = d->type == CONFIG_T_BOOL || d->type == CONFIG_T_INT ||
                ((d->type == CONFIG_T_SIZE || d->type == CONFIG_T_DURATION) &&
                 strspn(s, "0123456789") == strlen(s));
    if (bare) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int config_write_sample(FILE *f)
{
    char group[64] = "";
    fputs("# starling configuration (libconfig syntax: `name = value;`, groups `name = { ... };`,\n"
          "# '#' comments). Every directive is shown at its default; delete what you do not\n"
          "# change. Unknown names and values out of range are errors, reported with their\n"
          "# line. Sizes are bytes or take a K, M or G suffix (\"256K\"); durations are\n"
          "# seconds or take an s, m, h or d suffix (\"5m\"). On SIGHUP starling reads the\n"
          "# file again; a directive marked \"a restart applies it\" keeps its old value\n"
          "# until the next start.\n"
          "#\n"
          "# Generated from the directive table in common/config/config_table.c (config_write_sample).\n",
          f);
    for (size_t i = 0; i < config_table_len; i++) {
        const struct config_directive *d = &config_table[i];
        const char *dot = strrchr(d->name, '.');
        size_t glen = dot ? (size_t)(dot - d->name) : 0;
        bool opened = false;
        if (strlen(group) != glen || strncmp(group, d->name, glen)) {
            if (group[0])
                fputs("};\n", f);
            snprintf(group, sizeof group, "%.*s", (int)glen, d->name);
            if (glen) {
                fprintf(f, "\n%s = {\n", group);
                opened = true;
            }
        }
        if (!opened)
            fputc('\n', f);
        const char *indent = glen ? "    " : "";
        put_comment(f, indent, d->doc);
        put_values(f, indent, d);
        fprintf(f, "%s%s = ", indent, dot ? dot + 1 : d->name);
        put_value(f, d);
        fputs(";\n", f);
    }
    if (group[0])
        fputs("};\n", f);
    return ferror(f) ? -EIO : 0;
}
