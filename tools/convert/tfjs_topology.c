/* tfjs_topology.c: the layer list of a TF.js layers-model, wired and sorted.
 *
 * The layers are read into an array, wired by their inbound_nodes, checked
 * to reach the output without cycles or sharing, and sorted (Kahn's
 * algorithm, earliest listed first, so the node list follows the file). */
#include <stdlib.h>
#include <string.h>

#include "tfjs_internal.h"

#define MAX_LAYERS 100000
#define MAX_INBOUND 4096     /* inputs of one layer */

static int layer_by_name(const void *a, const void *b)
{
    return strcmp((*(struct layer *const *)a)->name, (*(struct layer *const *)b)->name);
}

struct layer *tfjs_find_layer(const struct ctx *c, const char *name)
{
    struct layer key = { .name = name }, *kp = &key;
    struct layer **hit = c->n ? bsearch(&kp, c->sorted, (size_t)c->n, sizeof *c->sorted, layer_by_name) : NULL;
    return hit ? *hit : NULL;
}

/* A JSON string of 1..TFJS_MAX_NAME bytes without NUL, or NULL. */
static const char *name_of(json_object *v)
{
    if (!json_object_is_type(v, json_type_string))
        return NULL;
    size_t n = (size_t)json_object_get_string_len(v);
    const char *s = json_object_get_string(v);
    return n && n <= TFJS_MAX_NAME && strlen(s) == n ? s : NULL;
}

static bool read_layer(struct ctx *c, json_object *o, int i)
{
    struct layer *l = &c->L[i];
    json_object *v = NULL, *conf = NULL;
    json_object_object_get_ex(o, "config", &conf);
    if (!json_object_object_get_ex(o, "name", &v) && json_object_is_type(conf, json_type_object))
        json_object_object_get_ex(conf, "name", &v);
    if (!json_object_is_type(o, json_type_object) || !(l->name = name_of(v)))
        return tfjs_cfail(c, "layer %d has no name, or one longer than %d bytes", i + 1, TFJS_MAX_NAME);
    if (!json_object_object_get_ex(o, "class_name", &v) || !(l->cls = name_of(v)))
        return tfjs_lfail(c, l, "no class_name");
    if (!json_object_is_type(conf, json_type_object))
        return tfjs_lfail(c, l, "no config");
    l->cfg = conf;
    return true;
}

bool tfjs_read_layers(struct ctx *c, json_object *layers)
{
    if (!json_object_is_type(layers, json_type_array) || json_object_array_length(layers) > MAX_LAYERS)
        return tfjs_cfail(c, "the model's layers are not a list of up to %d", MAX_LAYERS);
    c->n = (int)json_object_array_length(layers);
    c->L = calloc((size_t)c->n + 1, sizeof *c->L);
    c->sorted = calloc((size_t)c->n + 1, sizeof *c->sorted);
    c->order = calloc((size_t)c->n + 1, sizeof *c->order);
    if (!c->L || !c->sorted || !c->order)
        return tfjs_oom(c);
    for (int i = 0; i < c->n; i++) {
        if (!read_layer(c, json_object_array_get_idx(layers, (size_t)i), i))
            return false;
        c->sorted[i] = &c->L[i];
    }
    qsort(c->sorted, (size_t)c->n, sizeof *c->sorted, layer_by_name);
    for (int i = 1; i < c->n; i++)
        if (!strcmp(c->sorted[i - 1]->name, c->sorted[i]->name))
            return tfjs_cfail(c, "two layers are named '%s'", c->sorted[i]->name);
    return true;
}

