/* fuzz_ckpt: libFuzzer target for the whole checkpoint loader
 * (tools/convert/torch_ckpt.c: zip and legacy containers, the unpickler,
 * flattening, strided copies). Any bytes give tensors or an error, never a
 * crash, leak or hang; every byte of every tensor is read. */
#include <assert.h>
#include <string.h>

#include "torch_ckpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tm_ckpt ck;
    char err[256];
    if (tm_ckpt_load_memory(data, size, &ck, err, sizeof err)) {
        assert(memchr(err, '\n', strlen(err)) == NULL);
        return 0;
    }
    volatile uint8_t sum = 0;
    for (int i = 0; i < ck.n_tensors; i++) {
        const struct tm_ckpt_tensor *t = &ck.tensors[i];
        uint64_t n = (uint64_t)tm_ckpt_dtype_size(t->dtype);
        for (int k = 0; k < t->ndim; k++)
            n *= (uint64_t)t->shape[k];
        assert(n == t->nbytes && t->data && t->ndim <= TM_CK_MAX_DIMS);
        assert(t->prefix_len >= 0 && (size_t)t->prefix_len <= strlen(t->name));
        for (size_t b = 0; b < t->nbytes; b++)
            sum += ((const uint8_t *)t->data)[b];
    }
    for (int i = 0; i < ck.n_others; i++)
        assert(ck.others[i]);
    tm_ckpt_free(&ck);
    return 0;
}
