/*
 * Parsing of the spec's unit-bearing values: durations (`200ms`, `1.5s`),
 * money (`0.30` USD, kept as integer micro-USD so no binary float ever
 * rounds a price), sizes (`16KiB`) and timestamps (`2027-01-01`, RFC 3339).
 * Each parser returns 0 and the value, or -1 and a reason in `err` that the
 * caller wraps with where the value came from.
 */
#ifndef SLC_UNITS_H
#define SLC_UNITS_H

#include <stddef.h>
#include <stdint.h>

int slc_parse_duration_ms(const char *s, size_t len, uint32_t *out, char *err, size_t errlen);
/* Non-negative, at most 6 decimals, below 10^12 USD. */
int slc_parse_money_micros(const char *s, size_t len, int64_t *out, char *err, size_t errlen);
int slc_parse_size(const char *s, size_t len, uint64_t *out, char *err, size_t errlen);
/* `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)`. */
int slc_parse_time_unix(const char *s, size_t len, int64_t *out, char *err, size_t errlen);
/* Plain decimal integer, optional leading '-'. */
int slc_parse_int(const char *s, size_t len, int64_t *out);

#endif
