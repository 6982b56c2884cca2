/*
 * lines.h - the DogStatsD lines bench/loadgen sends, written in one place so
 * that tests/perf/perf_driver measures the agent on the same lines.
 *
 * Context c's line is "loadgen.metric.<name>:<value>|<type>" followed, with
 * tags, by "|#ctx:<c / 100>,t1:v<(c+1) % 10>,t2:v.."; name is c % 100 with
 * tags (so 100 names, each with one type) and c without. unique_tags makes
 * the first tag "instance_id:<c>": a distinct tag set per context. Counters
 * carry 1; other types a value from the caller's xorshift state.
 */
#ifndef DDMA_BENCH_LINES_H
#define DDMA_BENCH_LINES_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct line_shape {
	unsigned tags;			/* tags per line */
	bool unique_tags;
	const char *const *types;	/* type of name n: types[n % ntypes] */
	unsigned ntypes;
};

static inline uint64_t line_rng_next(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *state = x;
}

static inline char *line_put_u64(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static inline char *line_put_str(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return p + n;
}

/* Writes context c's line at p (no newline); returns its end. */
static inline char *line_write(char *p, const struct line_shape *s, uint64_t c, uint64_t *rng)
{
	uint64_t name = s->tags ? c % 100 : c;
	const char *type = s->types[name % s->ntypes];

	p = line_put_str(p, "loadgen.metric.");
	p = line_put_u64(p, name);
	*p++ = ':';
	if (type[0] == 'c')
		*p++ = '1';
	else
		p = line_put_u64(p, line_rng_next(rng) % (type[0] == 's' ? 100000 : 1000));
	*p++ = '|';
	p = line_put_str(p, type);
	for (unsigned t = 0; t < s->tags; t++) {
		p = line_put_str(p, t == 0 ? "|#" : ",");
		if (t == 0) {
			p = line_put_str(p, s->unique_tags ? "instance_id:" : "ctx:");
			p = line_put_u64(p, s->unique_tags ? c : c / 100);
		} else {
			*p++ = 't';
			p = line_put_u64(p, t);
			p = line_put_str(p, ":v");
			p = line_put_u64(p, (c + t) % 10);
		}
	}
	return p;
}

#endif
