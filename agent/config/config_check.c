/*
 * config_check.c - checks of values against what start-up needs, so that
 * anything that would make the agent fail to start is a config error (exit
 * 78 at start, reported by --check-config) rather than a start-up failure
 * or a silent misbehaviour. At load (pure): URLs with a host, a Unix socket
 * path that fits sockaddr_un. Against the file system, only at start and in
 * --check-config (config_check_startup): a writable disk queue directory,
 * and explicitly configured alert paths that exist.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config/config_int.h"

/* http:// or https://, then a host (an optional user@ and :port around it). */
bool cfg_valid_url(const char *s)
{
	const char *p = !strncmp(s, "http://", 7) ? s + 7 : !strncmp(s, "https://", 8) ? s + 8 : NULL;
	if (!p)
		return false;
	size_t n = strcspn(p, "/?#");
	const char *at = memchr(p, '@', n);
	if (at) {
		n -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	size_t host = n;
	if (n && p[0] == '[') {
		const char *close = memchr(p, ']', n);
		host = close ? (size_t)(close - p) + 1 : 0;
		if (host < 3)
			return false;
	} else {
		const char *colon = memchr(p, ':', n);
		if (colon)
			host = (size_t)(colon - p);
	}
	if (!host)
		return false;
	for (size_t i = 0; i < host; i++)
		if (isspace((unsigned char)p[i]) || (unsigned char)p[i] < 0x20)
			return false;
	if (host == n)
		return true;
	if (p[host] != ':' || host + 1 == n)
		return false;
	long port = 0;
	for (size_t i = host + 1; i < n; i++) {
		if (!isdigit((unsigned char)p[i]) || (port = port * 10 + (p[i] - '0')) > 65535)
			return false;
	}
	return port > 0;
}

/* 0 when dir exists as a writable directory or could be created (its
 * nearest existing ancestor is a writable directory), else an errno. */
static int dir_writable(const char *dir)
{
	char tmp[CFG_MAX_STRING + 1];
	struct stat st;
	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (;;) {
		if (stat(tmp, &st) == 0) {
			if (!S_ISDIR(st.st_mode))
				return ENOTDIR;
			return access(tmp, W_OK | X_OK) == 0 ? 0 : errno;
		}
		if (errno != ENOENT)
			return errno;
		char *slash = strrchr(tmp, '/');
		if (!slash)
			return access(".", W_OK | X_OK) == 0 ? 0 : errno;
		if (slash == tmp) {
			tmp[1] = '\0';
			if (stat(tmp, &st) < 0)
				return errno;
			return access(tmp, W_OK | X_OK) == 0 ? 0 : errno;
		}
		*slash = '\0';
	}
}

static const struct ynode *set_key(const struct ynode *root, const char *key)
{
	const struct ynode *n = root ? ynode_get(root, key) : NULL;
	return n && !ynode_is_null(n) ? n : NULL;
}

/* An explicitly configured path that must exist (a directory or a file). */
static void check_exists(struct ctx *c, const struct ynode *root, const char *key, const char *path,
			 bool want_dir)
{
	const struct ynode *n = set_key(root, key);
	struct stat st;
	if (!n || !path || !*path)
		return;
	if (stat(path, &st) < 0)
		cfg_report(c, true, n, key, "%s: %s", path, strerror(errno));
	else if (want_dir && !S_ISDIR(st.st_mode))
		cfg_report(c, true, n, key, "%s is not a directory", path);
	else if (!want_dir && !S_ISREG(st.st_mode))
		cfg_report(c, true, n, key, "%s is not a regular file", path);
}

void cfg_check_values(struct ctx *c, const struct ynode *root)
{
	size_t max_sock = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	size_t sl = strlen(c->cfg->net.socket_path);
	if (sl > max_sock)
		cfg_report(c, true, set_key(root, "dogstatsd_socket"), "dogstatsd_socket",
			   "path is %zu bytes, a Unix socket path can have at most %zu", sl, max_sock);
}

int config_check_startup(const struct agent_config *cfg_in, struct config_diag *diag)
{
	struct config_diag local = { 0 };
	struct agent_config *cfg = (struct agent_config *)cfg_in; /* read only here */
	struct ctx cx = { .cfg = cfg, .diag = diag ? diag : &local, .file = cfg->path };
	struct ctx *c = &cx;
	const struct ynode *root = cfg->doc && cfg->doc->root && cfg->doc->root->kind == YNODE_MAP
				   ? cfg->doc->root : NULL;
	unsigned errors = c->diag->errors;
	const struct ynode *n;
	if (cfg->fwd.storage_max_bytes && (n = set_key(root, "forwarder_storage_path"))) {
		int e = dir_writable(cfg->fwd.storage_path);
		if (e)
			cfg_report(c, true, n, "forwarder_storage_path",
				   "%s cannot be used for the disk queue: %s", cfg->fwd.storage_path,
				   strerror(e));
	}
	check_exists(c, root, "alerts_dir", cfg->alerts_dir, true);
	check_exists(c, root, "notifiers_file", cfg->notifiers_file, false);
	return c->diag->errors != errors ? -EINVAL : 0;
}
