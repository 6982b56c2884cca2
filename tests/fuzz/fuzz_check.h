/*
 * fuzz_check.h - CHECK(cond): a harness invariant. On failure it names the
 * condition and its file:line and aborts, so libFuzzer keeps the input (and
 * the corpus replay in `meson test` fails).
 */
#ifndef DDMA_FUZZ_CHECK_H
#define DDMA_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                           \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", \
				#cond, __FILE__, __LINE__);                   \
			abort();                                              \
		}                                                             \
	} while (0)

#endif
