/*
 * mapper.c - see mapper.h.
 */
#include "aggr/mapper.h"

#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "aggr/htab.h"
#include "core/buf.h"
#include "core/hash.h"

#define NGROUPS 10

struct cmapping {
	const struct mapper_mapping *m;
	regex_t re;
	bool ok;
};

struct cprofile {
	const struct mapper_profile *p;
	struct cmapping *maps;
};

struct mapper {
	struct cprofile *profiles;
	size_t nprofiles;
	size_t invalid;
	struct htab miss;	/* negative cache: malloc'ed NUL-terminated names */
	size_t miss_bytes;
	struct buf out;		/* scratch: name then tags */
	struct sv *tags;
	size_t *offs;		/* start/end of each tag in out, 2 per tag */
	size_t tags_cap;
	char *namez;		/* NUL-terminated copy of the name for regexec */
	size_t namez_cap;
};

static bool wildcard_valid(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.*-", *s))
			return false;
	return true;
}

/* "^" + pattern with '.' escaped and '*' as a group + "$". */
static int wildcard_to_ere(const char *pat, struct buf *b)
{
	buf_putc(b, '^');
	for (const char *s = pat; *s; s++) {
		if (*s == '.')
			buf_puts(b, "\\.");
		else if (*s == '*')
			buf_puts(b, "([a-zA-Z0-9_-]+)");
		else
			buf_putc(b, *s);
	}
	buf_putc(b, '$');
	buf_putc(b, '\0');
	return b->failed ? -ENOMEM : 0;
}

static int compile(struct mapper *m, struct cmapping *cm)
{
	const struct mapper_mapping *mm = cm->m;
	if (!mm->match || !mm->name)
		return 0;
	if (mm->match_type == MAPPER_MATCH_REGEX) {
		cm->ok = regcomp(&cm->re, mm->match, REG_EXTENDED) == 0;
		return 0;
	}
	if (!wildcard_valid(mm->match))
		return 0;
	struct buf b;
	buf_init(&b);
	if (wildcard_to_ere(mm->match, &b) < 0) {
		buf_done(&b);
		return -ENOMEM;
	}
	cm->ok = regcomp(&cm->re, b.p, REG_EXTENDED) == 0;
	buf_done(&b);
	return 0;
}

struct mapper *mapper_new(const struct mapper_profile *profiles, size_t n)
{
	struct mapper *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	htab_init(&m->miss);
	buf_init(&m->out);
	m->profiles = calloc(n ? n : 1, sizeof(*m->profiles));
	if (!m->profiles)
		goto fail;
	m->nprofiles = n;
	for (size_t i = 0; i < n; i++) {
		struct cprofile *cp = &m->profiles[i];
		cp->p = &profiles[i];
		cp->maps = calloc(cp->p->nmappings ? cp->p->nmappings : 1, sizeof(*cp->maps));
		if (!cp->maps)
			goto fail;
		for (size_t j = 0; j < cp->p->nmappings; j++) {
			cp->maps[j].m = &cp->p->mappings[j];
			if (compile(m, &cp->maps[j]) < 0)
				goto fail;
			m->invalid += !cp->maps[j].ok;
		}
	}
	return m;
fail:
	mapper_free(m);
	return NULL;
}

static void miss_clear(struct mapper *m)
{
	for (size_t i = 0; i < m->miss.cap; i++)
		free(m->miss.s[i].p);
	htab_done(&m->miss);
	m->miss_bytes = 0;
}

void mapper_free(struct mapper *m)
{
	if (!m)
		return;
	for (size_t i = 0; m->profiles && i < m->nprofiles; i++) {
		struct cprofile *cp = &m->profiles[i];
		for (size_t j = 0; cp->maps && j < cp->p->nmappings; j++)
			if (cp->maps[j].ok)
				regfree(&cp->maps[j].re);
		free(cp->maps);
	}
	free(m->profiles);
	miss_clear(m);
	buf_done(&m->out);
	free(m->tags);
	free(m->offs);
	free(m->namez);
	free(m);
}

size_t mapper_invalid(const struct mapper *m)
{
	return m ? m->invalid : 0;
}

size_t mapper_bytes(const struct mapper *m)
{
	return m ? sizeof(*m) + htab_bytes(&m->miss) + m->miss_bytes + m->out.cap : 0;
}

