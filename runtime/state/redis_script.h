/*
 * The admission and settlement script (state/script.c), run by EVALSHA.
 */
#ifndef SLUICE_STATE_REDIS_SCRIPT_H
#define SLUICE_STATE_REDIS_SCRIPT_H

extern const char sl_state_script[];

/* Entries kept in the ledger stream (approximately: MAXLEN ~). */
#define SL_STATE_STREAM_MAX "1000000"

#endif
