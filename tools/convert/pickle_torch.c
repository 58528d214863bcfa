/* pickle_torch.c: the torch part of the unpickler: the allowed globals
 * (collections.OrderedDict, torch._utils._rebuild_tensor{,_v2},
 * _rebuild_parameter, the storage types), what REDUCE and BUILD do with
 * them, and persistent ids, which name storages. */
#include <stdlib.h>
#include <string.h>

#include "pickle_vm.h"

#define MAX_KEY 256

/* Writes s[0..n) into buf for a message: at most 60 bytes, control bytes as '?'. */
static const char *printable(const char *s, size_t n, char buf[64])
{
    size_t k = n < 60 ? n : 60;
    for (size_t i = 0; i < k; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    buf[k] = '\0';
    return buf;
}

/* ---- Globals ---------------------------------------------------------- */

enum { G_ODICT, G_REBUILD_V2, G_REBUILD, G_PARAMETER, G_STORAGE /* + dtype */ };

static const struct {
    const char *module, *name, *full;
    int id;
} functions[] = {
    { "collections", "OrderedDict", "collections.OrderedDict", G_ODICT },
    { "torch._utils", "_rebuild_tensor_v2", "torch._utils._rebuild_tensor_v2", G_REBUILD_V2 },
    { "torch._utils", "_rebuild_tensor", "torch._utils._rebuild_tensor", G_REBUILD },
    { "torch._utils", "_rebuild_parameter", "torch._utils._rebuild_parameter", G_PARAMETER },
};

/* Module torch, or torch.cuda in files saved from a GPU by old versions. */
static const struct {
    const char *name, *full;
    enum tm_ckpt_dtype dtype;
} storage_types[] = {
    { "FloatStorage", "torch.FloatStorage", TM_CK_F32 },
    { "HalfStorage", "torch.HalfStorage", TM_CK_F16 },
    { "BFloat16Storage", "torch.BFloat16Storage", TM_CK_BF16 },
    { "LongStorage", "torch.LongStorage", TM_CK_I64 },
    { "DoubleStorage", "torch.DoubleStorage", TM_CK_F64 },
};

static bool equals(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && !memcmp(s, lit, n);
}

static bool ends_with(const char *s, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    return n >= k && !memcmp(s + n - k, lit, k);
}

static tm_status push_global(struct machine *m, const char *full, int id)
{
    struct tm_pk_value *v = pk_new_value(m, TM_PK_GLOBAL);
    if (!v)
        return m->status;
    v->u.global.name = full;
    v->u.global.id = id;
    return pk_push(m, v);
}

static tm_status find_global(struct machine *m, const char *mod, size_t mn, const char *name,
                             size_t nn)
{
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++)
        if (equals(mod, mn, functions[i].module) && equals(name, nn, functions[i].name))
            return push_global(m, functions[i].full, functions[i].id);
    bool torch = equals(mod, mn, "torch") || equals(mod, mn, "torch.cuda");
    for (size_t i = 0; torch && i < sizeof storage_types / sizeof storage_types[0]; i++)
        if (equals(name, nn, storage_types[i].name))
            return push_global(m, storage_types[i].full, G_STORAGE + (int)storage_types[i].dtype);
    char a[64], b[64];
    if (torch && ends_with(name, nn, "Storage"))
        return pk_fail(m, TM_ERR_UNSUPPORTED,
                       "pickle uses %s.%s: only float32, float16, bfloat16, float64 and int64 "
                       "tensors are supported", printable(mod, mn, a), printable(name, nn, b));
    return pk_fail(m, TM_ERR_UNSUPPORTED,
                   "pickle imports %s.%s, which a checkpoint does not need: refusing to load",
                   printable(mod, mn, a), printable(name, nn, b));
}

/* GLOBAL: "module\nname\n" in the stream. */
tm_status pk_op_global(struct machine *m, const struct opcode *op)
{
    const char *s = (const char *)m->b + m->pos;
    size_t left = m->size - m->pos;
    const char *nl1 = memchr(s, '\n', left);
    const char *nl2 = nl1 ? memchr(nl1 + 1, '\n', left - (size_t)(nl1 + 1 - s)) : NULL;
    if (!nl2)
        return pk_fail(m, TM_ERR_FORMAT, "pickle is truncated: GLOBAL at offset %zu has no end",
                       m->op_pos);
    m->pos += (size_t)(nl2 + 1 - s);
    return find_global(m, s, (size_t)(nl1 - s), nl1 + 1, (size_t)(nl2 - nl1 - 1));
}

