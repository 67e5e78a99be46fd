/* Per-tick packet I/O of the media clock.
 *
 * In Python each packet costs several microseconds of interpreter work on top of its
 * system call: at a thousand sessions, fifty thousand packets a second each way, that
 * is most of a core. Here the usual packet takes no Python at all:
 *
 *  - RtpReader reads every registered RTP socket that epoll reports readable. A packet
 *    of the session's audio payload type, plain header (V=2, no padding, extension or
 *    CSRC), from the latched peer and the known SSRC goes straight into the session's
 *    receiver statistics and jitter buffer (the C types of stats.c and jitter.c). Any
 *    other packet (the first ones before latching, a new SSRC, telephone-events, RTCP
 *    multiplexed on the RTP port, anything malformed) is handed to the session's
 *    Python rtp_received(), which stays the one authority on RTP semantics.
 *  - send_frames() sends one tick's frame of every session. A session in the plain
 *    state (sending, 20 ms packets, no telephone-event or buffered longer-ptime audio
 *    under way, a real socket) has its header built and sent here, with the same
 *    sequence, timestamp, marker and counter updates as RtpSession._send_rtp(); any
 *    other goes through its send_frame(). Due RTCP/dead-peer housekeeping is called
 *    as the Python loop did.
 *  - pop_frames() pops every session's jitter buffer into one block of codes.
 *
 * Session state stays in the Python RtpSession object; this file reads and writes
 * the same attributes the Python code does.
 */
#include "rtpcore.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define FRAME_SAMPLES 160
#define MAX_PACKET RTPCORE_MAX_PACKET
#define RTP_HEADER_SIZE 12

/* an item of a list that check_sessions() passed */
#define STATE(session) ((RtpCoreStreamState *)(session))

/* interned attribute names */
static PyObject *s_rtp_received, *s_send_frame, *s_housekeeping, *s_pop, *s_next_outbound;

static int
intern_names(void)
{
#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return -1
    INTERN(s_rtp_received, "rtp_received");
    INTERN(s_send_frame, "send_frame");
    INTERN(s_housekeeping, "housekeeping");
    INTERN(s_pop, "pop");
    INTERN(s_next_outbound, "next_outbound");
#undef INTERN
    return 0;
}

/* The (host, port) tuple Python's socket module would give for this address (for
 * IPv6 only its first two members, as the sessions expect). */
static PyObject *
address_tuple(const struct sockaddr_storage *address)
{
    char host[INET6_ADDRSTRLEN];
    int port;
    if (address->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)address;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
    }
    else if (address->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)address;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
    }
    else {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(si)", host, port);
}

/* 1 when ``address`` is the (host, port) tuple ``expected``, 0 when not or when
 * unsure (the Python path then compares), -1 on error. */
static int
same_address(const struct sockaddr_storage *address, PyObject *expected)
{
    if (!PyTuple_Check(expected) || PyTuple_GET_SIZE(expected) != 2)
        return 0;
    PyObject *host = PyTuple_GET_ITEM(expected, 0), *port = PyTuple_GET_ITEM(expected, 1);
    if (!PyUnicode_Check(host) || !PyLong_Check(port))
        return 0;
    long want_port = PyLong_AsLong(port);
    if (want_port == -1 && PyErr_Occurred())
        return -1;
    char text[INET6_ADDRSTRLEN];
    if (address->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)address;
        if (ntohs(in->sin_port) != want_port)
            return 0;
        inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    }
    else if (address->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)address;
        if (ntohs(in6->sin6_port) != want_port)
            return 0;
        inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    }
    else {
        return 0;
    }
    const char *want_host = PyUnicode_AsUTF8(host);
    if (want_host == NULL)
        return -1;
    return strcmp(text, want_host) == 0;
}

/* sockaddr for a (host, port) tuple of IP literals; 0 ok, -1 not convertible (no
 * exception: the caller takes the Python path) */
int
rtpcore_tuple_sockaddr(PyObject *tuple, struct sockaddr_storage *out, socklen_t *length)
{
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) < 2)
        return -1;
    PyObject *host = PyTuple_GET_ITEM(tuple, 0), *port = PyTuple_GET_ITEM(tuple, 1);
    if (!PyUnicode_Check(host) || !PyLong_Check(port))
        return -1;
    long number = PyLong_AsLong(port);
    if (number < 0 || number > 65535) {
        PyErr_Clear();
        return -1;
    }
    const char *text = PyUnicode_AsUTF8(host);
    if (text == NULL) {
        PyErr_Clear();
        return -1;
    }
    memset(out, 0, sizeof *out);
    struct sockaddr_in *in = (struct sockaddr_in *)out;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)number);
        *length = sizeof *in;
        return 0;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)number);
        *length = sizeof *in6;
        return 0;
    }
    return -1;
}

