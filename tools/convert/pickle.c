/* pickle.c: the restricted unpickler (see pickle.h).
 *
 * A stack machine over the opcodes in the table at the end. Values live in
 * an arena freed at once, so memo entries may be shared freely. A container
 * is frozen once it is placed in another one; modifying a frozen container
 * is an error, which makes the tree acyclic and lets each container's depth
 * be final when it is placed. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickle.h"

#define MAX_STACK (1u << 20)
#define MAX_MEMO (1u << 22)
#define MAX_VALUES (1u << 22)
#define MAX_STR (16u << 20)
#define MAX_KEY 256
#define CHUNK_SIZE (64u << 10)

/* ---- Allocation ------------------------------------------------------- */

struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
};

struct tm_pk_state {
    struct chunk *chunks;
    struct tm_pk_storage **index; /* open addressing by key; n_index is a power of 2 */
    size_t n_index;
    int storages_cap;
};

static void *arena_alloc(struct tm_pk_state *st, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct chunk *c = st->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_SIZE ? n : CHUNK_SIZE;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = st->chunks;
        st->chunks = c;
    }
    void *p = (unsigned char *)c->data + c->used;
    c->used += n;
    return p;
}

/* ---- Machine state and errors ----------------------------------------- */

struct opcode;

struct machine {
    const uint8_t *b;
    size_t size, pos, op_pos;
    const struct opcode *op;
    struct tm_pk_value **stack;
    size_t sp, stack_cap;
    size_t marks[TM_PK_MAX_DEPTH];
    int n_marks;
    struct tm_pk_value **memo;
    size_t memo_cap, memo_count;
    size_t n_values;
    bool done;
    struct tm_pickle *pk;
    tm_status status;
    char *err;
    size_t errlen;
};

typedef tm_status (*op_fn)(struct machine *m, const struct opcode *op);

struct opcode {
    const char *name;
    op_fn fn;        /* NULL: a pickle opcode this reader refuses */
    uint8_t width;   /* bytes of the argument, for the opcodes that share a handler */
    uint8_t kind;    /* enum tm_pk_kind of the value, likewise */
};

__attribute__((format(printf, 3, 4)))
static tm_status fail(struct machine *m, tm_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err, m->errlen, fmt, ap);
    va_end(ap);
    m->status = s;
    return s;
}

/* A corrupt-pickle error that names the opcode at hand and its offset. */
__attribute__((format(printf, 2, 3)))
static tm_status fail_op(struct machine *m, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(m, TM_ERR_FORMAT, "corrupt pickle: %s at offset %zu: %s", m->op->name, m->op_pos,
                msg);
}

static void *alloc(struct machine *m, size_t n)
{
    void *p = arena_alloc(m->pk->state, n);
    if (!p)
        fail(m, TM_ERR_NOMEM, "out of memory reading the pickle");
    return p;
}

static struct tm_pk_value *new_value(struct machine *m, enum tm_pk_kind kind)
{
    if (++m->n_values > MAX_VALUES) {
        fail(m, TM_ERR_FORMAT, "pickle has more than %u objects", MAX_VALUES);
        return NULL;
    }
    struct tm_pk_value *v = alloc(m, sizeof *v);
    if (v) {
        memset(v, 0, sizeof *v);
        v->kind = kind;
        v->depth = kind == TM_PK_TUPLE || kind == TM_PK_LIST || kind == TM_PK_DICT;
    }
    return v;
}

/* Copies n bytes into the arena as a NUL-terminated string value. */
static struct tm_pk_value *new_string(struct machine *m, enum tm_pk_kind kind, const void *s,
                                      size_t n)
{
    struct tm_pk_value *v = new_value(m, kind);
    char *copy = v ? alloc(m, n + 1) : NULL;
    if (!copy)
        return NULL;
    memcpy(copy, s, n);
    copy[n] = '\0';
    v->u.str.s = copy;
    v->u.str.len = n;
    return v;
}

