/*
 * tls_cert: making keys and certificates (tls.h's last section): self-signed ones for
 * `make run` and tests, and a CA with certificates signed by it, which is what two servers
 * need to authenticate each other with SASL EXTERNAL on a private network or in tests.
 * Files are written beside their final name and renamed over it, so a reader never sees
 * half of one.
 */
#include "common/auth/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define SAN_MAX 64 /* subjectAltNames one certificate may get */

/* id-on-xmppAddr (RFC 6120 §13.7.1.4) and id-on-dnsSRV (RFC 4985). */
#define OID_XMPP_ADDR "1.3.6.1.5.5.7.8.5"
#define OID_DNS_SRV   "1.3.6.1.5.5.7.8.7"

/* A host name as DNS writes it, "*." in front if `wild`: what may go into a CN or a SAN. */
static bool dns_name_ok(const char *s, bool wild)
{
    if (wild && s[0] == '*' && s[1] == '.')
        s += 2;
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.'))
            return false;
    }
    return true;
}

/* Text without control characters (UTF-8 is allowed: an XmppAddr may hold U-labels). */
static bool text_ok(const char *s, bool ascii)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch == 0x7f || (ascii && ch >= 0x80))
            return false;
    }
    return true;
}

/* Writes PEM through write_fn to path, created with mode; the file is replaced whole. */
static int write_pem(const char *path, mode_t mode, int (*write_fn)(BIO *, void *), void *obj)
{
    char tmp[4096];
    int rc = -EIO, fd;
    BIO *bio;

    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    bio = BIO_new_fd(fd, BIO_CLOSE);
    if (!bio) {
        close(fd);
        goto out_unlink;
    }
    if (!write_fn(bio, obj) || BIO_flush(bio) != 1) {
        BIO_free(bio);
        goto out_unlink;
    }
    BIO_free(bio); /* closes fd */
    if (rename(tmp, path) != 0) {
        rc = -errno;
        goto out_unlink;
    }
    return 0;

out_unlink:
    unlink(tmp);
    return rc;
}

static int write_key(BIO *b, void *k)
{
    return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

static int write_crt(BIO *b, void *x)
{
    return PEM_write_bio_X509(b, x);
}

/* Reads the first PEM object of path with read_fn. */
static int read_pem(const char *path, void *(*read_fn)(BIO *), void **out)
{
    BIO *b = BIO_new_file(path, "r");
    if (!b)
        return errno ? -errno : -EIO;
    *out = read_fn(b);
    BIO_free(b);
    return *out ? 0 : -EINVAL;
}

static void *read_crt(BIO *b)
{
    return PEM_read_bio_X509(b, NULL, NULL, NULL);
}

static void *read_key(BIO *b)
{
    return PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
}

/* v3 extensions in OpenSSL's configuration syntax; ctx gives "hash" and "keyid" their
 * certificates. */
static bool add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    bool ok = ext && X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

static bool push_string(GENERAL_NAMES *gens, int type, const char *oid, const char *value)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_STRING *str = ASN1_STRING_type_new(type);
    ASN1_OBJECT *obj = NULL;
    ASN1_TYPE *any = NULL;

    if (!g || !str || !ASN1_STRING_set(str, value, (int)strlen(value)))
        goto fail;
    if (!oid) {
        GENERAL_NAME_set0_value(g, GEN_DNS, str);
    } else {
        /* otherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY } */
        obj = OBJ_txt2obj(oid, 1);
        any = ASN1_TYPE_new();
        if (!obj || !any)
            goto fail;
        ASN1_TYPE_set(any, type, str);
        str = NULL; /* owned by any */
        if (!GENERAL_NAME_set0_othername(g, obj, any))
            goto fail;
    }
    if (!sk_GENERAL_NAME_push(gens, g)) {
        GENERAL_NAME_free(g);
        return false;
    }
    return true;

fail:
    ASN1_TYPE_free(any);
    ASN1_OBJECT_free(obj);
    ASN1_STRING_free(str);
    GENERAL_NAME_free(g);
    return false;
}

/* The subjectAltName extension of s; false for a name tls.h's syntax refuses. */
static bool add_sans(X509 *x, const struct tls_cert_spec *s)
{
    const char *dflt[] = {NULL, NULL};
    char buf[8 + 256];
    const char *const *sans = s->sans;
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    bool ok = gens != NULL;
    size_t n = 0;

    if (!sans) {
        snprintf(buf, sizeof buf, "DNS:%s", s->name);
        dflt[0] = buf;
        sans = dflt;
    }
    for (; ok && sans[n]; n++) {
        const char *v = sans[n];
        if (n == SAN_MAX)
            ok = false;
        else if (!strncmp(v, "DNS:", 4))
            ok = dns_name_ok(v + 4, true) && push_string(gens, V_ASN1_IA5STRING, NULL, v + 4);
        else if (!strncmp(v, "SRV:", 4))
            ok = v[4] == '_' && strchr(v + 4, '.') && text_ok(v + 4, true) &&
                 dns_name_ok(strchr(v + 4, '.') + 1, false) &&
                 push_string(gens, V_ASN1_IA5STRING, OID_DNS_SRV, v + 4);
        else if (!strncmp(v, "XMPP:", 5))
            ok = text_ok(v + 5, false) && !strpbrk(v + 5, "@/") &&
                 push_string(gens, V_ASN1_UTF8STRING, OID_XMPP_ADDR, v + 5);
        else
            ok = false;
    }
    ok = ok && n > 0 && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT);
    GENERAL_NAMES_free(gens);
    return ok;
}

