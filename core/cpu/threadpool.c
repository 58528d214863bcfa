/* threadpool.c: pthread workers sleeping on a condition variable between
 * jobs. A job is published under the mutex with a new generation number;
 * tasks are claimed with an atomic counter so no lock is taken per task. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "threadpool.h"

struct tm_pool {
    int n_threads;          /* including the caller */
    pthread_t *workers;     /* n_threads - 1 */
    int n_started;
    pthread_mutex_t mu;
    pthread_cond_t wake;    /* a new job or shutdown */
    pthread_cond_t idle;    /* a worker finished its share of the job */
    unsigned generation;
    int busy;               /* workers still inside the current job */
    int stop;
    tm_pool_fn fn;
    void *arg;
    int n_tasks;
    atomic_int next;
};

/* Claims tasks until none are left. */
static void drain(struct tm_pool *p, int thread)
{
    for (;;) {
        int t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= p->n_tasks)
            return;
        p->fn(p->arg, t, thread);
    }
}

struct worker_arg {
    struct tm_pool *pool;
    int thread;
};

static void *worker_main(void *varg)
{
    struct worker_arg wa = *(struct worker_arg *)varg;
    free(varg);
    struct tm_pool *p = wa.pool;
    unsigned seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        drain(p, wa.thread);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0)
            pthread_cond_signal(&p->idle);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct tm_pool *tm_pool_create(int threads)
{
    struct tm_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n_threads = threads < 1 ? 1 : threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->idle, NULL);
    atomic_init(&p->next, 0);
    p->workers = calloc((size_t)p->n_threads, sizeof *p->workers);
    if (!p->workers) {
        tm_pool_destroy(p);
        return NULL;
    }
    for (int i = 1; i < p->n_threads; i++) {
        struct worker_arg *wa = malloc(sizeof *wa);
        if (!wa) {
            tm_pool_destroy(p);
            return NULL;
        }
        wa->pool = p;
        wa->thread = i;
        if (pthread_create(&p->workers[i - 1], NULL, worker_main, wa)) {
            free(wa);
            tm_pool_destroy(p);
            return NULL;
        }
        p->n_started++;
    }
    return p;
}

void tm_pool_destroy(struct tm_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++)
        pthread_join(p->workers[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->mu);
    free(p->workers);
    free(p);
}

int tm_pool_threads(const struct tm_pool *p)
{
    return p->n_threads;
}

void tm_pool_run(struct tm_pool *p, tm_pool_fn fn, void *arg, int n)
{
    if (n <= 0)
        return;
    /* A single task or a single thread: no hand-off worth its latency. */
    if (n == 1 || p->n_started == 0) {
        for (int t = 0; t < n; t++)
            fn(arg, t, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n;
    atomic_store(&p->next, 0);
    p->busy = p->n_started;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    drain(p, 0);

    pthread_mutex_lock(&p->mu);
    while (p->busy > 0)
        pthread_cond_wait(&p->idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
