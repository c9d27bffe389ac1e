/*
 * Request ids: the one string that ties a client's report, the access log,
 * the upstream provider's logs and a trace together. A client may choose
 * its own (x-request-id), but it lands in log lines, JSON and outgoing
 * headers, so only a short run of RFC 9110 token characters is taken as
 * is; anything else is replaced by a fresh random id.
 */
#ifndef SLUICE_REQID_H
#define SLUICE_REQID_H

#include <stddef.h>

/* Longest client id accepted; generated ids are 32 hex digits. */
#define SL_REQID_MAX 64

/* 1 when v[0..n) is 1..SL_REQID_MAX token characters, else 0. */
int sl_reqid_acceptable(const char *v, size_t n);

/* Writes a fresh id (32 lowercase hex digits from 16 random bytes) and its
 * NUL into out[SL_REQID_MAX + 1]. Randomness comes from getrandom(2) in
 * blocks buffered per thread, so a worker asks the kernel once per 64 ids;
 * if the kernel refuses, a per-thread counter mixed with the time still
 * gives ids unique within the process. */
void sl_reqid_new(char *out);

/* 16 random bytes from the same per-thread pool (trace and span ids). */
void sl_reqid_random16(unsigned char *b);

/* Copies v[0..n) when acceptable, else makes a new one; out as above. */
void sl_reqid_take(char *out, const char *v, size_t n);

#endif
