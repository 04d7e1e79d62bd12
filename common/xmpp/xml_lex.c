/*
 * xml_lex.c: the character level of the XML scanner: the byte class table, code points
 * beyond ASCII, references and their decoding (xml_lex.h).
 */
#include "common/xmpp/xml.h"
#include "common/xmpp/xml_lex.h"

uint8_t xml_cls[256];

__attribute__((constructor)) static void xml_cls_init(void)
{
    for (int c = 0; c < 256; c++) {
        uint8_t k = 0;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':')
            k |= C_NAME_START | C_NAME;
        if ((c >= '0' && c <= '9') || c == '-' || c == '.')
            k |= C_NAME;
        if (c < 0x20 || c >= 0x80 || c == '<' || c == '&' || c == '>')
            k |= C_TEXT_STOP;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            k |= C_WS;
        xml_cls[c] = k;
    }
}

bool xml_name_start_cp(uint32_t c)
{
    return (c >= 0xC0 && c <= 0xD6) || (c >= 0xD8 && c <= 0xF6) || (c >= 0xF8 && c <= 0x2FF) ||
           (c >= 0x370 && c <= 0x37D) || (c >= 0x37F && c <= 0x1FFF) ||
           (c >= 0x200C && c <= 0x200D) || (c >= 0x2070 && c <= 0x218F) ||
           (c >= 0x2C00 && c <= 0x2FEF) || (c >= 0x3001 && c <= 0xD7FF) ||
           (c >= 0xF900 && c <= 0xFDCF) || (c >= 0xFDF0 && c <= 0xFFFD) ||
           (c >= 0x10000 && c <= 0xEFFFF);
}

bool xml_name_cp(uint32_t c)
{
    return xml_name_start_cp(c) || c == 0xB7 || (c >= 0x300 && c <= 0x36F) ||
           (c >= 0x203F && c <= 0x2040);
}

int xml_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0], lo = 0x80, hi = 0xBF;
    int len;
    uint32_t v;

    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return -1;
    }
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n)
            return 0;
        uint8_t t = s[i];
        if (t < lo || t > hi)
            return -1;
        lo = 0x80, hi = 0xBF;
        v = (v << 6) | (t & 0x3F);
    }
    if (v == 0xFFFE || v == 0xFFFF)
        return -1;
    *cp = v;
    return len;
}

int xml_check_ref(const char *s, size_t n)
{
    size_t i = 1, max = n < REF_MAX ? n : REF_MAX;
    while (i < max && s[i] != ';')
        i++;
    if (i >= max)
        return n < REF_MAX ? 0 : -XML_ERR_NOT_WELL_FORMED;
    const char *name = s + 1;
    size_t len = i - 1;
    if (len >= 2 && name[0] == '#') {
        uint32_t v = 0;
        size_t k = 1;
        bool hex = name[1] == 'x';
        if (hex)
            k = 2;
        if (k >= len)
            return -XML_ERR_NOT_WELL_FORMED;
        for (; k < len; k++) {
            char c = name[k];
            int d;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (hex && c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else if (hex && c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
            else
                return -XML_ERR_NOT_WELL_FORMED;
            v = v * (hex ? 16 : 10) + (uint32_t)d;
            if (v > 0x10FFFF)
                return -XML_ERR_NOT_WELL_FORMED;
        }
        if (!xml_char(v) || (v >= 0xD800 && v <= 0xDFFF) || v == 0xFFFE || v == 0xFFFF)
            return -XML_ERR_NOT_WELL_FORMED;
        return (int)i + 1;
    }
    if (SPAN_IS(name, len, "lt") || SPAN_IS(name, len, "gt") || SPAN_IS(name, len, "amp") ||
        SPAN_IS(name, len, "apos") || SPAN_IS(name, len, "quot"))
        return (int)i + 1;
    if (len == 0)
        return -XML_ERR_NOT_WELL_FORMED;
    /* A syntactically valid entity name that is not predefined: RFC 6120 §11.1. */
    if (!(xml_cls[(uint8_t)name[0]] & C_NAME_START) && (uint8_t)name[0] < 0x80)
        return -XML_ERR_NOT_WELL_FORMED;
    for (size_t k = 1; k < len; k++)
        if (!(xml_cls[(uint8_t)name[k]] & C_NAME) && (uint8_t)name[k] < 0x80)
            return -XML_ERR_NOT_WELL_FORMED;
    return -XML_ERR_RESTRICTED_XML;
}

static void utf8_put(char **o, uint32_t v)
{
    char *d = *o;
    if (v < 0x80) {
        *d++ = (char)v;
    } else if (v < 0x800) {
        *d++ = (char)(0xC0 | (v >> 6));
        *d++ = (char)(0x80 | (v & 0x3F));
    } else if (v < 0x10000) {
        *d++ = (char)(0xE0 | (v >> 12));
        *d++ = (char)(0x80 | ((v >> 6) & 0x3F));
        *d++ = (char)(0x80 | (v & 0x3F));
    } else {
        *d++ = (char)(0xF0 | (v >> 18));
        *d++ = (char)(0x80 | ((v >> 12) & 0x3F));
        *d++ = (char)(0x80 | ((v >> 6) & 0x3F));
        *d++ = (char)(0x80 | (v & 0x3F));
    }
    *o = d;
}

size_t xml_decode(const char *raw, size_t len, bool attr, char *out)
{
    char *o = out;
    for (size_t i = 0; i < len;) {
        char c = raw[i];
        if (c == '&') {
            const char *name = raw + i + 1;
            size_t k = 0;
            while (i + 1 + k < len && name[k] != ';')
                k++;
            if (name[0] == '#') {
                bool hex = name[1] == 'x';
                uint32_t v = 0;
                for (size_t j = hex ? 2 : 1; j < k; j++) {
                    char d = name[j];
                    v = v * (hex ? 16 : 10) +
                        (uint32_t)(d <= '9' ? d - '0' : (d | 0x20) - 'a' + 10);
                }
                utf8_put(&o, v);
            } else if (k == 2) {
                *o++ = name[0] == 'l' ? '<' : '>';
            } else if (k == 3) {
                *o++ = '&';
            } else {
                *o++ = name[0] == 'a' ? '\'' : '"';
            }
            i += k + 2;
        } else if (c == '\r') {
            *o++ = attr ? ' ' : '\n';
            i += (i + 1 < len && raw[i + 1] == '\n') ? 2 : 1;
        } else if (attr && (c == '\n' || c == '\t')) {
            *o++ = ' ';
            i++;
        } else {
            *o++ = c;
            i++;
        }
    }
    return (size_t)(o - out);
}
