// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness: the error-queue record parser and the id mirror.
 * Input: 8 bytes of window state (zc_head, span), then control bytes as
 * recvmsg(MSG_ERRQUEUE) would return them. Every range parsed is applied
 * to a 16-id window: the ids it completes (the run from zc_head, then
 * marks) must be the live ones it covers, and nothing outside the window
 * may be marked.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	alignas(struct cmsghdr) unsigned char ctrl[1024];
	static uint8_t done[16];
	struct zc_sock zs;
	struct msghdr m = { .msg_control = ctrl };
	struct zc_range r;
	struct zc_errrec rec;
	uint32_t head, span;

	if (size < 8)
		return 0;
	memcpy(&head, data, 4);
	memcpy(&span, data + 4, 4);
	span %= 17;		/* at most max_inflight ids are live */
	data += 8;
	size -= 8;
	if (size > sizeof(ctrl))
		size = sizeof(ctrl);
	memcpy(ctrl, data, size);
	m.msg_controllen = size;

	memset(&zs, 0, sizeof(zs));
	memset(done, 0, sizeof(done));
	zs.mask = 15;
	zs.done = done;		/* given: the library makes none here */
	zs.zc_head = head;
	atomic_store(&zs.done_to, head);	/* no run yet */
	atomic_store(&zs.zc_issued, head + span);

	if (zc__parse_errmsg(&m, &r, &rec) == ZC_REC_RANGE) {
		uint32_t good = zc_apply_range(&zs, r.lo, r.hi, r.copied);
		uint32_t marked = 0;

		uint32_t run = atomic_load(&zs.done_to) - head;

		for (int i = 0; i < 16; i++)
			marked += !!done[i];
		/* Live ids only, each once: in the run or marked. */
		if (good > span || run > span || marked + run != good ||
		    marked != zs.nmarks)
			abort();
		for (uint32_t i = 0; i < run; i++)
			if (done[(head + i) & 15])
				abort();
		for (uint32_t i = span; i < 16; i++)
			if (done[(head + i) & 15])
				abort();
	}
	return 0;
}
