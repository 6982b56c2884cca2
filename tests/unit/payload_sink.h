/*
 * payload_sink.h - the encoders' emit callback for unit tests: keeps every
 * payload an encoder hands over, in order (tests/unit only; links forward).
 */
#ifndef DDMA_TESTS_PAYLOAD_SINK_H
#define DDMA_TESTS_PAYLOAD_SINK_H

#include <stddef.h>

#include "forward/payload.h"

#define PAYLOAD_SINK_MAX 4096

struct sink {
	struct payload *p[PAYLOAD_SINK_MAX];
	size_t n;
};

/* An encoder's emit callback; arg is a struct sink. Fails the test when full. */
int sink_collect(void *arg, struct payload *p);

/* Frees every payload kept and empties the sink. */
void sink_free(struct sink *s);

#endif
