// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness: the SCM_ZC_NOTIFICATION element parser. Input: one
 * byte for the number of elements asked (1..16), then the control buffer
 * as the kernel may have left it.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *buf;
	struct zc_range out[16];
	unsigned int asked;
	int n;

	if (size < 1)
		return 0;
	asked = 1 + data[0] % 16;
	/* An exact-size heap copy: ASan sees any read past the end. */
	buf = malloc(size - 1 ? size - 1 : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	n = zc__scm_parse(buf, size - 1, 78, asked, out);
	if (n > (int)asked || n < -1)
		abort();
	free(buf);
	return 0;
}
