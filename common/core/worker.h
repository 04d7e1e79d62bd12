/*
 * worker: one thread for CPU-heavy jobs (PLAIN's PBKDF2: milliseconds), so an io_uring
 * thread or shard worker never stalls every other connection behind one of them.
 *
 * A job goes in from its client's thread and comes back to the same thread: done()
 * runs inside worker_poll(), which the client calls when its eventfd is readable.
 * The job struct is the caller's (embed it in something larger) and must stay alive
 * until done() has run; run() executes on the worker thread and must only touch what
 * the job owns.
 *
 * Threads: worker_submit() and worker_poll() on the client's thread only; any number
 * of clients per worker.
 */
#ifndef STARLING_WORKER_H
#define STARLING_WORKER_H

struct worker;
struct worker_client;

struct worker_job {
    struct worker_job *next;
    struct worker_client *cl;
    void (*run)(struct worker_job *job);  /* on the worker thread */
    void (*done)(struct worker_job *job); /* back on the client's thread */
};

/* 0 or -errno. */
int worker_start(struct worker **out);
/* Finishes queued jobs, then joins the thread. Clients must be freed first. */
void worker_stop(struct worker *w);

int worker_client_new(struct worker *w, struct worker_client **out);
/* Frees the client. No job of it may be queued or running. */
void worker_client_free(struct worker_client *cl);
/* Readable when jobs have come back. */
int worker_client_fd(const struct worker_client *cl);

void worker_submit(struct worker_client *cl, struct worker_job *job);
/* Runs done() of every job that came back; returns how many. */
unsigned worker_poll(struct worker_client *cl);

#endif
