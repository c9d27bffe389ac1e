// The official OpenAI SDK against the gateway: chat completions
// (non-stream, stream, the stream helper, a tool-call round trip) routed to
// the OpenAI-kind upstream (the mock, compared exactly) and to the
// in-process demo provider (held to the protocol).
import { useStack } from './lib/harness.mjs';
import { openaiCases } from './lib/sdk-cases.mjs';

const stack = useStack();
const getBaseURL = () => `${stack.url}/v1`;

openaiCases({ label: 'gateway -> up-openai', getBaseURL, model: 'gpt-4o-mini', exact: true });
openaiCases({ label: 'gateway -> demo', getBaseURL, model: 'demo-model', exact: false });
