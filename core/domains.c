/* domains.c: parsing a StarGAN model's domain list and building its labels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domains.h"
#include "model.h"

#define MAX_NAME 64

/* Splits a comma-separated list in place: trims spaces, rejects empty
 * items. Returns the count, or -1 with a message. */
static int split(char *s, const char **items, int max, const char *what, char *err, size_t errlen)
{
    int n = 0;
    for (char *p = s;; n++) {
        char *end = strchr(p, ',');
        if (end)
            *end = '\0';
        while (*p == ' ')
            p++;
        size_t len = strlen(p);
        while (len && p[len - 1] == ' ')
            p[--len] = '\0';
        if (!len || len > MAX_NAME) {
            snprintf(err, errlen, "%s item %d is %s", what, n + 1, len ? "longer than 64 characters" : "empty");
            return -1;
        }
        if (n == max) {
            snprintf(err, errlen, "%s has more than %d items", what, max);
            return -1;
        }
        items[n] = p;
        if (!end)
            return n + 1;
        p = end + 1;
    }
}

static int unique(const char **names, int n, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(names[i], names[j])) {
                snprintf(err, errlen, "domain '%s' is listed twice", names[i]);
                return 0;
            }
    return 1;
}

/* "Name:count,..." into group names and each domain's group index. */
static tm_status parse_groups(struct tm_domains *d, char *spec, char *err, size_t errlen)
{
    const char *items[TM_MAX_GROUPS];
    int ng = split(spec, items, TM_MAX_GROUPS, "metadata domain_groups", err, errlen);
    if (ng < 0)
        return TM_ERR_FORMAT;
    d->groups = calloc((size_t)ng, sizeof *d->groups);
    d->group = calloc((size_t)d->n, sizeof *d->group);
    if (!d->groups || !d->group) {
        snprintf(err, errlen, "out of memory");
        return TM_ERR_NOMEM;
    }
    int next = 0;
    for (int g = 0; g < ng; g++) {
        char *colon = strrchr(items[g], ':');
        char *end = NULL;
        long count = colon ? strtol(colon + 1, &end, 10) : 0;
        if (!colon || colon == items[g] || end == colon + 1 || *end || count < 1 || count > d->n - next) {
            snprintf(err, errlen, "metadata domain_groups item '%s' is not NAME:COUNT within the %d domains",
                     items[g], d->n);
            return TM_ERR_FORMAT;
        }
        *colon = '\0';
        d->groups[g] = items[g];
        for (long i = 0; i < count; i++)
            d->group[next++] = g;
    }
    if (next != d->n) {
        snprintf(err, errlen, "metadata domain_groups covers %d of the %d domains", next, d->n);
        return TM_ERR_FORMAT;
    }
    d->n_groups = ng;
    return TM_OK;
}

tm_status tm_domains_parse(const char *domains, const char *groups, struct tm_domains *d,
                           char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    size_t dl = strlen(domains), gl = groups ? strlen(groups) : 0;
    d->buf = malloc(dl + gl + 2);
    d->names = calloc(TM_MAX_DOMAINS, sizeof *d->names);
    tm_status s = TM_OK;
    if (!d->buf || !d->names) {
        snprintf(err, errlen, "out of memory");
        s = TM_ERR_NOMEM;
        goto done;
    }
    memcpy(d->buf, domains, dl + 1);
    d->n = split(d->buf, d->names, TM_MAX_DOMAINS, "metadata domains", err, errlen);
    if (d->n < 0 || !unique(d->names, d->n, err, errlen)) {
        s = TM_ERR_FORMAT;
        goto done;
    }
    if (groups) {
        char *g = d->buf + dl + 1;
        memcpy(g, groups, gl + 1);
        s = parse_groups(d, g, err, errlen);
    }
    d->label_size = d->n + d->n_groups;
done:
    if (s)
        tm_domains_free(d);
    return s;
}

void tm_domains_free(struct tm_domains *d)
{
    free(d->buf);
    free(d->names);
    free(d->group);
    free(d->groups);
    memset(d, 0, sizeof *d);
}

static int find(const struct tm_domains *d, const char *name, size_t len)
{
    for (int i = 0; i < d->n; i++)
        if (strlen(d->names[i]) == len && !strncmp(d->names[i], name, len))
            return i;
    return -1;
}

tm_status tm_model_label_from_domains(tm_model *m, const char *names, float *label, int n)
{
    const struct tm_domains *d = &m->domains;
    if (!d->label_size)
        return tm_fail(m->ctx, TM_ERR_INVALID, "this %s model has no domains to choose", m->info.arch);
    if (n != d->label_size)
        return tm_fail(m->ctx, TM_ERR_INVALID, "the label has %d entries, the model takes %d", n,
                       d->label_size);
    memset(label, 0, (size_t)n * sizeof *label);
    int group = -1;
    for (const char *p = names; *p;) {
        size_t len = strcspn(p, ",");
        const char *q = p;
        while (len && *q == ' ')
            q++, len--;
        while (len && q[len - 1] == ' ')
            len--;
        int i = len ? find(d, q, len) : -1;
        if (i < 0)
            return tm_fail(m->ctx, TM_ERR_INVALID, "unknown domain '%.*s' (the model has: %s)",
                           (int)(len > 64 ? 64 : len), q, tm_model_meta(m, "domains"));
        if (d->n_groups && group >= 0 && d->group[i] != group)
            return tm_fail(m->ctx, TM_ERR_INVALID, "domains from two datasets (%s and %s) cannot be combined",
                           d->groups[group], d->groups[d->group[i]]);
        if (d->n_groups)
            group = d->group[i];
        label[i] = 1.0f;
        p += strcspn(p, ",");
        if (*p)
            p++;
    }
    if (d->n_groups && group < 0)
        return tm_fail(m->ctx, TM_ERR_INVALID, "name at least one domain: the label must say which dataset it is for");
    if (group >= 0)
        label[d->n + group] = 1.0f;
    return TM_OK;
}
