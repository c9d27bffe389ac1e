/*
 * The one place money becomes text. Amounts are integer micro-USD
 * everywhere inside sluice; people and JSON consumers read USD with six
 * decimals ("12.345678", "-0.500000"), which shows every micro-USD so two
 * reports of the same spend always agree to the last digit.
 */
#ifndef SLUICE_MONEY_H
#define SLUICE_MONEY_H

#include <stddef.h>
#include <stdint.h>

/* Enough for any int64: "-9223372036854.775808" and the NUL. */
#define SL_MONEY_MAX 24

/* Writes `micros` as a decimal USD string into buf. Returns its length, or
 * -1 when cap is too small (buf then holds "" if cap > 0). */
int sl_money_format(int64_t micros, char *buf, size_t cap);

#endif
