/*
 * queue.c - durable, ordered delivery of notifications (see notify.h):
 * one FIFO per destination whose head alone is in flight, retries on a
 * per-destination libevent timer until accepted or older than max_age_s,
 * spool files under the set's spool directory, the reload hand-over and the
 * "no resolve for a trigger never delivered" rule.
 *
 * Spool file <seq>.ntf (seq: 16 hex digits, increasing; sorted = queue order):
 *   ddma-notification 1
 *   dest <name>
 *   type <slack|pagerduty|webhook>
 *   created <unix seconds>
 *   action <trigger|resolve>
 *   fingerprint <16 hex>
 *   <empty line>
 *   <the request body, as sent>
 * Written as <seq>.ntf.tmp + fsync + rename + fsync of the directory before
 * the first attempt, removed once accepted or given up. <spool>/lost lists the
 * triggers given up ("dest<TAB>fingerprint"), so that their resolves stay
 * unsent across restarts.
 *
 * Loop thread only. Logs every give-up and drop (never a URL in full).
 */
#include "notify/notify_int.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "forward/http.h"

static int64_t wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return ts.tv_sec;
}

/* ---- spool files ---- */

static char *spool_path(const struct notifier_set *s, uint64_t seq, const char *suffix)
{
	char *p;
	if (asprintf(&p, "%s/%016" PRIx64 ".ntf%s", s->spool, seq, suffix) < 0)
		return NULL;
	return p;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

static int spool_write(struct notifier_set *s, const struct delivery *dl)
{
	char head[512];
	int hl = snprintf(head, sizeof(head), SPOOL_MAGIC "dest %s\ntype %s\ncreated %" PRId64 "\naction %s\nfingerprint %s\n\n",
			  dl->d->name, notify_type_name(dl->d->type), dl->created, dl->resolve ? "resolve" : "trigger",
			  dl->fp);
	char *tmp = spool_path(s, dl->seq, ".tmp"), *path = spool_path(s, dl->seq, "");
	int rc = !tmp || !path || hl < 0 || (size_t)hl >= sizeof(head) ? -ENOMEM : 0;
	int fd = rc ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (!rc && fd < 0)
		rc = -errno;
	if (!rc)
		rc = write_all(fd, head, (size_t)hl);
	if (!rc)
		rc = write_all(fd, dl->body, dl->len);
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (fd >= 0 && close(fd) < 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (!rc)
		fsync_dir(s->spool);
	else if (tmp)
		unlink(tmp);
	free(tmp);
	free(path);
	return rc;
}

static void spool_remove(struct notifier_set *s, const struct delivery *dl)
{
	if (!s->spool || !dl->seq)
		return;
	char *path = spool_path(s, dl->seq, "");
	if (path && unlink(path) < 0 && errno != ENOENT)
		log_limited(LOG_LVL_WARN, "notify: removing %s: %s", path, strerror(errno));
	free(path);
}

/* ---- the queue of one destination ---- */

static void delivery_free(struct delivery *dl)
{
	free(dl->body);
	free(dl);
}

static void push(struct dest *d, struct delivery *dl)
{
	dl->d = d;
	dl->next = NULL;
	if (d->tail)
		d->tail->next = dl;
	else
		d->head = dl;
	d->tail = dl;
	d->st.queued++;
}

static void pop_free(struct dest *d)
{
	struct delivery *dl = d->head;
	d->head = dl->next;
	if (!d->head)
		d->tail = NULL;
	d->st.queued--;
	spool_remove(d->set, dl);
	delivery_free(dl);
}

static bool is_lost(const struct dest *d, const char *fp)
{
	for (size_t i = 0; i < d->nlost && i < NOTIFY_LOST_FPS; i++)
		if (strcmp(d->lost[i], fp) == 0)
			return true;
	return false;
}

/* <spool>/lost: "dest<TAB>fingerprint" per line, the triggers given up, so
 * their resolves stay unsent after a restart too. Rewritten (tmp + rename)
 * when it changes, which is rare. */
static void lost_save(struct notifier_set *s)
{
	if (!s->spool)
		return;
	struct buf b;
	buf_init(&b);
	for (size_t i = 0; i < s->n; i++)
		for (size_t k = 0; k < s->d[i].nlost && k < NOTIFY_LOST_FPS; k++)
			if (s->d[i].lost[k][0])
				buf_printf(&b, "%s\t%s\n", s->d[i].name, s->d[i].lost[k]);
	char *tmp = NULL, *path = NULL;
	int fd = -1, rc = b.failed || asprintf(&tmp, "%s/lost.tmp", s->spool) < 0 ||
				  asprintf(&path, "%s/lost", s->spool) < 0
			  ? -ENOMEM
			  : 0;
	if (!rc && (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		rc = -errno;
	if (!rc)
		rc = write_all(fd, b.p ? b.p : "", b.len);
	if (fd >= 0 && close(fd) < 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc)
		log_limited(LOG_LVL_WARN, "notify: cannot write %s/lost: %s", s->spool, strerror(-rc));
	free(tmp);
	free(path);
	buf_done(&b);
}

static void mark_lost(struct dest *d, const char *fp)
{
	if (is_lost(d, fp))
		return;
	snprintf(d->lost[d->nlost++ % NOTIFY_LOST_FPS], sizeof(d->lost[0]), "%s", fp);
	lost_save(d->set);
}

static void clear_lost(struct dest *d, const char *fp)
{
	bool found = false;
	for (size_t i = 0; i < d->nlost && i < NOTIFY_LOST_FPS; i++)
		if (strcmp(d->lost[i], fp) == 0) {
			d->lost[i][0] = '\0';
			found = true;
		}
	if (found)
		lost_save(d->set);
}

/* Gives up the head: logged, counted in *counter; a trigger marks its alert
 * so that its resolves are not sent either. */
static void give_up(struct dest *d, uint64_t *counter, const char *why)
{
	struct delivery *dl = d->head;
	(*counter)++;
	if (!dl->resolve)
		mark_lost(d, dl->fp);
	log_warn("notify: %s (%s, %s): %s %s dropped after %d attempt(s): %s", d->name, notify_type_name(d->type),
		 d->redacted, dl->resolve ? "resolve" : "trigger", dl->fp, dl->attempt, why);
	pop_free(d);
}

static void pump(struct dest *d);

/* notify_drain's end: nothing of the set is in flight any more. */
static void check_drained(struct notifier_set *s)
{
	if (!s->drain_done || s->orphans)
		return;
	for (size_t i = 0; i < s->n; i++)
		if (s->d[i].busy)
			return;
	void (*done)(void *) = s->drain_done;
	s->drain_done = NULL;
	done(s->drain_arg);
}

void notify_drain(struct notifier_set *s, void (*done)(void *), void *arg)
{
	s->draining = true;
	s->drain_done = done;
	s->drain_arg = arg;
	check_drained(s);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pump(arg);
}

static void arm(struct dest *d, double delay)
{
	struct notifier_set *s = d->set;
	if (!d->timer && !(d->timer = evtimer_new(s->base, on_timer, d))) {
		log_limited(LOG_LVL_ERROR, "notify: %s: out of memory for a retry timer", d->name);
		return;
	}
	struct timeval tv = { (time_t)delay, (suseconds_t)((delay - floor(delay)) * 1e6) };
	evtimer_add(d->timer, &tv);
}

static double backoff(const struct notifier_set *s, int attempt)
{
	double delay = s->opt.backoff_unit_s * ldexp(1.0, attempt);
	return delay > s->opt.backoff_max_s ? s->opt.backoff_max_s : delay;
}

static void retry_later(struct dest *d, long status, double retry_after, const char *why)
{
	struct notifier_set *s = d->set;
	double delay = backoff(s, d->head->attempt);
	if ((status == 429 || status == 503) && retry_after >= 0)
		delay = retry_after < s->opt.retry_after_max_s ? retry_after : s->opt.retry_after_max_s;
	d->st.retried++;
	log_limited(LOG_LVL_WARN, "notify: %s (%s, %s): %s; retrying in %.1f s (attempt %d)", d->name,
		    notify_type_name(d->type), d->redacted, why, delay, d->head->attempt);
	arm(d, delay);
}

static void handle_response(struct dest *d, const struct http_response *resp);

static void on_done(void *arg, const struct http_response *resp)
{
	struct delivery *dl = arg;
	struct dest *d = dl->d;
	if (!d) { /* its destination was removed by a reload */
		struct delivery **pp = &dl->oset->orphans;
		while (*pp && *pp != dl)
			pp = &(*pp)->next;
		if (*pp)
			*pp = dl->next;
		struct notifier_set *os = dl->oset;
		delivery_free(dl);
		check_drained(os);
		return;
	}
	d->busy = false;
	handle_response(d, resp);
	check_drained(d->set);
}

static void handle_response(struct dest *d, const struct http_response *resp)
{
	char why[160];
	if (resp->status >= 200 && resp->status < 300) {
		d->st.sent++;
		pop_free(d);
		pump(d);
		return;
	}
	if (resp->status)
		snprintf(why, sizeof(why), "HTTP %ld", resp->status);
	else
		snprintf(why, sizeof(why), "%s", resp->error ? resp->error : "transport error");
	long st = resp->status;
	if (st == 0 || st == 408 || st == 429 || st >= 500) {
		retry_later(d, st, resp->retry_after_s, why);
		return;
	}
	give_up(d, &d->st.failed, why); /* the receiver refuses it: resending cannot help */
	pump(d);
}

static bool take_token(struct notifier_set *s, struct dest *d, int64_t now)
{
	if (d->refill_at == 0)
		d->refill_at = now;
	if (now > d->refill_at) {
		d->tokens += (double)(now - d->refill_at) * s->opt.rate_per_s;
		if (d->tokens > s->opt.burst)
			d->tokens = s->opt.burst;
		d->refill_at = now;
	}
	if (d->tokens < 1.0)
		return false;
	d->tokens -= 1.0;
	return true;
}

static void send_head(struct dest *d)
{
	struct notifier_set *s = d->set;
	struct delivery *dl = d->head;
	static const char *const headers[] = { "Content-Type: application/json" };
	struct http_request req = {
		.method = "POST", .url = d->url, .headers = headers, .nheaders = 1,
		.body = dl->body, .body_len = dl->len, .timeout_ms = s->opt.timeout_ms,
	};
	dl->attempt++;
	d->busy = true;
	int rc = http_client_send(s->http, &req, on_done, dl);
	if (rc < 0) {
		d->busy = false;
		retry_later(d, 0, -1, strerror(-rc));
	}
}

/* Sends the head when nothing is in flight or waiting; drops what expired
 * and resolves whose trigger was never delivered first. */
static void pump(struct dest *d)
{
	struct notifier_set *s = d->set;
	if (!s->http || !s->base || s->draining || d->busy || (d->timer && evtimer_pending(d->timer, NULL)))
		return;
	int64_t now = wall_s();
	while (d->head) {
		struct delivery *dl = d->head;
		if (dl->resolve && is_lost(d, dl->fp)) {
			d->st.suppressed++;
			log_warn("notify: %s: resolve %s not sent: its trigger was never delivered", d->name, dl->fp);
			pop_free(d);
		} else if (now - dl->created > s->opt.max_age_s) {
			give_up(d, &d->st.expired, "older than notification_max_age");
		} else {
			break;
		}
	}
	if (!d->head)
		return;
	if (!take_token(s, d, now)) {
		d->st.rate_limited++;
		arm(d, s->opt.rate_per_s > 0 ? 1.0 / s->opt.rate_per_s : 1.0);
		return;
	}
	send_head(d);
}

void dest_queue_free(struct dest *d)
{
	if (d->timer)
		event_free(d->timer);
	d->timer = NULL;
	while (d->head) {
		struct delivery *dl = d->head;
		d->head = dl->next;
		delivery_free(dl);
	}
	d->tail = NULL;
	d->busy = false;
}

void notify_orphans_free(struct notifier_set *s)
{
	while (s->orphans) {
		struct delivery *dl = s->orphans;
		s->orphans = dl->next;
		delivery_free(dl);
	}
}

/* ---- entry points ---- */

static int build_body(const struct dest *d, const struct alert_transition *t, struct buf *b)
{
	switch (d->type) {
	case NOTIFY_SLACK: return notify_body_slack(t, b);
	case NOTIFY_PAGERDUTY: return notify_body_pagerduty(t, d->routing_key, b);
	case NOTIFY_WEBHOOK: return notify_body_webhook(t, d->name, b);
	}
	return -EINVAL;
}

static int enqueue(struct notifier_set *s, struct dest *d, const struct alert_transition *t, int64_t now)
{
	if (t->resolved && is_lost(d, t->fingerprint_hex)) {
		d->st.suppressed++;
		log_warn("notify: %s: resolve %s not sent: its trigger was never delivered", d->name,
			 t->fingerprint_hex);
		return 0;
	}
	if (d->st.queued >= s->opt.queue_max) {
		d->st.dropped++;
		if (!t->resolved)
			mark_lost(d, t->fingerprint_hex);
		log_warn("notify: %s: queue full (%zu notifications waiting): %s %s dropped", d->name,
			 s->opt.queue_max, t->resolved ? "resolve" : "trigger", t->fingerprint_hex);
		return 0;
	}
	if (!t->resolved)
		clear_lost(d, t->fingerprint_hex);
	struct delivery *dl = calloc(1, sizeof(*dl));
	struct buf b;
	buf_init(&b);
	if (!dl || build_body(d, t, &b) < 0) {
		free(dl);
		buf_done(&b);
		d->st.dropped++;
		log_limited(LOG_LVL_ERROR, "notify: %s: out of memory: notification dropped", d->name);
		return -ENOMEM;
	}
	dl->body = buf_steal(&b, &dl->len);
	dl->created = now;
	dl->resolve = t->resolved;
	memcpy(dl->fp, t->fingerprint_hex, sizeof(dl->fp));
	dl->d = d;
	if (s->spool) {
		dl->seq = ++s->seq;
		int rc = spool_write(s, dl);
		if (rc < 0) {
			log_limited(LOG_LVL_ERROR, "notify: %s: cannot write %s: %s (kept in memory only)", d->name,
				    s->spool, strerror(-rc));
			dl->seq = 0;
		}
	}
	push(d, dl);
	pump(d);
	return 1;
}

int notify_transition(struct notifier_set *s, const struct alert_transition *t, int64_t now)
{
	int queued = 0;
	if (!s || !s->http || !t->notify || !t->rule)
		return 0;
	for (size_t i = 0; i < t->rule->nnotify; i++) {
		struct dest *d = NULL;
		for (size_t k = 0; k < s->n && !d; k++)
			if (strcmp(s->d[k].name, t->rule->notify[i]) == 0)
				d = &s->d[k];
		if (!d || (t->resolved && !d->send_resolved))
			continue;
		int rc = enqueue(s, d, t, now);
		if (rc < 0)
			return rc;
		queued += rc;
	}
	return queued;
}

/* ---- spool loading and the reload hand-over ---- */

static struct dest *dest_of(struct notifier_set *s, const char *name, const char *type)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->d[i].name, name) == 0 && strcmp(notify_type_name(s->d[i].type), type) == 0)
			return &s->d[i];
	return NULL;
}

static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *data = NULL;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size <= SPOOL_MAX_FILE &&
	    (data = malloc((size_t)st.st_size + 1)) != NULL) {
		size_t got = 0;
		ssize_t r;
		while (got < (size_t)st.st_size && (r = read(fd, data + got, (size_t)st.st_size - got)) > 0)
			got += (size_t)r;
		data[got] = '\0';
		*len = got;
	}
	close(fd);
	return data;
}

