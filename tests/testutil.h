/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the real-socket test programs (test-loopback,
 * test-threads, test-uring): deterministic data, loopback socket pairs
 * and the ZC_TEST_SENDS variable.
 */
#ifndef ZC_TESTUTIL_H
#define ZC_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#if defined(__has_feature)
#define ZC_HAS_TSAN __has_feature(thread_sanitizer)	/* clang */
#else
#define ZC_HAS_TSAN 0
#endif

#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif

/* ---- deterministic data ------------------------------------------------ */

static inline uint64_t mix64(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

struct prng { uint64_t s; };

static inline uint64_t prng_next(struct prng *p)
{
	p->s += 0x9E3779B97F4A7C15ull;
	return mix64(p->s);
}

static inline uint32_t prng_below(struct prng *p, uint32_t n)
{
	return (uint32_t)(prng_next(p) % n);
}

/* Payload of message i: little-endian words base + k * step. */
void fill_msg(uint8_t *p, uint64_t seed, uint64_t i, size_t len);

/* ---- loopback sockets ---------------------------------------------------- */

/* A socket bound to the loopback address, port chosen by the kernel. */
int bound_socket(int family, int type, struct sockaddr_storage *ss,
		 socklen_t *len);

/*
 * A connected pair over loopback: tx sends, rx receives; peer (if not
 * NULL) gets rx's address, for msg_name. Returns 0 or -errno.
 */
int loopback_pair(int family, int type, int *tx, int *rx,
		  struct sockaddr_storage *peer, socklen_t *peerlen);

/* ---- the environment ----------------------------------------------------- */

/*
 * ZC_TEST_SENDS=n: *nsends = n; unset or empty: unchanged. Returns -1
 * (after saying why) if it is not a positive number.
 */
int parse_test_sends(uint64_t *nsends);

/*
 * 77 (and SKIP, saying why, on stderr) if zc_open() refuses
 * ZC_BACKEND_URING with -EOPNOTSUPP (no liburing in the build, or no
 * SEND_ZC in the kernel); else 0.
 */
int uring_skip(void);

#endif /* ZC_TESTUTIL_H */
