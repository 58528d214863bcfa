/*
 * arch_detect.h: recognizing an official generator from its state_dict.
 *
 * The keys and shapes of a CycleGAN/pix2pix ResnetGenerator or UnetGenerator,
 * StarGAN's Generator, ESRGAN's RRDBNet (BasicSR / Real-ESRGAN names) or
 * SRGAN's generator (leftthomas/SRGAN names) determine the hyper-parameters
 * Transmute's metadata needs (docs/FORMAT.md, docs/GRAPH.md). Options the
 * user gave (--netG, --ngf, --norm, --scale) are checked against what the
 * tensors say, never silently overridden.
 */
#ifndef TRANSMUTE_ARCH_DETECT_H
#define TRANSMUTE_ARCH_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One tensor of the state_dict, its key already stripped of prefixes. */
struct ad_tensor {
    const char *key;
    int ndim;
    const int64_t *shape;
    bool drop;  /* set by ad_detect: not written (pre-0.4 InstanceNorm statistics) */
};

struct ad_options {
    const char *netG;          /* resnet_9blocks, ..., stargan, rrdbnet, srresnet; NULL: any */
    int ngf;                   /* 0: any */
    const char *norm;          /* NULL: any */
    const char *norm_stats;    /* batch norm: "image" (default, as the official test) or "running" */
    const char *domains;       /* StarGAN label names; NULL: the official defaults by size */
    const char *domain_groups; /* StarGAN multi-dataset layout, e.g. "CelebA:5,RaFD:8" */
    int scale;                 /* super-resolution factor; 0: any (RRDBNet: as many input
                                * channels as output channels) */
};

#define AD_MAX_META 16

/* Metadata entries to write, and what was found, in words. */
struct ad_result {
    int n_meta;
    const char *meta_key[AD_MAX_META];
    char *meta_val[AD_MAX_META];   /* malloc'ed */
    char summary[256];             /* "resnet_9blocks (ngf 64, instance norm, ...)" */
    char note[512];                /* an assumption the user should know of, or "" */
    int n_dropped;
};

/* Recognizes the architecture. Returns 0, or -1 with a one-line message in
 * err (unknown layout, or an option that contradicts the tensors). */
int ad_detect(struct ad_tensor *t, int n, const struct ad_options *o, struct ad_result *r,
              char *err, size_t errlen);
void ad_result_free(struct ad_result *r);

#endif
