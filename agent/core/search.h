/*
 * search.h - binary search over an array of structs sorted by one field.
 */
#ifndef DDMA_CORE_SEARCH_H
#define DDMA_CORE_SEARCH_H

#include <stddef.h>

/* DEFINE_LOWER_BOUND(name, T, K, field) defines
 *   static inline size_t name(const T *a, size_t n, K key):
 * the first index in a[0, n) whose field is not less than key, or n. The
 * array is sorted by field, ascending. */
#define DEFINE_LOWER_BOUND(name, T, K, field)                      \
	static inline size_t name(const T *a, size_t n, K key)     \
	{                                                          \
		size_t lo = 0, hi = n;                             \
		while (lo < hi) {                                  \
			size_t mid = lo + (hi - lo) / 2;           \
			if (a[mid].field < key)                    \
				lo = mid + 1;                      \
			else                                       \
				hi = mid;                          \
		}                                                  \
		return lo;                                         \
	}

#endif
