/* tfjs_internal.h: what tfjs.c, tfjs_topology.c and tfjs_layers.c share
 * (internal to the TF.js converter; the public API is tfjs.h).
 *
 * One struct ctx carries a conversion: tfjs.c reads the file and owns the
 * context, tfjs_topology.c fills in the layers and their order, and
 * tfjs_layers.c turns each layer into graph nodes and tensor jobs, which
 * tfjs.c then runs. Every failure writes a one-line message into c->err
 * and returns false (or -1, or NULL); an allocation failure also sets
 * c->oom, so the caller can answer TM_ERR_NOMEM rather than a format
 * error. */
#ifndef TM_TFJS_INTERNAL_H
#define TM_TFJS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "tfjs.h"
#include "tfjs_weights.h"

#define TFJS_TENSOR_NAME (TFJS_MAX_NAME + 32) /* NAME + "/moving_variance" */

struct layer {
    const char *name, *cls;
    json_object *cfg;
    int *in;            /* producers, in the order the layer takes them */
    int n_in;
    bool reached;       /* the output depends on it */
    const char *out;    /* the graph name of its result: its own, or its input's */
    int channels;
    int64_t num, den;   /* its side over the input's side */
};

/* One tensor of the result: a manifest weight, rearranged, or a constant. */
enum job_kind { J_COPY, J_KERNEL, J_FILL };

struct job {
    char name[TFJS_TENSOR_NAME];
    enum job_kind kind;
    int weight;         /* manifest index; -1 for J_FILL */
    float fill;
    int ndim;
    int64_t shape[4];
};

struct ctx {
    struct layer *L;
    int n;
    struct layer **sorted; /* L by name */
    int *order;            /* the reached layers, dependencies first */
    int n_order;
    struct layer *input, *output;
    struct tfjs_manifest man;
    struct job *jobs;
    int n_jobs, cap_jobs;
    json_object *nodes;
    int n_nodes;
    bool oom;
    char *err;
    size_t errlen;
};

/* ---- Messages and JSON output (tfjs.c) -------------------------------- */

/* Writes the message into c->err, control characters made '?'; returns
 * false. */
bool tfjs_cfail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* As tfjs_cfail, prefixed with "layer 'NAME': ". */
bool tfjs_lfail(struct ctx *c, const struct layer *l, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets c->oom and says "out of memory"; returns false. */
bool tfjs_oom(struct ctx *c);

/* Adds v to object o under key (or to array o when key is NULL), taking
 * v's reference. A NULL o or v, or a failed add, frees v and sets c->oom
 * instead of failing, so a caller builds a whole node and checks once. */
void tfjs_jput(struct ctx *c, json_object *o, const char *key, json_object *v);

/* tfjs_jput of a new string copied from v. */
void tfjs_put_str(struct ctx *c, json_object *o, const char *key, const char *v);

/* ---- Topology (tfjs_topology.c) --------------------------------------- */

/* Reads the model config's layers list into c->L (names, classes and
 * configs, pointing into the JSON tree) and allocates c->sorted and
 * c->order; fails on a malformed or duplicate layer. */
bool tfjs_read_layers(struct ctx *c, json_object *layers);

/* The layer called name, or NULL; needs tfjs_read_layers. */
struct layer *tfjs_find_layer(const struct ctx *c, const char *name);

/* Wires each layer's inputs from its inbound_nodes, finds the single input
 * and output layers of config, checks that every layer feeds the output and
 * that the output depends on the input, and fills c->order (dependencies
 * first, otherwise in file order). Fails on shared layers, cycles and
 * dangling references. */
bool tfjs_wire(struct ctx *c, json_object *config, json_object *layers);

/* ---- Layers (tfjs_layers.c) ------------------------------------------- */

/* Converts l, whose inputs are already converted: appends its graph node
 * (if it computes anything) to c->nodes and its tensors to c->jobs, marks
 * the manifest weights it takes as used, and sets its channels, side ratio
 * and out. Fails on an unsupported layer, option or weight shape. */
bool tfjs_convert_layer(struct ctx *c, struct layer *l);

#endif
