/*
 * Unit tests for runtime/metrics/metrics.c: per-worker shards summed at
 * scrape time, histogram buckets and sums, label vocabularies and escaping,
 * the bounded series table, and recording on several threads while a
 * scrape reads (the totals must come out exact once the writers stop).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"
#include "table.h"

static int setup(void **state)
{
    (void)state;
    return sl_metrics_init(&sl_spec);
}

static int teardown(void **state)
{
    (void)state;
    sl_metrics_shutdown();
    return 0;
}

/* The rendered page, NUL-terminated (caller frees). */
static char *render(void)
{
    sl_buf b = {0};
    assert_int_equal(sl_metrics_render(&b), 0);
    sl_buf_append(&b, "", 1);
    return b.data;
}

static void assert_line(const char *page, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = page; (p = strstr(p, line)) != NULL; p++)
        if ((p == page || p[-1] == '\n') && p[n] == '\n')
            return;
    fail_msg("missing line: %s", line);
}

static int entry_of(const char *name)
{
    for (uint32_t i = 0; i < sl_spec.model_count; i++)
        if (strcmp(sl_spec.models[i].name, name) == 0)
            return (int)i;
    fail_msg("no entry %s", name);
    return -1;
}

static int provider_of(const char *name)
{
    for (uint32_t i = 0; i < sl_spec.provider_count; i++)
        if (strcmp(sl_spec.providers[i].name, name) == 0)
            return (int)i;
    fail_msg("no provider %s", name);
    return -1;
}

static sl_metrics_request ok_request(void)
{
    sl_metrics_request r = {.entry = entry_of("smart"), .provider = provider_of("ant"), .key = -1,
                            .surface = SL_PROTO_ANTHROPIC, .op = SL_OP_MESSAGES, .status = 200,
                            .duration_s = 0.05, .overhead_s = 0.00003, .ttft_s = -1,
                            .input = 10, .output = 20, .cache_read = 3, .cost_micros = 1234};
    return r;
}

static void test_shards_are_summed(void **state)
{
    (void)state;
    sl_metrics_shard *a = sl_metrics_shard_for(0), *b = sl_metrics_shard_for(1);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_equal(sl_metrics_shard_for(0), a);
    sl_metrics_request r = ok_request();
    sl_metrics_request_begin(a);
    sl_metrics_request_end(a, &r);
    sl_metrics_request_begin(b);
    sl_metrics_request_end(b, &r);
    sl_metrics_request_begin(b);
    r.status = 503;
    r.retries = 2;
    r.fallbacks = 1;
    sl_metrics_request_end(b, &r);
    sl_metrics_attempt(a, entry_of("smart"), provider_of("ant"), SL_MET_ATTEMPT_5XX);
    sl_metrics_attempt(b, entry_of("smart"), provider_of("ant"), SL_MET_ATTEMPT_5XX);
    sl_metrics_attempt(b, entry_of("demo-model"), provider_of("demo"), SL_MET_ATTEMPT_OK);
    sl_metrics_refused(a, -1, SL_MET_REFUSED_BUDGET);

    char *p = render();
    assert_line(p, "sluice_requests_total{entry=\"smart\",provider=\"ant\",key=\"\",team=\"\",surface=\"anthropic\","
                   "status_class=\"2xx\"} 2");
    assert_line(p, "sluice_requests_total{entry=\"smart\",provider=\"ant\",key=\"\",team=\"\",surface=\"anthropic\","
                   "status_class=\"5xx\"} 1");
    assert_line(p, "sluice_attempts_total{entry=\"smart\",provider=\"ant\",result=\"http_5xx\"} 2");
    assert_line(p, "sluice_attempts_total{entry=\"demo-model\",provider=\"demo\",result=\"ok\"} 1");
    assert_line(p, "sluice_retries_total{entry=\"smart\"} 2");
    assert_line(p, "sluice_fallbacks_total{entry=\"smart\"} 1");
    assert_line(p, "sluice_tokens_total{entry=\"smart\",provider=\"ant\",key=\"\",team=\"\",type=\"cache_read\"} 9");
    assert_line(p, "sluice_cost_usd_total{entry=\"smart\",provider=\"ant\",key=\"\",team=\"\"} 0.003702");
    assert_line(p, "sluice_rate_limit_refusals_total{key=\"\",team=\"\",reason=\"budget\"} 1");
    /* Messages are "chat" in OTel's vocabulary; the failure's status is
     * its error_type. */
    assert_line(p, "gen_ai_client_operation_duration_seconds_count{gen_ai_request_model=\"smart\","
                   "gen_ai_provider_name=\"ant\",gen_ai_operation_name=\"chat\",error_type=\"\"} 2");
    assert_line(p, "gen_ai_client_operation_duration_seconds_count{gen_ai_request_model=\"smart\","
                   "gen_ai_provider_name=\"ant\",gen_ai_operation_name=\"chat\",error_type=\"503\"} 1");
    /* Cached input counts as input for OTel. */
    assert_line(p, "gen_ai_client_token_usage_sum{gen_ai_request_model=\"smart\",gen_ai_provider_name=\"ant\","
                   "gen_ai_operation_name=\"chat\",gen_ai_token_type=\"input\"} 39");
    assert_line(p, "sluice_metrics_series_dropped_total 0");
    assert_int_equal(sl_metrics_in_flight(), 0);
    sl_metrics_request_begin(a);
    assert_int_equal(sl_metrics_in_flight(), 1);
    free(p);
}

