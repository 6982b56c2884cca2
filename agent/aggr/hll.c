/*
 * hll.c - see hll.h.
 */
#include "aggr/hll.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void hll_init(struct hll *h)
{
	memset(h->reg, 0, sizeof(h->reg));
}

void hll_add(struct hll *h, uint64_t hash)
{
	uint32_t idx = (uint32_t)(hash >> HLL_Q);
	uint64_t w = hash << HLL_P;
	uint8_t rank = w ? (uint8_t)(__builtin_clzll(w) + 1) : HLL_Q + 1;
	if (rank > h->reg[idx])
		h->reg[idx] = rank;
}

void hll_merge(struct hll *dst, const struct hll *src)
{
	for (uint32_t i = 0; i < HLL_M; i++)
		if (src->reg[i] > dst->reg[i])
			dst->reg[i] = src->reg[i];
}

/* Ertl's sigma(x) = x + sum_{k>=1} x^(2^k) 2^(k-1). */
static double sigma(double x)
{
	if (x == 1.0)
		return INFINITY;
	double y = 1, z = x, zp;
	do {
		x *= x;
		zp = z;
		z += x * y;
		y += y;
	} while (zp != z);
	return z;
}

/* Ertl's tau(x) = (1 - x - sum_{k>=1} (1 - x^(2^-k))^2 2^-k) / 3. */
static double tau(double x)
{
	if (x == 0.0 || x == 1.0)
		return 0;
	double y = 1, z = 1 - x, zp;
	do {
		x = sqrt(x);
		zp = z;
		y *= 0.5;
		z -= (1 - x) * (1 - x) * y;
	} while (zp != z);
	return z / 3;
}

double hll_estimate(const struct hll *h)
{
	uint32_t c[HLL_Q + 2] = { 0 };
	for (uint32_t i = 0; i < HLL_M; i++)
		c[h->reg[i]]++;
	double m = HLL_M;
	double z = m * tau(1 - c[HLL_Q + 1] / m);
	for (int k = HLL_Q; k >= 1; k--)
		z = 0.5 * (z + c[k]);
	z += m * sigma(c[0] / m);
	return (0.5 / log(2.0)) * m * m / z;
}

/* ---- the set accumulator ---- */

struct setacc {
	uint64_t *slots;	/* 0 = empty; member hash 0 is tracked by has_zero */
	uint32_t n, cap;
	bool has_zero;
	struct hll *hll;	/* non-NULL once past the exact cap */
};

struct setacc *setacc_new(void)
{
	return calloc(1, sizeof(struct setacc));
}

void setacc_free(struct setacc *s)
{
	if (!s)
		return;
	free(s->slots);
	free(s->hll);
	free(s);
}

static void put(uint64_t *slots, uint32_t cap, uint64_t h)
{
	uint32_t i = (uint32_t)(h ^ (h >> 32)) & (cap - 1);
	while (slots[i] && slots[i] != h)
		i = (i + 1) & (cap - 1);
	slots[i] = h;
}

static bool has(const struct setacc *s, uint64_t h)
{
	if (!s->cap)
		return false;
	uint32_t i = (uint32_t)(h ^ (h >> 32)) & (s->cap - 1);
	for (; s->slots[i]; i = (i + 1) & (s->cap - 1))
		if (s->slots[i] == h)
			return true;
	return false;
}

static int grow(struct setacc *s)
{
	uint32_t nc = s->cap ? s->cap * 2 : 16;
	uint64_t *ns = calloc(nc, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->cap; i++)
		if (s->slots[i])
			put(ns, nc, s->slots[i]);
	free(s->slots);
	s->slots = ns;
	s->cap = nc;
	return 0;
}

static int to_hll(struct setacc *s)
{
	s->hll = malloc(sizeof(*s->hll));
	if (!s->hll)
		return -ENOMEM;
	hll_init(s->hll);
	for (uint32_t i = 0; i < s->cap; i++)
		if (s->slots[i])
			hll_add(s->hll, s->slots[i]);
	if (s->has_zero)
		hll_add(s->hll, 0);
	free(s->slots);
	s->slots = NULL;
	s->cap = s->n = 0;
	return 0;
}

int setacc_add(struct setacc *s, uint64_t h, size_t exact_max)
{
	if (s->hll) {
		hll_add(s->hll, h);
		return 0;
	}
	if (h == 0 ? s->has_zero : has(s, h))
		return 0;
	if ((size_t)s->n + s->has_zero + 1 > exact_max) {
		int rc = to_hll(s);
		if (rc < 0)
			return rc;
		hll_add(s->hll, h);
		return 0;
	}
	if (h == 0) {
		s->has_zero = true;
		return 0;
	}
	if ((s->n + 1) * 4 > s->cap * 3) {
		int rc = grow(s);
		if (rc < 0)
			return rc;
	}
	put(s->slots, s->cap, h);
	s->n++;
	return 0;
}

int setacc_merge(struct setacc *dst, const struct setacc *src, size_t exact_max)
{
	if (src->hll) {
		if (!dst->hll && to_hll(dst) < 0)
			return -ENOMEM;
		hll_merge(dst->hll, src->hll);
		return 0;
	}
	int rc = src->has_zero ? setacc_add(dst, 0, exact_max) : 0;
	for (uint32_t i = 0; i < src->cap && rc == 0; i++)
		if (src->slots[i])
			rc = setacc_add(dst, src->slots[i], exact_max);
	return rc;
}

double setacc_count(const struct setacc *s)
{
	if (s->hll)
		return round(hll_estimate(s->hll));
	return (double)s->n + s->has_zero;
}

bool setacc_is_hll(const struct setacc *s)
{
	return s->hll != NULL;
}

size_t setacc_bytes(const struct setacc *s)
{
	return sizeof(*s) + (size_t)s->cap * sizeof(uint64_t) + (s->hll ? sizeof(*s->hll) : 0);
}
