/* check.h: what the C tests share: pass/fail counting (each test prints its
 * failures as they happen and ends with "N passed, M failed") and
 * deterministic random test data. */
#ifndef TM_TEST_CHECK_H
#define TM_TEST_CHECK_H

#include <stdint.h>
#include <stdio.h>

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
