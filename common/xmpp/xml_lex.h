/*
 * xml_lex.h: the character level of the XML scanner (xml.c), shared with xml_lex.c and
 * nothing else: byte classes, the fast loops over character data and attribute values,
 * code points (UTF-8, XML Char, NameChar) and references. The loops are inline: they
 * are the scanner's hot path.
 */
#ifndef STARLING_XML_LEX_H
#define STARLING_XML_LEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define REF_MAX 16

/* ---- character classes ------------------------------------------------------------------ */

#define C_NAME_START 0x1 /* ASCII NameStartChar */
#define C_NAME       0x2 /* ASCII NameChar */
#define C_TEXT_STOP  0x4 /* ends a run of plain character data */
#define C_WS         0x8

extern uint8_t xml_cls[256]; /* C_* bits of each byte */

static inline bool is_ws(uint8_t c)
{
    return xml_cls[c] & C_WS;
}

static inline bool xml_char(uint32_t c)
{
    return c >= 0x20 || c == 0x9 || c == 0xA || c == 0xD;
}

/* ---- fast scanning loops ---------------------------------------------------------------- */

/* Index of the first byte of s[0..n) that ends plain character data: '<', '&', '>', a
 * control character or a non-ASCII byte; n when there is none. */
static inline size_t scan_text(const char *s, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i lt = _mm_set1_epi8('<'), amp = _mm_set1_epi8('&'), gt = _mm_set1_epi8('>');
    const __m128i sp = _mm_set1_epi8(0x20);
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        /* Signed compare: bytes >= 0x80 are negative, so "< 0x20" also catches them. */
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, lt), _mm_cmpeq_epi8(v, amp)),
                                 _mm_or_si128(_mm_cmpeq_epi8(v, gt), _mm_cmplt_epi8(v, sp)));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits)
            return i + (size_t)__builtin_ctz(bits);
    }
#endif
    while (i < n && !(xml_cls[(uint8_t)s[i]] & C_TEXT_STOP))
        i++;
    return i;
}

/* Index of the first byte of s[0..n) that ends a plain attribute value: the quote q, '<',
 * '&', a control character or a non-ASCII byte; n when there is none. */
static inline size_t scan_attr(const char *s, size_t n, char q)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i lt = _mm_set1_epi8('<'), amp = _mm_set1_epi8('&'), qq = _mm_set1_epi8(q);
    const __m128i sp = _mm_set1_epi8(0x20);
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, lt), _mm_cmpeq_epi8(v, amp)),
                                 _mm_or_si128(_mm_cmpeq_epi8(v, qq), _mm_cmplt_epi8(v, sp)));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits)
            return i + (size_t)__builtin_ctz(bits);
    }
#endif
    for (; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c < 0x20 || c >= 0x80 || c == '<' || c == '&' || c == (uint8_t)q)
            break;
    }
    return i;
}

static inline bool span_is(const char *p, size_t n, const char *lit, size_t litlen)
{
    return n == litlen && memcmp(p, lit, n) == 0;
}

#define SPAN_IS(p, n, lit) span_is((p), (n), lit, sizeof(lit) - 1)

/* NameStartChar and NameChar beyond ASCII (XML 1.0 §2.3). */
bool xml_name_start_cp(uint32_t c);
bool xml_name_cp(uint32_t c);

/* Decodes the UTF-8 sequence at s (n > 0 bytes available, s[0] >= 0x80) into *cp.
 * Returns its length, 0 when the sequence is cut short by the end of the input, -1 when
 * it is not valid UTF-8 or not an XML Char (surrogates, U+FFFE, U+FFFF, > U+10FFFF). */
int xml_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);

/* Checks the reference at s[0] == '&' (n bytes available). Returns its length, 0 when it
 * is cut short, or -XML_ERR_*. */
int xml_check_ref(const char *s, size_t n);

#endif