/* [name, node_index, tensor_index(, kwargs)] -> the producing layer. */
static int inbound_ref(struct ctx *c, struct layer *l, json_object *ref)
{
    size_t n = json_object_is_type(ref, json_type_array) ? json_object_array_length(ref) : 0;
    const char *name = n ? name_of(json_object_array_get_idx(ref, 0)) : NULL;
    json_object *ni = n >= 3 ? json_object_array_get_idx(ref, 1) : NULL,
                *ti = n >= 3 ? json_object_array_get_idx(ref, 2) : NULL;
    if (!name || (n != 3 && n != 4) || !json_object_is_type(ni, json_type_int) ||
        !json_object_is_type(ti, json_type_int)) {
        tfjs_lfail(c, l, "an inbound node is not [layer, node, tensor, kwargs]");
        return -1;
    }
    struct layer *src = tfjs_find_layer(c, name);
    if (!src) {
        tfjs_lfail(c, l, "its input '%s' is not a layer of the model", name);
        return -1;
    }
    if (json_object_get_int64(ni) != 0 || json_object_get_int64(ti) != 0) {
        tfjs_lfail(c, l, "it reads output %lld of call %lld of '%s': shared layers and layers with several "
                   "outputs are not supported", (long long)json_object_get_int64(ti),
                   (long long)json_object_get_int64(ni), name);
        return -1;
    }
    return (int)(src - c->L);
}

static bool wire_layer(struct ctx *c, struct layer *l, json_object *o)
{
    json_object *nodes;
    if (!json_object_object_get_ex(o, "inbound_nodes", &nodes) || !json_object_is_type(nodes, json_type_array))
        return tfjs_lfail(c, l, "no inbound_nodes list");
    size_t calls = json_object_array_length(nodes);
    if (calls > 1)
        return tfjs_lfail(c, l, "the layer is shared (called %zu times): shared layers are not supported", calls);
    if (!calls)
        return true;
    json_object *refs = json_object_array_get_idx(nodes, 0);
    if (!json_object_is_type(refs, json_type_array))
        return tfjs_lfail(c, l, "its inbound node is not a list of inputs (a Keras 3 file?)");
    size_t n = json_object_array_length(refs);
    if (!n || n > MAX_INBOUND)
        return tfjs_lfail(c, l, "it has %zu inputs (1..%d)", n, MAX_INBOUND);
    if (!(l->in = calloc(n, sizeof *l->in)))
        return tfjs_oom(c);
    for (size_t i = 0; i < n; i++)
        if ((l->in[l->n_in++] = inbound_ref(c, l, json_object_array_get_idx(refs, i))) < 0)
            return false;
    return true;
}

/* input_layers / output_layers: exactly one [name, 0, 0]. */
static struct layer *end_layer(struct ctx *c, json_object *config, const char *key, const char *what)
{
    json_object *v = NULL;
    json_object_object_get_ex(config, key, &v);
    size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;
    json_object *ref = n == 1 ? json_object_array_get_idx(v, 0) : NULL;
    if (n != 1) {
        tfjs_cfail(c, "the model has %zu %ss: only models with one input and one output are supported", n, what);
        return NULL;
    }
    const char *name = json_object_is_type(ref, json_type_array) ? name_of(json_object_array_get_idx(ref, 0)) : NULL;
    struct layer *l = name ? tfjs_find_layer(c, name) : NULL;
    if (!l)
        tfjs_cfail(c, "the model's %s '%s' is not one of its layers", what, name ? name : "?");
    return l;
}

/* Marks what the output depends on; everything else is an error, as is an
 * output that does not depend on the input. */
static bool reach(struct ctx *c)
{
    int *stack = c->order, top = 0; /* borrowed: order is filled later */
    c->output->reached = true;
    stack[top++] = (int)(c->output - c->L);
    while (top) {
        struct layer *l = &c->L[stack[--top]];
        for (int i = 0; i < l->n_in; i++) {
            struct layer *s = &c->L[l->in[i]];
            if (!s->reached) {
                s->reached = true;
                stack[top++] = (int)(s - c->L);
            }
        }
    }
    for (int i = 0; i < c->n; i++)
        if (!c->L[i].reached)
            return tfjs_lfail(c, &c->L[i], "the model's output does not depend on it");
    if (!c->input->reached)
        return tfjs_cfail(c, "the model's output does not depend on its input");
    for (int i = 0; i < c->n; i++)
        if (!c->L[i].n_in && strcmp(c->L[i].cls, "InputLayer"))
            return tfjs_lfail(c, &c->L[i], "it has no inputs");
    return true;
}

