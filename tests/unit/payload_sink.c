/* payload_sink.c - see payload_sink.h. */
#include "payload_sink.h"

#include <criterion/criterion.h>

int sink_collect(void *arg, struct payload *p)
{
	struct sink *s = arg;
	cr_assert_lt(s->n, PAYLOAD_SINK_MAX);
	s->p[s->n++] = p;
	return 0;
}

void sink_free(struct sink *s)
{
	for (size_t i = 0; i < s->n; i++)
		payload_free(s->p[i]);
	s->n = 0;
}
