/*
 * Names of the wire protocols, as they appear in errors and logs.
 */
#include "core/proto.h"

const char *sl_proto_name(sl_proto p)
{
    switch (p) {
    case SL_PROTO_OPENAI: return "openai";
    case SL_PROTO_ANTHROPIC: return "anthropic";
    case SL_PROTO_GEMINI: return "gemini";
    case SL_PROTO_RESPONSES: return "responses";
    }
    return "openai";
}
