/* domains.h: the target domains of a conditioned (StarGAN) model.
 *
 * Metadata: `domains` lists the label names in label order, comma-separated
 * ("Black_Hair,Blond_Hair,Brown_Hair,Male,Young"). A model trained on several
 * datasets with a mask vector adds `domain_groups`, each dataset's name and
 * its number of consecutive domains ("CelebA:5,RaFD:8"); the label then ends
 * with one mask entry per dataset, as the official multi-dataset code lays
 * it out: [CelebA labels, RaFD labels, mask]. */
#ifndef TM_DOMAINS_H
#define TM_DOMAINS_H

#include "transmute.h"

#define TM_MAX_DOMAINS 256
#define TM_MAX_GROUPS 16

struct tm_domains {
    char *buf;                 /* the names, NUL-separated */
    const char **names;
    int *group;                /* per name; NULL without groups */
    const char **groups;
    int n, n_groups;
    int label_size;            /* n + n_groups */
};

/* Parses the two metadata values (groups may be NULL). On failure returns
 * TM_ERR_FORMAT with a message in err and leaves d empty. */
tm_status tm_domains_parse(const char *domains, const char *groups, struct tm_domains *d,
                           char *err, size_t errlen);
void tm_domains_free(struct tm_domains *d);

#endif
