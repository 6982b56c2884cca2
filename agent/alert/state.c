/*
 * state.c - persistence of alert instance states and windows across restarts.
 *
 * Called by eval.c (after an evaluation that changed a state or brought new
 * points) and by engine.c (once, in alert_engine_new). The file is written
 * atomically: <path>.tmp (0600) + fsync + rename + fsync of the directory, so
 * a crash (kill -9, power loss) leaves the previous or the new file, never a
 * torn one. Format, one instance per line after a header, tab-separated,
 * \t \n \\ escaped:
 *   ddma-alert-state 2 <saved_at> <resolution>
 *   rule key host STATE LEVEL state_since cond_since recover_since firing_since
 *   last_notified value PREV_STATE PENDING_LEVEL points
 * where points is the instance's ring, oldest first, "ts:value,ts:value,..."
 * (ts = bucket start). Every instance that is not OK or holds points is
 * written; points are left out (and counted) once the file would pass
 * STATE_POINTS_BUDGET. Version 1 files (the first 11 fields, no points) are
 * still read. A file older than ALERT_RESTORE_MAX_AGE_S is ignored, and so
 * are points written at another resolution. Not thread-safe.
 */
#include "alert/alert_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_MAGIC_V1 "ddma-alert-state 1 "
#define STATE_MAGIC "ddma-alert-state 2 "
#define STATE_MAX_BYTES (64u << 20)
#define STATE_POINTS_BUDGET (32u << 20)
#define STATE_FIELDS_V1 11
#define STATE_FIELDS 14

static void put_escaped(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			buf_puts(b, "\\\\");
		else if (*s == '\t')
			buf_puts(b, "\\t");
		else if (*s == '\n')
			buf_puts(b, "\\n");
		else
			buf_putc(b, *s);
	}
}

static void unescape(char *s)
{
	char *w = s;
	for (; *s; s++) {
		if (*s == '\\' && s[1]) {
			s++;
			*w++ = *s == 't' ? '\t' : *s == 'n' ? '\n' : *s;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

static void put_points(struct buf *b, const struct inst *in)
{
	for (size_t i = 0; i < in->rn; i++) {
		const struct apoint *p = ring_at(in, i);
		buf_printf(b, "%s%" PRId64 ":%.17g", i ? "," : "", p->ts, p->v);
	}
}

static void put_inst(struct alert_engine *e, struct buf *b, const char *rule, const struct inst *in)
{
	buf_puts(b, rule);
	buf_putc(b, '\t');
	put_escaped(b, in->key);
	buf_putc(b, '\t');
	put_escaped(b, in->host);
	buf_printf(b, "\t%s\t%s\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%.17g\t%s\t%s\t",
		   alert_state_name(in->state), alert_state_name(in->level), in->state_since, in->cond_since,
		   in->recover_since, in->firing_since, in->last_notified, in->value,
		   alert_state_name(in->prev_state), alert_state_name(in->pending_level));
	if (b->len < STATE_POINTS_BUDGET)
		put_points(b, in);
	else if (in->rn)
		e->stats.state_points_skipped++;
	buf_putc(b, '\n');
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void fsync_dir(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return;
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
}

int state_write(struct alert_engine *e, int64_t now)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b, STATE_MAGIC "%" PRId64 " %" PRId64 "\n", now, e->resolution);
	for (size_t k = 0; k < e->rules->n; k++)
		for (size_t i = 0; i < e->rt[k].n; i++)
			if (e->rt[k].v[i]->state != ALERT_OK || e->rt[k].v[i]->rn)
				put_inst(e, &b, e->rt[k].rule->name, e->rt[k].v[i]);
	size_t tl = strlen(e->state_path) + 5;
	char *tmp = malloc(tl);
	int rc = b.failed || !tmp ? -ENOMEM : 0;
	int fd = -1;
	if (rc == 0) {
		snprintf(tmp, tl, "%s.tmp", e->state_path);
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		rc = fd < 0 ? -errno : 0;
	}
	if (rc == 0)
		rc = write_all(fd, b.p, b.len);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, e->state_path) < 0)
		rc = -errno;
	if (rc == 0)
		fsync_dir(e->state_path);
	else if (fd >= 0)
		unlink(tmp);
	free(tmp);
	buf_done(&b);
	e->stats.state_writes++;
	if (rc < 0)
		e->stats.state_write_errors++;
	return rc;
}

static int state_from_name(const char *s)
{
	for (int i = 0; i < ALERT_STATE_COUNT; i++)
		if (strcmp(s, alert_state_name((enum alert_state)i)) == 0)
			return i;
	return -1;
}

static struct rule_rt *rt_by_name(struct alert_engine *e, const char *name)
{
	for (size_t k = 0; k < e->rules->n; k++)
		if (strcmp(e->rt[k].rule->name, name) == 0)
			return &e->rt[k];
	return NULL;
}

