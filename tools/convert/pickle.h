/* pickle.h: a restricted unpickler for PyTorch state_dict pickles.
 *
 * It turns the opcodes torch.save writes (pickle protocols 2 to 4, and the
 * Python 2 era string opcodes) into a tree of values and never runs anything.
 * The only globals it accepts are collections.OrderedDict,
 * torch._utils._rebuild_tensor_v2, _rebuild_tensor and _rebuild_parameter,
 * each interpreted here, and the torch storage types inside persistent ids;
 * any other global or opcode is an error naming it. Every read is
 * bounds-checked and nesting, stack, memo, string and object counts are
 * bounded, so a hostile file gets an error message, never a crash. */
#ifndef TM_PICKLE_H
#define TM_PICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transmute.h"

#define TM_PK_MAX_DEPTH 1000 /* nested containers, and nested MARKs */
#define TM_CK_MAX_DIMS 8

/* Element types of the storages a checkpoint may hold. */
enum tm_ckpt_dtype { TM_CK_F32, TM_CK_F16, TM_CK_BF16, TM_CK_I64, TM_CK_F64 };

/* Bytes per element. */
int tm_ckpt_dtype_size(enum tm_ckpt_dtype dt);
/* The safetensors name of the type: "F32", "F16", "BF16", "I64", "F64". */
const char *tm_ckpt_dtype_name(enum tm_ckpt_dtype dt);

enum tm_pk_kind {
    TM_PK_NONE,
    TM_PK_BOOL,
    TM_PK_INT,
    TM_PK_BIGINT,  /* an integer beyond int64 (the legacy magic number) */
    TM_PK_FLOAT,
    TM_PK_STR,     /* text, including Python 2 byte strings */
    TM_PK_BYTES,
    TM_PK_TUPLE,
    TM_PK_LIST,
    TM_PK_DICT,    /* dict and OrderedDict: pairs in insertion order */
    TM_PK_TENSOR,
    TM_PK_STORAGE, /* a persistent id that was not (yet) turned into a tensor */
    TM_PK_GLOBAL,  /* an allowed class or function not (yet) called */
};

/* One storage of the checkpoint, shared by every tensor that names its key. */
struct tm_pk_storage {
    const char *key;      /* 1..256 printable ASCII characters, no space or '/' */
    enum tm_ckpt_dtype dtype;
    int64_t numel;        /* as the persistent id declares it */
    const uint8_t *data;  /* numel elements; NULL until the loader sets it */
};

/* The elements [offset, offset + numel) of a storage (legacy files could
 * name such views; otherwise the whole storage). */
struct tm_pk_view {
    struct tm_pk_storage *storage;
    int64_t offset, numel;
};

/* A tensor as the file describes it: element (i_0, ..., i_n-1) is view
 * element offset + sum(i_k * stride[k]). Sizes, strides and offset are
 * non-negative; whether they stay inside the view is the caller's check. */
struct tm_pk_tensor {
    struct tm_pk_view view;
    int64_t offset;
    int ndim;
    int64_t shape[TM_CK_MAX_DIMS], stride[TM_CK_MAX_DIMS];
};

struct tm_pk_value {
    enum tm_pk_kind kind;
    int depth;   /* levels of containers from here down: 0 for a leaf */
    bool frozen; /* placed in a container, so no longer modifiable */
    union {
        bool b;
        int64_t i;
        double f;
        struct {        /* STR, BYTES; BIGINT: little-endian two's complement */
            const char *s; /* NUL-terminated copy; may contain NULs */
            size_t len;
        } str;
        struct {        /* TUPLE, LIST: v[0..n); DICT: key v[2k], value v[2k+1], 2k < n */
            struct tm_pk_value **v;
            size_t n, cap;
        } seq;
        struct tm_pk_tensor *tensor;
        struct tm_pk_view storage;
        struct {
            const char *name; /* "module.name" */
            int id;           /* pickle.c's own */
        } global;
    } u;
};

/* A parsed pickle. Values and storages live until tm_pickle_free; values may
 * be shared (the memo), but the tree is acyclic and at most TM_PK_MAX_DEPTH
 * deep. */
struct tm_pickle {
    struct tm_pk_value *root;
    size_t end;                      /* offset just past the STOP opcode */
    struct tm_pk_storage **storages; /* distinct storages, in order of first use */
    int n_storages;
    struct tm_pk_state *state;       /* allocations and the key index */
};

/* Parses one pickle at the start of bytes[0..size) (bytes after its STOP
 * are left alone: see pk->end). TM_ERR_UNSUPPORTED for a global or opcode
 * outside the allowed set, TM_ERR_FORMAT for a corrupt or truncated pickle,
 * each with a one-line message in err. On failure *pk holds nothing. */
tm_status tm_pickle_load(const uint8_t *bytes, size_t size, struct tm_pickle *pk, char *err,
                         size_t errlen);

/* The storage with this key, or NULL. */
struct tm_pk_storage *tm_pickle_storage(const struct tm_pickle *pk, const char *key);

/* Frees everything tm_pickle_load made; a zeroed *pk is a no-op. */
void tm_pickle_free(struct tm_pickle *pk);

/* A short name of a value's kind for messages: "dict", "tensor", ... */
const char *tm_pk_kind_name(enum tm_pk_kind kind);

#endif
