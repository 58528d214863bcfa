/*
 * cli.h: shared declarations of the transmute command-line tool.
 * Only code under tools/ may exit the process.
 */
#ifndef TRANSMUTE_CLI_H
#define TRANSMUTE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "transmute.h"

#ifndef TRANSMUTE_VERSION
#define TRANSMUTE_VERSION "unknown"
#endif

/* Exit codes of the tool. */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,       /* a file or the model failed */
    EXIT_USAGE = 2,      /* bad command line */
    EXIT_VALIDATION = 3, /* TRANSMUTE_VALIDATE=1 and the Vulkan validation layer spoke */
    EXIT_CANCELLED = 130,
};

/* Allocation wrappers: print "transmute: out of memory at file:line" and exit. */
void *xmalloc_at(size_t n, const char *file, int line);
void *xcalloc_at(size_t n, size_t size, const char *file, int line);
char *xstrdup_at(const char *s, const char *file, int line);
#define xmalloc(n) xmalloc_at((n), __FILE__, __LINE__)
#define xcalloc(n, s) xcalloc_at((n), (s), __FILE__, __LINE__)
#define xstrdup(s) xstrdup_at((s), __FILE__, __LINE__)

/* "transmute: " + message + newline on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Usage error: "transmute CMD: message" + "Try 'transmute CMD --help'.", exit 2. */
_Noreturn void cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The log callback handed to the core; priv points to a struct cli_log. */
struct cli_log {
    tm_log_level level;  /* highest level printed */
    bool *line_open;     /* a \r progress line is on screen: clear it first (may be NULL) */
};
void cli_log_fn(void *priv, tm_log_level level, const char *msg);

/* Verbosity from -v/-q counts: TM_LOG_WARN by default. */
tm_log_level cli_log_level(int verbose, bool quiet);

/* true when TRANSMUTE_VALIDATE is set to something other than "" or "0". */
bool cli_validate_env(void);

/* When validation is on and ctx saw validation messages: prints an error and
 * returns EXIT_VALIDATION, else returns rc unchanged. */
int cli_validation_exit(const tm_ctx *ctx, int rc);

/* Parses a decimal integer in [lo, hi]; false on junk or out of range. */
bool cli_parse_int(const char *s, long lo, long hi, long *out);

/* "12.3 KiB" style, into buf. */
const char *cli_human_bytes(unsigned long long n, char *buf, size_t len);

/* Subcommands: argv[0] is the subcommand name. */
int cmd_translate(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_convert(int argc, char **argv);

#endif
