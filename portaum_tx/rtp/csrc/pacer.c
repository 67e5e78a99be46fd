/* The RTP send pacer: one thread of its own that sends each tick's packets at the
 * tick's instant.
 *
 * Without it the media tick sends as it runs, so every pause of the interpreter
 * (a garbage collection, a long tick, SIP work that happens to come first) delays
 * every stream's packet by as much. With it, the tick prepares its packets a few
 * ticks ahead (the media clock's send_ahead) into a batch stamped with the instant
 * they are due, and this thread, which never takes the GIL, sends the batch when
 * that instant comes. A pause shorter than the lead no longer reaches the wire.
 *
 * The thread runs one scheduling priority above the process when the process has a
 * real-time policy (telephony media is commonly run so), so that on a busy core it
 * preempts the interpreter thread instead of waiting for it.
 *
 * Prompt audio is known ahead of time, so the media clock queues it further ahead
 * than live audio (its prompt_ahead); batches are therefore committed out of order
 * and kept sorted by their instant. When the caller barges in, withdraw() takes the
 * session's packets that are not yet due back out of the queue.
 *
 * Sockets belong to the sessions: a session leaving the media clock calls forget()
 * before its socket is closed, so no queued packet can go out on a descriptor
 * number that has since been reused.
 */
#include "rtpcore.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    socklen_t address_length;
    struct sockaddr_storage address;
    Py_ssize_t size;
    size_t offset; /* of the packet's bytes in the batch's arena */
} PacedPacket;

/* A batch's packets: their descriptors apart (withdraw() scans them), their bytes one
 * after the other in an arena (a G.711 packet is 172 bytes, not the largest size). */
typedef struct Batch {
    double due; /* seconds of CLOCK_REALTIME, the clock of time.time() */
    Py_ssize_t count, capacity;
    PacedPacket *packets;
    int *fds; /* -1: its session has gone or withdrew it */
    unsigned char *arena;
    size_t used, arena_capacity;
    struct Batch *next;
} Batch;

typedef struct {
    PyObject_HEAD
    pthread_mutex_t lock;
    pthread_cond_t wake; /* the thread: work committed, or stop */
    pthread_cond_t idle; /* forget()/drain(): a batch finished */
    pthread_t thread;
    int started, stopping;
    Batch *head, *tail; /* committed, oldest first */
    Batch *sending;     /* taken by the thread, being sent (read only there) */
    Batch *spare;
    Batch *open;        /* being filled by the interpreter thread (GIL held) */
    /* counters, written under the lock */
    unsigned long long packets_sent, send_errors, batches_sent, late_batches, forgotten, withdrawn;
    double max_late;
    double late_threshold;
    char scheduling[64];
} PacerObject;

static double
realtime_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (double)now.tv_sec + now.tv_nsec / 1e9;
}

static Batch *
take_spare(PacerObject *self)
{
    Batch *batch = self->spare;
    if (batch != NULL) {
        self->spare = batch->next;
    }
    else {
        batch = PyMem_RawCalloc(1, sizeof(Batch));
        if (batch == NULL)
            return NULL;
    }
    batch->count = 0;
    batch->used = 0;
    batch->next = NULL;
    return batch;
}

static void
free_chain(Batch *batch)
{
    while (batch != NULL) {
        Batch *next = batch->next;
        PyMem_RawFree(batch->packets);
        PyMem_RawFree(batch->fds);
        PyMem_RawFree(batch->arena);
        PyMem_RawFree(batch);
        batch = next;
    }
}

static void
send_batch(PacerObject *self, Batch *batch, unsigned long long *sent, unsigned long long *errors)
{
    for (Py_ssize_t i = 0; i < batch->count; i++) {
        PacedPacket *packet = &batch->packets[i];
        int fd = batch->fds[i];
        if (fd < 0)
            continue; /* its session has gone, or withdrew it */
        if (sendto(fd, batch->arena + packet->offset, packet->size, 0,
                   (struct sockaddr *)&packet->address, packet->address_length) < 0)
            (*errors)++; /* RTP is best effort: unreachable, buffer full */
        else
            (*sent)++;
    }
}