/* What the fast path last verified of a session, so that the next packet is checked
 * against a few bytes here instead of a dozen attribute lookups on a session whose
 * objects are long out of the cache. Armed by a packet that passed the full check;
 * disarmed by Reader.disarm(fd), which the session's clock calls whenever anything
 * checked here changes (payload type, far end's address or SSRC, latching). */
typedef struct {
    int armed;
    int payload_type;
    uint32_t remote_ssrc;
    struct sockaddr_storage remote;
    PyObject *stats;  /* strong references while armed */
    PyObject *jitter;
} ReaderSlot;

/* --- receiving ------------------------------------------------------------------------ */

static int
same_sockaddr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return 0;
}

/* The bookkeeping of RtpSession.rtp_received for the usual audio packet, in its order;
 * 0 done, -1 error */
static int
receive_audio(RtpCoreStreamState *state, PyObject *stats, PyObject *jitter, const unsigned char *data,
              Py_ssize_t size, double now)
{
    uint16_t sequence = (uint16_t)((data[2] << 8) | data[3]);
    uint32_t timestamp = ((uint32_t)data[4] << 24) | ((uint32_t)data[5] << 16) |
                         ((uint32_t)data[6] << 8) | data[7];
    if (rtpcore_stats_update(stats, sequence, timestamp, now) < 0)
        return -1;
    state->packets_received++;
    state->last_heard = now;
    state->dead_reported = 0;
    if (size > RTP_HEADER_SIZE) {
        PyObject *payload = PyBytes_FromStringAndSize((const char *)data + RTP_HEADER_SIZE,
                                                      size - RTP_HEADER_SIZE);
        if (payload == NULL)
            return -1;
        int pushed = rtpcore_jitter_push(jitter, timestamp, payload);
        Py_DECREF(payload);
        if (pushed < 0)
            return -1;
    }
    return 0;
}

static void
slot_disarm(ReaderSlot *slot)
{
    slot->armed = 0;
    Py_CLEAR(slot->stats);
    Py_CLEAR(slot->jitter);
}

/* 1 handled here, 0 the Python path (rtp_received) must handle it, -1 error. Only a
 * StreamState (an RtpSession) is handled here. */
static int
receive_fast(PyObject *session, ReaderSlot **slots, int fd, const unsigned char *data,
             Py_ssize_t size, const struct sockaddr_storage *address, double now)
{
    if (!RtpCore_StreamState_Check(session))
        return 0;
    RtpCoreStreamState *state = (RtpCoreStreamState *)session;
    /* looked up afresh after anything that could run Python code (and so grow the
     * reader's arrays): slots may be NULL (no cache) */
    ReaderSlot *slot = slots != NULL ? &(*slots)[fd] : NULL;
    if (slot != NULL && slot->armed) {
        /* the packet the slot was armed for: same type, source and SSRC */
        if (size >= RTP_HEADER_SIZE && data[0] == 0x80 && (data[1] & 0x7F) == slot->payload_type &&
            (((uint32_t)data[8] << 24) | ((uint32_t)data[9] << 16) |
             ((uint32_t)data[10] << 8) | data[11]) == slot->remote_ssrc &&
            same_sockaddr(address, &slot->remote))
            return receive_audio(state, slot->stats, slot->jitter, data, size, now) < 0 ? -1 : 1;
        /* anything else takes the full check (and the Python path if it fails) */
    }
    if (size < RTP_HEADER_SIZE || data[0] != 0x80)
        return 0;
    if (data[1] >= 192 && data[1] <= 223)
        return 0; /* RTCP multiplexed on the RTP port */
    if (state->closed || !state->latched)
        return 0;
    int payload_type = rtpcore_stream_payload_type(state);
    if (payload_type == -2)
        return -1;
    if (payload_type != (data[1] & 0x7F))
        return 0;
    uint32_t ssrc = ((uint32_t)data[8] << 24) | ((uint32_t)data[9] << 16) |
                    ((uint32_t)data[10] << 8) | data[11];
    PyObject *remote_ssrc = state->remote_ssrc;
    if (remote_ssrc == NULL || !PyLong_Check(remote_ssrc))
        return 0;
    long long expected_ssrc = PyLong_AsLongLong(remote_ssrc);
    if (expected_ssrc == -1 && PyErr_Occurred())
        return -1;
    if (expected_ssrc != (long long)ssrc || state->remote_address == NULL)
        return 0;
    int same = same_address(address, state->remote_address);
    if (same <= 0)
        return same;
    PyObject *stats = state->stats, *jitter = state->jitter;
    if (stats == NULL || jitter == NULL || !PyObject_TypeCheck(stats, &RtpCore_ReceiverStatisticsType) ||
        !PyObject_TypeCheck(jitter, &RtpCore_JitterBufferType))
        return 0;
    /* held while the packet goes in: nothing below runs Python, but the slot keeps them */
    Py_INCREF(stats);
    Py_INCREF(jitter);
    int result = receive_audio(state, stats, jitter, data, size, now) < 0 ? -1 : 1;
    slot = slots != NULL ? &(*slots)[fd] : NULL;
    if (result == 1 && slot != NULL && (address->ss_family == AF_INET || address->ss_family == AF_INET6)) {
        slot_disarm(slot);
        slot->payload_type = payload_type;
        slot->remote_ssrc = ssrc;
        slot->remote = *address;
        slot->stats = stats;
        slot->jitter = jitter;
        slot->armed = 1;
        return 1;
    }
    Py_DECREF(stats);
    Py_DECREF(jitter);
    return result;
}

