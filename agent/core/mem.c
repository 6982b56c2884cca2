/* mem.c - see mem.h. */
#include "core/mem.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older headers lack it */
#endif

void mem_prefault(void *p, size_t n)
{
	long ps = sysconf(_SC_PAGESIZE); /* called per allocation, not per line */
	size_t page = ps > 0 ? (size_t)ps : 4096;
	uintptr_t lo = ((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1);
	uintptr_t hi = ((uintptr_t)p + n) & ~(uintptr_t)(page - 1);
	if (!p || hi <= lo)
		return;
	if (madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE) == 0)
		return;
	/* EINVAL before 5.14: the same pages, one write fault each */
	for (uintptr_t a = lo; a < hi; a += page) {
		volatile unsigned char *b = (volatile unsigned char *)a;
		*b = *b;
	}
}
