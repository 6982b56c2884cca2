/*
 * yamldoc.c - see yamldoc.h. Builds a ynode tree from libyaml's event stream
 * (yaml_parser_parse), the only libyaml user in the agent.
 *
 * Callers: config/ (agent.yaml), alert/ (rule files), notify/ (notifiers).
 * Ownership: every node is allocated once and recorded in the document's
 * node list; aliases add a second pointer to an existing node (never a copy),
 * so ydoc_free walks the list, not the tree, and frees each node exactly once.
 * An anchor becomes visible only when its node is complete, so an alias can
 * never point at one of its own ancestors: the tree is always acyclic.
 * Threading: no shared state; any thread.
 */
#include "yamldoc/yamldoc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "core/hash.h"

#define YAML_MAX_DEPTH 64
#define YAML_MAX_NODES 100000	/* nodes plus alias references */
#define YAML_MAX_SCALAR (1u << 20)
#define YAML_MAX_FILE (16u << 20)

/* The public document plus the list of every node it owns. */
struct ydoc_priv {
	struct ydoc pub;
	struct ynode **all;
	size_t nall, capall;
};

struct anchor {
	char *name;		/* NULL = free slot */
	struct ynode *node;
};

struct frame {
	struct ynode *node;
	char *anchor;		/* registered when the collection ends */
	struct ynode *key;	/* map: key waiting for its value */
};

struct builder {
	struct ydoc_priv *doc;
	struct frame stack[YAML_MAX_DEPTH];
	size_t depth;
	struct anchor *anchors;	/* open addressing, power-of-two size */
	size_t nanchors, capanchors;
	size_t count;
	bool done;		/* root complete: the first document is read */
	char *err;
	size_t errlen;
};