/* Writes s[0..n) into buf for a message: at most 60 bytes, control bytes as '?'. */
static const char *printable(const char *s, size_t n, char buf[64])
{
    size_t k = n < 60 ? n : 60;
    for (size_t i = 0; i < k; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    buf[k] = '\0';
    return buf;
}

/* ---- Reading the byte stream ------------------------------------------ */

static tm_status need(struct machine *m, size_t n)
{
    if (m->size - m->pos >= n)
        return TM_OK;
    return fail(m, TM_ERR_FORMAT, "pickle is truncated: %s at offset %zu needs %zu more bytes",
                m->op->name, m->op_pos, n - (m->size - m->pos));
}

/* An unsigned little-endian integer of n <= 8 bytes. */
static tm_status read_uint(struct machine *m, int n, uint64_t *v)
{
    *v = 0;
    if (need(m, (size_t)n))
        return m->status;
    for (int i = n - 1; i >= 0; i--)
        *v = *v << 8 | m->b[m->pos + (size_t)i];
    m->pos += (size_t)n;
    return TM_OK;
}

/* ---- The stack, marks and memo ---------------------------------------- */

static size_t stack_floor(const struct machine *m)
{
    return m->n_marks ? m->marks[m->n_marks - 1] : 0;
}

static tm_status push(struct machine *m, struct tm_pk_value *v)
{
    if (m->sp == m->stack_cap) {
        if (m->stack_cap >= MAX_STACK)
            return fail(m, TM_ERR_FORMAT, "pickle stack holds more than %u objects", MAX_STACK);
        size_t cap = m->stack_cap * 2;
        struct tm_pk_value **s = realloc(m->stack, cap * sizeof *s);
        if (!s)
            return fail(m, TM_ERR_NOMEM, "out of memory reading the pickle");
        m->stack = s;
        m->stack_cap = cap;
    }
    m->stack[m->sp++] = v;
    return TM_OK;
}

/* Items below the innermost MARK are out of reach, as in CPython. */
static tm_status pop(struct machine *m, struct tm_pk_value **v)
{
    *v = NULL;
    if (m->sp <= stack_floor(m))
        return fail_op(m, "stack underflow");
    *v = m->stack[--m->sp];
    return TM_OK;
}

static tm_status top(struct machine *m, struct tm_pk_value **v)
{
    *v = NULL;
    if (m->sp <= stack_floor(m))
        return fail_op(m, "stack underflow");
    *v = m->stack[m->sp - 1];
    return TM_OK;
}

/* Pops the innermost MARK: the items pushed since are stack[*start..sp). */
static tm_status pop_mark(struct machine *m, size_t *start)
{
    *start = 0;
    if (!m->n_marks)
        return fail_op(m, "no MARK to close");
    *start = m->marks[--m->n_marks];
    return TM_OK;
}

static tm_status memo_put(struct machine *m, uint64_t idx)
{
    if (idx >= MAX_MEMO)
        return fail_op(m, "memo index %llu is over the limit of %u", (unsigned long long)idx,
                       MAX_MEMO);
    struct tm_pk_value *v;
    if (top(m, &v))
        return m->status;
    if (idx >= m->memo_cap) {
        size_t cap = m->memo_cap ? m->memo_cap : 64;
        while (cap <= idx)
            cap *= 2;
        struct tm_pk_value **memo = realloc(m->memo, cap * sizeof *memo);
        if (!memo)
            return fail(m, TM_ERR_NOMEM, "out of memory reading the pickle");
        memset(memo + m->memo_cap, 0, (cap - m->memo_cap) * sizeof *memo);
        m->memo = memo;
        m->memo_cap = cap;
    }
    m->memo_count += !m->memo[idx];
    m->memo[idx] = v;
    return TM_OK;
}

static tm_status memo_get(struct machine *m, uint64_t idx)
{
    if (idx >= m->memo_cap || !m->memo[idx])
        return fail_op(m, "memo entry %llu was never written", (unsigned long long)idx);
    return push(m, m->memo[idx]);
}

/* ---- Containers ------------------------------------------------------- */

static bool is_container(const struct tm_pk_value *v)
{
    return v->kind == TM_PK_TUPLE || v->kind == TM_PK_LIST || v->kind == TM_PK_DICT;
}

/* Appends item to container c (which must not be frozen) and freezes it. */
static tm_status add_item(struct machine *m, struct tm_pk_value *c, struct tm_pk_value *item)
{
    if (item == c)
        return fail_op(m, "a %s would contain itself", tm_pk_kind_name(c->kind));
    if (is_container(item) && item->depth >= c->depth) {
        if (item->depth + 1 > TM_PK_MAX_DEPTH)
            return fail(m, TM_ERR_FORMAT, "pickle nests deeper than %d levels", TM_PK_MAX_DEPTH);
        c->depth = item->depth + 1;
    }
    if (c->u.seq.n == c->u.seq.cap) {
        size_t cap = c->u.seq.cap ? c->u.seq.cap * 2 : 4;
        struct tm_pk_value **v = alloc(m, cap * sizeof *v);
        if (!v)
            return m->status;
        if (c->u.seq.n)
            memcpy(v, c->u.seq.v, c->u.seq.n * sizeof *v);
        c->u.seq.v = v;
        c->u.seq.cap = cap;
    }
    c->u.seq.v[c->u.seq.n++] = item;
    item->frozen = true;
    return TM_OK;
}

static tm_status add_items(struct machine *m, struct tm_pk_value *c, struct tm_pk_value **items,
                           size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (add_item(m, c, items[i]))
            return m->status;
    return TM_OK;
}

/* The list or dict at stack[at], which the current opcode modifies. */
static tm_status target(struct machine *m, size_t at, enum tm_pk_kind kind,
                        struct tm_pk_value **c)
{
    *c = NULL;
    if (at < stack_floor(m) || at >= m->sp)
        return fail_op(m, "stack underflow");
    *c = m->stack[at];
    if ((*c)->kind != kind)
        return fail_op(m, "expects a %s but finds a %s", tm_pk_kind_name(kind),
                       tm_pk_kind_name((*c)->kind));
    if ((*c)->frozen)
        return fail_op(m, "modifies a %s already placed in another container",
                       tm_pk_kind_name(kind));
    return TM_OK;
}

/* ---- Opcode handlers: constants and strings --------------------------- */

static tm_status op_proto(struct machine *m, const struct opcode *op)
{
    uint64_t v;
    if (read_uint(m, 1, &v))
        return m->status;
    if (v > 5)
        return fail(m, TM_ERR_UNSUPPORTED, "pickle protocol %llu is not supported",
                    (unsigned long long)v);
    return TM_OK;
}

/* Frames only group opcodes for buffered reading; the whole pickle is here. */
static tm_status op_frame(struct machine *m, const struct opcode *op)
{
    uint64_t v;
    return read_uint(m, 8, &v);
}

static tm_status op_stop(struct machine *m, const struct opcode *op)
{
    if (pop(m, &m->pk->root))
        return m->status;
    m->done = true;
    return TM_OK;
}

static tm_status op_const(struct machine *m, const struct opcode *op)
{
    struct tm_pk_value *v = new_value(m, (enum tm_pk_kind)op->kind);
    if (!v)
        return m->status;
    v->u.b = op->width; /* NEWTRUE and NEWFALSE carry their value here */
    return push(m, v);
}

/* BININT1, BININT2 (unsigned) and BININT (signed 32-bit). */
static tm_status op_int(struct machine *m, const struct opcode *op)
{
    uint64_t u;
    if (read_uint(m, op->width, &u))
        return m->status;
    struct tm_pk_value *v = new_value(m, TM_PK_INT);
    if (!v)
        return m->status;
    v->u.i = op->width == 4 ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
    return push(m, v);
}

static tm_status op_long1(struct machine *m, const struct opcode *op)
{
    uint64_t n;
    if (read_uint(m, 1, &n) || need(m, n))
        return m->status;
    const uint8_t *p = m->b + m->pos;
    m->pos += n;
    if (n > 8) {
        struct tm_pk_value *big = new_string(m, TM_PK_BIGINT, p, n);
        return big ? push(m, big) : m->status;
    }
    uint64_t u = 0;
    for (size_t i = n; i-- > 0;)
        u = u << 8 | p[i];
    if (n && n < 8 && (p[n - 1] & 0x80)) /* negative: sign-extend */
        u |= ~UINT64_C(0) << (8 * n);
    struct tm_pk_value *v = new_value(m, TM_PK_INT);
    if (!v)
        return m->status;
    v->u.i = (int64_t)u;
    return push(m, v);
}

static tm_status op_binfloat(struct machine *m, const struct opcode *op)
{
    if (need(m, 8))
        return m->status;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) /* big-endian, unlike every other argument */
        u = u << 8 | m->b[m->pos++];
    struct tm_pk_value *v = new_value(m, TM_PK_FLOAT);
    if (!v)
        return m->status;
    memcpy(&v->u.f, &u, sizeof u);
    return push(m, v);
}

