/*
 * yamldoc.h - a small YAML document tree with line numbers, built with
 * libyaml's event API. The only libyaml user in the agent. config/ reads
 * agent.yaml through it, alert/ rule files, notify/ notifier files. Named
 * yamldoc.h so that it never shadows libyaml's <yaml.h>.
 *
 * Hostile-input caps: nesting depth (64), node count (100000), scalar length
 * (1 MiB), file size (16 MiB). Aliases are resolved by reference (never
 * expanded copies), so "billion laughs" costs nothing; an alias to an unknown
 * anchor is an error. Multiple documents: only the first is read.
 *
 * Ownership: a ydoc owns every node and string in it; ydoc_free releases all.
 */
#ifndef DDMA_YAMLDOC_YAMLDOC_H
#define DDMA_YAMLDOC_YAMLDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ynode_kind { YNODE_SCALAR, YNODE_SEQ, YNODE_MAP };

struct ynode {
	enum ynode_kind kind;
	unsigned line;		/* 1-based */
	unsigned col;		/* 1-based */
	/* YNODE_SCALAR */
	char *str;		/* NUL-terminated (may also contain NULs: use len) */
	size_t len;
	bool plain;		/* unquoted: `true`, `null`, `~` keep their YAML meaning */
	/* YNODE_SEQ: items[0..n); YNODE_MAP: keys[i] -> items[i] */
	struct ynode **items;
	struct ynode **keys;
	size_t n;
};

struct ydoc {
	char *file;		/* name used in messages */
	struct ynode *root;	/* NULL for an empty document */
};

/* Loads a file / a buffer. On failure returns -EINVAL (or -errno for I/O) and
 * writes "file:line: message" into err. */
int ydoc_load_file(const char *path, struct ydoc **out, char *err, size_t errlen);
int ydoc_load_buffer(const char *name, const char *data, size_t len, struct ydoc **out,
		     char *err, size_t errlen);
void ydoc_free(struct ydoc *doc); /* accepts NULL */

/* Map lookup by key (NULL if absent or map is not a map). */
const struct ynode *ynode_get(const struct ynode *map, const char *key);
/* True for a plain null scalar (`~`, `null`, empty). */
bool ynode_is_null(const struct ynode *n);

/* Typed reads of a scalar. 0 on success, -EINVAL when the node has the wrong
 * type or is out of range; the caller formats "file:line: key: ..." from
 * n->line. Numbers parse locale-independently. */
int ynode_bool(const struct ynode *n, bool *out);
int ynode_int(const struct ynode *n, int64_t min, int64_t max, int64_t *out);
int ynode_double(const struct ynode *n, double min, double max, double *out);
/* Returns the scalar string (borrowed), NULL if not a scalar. */
const char *ynode_str(const struct ynode *n);

#endif
