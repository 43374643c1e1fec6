// SPDX-License-Identifier: MIT
/*
 * The SCM probe on the running kernel, through the public API only.
 *
 * Whatever the kernel: asking for SCM either works or fails with
 * -EOPNOTSUPP and a message, and AUTO agrees with it (SCM where it works,
 * the error queue elsewhere). ZC_EXPECT_SCM=yes|no, or in the kernel rig
 * ZC_RIG_VARIANT=patched|unpatched, pins the answer.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "zcnotify.h"

static void test_probe_consistent(void **state)
{
	struct zc_opts o = { .sz = sizeof(o), .backend = ZC_BACKEND_SCM };
	const char *expect = getenv("ZC_EXPECT_SCM");
	const char *variant = getenv("ZC_RIG_VARIANT");
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct zc_sock *zs;
	int ret, scm;

	(void)state;
	unsetenv("ZCNOTIFY_BACKEND");
	unsetenv("ZCNOTIFY_SCM_PROBE");
	assert_true(fd >= 0);
	ret = zc_open(fd, &o, &zs);
	assert_true(ret == 0 || ret == -EOPNOTSUPP);
	scm = ret == 0;
	printf("# SCM_ZC_NOTIFICATION on this kernel: %s%s%s\n",
	       scm ? "supported" : "unsupported", scm ? "" : ": ",
	       scm ? "" : zc_last_error());
	if (scm) {
		assert_int_equal(zc_backend(zs), ZC_BACKEND_SCM);
		zc_close(zs);
	} else {
		assert_true(strstr(zc_last_error(), "SCM_ZC_NOTIFICATION"));
	}

	o.backend = ZC_BACKEND_AUTO;
	assert_int_equal(zc_open(fd, &o, &zs), 0);
	assert_int_equal(zc_backend(zs),
			 scm ? ZC_BACKEND_SCM : ZC_BACKEND_ERRQUEUE);
	zc_close(zs);
	close(fd);

	/*
	 * In the kernel rig, the variant it booted says what to expect: the
	 * bench kernel is the patched one whose loopback keeps the pages, so
	 * the probe's completion waits for the receiving end to read (the
	 * probe before cf9299d never read, and said "no" there).
	 */
	if ((!expect || !*expect) && variant)
		expect = strcmp(variant, "patched") && strcmp(variant, "bench") ?
			 "no" : "yes";
	if (expect && *expect)
		assert_int_equal(scm, !strcmp(expect, "yes"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_consistent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