/* Every length-prefixed string opcode: width is the size of the length. */
static tm_status op_string(struct machine *m, const struct opcode *op)
{
    uint64_t n;
    if (read_uint(m, op->width, &n))
        return m->status;
    if (n > MAX_STR)
        return fail_op(m, "a string of %llu bytes is over the limit of %u",
                       (unsigned long long)n, MAX_STR);
    if (need(m, n))
        return m->status;
    struct tm_pk_value *v = new_string(m, (enum tm_pk_kind)op->kind, m->b + m->pos, n);
    m->pos += n;
    return v ? push(m, v) : m->status;
}

/* ---- Opcode handlers: stack, marks, memo ------------------------------ */

static tm_status op_mark(struct machine *m, const struct opcode *op)
{
    if (m->n_marks == TM_PK_MAX_DEPTH)
        return fail(m, TM_ERR_FORMAT, "pickle nests deeper than %d levels", TM_PK_MAX_DEPTH);
    m->marks[m->n_marks++] = m->sp;
    return TM_OK;
}

/* POP drops the top item, or the innermost MARK when there is none above it. */
static tm_status op_pop(struct machine *m, const struct opcode *op)
{
    size_t start;
    if (m->sp > stack_floor(m)) {
        m->sp--;
        return TM_OK;
    }
    return pop_mark(m, &start);
}