/* "ts:v,ts:v" -> the instance's ring (oldest first; the ring keeps the
 * newest when the rule's window shrank). A malformed point ends the list. */
static void restore_points(struct inst *in, const char *s)
{
	while (*s) {
		char *end;
		int64_t ts = strtoll(s, &end, 10);
		if (*end != ':')
			return;
		double v = strtod(end + 1, &end);
		if ((*end != ',' && *end) || !isfinite(v))
			return;
		if (in->rn && ts <= ring_at(in, in->rn - 1)->ts)
			return;
		ring_push(in, ts, v);
		s = *end ? end + 1 : end;
	}
}

static size_t split_fields(char *line, char **f, size_t max)
{
	size_t n = 0;
	for (char *p = line; n < max;) {
		f[n++] = p;
		char *tab = strchr(p, '\t');
		if (!tab)
			break;
		*tab = '\0';
		p = tab + 1;
	}
	return n;
}

static struct inst *restore_inst(struct alert_engine *e, struct rule_rt *rt, const char *key, const char *host)
{
	for (size_t i = 0; i < rt->n; i++)
		if (strcmp(rt->v[i]->key, key) == 0)
			return rt->v[i];
	size_t max = rt->rule->max_groups ? rt->rule->max_groups : e->max_groups;
	if (!rt->rule->ngroup_by || rt->n >= max)
		return NULL;
	struct inst *in = inst_new(e, rt->rule, key, host);
	if (!in || rt_add(rt, in) < 0) {
		inst_free(in);
		return NULL;
	}
	return in;
}

static void restore_line(struct alert_engine *e, char *line, int version, bool points, int64_t now)
{
	char *f[STATE_FIELDS];
	size_t want = version == 1 ? STATE_FIELDS_V1 : STATE_FIELDS;
	if (split_fields(line, f, want) != want)
		return;
	unescape(f[1]);
	unescape(f[2]);
	struct rule_rt *rt = rt_by_name(e, f[0]);
	int st = state_from_name(f[3]), lv = state_from_name(f[4]);
	int prev = version == 1 ? ALERT_OK : state_from_name(f[11]);
	int pend = version == 1 ? ALERT_CRITICAL : state_from_name(f[12]);
	if (!rt || st < 0 || lv < 0 || prev < 0 || pend < 0)
		return;
	struct inst *in = restore_inst(e, rt, f[1], f[2]);
	if (!in)
		return;
	in->state = (enum alert_state)st;
	in->level = (enum alert_state)lv;
	in->prev_state = (enum alert_state)prev;
	in->pending_level = (enum alert_state)pend;
	in->state_since = strtoll(f[5], NULL, 10);
	in->cond_since = strtoll(f[6], NULL, 10);
	in->recover_since = strtoll(f[7], NULL, 10);
	in->firing_since = strtoll(f[8], NULL, 10);
	in->last_notified = strtoll(f[9], NULL, 10);
	in->value = strtod(f[10], NULL);
	in->last_data = now;
	if (version >= 2 && points) {
		in->rn = in->rhead = 0;
		restore_points(in, f[13]);
		e->stats.points_restored += in->rn;
	}
	e->stats.restored++;
}

static char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	char *data = NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size <= STATE_MAX_BYTES &&
	    (data = malloc((size_t)st.st_size + 1)) != NULL) {
		size_t got = 0;
		while (got < (size_t)st.st_size) {
			ssize_t r = read(fd, data + got, (size_t)st.st_size - got);
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		data[got] = '\0';
		*len = got;
	}
	close(fd);
	return data;
}

int state_restore(struct alert_engine *e, int64_t now)
{
	if (!e->state_path)
		return 0;
	size_t len = 0;
	char *data = read_file(e->state_path, &len);
	if (!data)
		return -errno;
	int version = strncmp(data, STATE_MAGIC, strlen(STATE_MAGIC)) == 0	   ? 2
		      : strncmp(data, STATE_MAGIC_V1, strlen(STATE_MAGIC_V1)) == 0 ? 1
										   : 0;
	if (!version) {
		free(data);
		return -EINVAL;
	}
	char *end;
	int64_t saved = strtoll(data + strlen(STATE_MAGIC), &end, 10);
	int64_t res = version == 2 ? strtoll(end, NULL, 10) : 0;
	if (now - saved <= ALERT_RESTORE_MAX_AGE_S && saved <= now + 60) {
		char *line = strchr(data, '\n');
		while (line && *++line) {
			char *nl = strchr(line, '\n');
			if (!nl)
				break; /* a torn last line is ignored */
			*nl = '\0';
			restore_line(e, line, version, res == e->resolution, now);
			line = nl;
		}
	}
	free(data);
	return 0;
}
