/*
 * sv.h - string views: a pointer and a length into memory someone else owns.
 *
 * A view never owns memory. Its validity window is the owner's: a view into a
 * datagram is valid until the parser callback returns, a view into an interned
 * string as long as the interning table lives. Views are not NUL-terminated.
 */
#ifndef DDMA_CORE_SV_H
#define DDMA_CORE_SV_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct sv {
	const char *p;
	size_t n;
};

#define SV_LIT(lit) ((struct sv){ (lit), sizeof(lit) - 1 })
#define SV_NULL ((struct sv){ NULL, 0 })

static inline struct sv sv_from_cstr(const char *s)
{
	return (struct sv){ s, s ? strlen(s) : 0 };
}

static inline bool sv_eq(struct sv a, struct sv b)
{
	return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static inline bool sv_eq_cstr(struct sv a, const char *s)
{
	return sv_eq(a, sv_from_cstr(s));
}

static inline bool sv_starts_with(struct sv a, struct sv prefix)
{
	return a.n >= prefix.n && memcmp(a.p, prefix.p, prefix.n) == 0;
}

static inline int sv_cmp(struct sv a, struct sv b)
{
	size_t n = a.n < b.n ? a.n : b.n;
	int c = n ? memcmp(a.p, b.p, n) : 0;
	if (c != 0)
		return c;
	return (a.n > b.n) - (a.n < b.n);
}

#endif