static tm_status op_pop_mark(struct machine *m, const struct opcode *op)
{
    size_t start;
    if (pop_mark(m, &start))
        return m->status;
    m->sp = start;
    return TM_OK;
}

static tm_status op_dup(struct machine *m, const struct opcode *op)
{
    struct tm_pk_value *v;
    return top(m, &v) ? m->status : push(m, v);
}

static tm_status op_put(struct machine *m, const struct opcode *op)
{
    uint64_t idx;
    return read_uint(m, op->width, &idx) ? m->status : memo_put(m, idx);
}

static tm_status op_memoize(struct machine *m, const struct opcode *op)
{
    return memo_put(m, m->memo_count);
}

static tm_status op_get(struct machine *m, const struct opcode *op)
{
    uint64_t idx;
    return read_uint(m, op->width, &idx) ? m->status : memo_get(m, idx);
}

/* ---- Opcode handlers: tuples, lists, dicts ---------------------------- */

/* EMPTY_TUPLE, EMPTY_LIST, EMPTY_DICT. */
static tm_status op_empty(struct machine *m, const struct opcode *op)
{
    struct tm_pk_value *v = new_value(m, (enum tm_pk_kind)op->kind);
    return v ? push(m, v) : m->status;
}

/* A new container of kind from the items at stack[start..sp), which it takes. */
static tm_status collect(struct machine *m, enum tm_pk_kind kind, size_t start)
{
    struct tm_pk_value *v = new_value(m, kind);
    if (!v || add_items(m, v, m->stack + start, m->sp - start))
        return m->status;
    m->sp = start;
    return push(m, v);
}

/* TUPLE1, TUPLE2, TUPLE3: the top width items. */
static tm_status op_tuple_n(struct machine *m, const struct opcode *op)
{
    if (m->sp - stack_floor(m) < op->width)
        return fail_op(m, "stack underflow");
    return collect(m, TM_PK_TUPLE, m->sp - op->width);
}

/* TUPLE, LIST, DICT: everything since the innermost MARK. */
static tm_status op_from_mark(struct machine *m, const struct opcode *op)
{
    size_t start;
    if (pop_mark(m, &start))
        return m->status;
    if (op->kind == TM_PK_DICT && (m->sp - start) % 2)
        return fail_op(m, "a key without a value");
    return collect(m, (enum tm_pk_kind)op->kind, start);
}