/* A min-heap of layer indices: Kahn's algorithm takes the earliest listed
 * ready layer, so a file already in order keeps its order. */
static void heap_push(int *h, int *n, int v)
{
    int i = (*n)++;
    for (; i && h[(i - 1) / 2] > v; i = (i - 1) / 2)
        h[i] = h[(i - 1) / 2];
    h[i] = v;
}

static int heap_pop(int *h, int *n)
{
    int top = h[0], v = h[--*n], i = 0;
    for (;;) {
        int k = 2 * i + 1;
        if (k >= *n)
            break;
        if (k + 1 < *n && h[k + 1] < h[k])
            k++;
        if (h[k] >= v)
            break;
        h[i] = h[k];
        i = k;
    }
    h[i] = v;
    return top;
}

/* Dependencies first, into c->order; fails on a cycle. */
static bool topo_sort(struct ctx *c)
{
    int *heap = calloc((size_t)c->n + 1, sizeof *heap), *waiting = calloc((size_t)c->n + 1, sizeof *waiting);
    int nh = 0;
    if (!heap || !waiting) {
        free(heap);
        free(waiting);
        return tfjs_oom(c);
    }
    /* Kahn runs on the reversed edges: a layer is ready when all its
     * inputs are placed. waiting[i] counts inputs not yet placed. */
    for (int i = 0; i < c->n; i++)
        if (!(waiting[i] = c->L[i].n_in))
            heap_push(heap, &nh, i);
    /* Consumers of each layer, as offsets into one array. */
    int *start = calloc((size_t)c->n + 2, sizeof *start), *users = NULL;
    int64_t edges = 0;
    for (int i = 0; i < c->n; i++)
        edges += c->L[i].n_in;
    users = start ? calloc((size_t)edges + 1, sizeof *users) : NULL;
    bool ok = users != NULL;
    for (int i = 0; ok && i < c->n; i++)
        for (int k = 0; k < c->L[i].n_in; k++)
            start[c->L[i].in[k] + 2]++;
    for (int i = 0; ok && i < c->n; i++)
        start[i + 2] += start[i + 1];
    for (int i = 0; ok && i < c->n; i++)
        for (int k = 0; k < c->L[i].n_in; k++)
            users[start[c->L[i].in[k] + 1]++] = i;
    c->n_order = 0;
    while (ok && nh) {
        int i = heap_pop(heap, &nh);
        c->order[c->n_order++] = i;
        for (int u = start[i]; u < start[i + 1]; u++)
            if (!--waiting[users[u]])
                heap_push(heap, &nh, users[u]);
    }
    if (!ok)
        tfjs_oom(c);
    for (int i = 0; ok && i < c->n; i++)
        if (waiting[i])
            ok = tfjs_lfail(c, &c->L[i], "its inputs form a cycle");
    free(heap);
    free(waiting);
    free(start);
    free(users);
    return ok;
}

bool tfjs_wire(struct ctx *c, json_object *config, json_object *layers)
{
    for (int i = 0; i < c->n; i++)
        if (!wire_layer(c, &c->L[i], json_object_array_get_idx(layers, (size_t)i)))
            return false;
    if (!(c->input = end_layer(c, config, "input_layers", "input")) ||
        !(c->output = end_layer(c, config, "output_layers", "output")))
        return false;
    if (strcmp(c->input->cls, "InputLayer"))
        return tfjs_lfail(c, c->input, "the model's input is a %s, not an InputLayer", c->input->cls);
    if (c->input->n_in)
        return tfjs_lfail(c, c->input, "the input layer has inputs");
    if (c->output == c->input)
        return tfjs_cfail(c, "the model's output is its input: there is nothing to convert");
    return reach(c) && topo_sort(c);
}
