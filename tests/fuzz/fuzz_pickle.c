/* fuzz_pickle: libFuzzer target for the restricted unpickler
 * (tools/convert/pickle.c). Any bytes give a tree or an error, never a
 * crash, leak or hang; a tree must keep the promises of pickle.h, which this
 * checks on every value it can reach. */
#include <assert.h>
#include <string.h>

#include "pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Shared subtrees can make the tree exponentially larger than the pickle. */
#define MAX_VISITS 100000

static void check_value(const struct tm_pk_value *v)
{
    assert(v->depth >= 0 && v->depth <= TM_PK_MAX_DEPTH);
    switch (v->kind) {
    case TM_PK_STR:
    case TM_PK_BYTES:
    case TM_PK_BIGINT:
        assert(v->u.str.s[v->u.str.len] == '\0');
        break;
    case TM_PK_TUPLE:
    case TM_PK_LIST:
    case TM_PK_DICT:
        assert(v->u.seq.n <= v->u.seq.cap && (v->kind != TM_PK_DICT || v->u.seq.n % 2 == 0));
        for (size_t i = 0; i < v->u.seq.n; i++)
            assert(v->u.seq.v[i]->depth < v->depth);
        break;
    case TM_PK_TENSOR: {
        const struct tm_pk_tensor *t = v->u.tensor;
        assert(t->ndim >= 0 && t->ndim <= TM_CK_MAX_DIMS && t->offset >= 0);
        for (int k = 0; k < t->ndim; k++)
            assert(t->shape[k] >= 0 && t->stride[k] >= 0);
        assert(t->view.offset + t->view.numel <= t->view.storage->numel);
        break;
    }
    case TM_PK_STORAGE:
        assert(v->u.storage.offset + v->u.storage.numel <= v->u.storage.storage->numel);
        break;
    default:
        break;
    }
}

/* Depth-first over the tree with an explicit stack (its depth is bounded). */
static void walk(const struct tm_pk_value *root)
{
    static struct {
        const struct tm_pk_value *v;
        size_t next;
    } stack[TM_PK_MAX_DEPTH + 1];
    int sp = 0, visits = 0;
    check_value(root);
    stack[sp].v = root;
    stack[sp++].next = 0;
    while (sp && visits < MAX_VISITS) {
        const struct tm_pk_value *v = stack[sp - 1].v;
        bool seq = v->kind == TM_PK_TUPLE || v->kind == TM_PK_LIST || v->kind == TM_PK_DICT;
        if (!seq || stack[sp - 1].next >= v->u.seq.n) {
            sp--;
            continue;
        }
        const struct tm_pk_value *c = v->u.seq.v[stack[sp - 1].next++];
        check_value(c);
        visits++;
        assert(sp <= TM_PK_MAX_DEPTH);
        stack[sp].v = c;
        stack[sp++].next = 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tm_pickle pk;
    char err[256];
    if (tm_pickle_load(data, size, &pk, err, sizeof err)) {
        assert(memchr(err, '\n', strlen(err)) == NULL);
        return 0;
    }
    assert(pk.end <= size && pk.root);
    walk(pk.root);
    for (int i = 0; i < pk.n_storages; i++)
        assert(tm_pickle_storage(&pk, pk.storages[i]->key) == pk.storages[i]);
    tm_pickle_free(&pk);
    return 0;
}