/* APPEND (width 1) and SETITEM (width 2): the top items into the container below. */
static tm_status op_add(struct machine *m, const struct opcode *op)
{
    struct tm_pk_value *c;
    if (m->sp - stack_floor(m) < (size_t)op->width + 1)
        return fail_op(m, "stack underflow");
    if (target(m, m->sp - op->width - 1, (enum tm_pk_kind)op->kind, &c) ||
        add_items(m, c, m->stack + m->sp - op->width, op->width))
        return m->status;
    m->sp -= op->width;
    return TM_OK;
}

/* APPENDS and SETITEMS: the items since the MARK into the container below it. */
static tm_status op_add_mark(struct machine *m, const struct opcode *op)
{
    size_t start;
    struct tm_pk_value *c;
    if (pop_mark(m, &start))
        return m->status;
    if (op->kind == TM_PK_DICT && (m->sp - start) % 2)
        return fail_op(m, "a key without a value");
    if (start == stack_floor(m))
        return fail_op(m, "stack underflow");
    if (target(m, start - 1, (enum tm_pk_kind)op->kind, &c) ||
        add_items(m, c, m->stack + start, m->sp - start))
        return m->status;
    m->sp = start;
    return TM_OK;
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
    struct tm_pk_value *v = new_value(m, TM_PK_GLOBAL);
    if (!v)
        return m->status;
    v->u.global.name = full;
    v->u.global.id = id;
    return push(m, v);
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
        return fail(m, TM_ERR_UNSUPPORTED,
                    "pickle uses %s.%s: only float32, float16, bfloat16, float64 and int64 "
                    "tensors are supported", printable(mod, mn, a), printable(name, nn, b));
    return fail(m, TM_ERR_UNSUPPORTED,
                "pickle imports %s.%s, which a checkpoint does not need: refusing to load",
                printable(mod, mn, a), printable(name, nn, b));
}

/* GLOBAL: "module\nname\n" in the stream. */
static tm_status op_global(struct machine *m, const struct opcode *op)
{
    const char *s = (const char *)m->b + m->pos;
    size_t left = m->size - m->pos;
    const char *nl1 = memchr(s, '\n', left);
    const char *nl2 = nl1 ? memchr(nl1 + 1, '\n', left - (size_t)(nl1 + 1 - s)) : NULL;
    if (!nl2)
        return fail(m, TM_ERR_FORMAT, "pickle is truncated: GLOBAL at offset %zu has no end",
                    m->op_pos);
    m->pos += (size_t)(nl2 + 1 - s);
    return find_global(m, s, (size_t)(nl1 - s), nl1 + 1, (size_t)(nl2 - nl1 - 1));
}