typedef struct {
    PyObject_HEAD
    int epoll_fd;
    PyObject **sessions; /* indexed by file descriptor; NULL when not registered */
    ReaderSlot *slots;   /* indexed likewise */
    int capacity;
    Py_ssize_t registered;
    PyObject *failed; /* called with (type, value, traceback) when a session's handler raises */
    unsigned long long packets_read, fast_packets, read_errors;
    int max_rounds;
} RtpReaderObject;

static int
Reader_init(RtpReaderObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"failed", "max_rounds", NULL};
    PyObject *failed = Py_None;
    int max_rounds = 16;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|Oi:RtpReader", keywords, &failed, &max_rounds))
        return -1;
    if (max_rounds < 1) {
        PyErr_SetString(PyExc_ValueError, "max_rounds must be at least 1");
        return -1;
    }
    if (self->epoll_fd < 0) {
        self->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (self->epoll_fd < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
    }
    Py_INCREF(failed);
    Py_XSETREF(self->failed, failed);
    self->max_rounds = max_rounds;
    return 0;
}

static PyObject *
Reader_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    RtpReaderObject *self = (RtpReaderObject *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->epoll_fd = -1;
    return (PyObject *)self;
}

static int
Reader_traverse(RtpReaderObject *self, visitproc visit, void *arg)
{
    for (int fd = 0; fd < self->capacity; fd++) {
        Py_VISIT(self->sessions[fd]);
        Py_VISIT(self->slots[fd].stats);
        Py_VISIT(self->slots[fd].jitter);
    }
    Py_VISIT(self->failed);
    return 0;
}

static int
Reader_clear(RtpReaderObject *self)
{
    for (int fd = 0; fd < self->capacity; fd++) {
        Py_CLEAR(self->sessions[fd]);
        slot_disarm(&self->slots[fd]);
    }
    self->registered = 0;
    Py_CLEAR(self->failed);
    return 0;
}

static void
Reader_dealloc(RtpReaderObject *self)
{
    PyObject_GC_UnTrack(self);
    Reader_clear(self);
    PyMem_Free(self->sessions);
    PyMem_Free(self->slots);
    if (self->epoll_fd >= 0)
        close(self->epoll_fd);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Reader_add(RtpReaderObject *self, PyObject *args)
{
    int fd;
    PyObject *session;
    if (!PyArg_ParseTuple(args, "iO:add", &fd, &session))
        return NULL;
    if (fd < 0) {
        PyErr_SetString(PyExc_ValueError, "negative file descriptor");
        return NULL;
    }
    if (fd >= self->capacity) {
        int capacity = self->capacity ? self->capacity : 64;
        while (capacity <= fd)
            capacity *= 2;
        PyObject **grown = PyMem_Realloc(self->sessions, capacity * sizeof(PyObject *));
        if (grown == NULL)
            return PyErr_NoMemory();
        memset(grown + self->capacity, 0, (capacity - self->capacity) * sizeof(PyObject *));
        self->sessions = grown;
        ReaderSlot *slots = PyMem_Realloc(self->slots, capacity * sizeof(ReaderSlot));
        if (slots == NULL)
            return PyErr_NoMemory();  /* sessions grown alone: harmless, capacity unchanged */
        memset(slots + self->capacity, 0, (capacity - self->capacity) * sizeof(ReaderSlot));
        self->slots = slots;
        self->capacity = capacity;
    }
    if (self->sessions[fd] != NULL) {
        PyErr_Format(PyExc_ValueError, "file descriptor %d is already registered", fd);
        return NULL;
    }
    struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, fd, &event) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_INCREF(session);
    self->sessions[fd] = session;
    slot_disarm(&self->slots[fd]);
    self->registered++;
    Py_RETURN_NONE;
}

