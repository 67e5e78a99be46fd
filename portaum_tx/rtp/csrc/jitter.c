/* JitterBuffer: jitter.py's reorder buffer, same behaviour, packet for packet.
 *
 * jitter.py's dict of start -> payload becomes an array sorted by start: every walk
 * the Python version makes goes over sorted(packets) from the lowest start, and in
 * the steady state the packet to play is the first entry. Payloads are the bytes
 * objects pushed, referenced rather than copied, so a packet of exactly one frame
 * comes back out of pop() as the very object that went in.
 *
 * Only exact bytes are stored: releasing one never runs Python code, so the array
 * can be edited in place without guarding against re-entry.
 */
#include "rtpcore.h"
#include <structmember.h>

/* jitter.py's FRAME_* values */
enum { FRAME_AUDIO = 0, FRAME_LOST = 1, FRAME_IDLE = 2 };

typedef struct {
    int64_t start;   /* unwrapped timestamp of the first sample */
    PyObject *data;  /* exact bytes, owned */
} Packet;

typedef struct {
    PyObject_HEAD
    long long frame_samples;
    long long depth_frames;
    long long max_packets;
    long long resync_after_idle;
    long long late;
    long long overflows;
    long long resyncs;
    long long dropped_frames;
    PyObject *silence;  /* NULL until __init__ has run */
    Packet *packets;
    Py_ssize_t count;
    Py_ssize_t capacity;
    int has_next;       /* jitter.py's _next is not None */
    long long next;
    long long highest_end;
    long long delay;
    long long idle_pops;
    long long excess_run;
    long long excess_pops;
    long long max_hold_frames;
    long long held;         /* frames the play-out has waited, in this underrun */
    long long held_frames;  /* all of them, ever */
    /* products jitter.py computes per call, fixed here because their factors are
     * read-only attributes */
    long long depth_samples;
    long long window_samples;
    long long excess_limit;
} JitterBuffer;

static int
not_ready(void)
{
    PyErr_SetString(PyExc_RuntimeError, "JitterBuffer.__init__ was not called");
    return -1;
}

static PyObject *
make_silence(PyObject *silence_byte, long long frame_samples)
{
    int overflow;
    PyObject *index = PyNumber_Index(silence_byte);
    if (index == NULL)
        return NULL;
    long value = PyLong_AsLongAndOverflow(index, &overflow);
    Py_DECREF(index);
    if (value == -1 && PyErr_Occurred())
        return NULL;
    if (overflow || value < 0 || value > 255) {
        PyErr_SetString(PyExc_ValueError, "bytes must be in range(0, 256)");
        return NULL;
    }
    PyObject *silence = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)frame_samples);
    if (silence != NULL)
        memset(PyBytes_AS_STRING(silence), (int)value, (size_t)frame_samples);
    return silence;
}

