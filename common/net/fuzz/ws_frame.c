/*
 * libFuzzer driver for the frame headers of common/net/ws.c: the input is what a client
 * sends after the upgrade, read frame after frame as common/fe/ws.c reads them. The
 * first byte picks the bound on a data frame's payload (16 * byte), the rest is the
 * bytes. Properties, abort() on any violation:
 *   - one of the three statuses; never a read outside the input (ASan);
 *   - WS_INVALID gives close code 1002 or 1009, and 1009 only for a data frame over
 *     the bound;
 *   - WS_DONE: a masked header of 6, 8 or 14 bytes within the input, a known opcode, a
 *     control frame final and at most 125 bytes, a data frame at most the bound; every
 *     shorter prefix of the header is WS_INCOMPLETE; the header we would write for the
 *     same payload is 4 bytes shorter (no mask) and reads back the same length;
 *   - unmasking twice gives back the bytes (the mask is an involution at any offset).
 */
#include "common/net/ws.h"

#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint64_t max = 16 * (uint64_t)data[0];
    data++, size--;
    uint8_t copy[256];
    for (size_t off = 0; off < size;) {
        struct ws_frame f, g;
        uint16_t code = 0;
        enum ws_status st = ws_frame_parse(data + off, size - off, max, &f, &code);
        FUZZ_CHECK(st == WS_INCOMPLETE || st == WS_DONE || st == WS_INVALID);
        if (st == WS_INVALID) {
            FUZZ_CHECK(code == WS_CLOSE_PROTOCOL || code == WS_CLOSE_TOO_BIG);
            FUZZ_CHECK(code != WS_CLOSE_TOO_BIG || !(data[off] & 0x08));
        }
        if (st != WS_DONE)
            break;
        FUZZ_CHECK(f.hdr_len == 6 || f.hdr_len == 8 || f.hdr_len == 14);
        FUZZ_CHECK(f.hdr_len <= size - off && (data[off + 1] & 0x80));
        bool control = f.opcode & 0x08;
        FUZZ_CHECK(f.opcode <= WS_OP_BINARY || (f.opcode >= WS_OP_CLOSE && f.opcode <= WS_OP_PONG));
        FUZZ_CHECK(control ? f.fin && f.len <= WS_CONTROL_MAX : f.len <= max);
        for (size_t k = 0; k < f.hdr_len; k++)
            FUZZ_CHECK(ws_frame_parse(data + off, k, max, &g, &code) == WS_INCOMPLETE);
        uint8_t h[10];
        FUZZ_CHECK(ws_frame_header(h, f.opcode, f.len) + 4 == f.hdr_len);
        off += f.hdr_len;
        size_t n = f.len < size - off ? (size_t)f.len : size - off;
        size_t m = n < sizeof copy ? n : sizeof copy;
        memcpy(copy, data + off, m);
        ws_unmask(copy, m, f.mask, off & 7);
        ws_unmask(copy, m, f.mask, off & 7);
        FUZZ_CHECK(!memcmp(copy, data + off, m));
        off += n;
    }
    return 0;
}
