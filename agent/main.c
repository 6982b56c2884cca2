/*
 * main.c - command line: run the daemon, or one of the subcommands.
 *
 *   dd-mini-agent [--config PATH]              run in the foreground
 *   dd-mini-agent --check-config [--config P]  validate, exit 0 or 78 (EX_CONFIG)
 *   dd-mini-agent check-config [--config P]    same
 *   dd-mini-agent status [--config P]          print the running agent's summary
 *   dd-mini-agent reload [--config P] [--pid N] check the config, then SIGHUP the agent
 *   dd-mini-agent --version | --help
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "config/config.h"
#include "alert/alert.h"
#include "core/log.h"
#include "ddma_config.h"
#include "notify/notify.h"
#include "parse/keyhash.h"
#include "status/status.h"

#define EX_CONFIG_ 78

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: dd-mini-agent [--config PATH]            run the agent in the foreground\n"
		"       dd-mini-agent --check-config [--config PATH]\n"
		"                                                validate the configuration (exit 0 or 78)\n"
		"       dd-mini-agent status [--config PATH]     summary of the running agent\n"
		"       dd-mini-agent reload [--config PATH] [--pid PID]\n"
		"                                                check the configuration, then make the agent\n"
		"                                                PID (default: $MAINPID) reload it (SIGHUP)\n"
		"       dd-mini-agent test-rules RULES FIXTURE   replay a series fixture through alert rules\n"
		"       dd-mini-agent --version | --help\n"
		"\n"
		"Default config: %s/agent.yaml\n"
		"Logs go to stderr unless log_file is set. SIGHUP reloads, SIGTERM stops.\n",
		DDMA_SYSCONFDIR);
}

static void diag_print(void *ctx, bool is_error, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "%s: %s\n", is_error ? "error" : "warning", msg);
}

static int check_config(const char *path)
{
	struct agent_config cfg;
	struct config_diag diag = { diag_print, NULL, 0, 0 };
	int rc = config_load(path, &cfg, &diag);
	if (rc < 0) {
		fprintf(stderr, "%s: configuration is invalid (%u error%s)\n", path, diag.errors,
			diag.errors == 1 ? "" : "s");
		return EX_CONFIG_;
	}
	if (config_check_startup(&cfg, &diag) < 0) {
		fprintf(stderr, "%s: configuration cannot be used to start (%u error%s)\n", path,
			diag.errors, diag.errors == 1 ? "" : "s");
		config_free(&cfg);
		return EX_CONFIG_;
	}
	printf("%s: configuration OK (%u warning%s)\n", path, diag.warnings, diag.warnings == 1 ? "" : "s");
	/* Alert rules and notifiers are part of the configuration. */
	struct notify_sources src;
	agent_notify_sources(&cfg, &src);
	rc = notify_cli_check(&src, stdout);
	config_free(&cfg);
	return rc ? EX_CONFIG_ : 0;
}

static int run_status(const char *path)
{
	struct agent_config cfg;
	struct config_diag diag = { diag_print, NULL, 0, 0 };
	if (config_load(path, &cfg, &diag) < 0)
		return EX_CONFIG_;
	if (cfg.status.port <= 0) {
		fprintf(stderr, "%s: status_port is 0: the status endpoint is off\n", path);
		config_free(&cfg);
		return 1;
	}
	int rc = status_cli(cfg.status.host, cfg.status.port, "/status?format=text");
	config_free(&cfg);
	return rc;
}

/* What ExecReload= runs, so that a reload needs nothing but the daemon (a
 * minimal system has no /bin/kill). A configuration that does not pass
 * check-config fails the reload here, with the reasons, and the running
 * agent is left alone; otherwise the agent gets SIGHUP. The pid comes from
 * --pid or $MAINPID, which systemd sets for ExecReload=. */
static int run_reload(const char *path, const char *pid_arg)
{
	const char *from = pid_arg ? "--pid" : "$MAINPID";
	const char *s = pid_arg ? pid_arg : getenv("MAINPID");
	if (!s || !*s) {
		fprintf(stderr, "dd-mini-agent reload: no pid: give --pid PID (systemctl reload sets $MAINPID)\n");
		return 64;
	}
	char *end;
	errno = 0;
	long pid = strtol(s, &end, 10);
	if (errno || *end || pid <= 1) {
		fprintf(stderr, "dd-mini-agent reload: %s '%s' is not a process id\n", from, s);
		return 64;
	}
	if (check_config(path) != 0) {
		fprintf(stderr, "dd-mini-agent reload: not reloading; the agent keeps its running configuration\n");
		return EX_CONFIG_;
	}
	if (kill((pid_t)pid, SIGHUP) < 0) {
		fprintf(stderr, "dd-mini-agent reload: signalling pid %ld: %s\n", pid, strerror(errno));
		return 1;
	}
	printf("dd-mini-agent reload: pid %ld asked to reload %s\n", pid, path);
	return 0;
}

static int run_agent(const char *path)
{
	struct agent_config *cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return 1;
	if (config_load(path, cfg, NULL) < 0) {
		free(cfg);
		log_error("%s: configuration is invalid; not starting", path);
		return EX_CONFIG_;
	}
	if (config_check_startup(cfg, NULL) < 0) {
		config_free(cfg);
		free(cfg);
		log_error("%s: configuration cannot be used; not starting", path);
		return EX_CONFIG_;
	}
	int lvl = log_level_parse(cfg->log_level);
	if (log_setup(lvl < 0 ? LOG_LVL_INFO : (enum log_level)lvl, cfg->log_file) < 0)
		log_error("log_file %s: %s; logging to stderr", cfg->log_file, strerror(errno));
	/* before any receive thread: the seen-line cache's key seed */
	if (dsd_key_seed_random() < 0)
		log_warn("getrandom: the kernel's pool is not ready; seen-line cache keys seeded from the clock");
	int rc = 0;
	struct agent *a = agent_new(cfg, &rc);
	if (!a)
		return rc;
	rc = agent_run(a);
	agent_free(a);
	log_close();
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'k' },
		{ "pid", required_argument, NULL, 'p' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = DDMA_SYSCONFDIR "/agent.yaml";
	const char *pid = NULL;
	bool check = false;
	int c;
	while ((c = getopt_long(argc, argv, "c:kp:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'p':
			pid = optarg;
			break;
		case 'V':
			printf("dd-mini-agent %s\n", DDMA_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	const char *cmd = optind < argc ? argv[optind] : NULL;
	if (check || (cmd && strcmp(cmd, "check-config") == 0))
		return check_config(config);
	if (cmd && strcmp(cmd, "status") == 0)
		return run_status(config);
	if (cmd && strcmp(cmd, "reload") == 0)
		return run_reload(config, pid);
	if (cmd && strcmp(cmd, "test-rules") == 0) {
		if (argc - optind != 3) {
			fprintf(stderr, "usage: dd-mini-agent test-rules RULES FIXTURE\n");
			return 64;
		}
		return alert_cli_test_rules(argv[optind + 1], argv[optind + 2], stdout);
	}
	if (cmd) {
		fprintf(stderr, "dd-mini-agent: unknown command '%s'\n", cmd);
		usage(stderr);
		return 64;
	}
	return run_agent(config);
}