/* index of the first packet starting at or after ``start`` */
static Py_ssize_t
lower_bound(const JitterBuffer *self, int64_t start)
{
    Py_ssize_t lo = 0, hi = self->count;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (self->packets[mid].start < start)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void
clear_packets(JitterBuffer *self)
{
    Py_ssize_t count = self->count;
    self->count = 0;
    for (Py_ssize_t i = 0; i < count; i++)
        Py_DECREF(self->packets[i].data);
    /* a burst of tiny packets can leave a large array behind; give it back */
    if (self->capacity > 256) {
        PyMem_Free(self->packets);
        self->packets = NULL;
        self->capacity = 0;
    }
}

/* packets[start] = data, taking a new reference to data */
static int
store(JitterBuffer *self, int64_t start, PyObject *data)
{
    Py_ssize_t i;
    if (self->count == 0 || self->packets[self->count - 1].start < start)
        i = self->count;
    else {
        i = lower_bound(self, start);
        if (self->packets[i].start == start) {
            Py_INCREF(data);
            Py_SETREF(self->packets[i].data, data);
            return 0;
        }
    }
    if (self->count == self->capacity) {
        Py_ssize_t capacity = self->capacity ? self->capacity * 2 : 8;
        Packet *packets = PyMem_Realloc(self->packets, (size_t)capacity * sizeof(Packet));
        if (packets == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->packets = packets;
        self->capacity = capacity;
    }
    memmove(&self->packets[i + 1], &self->packets[i], (size_t)(self->count - i) * sizeof(Packet));
    self->packets[i].start = start;
    Py_INCREF(data);
    self->packets[i].data = data;
    self->count++;
    return 0;
}

/* drops the first ``k`` packets, their references with them */
static void
remove_front(JitterBuffer *self, Py_ssize_t k)
{
    for (Py_ssize_t i = 0; i < k; i++)
        Py_DECREF(self->packets[i].data);
    self->count -= k;
    memmove(&self->packets[0], &self->packets[k], (size_t)self->count * sizeof(Packet));
}

/* Both walks in jitter.py (pop's assembly, _drop_frame) consume every packet
 * starting before ``end`` and store the part of each past ``end`` at ``end``; the
 * last one stored wins, so only the highest-starting packet that reaches past
 * ``end`` leaves a tail. Called with the first k packets already used up. */
static int
consume_front(JitterBuffer *self, Py_ssize_t k, int64_t end)
{
    PyObject *tail = NULL;
    for (Py_ssize_t i = k - 1; i >= 0; i--) {
        int64_t packet_start = self->packets[i].start;
        PyObject *data = self->packets[i].data;
        int64_t packet_end = packet_start + PyBytes_GET_SIZE(data);
        if (packet_end > end) {
            tail = PyBytes_FromStringAndSize(PyBytes_AS_STRING(data) + (end - packet_start),
                                             (Py_ssize_t)(packet_end - end));
            if (tail == NULL)
                return -1;
            break;
        }
    }
    remove_front(self, k);
    if (tail != NULL) {
        /* room was freed above, so store cannot fail */
        store(self, end, tail);
        Py_DECREF(tail);
    }
    return 0;
}

static void
resync(JitterBuffer *self, int64_t timestamp)
{
    clear_packets(self);
    self->has_next = 1;
    self->next = timestamp;
    self->highest_end = timestamp;
    self->delay = self->depth_frames;
    self->idle_pops = 0;
    self->held = 0;
    self->resyncs++;
}

int
rtpcore_jitter_push(PyObject *jitter, uint32_t timestamp, PyObject *payload)
{
    JitterBuffer *self = (JitterBuffer *)jitter;
    if (self->silence == NULL)
        return not_ready();
    if (!PyBytes_CheckExact(payload)) {
        PyObject *exact = PyBytes_FromObject(payload);
        if (exact == NULL)
            return -1;
        int result = rtpcore_jitter_push(jitter, timestamp, exact);
        Py_DECREF(exact);
        return result;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(payload);
    if (size == 0)
        return 0;
    if (!self->has_next)
        resync(self, timestamp);
    /* _next may be negative or beyond 32 bits; only its low 32 bits matter here */
    uint32_t offset = timestamp - (uint32_t)(uint64_t)self->next;
    int64_t relative = offset >= 0x80000000u ? (int64_t)offset - ((int64_t)1 << 32) : (int64_t)offset;
    if (self->held && relative >= self->frame_samples) {
        /* what the play-out is waiting for was lost, not late: back onto the
         * sender's timeline */
        long long skipped = relative / self->frame_samples;
        if (skipped > self->held)
            skipped = self->held;
        self->held -= skipped;
        self->next += skipped * self->frame_samples;
        relative -= skipped * self->frame_samples;
    }
    if (relative < 0 && self->delay > 0 && -relative <= self->depth_samples) {
        self->next += relative;
        relative = 0;
    }
    if (relative + size <= 0 || (relative < 0 && self->idle_pops >= self->resync_after_idle)) {
        if (self->idle_pops >= self->resync_after_idle) {
            resync(self, timestamp);
            relative = 0;
        }
        else {
            self->late++;
            return 0;
        }
    }
    if (relative + size > self->window_samples) {
        resync(self, timestamp);
        relative = 0;
    }
    int64_t start = self->next + relative;
    if (self->count >= self->max_packets) {
        /* a sender piling up fragments the play-out does not consume: the buffer
         * stays bounded, the packet is dropped */
        Py_ssize_t i = lower_bound(self, start);
        if (i >= self->count || self->packets[i].start != start) {
            self->overflows++;
            return 0;
        }
    }
    if (store(self, start, payload) < 0)
        return -1;
    if (start + size > self->highest_end)
        self->highest_end = start + size;
    return 0;
}

static int
drop_frame(JitterBuffer *self, int64_t start)
{
    int64_t end = start + self->frame_samples;
    if (consume_front(self, lower_bound(self, end), end) < 0)
        return -1;
    self->next = end;
    self->dropped_frames++;
    return 0;
}

/* jitter.py's pop past the dict lookup: a frame put together from whatever
 * overlaps it, silence where nothing does */
static PyObject *
assemble(JitterBuffer *self, int64_t start, int *status)
{
    Py_ssize_t size = (Py_ssize_t)self->frame_samples;
    int64_t end = start + size;
    Py_ssize_t k = lower_bound(self, end);
    PyObject *frame = NULL;
    long long covered = 0;
    for (Py_ssize_t i = 0; i < k; i++) {
        int64_t packet_start = self->packets[i].start;
        PyObject *data = self->packets[i].data;
        int64_t packet_end = packet_start + PyBytes_GET_SIZE(data);
        if (packet_end <= start)
            continue;
        int64_t lo = packet_start > start ? packet_start : start;
        int64_t hi = packet_end < end ? packet_end : end;
        if (frame == NULL) {
            frame = PyBytes_FromStringAndSize(PyBytes_AS_STRING(self->silence), size);
            if (frame == NULL)
                return NULL;
        }
        memcpy(PyBytes_AS_STRING(frame) + (lo - start),
               PyBytes_AS_STRING(data) + (lo - packet_start), (size_t)(hi - lo));
        covered += hi - lo;
    }
    if (consume_front(self, k, end) < 0) {
        Py_XDECREF(frame);
        return NULL;
    }
    if (covered == size) {
        self->idle_pops = 0;
        *status = FRAME_AUDIO;
        return frame;
    }
    if (covered == 0 && self->highest_end <= start) {
        self->idle_pops++;
        *status = FRAME_IDLE;
        Py_XDECREF(frame);
        return Py_NewRef(self->silence);
    }
    self->idle_pops = 0;
    *status = FRAME_LOST;
    /* with nothing covered the frame is all silence: the cached one is equal */
    return frame != NULL ? frame : Py_NewRef(self->silence);
}

PyObject *
rtpcore_jitter_pop(PyObject *jitter, int *status)
{
    JitterBuffer *self = (JitterBuffer *)jitter;
    if (self->silence == NULL) {
        not_ready();
        return NULL;
    }
    if (!self->has_next || self->delay > 0) {
        if (self->delay > 0)
            self->delay--;
        *status = FRAME_IDLE;
        return Py_NewRef(self->silence);
    }
    int64_t start = self->next;
    if (self->highest_end - start > self->excess_limit) {
        if (++self->excess_run >= self->excess_pops) {
            self->excess_run = 0;
            if (drop_frame(self, start) < 0)
                return NULL;
            start = self->next;
        }
    }
    else
        self->excess_run = 0;
    if (self->count == 0) {
        /* dry: wait for a late sender (jitter.py says why), then give the wait back */
        self->idle_pops++;
        *status = FRAME_IDLE;
        if (self->idle_pops <= self->max_hold_frames) {
            self->held++;
            self->held_frames++;
            return Py_NewRef(self->silence);
        }
        self->next = start + (self->held + 1) * self->frame_samples;
        self->held = 0;
        return Py_NewRef(self->silence);
    }
    self->held = 0;
    self->next = start + self->frame_samples;
    {
        Py_ssize_t i = self->packets[0].start == start ? 0 : lower_bound(self, start);
        if (i < self->count && self->packets[i].start == start
                && PyBytes_GET_SIZE(self->packets[i].data) == self->frame_samples) {
            PyObject *payload = self->packets[i].data;  /* the array's reference moves to the caller */
            self->count--;
            memmove(&self->packets[i], &self->packets[i + 1], (size_t)(self->count - i) * sizeof(Packet));
            self->idle_pops = 0;
            *status = FRAME_AUDIO;
            return payload;
        }
    }
    return assemble(self, start, status);
}

static int
JitterBuffer_init(JitterBuffer *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"silence_byte", "frame_samples", "depth_frames", "max_packets",
                             "resync_after_idle", "excess_frames", "excess_pops",
                             "max_hold_frames", NULL};
    PyObject *silence_byte;
    long long frame_samples = 160, depth_frames = 2, max_packets = 64, resync_after_idle = 3;
    long long excess_frames = 3, excess_pops = 50, max_hold_frames = 5;
    long long depth_samples, window_samples, excess_depth, excess_limit, hold_samples;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|LLLLLLL:JitterBuffer", kwlist, &silence_byte,
                                     &frame_samples, &depth_frames, &max_packets,
                                     &resync_after_idle, &excess_frames, &excess_pops,
                                     &max_hold_frames))
        return -1;
    if (frame_samples < 1 || frame_samples > PY_SSIZE_T_MAX) {
        PyErr_SetString(PyExc_ValueError, "frame_samples must be at least 1");
        return -1;
    }
    if (max_hold_frames < 0) {
        PyErr_SetString(PyExc_ValueError, "max_hold_frames must not be negative");
        return -1;
    }
    if (__builtin_mul_overflow(depth_frames, frame_samples, &depth_samples)
            || __builtin_mul_overflow(max_packets, frame_samples, &window_samples)
            || __builtin_add_overflow(depth_frames, excess_frames, &excess_depth)
            || __builtin_mul_overflow(excess_depth, frame_samples, &excess_limit)
            || max_hold_frames == LLONG_MAX
            || __builtin_mul_overflow(max_hold_frames + 1, frame_samples, &hold_samples)) {
        PyErr_SetString(PyExc_OverflowError, "JitterBuffer sizes out of range");
        return -1;
    }
    PyObject *silence = make_silence(silence_byte, frame_samples);
    if (silence == NULL)
        return -1;
    clear_packets(self);
    Py_XSETREF(self->silence, silence);
    self->frame_samples = frame_samples;
    self->depth_frames = depth_frames;
    self->max_packets = max_packets;
    self->resync_after_idle = resync_after_idle;
    self->has_next = 0;
    self->next = 0;
    self->delay = 0;
    self->idle_pops = 0;
    self->highest_end = 0;
    self->late = 0;
    self->overflows = 0;
    self->resyncs = 0;
    self->dropped_frames = 0;
    self->excess_pops = excess_pops;
    self->excess_run = 0;
    self->max_hold_frames = max_hold_frames;
    self->held = 0;
    self->held_frames = 0;
    self->depth_samples = depth_samples;
    self->window_samples = window_samples;
    self->excess_limit = excess_limit;
    return 0;
}

