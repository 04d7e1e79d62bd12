/* Tests of bench/json.c: nesting, commas, one-line arrays, escaping, non-finite numbers. */
#include "bench/json.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>

static void document_test(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    struct json j;
    json_init(&j, f);
    json_obj(&j, NULL);
    json_str(&j, "s", "a\"b\\c\n\x01");
    json_u64(&j, "u", 18446744073709551615u);
    json_i64(&j, "i", -3);
    json_num(&j, "x", 0.25);
    json_num(&j, "nan", NAN);
    json_bool(&j, "b", true);
    json_str(&j, "null", NULL);
    json_arr(&j, "row", true);
    json_u64(&j, NULL, 1);
    json_u64(&j, NULL, 2);
    json_end(&j);
    json_arr(&j, "rows", false);
    json_arr(&j, NULL, true);
    json_num(&j, NULL, 99.9);
    json_end(&j);
    json_obj(&j, NULL);
    json_end(&j);
    json_end(&j);
    json_obj(&j, "empty");
    json_end(&j);
    json_end(&j);
    fclose(f);
    CHECK_STR(text, "{\n"
                    "  \"s\": \"a\\\"b\\\\c\\u000a\\u0001\",\n"
                    "  \"u\": 18446744073709551615,\n"
                    "  \"i\": -3,\n"
                    "  \"x\": 0.25,\n"
                    "  \"nan\": null,\n"
                    "  \"b\": true,\n"
                    "  \"null\": null,\n"
                    "  \"row\": [1, 2],\n"
                    "  \"rows\": [\n"
                    "    [99.9],\n"
                    "    {}\n"
                    "  ],\n"
                    "  \"empty\": {}\n"
                    "}\n");
    free(text);
}

int main(void)
{
    RUN(document_test);
    return test_done("json");
}
