/* mem.h - page faults taken ahead of traffic.
 *
 * A first write to a fresh page is a page fault, and in a VM a fault costs
 * several microseconds (about half as much when the pages are populated in
 * one call). A burst that arrives while the receive thread is still faulting
 * in its tables backs the socket queue up; so memory the receive path will
 * write soon is faulted in when it is allocated, in one call. */
#ifndef DDMA_CORE_MEM_H
#define DDMA_CORE_MEM_H

#include <stddef.h>

/* Makes the pages under [p, p + n) resident and writable without changing
 * their contents: madvise(MADV_POPULATE_WRITE) on the whole pages inside the
 * range where the kernel has it (5.14 on), else a read and write back of one
 * byte per page. Partial pages at either end are left to the caller's own
 * writes. Best effort: it never fails. */
void mem_prefault(void *p, size_t n);

#endif
