/*
 * retry.c - see retry.h. One doubly-linked list per endpoint, sorted by seq
 * (head = oldest). Push is O(1) for new payloads (appended at the tail) and
 * O(k) for a requeued one (k = newer payloads of its endpoint).
 */
#include "forward/retry.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ep_state {
	struct payload *head, *tail;
	unsigned failures;
	double blocked_until;
	unsigned inflight;
};

struct retry {
	struct retry_config cfg;
	struct ep_state ep[FWD_EP_COUNT];
	size_t bytes, count;
	uint64_t points;
	uint64_t rng;
};

enum retry_verdict retry_classify(long status, int transport_error)
{
	if (transport_error || status <= 0)
		return RETRY_AGAIN;
	if (status >= 200 && status < 300)
		return RETRY_DELIVERED;
	if (status == 400 || status == 403 || status == 413)
		return RETRY_DROP;
	return RETRY_AGAIN;
}

enum retry_verdict retry_classify_promrw(long status, int transport_error)
{
	/* no answer and 2xx as above; otherwise only 5xx and 429 are retried */
	if (transport_error || status <= 0 || (status >= 200 && status < 300))
		return retry_classify(status, transport_error);
	return status >= 500 || status == 429 ? RETRY_AGAIN : RETRY_DROP;
}

double retry_backoff_wait(const struct retry_config *c, unsigned n, double u)
{
	if (n == 0)
		return 0;
	double d = c->backoff_base * pow(c->backoff_factor, (double)(n - 1));
	if (!(d <= c->backoff_max))
		d = c->backoff_max;
	if (u < 0)
		u = 0;
	if (u >= 1)
		u = 1;
	return d / 2 + u * d / 2;
}

/* xorshift64*: uniform in [0, 1) */
static double rand01(struct retry *r)
{
	r->rng ^= r->rng >> 12;
	r->rng ^= r->rng << 25;
	r->rng ^= r->rng >> 27;
	uint64_t v = r->rng * 2685821657736338717ULL;
	return (double)(v >> 11) / 9007199254740992.0;
}

struct retry *retry_new(const struct retry_config *cfg, uint64_t seed)
{
	struct retry *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
	retry_reconfigure(r, cfg);
	return r;
}

void retry_reconfigure(struct retry *r, const struct retry_config *cfg)
{
	r->cfg = *cfg;
	if (!r->cfg.max_inflight)
		r->cfg.max_inflight = 4;
}

void retry_free(struct retry *r)
{
	if (!r)
		return;
	struct payload *p;
	while ((p = retry_pop_oldest(r)))
		payload_free(p);
	free(r);
}

static void unlink_p(struct retry *r, struct payload *p)
{
	struct ep_state *e = &r->ep[p->ep];
	if (p->prev)
		p->prev->next = p->next;
	else
		e->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		e->tail = p->prev;
	p->prev = p->next = NULL;
	r->bytes -= p->len;
	r->count--;
	r->points -= p->npoints;
}

void retry_push(struct retry *r, struct payload *p)
{
	struct ep_state *e = &r->ep[p->ep];
	struct payload *after = e->tail;
	while (after && after->seq > p->seq)
		after = after->prev;
	p->prev = after;
	p->next = after ? after->next : e->head;
	if (p->next)
		p->next->prev = p;
	else
		e->tail = p;
	if (after)
		after->next = p;
	else
		e->head = p;
	r->bytes += p->len;
	r->count++;
	r->points += p->npoints;
}

struct payload *retry_pop_oldest(struct retry *r)
{
	struct payload *best = NULL;
	for (int i = 0; i < FWD_EP_COUNT; i++) {
		struct payload *h = r->ep[i].head;
		if (h && (!best || h->seq < best->seq))
			best = h;
	}
	if (best)
		unlink_p(r, best);
	return best;
}

struct payload *retry_pop_newest(struct retry *r)
{
	struct payload *best = NULL;
	for (int i = 0; i < FWD_EP_COUNT; i++) {
		struct payload *t = r->ep[i].tail;
		if (t && (!best || t->seq > best->seq))
			best = t;
	}
	if (best)
		unlink_p(r, best);
	return best;
}

static int may_send(const struct retry *r, const struct ep_state *e, double now)
{
	if (now < e->blocked_until)
		return 0;
	unsigned limit = e->failures ? 1 : r->cfg.max_inflight;
	return e->inflight < limit;
}

struct payload *retry_next(struct retry *r, double now)
{
	struct payload *best = NULL;
	for (int i = 0; i < FWD_EP_COUNT; i++) {
		struct ep_state *e = &r->ep[i];
		struct payload *c = r->cfg.oldest_first ? e->head : e->tail;
		if (c && may_send(r, e, now) &&
		    (!best || (r->cfg.oldest_first ? c->seq < best->seq : c->seq > best->seq)))
			best = c;
	}
	if (!best)
		return NULL;
	unlink_p(r, best);
	r->ep[best->ep].inflight++;
	return best;
}

double retry_done(struct retry *r, struct payload *p, enum retry_verdict v,
		  double retry_after_s, double now)
{
	struct ep_state *e = &r->ep[p->ep];
	if (e->inflight)
		e->inflight--;
	if (v != RETRY_AGAIN) {
		/* the intake answered: the endpoint is healthy again */
		e->failures = 0;
		e->blocked_until = 0;
		return 0;
	}
	p->attempts++;
	if (now < e->blocked_until) {
		/* a request started before this backoff round: same round */
		if (retry_after_s >= 0 && now + retry_after_s > e->blocked_until)
			e->blocked_until = now + (retry_after_s < RETRY_AFTER_MAX ? retry_after_s : RETRY_AFTER_MAX);
		retry_push(r, p);
		return e->blocked_until - now;
	}
	e->failures++;
	double wait = retry_backoff_wait(&r->cfg, e->failures, rand01(r));
	if (retry_after_s >= 0)
		wait = retry_after_s < RETRY_AFTER_MAX ? retry_after_s : RETRY_AFTER_MAX;
	e->blocked_until = now + wait;
	retry_push(r, p);
	return wait;
}

void retry_abandon(struct retry *r, struct payload *p)
{
	struct ep_state *e = &r->ep[p->ep];
	if (e->inflight)
		e->inflight--;
}

double retry_next_wakeup(const struct retry *r, double now)
{
	double best = -1;
	for (int i = 0; i < FWD_EP_COUNT; i++) {
		const struct ep_state *e = &r->ep[i];
		if (e->head && e->blocked_until > now && (best < 0 || e->blocked_until < best))
			best = e->blocked_until;
	}
	return best;
}

size_t retry_bytes(const struct retry *r) { return r->bytes; }
size_t retry_count(const struct retry *r) { return r->count; }
uint64_t retry_points(const struct retry *r) { return r->points; }
unsigned retry_inflight(const struct retry *r, enum fwd_endpoint ep) { return r->ep[ep].inflight; }
unsigned retry_failures(const struct retry *r, enum fwd_endpoint ep) { return r->ep[ep].failures; }
double retry_blocked_until(const struct retry *r, enum fwd_endpoint ep) { return r->ep[ep].blocked_until; }
