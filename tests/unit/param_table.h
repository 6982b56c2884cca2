/*
 * param_table.h - PARAM_TABLE(suite, name, table): the parameters of
 * ParameterizedTest(size_t *idx, suite, name) are the indices 0..n-1 of the
 * static array `table`. Criterion runs each parameter in a fresh process
 * image, so parameters hold indices into the table, never pointers.
 * Header only, for the Criterion tests in tests/unit.
 */
#ifndef DDMA_TESTS_PARAM_TABLE_H
#define DDMA_TESTS_PARAM_TABLE_H

#include <criterion/parameterized.h>
#include <stddef.h>

#define PARAM_TABLE(suite, name, table)                                           \
	static size_t suite##_##name##_idx[sizeof(table) / sizeof((table)[0])];   \
	ParameterizedTestParameters(suite, name)                                  \
	{                                                                         \
		const size_t n = sizeof(table) / sizeof((table)[0]);              \
		for (size_t i = 0; i < n; i++)                                    \
			suite##_##name##_idx[i] = i;                              \
		return cr_make_param_array(size_t, suite##_##name##_idx, n);     \
	}

#endif