static void set_err(struct builder *b, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(struct builder *b, unsigned line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (b->err && b->errlen)
		snprintf(b->err, b->errlen, "%s:%u: %s", b->doc->pub.file, line, msg);
}

/* Copies at most 64 bytes of s, replacing anything unprintable, for messages. */
static void printable(char *out, size_t outlen, const char *s, size_t n)
{
	size_t i, j = 0;

	for (i = 0; i < n && j + 4 < outlen && i < 64; i++)
		out[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (i < n && j + 4 < outlen) {
		memcpy(out + j, "...", 3);
		j += 3;
	}
	out[j] = '\0';
}

static void node_free(struct ynode *n)
{
	free(n->str);
	free(n->items);
	free(n->keys);
	free(n);
}

void ydoc_free(struct ydoc *doc)
{
	struct ydoc_priv *d = (struct ydoc_priv *)doc;

	if (!d)
		return;
	for (size_t i = 0; i < d->nall; i++)
		node_free(d->all[i]);
	free(d->all);
	free(d->pub.file);
	free(d);
}

static struct ynode *node_new(struct builder *b, enum ynode_kind kind, const yaml_mark_t *m)
{
	struct ydoc_priv *d = b->doc;
	struct ynode *n;

	if (++b->count > YAML_MAX_NODES) {
		set_err(b, (unsigned)m->line + 1, "more than %d nodes", YAML_MAX_NODES);
		return NULL;
	}
	if (d->nall == d->capall) {
		size_t cap = d->capall ? d->capall * 2 : 64;
		struct ynode **all = realloc(d->all, cap * sizeof(*all));
		if (!all)
			goto oom;
		d->all = all;
		d->capall = cap;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		goto oom;
	n->kind = kind;
	n->line = (unsigned)m->line + 1;
	n->col = (unsigned)m->column + 1;
	d->all[d->nall++] = n;
	return n;
oom:
	set_err(b, (unsigned)m->line + 1, "out of memory");
	return NULL;
}

/* ---- anchors: name -> completed node ---- */

static struct anchor *anchor_slot(struct anchor *tab, size_t cap, const char *name)
{
	size_t i = (size_t)hash64(name, strlen(name)) & (cap - 1);

	while (tab[i].name && strcmp(tab[i].name, name) != 0)
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

static int anchors_grow(struct builder *b)
{
	size_t cap = b->capanchors ? b->capanchors * 2 : 16;
	struct anchor *tab = calloc(cap, sizeof(*tab));

	if (!tab)
		return -ENOMEM;
	for (size_t i = 0; i < b->capanchors; i++)
		if (b->anchors[i].name)
			*anchor_slot(tab, cap, b->anchors[i].name) = b->anchors[i];
	free(b->anchors);
	b->anchors = tab;
	b->capanchors = cap;
	return 0;
}

/* Consumes name. A redefined anchor refers to its latest node (YAML 1.2). */
static int anchor_set(struct builder *b, char *name, struct ynode *n)
{
	struct anchor *a;

	if ((b->nanchors + 1) * 2 > b->capanchors && anchors_grow(b) < 0) {
		free(name);
		set_err(b, n->line, "out of memory");
		return -ENOMEM;
	}
	a = anchor_slot(b->anchors, b->capanchors, name);
	if (a->name) {
		free(name);
	} else {
		a->name = name;
		b->nanchors++;
	}
	a->node = n;
	return 0;
}

static struct ynode *anchor_get(struct builder *b, const char *name)
{
	struct anchor *a;

	if (!b->capanchors)
		return NULL;
	a = anchor_slot(b->anchors, b->capanchors, name);
	return a->name ? a->node : NULL;
}

static char *dup_anchor(struct builder *b, const yaml_char_t *anchor, unsigned line, int *rc)
{
	char *s;

	*rc = 0;
	if (!anchor)
		return NULL;
	s = strdup((const char *)anchor);
	if (!s) {
		set_err(b, line, "out of memory");
		*rc = -ENOMEM;
	}
	return s;
}

/* ---- tree building ---- */

static int push_item(struct builder *b, struct ynode *parent, struct ynode *key, struct ynode *n)
{
	if ((parent->n & (parent->n - 1)) == 0) {	/* 0, 1, 2, 4, ...: grow */
		size_t cap = parent->n ? parent->n * 2 : 4;
		struct ynode **items = realloc(parent->items, cap * sizeof(*items));
		if (!items)
			goto oom;
		parent->items = items;
		if (parent->kind == YNODE_MAP) {
			struct ynode **keys = realloc(parent->keys, cap * sizeof(*keys));
			if (!keys)
				goto oom;
			parent->keys = keys;
		}
	}
	if (parent->kind == YNODE_MAP)
		parent->keys[parent->n] = key;
	parent->items[parent->n++] = n;
	return 0;
oom:
	set_err(b, n->line, "out of memory");
	return -ENOMEM;
}

/* Hands a complete node (or an alias target) to its parent. */
static int attach(struct builder *b, struct ynode *n, unsigned line)
{
	struct frame *f;

	if (b->depth == 0) {
		b->doc->pub.root = n;
		b->done = true;
		return 0;
	}
	f = &b->stack[b->depth - 1];
	if (f->node->kind == YNODE_SEQ)
		return push_item(b, f->node, NULL, n);
	if (!f->key) {
		if (n->kind != YNODE_SCALAR) {
			set_err(b, line, "mapping key must be a scalar");
			return -EINVAL;
		}
		f->key = n;
		return 0;
	}
	struct ynode *key = f->key;
	f->key = NULL;
	return push_item(b, f->node, key, n);
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
	const yaml_mark_t *m = &ev->start_mark;
	size_t len = ev->data.scalar.length;
	struct ynode *n;
	char *anchor;
	int rc;

	if (len > YAML_MAX_SCALAR) {
		set_err(b, (unsigned)m->line + 1, "scalar longer than %u bytes", YAML_MAX_SCALAR);
		return -EINVAL;
	}
	n = node_new(b, YNODE_SCALAR, m);
	if (!n)
		return -EINVAL;
	n->str = malloc(len + 1);
	if (!n->str) {
		set_err(b, n->line, "out of memory");
		return -ENOMEM;
	}
	if (len)
		memcpy(n->str, ev->data.scalar.value, len);
	n->str[len] = '\0';
	n->len = len;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag;
	anchor = dup_anchor(b, ev->data.scalar.anchor, n->line, &rc);
	if (rc < 0)
		return rc;
	if (anchor && (rc = anchor_set(b, anchor, n)) < 0)
		return rc;
	return attach(b, n, n->line);
}

static int on_start(struct builder *b, const yaml_event_t *ev, enum ynode_kind kind)
{
	const yaml_char_t *anchor = kind == YNODE_MAP ? ev->data.mapping_start.anchor
						     : ev->data.sequence_start.anchor;
	unsigned line = (unsigned)ev->start_mark.line + 1;
	struct frame *f;
	int rc;

	if (b->depth == YAML_MAX_DEPTH) {
		set_err(b, line, "nesting deeper than %d levels", YAML_MAX_DEPTH);
		return -EINVAL;
	}
	f = &b->stack[b->depth];
	f->key = NULL;
	f->node = node_new(b, kind, &ev->start_mark);
	if (!f->node)
		return -EINVAL;
	f->anchor = dup_anchor(b, anchor, line, &rc);
	if (rc < 0)
		return rc;
	b->depth++;
	return 0;
}

static int keycmp(const void *pa, const void *pb)
{
	const struct ynode *a = *(struct ynode *const *)pa, *c = *(struct ynode *const *)pb;
	int r;

	if (a->len != c->len)
		return a->len < c->len ? -1 : 1;
	r = a->len ? memcmp(a->str, c->str, a->len) : 0;
	if (r)
		return r;
	return (a->line > c->line) - (a->line < c->line);
}

/* Duplicate keys are an error: a silently overridden setting is a trap. O(n log n). */
static int check_dup_keys(struct builder *b, const struct ynode *map)
{
	struct ynode **k;
	char name[80];
	int rc = 0;

	if (map->n < 2)
		return 0;
	k = malloc(map->n * sizeof(*k));
	if (!k) {
		set_err(b, map->line, "out of memory");
		return -ENOMEM;
	}
	memcpy(k, map->keys, map->n * sizeof(*k));
	qsort(k, map->n, sizeof(*k), keycmp);
	for (size_t i = 1; i < map->n; i++) {
		if (k[i]->len == k[i - 1]->len && !memcmp(k[i]->str, k[i - 1]->str, k[i]->len)) {
			printable(name, sizeof(name), k[i]->str, k[i]->len);
			set_err(b, k[i]->line, "duplicate key '%s' (first at line %u)", name,
				k[i - 1]->line);
			rc = -EINVAL;
			break;
		}
	}
	free(k);
	return rc;
}

static int on_end(struct builder *b, const yaml_event_t *ev)
{
	struct frame *f;
	int rc;

	if (b->depth == 0)
		return 0;	/* cannot happen with libyaml; be safe */
	f = &b->stack[--b->depth];
	if (f->node->kind == YNODE_MAP && (rc = check_dup_keys(b, f->node)) < 0)
		goto fail;
	if (f->anchor) {
		rc = anchor_set(b, f->anchor, f->node);
		f->anchor = NULL;
		if (rc < 0)
			return rc;
	}
	return attach(b, f->node, f->node->line);
fail:
	free(f->anchor);
	f->anchor = NULL;
	return rc;
}

static int on_alias(struct builder *b, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	unsigned line = (unsigned)ev->start_mark.line + 1;
	struct ynode *n = anchor_get(b, name);
	char pname[80];

	if (!n) {
		printable(pname, sizeof(pname), name, strlen(name));
		set_err(b, line, "unknown alias '*%s'", pname);
		return -EINVAL;
	}
	if (++b->count > YAML_MAX_NODES) {
		set_err(b, line, "more than %d nodes", YAML_MAX_NODES);
		return -EINVAL;
	}
	return attach(b, n, line);
}

static int on_event(struct builder *b, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return on_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		return on_start(b, ev, YNODE_SEQ);
	case YAML_MAPPING_START_EVENT:
		return on_start(b, ev, YNODE_MAP);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return on_end(b, ev);
	case YAML_ALIAS_EVENT:
		return on_alias(b, ev);
	default:
		return 0;
	}
}

static void syntax_error(struct builder *b, const yaml_parser_t *p, const char *data, size_t len)
{
	const char *problem = p->problem ? p->problem : "unknown error";
	unsigned line = (unsigned)p->problem_mark.line + 1;

	if (p->error == YAML_MEMORY_ERROR) {
		set_err(b, line, "out of memory");
		return;
	}
	if (p->error == YAML_READER_ERROR) {	/* the reader reports a byte offset */
		line = 1;
		for (size_t i = 0; i < p->problem_offset && i < len; i++)
			line += data[i] == '\n';
	}
	if (p->context)
		set_err(b, line, "syntax error: %s (%s)", problem, p->context);
	else
		set_err(b, line, "syntax error: %s", problem);
}

static void builder_done(struct builder *b)
{
	for (size_t i = 0; i < b->depth; i++)
		free(b->stack[i].anchor);
	for (size_t i = 0; i < b->capanchors; i++)
		free(b->anchors[i].name);
	free(b->anchors);
}

static int parse(struct builder *b, const char *data, size_t len)
{
	yaml_parser_t p;
	yaml_event_t ev;
	int rc = 0;

	if (!yaml_parser_initialize(&p)) {
		set_err(b, 1, "out of memory");
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
	while (!b->done) {
		if (!yaml_parser_parse(&p, &ev)) {
			syntax_error(b, &p, data, len);
			rc = -EINVAL;
			break;
		}
		rc = on_event(b, &ev);
		bool end = ev.type == YAML_STREAM_END_EVENT || ev.type == YAML_DOCUMENT_END_EVENT;
		yaml_event_delete(&ev);
		if (rc < 0 || end)
			break;
	}
	yaml_parser_delete(&p);
	return rc;
}

int ydoc_load_buffer(const char *name, const char *data, size_t len, struct ydoc **out,
		     char *err, size_t errlen)
{
	struct builder b = { .err = err, .errlen = errlen };
	int rc;

	if (err && errlen)
		err[0] = '\0';
	b.doc = calloc(1, sizeof(*b.doc));
	if (!b.doc)
		return -ENOMEM;
	b.doc->pub.file = strdup(name ? name : "<buffer>");
	if (!b.doc->pub.file) {
		free(b.doc);
		return -ENOMEM;
	}
	if (len > YAML_MAX_FILE) {
		if (err && errlen)
			snprintf(err, errlen, "%s: larger than %u bytes", b.doc->pub.file,
				 YAML_MAX_FILE);
		rc = -EINVAL;
	} else {
		rc = parse(&b, data ? data : "", data ? len : 0);
	}
	builder_done(&b);
	if (rc < 0) {
		ydoc_free(&b.doc->pub);
		return rc == -ENOMEM ? -ENOMEM : -EINVAL;
	}
	*out = &b.doc->pub;
	return 0;
}

/* Reads at most YAML_MAX_FILE + 1 bytes, so an oversized file is detected
 * without reading all of it. */
static int read_file(const char *path, char **data, size_t *len)
{
	size_t cap = 0, n = 0;
	char *p = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int rc = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16384;
			if (ncap > YAML_MAX_FILE + 1)
				ncap = YAML_MAX_FILE + 1;
			if (ncap == cap)
				break;
			char *np = realloc(p, ncap);
			if (!np) {
				rc = -ENOMEM;
				break;
			}
			p = np;
			cap = ncap;
		}
		ssize_t r = read(fd, p + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (rc < 0) {
		free(p);
		return rc;
	}
	*data = p;
	*len = n;
	return 0;
}

int ydoc_load_file(const char *path, struct ydoc **out, char *err, size_t errlen)
{
	char *data = NULL;
	size_t len = 0;
	int rc = read_file(path, &data, &len);

	if (rc < 0) {
		if (err && errlen)
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
		return rc;
	}
	rc = ydoc_load_buffer(path, data, len, out, err, errlen);
	free(data);
	return rc;
}

/* ---- lookups and typed reads ---- */

const struct ynode *ynode_get(const struct ynode *map, const char *key)
{
	size_t klen;

	if (!map || map->kind != YNODE_MAP || !key)
		return NULL;
	klen = strlen(key);
	for (size_t i = 0; i < map->n; i++) {
		const struct ynode *k = map->keys[i];
		if (k->len == klen && memcmp(k->str, key, klen) == 0)
			return map->items[i];
	}
	return NULL;
}

bool ynode_is_null(const struct ynode *n)
{
	if (!n || n->kind != YNODE_SCALAR || !n->plain)
		return false;
	return n->len == 0 || !strcmp(n->str, "~") || !strcmp(n->str, "null") ||
	       !strcmp(n->str, "Null") || !strcmp(n->str, "NULL");
}

const char *ynode_str(const struct ynode *n)
{
	return n && n->kind == YNODE_SCALAR ? n->str : NULL;
}

/* A scalar usable as a number or bool: no embedded NUL, not empty. */
static const char *scalar_text(const struct ynode *n)
{
	if (!n || n->kind != YNODE_SCALAR || n->len == 0 || strlen(n->str) != n->len)
		return NULL;
	return n->str;
}

int ynode_bool(const struct ynode *n, bool *out)
{
	static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "YES",
					   "on", "On", "ON" };
	static const char *const no[] = { "false", "False", "FALSE", "no", "No", "NO",
					  "off", "Off", "OFF" };
	const char *s = scalar_text(n);

	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcmp(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 99;
}

/* Decimal, 0x hex or 0o octal (YAML 1.2 core schema), optional sign. */
int ynode_int(const struct ynode *n, int64_t min, int64_t max, int64_t *out)
{
	const char *s = scalar_text(n);
	bool neg = false;
	uint64_t v = 0, limit;
	unsigned base = 10;

	if (!s)
		return -EINVAL;
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X' || s[1] == 'o')) {
		base = s[1] == 'o' ? 8 : 16;
		s += 2;
	}
	if (!*s)
		return -EINVAL;
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; *s; s++) {
		unsigned d = (unsigned)digit_value(*s);
		if (d >= base)
			return -EINVAL;
		if (v > (limit - d) / base)
			return -EINVAL;
		v = v * base + d;
	}
	int64_t r = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
	if (r < min || r > max)
		return -EINVAL;
	*out = r;
	return 0;
}

int ynode_double(const struct ynode *n, double min, double max, double *out)
{
	const char *s = scalar_text(n);
	locale_t c;
	char *end;
	double v;

	if (!s || !((*s >= '0' && *s <= '9') || *s == '-' || *s == '+' || *s == '.'))
		return -EINVAL;
	c = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	if (!c)
		return -ENOMEM;
	errno = 0;
	v = strtod_l(s, &end, c);
	freelocale(c);
	if (*end || end == s || !isfinite(v) || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}