static EVP_PKEY *new_key(void)
{
    EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    EVP_PKEY *pkey = EVP_PKEY_new();
    if (!ec || !pkey || !EC_KEY_generate_key(ec) || !EVP_PKEY_assign_EC_KEY(pkey, ec)) {
        EC_KEY_free(ec);
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey; /* owns ec */
}

/* A v3 certificate for pkey with subject CN=cn, a random serial, valid from an hour ago. */
static X509 *new_cert(EVP_PKEY *pkey, const char *cn, unsigned days)
{
    uint8_t serial[16];
    X509 *x = X509_new();
    BIGNUM *bn;

    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f; /* a positive INTEGER */
    serial[0] |= 0x40; /* of full length */
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (!x || !bn || !X509_set_version(x, X509_VERSION_3) ||
        !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400) ||
        !X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                    (const uint8_t *)cn, -1, -1, 0) ||
        !X509_set_pubkey(x, pkey)) {
        X509_free(x);
        x = NULL;
    }
    BN_free(bn);
    return x;
}

static int write_pair(const char *crt_path, const char *key_path, X509 *x, EVP_PKEY *pkey)
{
    int rc = write_pem(key_path, 0600, write_key, pkey);
    return rc ? rc : write_pem(crt_path, 0644, write_crt, x);
}

int tls_cert_write(const char *crt_path, const char *key_path, const struct tls_cert_spec *s)
{
    int rc = -EIO;
    EVP_PKEY *pkey = NULL, *ca_key = NULL;
    X509 *x = NULL, *ca = NULL;
    X509V3_CTX v3;

    if (!crt_path || !key_path || !s || !s->name || !dns_name_ok(s->name, true) || s->days == 0 ||
        s->days > 36500 || !s->ca_cert != !s->ca_key)
        return -EINVAL;
    if (s->ca_cert) {
        if ((rc = read_pem(s->ca_cert, read_crt, (void **)&ca)) < 0 ||
            (rc = read_pem(s->ca_key, read_key, (void **)&ca_key)) < 0)
            goto out;
        rc = -EINVAL;
        if (X509_check_private_key(ca, ca_key) != 1)
            goto out;
        rc = -EIO;
    }
    pkey = new_key();
    x = pkey ? new_cert(pkey, s->name, s->days) : NULL;
    if (!x || !X509_set_issuer_name(x, X509_get_subject_name(ca ? ca : x)))
        goto out;
    X509V3_set_ctx(&v3, ca ? ca : x, x, NULL, NULL, 0);
    if (!add_sans(x, s)) {
        rc = -EINVAL;
        goto out;
    }
    /* No keyUsage on a self-signed one: digitalSignature alone would stop the certificate
     * from being its own issuer, so a peer could not pin it as a trust root. */
    if (!add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE") ||
        (ca && !add_ext(x, &v3, NID_key_usage, "critical,digitalSignature")) ||
        !add_ext(x, &v3, NID_ext_key_usage, "serverAuth,clientAuth") ||
        !add_ext(x, &v3, NID_subject_key_identifier, "hash") ||
        (ca && !add_ext(x, &v3, NID_authority_key_identifier, "keyid:always")) ||
        !X509_sign(x, ca ? ca_key : pkey, EVP_sha256()))
        goto out;
    rc = write_pair(crt_path, key_path, x, pkey);

out:
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(pkey);
    EVP_PKEY_free(ca_key);
    ERR_clear_error();
    return rc;
}

int tls_ca_write(const char *crt_path, const char *key_path, const char *name, unsigned days)
{
    int rc = -EIO;
    EVP_PKEY *pkey = NULL;
    X509 *x = NULL;
    X509V3_CTX v3;

    if (!crt_path || !key_path || !name || !text_ok(name, true) || strlen(name) > 64 ||
        days == 0 || days > 36500)
        return -EINVAL;
    pkey = new_key();
    x = pkey ? new_cert(pkey, name, days) : NULL;
    if (!x || !X509_set_issuer_name(x, X509_get_subject_name(x)))
        goto out;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    /* pathlen 0: it signs servers' certificates, never another CA. */
    if (!add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
        !add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        !add_ext(x, &v3, NID_subject_key_identifier, "hash") ||
        !X509_sign(x, pkey, EVP_sha256()))
        goto out;
    rc = write_pair(crt_path, key_path, x, pkey);

out:
    X509_free(x);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return rc;
}

int tls_selfsigned_write(const char *crt_path, const char *key_path, const char *common_name,
                         unsigned days)
{
    if (!common_name || !dns_name_ok(common_name, false))
        return -EINVAL;
    struct tls_cert_spec s = {.name = common_name, .days = days};
    return tls_cert_write(crt_path, key_path, &s);
}
