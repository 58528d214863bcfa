/* pickle_vm.h: the unpickler's machine, shared by pickle.c (opcodes, stack,
 * memo, containers) and pickle_torch.c (what the allowed globals, REDUCE,
 * BUILD and persistent ids mean). Internal to those two: see pickle.h. */
#ifndef TM_PICKLE_VM_H
#define TM_PICKLE_VM_H

#include "pickle.h"

struct tm_pk_state {
    struct chunk *chunks;         /* the arena */
    struct tm_pk_storage **index; /* storages by key, open addressing; n_index is a power of 2 */
    size_t n_index;
    int storages_cap;
};

struct opcode;

struct machine {
    const uint8_t *b;
    size_t size, pos, op_pos;
    const struct opcode *op;     /* the opcode at op_pos */
    struct tm_pk_value **stack;
    size_t sp, stack_cap;
    size_t marks[TM_PK_MAX_DEPTH];
    int n_marks;
    struct tm_pk_value **memo;
    size_t memo_cap, memo_count;
    size_t n_values;
    bool done;
    struct tm_pickle *pk;
    tm_status status;            /* of the last failure */
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

/* Sets the message and m->status; returns s. */
tm_status pk_fail(struct machine *m, tm_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A corrupt-pickle error naming the opcode at hand and its offset. */
tm_status pk_fail_op(struct machine *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Arena memory, or NULL after setting an out-of-memory error. */
void *pk_alloc(struct machine *m, size_t n);
/* A zeroed value of that kind, or NULL after setting an error. */
struct tm_pk_value *pk_new_value(struct machine *m, enum tm_pk_kind kind);

/* The stack; items below the innermost MARK are out of reach. */
tm_status pk_push(struct machine *m, struct tm_pk_value *v);
tm_status pk_pop(struct machine *m, struct tm_pk_value **v);
tm_status pk_top(struct machine *m, struct tm_pk_value **v);

/* Appends items to container c and freezes them. */
tm_status pk_add_items(struct machine *m, struct tm_pk_value *c, struct tm_pk_value **items,
                       size_t n);

/* Opcode handlers of pickle_torch.c. */
tm_status pk_op_global(struct machine *m, const struct opcode *op);
tm_status pk_op_stack_global(struct machine *m, const struct opcode *op);
tm_status pk_op_reduce(struct machine *m, const struct opcode *op);
tm_status pk_op_build(struct machine *m, const struct opcode *op);
tm_status pk_op_binpersid(struct machine *m, const struct opcode *op);

#endif
