/* ReceiverStatistics core: stats.py's per-packet state and update(), same arithmetic.
 *
 * Only what every packet touches lives here; stats.py subclasses this type with the
 * derived figures (valid, expected, lost, ...) and report_block, which run once per
 * RTCP interval.
 */
#include "rtpcore.h"
#include <math.h>
#include <structmember.h>

#define RTP_SEQ_MOD (1 << 16)
#define MAX_DROPOUT 3000
#define MAX_MISORDER 100
#define MIN_SEQUENTIAL 2

typedef struct {
    PyObject_HEAD
    long long ssrc;
    long long clock_rate;
    long long base_seq;
    long long max_seq;
    long long bad_seq;
    long long cycles;
    long long received;
    long long received_prior;
    long long expected_prior;
    long long probation;
    double jitter;           /* timestamp units */
    int has_transit;         /* stats.py's _transit is not None */
    double last_arrival;
    uint32_t last_timestamp;
} ReceiverStatistics;

static void
init_sequence(ReceiverStatistics *self, long long sequence)
{
    self->base_seq = sequence;
    self->max_seq = sequence;
    self->bad_seq = RTP_SEQ_MOD + 1;
    self->cycles = 0;
    self->received = 0;
    self->received_prior = 0;
    self->expected_prior = 0;
}

/* RFC 3550 A.1 past the in-order case */
static int
update_sequence(ReceiverStatistics *self, long long seq)
{
    long long udelta = (seq - self->max_seq) & 0xFFFF;
    if (self->probation) {
        if (seq == ((self->max_seq + 1) & 0xFFFF)) {
            self->probation--;
            self->max_seq = seq;
            if (self->probation == 0) {
                init_sequence(self, seq);
                self->received++;
                return 1;
            }
        }
        else {
            self->probation = MIN_SEQUENTIAL - 1;
            self->max_seq = seq;
        }
        return 0;
    }
    if (udelta < MAX_DROPOUT) {
        if (seq < self->max_seq)
            self->cycles += RTP_SEQ_MOD;
        self->max_seq = seq;
    }
    else if (udelta <= RTP_SEQ_MOD - MAX_MISORDER) {
        if (seq == self->bad_seq) {
            /* two sequential packets after a big jump: the source restarted */
            init_sequence(self, seq);
            self->has_transit = 0;
        }
        else {
            self->bad_seq = (seq + 1) & 0xFFFF;
            return 0;
        }
    }
    self->received++;
    return 1;
}

/* RFC 3550 A.8 */
static void
update_jitter(ReceiverStatistics *self, uint32_t timestamp, double arrival)
{
    if (!self->has_transit)
        self->has_transit = 1;
    else {
        /* volatile keeps the product rounded on its own, as Python rounds it, where
         * the compiler could otherwise fuse it with the subtraction below (FMA) */
        volatile double elapsed = (arrival - self->last_arrival) * (double)self->clock_rate;
        uint32_t offset = timestamp - self->last_timestamp;
        int64_t advanced = offset >= 0x80000000u ? (int64_t)offset - ((int64_t)1 << 32) : (int64_t)offset;
        double d = fabs(elapsed - (double)advanced);
        self->jitter += (d - self->jitter) / 16;
    }
    self->last_arrival = arrival;
    self->last_timestamp = timestamp;
}

int
rtpcore_stats_update(PyObject *stats, uint32_t sequence, uint32_t timestamp, double arrival)
{
    ReceiverStatistics *self = (ReceiverStatistics *)stats;
    long long seq = sequence;
    if (!self->probation && seq == ((self->max_seq + 1) & 0xFFFF) && seq) {
        /* in order, no wrap: the common case, without the general algorithm's branches */
        self->max_seq = seq;
        self->received++;
    }
    else if (!update_sequence(self, seq))
        return 0;
    update_jitter(self, timestamp, arrival);
    return 1;
}

static int
ReceiverStatistics_init(ReceiverStatistics *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ssrc", "first_sequence", "clock_rate", NULL};
    long long ssrc, first_sequence, clock_rate = 8000;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "LL|L:ReceiverStatistics", kwlist,
                                     &ssrc, &first_sequence, &clock_rate))
        return -1;
    self->ssrc = ssrc;
    self->clock_rate = clock_rate;
    init_sequence(self, first_sequence);
    self->max_seq = (first_sequence - 1) & 0xFFFF;
    self->probation = MIN_SEQUENTIAL;
    self->jitter = 0.0;
    self->has_transit = 0;
    self->last_arrival = 0.0;
    self->last_timestamp = 0;
    return 0;
}

/* a sequence number must fit the C entry point's uint32; a timestamp is only ever
 * used modulo 2**32, so any int passes as its low 32 bits */
