/*
 * starlingctl: administration beside a running node (or a stopped one). It talks to
 * the same database as the server, through the store's synchronous calls; SQLite's
 * WAL mode lets it write while the server reads.
 *
 *   starlingctl --config FILE adduser JID [PASSWORD]   (none or "-": read from stdin)
 *   starlingctl --config FILE passwd JID [PASSWORD]
 *   starlingctl --config FILE deluser JID
 *   starlingctl --config FILE users
 *   starlingctl --config FILE gencert                  (self-signed, for c2s.certificate)
 *   starlingctl sample-config                          (the commented defaults, to stdout)
 *
 * JID is user@domain (the configured domain) or just the user.
 */
#include "common/config.h"
#include "common/creds.h"
#include "common/jid.h"
#include "common/store.h"
#include "common/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: starlingctl --config FILE adduser|passwd JID [PASSWORD]\n"
                    "       starlingctl --config FILE deluser JID\n"
                    "       starlingctl --config FILE users\n"
                    "       starlingctl --config FILE gencert\n"
                    "       starlingctl sample-config\n");
    return 2;
}

/* The normalised localpart of arg, which must name an account of cfg's domain. */
static int account_of(const struct config *cfg, const char *arg, char *user, size_t cap)
{
    char buf[JID_BUF];
    if (!strchr(arg, '@')) {
        int n = jid_prep_local(arg, strlen(arg), user, cap);
        return n < 0 ? n : 0;
    }
    struct jid j;
    if (jid_parse(&j, arg, strlen(arg), buf, sizeof buf) < 0 || !j.local_len || j.res_len)
        return -EINVAL;
    if (j.domain_len != strlen(cfg->domain) ||
        memcmp(j.str + j.domain_off, cfg->domain, j.domain_len))
        return -EXDEV;
    if (j.local_len >= cap)
        return -ENAMETOOLONG;
    memcpy(user, j.str, j.local_len);
    user[j.local_len] = '\0';
    return 0;
}

static int read_password(const char *arg, char *out, size_t cap)
{
    if (arg) {
        snprintf(out, cap, "%s", arg);
        return 0;
    }
    if (!fgets(out, (int)cap, stdin))
        return -EINVAL;
    out[strcspn(out, "\r\n")] = '\0';
    return out[0] ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
    char err[512], user[JID_BUF], password[SCRAM_PASSWORD_MAX + 2];
    struct config *cfg;
    struct store *st = NULL;
    int rc;

    if (argc == 2 && !strcmp(argv[1], "sample-config"))
        return config_write_sample(stdout) < 0 ? 1 : 0;
    if (argc < 4 || strcmp(argv[1], "--config") != 0)
        return usage();
    if (config_load(argv[2], &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "starlingctl: %s\n", err);
        return 2;
    }
    const char *cmd = argv[3];
    if (!strcmp(cmd, "gencert")) {
        rc = tls_selfsigned_write(cfg->c2s.certificate, cfg->c2s.key, cfg->domain, 3650);
        if (rc < 0)
            fprintf(stderr, "starlingctl: gencert: %s\n", strerror(-rc));
        else
            printf("wrote %s and %s for %s\n", cfg->c2s.certificate, cfg->c2s.key, cfg->domain);
        config_free(cfg);
        return rc < 0 ? 1 : 0;
    }
    struct store_opts so = {
        .backend = cfg->storage.backend, .path = cfg->storage.path, .dsn = cfg->storage.dsn};
    if ((rc = store_open(&so, &st)) < 0) {
        fprintf(stderr, "starlingctl: storage: %s\n", strerror(-rc));
        config_free(cfg);
        return 1;
    }
    rc = 0;
    if (!strcmp(cmd, "users") && argc == 4) {
        struct store_list l;
        char after[JID_BUF] = "";
        do {
            if ((rc = store_account_list_sync(st, after, STORE_LIST_MAX, &l)) < 0)
                break;
            for (size_t i = 0; i < l.n; i++)
                printf("%s@%s\n", l.names[i], cfg->domain);
            if (l.n)
                snprintf(after, sizeof after, "%s", l.names[l.n - 1]);
            size_t n = l.n;
            store_list_free(&l);
            if (n < STORE_LIST_MAX)
                break;
        } while (1);
    } else if ((!strcmp(cmd, "adduser") || !strcmp(cmd, "passwd")) && (argc == 5 || argc == 6)) {
        struct store_creds creds;
        if ((rc = account_of(cfg, argv[4], user, sizeof user)) < 0 ||
            (rc = read_password(argc == 6 && strcmp(argv[5], "-") ? argv[5] : NULL, password,
                                sizeof password)) < 0 ||
            (rc = creds_make(password, cfg->c2s.scram_iterations, &creds)) < 0)
            goto out;
        rc = cmd[0] == 'a' ? store_account_create_sync(st, user, &creds)
                           : store_creds_set_sync(st, user, &creds);
        memset(&creds, 0, sizeof creds);
    } else if (!strcmp(cmd, "deluser") && argc == 5) {
        if ((rc = account_of(cfg, argv[4], user, sizeof user)) == 0)
            rc = store_account_delete_sync(st, user);
    } else {
        store_close(st);
        config_free(cfg);
        return usage();
    }
out:
    memset(password, 0, sizeof password);
    store_close(st);
    config_free(cfg);
    if (rc < 0) {
        const char *why = rc == -EEXIST   ? "the account exists"
                          : rc == -ENOENT ? "no such account"
                          : rc == -EXDEV  ? "not an account of this server's domain"
                          : rc == -EINVAL ? "invalid JID or password"
                                          : strerror(-rc);
        fprintf(stderr, "starlingctl: %s: %s\n", cmd, why);
        return 1;
    }
    return 0;
}
