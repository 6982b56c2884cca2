/*
 * fuzz_config.c - libFuzzer harness for the config loader: arbitrary bytes
 * through config_load_buffer (libyaml events -> ydoc -> every key handler),
 * then config_free. Messages go to a sink that only counts them, and the
 * result must be consistent: 0 means no error was reported, -EINVAL means at
 * least one was and the struct was left zeroed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void sink(void *ctx, bool is_error, const char *msg)
{
	size_t *total = ctx;

	*total += strlen(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t total = 0;
	struct config_diag diag = { .report = sink, .ctx = &total };
	struct agent_config cfg;
	int rc = config_load_buffer("fuzz.yaml", (const char *)data, size, &cfg, &diag);

	if (rc == 0 && (diag.errors != 0 || !cfg.path || !cfg.fwd.dd_url))
		abort();
	if (rc == -EINVAL && (diag.errors == 0 || cfg.path))
		abort();
	if (rc != 0 && rc != -EINVAL && rc != -ENOMEM)
		abort();
	config_free(&cfg);
	return 0;
}