/* The file descriptor argument of remove/disarm/armed: 1 when it is registered, 0 when
 * not (any int is accepted), -1 with an exception when the argument is not an int. */
static int
registered_fd(RtpReaderObject *self, PyObject *args, const char *format, int *fd)
{
    if (!PyArg_ParseTuple(args, format, fd))
        return -1;
    return *fd >= 0 && *fd < self->capacity && self->sessions[*fd] != NULL;
}

static PyObject *
Reader_remove(RtpReaderObject *self, PyObject *args)
{
    int fd;
    int registered = registered_fd(self, args, "i:remove", &fd);
    if (registered <= 0)
        return registered < 0 ? NULL : Py_NewRef(Py_False);
    /* the socket may be closed already, which removed it from the epoll set */
    epoll_ctl(self->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
    Py_CLEAR(self->sessions[fd]);
    slot_disarm(&self->slots[fd]);
    self->registered--;
    Py_RETURN_TRUE;
}

static PyObject *
Reader_disarm(RtpReaderObject *self, PyObject *args)
{
    int fd;
    int registered = registered_fd(self, args, "i:disarm", &fd);
    if (registered <= 0)
        return registered < 0 ? NULL : Py_NewRef(Py_False);
    slot_disarm(&self->slots[fd]);
    Py_RETURN_TRUE;
}

static PyObject *
Reader_armed(RtpReaderObject *self, PyObject *args)
{
    int fd;
    int registered = registered_fd(self, args, "i:armed", &fd);
    if (registered < 0)
        return NULL;
    return PyBool_FromLong(registered && self->slots[fd].armed);
}

/* Reports an exception of a session's handler and clears it; -1 if reporting failed. */
static int
report_failure(RtpReaderObject *self)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (self->failed == NULL || self->failed == Py_None) {
        PyErr_Restore(type, value, traceback);
        PyErr_WriteUnraisable(NULL);
        return 0;
    }
    PyObject *result = PyObject_CallFunctionObjArgs(self->failed, type ? type : Py_None,
                                                    value ? value : Py_None,
                                                    traceback ? traceback : Py_None, NULL);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

static PyObject *
Reader_read(RtpReaderObject *self, PyObject *args)
{
    double now;
    if (!PyArg_ParseTuple(args, "d:read", &now))
        return NULL;
    if (self->registered == 0)
        return PyLong_FromLong(0);
    int wanted = self->registered > 1024 ? 1024 : (int)self->registered;
    struct epoll_event events[1024];
    unsigned char buffer[MAX_PACKET];
    long read = 0;
    for (int round = 0; round < self->max_rounds; round++) {
        int ready = epoll_wait(self->epoll_fd, events, wanted, 0);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (ready == 0)
            break;
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;
            if (fd < 0 || fd >= self->capacity || self->sessions[fd] == NULL)
                continue;
            struct sockaddr_storage address;
            socklen_t length = sizeof address;
            ssize_t size = recvfrom(fd, buffer, sizeof buffer, MSG_DONTWAIT,
                                    (struct sockaddr *)&address, &length);
            if (size < 0) {
                /* ECONNREFUSED: an ICMP port unreachable for something we sent */
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                    self->read_errors++;
                continue;
            }
            read++;
            PyObject *session = self->sessions[fd];
            Py_INCREF(session); /* a handler may remove it */
            int handled = receive_fast(session, &self->slots, fd, buffer, size, &address, now);
            if (handled == 0) {
                PyObject *data = PyBytes_FromStringAndSize((const char *)buffer, size);
                PyObject *peer = data ? address_tuple(&address) : NULL;
                PyObject *result = peer ? PyObject_CallMethodObjArgs(session, s_rtp_received,
                                                                     data, peer, NULL) : NULL;
                Py_XDECREF(data);
                Py_XDECREF(peer);
                if (result == NULL)
                    handled = -1;
                Py_XDECREF(result);
            }
            else if (handled == 1) {
                self->fast_packets++;
            }
            Py_DECREF(session);
            if (handled < 0 && report_failure(self) < 0) {
                self->packets_read += read;
                return NULL;
            }
        }
    }
    self->packets_read += read;
    return PyLong_FromLong(read);
}

