/*
 * config_int.h - private to agent/config/: the load context shared by
 * config.c (key table, defaults, load), config_read.c (reporting and typed
 * readers) and config_mapper.c (dogstatsd_mapper_profiles).
 *
 * Readers report "file:line: key: message" through the context's diag and
 * return 0, -EINVAL (reported) or -ENOMEM. A reader replaces its output only
 * on success, freeing the previous value.
 * Threading: one context per load, one thread.
 */
#ifndef DDMA_CONFIG_CONFIG_INT_H
#define DDMA_CONFIG_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "yamldoc/yamldoc.h"

#define CFG_MAX_STRING 4096	/* bytes of any string value (paths, URLs, tags) */
#define CFG_MAX_LIST 1024	/* items of tags, dogstatsd_tags, blacklists, bind_host */
#define CFG_MAX_MESSAGES 100	/* printed per load; more are counted only */

struct ctx {
	struct agent_config *cfg;	/* the copy being filled */
	struct config_diag *diag;
	const char *file;
	unsigned printed;
	char **tags[2];			/* tags, dogstatsd_tags: joined at the end */
	size_t ntags[2];
	bool key_file_check;		/* api_key_file_permissions_check */
	size_t nmappings;		/* over all mapper profiles */
};

/* Counts and prints (or logs, without a report callback) one message. */
void cfg_emit(struct ctx *c, bool is_error, const char *msg);
/* "file:line: key: message"; n NULL means "environment: key: message". */
void cfg_report(struct ctx *c, bool is_error, const struct ynode *n, const char *key,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* "file:line: parent.key: unknown key, ignored" (warning). */
void cfg_unknown_key(struct ctx *c, const char *parent, const struct ynode *k);
/* A bounded (64 bytes), printable copy of user text for messages; returns out. */
const char *cfg_shown(char *out, size_t outlen, const char *s, size_t n);

/* snprintf for key paths ("a.b[3].c"): truncation is acceptable there. */
void cfg_path(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

int cfg_set_str(char **dst, const char *s);	/* 0 or -ENOMEM */
void cfg_strv_free(char **v, size_t n);		/* accepts NULL */

int cfg_get_str(struct ctx *c, const char *key, const struct ynode *n, char **out);
int cfg_get_int(struct ctx *c, const char *key, const struct ynode *n, int64_t lo, int64_t hi,
		int64_t *out);
int cfg_get_double(struct ctx *c, const char *key, const struct ynode *n, double lo, double hi,
		   double *out);
int cfg_get_bool(struct ctx *c, const char *key, const struct ynode *n, bool *out);
/* n is a list of at most max items (what: "a list of strings"); else reported, -EINVAL. */
int cfg_check_list(struct ctx *c, const char *key, const struct ynode *n, size_t max,
		   const char *what);
/* How cfg_get_list reads a list: at most max items (what: "a list of
 * strings", for the message), each of size bytes, read by read(); free()
 * releases an array of n items of which those not read are zero. */
struct cfg_list {
	size_t max;
	const char *what;
	size_t size;
	int (*read)(struct ctx *c, const char *path, const struct ynode *n, void *item);
	void (*free)(void *v, size_t n);
};
/* Reads every item of list n ("key[i]" in messages) into a new array, set
 * in *out (n->n items) when all are read; else the array is freed and the
 * first error returned (-ENOMEM first of all). */
int cfg_get_list(struct ctx *c, const char *key, const struct ynode *n,
		 const struct cfg_list *spec, void **out);
/* A list of at most max strings; replaces *out on success. */
int cfg_get_strlist(struct ctx *c, const char *key, const struct ynode *n, size_t max,
		    char ***out, size_t *nout);
/* The index of the scalar in names[], or -EINVAL (reported, listing `expected`). */
int cfg_get_enum(struct ctx *c, const char *key, const struct ynode *n,
		 const char *const *names, size_t nnames, const char *expected);

/* Applies every top-level key of root (a map) through the key table
 * (config_keys.c); 0, or -ENOMEM. Problems are reported, not returned. */
int cfg_walk(struct ctx *c, const struct ynode *root);
/* A domain name such as datadoghq.eu (letters, digits, '.', '-'). */
bool cfg_valid_site(const char *s);
/* http:// or https:// followed by a host, optionally user@ and :port (config_check.c). */
bool cfg_valid_url(const char *s);
/* Reports values start-up cannot use that need no file system access: a Unix
 * socket path too long for sockaddr_un (config_check.c). */
void cfg_check_values(struct ctx *c, const struct ynode *root);

/* dogstatsd_mapper_profiles -> cfg->aggr.mapper_profiles (config_mapper.c). */
int cfg_mapper_profiles(struct ctx *c, const char *key, const struct ynode *n);
void cfg_mapper_free(struct mapper_profile *p, size_t n);

/* additional_endpoints, remote_write, remote_write_counters (config_endpoints.c). */
int cfg_additional_endpoints(struct ctx *c, const char *key, const struct ynode *n);
int cfg_remote_write(struct ctx *c, const char *key, const struct ynode *n);
int cfg_rw_counters(struct ctx *c, const char *key, const struct ynode *n);
void cfg_remote_write_free(struct remote_write_config *v, size_t n);
void cfg_endpoints_free(struct fwd_config *f);

#endif
