/* SPDX-License-Identifier: MIT */
/*
 * The run-time version: what a program built against one zcnotify.h can
 * ask of the library it runs with. meson.build checks that the header's
 * version macros match the project version.
 */
#include "internal.h"

ZC_EXPORT uint32_t zc_version(void)
{
	return ZCNOTIFY_VERSION_CODE;
}