static PyMethodDef Reader_methods[] = {
    {"add", (PyCFunction)Reader_add, METH_VARARGS,
     "add(fd, session): read this RTP socket for the session from now on"},
    {"remove", (PyCFunction)Reader_remove, METH_VARARGS,
     "remove(fd) -> bool: stop reading it (the socket may be closed already)"},
    {"disarm", (PyCFunction)Reader_disarm, METH_VARARGS,
     "disarm(fd) -> bool: forget what the fast path verified of this socket's session "
     "(call whenever its payload type, far end or latching changes)"},
    {"armed", (PyCFunction)Reader_armed, METH_VARARGS,
     "armed(fd) -> bool: whether this socket's packets take the verified fast path"},
    {"read", (PyCFunction)Reader_read, METH_VARARGS,
     "read(now) -> packets: read the sockets holding packets, one packet per socket per "
     "round, for at most max_rounds rounds; now is the arrival time the sessions see"},
    {NULL},
};

static PyObject *
Reader_get_counter(RtpReaderObject *self, void *which)
{
    switch ((intptr_t)which) {
    case 0: return PyLong_FromUnsignedLongLong(self->packets_read);
    case 1: return PyLong_FromUnsignedLongLong(self->fast_packets);
    case 2: return PyLong_FromUnsignedLongLong(self->read_errors);
    default: return PyLong_FromSsize_t(self->registered);
    }
}

static PyGetSetDef Reader_getset[] = {
    {"packets_read", (getter)Reader_get_counter, NULL, "packets read in all", (void *)0},
    {"fast_packets", (getter)Reader_get_counter, NULL,
     "packets handled without calling the session", (void *)1},
    {"read_errors", (getter)Reader_get_counter, NULL, "failed reads other than EAGAIN", (void *)2},
    {"registered", (getter)Reader_get_counter, NULL, "sockets being read", (void *)3},
    {NULL},
};

static PyTypeObject RtpReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "portaum_tx.rtp._rtpcore.RtpReader",
    .tp_doc = "RtpReader(failed=None, max_rounds=16): reads RTP sockets for their sessions",
    .tp_basicsize = sizeof(RtpReaderObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = Reader_new,
    .tp_init = (initproc)Reader_init,
    .tp_dealloc = (destructor)Reader_dealloc,
    .tp_traverse = (traverseproc)Reader_traverse,
    .tp_clear = (inquiry)Reader_clear,
    .tp_methods = Reader_methods,
    .tp_getset = Reader_getset,
};

/* --- sending -------------------------------------------------------------------------- */

/* 1 sent (or dropped as Python would), 0 the Python path (send_frame) must send, -1
 * error */
