/* check.h: what the C tests share: pass/fail counting (each test prints its
 * failures as they happen and ends with "N passed, M failed") and
 * guarded buffers and deterministic random test data. */
#ifndef TM_TEST_CHECK_H
#define TM_TEST_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int n_pass __attribute__((unused)), n_fail __attribute__((unused));

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (cond) {                                                          \
            n_pass++;                                                        \
        } else {                                                             \
            n_fail++;                                                        \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);           \
            printf(__VA_ARGS__);                                             \
            printf("\n");                                                    \
        }                                                                    \
    } while (0)

/* Buffers of n floats with GUARD sentinels on each side (the data starts at
 * p + GUARD), so that a kernel writing out of bounds fails its test. */
#define GUARD 64
#define SENTINEL 1234.5f

static inline float *guarded(long n)
{
    float *p = malloc(sizeof(float) * (size_t)(n + 2 * GUARD));
    if (!p)
        abort();
    for (long i = 0; i < n + 2 * GUARD; i++)
        p[i] = SENTINEL;
    return p;
}

static inline int guards_ok(const float *p, long n)
{
    for (long i = 0; i < GUARD; i++)
        if (p[i] != SENTINEL || p[GUARD + n + i] != SENTINEL)
            return 0;
    return 1;
}

/* xorshift64: the same data on every run and machine. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static inline float frand(void) /* uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 8388608.0) - 1.0);
}

#endif