tm_status pk_op_stack_global(struct machine *m, const struct opcode *op)
{
    struct tm_pk_value *name, *mod;
    if (pk_pop(m, &name) || pk_pop(m, &mod))
        return m->status;
    if (name->kind != TM_PK_STR || mod->kind != TM_PK_STR)
        return pk_fail_op(m, "module and name are a %s and a %s, not strings",
                          tm_pk_kind_name(mod->kind), tm_pk_kind_name(name->kind));
    return find_global(m, mod->u.str.s, mod->u.str.len, name->u.str.s, name->u.str.len);
}

/* ---- Persistent ids: storages ----------------------------------------- */

static size_t hash_key(const char *key)
{
    size_t h = 2166136261u;
    for (; *key; key++)
        h = (h ^ (unsigned char)*key) * 16777619u;
    return h;
}

static struct tm_pk_storage **index_slot(const struct tm_pk_state *st, const char *key)
{
    size_t mask = st->n_index - 1, i = hash_key(key) & mask;
    while (st->index[i] && strcmp(st->index[i]->key, key))
        i = (i + 1) & mask;
    return &st->index[i];
}

/* Keeps the key index at most half full, and room for one more storage. */
static tm_status grow_storages(struct machine *m)
{
    struct tm_pickle *pk = m->pk;
    struct tm_pk_state *st = pk->state;
    if ((size_t)pk->n_storages * 2 + 2 > st->n_index) {
        size_t n = st->n_index ? st->n_index * 2 : 64;
        struct tm_pk_storage **old = st->index;
        st->index = calloc(n, sizeof *st->index);
        if (!st->index) {
            st->index = old;
            return pk_fail(m, TM_ERR_NOMEM, "out of memory reading the pickle");
        }
        st->n_index = n;
        for (int i = 0; i < pk->n_storages; i++)
            *index_slot(st, pk->storages[i]->key) = pk->storages[i];
        free(old);
    }
    if (pk->n_storages == st->storages_cap) {
        int cap = st->storages_cap ? st->storages_cap * 2 : 16;
        struct tm_pk_storage **s = realloc(pk->storages, (size_t)cap * sizeof *s);
        if (!s)
            return pk_fail(m, TM_ERR_NOMEM, "out of memory reading the pickle");
        pk->storages = s;
        st->storages_cap = cap;
    }
    return TM_OK;
}

/* The storage with this key, created on first use; later uses must agree. */
static struct tm_pk_storage *use_storage(struct machine *m, const char *key,
                                         enum tm_ckpt_dtype dt, int64_t numel)
{
    if (grow_storages(m))
        return NULL;
    struct tm_pk_storage **slot = index_slot(m->pk->state, key), *s = *slot;
    if (s) {
        if (s->dtype != dt || s->numel != numel) {
            pk_fail(m, TM_ERR_FORMAT,
                    "storage '%s' is declared twice with different types or sizes", key);
            return NULL;
        }
        return s;
    }
    s = pk_alloc(m, sizeof *s);
    if (!s)
        return NULL;
    s->key = key;
    s->dtype = dt;
    s->numel = numel;
    s->data = NULL;
    *slot = s;
    m->pk->storages[m->pk->n_storages++] = s;
    return s;
}

static bool is_text(const struct tm_pk_value *v)
{
    return v->kind == TM_PK_STR || v->kind == TM_PK_BYTES;
}

static bool is_count(const struct tm_pk_value *v)
{
    return v->kind == TM_PK_INT && v->u.i >= 0;
}

/* Legacy view_metadata: absent (NULL), None, or (view_key, offset, size)
 * within the storage. */
static tm_status parse_view(struct machine *m, const struct tm_pk_value *vm,
                            struct tm_pk_view *view)
{
    view->offset = 0;
    view->numel = view->storage->numel;
    if (!vm || vm->kind == TM_PK_NONE)
        return TM_OK;
    struct tm_pk_value **v = vm->u.seq.v;
    if (vm->kind != TM_PK_TUPLE || vm->u.seq.n != 3 || !is_text(v[0]) || !is_count(v[1]) ||
        !is_count(v[2]))
        return pk_fail_op(m, "storage view is not (key, offset, size)");
    if (v[1]->u.i > view->numel || v[2]->u.i > view->numel - v[1]->u.i)
        return pk_fail_op(m, "storage view [%lld, +%lld) is outside its storage of %lld elements",
                          (long long)v[1]->u.i, (long long)v[2]->u.i, (long long)view->numel);
    view->offset = v[1]->u.i;
    view->numel = v[2]->u.i;
    return TM_OK;
}

