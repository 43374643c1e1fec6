/* SPDX-License-Identifier: MIT */
/*
 * Kernel constants that older userspace headers may lack. Values are the
 * asm-generic ones (x86, arm, riscv, ...).
 */
#ifndef ZC_COMPAT_H
#define ZC_COMPAT_H

#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/errqueue.h>

#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY		60
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY		0x4000000
#endif
#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY	5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED 1
#endif
#ifndef SOL_IP
#define SOL_IP			0
#endif
#ifndef SOL_IPV6
#define SOL_IPV6		41
#endif
#ifndef IP_RECVERR
#define IP_RECVERR		11
#endif
#ifndef IPV6_RECVERR
#define IPV6_RECVERR		25
#endif
#ifndef SO_TIMESTAMPING_OLD
#define SO_TIMESTAMPING_OLD	37
#endif
#ifndef SCM_TIMESTAMPING
#define SCM_TIMESTAMPING	SO_TIMESTAMPING_OLD
#endif

/* io_uring (include <liburing.h> first; liburing 2.3 lacks these). */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE	(1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED	(1U << 31)
#endif

#endif /* ZC_COMPAT_H */
