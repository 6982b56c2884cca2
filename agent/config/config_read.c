/*
 * config_read.c - reporting and typed readers for the config loader (see
 * config_int.h). Caller: config.c and config_mapper.c only.
 * Messages are "file:line: key: message"; values shown in them are cut to 64
 * printable bytes, and the API key is never passed here as a value.
 * Threading: one load context per thread.
 */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "core/log.h"

/* ---- reporting ---- */

void cfg_emit(struct ctx *c, bool is_error, const char *msg)
{
	struct config_diag *d = c->diag;

	if (is_error)
		d->errors++;
	else
		d->warnings++;
	if (c->printed++ > CFG_MAX_MESSAGES)
		return;
	if (c->printed > CFG_MAX_MESSAGES)
		msg = "too many problems; further messages suppressed";
	if (d->report)
		d->report(d->ctx, is_error, msg);
	else if (is_error)
		log_error("%s", msg);
	else
		log_warn("%s", msg);
}

void cfg_report(struct ctx *c, bool is_error, const struct ynode *n, const char *key,
		const char *fmt, ...)
{
	char where[PATH_MAX + 256], line[PATH_MAX + 1024];
	va_list ap;

	if (n)
		snprintf(where, sizeof(where), "%s:%u: %s", c->file, n->line, key);
	else
		snprintf(where, sizeof(where), "environment: %s", key);
	va_start(ap, fmt);
	cfg_emit(c, is_error, config_diag_vformat(line, sizeof(line), where, fmt, ap));
	va_end(ap);
}

/* A bounded, printable copy of user text for messages. */
const char *cfg_shown(char *out, size_t outlen, const char *s, size_t n)
{
	size_t i, j = 0;

	for (i = 0; i < n && i < 64 && j + 4 < outlen; i++)
		out[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (i < n && j + 4 < outlen)
		for (int k = 0; k < 3; k++)
			out[j++] = '.';
	out[j] = '\0';
	return out;
}

void cfg_path(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, len, fmt, ap);
	va_end(ap);
}

/* ---- typed readers: report and return -EINVAL on a bad value ---- */

int cfg_set_str(char **dst, const char *s)
{
	char *d = strdup(s);

	if (!d)
		return -ENOMEM;
	free(*dst);
	*dst = d;
	return 0;
}

int cfg_get_str(struct ctx *c, const char *key, const struct ynode *n, char **out)
{
	if (n->kind != YNODE_SCALAR) {
		cfg_report(c, true, n, key, "expected a string");
		return -EINVAL;
	}
	if (strlen(n->str) != n->len) {
		cfg_report(c, true, n, key, "contains a NUL byte");
		return -EINVAL;
	}
	if (n->len > CFG_MAX_STRING) {
		cfg_report(c, true, n, key, "longer than %d bytes", CFG_MAX_STRING);
		return -EINVAL;
	}
	return cfg_set_str(out, n->str);
}

int cfg_get_int(struct ctx *c, const char *key, const struct ynode *n, int64_t lo,
		   int64_t hi, int64_t *out)
{
	int64_t v;

	if (ynode_int(n, INT64_MIN, INT64_MAX, &v) < 0) {
		cfg_report(c, true, n, key, "expected an integer");
		return -EINVAL;
	}
	if (v < lo || v > hi) {
		cfg_report(c, true, n, key, "%lld is out of range [%lld, %lld]", (long long)v,
		       (long long)lo, (long long)hi);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int cfg_get_double(struct ctx *c, const char *key, const struct ynode *n, double lo,
		      double hi, double *out)
{
	double v;

	if (ynode_double(n, -DBL_MAX, DBL_MAX, &v) < 0) {
		cfg_report(c, true, n, key, "expected a number");
		return -EINVAL;
	}
	if (v < lo || v > hi) {
		cfg_report(c, true, n, key, "%g is out of range [%g, %g]", v, lo, hi);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int cfg_get_bool(struct ctx *c, const char *key, const struct ynode *n, bool *out)
{
	if (ynode_bool(n, out) < 0) {
		cfg_report(c, true, n, key, "expected a boolean (true or false)");
		return -EINVAL;
	}
	return 0;
}

void cfg_strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* n is a list of at most max items (what: "a list of strings"); else reported. */
int cfg_check_list(struct ctx *c, const char *key, const struct ynode *n, size_t max,
		   const char *what)
{
	if (n->kind != YNODE_SEQ) {
		cfg_report(c, true, n, key, "expected %s", what);
		return -EINVAL;
	}
	if (n->n > max) {
		cfg_report(c, true, n, key, "more than %zu items", max);
		return -EINVAL;
	}
	return 0;
}

int cfg_get_list(struct ctx *c, const char *key, const struct ynode *n,
		 const struct cfg_list *spec, void **out)
{
	char path[160], *v;
	int rc = 0;

	if (cfg_check_list(c, key, n, spec->max, spec->what) < 0)
		return -EINVAL;
	v = calloc(n->n ? n->n : 1, spec->size);
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n->n; i++) {
		cfg_path(path, sizeof(path), "%s[%zu]", key, i);
		int r = spec->read(c, path, n->items[i], v + i * spec->size);
		if (r < 0 && (rc == 0 || r == -ENOMEM))
			rc = r;
	}
	if (rc < 0) {
		spec->free(v, n->n);
		return rc;
	}
	*out = v;
	return 0;
}

static int read_str_item(struct ctx *c, const char *path, const struct ynode *n, void *item)
{
	return cfg_get_str(c, path, n, item);
}

static void free_strv(void *v, size_t n)
{
	cfg_strv_free(v, n);
}

int cfg_get_strlist(struct ctx *c, const char *key, const struct ynode *n, size_t max,
		    char ***out, size_t *nout)
{
	const struct cfg_list spec = { max, "a list of strings", sizeof(char *), read_str_item, free_strv };
	void *v;
	int rc = cfg_get_list(c, key, n, &spec, &v);

	if (rc < 0)
		return rc;
	cfg_strv_free(*out, *nout);
	*out = v;
	*nout = n->n;
	return 0;
}

/* index of n's string in names[], or report and -EINVAL */
int cfg_get_enum(struct ctx *c, const char *key, const struct ynode *n,
		    const char *const *names, size_t nnames, const char *expected)
{
	char buf[80];

	if (n->kind == YNODE_SCALAR)
		for (size_t i = 0; i < nnames; i++)
			if (!strcmp(n->str, names[i]))
				return (int)i;
	if (n->kind != YNODE_SCALAR)
		cfg_report(c, true, n, key, "expected one of %s", expected);
	else
		cfg_report(c, true, n, key, "invalid value '%s' (expected one of %s)",
		       cfg_shown(buf, sizeof(buf), n->str, n->len), expected);
	return -EINVAL;
}

void cfg_unknown_key(struct ctx *c, const char *parent, const struct ynode *k)
{
	char buf[80], path[200];

	cfg_shown(buf, sizeof(buf), k->str, k->len);
	if (parent)
		cfg_path(path, sizeof(path), "%s.%s", parent, buf);
	cfg_report(c, false, k, parent ? path : buf, "unknown key, ignored");
}

