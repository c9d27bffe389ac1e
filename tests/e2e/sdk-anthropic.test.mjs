// The official Anthropic SDK against the gateway: messages (non-stream,
// stream, messages.stream().finalMessage(), a tool-use round trip) routed
// to the Anthropic-kind upstream (the mock, compared exactly) and to the
// in-process demo provider (held to the protocol).
import { useStack } from './lib/harness.mjs';
import { anthropicCases } from './lib/sdk-cases.mjs';

const stack = useStack();
const getBaseURL = () => stack.url;

// claude-haiku-4-5 goes through the "claude-*" route; the SDK prints a
// deprecation warning for claude-sonnet-4-5, which curl.test.mjs covers.
anthropicCases({ label: 'gateway -> up-anthropic', getBaseURL, model: 'claude-haiku-4-5', exact: true });
anthropicCases({ label: 'gateway -> demo', getBaseURL, model: 'demo-model', exact: false });
