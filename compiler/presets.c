/*
 * The preset table (see presets.h). Base URLs and auth styles are the ones
 * each provider documents for its OpenAI-, Anthropic- or Gemini-compatible
 * API; base URLs follow the runtime's rule (what the provider's own SDK
 * takes: OpenAI-compatible ones end before /chat/completions).
 */
#include "presets.h"

#include <string.h>

#include "core/proto.h"
#include "table.h"

#define BEARER "Authorization: Bearer %s"
/* Everything an OpenAI-compatible chat server serves, without embeddings. */
#define NO_EMBED ((1u << SL_OP_CHAT) | (1u << SL_OP_MESSAGES) | (1u << SL_OP_GENERATE) | \
                  (1u << SL_OP_RESPONSES) | (1u << SL_OP_COUNT_TOKENS))

#define CLOUD(n, url, envv, ops_, cat)                                                         \
    {.name = n, .kind = SLC_KIND_OPENAI, .base_url = url, .auth = BEARER, .key_required = true, \
     .env = envv, .ops = ops_, .catalog = cat}
#define LOCAL(n, url)                                                                        \
    {.name = n, .kind = SLC_KIND_OPENAI, .base_url = url, .auth = BEARER, .key_required = false}

static const slc_preset presets[] = {
    /* The wire kinds themselves; keys stay optional as they always were
     * (an OpenAI-kind provider may be a keyless local server). */
    {.name = "openai", .kind = SLC_KIND_OPENAI, .base_url = "https://api.openai.com/v1",
     .env = "OPENAI_API_KEY", .catalog = "openai"},
    {.name = "anthropic", .kind = SLC_KIND_ANTHROPIC, .base_url = "https://api.anthropic.com",
     .env = "ANTHROPIC_API_KEY", .catalog = "anthropic"},
    {.name = "gemini", .kind = SLC_KIND_GEMINI,
     .base_url = "https://generativelanguage.googleapis.com", .env = "GEMINI_API_KEY",
     .catalog = "google"},
    {.name = "mock", .kind = SLC_KIND_MOCK, .base_url = ""},
    /* Azure OpenAI: {resource}.openai.azure.com, the deployment in the
     * path, api-version in the query, the key in an `api-key` header. */
    {.name = "azure", .kind = SLC_KIND_OPENAI, .base_url = NULL, .auth = "api-key: %s",
     .key_required = true, .env = "AZURE_OPENAI_API_KEY", .url_style = SL_URL_AZURE,
     .catalog = "azure"},
    /* AWS Bedrock: the base URL comes from region:, requests are signed
     * with SigV4 from AWS credentials (compiler/aws.c), no api_key. */
    {.name = "bedrock", .kind = SLC_KIND_BEDROCK, .base_url = NULL, .catalog = "amazon-bedrock"},
    /* Google Vertex AI: {location}-aiplatform.googleapis.com, Gemini or
     * Anthropic by model, an OAuth token from a service account. */
    {.name = "vertex", .kind = SLC_KIND_VERTEX, .base_url = NULL, .auth = NULL, .key_required = false,
     .env = NULL, .catalog = "google-vertex google-vertex-anthropic"},
    CLOUD("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY", 0, "mistral"),
    CLOUD("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", NO_EMBED, "groq"),
    CLOUD("deepseek", "https://api.deepseek.com", "DEEPSEEK_API_KEY", NO_EMBED, "deepseek"),
    CLOUD("xai", "https://api.x.ai/v1", "XAI_API_KEY", NO_EMBED, "xai"),
    CLOUD("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY", 0, "togetherai"),
    CLOUD("fireworks", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY", 0,
          "fireworks-ai"),
    CLOUD("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", NO_EMBED,
          "openrouter"),
    CLOUD("perplexity", "https://api.perplexity.ai", "PERPLEXITY_API_KEY", NO_EMBED, "perplexity"),
    CLOUD("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY", NO_EMBED, "cerebras"),
    /* Cohere's Compatibility API rejects stream_options, which sluice
     * otherwise adds to every OpenAI stream to get usage. */
    {.name = "cohere", .kind = SLC_KIND_OPENAI, .base_url = "https://api.cohere.ai/compatibility/v1",
     .auth = BEARER, .key_required = true, .env = "COHERE_API_KEY",
     .quirks = SL_QUIRK_NO_STREAM_OPTIONS},
    CLOUD("deepinfra", "https://api.deepinfra.com/v1/openai", "DEEPINFRA_API_KEY", 0, "deepinfra"),
    CLOUD("nebius", "https://api.tokenfactory.nebius.com/v1", "NEBIUS_API_KEY", 0, NULL),
    CLOUD("sambanova", "https://api.sambanova.ai/v1", "SAMBANOVA_API_KEY", NO_EMBED, NULL),
    CLOUD("hyperbolic", "https://api.hyperbolic.xyz/v1", "HYPERBOLIC_API_KEY", NO_EMBED, NULL),
    CLOUD("novita", "https://api.novita.ai/openai", "NOVITA_API_KEY", 0, NULL),
    CLOUD("moonshot", "https://api.moonshot.ai/v1", "MOONSHOT_API_KEY", NO_EMBED, "moonshotai"),
    /* Servers on the operator's machine: no key unless started with one. */
    LOCAL("ollama", "http://127.0.0.1:11434/v1"),
    LOCAL("vllm", "http://127.0.0.1:8000/v1"),
    LOCAL("lmstudio", "http://127.0.0.1:1234/v1"),
    LOCAL("llamacpp", "http://127.0.0.1:8080/v1"),
    LOCAL("localai", "http://127.0.0.1:8080/v1"),
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const slc_preset *slc_preset_find(const char *name, size_t len)
{
    for (size_t i = 0; i < COUNT(presets); i++)
        if (strlen(presets[i].name) == len && memcmp(presets[i].name, name, len) == 0)
            return &presets[i];
    return NULL;
}

const slc_preset *slc_preset_all(size_t *n)
{
    *n = COUNT(presets);
    return presets;
}

const slc_preset *slc_preset_of(const slc_provider *p)
{
    return p->preset >= 0 && (size_t)p->preset < COUNT(presets) ? &presets[p->preset] : NULL;
}
