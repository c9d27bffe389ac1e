/*
 * The generated model matcher (exact names in a hash table laid out by
 * sluicec, globs in a re2c DFA), checked name by name against the spec it
 * came from: every exact name finds its own entry even where the table
 * had to probe past collisions, exact names win over globs that also
 * match them, and near misses (one byte off, a prefix, a longer name) do
 * not find an exact entry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "route/route.h"
#include "table.h"

static int lookup(const char *name)
{
    return sl_route_lookup(&sl_spec, name, strlen(name));
}

static int entry_named(const char *name)
{
    for (uint32_t i = 0; i < sl_spec.model_count; i++)
        if (strcmp(sl_spec.models[i].name, name) == 0)
            return (int)i;
    return -1;
}

static void every_exact_name_finds_its_entry(void **state)
{
    (void)state;
    size_t exact = 0;
    for (uint32_t i = 0; i < sl_spec.model_count; i++) {
        const char *name = sl_spec.models[i].name;
        if (strchr(name, '*'))
            continue;
        assert_int_equal(lookup(name), (int)i);
        exact++;
    }
    /* 300 numbered names, m0, gpt-4o, gpt-4o-mini */
    assert_int_equal(exact, 303);
}

static void exact_beats_glob(void **state)
{
    (void)state;
    /* m001 and m100 are matched by the globs m00* and m1* too. */
    assert_int_equal(lookup("m001"), entry_named("m001"));
    assert_int_equal(lookup("m100"), entry_named("m100"));
    assert_int_equal(lookup("m0"), entry_named("m0"));
}

static void near_misses_fall_to_globs_or_miss(void **state)
{
    (void)state;
    assert_int_equal(lookup("m0001"), entry_named("m00*"));
    assert_int_equal(lookup("m1000"), entry_named("m1*"));
    assert_int_equal(lookup("m300"), -1);
    assert_int_equal(lookup("m29"), -1);
    assert_int_equal(lookup("m2999"), -1);
    assert_int_equal(lookup("M001"), -1);
    assert_int_equal(lookup("gpt-4"), -1);
    assert_int_equal(lookup("gpt-4o-min"), -1);
    assert_int_equal(lookup("gpt-4o-minii"), -1);
    assert_int_equal(lookup("gpt-4o-mini"), entry_named("gpt-4o-mini"));
    char buf[8];
    for (int i = 300; i < 1000; i++) {
        snprintf(buf, sizeof buf, "m%03d", i);
        assert_int_equal(lookup(buf), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_exact_name_finds_its_entry),
        cmocka_unit_test(exact_beats_glob),
        cmocka_unit_test(near_misses_fall_to_globs_or_miss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