static int
JitterBuffer_traverse(JitterBuffer *self, visitproc visit, void *arg)
{
    Py_VISIT(self->silence);
    for (Py_ssize_t i = 0; i < self->count; i++)
        Py_VISIT(self->packets[i].data);
    return 0;
}

static int
JitterBuffer_clear(JitterBuffer *self)
{
    clear_packets(self);
    Py_CLEAR(self->silence);
    return 0;
}

static void
JitterBuffer_dealloc(JitterBuffer *self)
{
    PyObject_GC_UnTrack(self);
    JitterBuffer_clear(self);
    PyMem_Free(self->packets);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
JitterBuffer_push(JitterBuffer *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "push() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    /* jitter.py only ever looks at a timestamp modulo 2**32 relative to the last
     * resync, so any int behaves as its low 32 bits */
    unsigned long timestamp;
    if (PyLong_Check(args[0]))
        timestamp = PyLong_AsUnsignedLongMask(args[0]);
    else {
        PyObject *index = PyNumber_Index(args[0]);
        if (index == NULL)
            return NULL;
        timestamp = PyLong_AsUnsignedLongMask(index);
        Py_DECREF(index);
    }
    if (timestamp == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    if (rtpcore_jitter_push((PyObject *)self, (uint32_t)timestamp, args[1]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
JitterBuffer_pop(JitterBuffer *self, PyObject *Py_UNUSED(ignored))
{
    int status;
    PyObject *frame = rtpcore_jitter_pop((PyObject *)self, &status);
    if (frame == NULL)
        return NULL;
    PyObject *result = PyTuple_New(2);
    if (result == NULL) {
        Py_DECREF(frame);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, frame);
    PyTuple_SET_ITEM(result, 1, PyLong_FromLong(status));  /* a cached small int */
    return result;
}

static PyObject *
JitterBuffer_reset(JitterBuffer *self, PyObject *Py_UNUSED(ignored))
{
    clear_packets(self);
    self->has_next = 0;
    Py_RETURN_NONE;
}

static PyObject *
JitterBuffer_set_silence_byte(JitterBuffer *self, PyObject *silence_byte)
{
    if (self->silence == NULL) {
        not_ready();
        return NULL;
    }
    PyObject *silence = make_silence(silence_byte, self->frame_samples);
    if (silence == NULL)
        return NULL;
    Py_SETREF(self->silence, silence);
    clear_packets(self);
    self->has_next = 0;
    Py_RETURN_NONE;
}

static PyObject *
JitterBuffer_get_buffered_packets(JitterBuffer *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->count);
}

/* jitter.py's private state, read-only, for holding the two implementations to
 * each other in tests */
static PyObject *
JitterBuffer_get_next(JitterBuffer *self, void *Py_UNUSED(closure))
{
    if (!self->has_next)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(self->next);
}

static PyObject *
JitterBuffer_get_packets(JitterBuffer *self, void *Py_UNUSED(closure))
{
    PyObject *packets = PyDict_New();
    for (Py_ssize_t i = 0; packets != NULL && i < self->count; i++) {
        PyObject *start = PyLong_FromLongLong(self->packets[i].start);
        if (start == NULL || PyDict_SetItem(packets, start, self->packets[i].data) < 0)
            Py_CLEAR(packets);
        Py_XDECREF(start);
    }
    return packets;
}

static PyMethodDef JitterBuffer_methods[] = {
    {"push", (PyCFunction)(void (*)(void))JitterBuffer_push, METH_FASTCALL,
     "push(timestamp, payload): store one packet's payload (bytes) by its RTP timestamp."},
    {"pop", (PyCFunction)JitterBuffer_pop, METH_NOARGS,
     "pop() -> (frame, status): the next frame of codes and its FRAME_* status."},
    {"reset", (PyCFunction)JitterBuffer_reset, METH_NOARGS, "Forget what is buffered."},
    {"set_silence_byte", (PyCFunction)JitterBuffer_set_silence_byte, METH_O,
     "The codec changed (re-INVITE): what was buffered belongs to the old one."},
    {NULL},
};

static PyMemberDef JitterBuffer_members[] = {
    {"frame_samples", T_LONGLONG, offsetof(JitterBuffer, frame_samples), READONLY, NULL},
    {"depth_frames", T_LONGLONG, offsetof(JitterBuffer, depth_frames), READONLY, NULL},
    {"max_packets", T_LONGLONG, offsetof(JitterBuffer, max_packets), READONLY, NULL},
    {"resync_after_idle", T_LONGLONG, offsetof(JitterBuffer, resync_after_idle), 0, NULL},
    {"late", T_LONGLONG, offsetof(JitterBuffer, late), 0, NULL},
    {"overflows", T_LONGLONG, offsetof(JitterBuffer, overflows), 0,
     "packets dropped because max_packets were buffered already"},
    {"resyncs", T_LONGLONG, offsetof(JitterBuffer, resyncs), 0, NULL},
    {"dropped_frames", T_LONGLONG, offsetof(JitterBuffer, dropped_frames), 0, NULL},
    {"_highest_end", T_LONGLONG, offsetof(JitterBuffer, highest_end), READONLY, NULL},
    {"_delay", T_LONGLONG, offsetof(JitterBuffer, delay), READONLY, NULL},
    {"_idle_pops", T_LONGLONG, offsetof(JitterBuffer, idle_pops), READONLY, NULL},
    {"_excess_run", T_LONGLONG, offsetof(JitterBuffer, excess_run), READONLY, NULL},
    {"max_hold_frames", T_LONGLONG, offsetof(JitterBuffer, max_hold_frames), READONLY, NULL},
    {"_held", T_LONGLONG, offsetof(JitterBuffer, held), READONLY, NULL},
    {"held_frames", T_LONGLONG, offsetof(JitterBuffer, held_frames), 0,
     "frames played as silence while waiting for a late sender"},
    {NULL},
};

static PyGetSetDef JitterBuffer_getset[] = {
    {"buffered_packets", (getter)JitterBuffer_get_buffered_packets, NULL, NULL, NULL},
    {"_next", (getter)JitterBuffer_get_next, NULL, NULL, NULL},
    {"_packets", (getter)JitterBuffer_get_packets, NULL, "a new dict of start: payload", NULL},
    {NULL},
};

PyTypeObject RtpCore_JitterBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "portaum_tx.rtp._rtpcore.JitterBuffer",
    .tp_doc = "JitterBuffer(silence_byte, frame_samples=160, depth_frames=2, max_packets=64, "
              "resync_after_idle=3, excess_frames=3, excess_pops=50)\n\n"
              "The inbound reorder buffer of portaum_tx.rtp.jitter, in C.",
    .tp_basicsize = sizeof(JitterBuffer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)JitterBuffer_init,
    .tp_dealloc = (destructor)JitterBuffer_dealloc,
    .tp_traverse = (traverseproc)JitterBuffer_traverse,
    .tp_clear = (inquiry)JitterBuffer_clear,
    .tp_methods = JitterBuffer_methods,
    .tp_members = JitterBuffer_members,
    .tp_getset = JitterBuffer_getset,
};

int
rtpcore_add_jitter(PyObject *module)
{
    if (PyType_Ready(&RtpCore_JitterBufferType) < 0)
        return -1;
    Py_INCREF(&RtpCore_JitterBufferType);
    if (PyModule_AddObject(module, "JitterBuffer", (PyObject *)&RtpCore_JitterBufferType) < 0) {
        Py_DECREF(&RtpCore_JitterBufferType);
        return -1;
    }
    return 0;
}
