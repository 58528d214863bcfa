/* cmd_info.c: `transmute info MODEL`. */
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char info_help[] =
    "Usage: transmute info [OPTIONS] MODEL\n"
    "\n"
    "Loads MODEL (a safetensors file) on the CPU backend, checks it, and prints\n"
    "its architecture, input and output channels, the scale (output side /\n"
    "input side) and the value ranges the image's 0..1 maps onto in and out,\n"
    "the multiple image sides are padded to, every metadata entry (the\n"
    "hyper-parameters), the number of learned parameters and tensors, and the\n"
    "file size.\n"
    "\n"
    "Options:\n"
    "  -v, --verbose   also print the library's informational messages\n"
    "  -h, --help      show this help\n";

/* 1234567 -> "1,234,567" */
static const char *group_digits(uint64_t v, char *buf, size_t len)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
    size_t o = 0;
    for (int i = 0; i < n && o + 2 < len; i++) {
        if (i && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

/* One line per dataset (or one line) of domain names, and the label size. */
static void print_domains(const struct tm_model_info *mi)
{
    if (!mi->label_size)
        return;
    for (int g = 0; g < (mi->n_groups ? mi->n_groups : 1); g++) {
        printf(g ? "               " : "domains:       ");
        if (mi->n_groups)
            printf("%s: ", mi->groups[g]);
        for (int i = 0, first = 1; i < mi->n_domains; i++) {
            if (mi->n_groups && mi->domain_group[i] != g)
                continue;
            printf(first ? "%s" : ", %s", mi->domains[i]);
            first = 0;
        }
        printf("\n");
    }
    printf("label size:    %d%s\n", mi->label_size,
           mi->n_groups ? " (domains, then a one-hot dataset mask)" : "");
}

int cmd_info(int argc, char **argv)
{
    static const struct option opts[] = {
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int verbose = 0;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":vh", opts, NULL)) != -1) {
        switch (c) {
        case 'v': verbose++; break;
        case 'h': fputs(info_help, stdout); return EXIT_OK;
        default:
            if (optopt)
                cli_usage_error("info", "unknown option '-%c'", optopt);
            cli_usage_error("info", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1)
        cli_usage_error("info", argc - optind == 0 ? "no model file given"
                                                  : "give exactly one model file");
    const char *path = argv[optind];

    struct cli_log lg = {cli_log_level(verbose, false), NULL};
    struct tm_ctx_params p = {
        .device = "cpu",
        .log = cli_log_fn,
        .log_priv = &lg,
        .log_level = lg.level,
    };
    tm_ctx *ctx = NULL;
    char err[512];
    if (tm_ctx_create(&p, &ctx, err, sizeof err) != TM_OK) {
        cli_err("%s", err);
        return EXIT_FAIL;
    }
    tm_model *m = NULL;
    if (tm_model_load(ctx, path, &m) != TM_OK) {
        cli_err("%s", tm_ctx_error(ctx));
        tm_ctx_destroy(&ctx);
        return EXIT_FAIL;
    }
    const struct tm_model_info *mi = tm_model_info(m);
    char b1[64], b2[64];
    printf("file:          %s\n", path);
    if (mi->file_size < 1024)
        printf("file size:     %" PRIu64 " bytes\n", mi->file_size);
    else
        printf("file size:     %s (%" PRIu64 " bytes)\n",
               cli_human_bytes(mi->file_size, b1, sizeof b1), mi->file_size);
    printf("architecture:  %s\n", mi->arch ? mi->arch : "?");
    printf("channels:      %d in, %d out\n", mi->input_nc, mi->output_nc);
    /* How an image maps onto the network: 0..1 pixels onto in_lo..in_hi,
     * out_lo..out_hi back onto 0..1, and the size times scale. */
    printf("scale:         %dx, values %g..%g in, %g..%g out\n", mi->scale, (double)mi->in_lo,
           (double)mi->in_hi, (double)mi->out_lo, (double)mi->out_hi);
    printf("pad multiple:  %d\n", mi->pad_multiple);
    printf("parameters:    %s\n", group_digits(mi->n_params, b2, sizeof b2));
    printf("tensors:       %d\n", mi->n_tensors);
    print_domains(mi);
    printf("metadata:\n");
    const char *k, *v;
    int n = 0;
    for (int i = 0; tm_model_meta_at(m, i, &k, &v); i++, n++)
        printf("  %s = %s\n", k, v);
    if (n == 0)
        printf("  (none)\n");
    tm_model_destroy(&m);
    tm_ctx_destroy(&ctx);
    return EXIT_OK;
}