static void
raise_priority(PacerObject *self)
{
    int policy;
    struct sched_param param;
    if (pthread_getschedparam(pthread_self(), &policy, &param) == 0 &&
        (policy == SCHED_FIFO || policy == SCHED_RR)) {
        int highest = sched_get_priority_max(policy);
        if (param.sched_priority < highest)
            param.sched_priority++;
        if (pthread_setschedparam(pthread_self(), policy, &param) == 0) {
            snprintf(self->scheduling, sizeof self->scheduling, "%s %d",
                     policy == SCHED_FIFO ? "fifo" : "rr", param.sched_priority);
            return;
        }
    }
    /* no real-time policy: a thread that sleeps most of the time is woken promptly
     * by the fair scheduler anyway; ask for a better nice value where allowed */
    pid_t tid = (pid_t)syscall(SYS_gettid);
    errno = 0;
    int nice_value = getpriority(PRIO_PROCESS, tid);
    if (errno == 0 && setpriority(PRIO_PROCESS, tid, nice_value - 5) == 0)
        snprintf(self->scheduling, sizeof self->scheduling, "nice %d", nice_value - 5);
    else
        snprintf(self->scheduling, sizeof self->scheduling, "nice %d", nice_value);
}

static void *
pacer_main(void *arg)
{
    PacerObject *self = arg;
    raise_priority(self);
    pthread_mutex_lock(&self->lock);
    while (!self->stopping) {
        Batch *batch = self->head;
        if (batch == NULL) {
            pthread_cond_wait(&self->wake, &self->lock);
            continue;
        }
        double now = realtime_now();
        if (now < batch->due) {
            struct timespec until;
            double whole = floor(batch->due);
            until.tv_sec = (time_t)whole;
            until.tv_nsec = (long)((batch->due - whole) * 1e9);
            if (until.tv_nsec >= 1000000000L)
                until.tv_nsec = 999999999L;
            /* woken early by a commit or stop: look again */
            pthread_cond_timedwait(&self->wake, &self->lock, &until);
            continue;
        }
        self->head = batch->next;
        if (self->head == NULL)
            self->tail = NULL;
        self->sending = batch;
        pthread_mutex_unlock(&self->lock);

        unsigned long long sent = 0, errors = 0;
        send_batch(self, batch, &sent, &errors);
        double late = now - batch->due;

        pthread_mutex_lock(&self->lock);
        self->sending = NULL;
        self->packets_sent += sent;
        self->send_errors += errors;
        self->batches_sent++;
        if (late > self->late_threshold)
            self->late_batches++;
        if (late > self->max_late)
            self->max_late = late;
        batch->next = self->spare;
        self->spare = batch;
        pthread_cond_broadcast(&self->idle);
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

/* --- the interpreter's side ------------------------------------------------------------ */

int
rtpcore_pacer_queue(PyObject *pacer, int fd, const struct sockaddr_storage *address,
                    socklen_t address_length, const unsigned char *data, Py_ssize_t size)
{
    PacerObject *self = (PacerObject *)pacer;
    Batch *batch = self->open;
    if (batch == NULL)
        return 0;
    if (size > RTPCORE_MAX_PACKET) {
        PyErr_SetString(PyExc_ValueError, "RTP packet too large");
        return -1;
    }
    if (batch->count == batch->capacity) {
        Py_ssize_t capacity = batch->capacity ? batch->capacity * 2 : 64;
        PacedPacket *grown = PyMem_RawRealloc(batch->packets, capacity * sizeof(PacedPacket));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        batch->packets = grown;
        int *fds = PyMem_RawRealloc(batch->fds, capacity * sizeof(int));
        if (fds == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        batch->fds = fds;
        batch->capacity = capacity;
    }
    if (batch->arena_capacity - batch->used < (size_t)size) {
        size_t capacity = batch->arena_capacity ? batch->arena_capacity : 64 * 176;
        while (capacity - batch->used < (size_t)size)
            capacity *= 2;
        unsigned char *arena = PyMem_RawRealloc(batch->arena, capacity);
        if (arena == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        batch->arena = arena;
        batch->arena_capacity = capacity;
    }
    batch->fds[batch->count] = fd;
    PacedPacket *packet = &batch->packets[batch->count++];
    packet->address_length = address_length;
    memcpy(&packet->address, address, address_length);
    packet->size = size;
    packet->offset = batch->used;
    memcpy(batch->arena + batch->used, data, size);
    batch->used += size;
    return 1;
}

static int
Pacer_init(PacerObject *self, PyObject *args, PyObject *kwds)
{
    static char *keywords[] = {"late_threshold", NULL};
    double late_threshold = 0.001;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|d:Pacer", keywords, &late_threshold))
        return -1;
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "pacer already running");
        return -1;
    }
    self->late_threshold = late_threshold;
    return 0;
}

static PyObject *
Pacer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PacerObject *self = (PacerObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->wake, NULL);
    pthread_cond_init(&self->idle, NULL);
    self->late_threshold = 0.001;
    snprintf(self->scheduling, sizeof self->scheduling, "not started");
    return (PyObject *)self;
}

static void
stop_thread(PacerObject *self)
{
    if (!self->started)
        return;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&self->lock);
    self->stopping = 1;
    pthread_cond_broadcast(&self->wake);
    pthread_mutex_unlock(&self->lock);
    pthread_join(self->thread, NULL);
    Py_END_ALLOW_THREADS
    self->started = 0;
    /* what was still queued is not sent: the sessions are going */
    pthread_mutex_lock(&self->lock);
    Batch *queued = self->head;
    self->head = self->tail = NULL;
    while (queued != NULL) {
        Batch *next = queued->next;
        self->forgotten += queued->count;
        queued->next = self->spare;
        self->spare = queued;
        queued = next;
    }
    pthread_mutex_unlock(&self->lock);
}

