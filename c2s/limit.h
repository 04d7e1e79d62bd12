/*
 * limit: what one client address, or one account, may do across every connection of
 * the c2s process. SO_REUSEPORT spreads one address's connections over all threads, so
 * the tables are process-wide, each under its own mutex: an accept or a login is rare
 * next to a stanza.
 *
 *   connections  counted exactly per address; over the limit a new one is refused
 *   logins       a token bucket per address: a burst beyond it waits its turn
 *                (limit_login says how long), it is not refused
 *   failures     failed authentications, per account and per address: once an account
 *                has had `max` within the window, or an address has failed on `max`
 *                different accounts within it, further attempts are refused until the
 *                window has room again (one more per window/max)
 *
 * Only failures that tested a password count (sasl_event.tested): a client that tries
 * a mechanism or channel binding it cannot have learns nothing. An address counts each
 * account it fails on once per window, so a device behind an office's NAT that retries
 * a stale password blocks its own account, not the office; guessing one account is
 * bounded by the account's allowance, spraying many from one address by the address's.
 * The price of the account allowance: whoever knows an account's name can keep it
 * refusing logins for as long as they keep failing on it.
 *
 * An "address" is a network: an IPv4 address, or an IPv6 /64 (one site, which can
 * hand its hosts 2^64 addresses); an IPv4-mapped IPv6 address is its IPv4 address.
 * Keys are hashed with a random per-process seed, so collisions in the bounded, lossy
 * rate tables cannot be aimed; a collision in the exact connection count merges two
 * addresses' counts, which the seed makes rare and unpredictable.
 *
 * Times are CLOCK_MONOTONIC microseconds (limit_now_us()), passed in so the unit test
 * can drive them. Every function may be called from any thread.
 */
#ifndef STARLING_C2S_LIMIT_H
#define STARLING_C2S_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct sockaddr;

enum limit_failures {
    LIMIT_ADDRESS, /* keyed by limit_peer_of() */
    LIMIT_ACCOUNT, /* keyed by limit_account() */
};

uint64_t limit_now_us(void);

/* The key of a client address (AF_INET or AF_INET6; 0, which no limit counts, for any
 * other family): the connection's peer, which behind a balancer is the client's. */
uint32_t limit_peer_of(const struct sockaddr *sa);

/* The key of an account, by its normalised localpart. */
uint64_t limit_account(const char *user);

/* Counts a connection from peer: false when it makes more than max (0: no limit). It
 * is counted either way; limit_conn_close() uncounts it. */
bool limit_conn_open(uint32_t peer, uint32_t max);
void limit_conn_close(uint32_t peer);

/*
 * A login from peer wants to start at now: how many microseconds it must wait (0: go
 * ahead), at `rate` a second after a `burst` (rate 0: never wait); -1 when the wait
 * would be longer than max_wait, in which case nothing is reserved. A 0 or positive
 * answer reserves its turn.
 */
int64_t limit_login(uint32_t peer, uint64_t now, uint32_t rate, uint32_t burst, uint64_t max_wait);

/* Has key had `max` failures within `window` seconds, so that attempts are refused?
 * max 0: never. */
bool limit_failures_exhausted(enum limit_failures kind, uint64_t key, uint64_t now, uint32_t max,
                              uint32_t window);

/* A failed authentication on account (limit_account()) from peer: charged to the
 * account, and to the address unless it already failed on that account within the
 * window. */
void limit_failure(uint32_t peer, uint64_t account, uint64_t now, uint32_t max_address,
                   uint32_t max_account, uint32_t window);

#endif
