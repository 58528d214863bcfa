/* fuzz_graph: libFuzzer target for graph models (core/models/graph_model.c,
 * docs/GRAPH.md) and everything a loaded one reaches. The input is the
 * `graph` metadata (the node list, JSON text) of a model built here in
 * memory around a fixed set of tensors, loaded with tm_model_load_memory on
 * the CPU backend. Any text loads or fails with a one-line message, never a
 * crash, leak or hang; an accepted graph translates a 5x7 image (whole, then
 * in tiles) or fails cleanly.
 *
 * The tensors: a.weight [8,3,3,3], a.bias [8], b.weight [8,12,1,1] (no
 * bias: a conv2d 12->8 or a convt2d 8->12), p.weight [8],
 * n.weight/n.bias/n.running_mean/n.running_var [8]; metadata input_nc 3,
 * output_nc 3, scale 2, pad_multiple 4, range 0,1. A valid graph reads them
 * all (conv2d a, conv2d or convt2d b, prelu p, batchnorm or affine instnorm
 * n) and doubles the size. Seeds: tests/fuzz/make_seeds.py. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "backend.h"
#include "transmute.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The Vulkan backend is not built into this target: there is none. */
int tm_vk_enumerate(struct tm_device_info *list, int max, char *why, size_t whylen)
{
    (void)list;
    (void)max;
    snprintf(why, whylen, "not in the fuzz target");
    return 0;
}

tm_status tm_backend_vk_create(tm_ctx *ctx, int index, bool validate, struct tm_backend **out)
{
    (void)ctx;
    (void)index;
    (void)validate;
    *out = NULL;
    return TM_ERR_DEVICE;
}

static const struct {
    const char *name;
    int ndim;
    int shape[4];
} tensors[] = {
    { "a.weight", 4, { 8, 3, 3, 3 } }, { "a.bias", 1, { 8 } },
    { "b.weight", 4, { 8, 12, 1, 1 } },
    { "p.weight", 1, { 8 } },
    { "n.weight", 1, { 8 } }, { "n.bias", 1, { 8 } },
    { "n.running_mean", 1, { 8 } }, { "n.running_var", 1, { 8 } },
};
#define N_TENSORS (sizeof tensors / sizeof tensors[0])

/* The model file: header with this graph, then the tensors' float32 data
 * (small deterministic values; variances positive). */
static uint8_t *model_bytes(const char *graph, size_t glen, size_t *size)
{
    static float weights[512];
    static size_t n_weights;
    if (!n_weights) {
        for (size_t t = 0; t < N_TENSORS; t++) {
            size_t n = 1;
            for (int k = 0; k < tensors[t].ndim; k++)
                n *= (size_t)tensors[t].shape[k];
            int var = !strcmp(tensors[t].name, "n.running_var");
            for (size_t i = 0; i < n; i++, n_weights++)
                weights[n_weights] = var ? 0.5f + (float)(i % 5) * 0.25f
                                         : (float)((int)((n_weights * 37) % 17) - 8) / 16.0f;
        }
        assert(n_weights <= sizeof weights / sizeof weights[0]);
    }
    json_object *h = json_object_new_object(), *meta = json_object_new_object();
    json_object_object_add(meta, "arch", json_object_new_string("graph"));
    json_object_object_add(meta, "input_nc", json_object_new_string("3"));
    json_object_object_add(meta, "output_nc", json_object_new_string("3"));
    json_object_object_add(meta, "scale", json_object_new_string("2"));
    json_object_object_add(meta, "pad_multiple", json_object_new_string("4"));
    json_object_object_add(meta, "range", json_object_new_string("0,1"));
    json_object_object_add(meta, "graph", json_object_new_string_len(graph, (int)glen));
    json_object_object_add(h, "__metadata__", meta);
    size_t off = 0;
    for (size_t t = 0; t < N_TENSORS; t++) {
        json_object *d = json_object_new_object(), *shape = json_object_new_array(),
                    *offs = json_object_new_array();
        size_t n = 4;
        for (int k = 0; k < tensors[t].ndim; k++) {
            json_object_array_add(shape, json_object_new_int(tensors[t].shape[k]));
            n *= (size_t)tensors[t].shape[k];
        }
        json_object_array_add(offs, json_object_new_int64((int64_t)off));
        json_object_array_add(offs, json_object_new_int64((int64_t)(off + n)));
        json_object_object_add(d, "dtype", json_object_new_string("F32"));
        json_object_object_add(d, "shape", shape);
        json_object_object_add(d, "data_offsets", offs);
        json_object_object_add(h, tensors[t].name, d);
        off += n;
    }
    size_t hlen;
    const char *hs = json_object_to_json_string_length(h, JSON_C_TO_STRING_PLAIN, &hlen);
    assert(hs && off == n_weights * sizeof(float));
    *size = 8 + hlen + off;
    uint8_t *b = malloc(*size);
    assert(b);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(b + 8, hs, hlen);
    memcpy(b + 8 + hlen, weights, off);
    json_object_put(h);
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tm_ctx *ctx;
    char err[256];
    if (!ctx) {
        struct tm_ctx_params p = { .device = "cpu", .threads = 1 };
        tm_status s = tm_ctx_create(&p, &ctx, err, sizeof err);
        assert(!s);
    }
    if (size > 1 << 16)
        return 0;
    size_t len;
    uint8_t *file = model_bytes((const char *)data, size, &len);
    tm_model *m;
    tm_status s = tm_model_load_memory(ctx, file, len, &m);
    free(file);
    if (s) {
        const char *e = tm_ctx_error(ctx);
        assert(m == NULL && *e && !strchr(e, '\n'));
        return 0;
    }
    const struct tm_model_info *info = tm_model_info(m);
    assert(info->input_nc == 3 && info->output_nc == 3 && info->scale == 2);
    uint8_t in[7][5][3], out[14][10][3];
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 5; x++)
            for (int c = 0; c < 3; c++)
                in[y][x][c] = (uint8_t)(y * 36 + x * 50 + c * 80);
    struct tm_image src = { .data = in, .width = 5, .height = 7, .channels = 3, .type = TM_U8 };
    struct tm_image dst = { .data = out, .width = 10, .height = 14, .channels = 3, .type = TM_U8 };
    for (int tiled = 0; tiled < 2; tiled++) {
        struct tm_translate_params tp = { .tile = tiled ? 16 : -1 };
        if (tm_translate(m, &src, &dst, &tp))
            assert(!strchr(tm_ctx_error(ctx), '\n'));
    }
    tm_model_destroy(&m);
    return 0;
}