static void test_histogram_buckets(void **state)
{
    (void)state;
    sl_metrics_shard *s = sl_metrics_shard_for(0);
    sl_metrics_request r = ok_request();
    const double d[] = {0.005, 0.01, 0.015, 100.0};
    for (int i = 0; i < 4; i++) {
        r.duration_s = d[i];
        sl_metrics_request_end(s, &r);
    }
    char *p = render();
    const char *pre = "gen_ai_client_operation_duration_seconds_bucket{gen_ai_request_model=\"smart\","
                      "gen_ai_provider_name=\"ant\",gen_ai_operation_name=\"chat\",error_type=\"\",le=";
    char line[512];
    /* le is inclusive; buckets are cumulative; +Inf holds everything. */
    snprintf(line, sizeof line, "%s\"0.01\"} 2", pre);
    assert_line(p, line);
    snprintf(line, sizeof line, "%s\"0.02\"} 3", pre);
    assert_line(p, line);
    snprintf(line, sizeof line, "%s\"81.92\"} 3", pre);
    assert_line(p, line);
    snprintf(line, sizeof line, "%s\"+Inf\"} 4", pre);
    assert_line(p, line);
    assert_line(p, "gen_ai_client_operation_duration_seconds_sum{gen_ai_request_model=\"smart\","
                   "gen_ai_provider_name=\"ant\",gen_ai_operation_name=\"chat\",error_type=\"\"} 100.03");
    /* No stream: no time to first token. */
    assert_null(strstr(p, "gen_ai_server_time_to_first_token_seconds_count{"));
    free(p);
}

static void test_vocabularies(void **state)
{
    (void)state;
    sl_metrics_shard *s = sl_metrics_shard_for(2);
    sl_metrics_request r = ok_request();
    r.op = SL_OP_CHAT;
    r.legacy = 1;
    r.surface = SL_PROTO_OPENAI;
    r.status = 418;
    r.stream = 1;
    r.ttft_s = 0.002;
    sl_metrics_request_end(s, &r);
    r.entry = -1;
    r.provider = -1;
    r.status = 0;
    r.legacy = 0;
    r.op = SL_OP_GENERATE;
    sl_metrics_request_end(s, &r);
    char *p = render();
    assert_line(p, "gen_ai_client_operation_duration_seconds_count{gen_ai_request_model=\"smart\","
                   "gen_ai_provider_name=\"ant\",gen_ai_operation_name=\"text_completion\",error_type=\"_OTHER\"} 1");
    assert_line(p, "gen_ai_client_operation_duration_seconds_count{gen_ai_request_model=\"\","
                   "gen_ai_provider_name=\"\",gen_ai_operation_name=\"generate_content\",error_type=\"_OTHER\"} 1");
    assert_line(p, "gen_ai_server_time_to_first_token_seconds_bucket{gen_ai_request_model=\"smart\","
                   "gen_ai_provider_name=\"ant\",gen_ai_operation_name=\"text_completion\",le=\"0.005\"} 1");
    assert_line(p, "sluice_requests_total{entry=\"\",provider=\"\",key=\"\",team=\"\",surface=\"openai\","
                   "status_class=\"other\"} 1");
    assert_int_equal(sl_metrics_result_of_status(429), SL_MET_ATTEMPT_429);
    assert_int_equal(sl_metrics_result_of_status(404), SL_MET_ATTEMPT_4XX);
    assert_int_equal(sl_metrics_result_of_status(201), SL_MET_ATTEMPT_OK);
    free(p);
}

static void test_label_escaping(void **state)
{
    (void)state;
    sl_buf b = {0};
    int n = 0;
    sl_metrics_text_begin(&b, "x");
    sl_metrics_text_label(&b, &n, "a", "q\"b\\s\nn");
    sl_metrics_text_label(&b, &n, "b", NULL);
    sl_metrics_text_end(&b, n, 0.25);
    sl_metrics_text_begin(&b, "y");
    sl_metrics_text_end(&b, 0, 3);
    sl_buf_append(&b, "", 1);
    assert_string_equal(b.data, "x{a=\"q\\\"b\\\\s\\nn\",b=\"\"} 0.25\ny 3\n");
    sl_buf_free(&b);
}

/* A full series table drops new series and says so; existing ones go on. */
static void test_table_full(void **state)
{
    (void)state;
    sl_metrics_shard *s = sl_metrics_shard_for(3);
    for (int i = 0; i < 5000; i++)
        sl_metrics_attempt(s, i % 4000, i / 4000, SL_MET_ATTEMPT_OK);
    sl_metrics_attempt(s, 0, 0, SL_MET_ATTEMPT_OK);
    char *p = render();
    assert_null(strstr(p, "sluice_metrics_series_dropped_total 0\n"));
    assert_non_null(strstr(p, "sluice_metrics_series_dropped_total "));
    free(p);
}

enum { PER_THREAD = 200000 };

static void *writer(void *arg)
{
    sl_metrics_shard *s = sl_metrics_shard_for((int)(intptr_t)arg);
    for (int i = 0; i < PER_THREAD; i++)
        sl_metrics_attempt(s, 0, 0, SL_MET_ATTEMPT_OK);
    return NULL;
}

static void test_concurrent_scrape(void **state)
{
    (void)state;
    pthread_t th[3];
    for (intptr_t i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, writer, (void *)(i + 10)), 0);
    for (int i = 0; i < 20; i++)
        free(render());
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    char *p = render();
    char line[256];
    snprintf(line, sizeof line, "sluice_attempts_total{entry=\"%s\",provider=\"%s\",result=\"ok\"} %d",
             sl_spec.models[0].name, sl_spec.providers[0].name, 3 * PER_THREAD);
    assert_line(p, line);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_shards_are_summed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histogram_buckets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vocabularies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_scrape, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
