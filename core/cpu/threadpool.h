/* threadpool.h: a fixed set of worker threads owned by one CPU backend.
 * A job is n independent tasks handed out dynamically (an atomic counter), so
 * uneven tasks balance themselves; the calling thread works too. */
#ifndef TM_CPU_THREADPOOL_H
#define TM_CPU_THREADPOOL_H

struct tm_pool;

/* task: index in [0, n); thread: in [0, tm_pool_threads()) for per-thread scratch. */
typedef void (*tm_pool_fn)(void *arg, int task, int thread);

/* threads >= 1 (the caller counts as one). Returns NULL on failure. */
struct tm_pool *tm_pool_create(int threads);
void tm_pool_destroy(struct tm_pool *p);
int tm_pool_threads(const struct tm_pool *p);

/* Runs fn for every task and returns when all are done. Not reentrant. */
void tm_pool_run(struct tm_pool *p, tm_pool_fn fn, void *arg, int n);

#endif