static void
Pacer_dealloc(PacerObject *self)
{
    stop_thread(self);
    free_chain(self->head);
    free_chain(self->spare);
    free_chain(self->open);
    pthread_mutex_destroy(&self->lock);
    pthread_cond_destroy(&self->wake);
    pthread_cond_destroy(&self->idle);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Pacer_start(PacerObject *self, PyObject *unused)
{
    if (self->started)
        Py_RETURN_NONE;
    self->stopping = 0;
    int error = pthread_create(&self->thread, NULL, pacer_main, self);
    if (error != 0) {
        errno = error;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    self->started = 1;
    Py_RETURN_NONE;
}

static PyObject *
Pacer_stop(PacerObject *self, PyObject *unused)
{
    stop_thread(self);
    Py_RETURN_NONE;
}

static PyObject *
Pacer_begin(PacerObject *self, PyObject *arg)
{
    double due = PyFloat_AsDouble(arg);
    if (due == -1.0 && PyErr_Occurred())
        return NULL;
    if (!isfinite(due)) {
        PyErr_SetString(PyExc_ValueError, "due must be a finite time");
        return NULL;
    }
    if (self->open != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a batch is already open");
        return NULL;
    }
    pthread_mutex_lock(&self->lock);
    /* A batch for this very instant is already queued (prompt audio prepared
     * earlier): reopen it, so that each instant stays one batch and one wake-up. */
    Batch **link = &self->head, *previous = NULL, *batch = NULL;
    while (*link != NULL && (*link)->due <= due) {
        if ((*link)->due == due) {
            batch = *link;
            *link = batch->next;
            if (self->tail == batch)
                self->tail = previous;
            batch->next = NULL;
            break;
        }
        previous = *link;
        link = &(*link)->next;
    }
    if (batch == NULL) {
        batch = take_spare(self);
        if (batch != NULL)
            batch->due = due;
    }
    pthread_mutex_unlock(&self->lock);
    if (batch == NULL)
        return PyErr_NoMemory();
    self->open = batch;
    Py_RETURN_NONE;
}

static PyObject *
Pacer_commit(PacerObject *self, PyObject *unused)
{
    Batch *batch = self->open;
    if (batch == NULL)
        Py_RETURN_NONE;
    self->open = NULL;
    pthread_mutex_lock(&self->lock);
    if (batch->count == 0) {
        batch->next = self->spare;
        self->spare = batch;
    }
    else {
        /* queued even while the thread is not running: start() sends it. Kept in
         * order of due instant, after any batch due at the same instant: a tick may
         * fill a batch further ahead (prompt audio) before the nearer ones exist. */
        Batch **link = &self->head;
        while (*link != NULL && (*link)->due <= batch->due)
            link = &(*link)->next;
        batch->next = *link;
        *link = batch;
        if (batch->next == NULL)
            self->tail = batch;
        pthread_cond_signal(&self->wake);
    }
    pthread_mutex_unlock(&self->lock);
    Py_RETURN_NONE;
}

static PyObject *
Pacer_send(PacerObject *self, PyObject *args)
{
    int fd;
    PyObject *address_obj;
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "iOy*:send", &fd, &address_obj, &data))
        return NULL;
    struct sockaddr_storage address;
    socklen_t length;
    PyObject *result = NULL;
    if (rtpcore_tuple_sockaddr(address_obj, &address, &length) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "address must be a (numeric host, port) tuple");
        goto done;
    }
    int queued = rtpcore_pacer_queue((PyObject *)self, fd, &address, length, data.buf, data.len);
    if (queued < 0)
        goto done;
    if (queued == 0 && sendto(fd, data.buf, data.len, 0, (struct sockaddr *)&address, length) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto done;
    }
    result = PyBool_FromLong(queued);
