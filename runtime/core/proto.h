/*
 * The vocabulary every stage shares: the wire protocols sluice speaks (to
 * clients as API surfaces, to providers as their wire kind; one enum for
 * both, because an OpenAI client and an OpenAI upstream are the same
 * protocol) and the operations a request can ask for. Provider kinds in the
 * compiled table (sl_kind) are a different thing: several kinds (the mock,
 * later presets) speak one protocol.
 */
#ifndef SLUICE_PROTO_H
#define SLUICE_PROTO_H

/* SL_PROTO_RESPONSES is the OpenAI Responses API: a client surface,
 * translated like the others, and the upstream protocol of OpenAI-kind
 * providers marked `responses: true` (pass-through). */
typedef enum sl_proto {
    SL_PROTO_OPENAI = 0,
    SL_PROTO_ANTHROPIC = 1,
    SL_PROTO_GEMINI = 2,
    SL_PROTO_RESPONSES = 3,
} sl_proto;

const char *sl_proto_name(sl_proto p);

typedef enum sl_op {
    SL_OP_CHAT,          /* chat completions (and legacy completions, served as chat) */
    SL_OP_MESSAGES,      /* Anthropic messages */
    SL_OP_COUNT_TOKENS,  /* Anthropic messages/count_tokens */
    SL_OP_GENERATE,      /* Gemini generateContent / streamGenerateContent */
    SL_OP_EMBEDDINGS,    /* OpenAI embeddings */
    SL_OP_RESPONSES,     /* OpenAI Responses API */
} sl_op;

#endif