/* torch writes decimal numbers; anything printable is accepted, so keys can
 * go into messages and zip record names as they are. */
static bool key_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~' || s[i] == '/')
            return false;
    return n > 0 && n <= MAX_KEY;
}

/* ('storage', storage type, key, location, numel[, view_metadata]). */
static tm_status parse_pid(struct machine *m, const struct tm_pk_value *pid,
                           struct tm_pk_view *view)
{
    if (pid->kind != TM_PK_TUPLE || pid->u.seq.n < 5 || pid->u.seq.n > 6)
        return pk_fail_op(m, "persistent id is a %s, not a storage tuple",
                          tm_pk_kind_name(pid->kind));
    struct tm_pk_value **v = pid->u.seq.v;
    if (!is_text(v[0]) || strcmp(v[0]->u.str.s, "storage"))
        return pk_fail(m, TM_ERR_UNSUPPORTED,
                       "pickle refers to an outside object that is not a storage");
    if (v[1]->kind != TM_PK_GLOBAL || v[1]->u.global.id < G_STORAGE)
        return pk_fail_op(m, "storage type is not a torch storage class");
    if (!is_text(v[2]) || !key_ok(v[2]->u.str.s, v[2]->u.str.len))
        return pk_fail_op(m, "storage key is not a short printable string");
    if (!is_count(v[4]) || v[4]->u.i > INT64_MAX / 8)
        return pk_fail_op(m, "storage size is not a count of elements");
    view->storage = use_storage(m, v[2]->u.str.s,
                                (enum tm_ckpt_dtype)(v[1]->u.global.id - G_STORAGE), v[4]->u.i);
    if (!view->storage)
        return m->status;
    return parse_view(m, pid->u.seq.n == 6 ? v[5] : NULL, view);
}

tm_status pk_op_binpersid(struct machine *m, const struct opcode *op)
{
    struct tm_pk_value *pid, *v;
    struct tm_pk_view view;
    if (pk_pop(m, &pid) || parse_pid(m, pid, &view) || !(v = pk_new_value(m, TM_PK_STORAGE)))
        return m->status;
    v->u.storage = view;
    return pk_push(m, v);
}

/* ---- REDUCE and BUILD: the allowed functions -------------------------- */

/* A tensor size or stride: a tuple of at most TM_CK_MAX_DIMS counts. */
static tm_status read_dims(struct machine *m, const struct tm_pk_value *t, int64_t *out, int *n)
{
    if (t->kind != TM_PK_TUPLE)
        return pk_fail_op(m, "tensor size or stride is a %s, not a tuple",
                          tm_pk_kind_name(t->kind));
    if (t->u.seq.n > TM_CK_MAX_DIMS)
        return pk_fail(m, TM_ERR_UNSUPPORTED,
                       "a tensor has %zu dimensions; at most %d are supported", t->u.seq.n,
                       TM_CK_MAX_DIMS);
    for (size_t i = 0; i < t->u.seq.n; i++) {
        if (!is_count(t->u.seq.v[i]))
            return pk_fail_op(m, "tensor size or stride holds a negative or non-integer entry");
        out[i] = t->u.seq.v[i]->u.i;
    }
    *n = (int)t->u.seq.n;
    return TM_OK;
}

/* _rebuild_tensor(storage, offset, size, stride) and _rebuild_tensor_v2(storage,
 * offset, size, stride, requires_grad, backward_hooks[, metadata]). */
static struct tm_pk_value *rebuild_tensor(struct machine *m, const struct tm_pk_value *args,
                                          bool v2)
{
    size_t n = args->u.seq.n;
    struct tm_pk_value **a = args->u.seq.v, *v;
    if (!(v2 ? n == 6 || n == 7 : n == 4) || a[0]->kind != TM_PK_STORAGE || !is_count(a[1]) ||
        (v2 && (a[4]->kind != TM_PK_BOOL || a[5]->kind != TM_PK_DICT))) {
        pk_fail_op(m, "the arguments are not (storage, offset, size, stride%s)",
                   v2 ? ", requires_grad, hooks" : "");
        return NULL;
    }
    struct tm_pk_tensor *t = pk_alloc(m, sizeof *t);
    int ns, nst;
    if (!t || read_dims(m, a[2], t->shape, &ns) || read_dims(m, a[3], t->stride, &nst))
        return NULL;
    if (ns != nst) {
        pk_fail_op(m, "tensor size and stride differ in length");
        return NULL;
    }
    t->view = a[0]->u.storage;
    t->offset = a[1]->u.i;
    t->ndim = ns;
    if ((v = pk_new_value(m, TM_PK_TENSOR)))
        v->u.tensor = t;
    return v;
}