done:
    PyBuffer_Release(&data);
    return result;
}

static int
batch_holds(Batch *batch, int fd)
{
    for (Py_ssize_t i = 0; i < batch->count; i++)
        if (batch->fds[i] == fd)
            return 1;
    return 0;
}

/* drops ``fd``'s packets from the batches of the chain due at or after ``from_due`` */
static void
forget_in(Batch *batch, int fd, double from_due, unsigned long long *count)
{
    for (; batch != NULL; batch = batch->next) {
        if (batch->due < from_due)
            continue;
        int *fds = batch->fds;
        for (Py_ssize_t i = 0; i < batch->count; i++)
            if (fds[i] == fd) {
                fds[i] = -1;
                (*count)++;
            }
    }
}

static PyObject *
Pacer_forget(PacerObject *self, PyObject *arg)
{
    int fd = _PyLong_AsInt(arg);
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    unsigned long long count = 0;
    if (self->open != NULL)
        forget_in(self->open, fd, -INFINITY, &count);
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&self->lock);
    forget_in(self->head, fd, -INFINITY, &count);
    /* a batch on its way out may still use the descriptor: wait for it */
    while (self->sending != NULL && batch_holds(self->sending, fd))
        pthread_cond_wait(&self->idle, &self->lock);
    self->forgotten += count;
    pthread_mutex_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    return PyLong_FromUnsignedLongLong(count);
}

static PyObject *
Pacer_withdraw(PacerObject *self, PyObject *args)
{
    int fd;
    double from_due;
    if (!PyArg_ParseTuple(args, "id:withdraw", &fd, &from_due))
        return NULL;
    if (isnan(from_due)) {
        PyErr_SetString(PyExc_ValueError, "from_due must be a time");
        return NULL;
    }
    unsigned long long count = 0;
    Batch *open = self->open;
    if (open != NULL) /* the interpreter's alone until commit() */
        forget_in(open, fd, from_due, &count);
    /* The batch being sent is not touched: it was due before any instant a caller
     * may still change its mind about. Scanning a few dozen batches' descriptors is
     * short enough to do under the lock with the GIL held. */
    pthread_mutex_lock(&self->lock);
    forget_in(self->head, fd, from_due, &count);
    self->withdrawn += count;
    pthread_mutex_unlock(&self->lock);
    return PyLong_FromUnsignedLongLong(count);
}

static PyObject *
Pacer_drain(PacerObject *self, PyObject *unused)
{
    if (!self->started)
        Py_RETURN_NONE;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&self->lock);
    while (self->head != NULL || self->sending != NULL)
        pthread_cond_wait(&self->idle, &self->lock);
    pthread_mutex_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

#define LOCKED_COUNTER(name)                                          \
    static PyObject *Pacer_get_##name(PacerObject *self, void *c)      \
    {                                                                  \
        pthread_mutex_lock(&self->lock);                               \
        unsigned long long value = self->name;                         \
        pthread_mutex_unlock(&self->lock);                             \
        return PyLong_FromUnsignedLongLong(value);                     \
    }
LOCKED_COUNTER(packets_sent)
LOCKED_COUNTER(send_errors)
LOCKED_COUNTER(batches_sent)
LOCKED_COUNTER(late_batches)
LOCKED_COUNTER(forgotten)
LOCKED_COUNTER(withdrawn)
#undef LOCKED_COUNTER

static PyObject *
Pacer_get_max_late(PacerObject *self, void *c)
{
    pthread_mutex_lock(&self->lock);
    double value = self->max_late;
    pthread_mutex_unlock(&self->lock);
    return PyFloat_FromDouble(value);
}

static PyObject *
Pacer_get_queued(PacerObject *self, void *c)
{
    long count = 0;
    pthread_mutex_lock(&self->lock);
    for (Batch *batch = self->head; batch != NULL; batch = batch->next)
        count++;
    pthread_mutex_unlock(&self->lock);
    return PyLong_FromLong(count);
}

