// SPDX-License-Identifier: MIT
/* Allocation failures on demand: see fail_alloc.h. */
#include <stddef.h>

#include "fail_alloc.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t sz);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t sz);

static unsigned int skip_left, fail_left, failed;

void fa_fail(unsigned int skip, unsigned int n)
{
	skip_left = skip;
	fail_left = n;
	failed = 0;
}

unsigned int fa_failed(void)
{
	return failed;
}

static int fail_now(void)
{
	if (!fail_left)
		return 0;
	if (skip_left) {
		skip_left--;
		return 0;
	}
	fail_left--;
	failed++;
	return 1;
}

void *__wrap_malloc(size_t n)
{
	return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t sz)
{
	return fail_now() ? NULL : __real_calloc(n, sz);
}