/* Parses one spool file into a delivery for its destination. */
static int load_one(struct notifier_set *s, uint64_t seq, const char *path)
{
	size_t len = 0;
	char *data = slurp(path, &len), *body;
	char name[256], type[32], action[16], fp[17];
	long long created;
	if (!data || strncmp(data, SPOOL_MAGIC, strlen(SPOOL_MAGIC)) != 0 || !(body = strstr(data, "\n\n")) ||
	    sscanf(data + strlen(SPOOL_MAGIC), "dest %255s\ntype %31s\ncreated %lld\naction %15s\nfingerprint %16s",
		   name, type, &created, action, fp) != 5) {
		free(data);
		return -EINVAL;
	}
	struct dest *d = dest_of(s, name, type);
	if (!d) {
		free(data);
		log_warn("notify: queued notification %s is for notifier '%s' (%s), which is not configured: dropped",
			 path, name, type);
		s->retired.dropped++;
		return -ENOENT;
	}
	struct delivery *dl = calloc(1, sizeof(*dl));
	if (!dl) {
		free(data);
		return -ENOMEM;
	}
	body += 2;
	dl->len = len - (size_t)(body - data);
	memmove(data, body, dl->len);
	data[dl->len] = '\0';
	dl->body = data;
	dl->seq = seq;
	dl->created = created;
	dl->resolve = strcmp(action, "resolve") == 0;
	snprintf(dl->fp, sizeof(dl->fp), "%s", fp);
	push(d, dl);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* The seqs of the *.ntf files in dir, sorted; stale *.tmp files removed. */
static int list_spool(const char *dir, uint64_t **out, size_t *n)
{
	DIR *dp = opendir(dir);
	size_t cap = 0;
	struct dirent *de;
	*out = NULL;
	*n = 0;
	if (!dp)
		return -errno;
	while ((de = readdir(dp)) != NULL) {
		char *end;
		uint64_t seq = strtoull(de->d_name, &end, 16);
		if (end != de->d_name + 16)
			continue;
		if (strcmp(end, ".ntf.tmp") == 0) {
			unlinkat(dirfd(dp), de->d_name, 0);
			continue;
		}
		if (strcmp(end, ".ntf") != 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			uint64_t *v = realloc(*out, cap * sizeof(*v));
			if (!v) {
				closedir(dp);
				return -ENOMEM;
			}
			*out = v;
		}
		(*out)[(*n)++] = seq;
	}
	closedir(dp);
	if (*n)
		qsort(*out, *n, sizeof(**out), cmp_u64);
	return 0;
}

static void lost_load(struct notifier_set *s)
{
	char *path = NULL, *data = NULL;
	size_t len = 0;
	if (asprintf(&path, "%s/lost", s->spool) < 0)
		return;
	data = slurp(path, &len);
	for (char *line = data, *nl; line && *line; line = nl + 1) {
		if (!(nl = strchr(line, '\n')))
			break;
		*nl = '\0';
		char *tab = strchr(line, '\t');
		if (!tab || strlen(tab + 1) != 16)
			continue;
		*tab = '\0';
		for (size_t i = 0; i < s->n; i++)
			if (strcmp(s->d[i].name, line) == 0 && !is_lost(&s->d[i], tab + 1))
				snprintf(s->d[i].lost[s->d[i].nlost++ % NOTIFY_LOST_FPS], sizeof(s->d[i].lost[0]), "%s",
					 tab + 1);
	}
	free(data);
	free(path);
}

int notify_spool_open(struct notifier_set *s, const char *dir)
{
	uint64_t *seqs;
	size_t n, loaded = 0;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	int rc = list_spool(dir, &seqs, &n);
	if (rc < 0)
		return rc;
	if (!(s->spool = strdup(dir))) {
		free(seqs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		char *path = spool_path(s, seqs[i], "");
		if (!path)
			break;
		rc = load_one(s, seqs[i], path);
		if (rc == 0) {
			loaded++;
		} else {
			if (rc == -EINVAL) {
				log_warn("notify: %s is not a readable queued notification: removed", path);
				s->retired.dropped++;
			}
			unlink(path);
		}
		free(path);
		s->seq = seqs[i] > s->seq ? seqs[i] : s->seq;
	}
	free(seqs);
	lost_load(s);
	if (loaded)
		log_info("notify: %zu undelivered notification(s) from %s queued again", loaded, dir);
	for (size_t i = 0; i < s->n; i++)
		pump(&s->d[i]);
	return (int)loaded;
}

static void retire(struct notifier_set *s, struct dest *od)
{
	size_t dropped = 0;
	if (od->busy) { /* in flight: freed by its completion */
		struct delivery *dl = od->head;
		od->head = dl->next;
		spool_remove(od->set, dl);
		dl->d = NULL;
		dl->oset = s;
		dl->next = s->orphans;
		s->orphans = dl;
		od->st.queued--;
		od->busy = false;
		dropped++;
	}
	while (od->head) {
		dropped++;
		pop_free(od);
	}
	od->tail = NULL;
	od->st.dropped += dropped;
	if (dropped)
		log_warn("notify: reload removed notifier '%s' (or changed its type): %zu queued notification(s) dropped",
			 od->name, dropped);
	s->retired.sent += od->st.sent;
	s->retired.failed += od->st.failed;
	s->retired.expired += od->st.expired;
	s->retired.retried += od->st.retried;
	s->retired.rate_limited += od->st.rate_limited;
	s->retired.dropped += od->st.dropped;
	s->retired.suppressed += od->st.suppressed;
}

void notify_adopt(struct notifier_set *s, struct notifier_set *old)
{
	s->spool = old->spool; /* shared until the end: both sets' dests remove files */
	s->seq = old->seq;
	s->retired = old->retired;
	for (struct delivery *o = old->orphans; o; o = o->next)
		o->oset = s;
	s->orphans = old->orphans;
	old->orphans = NULL;
	for (size_t i = 0; i < old->n; i++) {
		struct dest *od = &old->d[i], *nd = dest_of(s, od->name, notify_type_name(od->type));
		if (!nd) {
			retire(s, od);
			continue;
		}
		nd->st = od->st;
		nd->head = od->head;
		nd->tail = od->tail;
		nd->busy = od->busy;
		nd->tokens = od->tokens;
		nd->refill_at = od->refill_at;
		memcpy(nd->lost, od->lost, sizeof(nd->lost));
		nd->nlost = od->nlost;
		for (struct delivery *dl = nd->head; dl; dl = dl->next)
			dl->d = nd;
		od->head = od->tail = NULL;
		od->busy = false;
		od->st.queued = 0;
	}
	old->spool = NULL;
	for (size_t i = 0; i < s->n; i++)
		pump(&s->d[i]);
}