static tm_status op_stack_global(struct machine *m, const struct opcode *op)
{
    struct tm_pk_value *name, *mod;
    if (pop(m, &name) || pop(m, &mod))
        return m->status;
    if (name->kind != TM_PK_STR || mod->kind != TM_PK_STR)
        return fail_op(m, "module and name are a %s and a %s, not strings",
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
            return fail(m, TM_ERR_NOMEM, "out of memory reading the pickle");
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
            return fail(m, TM_ERR_NOMEM, "out of memory reading the pickle");
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
            fail(m, TM_ERR_FORMAT, "storage '%s' is declared twice with different types or sizes",
                 key);
            return NULL;
        }
        return s;
    }
    s = alloc(m, sizeof *s);
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
static tm_status parse_view(struct machine *m, const struct tm_pk_value *vm, struct tm_pk_view *view)
{
    view->offset = 0;
    view->numel = view->storage->numel;
    if (!vm || vm->kind == TM_PK_NONE)
        return TM_OK;
    struct tm_pk_value **v = vm->u.seq.v;
    if (vm->kind != TM_PK_TUPLE || vm->u.seq.n != 3 || !is_text(v[0]) || !is_count(v[1]) ||
        !is_count(v[2]))
        return fail_op(m, "storage view is not (key, offset, size)");
    if (v[1]->u.i > view->numel || v[2]->u.i > view->numel - v[1]->u.i)
        return fail_op(m, "storage view [%lld, +%lld) is outside its storage of %lld elements",
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
static tm_status parse_pid(struct machine *m, const struct tm_pk_value *pid, struct tm_pk_view *view)
{
    if (pid->kind != TM_PK_TUPLE || pid->u.seq.n < 5 || pid->u.seq.n > 6)
        return fail_op(m, "persistent id is a %s, not a storage tuple", tm_pk_kind_name(pid->kind));
    struct tm_pk_value **v = pid->u.seq.v;
    if (!is_text(v[0]) || strcmp(v[0]->u.str.s, "storage"))
        return fail(m, TM_ERR_UNSUPPORTED, "pickle refers to an outside object that is not a storage");
    if (v[1]->kind != TM_PK_GLOBAL || v[1]->u.global.id < G_STORAGE)
        return fail_op(m, "storage type is not a torch storage class");
    if (!is_text(v[2]) || !key_ok(v[2]->u.str.s, v[2]->u.str.len))
        return fail_op(m, "storage key is not a short printable string");
    if (!is_count(v[4]) || v[4]->u.i > INT64_MAX / 8)
        return fail_op(m, "storage size is not a count of elements");
    view->storage = use_storage(m, v[2]->u.str.s, (enum tm_ckpt_dtype)(v[1]->u.global.id - G_STORAGE),
                                v[4]->u.i);
    if (!view->storage)
        return m->status;
    return parse_view(m, pid->u.seq.n == 6 ? v[5] : NULL, view);
}

static tm_status op_binpersid(struct machine *m, const struct opcode *op)
{
    struct tm_pk_value *pid, *v;
    struct tm_pk_view view;
    if (pop(m, &pid) || parse_pid(m, pid, &view) || !(v = new_value(m, TM_PK_STORAGE)))
        return m->status;
    v->u.storage = view;
    return push(m, v);
}

/* ---- REDUCE and BUILD: the allowed functions -------------------------- */

/* A tensor size or stride: a tuple of at most TM_CK_MAX_DIMS counts. */
static tm_status read_dims(struct machine *m, const struct tm_pk_value *t, int64_t *out, int *n)
{
    if (t->kind != TM_PK_TUPLE)
        return fail_op(m, "tensor size or stride is a %s, not a tuple", tm_pk_kind_name(t->kind));
    if (t->u.seq.n > TM_CK_MAX_DIMS)
        return fail(m, TM_ERR_UNSUPPORTED, "a tensor has %zu dimensions; at most %d are supported",
                    t->u.seq.n, TM_CK_MAX_DIMS);
    for (size_t i = 0; i < t->u.seq.n; i++) {
        if (!is_count(t->u.seq.v[i]))
            return fail_op(m, "tensor size or stride holds a negative or non-integer entry");
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
        fail_op(m, "the arguments are not (storage, offset, size, stride%s)",
                v2 ? ", requires_grad, hooks" : "");
        return NULL;
    }
    struct tm_pk_tensor *t = alloc(m, sizeof *t);
    int ns, nst;
    if (!t || read_dims(m, a[2], t->shape, &ns) || read_dims(m, a[3], t->stride, &nst))
        return NULL;
    if (ns != nst) {
        fail_op(m, "tensor size and stride differ in length");
        return NULL;
    }
    t->view = a[0]->u.storage;
    t->offset = a[1]->u.i;
    t->ndim = ns;
    if ((v = new_value(m, TM_PK_TENSOR)))
        v->u.tensor = t;
    return v;
}

/* _rebuild_parameter(data, requires_grad, backward_hooks): the tensor itself. */
static struct tm_pk_value *rebuild_parameter(struct machine *m, const struct tm_pk_value *args)
{
    struct tm_pk_value **a = args->u.seq.v;
    if (args->u.seq.n != 3 || a[0]->kind != TM_PK_TENSOR || a[1]->kind != TM_PK_BOOL ||
        a[2]->kind != TM_PK_DICT) {
        fail_op(m, "the arguments are not (tensor, requires_grad, hooks)");
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
        fail_op(m, "OrderedDict takes nothing or a list of pairs");
        return NULL;
    }
    struct tm_pk_value *d = new_value(m, TM_PK_DICT);
    for (size_t i = 0; d && items && i < items->u.seq.n; i++) {
        struct tm_pk_value *p = items->u.seq.v[i];
        if (!is_pair(p)) {
            fail_op(m, "OrderedDict item %zu is not a (key, value) pair", i);
            return NULL;
        }
        if (add_items(m, d, p->u.seq.v, 2))
            return NULL;
    }
    return d;
}

static tm_status op_reduce(struct machine *m, const struct opcode *op)
{
    struct tm_pk_value *args, *fn, *res = NULL;
    if (pop(m, &args) || pop(m, &fn))
        return m->status;
    if (fn->kind != TM_PK_GLOBAL)
        return fail_op(m, "calls a %s", tm_pk_kind_name(fn->kind));
    if (args->kind != TM_PK_TUPLE)
        return fail_op(m, "the arguments of %s are a %s, not a tuple", fn->u.global.name,
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
        return fail_op(m, "calls the storage type %s", fn->u.global.name);
    }
    return res ? push(m, res) : m->status;
}

/* The only object state a state_dict has is its _metadata (module versions),
 * set on the OrderedDict: accepted and dropped. */
static tm_status op_build(struct machine *m, const struct opcode *op)
{
    struct tm_pk_value *state, *obj;
    if (pop(m, &state) || top(m, &obj))
        return m->status;
    if (obj->kind != TM_PK_DICT || state->kind != TM_PK_DICT)
        return fail(m, TM_ERR_UNSUPPORTED,
                    "pickle sets the state of a %s from a %s at offset %zu, which a state_dict "
                    "does not do", tm_pk_kind_name(obj->kind), tm_pk_kind_name(state->kind),
                    m->op_pos);
    return TM_OK;
}

/* ---- The opcode table and the machine --------------------------------- */

#define OP(code, name, fn, width, kind) [code] = { name, fn, width, kind }
#define NO(code, name) [code] = { name, NULL, 0, 0 }

static const struct opcode opcodes[256] = {
    OP(0x80, "PROTO", op_proto, 0, 0),
    OP(0x95, "FRAME", op_frame, 0, 0),
    OP('.', "STOP", op_stop, 0, 0),
    OP('(', "MARK", op_mark, 0, 0),
    OP('0', "POP", op_pop, 0, 0),
    OP('1', "POP_MARK", op_pop_mark, 0, 0),
    OP('2', "DUP", op_dup, 0, 0),
    OP('N', "NONE", op_const, 0, TM_PK_NONE),
    OP(0x88, "NEWTRUE", op_const, 1, TM_PK_BOOL),
    OP(0x89, "NEWFALSE", op_const, 0, TM_PK_BOOL),
    OP('J', "BININT", op_int, 4, 0),
    OP('K', "BININT1", op_int, 1, 0),
    OP('M', "BININT2", op_int, 2, 0),
    OP(0x8a, "LONG1", op_long1, 0, 0),
    OP('G', "BINFLOAT", op_binfloat, 0, 0),
    OP('U', "SHORT_BINSTRING", op_string, 1, TM_PK_STR),
    OP('T', "BINSTRING", op_string, 4, TM_PK_STR),
    OP('X', "BINUNICODE", op_string, 4, TM_PK_STR),
    OP(0x8c, "SHORT_BINUNICODE", op_string, 1, TM_PK_STR),
    OP(0x8d, "BINUNICODE8", op_string, 8, TM_PK_STR),
    OP('B', "BINBYTES", op_string, 4, TM_PK_BYTES),
    OP('C', "SHORT_BINBYTES", op_string, 1, TM_PK_BYTES),
    OP(')', "EMPTY_TUPLE", op_empty, 0, TM_PK_TUPLE),
    OP('t', "TUPLE", op_from_mark, 0, TM_PK_TUPLE),
    OP(0x85, "TUPLE1", op_tuple_n, 1, 0),
    OP(0x86, "TUPLE2", op_tuple_n, 2, 0),
    OP(0x87, "TUPLE3", op_tuple_n, 3, 0),
    OP(']', "EMPTY_LIST", op_empty, 0, TM_PK_LIST),
    OP('a', "APPEND", op_add, 1, TM_PK_LIST),
    OP('e', "APPENDS", op_add_mark, 0, TM_PK_LIST),
    OP('l', "LIST", op_from_mark, 0, TM_PK_LIST),
    OP('}', "EMPTY_DICT", op_empty, 0, TM_PK_DICT),
    OP('d', "DICT", op_from_mark, 0, TM_PK_DICT),
    OP('s', "SETITEM", op_add, 2, TM_PK_DICT),
    OP('u', "SETITEMS", op_add_mark, 0, TM_PK_DICT),
    OP('q', "BINPUT", op_put, 1, 0),
    OP('r', "LONG_BINPUT", op_put, 4, 0),
    OP(0x94, "MEMOIZE", op_memoize, 0, 0),
    OP('h', "BINGET", op_get, 1, 0),
    OP('j', "LONG_BINGET", op_get, 4, 0),
    OP('c', "GLOBAL", op_global, 0, 0),
    OP(0x93, "STACK_GLOBAL", op_stack_global, 0, 0),
    OP('R', "REDUCE", op_reduce, 0, 0),
    OP('b', "BUILD", op_build, 0, 0),
    OP('Q', "BINPERSID", op_binpersid, 0, 0),
    /* Real pickle opcodes that a torch state_dict never needs. */
    NO('I', "INT"), NO('L', "LONG"), NO(0x8b, "LONG4"), NO('F', "FLOAT"), NO('S', "STRING"),
    NO('V', "UNICODE"), NO(0x8e, "BINBYTES8"), NO(0x96, "BYTEARRAY8"), NO(0x97, "NEXT_BUFFER"),
    NO(0x98, "READONLY_BUFFER"), NO(0x8f, "EMPTY_SET"), NO(0x90, "ADDITEMS"),
    NO(0x91, "FROZENSET"), NO(0x81, "NEWOBJ"), NO(0x92, "NEWOBJ_EX"), NO(0x82, "EXT1"),
    NO(0x83, "EXT2"), NO(0x84, "EXT4"), NO('i', "INST"), NO('o', "OBJ"), NO('p', "PUT"),
    NO('g', "GET"), NO('P', "PERSID"),
};

static tm_status run(struct machine *m)
{
    while (!m->done) {
        if (m->pos >= m->size)
            return fail(m, TM_ERR_FORMAT,
                        "pickle is truncated: it ends at offset %zu without a STOP opcode", m->pos);
        m->op_pos = m->pos;
        uint8_t code = m->b[m->pos++];
        m->op = &opcodes[code];
        if (!m->op->name)
            return fail(m, TM_ERR_FORMAT, "unknown pickle opcode 0x%02x at offset %zu", code,
                        m->op_pos);
        if (!m->op->fn)
            return fail(m, TM_ERR_UNSUPPORTED,
                        "pickle opcode 0x%02x (%s) at offset %zu is not supported", code,
                        m->op->name, m->op_pos);
        if (m->op->fn(m, m->op))
            return m->status;
    }
    return TM_OK;
}

tm_status tm_pickle_load(const uint8_t *bytes, size_t size, struct tm_pickle *pk, char *err,
                         size_t errlen)
{
    memset(pk, 0, sizeof *pk);
    struct machine m = { .b = bytes, .size = size, .pk = pk, .err = err, .errlen = errlen,
                         .stack_cap = 64 };
    /* Never NULL, so that stack + start is always defined. */
    m.stack = malloc(m.stack_cap * sizeof *m.stack);
    pk->state = calloc(1, sizeof *pk->state);
    if (!pk->state || !m.stack) {
        free(m.stack);
        free(pk->state);
        pk->state = NULL;
        snprintf(err, errlen, "out of memory reading the pickle");
        return TM_ERR_NOMEM;
    }
    tm_status s = run(&m);
    free(m.stack);
    free(m.memo);
    if (s) {
        tm_pickle_free(pk);
        return s;
    }
    pk->end = m.pos;
    return TM_OK;
}

struct tm_pk_storage *tm_pickle_storage(const struct tm_pickle *pk, const char *key)
{
    return pk->state->n_index ? *index_slot(pk->state, key) : NULL;
}

void tm_pickle_free(struct tm_pickle *pk)
{
    if (pk->state) {
        for (struct chunk *c = pk->state->chunks, *next; c; c = next) {
            next = c->next;
            free(c);
        }
        free(pk->state->index);
        free(pk->state);
    }
    free(pk->storages);
    memset(pk, 0, sizeof *pk);
}

const char *tm_pk_kind_name(enum tm_pk_kind kind)
{
    static const char *const names[] = { "None",  "bool",  "int",   "int",    "float",
                                         "str",   "bytes", "tuple", "list",   "dict",
                                         "tensor", "storage", "class" };
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
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