static int
send_fast(RtpCoreStreamState *state, PyObject *payload, PyObject *pacer)
{
    if (!PyBytes_Check(payload) || PyBytes_GET_SIZE(payload) > MAX_PACKET - RTP_HEADER_SIZE)
        return 0;
    if (state->rtp_fd < 0 || !state->sending || state->dtmf_gap ||
        state->packet_samples != FRAME_SAMPLES)
        return 0;
    int flag;
    if ((flag = rtpcore_truth(state->dtmf_packets)) != 0 || (flag = rtpcore_truth(state->dtmf_queue)) != 0 ||
        (flag = rtpcore_truth(state->outbound)) != 0)
        return flag < 0 ? -1 : 0;
    struct sockaddr_storage address;
    socklen_t length;
    if (rtpcore_stream_remote(state, &address, &length) < 0)
        return 0;
    int payload_type = rtpcore_stream_payload_type(state);
    if (payload_type < 0)
        return payload_type == -2 ? -1 : 0;
    long long sequence = state->sequence, timestamp = state->timestamp, ssrc = state->ssrc;
    if (sequence < 0 || sequence > 0xFFFF || timestamp < 0 || timestamp > 0xFFFFFFFFLL || ssrc < 0 ||
        ssrc > 0xFFFFFFFFLL)
        return 0;
    int marker = state->marker_pending;
    state->marker_pending = 0;

    unsigned char packet[MAX_PACKET];
    Py_ssize_t size = PyBytes_GET_SIZE(payload);
    packet[0] = 0x80;
    packet[1] = (unsigned char)((marker ? 0x80 : 0) | payload_type);
    packet[2] = (unsigned char)(sequence >> 8);
    packet[3] = (unsigned char)sequence;
    packet[4] = (unsigned char)(timestamp >> 24);
    packet[5] = (unsigned char)(timestamp >> 16);
    packet[6] = (unsigned char)(timestamp >> 8);
    packet[7] = (unsigned char)timestamp;
    packet[8] = (unsigned char)(ssrc >> 24);
    packet[9] = (unsigned char)(ssrc >> 16);
    packet[10] = (unsigned char)(ssrc >> 8);
    packet[11] = (unsigned char)ssrc;
    memcpy(packet + RTP_HEADER_SIZE, PyBytes_AS_STRING(payload), size);
    state->sequence = (sequence + 1) & 0xFFFF;
    int queued = pacer == NULL ? 0 : rtpcore_pacer_queue(pacer, state->rtp_fd, &address, length, packet,
                                                         RTP_HEADER_SIZE + size);
    if (queued < 0)
        return -1;
    ssize_t sent = queued ? RTP_HEADER_SIZE + size
                          : sendto(state->rtp_fd, packet, RTP_HEADER_SIZE + size, 0,
                                   (struct sockaddr *)&address, length);
    if (sent < 0) {
        /* ICMP unreachable reported back, or the socket buffer is full: RTP is best
         * effort, the packet is dropped */
        state->send_errors++;
    }
    else {
        state->packets_sent++;
        state->octets_sent += size;
        state->sent_since_report = 1;
    }
    state->timestamp = (timestamp + FRAME_SAMPLES) & 0xFFFFFFFFLL;
    return 1;
}

/* The media tick's sessions are RtpSessions: 0, or -1 with TypeError set. */
static int
check_sessions(PyObject *sessions)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(sessions); i++) {
        if (!RtpCore_StreamState_Check(PyList_GET_ITEM(sessions, i))) {
            PyErr_Format(PyExc_TypeError, "session %zd is a %.100s, not an RtpSession (StreamState)", i,
                         Py_TYPE(PyList_GET_ITEM(sessions, i))->tp_name);
            return -1;
        }
    }
    return 0;
}

static PyObject *
send_frames(PyObject *module, PyObject *args)
{
    PyObject *sessions, *frames, *pacer = Py_None;
    double now;
    if (!PyArg_ParseTuple(args, "O!O!d|O:send_frames", &PyList_Type, &sessions, &PyList_Type,
                          &frames, &now, &pacer))
        return NULL;
    if (pacer == Py_None) {
        pacer = NULL;
    }
    else if (!PyObject_TypeCheck(pacer, &RtpCore_PacerType)) {
        PyErr_SetString(PyExc_TypeError, "pacer must be a Pacer or None");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(sessions);
    if (PyList_GET_SIZE(frames) != count) {
        PyErr_SetString(PyExc_ValueError, "one frame per session");
        return NULL;
    }
    if (check_sessions(sessions) < 0)
        return NULL;
    PyObject *now_obj = PyFloat_FromDouble(now);
    if (now_obj == NULL)
        return NULL;
    long fast = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *session = PyList_GET_ITEM(sessions, i);
        PyObject *payload = PyList_GET_ITEM(frames, i);
        Py_INCREF(session);
        Py_INCREF(payload);
        int handled;
        if (STATE(session)->closed) {
            handled = 2;
        }
        else {
            if (payload == Py_None) {
                PyObject *codec = STATE(session)->codec ? STATE(session)->codec : Py_None;
                Py_INCREF(codec);
                Py_SETREF(payload, PyObject_CallMethod(codec, "silence", "i", FRAME_SAMPLES));
                Py_DECREF(codec);
            }
            handled = payload ? send_fast(STATE(session), payload, pacer) : -1;
            if (handled == 0) {
                PyObject *result = PyObject_CallMethodObjArgs(session, s_send_frame, payload,
                                                              now_obj, NULL);
                handled = result ? 1 : -1;
                Py_XDECREF(result);
            }
            else if (handled == 1) {
                fast++;
            }
        }
        if (handled == 1 && now >= STATE(session)->housekeeping_due) {
            PyObject *result = PyObject_CallMethodObjArgs(session, s_housekeeping, now_obj, NULL);
            if (result == NULL)
                handled = -1;
            Py_XDECREF(result);
        }
        Py_DECREF(session);
        Py_XDECREF(payload);
        if (handled < 0) {
            Py_DECREF(now_obj);
            return NULL;
        }
    }
    Py_DECREF(now_obj);
    return PyLong_FromLong(fast);
}

