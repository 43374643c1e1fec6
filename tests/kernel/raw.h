/* SPDX-License-Identifier: MIT */
/*
 * What the rig's own guest programs (abi_test.c, zc_nic_test.c) share: the
 * kernel constants that older userspace headers may lack, and the
 * SCM_ZC_NOTIFICATION layout of the patch. Plain syscalls, no library:
 * rig.sh builds them with gcc alone, so this stays apart from src/compat.h.
 */
#ifndef ZC_RIG_RAW_H
#define ZC_RIG_RAW_H

#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <linux/errqueue.h>

#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif
#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED 1
#endif
#ifndef SCM_ZC_NOTIFICATION
#define SCM_ZC_NOTIFICATION 78
#endif
#define SOCK_ZC_INFO_MAX 16

struct zc_info_elem {
	uint32_t lo;
	uint32_t hi;
	uint8_t zerocopy;
};

_Static_assert(sizeof(struct zc_info_elem) == 12, "zc_info_elem is 12 bytes");

#endif /* ZC_RIG_RAW_H */