/* _rebuild_parameter(data, requires_grad, backward_hooks): the tensor itself. */
static struct tm_pk_value *rebuild_parameter(struct machine *m, const struct tm_pk_value *args)
{
    struct tm_pk_value **a = args->u.seq.v;
    if (args->u.seq.n != 3 || a[0]->kind != TM_PK_TENSOR || a[1]->kind != TM_PK_BOOL ||
        a[2]->kind != TM_PK_DICT) {
        pk_fail_op(m, "the arguments are not (tensor, requires_grad, hooks)");
        return NULL;
    }
    return a[0];
}

static bool is_pair(const struct tm_pk_value *p)
{
    return (p->kind == TM_PK_TUPLE || p->kind == TM_PK_LIST) && p->u.seq.n == 2;
}

/* OrderedDict() or OrderedDict(list of (key, value) pairs), as Python 2 wrote it. */
static struct tm_pk_value *make_odict(struct machine *m, const struct tm_pk_value *args)
{
    const struct tm_pk_value *items = args->u.seq.n == 1 ? args->u.seq.v[0] : NULL;
    if (args->u.seq.n > 1 || (items && items->kind != TM_PK_LIST && items->kind != TM_PK_TUPLE)) {
        pk_fail_op(m, "OrderedDict takes nothing or a list of pairs");
        return NULL;
    }
    struct tm_pk_value *d = pk_new_value(m, TM_PK_DICT);
    for (size_t i = 0; d && items && i < items->u.seq.n; i++) {
        struct tm_pk_value *p = items->u.seq.v[i];
        if (!is_pair(p)) {
            pk_fail_op(m, "OrderedDict item %zu is not a (key, value) pair", i);
            return NULL;
        }
        if (pk_add_items(m, d, p->u.seq.v, 2))
            return NULL;
    }
    return d;
}

tm_status pk_op_reduce(struct machine *m, const struct opcode *op)
{
    struct tm_pk_value *args, *fn, *res = NULL;
    if (pk_pop(m, &args) || pk_pop(m, &fn))
        return m->status;
    if (fn->kind != TM_PK_GLOBAL)
        return pk_fail_op(m, "calls a %s", tm_pk_kind_name(fn->kind));
    if (args->kind != TM_PK_TUPLE)
        return pk_fail_op(m, "the arguments of %s are a %s, not a tuple", fn->u.global.name,
                          tm_pk_kind_name(args->kind));
    switch (fn->u.global.id) {
    case G_ODICT:
        res = make_odict(m, args);
        break;
    case G_REBUILD_V2:
    case G_REBUILD:
        res = rebuild_tensor(m, args, fn->u.global.id == G_REBUILD_V2);
        break;
    case G_PARAMETER:
        res = rebuild_parameter(m, args);
        break;
    default:
        return pk_fail_op(m, "calls the storage type %s", fn->u.global.name);
    }
    return res ? pk_push(m, res) : m->status;
}

/* The only object state a state_dict has is its _metadata (module versions),
 * set on the OrderedDict: accepted and dropped. */
tm_status pk_op_build(struct machine *m, const struct opcode *op)
{
    struct tm_pk_value *state, *obj;
    if (pk_pop(m, &state) || pk_top(m, &obj))
        return m->status;
    if (obj->kind != TM_PK_DICT || state->kind != TM_PK_DICT)
        return pk_fail(m, TM_ERR_UNSUPPORTED,
                       "pickle sets the state of a %s from a %s at offset %zu, which a state_dict "
                       "does not do", tm_pk_kind_name(obj->kind), tm_pk_kind_name(state->kind),
                       m->op_pos);
    return TM_OK;
}

struct tm_pk_storage *tm_pickle_storage(const struct tm_pickle *pk, const char *key)
{
    return pk->state->n_index ? *index_slot(pk->state, key) : NULL;
}

static const struct {
    const char *name;
    int size;
} dtypes[] = {
    [TM_CK_F32] = { "F32", 4 }, [TM_CK_F16] = { "F16", 2 }, [TM_CK_BF16] = { "BF16", 2 },
    [TM_CK_I64] = { "I64", 8 }, [TM_CK_F64] = { "F64", 8 },
};

int tm_ckpt_dtype_size(enum tm_ckpt_dtype dt)
{
    return dtypes[dt].size;
}

const char *tm_ckpt_dtype_name(enum tm_ckpt_dtype dt)
{
    return dtypes[dt].name;
}