static PyObject *
Pacer_get_running(PacerObject *self, void *c)
{
    return PyBool_FromLong(self->started);
}

static PyObject *
Pacer_get_is_open(PacerObject *self, void *c)
{
    return PyBool_FromLong(self->open != NULL);
}

static PyObject *
Pacer_get_scheduling(PacerObject *self, void *c)
{
    pthread_mutex_lock(&self->lock);
    PyObject *text = PyUnicode_FromString(self->scheduling);
    pthread_mutex_unlock(&self->lock);
    return text;
}

static PyMethodDef Pacer_methods[] = {
    {"start", (PyCFunction)Pacer_start, METH_NOARGS, "start the sending thread"},
    {"stop", (PyCFunction)Pacer_stop, METH_NOARGS,
     "stop the sending thread; batches not yet due are dropped"},
    {"begin", (PyCFunction)Pacer_begin, METH_O,
     "begin(due): packets from now until commit() are sent at ``due`` (seconds, time.time()), "
     "after those already queued for that instant"},
    {"commit", (PyCFunction)Pacer_commit, METH_NOARGS,
     "hand the open batch to the thread (queued until start() when it is not running)"},
    {"send", (PyCFunction)Pacer_send, METH_VARARGS,
     "send(fd, (host, port), packet) -> True when queued in the open batch; with no batch "
     "open, sent at once (OSError when that fails)"},
    {"forget", (PyCFunction)Pacer_forget, METH_O,
     "forget(fd) -> packets dropped: call before closing a socket that has packets queued"},
    {"withdraw", (PyCFunction)Pacer_withdraw, METH_VARARGS,
     "withdraw(fd, from_due) -> packets dropped: the socket's packets due at or after "
     "from_due are not sent (playback interrupted before its queued audio went out)"},
    {"drain", (PyCFunction)Pacer_drain, METH_NOARGS,
     "wait until every committed batch has been sent"},
    {NULL},
};

static PyGetSetDef Pacer_getset[] = {
    {"packets_sent", (getter)Pacer_get_packets_sent, NULL, "packets the thread sent", NULL},
    {"send_errors", (getter)Pacer_get_send_errors, NULL, "sends that failed", NULL},
    {"batches_sent", (getter)Pacer_get_batches_sent, NULL, "batches sent", NULL},
    {"late_batches", (getter)Pacer_get_late_batches, NULL,
     "batches that started later than late_threshold after their instant", NULL},
    {"forgotten", (getter)Pacer_get_forgotten, NULL,
     "queued packets dropped: their session left, or the pacer stopped first", NULL},
    {"withdrawn", (getter)Pacer_get_withdrawn, NULL,
     "queued packets dropped by withdraw()", NULL},
    {"max_late", (getter)Pacer_get_max_late, NULL, "the latest a batch started, seconds", NULL},
    {"queued", (getter)Pacer_get_queued, NULL, "committed batches not yet sent", NULL},
    {"running", (getter)Pacer_get_running, NULL, "the thread is running", NULL},
    {"is_open", (getter)Pacer_get_is_open, NULL, "a batch is being filled", NULL},
    {"scheduling", (getter)Pacer_get_scheduling, NULL,
     "the thread's scheduling: 'fifo N' / 'rr N' above a real-time process, else 'nice N'", NULL},
    {NULL},
};

PyTypeObject RtpCore_PacerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "portaum_tx.rtp._rtpcore.Pacer",
    .tp_doc = "Pacer(late_threshold=0.001): sends batches of RTP packets at their due instants "
              "from a thread of its own (see pacer.c)",
    .tp_basicsize = sizeof(PacerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Pacer_new,
    .tp_init = (initproc)Pacer_init,
    .tp_dealloc = (destructor)Pacer_dealloc,
    .tp_methods = Pacer_methods,
    .tp_getset = Pacer_getset,
};

int
rtpcore_add_pacer(PyObject *module)
{
    if (PyType_Ready(&RtpCore_PacerType) < 0)
        return -1;
    Py_INCREF(&RtpCore_PacerType);
    if (PyModule_AddObject(module, "Pacer", (PyObject *)&RtpCore_PacerType) < 0) {
        Py_DECREF(&RtpCore_PacerType);
        return -1;
    }
    return 0;
}
