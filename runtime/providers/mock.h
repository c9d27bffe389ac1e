/*
 * The `mock` provider kind: an in-process upstream that answers OpenAI chat
 * and Anthropic messages requests, streaming or not, tools included, with
 * deterministic text and usage. It is what makes the quick start work with
 * no key and no network, and because it is reached through the same
 * transport interface as libcurl it exercises the whole request path:
 * attempts, relay filters, accounting. The adapter is sl_provider_mock
 * (providers/provider.h); nothing else is public.
 */
#ifndef SLUICE_MOCK_H
#define SLUICE_MOCK_H

#include "providers/provider.h"

#endif
