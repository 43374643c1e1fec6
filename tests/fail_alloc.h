/* SPDX-License-Identifier: MIT */
/*
 * Allocation failures on demand, for the unit tests: the test binary links
 * with -Wl,--wrap=malloc,--wrap=calloc, so the library's malloc() and
 * calloc() (and the test's own) come here. Nothing fails unless a test
 * asks: fa_fail(skip, n) lets skip calls through, then fails the next n.
 */
#ifndef FAIL_ALLOC_H
#define FAIL_ALLOC_H

/* Let skip allocations through, then fail n. fa_fail(0, 0): none fail. */
void fa_fail(unsigned int skip, unsigned int n);
/* Allocations failed since the last fa_fail(). */
unsigned int fa_failed(void);

#endif /* FAIL_ALLOC_H */
