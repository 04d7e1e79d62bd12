#include "common/core/worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct worker {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct worker_job *head, *tail; /* to run, in order */
    bool stop;
};

struct worker_client {
    struct worker *w;
    int efd;
    pthread_mutex_t lock;
    struct worker_job *done; /* came back, newest first */
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->head && !w->stop)
            pthread_cond_wait(&w->wake, &w->lock);
        if (!w->head)
            break;
        struct worker_job *j = w->head;
        w->head = j->next;
        if (!w->head)
            w->tail = NULL;
        pthread_mutex_unlock(&w->lock);

        j->run(j);
        struct worker_client *cl = j->cl;
        pthread_mutex_lock(&cl->lock);
        bool was_empty = !cl->done;
        j->next = cl->done;
        cl->done = j;
        pthread_mutex_unlock(&cl->lock);
        if (was_empty) {
            uint64_t one = 1;
            /* An eventfd write fails only if the counter would overflow: never here. */
            (void)!write(cl->efd, &one, sizeof one);
        }
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int worker_start(struct worker **out)
{
    struct worker *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    int err = pthread_create(&w->thread, NULL, worker_main, w);
    if (err) {
        free(w);
        return -err;
    }
    *out = w;
    return 0;
}

void worker_stop(struct worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    free(w);
}

int worker_client_new(struct worker *w, struct worker_client **out)
{
    struct worker_client *cl = calloc(1, sizeof *cl);
    if (!cl)
        return -ENOMEM;
    cl->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (cl->efd < 0) {
        int err = -errno;
        free(cl);
        return err;
    }
    pthread_mutex_init(&cl->lock, NULL);
    cl->w = w;
    *out = cl;
    return 0;
}

void worker_client_free(struct worker_client *cl)
{
    if (!cl)
        return;
    close(cl->efd);
    pthread_mutex_destroy(&cl->lock);
    free(cl);
}

int worker_client_fd(const struct worker_client *cl)
{
    return cl->efd;
}

void worker_submit(struct worker_client *cl, struct worker_job *job)
{
    struct worker *w = cl->w;
    job->cl = cl;
    job->next = NULL;
    pthread_mutex_lock(&w->lock);
    if (w->tail)
        w->tail->next = job;
    else
        w->head = job;
    w->tail = job;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

unsigned worker_poll(struct worker_client *cl)
{
    uint64_t n;
    (void)!read(cl->efd, &n, sizeof n);
    pthread_mutex_lock(&cl->lock);
    struct worker_job *list = cl->done;
    cl->done = NULL;
    pthread_mutex_unlock(&cl->lock);
    /* Back to submission order: the list is newest first. */
    struct worker_job *rev = NULL;
    while (list) {
        struct worker_job *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    unsigned count = 0;
    while (rev) {
        struct worker_job *next = rev->next;
        rev->done(rev);
        rev = next;
        count++;
    }
    return count;
}