static PyObject *
pop_frames(PyObject *module, PyObject *args)
{
    PyObject *sessions;
    if (!PyArg_ParseTuple(args, "O!:pop_frames", &PyList_Type, &sessions) || check_sessions(sessions) < 0)
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(sessions);
    PyObject *block = PyBytes_FromStringAndSize(NULL, count * FRAME_SAMPLES);
    PyObject *statuses = PyBytes_FromStringAndSize(NULL, count);
    if (block == NULL || statuses == NULL)
        goto error;
    char *codes = PyBytes_AS_STRING(block), *status_out = PyBytes_AS_STRING(statuses);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *jitter = STATE(PyList_GET_ITEM(sessions, i))->jitter;
        if (jitter == NULL)
            jitter = Py_None;
        Py_INCREF(jitter);
        PyObject *frame;
        int status;
        if (PyObject_TypeCheck(jitter, &RtpCore_JitterBufferType)) {
            frame = rtpcore_jitter_pop(jitter, &status);
        }
        else {
            /* a jitter buffer of Python's (the fax path installs its own) */
            PyObject *popped = PyObject_CallMethodNoArgs(jitter, s_pop);
            frame = NULL;
            if (popped != NULL) {
                long value;
                if (!PyTuple_Check(popped) || PyTuple_GET_SIZE(popped) != 2) {
                    PyErr_SetString(PyExc_TypeError, "jitter buffer pop() must return (frame, status)");
                }
                else if ((value = PyLong_AsLong(PyTuple_GET_ITEM(popped, 1))) != -1 || !PyErr_Occurred()) {
                    status = (int)value;
                    frame = PyTuple_GET_ITEM(popped, 0);
                    Py_INCREF(frame);
                }
                Py_DECREF(popped);
            }
        }
        Py_DECREF(jitter);
        if (frame == NULL)
            goto error;
        if (!PyBytes_Check(frame) || PyBytes_GET_SIZE(frame) != FRAME_SAMPLES || status < 0 || status > 255) {
            PyErr_Format(PyExc_ValueError, "session %zd: a jitter frame must be %d bytes", i, FRAME_SAMPLES);
            Py_DECREF(frame);
            goto error;
        }
        memcpy(codes + i * FRAME_SAMPLES, PyBytes_AS_STRING(frame), FRAME_SAMPLES);
        status_out[i] = (char)status;
        Py_DECREF(frame);
    }
    PyObject *result = PyTuple_Pack(2, block, statuses);
    Py_DECREF(block);
    Py_DECREF(statuses);
    return result;
error:
    Py_XDECREF(block);
    Py_XDECREF(statuses);
    return NULL;
}

/* The next frame of a session whose source stands inside a run of fixed audio (see
 * FrameCursor): a new reference, or NULL when Python must be asked (no exception). */
static PyObject *
cursor_frame(RtpCoreStreamState *state)
{
    if (rtpcore_truth(state->dtmf_queue) != 0 || (state->inband_tone != NULL && state->inband_tone != Py_None))
        return NULL; /* a key to play, or being played: next_outbound decides */
    PyObject *source = state->source;
    if (source == NULL || source == Py_None)
        Py_RETURN_NONE;
    if (!RtpCore_FrameCursor_Check(source))
        return NULL;
    RtpCoreFrameCursor *cursor = (RtpCoreFrameCursor *)source;
    PyObject *frames = cursor->frames;
    if (frames == NULL || !PyBytes_Check(frames) || cursor->codec != state->codec || cursor->offset < 0 ||
        cursor->offset + FRAME_SAMPLES >= cursor->end || cursor->end > PyBytes_GET_SIZE(frames))
        return NULL;
    PyObject *frame = PyBytes_FromStringAndSize(PyBytes_AS_STRING(frames) + cursor->offset, FRAME_SAMPLES);
    if (frame != NULL) {
        cursor->offset += FRAME_SAMPLES;
        cursor->played += FRAME_SAMPLES;
    }
    return frame;
}

