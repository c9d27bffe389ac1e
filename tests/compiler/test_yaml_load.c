/*
 * The YAML loader: positions on every node, duplicate keys, aliases and
 * their expansion cap, merge keys, and the errors libyaml reports.
 */
#include "helpers.h"
#include "yaml_load.h"

typedef struct loaded {
    slc_arena a;
    slc_diags *d;
    slc_node *root;
} loaded;

static loaded *load(const char *src)
{
    loaded *l = calloc(1, sizeof *l);
    l->d = slc_diags_new("y.yaml", src, strlen(src));
    l->root = slc_yaml_load(src, strlen(src), &l->a, l->d);
    return l;
}

static void unload(loaded *l)
{
    slc_diags_free(l->d);
    slc_arena_free(&l->a);
    free(l);
}

static const char *first_message(loaded *l, slc_pos *pos)
{
    return slc_diags_message(l->d, 0, NULL, pos);
}

static void positions(void **state)
{
    loaded *l = load("a: 1\nb:\n  - x\n  - { c: \"q\" }\n");
    assert_non_null(l->root);
    assert_int_equal(l->root->kind, SLC_NODE_MAP);
    assert_int_equal(l->root->n, 2);
    slc_node *b = slc_map_get(l->root, "b");
    assert_int_equal(b->kind, SLC_NODE_SEQ);
    assert_int_equal(b->pos.line, 3);
    assert_int_equal(b->pos.col, 3);
    slc_node *x = b->vals[0];
    assert_string_equal(x->str, "x");
    assert_int_equal(x->pos.line, 3);
    assert_int_equal(x->pos.col, 5);
    assert_true(x->plain);
    slc_node *c = slc_map_get(b->vals[1], "c");
    assert_int_equal(c->pos.line, 4);
    assert_int_equal(c->pos.col, 10);
    assert_false(c->plain);
    assert_int_equal(l->root->keys[1]->pos.line, 2);
    assert_int_equal(l->root->keys[1]->pos.col, 1);
    unload(l);
}

static void duplicate_keys(void **state)
{
    loaded *l = load("a: 1\nb: 2\na: 3\n");
    assert_null(l->root);
    slc_pos pos;
    assert_string_equal(first_message(l, &pos), "duplicate key 'a' (first defined at 1:1)");
    assert_int_equal(pos.line, 3);
    assert_int_equal(pos.col, 1);
    unload(l);
}

static void aliases_and_merge(void **state)
{
    loaded *l = load("base: &b { x: 1, y: 2 }\n"
                     "use: *b\n"
                     "m:\n  <<: *b\n  y: 3\n");
    assert_non_null(l->root);
    slc_node *use = slc_map_get(l->root, "use");
    assert_ptr_equal(use, slc_map_get(l->root, "base"));
    slc_node *m = slc_map_get(l->root, "m");
    assert_int_equal(m->n, 2);
    assert_string_equal(slc_map_get(m, "y")->str, "3"); /* explicit wins */
    assert_string_equal(slc_map_get(m, "x")->str, "1");
    assert_null(slc_map_get(m, "<<"));
    unload(l);
}

static void unknown_anchor(void **state)
{
    loaded *l = load("a: *nope\n");
    assert_null(l->root);
    assert_string_equal(first_message(l, NULL), "unknown anchor 'nope'");
    unload(l);
}

static void alias_bomb(void **state)
{
    loaded *l = load("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n");
    assert_null(l->root);
    assert_non_null(strstr(first_message(l, NULL), "alias bomb"));
    unload(l);
}

/* Size alone is no bomb: 200k nodes written out in full load fine. */
static void large_documents(void **state)
{
    size_t n = 100000, cap = n * 16 + 16, len = 0;
    char *src = malloc(cap);
    len += (size_t)snprintf(src + len, cap - len, "a:\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(src + len, cap - len, "  k%zu: v\n", i);
    loaded *l = load(src);
    assert_non_null(l->root);
    assert_int_equal(slc_map_get(l->root, "a")->n, n);
    unload(l);
    free(src);
}

static void empty_documents(void **state)
{
    const char *cases[] = {"", "# only a comment\n", "---\n", "~\n"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        loaded *l = load(cases[i]);
        assert_null(l->root);
        assert_string_equal(first_message(l, NULL), "empty spec");
        unload(l);
    }
}

static void syntax_errors(void **state)
{
    loaded *l = load("a: [1, 2\nb: 3\n");
    assert_null(l->root);
    slc_pos pos;
    const char *m = first_message(l, &pos);
    assert_non_null(strstr(m, "flow sequence"));
    assert_int_equal(pos.line, 2);
    unload(l);

    l = load("a:\n\tb: 1\n");
    assert_null(l->root);
    assert_non_null(strstr(first_message(l, &pos), "tab"));
    assert_int_equal(pos.line, 2);
    assert_int_equal(pos.col, 1);
    unload(l);

    l = load("a: \"\xff\"\n");
    assert_null(l->root);
    assert_int_equal(slc_diags_errors(l->d), 1);
    unload(l);
}

static void non_scalar_key(void **state)
{
    loaded *l = load("? [a, b]\n: 1\n");
    assert_null(l->root);
    assert_non_null(strstr(first_message(l, NULL), "mapping keys must be scalars"));
    unload(l);
}

static void second_document(void **state)
{
    loaded *l = load("a: 1\n---\nb: 2\n");
    assert_null(l->root);
    assert_non_null(strstr(first_message(l, NULL), "one YAML document"));
    unload(l);
}

static void nulls(void **state)
{
    loaded *l = load("a:\nb: ~\nc: null\nd: 'null'\n");
    assert_true(slc_node_is_null(slc_map_get(l->root, "a")));
    assert_true(slc_node_is_null(slc_map_get(l->root, "b")));
    assert_true(slc_node_is_null(slc_map_get(l->root, "c")));
    assert_false(slc_node_is_null(slc_map_get(l->root, "d")));
    unload(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(positions),      cmocka_unit_test(duplicate_keys),
        cmocka_unit_test(aliases_and_merge), cmocka_unit_test(unknown_anchor),
        cmocka_unit_test(alias_bomb), cmocka_unit_test(large_documents),     cmocka_unit_test(empty_documents),
        cmocka_unit_test(syntax_errors),  cmocka_unit_test(non_scalar_key),
        cmocka_unit_test(second_document), cmocka_unit_test(nulls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
