// The raw client keys whose SHA-256 hashes tests/e2e/gov.yaml holds, its
// admin key, and the fake provider keys planted in the gov gateway's
// environment (they must reach the upstream and nowhere else). Shared by
// the suites that run a gateway built from gov.yaml.
export const KEYS = {
  alice: 'sk-sluice-test-alice-cf6793ffd0067c11ceaade10',
  scoped: 'sk-sluice-test-scoped-32ce5fe450d65b9684e20097',
  expired: 'sk-sluice-test-expired-739a3043dd9a36eba5490a72',
  office: 'sk-sluice-test-office-d4d8b77cb0c59794fdc39ff9',
  ratey: 'sk-sluice-test-ratey-c216702cbb0938b295869376',
  tiny: 'sk-sluice-test-tiny-2506f605a45bcf663cd2d144',
  streamer: 'sk-sluice-test-streamer-7396eb43ea7f38e4b93904a3',
  loader: 'sk-sluice-test-loader-381288af3f145fe0ef414bb9',
};
export const ADMIN_KEY = 'sk-sluice-test-admin-a6b2a7f6b339d81eaf6b3152';

// Fake provider keys: the gateway must send them upstream and nowhere else.
export const PLANTED = {
  SLUICE_GOV_OPENAI_KEY: 'sk-PLANTED-openai-8c1d0e5a7b3f49e2a6d4',
  SLUICE_GOV_ANTHROPIC_KEY: 'sk-ant-PLANTED-anthropic-3e9b7c21f0d84a56',
  SLUICE_GOV_GEMINI_KEY: 'PLANTED-gemini-5b0e9a17c4d2f368e1a7',
};
