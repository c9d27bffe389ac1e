/*
 * The generated matcher, end to end: good/globs.yaml is compiled by
 * sluicec, run through re2c and linked here, and lookups must land on the
 * entries the routing rules promise (exact first, then the longest literal
 * prefix, then spec order).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "table.h"

static int match(const char *name)
{
    return sl_spec.match_model(name, strlen(name));
}

static int entry(const char *name)
{
    for (uint32_t i = 0; i < sl_spec.model_count; i++)
        if (strcmp(sl_spec.models[i].name, name) == 0)
            return (int)i;
    return -2;
}

static void exact_wins(void **state)
{
    assert_int_equal(match("gpt-4o"), entry("gpt-4o"));
    assert_int_equal(match("say \"hi\"\\now"), entry("say \"hi\"\\now"));
}

static void longest_prefix_wins(void **state)
{
    assert_int_equal(match("gpt-4o-mini"), entry("gpt-4o-*"));
    assert_int_equal(match("gpt-4"), entry("gpt-*"));
    assert_int_equal(match("gpt-"), entry("gpt-*"));
    assert_int_equal(match("gxt-1"), entry("g?t-*"));
    assert_int_equal(match("claude-3-5-sonnet"), entry("claude-3-?-*"));
    assert_int_equal(match("na\xc3\xafve-bayes"), entry("na\xc3\xafve-*"));
}

static void spec_order_breaks_ties(void **state)
{
    /* "*-mini" and "*" share prefix length 0; "*-mini" comes first. */
    assert_int_equal(match("o4-mini"), entry("*-mini"));
    assert_int_equal(match("anything"), entry("*"));
    assert_int_equal(match(""), entry("*"));
}

static void whole_names_only(void **state)
{
    /* "gpt-4o" must not match "gpt-4o" + suffix as the exact entry. */
    assert_int_not_equal(match("gpt-4oX"), entry("gpt-4o"));
    assert_int_equal(match("claude-3-5"), entry("*"));
}

static void table_fields(void **state)
{
    assert_int_equal(sl_spec.abi, SL_TABLE_ABI);
    assert_int_equal(strlen(sl_spec.spec_sha256), 64);
    assert_string_equal(sl_spec.listen, "[::1]:8080");
    assert_string_equal(sl_spec.state, "sluice.db");
    assert_int_equal(sl_spec.provider_count, 1);
    assert_int_equal(sl_spec.providers[0].kind, SL_KIND_MOCK);
    assert_string_equal(sl_spec.providers[0].base_url, "");
    assert_int_equal(sl_spec.target_count, sl_spec.model_count);
    assert_null(sl_spec.keys);
    assert_int_equal(sl_spec.has_admin, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exact_wins),        cmocka_unit_test(longest_prefix_wins),
        cmocka_unit_test(spec_order_breaks_ties), cmocka_unit_test(whole_names_only),
        cmocka_unit_test(table_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
