/* pickle.c: the restricted unpickler (see pickle.h): a stack machine over
 * the opcodes in the table at the end; pickle_torch.c gives meaning to the
 * few globals it allows and to persistent ids. Values live in
 * an arena freed at once, so memo entries may be shared freely. A container
 * is frozen once it is placed in another one; modifying a frozen container
 * is an error, which makes the tree acyclic and lets each container's depth
 * be final when it is placed. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickle_vm.h"

#define MAX_STACK (1u << 20)
#define MAX_MEMO (1u << 22)
#define MAX_VALUES (1u << 22)
#define MAX_STR (16u << 20)
#define CHUNK_SIZE (64u << 10)

/* ---- Allocation ------------------------------------------------------- */

struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
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

tm_status pk_fail(struct machine *m, tm_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err, m->errlen, fmt, ap);
    va_end(ap);
    m->status = s;
    return s;
}

tm_status pk_fail_op(struct machine *m, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pk_fail(m, TM_ERR_FORMAT, "corrupt pickle: %s at offset %zu: %s", m->op->name, m->op_pos,
                   msg);
}

void *pk_alloc(struct machine *m, size_t n)
{
    void *p = arena_alloc(m->pk->state, n);
    if (!p)
        pk_fail(m, TM_ERR_NOMEM, "out of memory reading the pickle");
    return p;
}

struct tm_pk_value *pk_new_value(struct machine *m, enum tm_pk_kind kind)
{
    if (++m->n_values > MAX_VALUES) {
        pk_fail(m, TM_ERR_FORMAT, "pickle has more than %u objects", MAX_VALUES);
        return NULL;
    }
    struct tm_pk_value *v = pk_alloc(m, sizeof *v);
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
    struct tm_pk_value *v = pk_new_value(m, kind);
    char *copy = v ? pk_alloc(m, n + 1) : NULL;
    if (!copy)
        return NULL;
    memcpy(copy, s, n);
    copy[n] = '\0';
    v->u.str.s = copy;
    v->u.str.len = n;
    return v;
}

/* ---- Reading the byte stream ------------------------------------------ */

