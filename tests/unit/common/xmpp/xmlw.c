/* Unit tests of common/xmpp/xmlw.c: what the escaping writer makes of every value a client
 * can put in an attribute or text the server writes back, read with the project's own
 * parser: the value comes back as it was, and the element stays well-formed. */
#include "common/xmpp/xml.h"
#include "common/xmpp/xml_tree.h"
#include "common/xmpp/xmlw.h"
#include "test.h"

static char scratch[16384];

static void test_attr_round_trip(void)
{
    static const char *const values[] = {
        "plain",     "a'b",        "a\"b", "<&>",           "&amp;", "tab\there",
        "line\nend", "cr\rlf\r\n", "",     "x='y' z=\"w\"", "]]>",
    };
    struct arena a;
    arena_init(&a, 1024);
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        struct buf b = {0};
        const char *v = values[i];
        buf_puts(&b, "<iq");
        CHECK_INT(xmlw_attr(&b, "id", v, strlen(v)), ==, 0);
        buf_puts(&b, ">");
        CHECK_INT(xmlw_text(&b, v, strlen(v)), ==, 0);
        buf_puts(&b, "</iq>");
        struct xml_node *n =
            xml_tree_parse(NULL, buf_data(&b), buf_used(&b), &a, scratch, sizeof scratch);
        if (!n) {
            TEST_FAIL("value %zu makes bad XML: %.*s", i, (int)buf_used(&b), buf_data(&b));
        } else {
            CHECK_STR(xml_node_attr(n, "id"), v);
            /* Text keeps tabs and LF literally; CR survives only as a reference. */
            CHECK_STR(xml_node_text(n, &a), v);
        }
        arena_reset(&a);
        buf_free(&b);
    }
    arena_free(&a);
}

int main(void)
{
    RUN(test_attr_round_trip);
    return test_done("xmlw");
}