/* Appends tmpl with $N / ${N} / $$ expanded against the groups of subject. */
static void expand(struct buf *b, const char *tmpl, const char *subject, const regmatch_t *g)
{
	size_t start = b->len;
	for (const char *t = tmpl; *t; t++) {
		if (*t != '$') {
			buf_putc(b, *t);
			continue;
		}
		if (t[1] == '$') {
			buf_putc(b, '$');
			t++;
			continue;
		}
		bool brace = t[1] == '{';
		const char *d = t + 1 + brace;
		if (*d < '0' || *d > '9') {
			buf_putc(b, '$');
			continue;
		}
		unsigned idx = 0;
		while (*d >= '0' && *d <= '9') {
			idx = idx < 1000 ? idx * 10 + (unsigned)(*d - '0') : idx;
			d++;
		}
		if (brace && *d != '}') {
			buf_putc(b, '$');
			continue;
		}
		if (idx < NGROUPS && g[idx].rm_so >= 0)
			buf_append(b, subject + g[idx].rm_so, (size_t)(g[idx].rm_eo - g[idx].rm_so));
		t = brace ? d : d - 1;
	}
	if (b->len - start > MAPPER_MAX_OUT)
		b->len = start + MAPPER_MAX_OUT;
}

static int build(struct mapper *m, const struct cmapping *cm, const regmatch_t *g,
		 struct mapper_result *out)
{
	const struct mapper_mapping *mm = cm->m;
	if (m->tags_cap < mm->ntags) {
		struct sv *nt = realloc(m->tags, mm->ntags * sizeof(*nt));
		if (!nt)
			return -ENOMEM;
		m->tags = nt;
		size_t *no = realloc(m->offs, 2 * mm->ntags * sizeof(*no));
		if (!no)
			return -ENOMEM;
		m->offs = no;
		m->tags_cap = mm->ntags;
	}
	buf_reset(&m->out);
	m->out.failed = false;
	size_t *ends = m->offs; /* the buffer may move: views are made at the end */
	expand(&m->out, mm->name, m->namez, g);
	size_t name_end = m->out.len;
	for (size_t i = 0; i < mm->ntags; i++) {
		size_t st = m->out.len;
		buf_puts(&m->out, mm->tag_keys[i]);
		buf_putc(&m->out, ':');
		expand(&m->out, mm->tag_values[i], m->namez, g);
		if (m->out.len - st > MAPPER_MAX_OUT)
			m->out.len = st + MAPPER_MAX_OUT;
		ends[2 * i] = st;
		ends[2 * i + 1] = m->out.len;
	}
	if (m->out.failed)
		return -ENOMEM;
	for (size_t i = 0; i < mm->ntags; i++) {
		size_t st = ends[2 * i], en = ends[2 * i + 1];
		m->tags[i] = (struct sv){ m->out.p + st, en - st };
	}
	out->name = (struct sv){ m->out.p, name_end };
	out->tags = m->tags;
	out->ntags = mm->ntags;
	return 1;
}

static bool miss_eq(const void *item, const void *key)
{
	const struct sv *k = key;
	return strlen(item) == k->n && memcmp(item, k->p, k->n) == 0;
}

static void miss_add(struct mapper *m, struct sv name, uint64_t h)
{
	if (m->miss.n >= MAPPER_CACHE_MAX)
		miss_clear(m);
	char *s = malloc(name.n + 1);
	if (!s)
		return;
	memcpy(s, name.p, name.n);
	s[name.n] = '\0';
	if (htab_insert(&m->miss, h, s) < 0) {
		free(s);
		return;
	}
	m->miss_bytes += name.n + 1;
}

static bool prefix_ok(const char *prefix, struct sv name)
{
	if (!prefix || !*prefix || strcmp(prefix, "*") == 0)
		return true;
	return sv_starts_with(name, sv_from_cstr(prefix));
}

int mapper_map(struct mapper *m, struct sv name, struct mapper_result *out)
{
	if (!m || !m->nprofiles)
		return 0;
	uint64_t h = hash64(name.p, name.n);
	if (htab_find(&m->miss, h, miss_eq, &name))
		return 0;
	if (m->namez_cap < name.n + 1) {
		char *nz = realloc(m->namez, name.n + 1);
		if (!nz)
			return -ENOMEM;
		m->namez = nz;
		m->namez_cap = name.n + 1;
	}
	if (name.n)
		memcpy(m->namez, name.p, name.n);
	m->namez[name.n] = '\0';
	if (name.n && memchr(name.p, 0, name.n))
		return 0; /* regexec cannot see past a NUL; the parser rejects them anyway */
	for (size_t i = 0; i < m->nprofiles; i++) {
		const struct cprofile *cp = &m->profiles[i];
		if (!prefix_ok(cp->p->prefix, name))
			continue;
		for (size_t j = 0; j < cp->p->nmappings; j++) {
			regmatch_t g[NGROUPS];
			if (!cp->maps[j].ok || regexec(&cp->maps[j].re, m->namez, NGROUPS, g, 0) != 0)
				continue;
			return build(m, &cp->maps[j], g, out);
		}
	}
	miss_add(m, name, h);
	return 0;
}