static tm_status need(struct machine *m, size_t n)
{
    if (m->size - m->pos >= n)
        return TM_OK;
    return pk_fail(m, TM_ERR_FORMAT, "pickle is truncated: %s at offset %zu needs %zu more bytes",
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

tm_status pk_push(struct machine *m, struct tm_pk_value *v)
{
    if (m->sp == m->stack_cap) {
        if (m->stack_cap >= MAX_STACK)
            return pk_fail(m, TM_ERR_FORMAT, "pickle stack holds more than %u objects", MAX_STACK);
        size_t cap = m->stack_cap * 2;
        struct tm_pk_value **s = realloc(m->stack, cap * sizeof *s);
        if (!s)
            return pk_fail(m, TM_ERR_NOMEM, "out of memory reading the pickle");
        m->stack = s;
        m->stack_cap = cap;
    }
    m->stack[m->sp++] = v;
    return TM_OK;
}

/* Items below the innermost MARK are out of reach, as in CPython. */
tm_status pk_pop(struct machine *m, struct tm_pk_value **v)
{
    *v = NULL;
    if (m->sp <= stack_floor(m))
        return pk_fail_op(m, "stack underflow");
    *v = m->stack[--m->sp];
    return TM_OK;
}

tm_status pk_top(struct machine *m, struct tm_pk_value **v)
{
    *v = NULL;
    if (m->sp <= stack_floor(m))
        return pk_fail_op(m, "stack underflow");
    *v = m->stack[m->sp - 1];
    return TM_OK;
}

/* Pops the innermost MARK: the items pushed since are stack[*start..sp). */
static tm_status pop_mark(struct machine *m, size_t *start)
{
    *start = 0;
    if (!m->n_marks)
        return pk_fail_op(m, "no MARK to close");
    *start = m->marks[--m->n_marks];
    return TM_OK;
}

static tm_status memo_put(struct machine *m, uint64_t idx)
{
    if (idx >= MAX_MEMO)
        return pk_fail_op(m, "memo index %llu is over the limit of %u", (unsigned long long)idx,
                          MAX_MEMO);
    struct tm_pk_value *v;
    if (pk_top(m, &v))
        return m->status;
    if (idx >= m->memo_cap) {
        size_t cap = m->memo_cap ? m->memo_cap : 64;
        while (cap <= idx)
            cap *= 2;
        struct tm_pk_value **memo = realloc(m->memo, cap * sizeof *memo);
        if (!memo)
            return pk_fail(m, TM_ERR_NOMEM, "out of memory reading the pickle");
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
        return pk_fail_op(m, "memo entry %llu was never written", (unsigned long long)idx);
    return pk_push(m, m->memo[idx]);
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
        return pk_fail_op(m, "a %s would contain itself", tm_pk_kind_name(c->kind));
    if (is_container(item) && item->depth >= c->depth) {
        if (item->depth + 1 > TM_PK_MAX_DEPTH)
            return pk_fail(m, TM_ERR_FORMAT, "pickle nests deeper than %d levels", TM_PK_MAX_DEPTH);
        c->depth = item->depth + 1;
    }
    if (c->u.seq.n == c->u.seq.cap) {
        size_t cap = c->u.seq.cap ? c->u.seq.cap * 2 : 4;
        struct tm_pk_value **v = pk_alloc(m, cap * sizeof *v);
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

tm_status pk_add_items(struct machine *m, struct tm_pk_value *c, struct tm_pk_value **items,
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
        return pk_fail_op(m, "stack underflow");
    *c = m->stack[at];
    if ((*c)->kind != kind)
        return pk_fail_op(m, "expects a %s but finds a %s", tm_pk_kind_name(kind),
                          tm_pk_kind_name((*c)->kind));
    if ((*c)->frozen)
        return pk_fail_op(m, "modifies a %s already placed in another container",
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
        return pk_fail(m, TM_ERR_UNSUPPORTED, "pickle protocol %llu is not supported",
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
    if (pk_pop(m, &m->pk->root))
        return m->status;
    m->done = true;
    return TM_OK;
}

static tm_status op_const(struct machine *m, const struct opcode *op)
{
    struct tm_pk_value *v = pk_new_value(m, (enum tm_pk_kind)op->kind);
    if (!v)
        return m->status;
    v->u.b = op->width; /* NEWTRUE and NEWFALSE carry their value here */
    return pk_push(m, v);
}

/* BININT1, BININT2 (unsigned) and BININT (signed 32-bit). */
static tm_status op_int(struct machine *m, const struct opcode *op)
{
    uint64_t u;
    if (read_uint(m, op->width, &u))
        return m->status;
    struct tm_pk_value *v = pk_new_value(m, TM_PK_INT);
    if (!v)
        return m->status;
    v->u.i = op->width == 4 ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
    return pk_push(m, v);
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
        return big ? pk_push(m, big) : m->status;
    }
    uint64_t u = 0;
    for (size_t i = n; i-- > 0;)
        u = u << 8 | p[i];
    if (n && n < 8 && (p[n - 1] & 0x80)) /* negative: sign-extend */
        u |= ~UINT64_C(0) << (8 * n);
    struct tm_pk_value *v = pk_new_value(m, TM_PK_INT);
    if (!v)
        return m->status;
    v->u.i = (int64_t)u;
    return pk_push(m, v);
}

static tm_status op_binfloat(struct machine *m, const struct opcode *op)
{
    if (need(m, 8))
        return m->status;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) /* big-endian, unlike every other argument */
        u = u << 8 | m->b[m->pos++];
    struct tm_pk_value *v = pk_new_value(m, TM_PK_FLOAT);
    if (!v)
        return m->status;
    memcpy(&v->u.f, &u, sizeof u);
    return pk_push(m, v);
}

/* Every length-prefixed string opcode: width is the size of the length. */
static tm_status op_string(struct machine *m, const struct opcode *op)
{
    uint64_t n;
    if (read_uint(m, op->width, &n))
        return m->status;
    if (n > MAX_STR)
        return pk_fail_op(m, "a string of %llu bytes is over the limit of %u",
                          (unsigned long long)n, MAX_STR);
    if (need(m, n))
        return m->status;
    struct tm_pk_value *v = new_string(m, (enum tm_pk_kind)op->kind, m->b + m->pos, n);
    m->pos += n;
    return v ? pk_push(m, v) : m->status;
}

/* ---- Opcode handlers: stack, marks, memo ------------------------------ */

static tm_status op_mark(struct machine *m, const struct opcode *op)
{
    if (m->n_marks == TM_PK_MAX_DEPTH)
        return pk_fail(m, TM_ERR_FORMAT, "pickle nests deeper than %d levels", TM_PK_MAX_DEPTH);
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
    return pk_top(m, &v) ? m->status : pk_push(m, v);
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
    struct tm_pk_value *v = pk_new_value(m, (enum tm_pk_kind)op->kind);
    return v ? pk_push(m, v) : m->status;
}

/* A new container of kind from the items at stack[start..sp), which it takes. */
static tm_status collect(struct machine *m, enum tm_pk_kind kind, size_t start)
{
    struct tm_pk_value *v = pk_new_value(m, kind);
    if (!v || pk_add_items(m, v, m->stack + start, m->sp - start))
        return m->status;
    m->sp = start;
    return pk_push(m, v);
}

/* TUPLE1, TUPLE2, TUPLE3: the top width items. */
static tm_status op_tuple_n(struct machine *m, const struct opcode *op)
{
    if (m->sp - stack_floor(m) < op->width)
        return pk_fail_op(m, "stack underflow");
    return collect(m, TM_PK_TUPLE, m->sp - op->width);
}

/* TUPLE, LIST, DICT: everything since the innermost MARK. */
static tm_status op_from_mark(struct machine *m, const struct opcode *op)
{
    size_t start;
    if (pop_mark(m, &start))
        return m->status;
    if (op->kind == TM_PK_DICT && (m->sp - start) % 2)
        return pk_fail_op(m, "a key without a value");
    return collect(m, (enum tm_pk_kind)op->kind, start);
}

/* APPEND (width 1) and SETITEM (width 2): the top items into the container below. */
static tm_status op_add(struct machine *m, const struct opcode *op)
{
    struct tm_pk_value *c;
    if (m->sp - stack_floor(m) < (size_t)op->width + 1)
        return pk_fail_op(m, "stack underflow");
    if (target(m, m->sp - op->width - 1, (enum tm_pk_kind)op->kind, &c) ||
        pk_add_items(m, c, m->stack + m->sp - op->width, op->width))
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
        return pk_fail_op(m, "a key without a value");
    if (start == stack_floor(m))
        return pk_fail_op(m, "stack underflow");
    if (target(m, start - 1, (enum tm_pk_kind)op->kind, &c) ||
        pk_add_items(m, c, m->stack + start, m->sp - start))
        return m->status;
    m->sp = start;
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
    OP('c', "GLOBAL", pk_op_global, 0, 0),
    OP(0x93, "STACK_GLOBAL", pk_op_stack_global, 0, 0),
    OP('R', "REDUCE", pk_op_reduce, 0, 0),
    OP('b', "BUILD", pk_op_build, 0, 0),
    OP('Q', "BINPERSID", pk_op_binpersid, 0, 0),
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
            return pk_fail(m, TM_ERR_FORMAT,
                           "pickle is truncated: it ends at offset %zu without a STOP opcode",
                           m->pos);
        m->op_pos = m->pos;
        uint8_t code = m->b[m->pos++];
        m->op = &opcodes[code];
        if (!m->op->name)
            return pk_fail(m, TM_ERR_FORMAT, "unknown pickle opcode 0x%02x at offset %zu", code,
                           m->op_pos);
        if (!m->op->fn)
            return pk_fail(m, TM_ERR_UNSUPPORTED,
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
