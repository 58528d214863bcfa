/* fuzz_safetensors: libFuzzer target for the core's safetensors parser
 * (core/weights/safetensors.c). Any bytes parse or fail cleanly; a parsed
 * file's tensors are all found by name and converted to float32, and its
 * metadata is all found by key. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "weights/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tm_safetensors st;
    char err[256];
    if (tm_st_parse(data, size, &st, err, sizeof err))
        return 0;
    volatile float sum = 0;
    for (int i = 0; i < st.n_tensors; i++) {
        const struct tm_st_tensor *t = &st.tensors[i];
        assert(tm_st_find(&st, t->name));
        assert(t->offset + t->nbytes <= st.data_size);
        if (t->dtype != TM_DT_F32 && t->dtype != TM_DT_F16 && t->dtype != TM_DT_BF16)
            continue;
        float *f = malloc((size_t)t->numel * sizeof *f + 1);
        assert(f);
        tm_st_to_f32(&st, t, f);
        for (uint64_t k = 0; k < t->numel; k++)
            sum += f[k];
        free(f);
    }
    for (int i = 0; i < st.n_meta; i++)
        assert(tm_st_meta(&st, st.meta_keys[i]));
    tm_st_free(&st);
    return 0;
}
