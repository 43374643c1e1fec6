// SPDX-License-Identifier: MIT
/*
 * struct zc_opts is read up to the end of its last field, not its tail
 * padding (zc_open(3)): a non-zero byte there is a field this library does
 * not know, so -E2BIG; sz exactly up to the last field is a whole struct.
 * And zc_version() says what zcnotify.h says. Public API only.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zcnotify.h>

#define OPTS_END	(offsetof(struct zc_opts, tag) + \
			 sizeof(((struct zc_opts *)0)->tag))
/* The 0.1 struct ended here: its callers' sz. */
#define OPTS_END_0_1	(offsetof(struct zc_opts, harvest_every) + \
			 sizeof(((struct zc_opts *)0)->harvest_every))

static int fails;

static void expect(const char *what, int got, int want)
{
	if (got == want)
		return;
	fprintf(stderr, "FAIL: %s: %d, want %d (%s)\n", what, got, want,
		zc_last_error());
	fails++;
}

static int try_open(int fd, const void *opts)
{
	struct zc_sock *zs;
	int ret = zc_open(fd, opts, &zs);

	if (ret == 0)
		zc_close(zs);
	return ret;
}

int main(void)
{
	unsigned char buf[sizeof(struct zc_opts) + 8];
	struct zc_opts o;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
		perror("socketpair");
		return 1;
	}
	memset(buf, 0, sizeof(buf));
	o.sz = sizeof(o);
	memcpy(buf, &o.sz, sizeof(o.sz));
	expect("zeroed struct", try_open(sv[0], buf), 0);

	/* sz up to the end of the last field: the whole struct. */
	o.sz = OPTS_END;
	memcpy(buf, &o.sz, sizeof(o.sz));
	expect("sz = offsetofend(tag)", try_open(sv[0], buf), 0);
	/* A 0.1 caller's struct: no ctx, no tag. */
	o.sz = OPTS_END_0_1;
	memcpy(buf, &o.sz, sizeof(o.sz));
	expect("sz = offsetofend(harvest_every)", try_open(sv[0], buf), 0);

	/* Garbage in the tail padding, if the ABI has any (LP64 does). */
	if (sizeof(struct zc_opts) > OPTS_END) {
		o.sz = sizeof(o);
		memcpy(buf, &o.sz, sizeof(o.sz));
		buf[OPTS_END] = 0x5a;
		expect("non-zero tail padding", try_open(sv[0], buf), -E2BIG);
		buf[OPTS_END] = 0;
	}
	/* A later version's struct: zero tail fine, non-zero -E2BIG. */
	o.sz = sizeof(buf);
	memcpy(buf, &o.sz, sizeof(o.sz));
	expect("longer struct, zero tail", try_open(sv[0], buf), 0);
	buf[sizeof(buf) - 1] = 1;
	expect("longer struct, non-zero tail", try_open(sv[0], buf), -E2BIG);

	expect("zc_version() == ZCNOTIFY_VERSION_CODE", (int)zc_version(),
	       ZCNOTIFY_VERSION_CODE);
	expect("ZCNOTIFY_VERSION_CODE", ZCNOTIFY_VERSION_CODE,
	       ZCNOTIFY_VERSION(ZCNOTIFY_VERSION_MAJOR, ZCNOTIFY_VERSION_MINOR,
				ZCNOTIFY_VERSION_PATCH));
	close(sv[0]);
	close(sv[1]);
	if (fails)
		return 1;
	printf("zc_opts read up to byte %zu of %zu; libzcnotify %u.%u.%u\n",
	       (size_t)OPTS_END, sizeof(struct zc_opts), zc_version() >> 16,
	       (zc_version() >> 8) & 0xff, zc_version() & 0xff);
	return 0;
}
