/*
 * test_keyhash.c - the seen-line cache key (agent/parse/keyhash.h). The
 * cache trusts the key as a line's identity, so every byte of name and
 * suffix, the split between them, their lengths and the type must reach
 * both lanes, and the seed must change every key. Each property is checked
 * for both implementations (portable, and AES where the CPU has it).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "parse/keyhash.h"

static const char SRC[] = "loadgen.metric.57|#ctx:42,t1:v3,t2:v4|@0.5|c:abcdef0123";
#define MAXK 20000

static struct dsd_key keys[MAXK];
static size_t nkeys;

static void add(struct dsd_key k)
{
	cr_assert_lt(nkeys, MAXK);
	keys[nkeys++] = k;
}

static int cmp_key(const void *x, const void *y)
{
	const struct dsd_key *a = x, *b = y;
	if (a->a != b->a)
		return a->a < b->a ? -1 : 1;
	return a->b < b->b ? -1 : a->b > b->b;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

/* No two keys equal, and no two equal in either lane alone. */
static void assert_distinct(void)
{
	uint64_t *lane = malloc(nkeys * sizeof(*lane));
	cr_assert(lane);
	qsort(keys, nkeys, sizeof(*keys), cmp_key);
	for (size_t i = 1; i < nkeys; i++)
		cr_assert(!dsd_key_eq(keys[i - 1], keys[i]), "two inputs gave one key (%zu keys)", nkeys);
	for (int l = 0; l < 2; l++) {
		for (size_t i = 0; i < nkeys; i++)
			lane[i] = l ? keys[i].b : keys[i].a;
		qsort(lane, nkeys, sizeof(*lane), cmp_u64);
		for (size_t i = 1; i < nkeys; i++)
			cr_assert_neq(lane[i - 1], lane[i], "lane %c collides", l ? 'b' : 'a');
	}
	free(lane);
}

/* Every prefix of SRC split at every point into name and suffix, every
 * type: shifting bytes between the pieces, or a length, changes the key. */
static void splits_lengths_and_types_differ(void)
{
	size_t n = strlen(SRC);
	nkeys = 0;
	for (size_t len = 0; len <= n; len++)
		for (size_t i = 0; i <= len; i++)
			for (unsigned t = 0; t < 2; t++)
				add(dsd_key_hash(t, SRC, i, SRC + i, len - i));
	assert_distinct();
}

/* Each byte of each length (every tail shape: 1..3, 4..7, 8..16, longer
 * with an overlapping last block) reaches the key, in name and in suffix. */
static void every_byte_counts(void)
{
	char buf[64];
	size_t n = strlen(SRC);
	nkeys = 0;
	for (size_t len = 1; len <= 40; len++) {
		memcpy(buf, SRC, n);
		add(dsd_key_hash(1, buf, len, "|#a:b", 5));
		add(dsd_key_hash(1, "name", 4, buf, len));
		for (size_t pos = 0; pos < len; pos++) {
			buf[pos] ^= 0x01;
			add(dsd_key_hash(1, buf, len, "|#a:b", 5));
			add(dsd_key_hash(1, "name", 4, buf, len));
			buf[pos] ^= 0x01;
		}
	}
	assert_distinct();
}

/* A one-bit change flips about half of each lane's bits (the low bits of
 * lane a index the table). Mean over 4096 changes: within 32 +- 2. */
static void avalanche(void)
{
	char buf[48];
	double sum[2] = { 0, 0 };
	int cnt = 0;
	memcpy(buf, SRC, sizeof(buf));
	for (int pos = 0; pos < 40; pos++) {
		for (int bit = 0; bit < 8; bit++) {
			for (size_t split = 8; split <= 32; split += 3) {
				struct dsd_key x = dsd_key_hash(0, buf, split, buf + split, 40 - split);
				buf[pos] ^= (char)(1 << bit);
				struct dsd_key y = dsd_key_hash(0, buf, split, buf + split, 40 - split);
				buf[pos] ^= (char)(1 << bit);
				sum[0] += __builtin_popcountll(x.a ^ y.a);
				sum[1] += __builtin_popcountll(x.b ^ y.b);
				cnt++;
			}
		}
	}
	for (int l = 0; l < 2; l++) {
		double mean = sum[l] / cnt;
		cr_assert(mean > 30 && mean < 34, "lane %d: %.2f bits flip on average", l, mean);
	}
}

/* Keys depend on the seed (a sender cannot know them) and only on it. */
static void seed(void)
{
	uint64_t saved[4];
	memcpy(saved, dsd_key_secret, sizeof(saved));
	struct dsd_key d = dsd_key_hash(0, "m", 1, "|#a:b", 5);
	dsd_key_seed_set(1, 2);
	struct dsd_key s1 = dsd_key_hash(0, "m", 1, "|#a:b", 5);
	dsd_key_seed_set(1, 3);
	struct dsd_key s2 = dsd_key_hash(0, "m", 1, "|#a:b", 5);
	dsd_key_seed_set(1, 2);
	cr_assert(dsd_key_eq(s1, dsd_key_hash(0, "m", 1, "|#a:b", 5)), "same seed, same key");
	cr_assert(s1.a != d.a && s1.b != d.b && s1.a != s2.a && s1.b != s2.b);
	int rc = dsd_key_seed_random();
	cr_assert(rc == 0 || rc < 0);
	struct dsd_key r = dsd_key_hash(0, "m", 1, "|#a:b", 5);
	cr_assert(r.a != s1.a && r.b != s1.b);
	memcpy(dsd_key_secret, saved, sizeof(saved));
	cr_assert(dsd_key_eq(d, dsd_key_hash(0, "m", 1, "|#a:b", 5)));
}

/* f with the portable implementation, then with AES (if the CPU has it). */
static void both(void (*f)(void))
{
	cr_assert(!dsd_key_use_aes(false));
	f();
	if (dsd_key_use_aes(true))
		f();
	else
		cr_log_warn("no AES-NI: only the portable key checked");
}

Test(keyhash, splits_lengths_and_types_differ)
{
	both(splits_lengths_and_types_differ);
}

Test(keyhash, every_byte_counts)
{
	both(every_byte_counts);
}

Test(keyhash, avalanche)
{
	both(avalanche);
}

Test(keyhash, seed)
{
	both(seed);
}

/* The two implementations are different functions (the daemon uses one for
 * the life of the process), and the out-of-line dsd_key_hash is the inline
 * one of the implementation in use. */
Test(keyhash, implementations)
{
	static const char suf[] = "|#ctx:42,t1:v3,t2:v4";
	dsd_key_use_aes(false);
	struct dsd_key p = dsd_key_hash_plain(0, SRC, 17, suf, sizeof(suf) - 1);
	cr_assert(dsd_key_eq(p, dsd_key_hash(0, SRC, 17, suf, sizeof(suf) - 1)));
	if (!dsd_key_use_aes(true))
		return;
	struct dsd_key a = dsd_key_hash(0, SRC, 17, suf, sizeof(suf) - 1);
	cr_assert(a.a != p.a && a.b != p.b);
	cr_assert(dsd_key_eq(a, dsd_key_hash(0, SRC, 17, suf, sizeof(suf) - 1)));
}