static int
as_uint32(PyObject *value, int wrap, uint32_t *result)
{
    PyObject *index = PyNumber_Index(value);
    if (index == NULL)
        return -1;
    unsigned long number = wrap ? PyLong_AsUnsignedLongMask(index) : PyLong_AsUnsignedLong(index);
    Py_DECREF(index);
    if (number == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    if (!wrap && number > 0xFFFFFFFFul) {
        PyErr_SetString(PyExc_OverflowError, "sequence out of range");
        return -1;
    }
    *result = (uint32_t)number;
    return 0;
}

static PyObject *
ReceiverStatistics_update(ReceiverStatistics *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t sequence, timestamp;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "update() takes exactly 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (as_uint32(args[0], 0, &sequence) < 0 || as_uint32(args[1], 1, &timestamp) < 0)
        return NULL;
    double arrival = PyFloat_AsDouble(args[2]);
    if (arrival == -1.0 && PyErr_Occurred())
        return NULL;
    return PyBool_FromLong(rtpcore_stats_update((PyObject *)self, sequence, timestamp, arrival));
}

/* stats.py's private state, read-only, for holding the two implementations to
 * each other in tests */
static PyObject *
ReceiverStatistics_get_transit(ReceiverStatistics *self, void *Py_UNUSED(closure))
{
    if (!self->has_transit)
        Py_RETURN_NONE;
    return PyFloat_FromDouble(0.0);
}

static PyGetSetDef ReceiverStatistics_getset[] = {
    {"_transit", (getter)ReceiverStatistics_get_transit, NULL, NULL, NULL},
    {NULL},
};

static PyMethodDef ReceiverStatistics_methods[] = {
    {"update", (PyCFunction)(void (*)(void))ReceiverStatistics_update, METH_FASTCALL,
     "update(sequence, timestamp, arrival) -> bool: account for one packet; False while "
     "on probation or for a wild jump."},
    {NULL},
};

static PyMemberDef ReceiverStatistics_members[] = {
    {"ssrc", T_LONGLONG, offsetof(ReceiverStatistics, ssrc), 0, NULL},
    {"clock_rate", T_LONGLONG, offsetof(ReceiverStatistics, clock_rate), 0, NULL},
    {"base_seq", T_LONGLONG, offsetof(ReceiverStatistics, base_seq), 0, NULL},
    {"max_seq", T_LONGLONG, offsetof(ReceiverStatistics, max_seq), 0, NULL},
    {"bad_seq", T_LONGLONG, offsetof(ReceiverStatistics, bad_seq), 0, NULL},
    {"cycles", T_LONGLONG, offsetof(ReceiverStatistics, cycles), 0, NULL},
    {"received", T_LONGLONG, offsetof(ReceiverStatistics, received), 0, NULL},
    {"received_prior", T_LONGLONG, offsetof(ReceiverStatistics, received_prior), 0, NULL},
    {"expected_prior", T_LONGLONG, offsetof(ReceiverStatistics, expected_prior), 0, NULL},
    {"probation", T_LONGLONG, offsetof(ReceiverStatistics, probation), 0, NULL},
    {"jitter", T_DOUBLE, offsetof(ReceiverStatistics, jitter), 0, "interarrival jitter, timestamp units"},
    {"_last_arrival", T_DOUBLE, offsetof(ReceiverStatistics, last_arrival), READONLY, NULL},
    {"_last_timestamp", T_UINT, offsetof(ReceiverStatistics, last_timestamp), READONLY, NULL},
    {NULL},
};

PyTypeObject RtpCore_ReceiverStatisticsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "portaum_tx.rtp._rtpcore.ReceiverStatistics",
    .tp_doc = "ReceiverStatistics(ssrc, first_sequence, clock_rate=8000)\n\n"
              "The per-packet core of portaum_tx.rtp.stats.ReceiverStatistics, in C.",
    .tp_basicsize = sizeof(ReceiverStatistics),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)ReceiverStatistics_init,
    .tp_methods = ReceiverStatistics_methods,
    .tp_members = ReceiverStatistics_members,
    .tp_getset = ReceiverStatistics_getset,
};

int
rtpcore_add_stats(PyObject *module)
{
    if (PyType_Ready(&RtpCore_ReceiverStatisticsType) < 0)
        return -1;
    Py_INCREF(&RtpCore_ReceiverStatisticsType);
    if (PyModule_AddObject(module, "ReceiverStatistics", (PyObject *)&RtpCore_ReceiverStatisticsType) < 0) {
        Py_DECREF(&RtpCore_ReceiverStatisticsType);
        return -1;
    }
    return 0;
}
