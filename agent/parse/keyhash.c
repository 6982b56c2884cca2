/*
 * keyhash.c - the process-wide secrets of the seen-line cache key
 * (keyhash.h), derived from a 128-bit seed.
 *
 * Also the implementation in use (AES or portable, chosen by the CPU before
 * main()) and the out-of-line dsd_key_hash.
 *
 * Caller: main.c (dsd_key_seed_random, once, before the receive threads);
 * tests may set a fixed seed or turn AES off. Owns the secrets. Threading: written before
 * any thread that parses or aggregates starts, read-only afterwards.
 */
#include "parse/keyhash.h"

#include <errno.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* The implementation in use: set before main() (key_impl_init). */
bool dsd_key_aes;

/* Fixed defaults (odd, digits of pi) until main.c seeds: tests and
 * fuzzers reproduce. */
uint64_t dsd_key_secret[4] = { 0x243f6a8885a308d3ull, 0x13198a2e03707345ull,
			       0xa4093822299f31d1ull, 0x082efa98ec4e6c89ull };

bool dsd_key_use_aes(bool on)
{
#ifdef DSD_KEY_HAVE_AES
	__builtin_cpu_init();
	dsd_key_aes = on && __builtin_cpu_supports("aes");
#else
	(void)on;
	dsd_key_aes = false;
#endif
	return dsd_key_aes;
}

/* AES when the CPU has it, before main() (the parser reads the flag). */
__attribute__((constructor)) static void key_impl_init(void)
{
	dsd_key_use_aes(true);
}

#ifdef DSD_KEY_HAVE_AES
__attribute__((target("aes,sse2"))) static struct dsd_key hash_aes(unsigned type, const char *name,
								   size_t nn, const char *suf,
								   size_t sn)
{
	return dsd_key_hash_aes(type, name, nn, suf, sn);
}
#endif

struct dsd_key dsd_key_hash(unsigned type, const char *name, size_t nn, const char *suf, size_t sn)
{
#ifdef DSD_KEY_HAVE_AES
	if (dsd_key_aes)
		return hash_aes(type, name, nn, suf, sn);
#endif
	return dsd_key_hash_plain(type, name, nn, suf, sn);
}

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void dsd_key_seed_set(uint64_t a, uint64_t b)
{
	uint64_t x = a ^ splitmix(&b);
	for (int i = 0; i < 4; i++)
		dsd_key_secret[i] = splitmix(&x) | 1; /* odd: no multiplier of 0 */
}

int dsd_key_seed_random(void)
{
	uint64_t s[2];
	ssize_t n = getrandom(s, sizeof(s), GRND_NONBLOCK);

	if (n == (ssize_t)sizeof(s)) {
		dsd_key_seed_set(s[0], s[1]);
		return 0;
	}
	int err = n < 0 ? -errno : -EAGAIN;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	dsd_key_seed_set((uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30, (uint64_t)getpid());
	return err;
}