static int
append_index(PyObject *rows, Py_ssize_t index)
{
    PyObject *row = PyLong_FromSsize_t(index);
    if (row == NULL)
        return -1;
    int appended = PyList_Append(rows, row);
    Py_DECREF(row);
    return appended;
}

static PyObject *
next_frames(PyObject *module, PyObject *args)
{
    PyObject *sessions, *pcm_type;
    if (!PyArg_ParseTuple(args, "O!O:next_frames", &PyList_Type, &sessions, &pcm_type) ||
        check_sessions(sessions) < 0)
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(sessions);
    PyObject *frames = PyList_New(count), *pcm_rows = PyList_New(0);
    if (frames == NULL || pcm_rows == NULL)
        goto error;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (PyList_GET_SIZE(sessions) != count) {
            /* a source's Python code changed the list (the tick passes a snapshot) */
            PyErr_SetString(PyExc_RuntimeError, "sessions changed while their frames were taken");
            goto error;
        }
        PyObject *session = PyList_GET_ITEM(sessions, i), *frame;
        Py_INCREF(session);
        if (STATE(session)->closed) {
            frame = Py_None;
            Py_INCREF(frame);
        }
        else if ((frame = cursor_frame(STATE(session))) == NULL && !PyErr_Occurred()) {
            frame = PyObject_CallMethodNoArgs(session, s_next_outbound);
        }
        Py_DECREF(session);
        if (frame == NULL)
            goto error;
        PyList_SET_ITEM(frames, i, frame);
        if ((PyObject *)Py_TYPE(frame) == pcm_type && append_index(pcm_rows, i) < 0)
            goto error;
    }
    PyObject *result = PyTuple_Pack(2, frames, pcm_rows);
    Py_DECREF(frames);
    Py_DECREF(pcm_rows);
    return result;
error:
    Py_XDECREF(frames);
    Py_XDECREF(pcm_rows);
    return NULL;
}

static PyObject *
listening(PyObject *module, PyObject *args)
{
    PyObject *sessions;
    if (!PyArg_ParseTuple(args, "O!:listening", &PyList_Type, &sessions) || check_sessions(sessions) < 0)
        return NULL;
    PyObject *rows = PyList_New(0);
    if (rows == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(sessions); i++) {
        RtpCoreStreamState *state = STATE(PyList_GET_ITEM(sessions, i));
        int wanted = state->closed ? 0 : rtpcore_truth(state->consumers);
        if (wanted < 0 || (wanted && append_index(rows, i) < 0)) {
            Py_DECREF(rows);
            return NULL;
        }
    }
    return rows;
}

static PyMethodDef io_functions[] = {
    {"send_frames", send_frames, METH_VARARGS,
     "send_frames(sessions, frames, now, pacer=None) -> sent without Python: send each "
     "session's frame (codec bytes, or None for silence) as RtpSession.send_frame does and "
     "run its due housekeeping; closed sessions are skipped. With a pacer whose batch is "
     "open, the packets are queued there instead of sent"},
    {"next_frames", next_frames, METH_VARARGS,
     "next_frames(sessions, pcm_type) -> (frames, pcm_rows): each session's next_outbound() "
     "(None for a closed one), taken without Python where its source stands inside a run of "
     "fixed audio (FrameCursor); pcm_rows: the indices of the frames of type pcm_type"},
    {"listening", listening, METH_VARARGS,
     "listening(sessions) -> the indices of the sessions that are open and have consumers"},
    {"pop_frames", pop_frames, METH_VARARGS,
     "pop_frames(sessions) -> (codes, statuses): one 160-byte frame popped from each "
     "session's jitter buffer, concatenated, and each frame's FRAME_* status as a byte"},
    {NULL},
};

int
rtpcore_add_io(PyObject *module)
{
    if (intern_names() < 0)
        return -1;
    if (PyType_Ready(&RtpReaderType) < 0)
        return -1;
    Py_INCREF(&RtpReaderType);
    if (PyModule_AddObject(module, "RtpReader", (PyObject *)&RtpReaderType) < 0) {
        Py_DECREF(&RtpReaderType);
        return -1;
    }
    return PyModule_AddFunctions(module, io_functions);
}
