/* StreamState: the fields of an RTP session that the media tick reads or writes for
 * every packet, kept in a C struct that RtpSession inherits from; and FrameCursor,
 * the same for where a Player is in the prompt it plays.
 *
 * In Python they are ordinary attributes (member descriptors), read and assigned as
 * before. The per-tick C code (rtpio.c) reads and writes the struct directly instead
 * of looking each one up in the session's dictionary: at a thousand sessions those
 * lookups, some twenty for every packet sent, were the largest single cost of the
 * process after the kernel's own.
 *
 * Two conversions are cached beside the fields, each with a strong reference to the
 * object it was made from (so that a new object can never be mistaken for it): the
 * far end's address as a sockaddr, and the negotiated payload type of the session's
 * (frozen) MediaParams.
 */
#include "rtpcore.h"

#include <stddef.h>
#include <structmember.h>

static PyObject *s_payload_type;

static PyObject *
StreamState_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    RtpCoreStreamState *self = (RtpCoreStreamState *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->rtp_fd = -1;
    self->packet_samples = 160;
    self->cached_payload_type = -1;
    return (PyObject *)self;
}

static int
StreamState_traverse(RtpCoreStreamState *self, visitproc visit, void *arg)
{
    Py_VISIT(self->params);
    Py_VISIT(self->remote_address);
    Py_VISIT(self->remote_ssrc);
    Py_VISIT(self->stats);
    Py_VISIT(self->jitter);
    Py_VISIT(self->dtmf_packets);
    Py_VISIT(self->dtmf_queue);
    Py_VISIT(self->outbound);
    Py_VISIT(self->codec);
    Py_VISIT(self->source);
    Py_VISIT(self->inband_tone);
    Py_VISIT(self->consumers);
    Py_VISIT(self->cached_remote);
    Py_VISIT(self->cached_params);
    return 0;
}

static int
StreamState_clear(RtpCoreStreamState *self)
{
    Py_CLEAR(self->params);
    Py_CLEAR(self->remote_address);
    Py_CLEAR(self->remote_ssrc);
    Py_CLEAR(self->stats);
    Py_CLEAR(self->jitter);
    Py_CLEAR(self->dtmf_packets);
    Py_CLEAR(self->dtmf_queue);
    Py_CLEAR(self->outbound);
    Py_CLEAR(self->codec);
    Py_CLEAR(self->source);
    Py_CLEAR(self->inband_tone);
    Py_CLEAR(self->consumers);
    Py_CLEAR(self->cached_remote);
    Py_CLEAR(self->cached_params);
    return 0;
}

static void
StreamState_dealloc(RtpCoreStreamState *self)
{
    PyObject_GC_UnTrack(self);
    StreamState_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

int
rtpcore_stream_remote(RtpCoreStreamState *self, struct sockaddr_storage *address, socklen_t *length)
{
    PyObject *remote = self->remote_address;
    if (remote == NULL || remote == Py_None)
        return -1;
    if (remote != self->cached_remote) {
        Py_CLEAR(self->cached_remote);
        if (rtpcore_tuple_sockaddr(remote, &self->remote_sockaddr, &self->remote_length) < 0)
            return -1;
        Py_INCREF(remote);
        self->cached_remote = remote;
    }
    *address = self->remote_sockaddr;
    *length = self->remote_length;
    return 0;
}

int
rtpcore_stream_payload_type(RtpCoreStreamState *self)
{
    PyObject *params = self->params;
    if (params == NULL || params == Py_None)
        return -3;
    if (params != self->cached_params) {
        PyObject *value = PyObject_GetAttr(params, s_payload_type);
        if (value == NULL)
            return -2;
        long number = PyLong_Check(value) ? PyLong_AsLong(value) : -3;
        Py_DECREF(value);
        if (number == -1 && PyErr_Occurred())
            return -2;
        if (number < 0 || number > 127)
            return -3;
        Py_INCREF(params);
        Py_XSETREF(self->cached_params, params);
        self->cached_payload_type = (int)number;
    }
    return self->cached_payload_type;
}

int
rtpcore_truth(PyObject *value)
{
    if (value == NULL || value == Py_None || value == Py_False)
        return 0;
    if (value == Py_True)
        return 1;
    if (PyList_CheckExact(value))
        return PyList_GET_SIZE(value) != 0;
    if (PyBytes_CheckExact(value))
        return PyBytes_GET_SIZE(value) != 0;
    return PyObject_IsTrue(value);
}

#define FIELD(name, type, member) {name, type, offsetof(RtpCoreStreamState, member), 0, NULL}
static PyMemberDef StreamState_members[] = {
    FIELD("closed", T_BOOL, closed),
    FIELD("latched", T_BOOL, latched),
    FIELD("_sending", T_BOOL, sending),
    FIELD("_marker_pending", T_BOOL, marker_pending),
    FIELD("_sent_since_report", T_BOOL, sent_since_report),
    FIELD("_dead_reported", T_BOOL, dead_reported),
    FIELD("_rtp_fd", T_INT, rtp_fd),
    FIELD("_dtmf_gap", T_INT, dtmf_gap),
    FIELD("_packet_samples", T_INT, packet_samples),
    FIELD("_sequence", T_LONGLONG, sequence),
    FIELD("_timestamp", T_LONGLONG, timestamp),
    FIELD("ssrc", T_LONGLONG, ssrc),
    FIELD("packets_sent", T_LONGLONG, packets_sent),
    FIELD("octets_sent", T_LONGLONG, octets_sent),
    FIELD("send_errors", T_LONGLONG, send_errors),
    FIELD("packets_received", T_LONGLONG, packets_received),
    FIELD("housekeeping_due", T_DOUBLE, housekeeping_due),
    FIELD("_last_heard", T_DOUBLE, last_heard),
    FIELD("params", T_OBJECT, params),
    FIELD("remote_address", T_OBJECT, remote_address),
    FIELD("remote_ssrc", T_OBJECT, remote_ssrc),
    FIELD("stats", T_OBJECT, stats),
    FIELD("jitter", T_OBJECT, jitter),
    FIELD("_dtmf_packets", T_OBJECT, dtmf_packets),
    FIELD("_dtmf_queue", T_OBJECT, dtmf_queue),
    FIELD("_outbound", T_OBJECT, outbound),
    FIELD("codec", T_OBJECT, codec),
    FIELD("_source", T_OBJECT, source),
    FIELD("_inband_tone", T_OBJECT, inband_tone),
    FIELD("consumers", T_OBJECT, consumers),
    {NULL},
};

PyTypeObject RtpCore_StreamStateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "portaum_tx.rtp._rtpcore.StreamState",
    .tp_doc = "The per-packet fields of an RTP session, for the media tick's C code",
    .tp_basicsize = sizeof(RtpCoreStreamState),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = StreamState_new,
    .tp_dealloc = (destructor)StreamState_dealloc,
    .tp_traverse = (traverseproc)StreamState_traverse,
    .tp_clear = (inquiry)StreamState_clear,
    .tp_members = StreamState_members,
};

/* --- FrameCursor ------------------------------------------------------------------ */

static int
FrameCursor_traverse(RtpCoreFrameCursor *self, visitproc visit, void *arg)
{
    Py_VISIT(self->frames);
    Py_VISIT(self->codec);
    return 0;
}

static int
FrameCursor_clear(RtpCoreFrameCursor *self)
{
    Py_CLEAR(self->frames);
    Py_CLEAR(self->codec);
    return 0;
}

static void
FrameCursor_dealloc(RtpCoreFrameCursor *self)
{
    PyObject_GC_UnTrack(self);
    FrameCursor_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

#define CURSOR(name, type, member) {name, type, offsetof(RtpCoreFrameCursor, member), 0, NULL}
static PyMemberDef FrameCursor_members[] = {
    CURSOR("_frames", T_OBJECT, frames),
    CURSOR("_frames_codec", T_OBJECT, codec),
    CURSOR("_frames_end", T_LONGLONG, end),
    CURSOR("_offset", T_LONGLONG, offset),
    CURSOR("_played", T_LONGLONG, played),
    {NULL},
};
#undef CURSOR
#undef FIELD

PyTypeObject RtpCore_FrameCursorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "portaum_tx.rtp._rtpcore.FrameCursor",
    .tp_doc = "Where a media source stands in a run of fixed audio, for the media tick's C code",
    .tp_basicsize = sizeof(RtpCoreFrameCursor),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)FrameCursor_dealloc,
    .tp_traverse = (traverseproc)FrameCursor_traverse,
    .tp_clear = (inquiry)FrameCursor_clear,
    .tp_members = FrameCursor_members,
};

static int
add_type(PyObject *module, PyTypeObject *type, const char *name)
{
    if (PyType_Ready(type) < 0)
        return -1;
    Py_INCREF(type);
    if (PyModule_AddObject(module, name, (PyObject *)type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

int
rtpcore_add_stream(PyObject *module)
{
    if ((s_payload_type = PyUnicode_InternFromString("payload_type")) == NULL)
        return -1;
    if (add_type(module, &RtpCore_StreamStateType, "StreamState") < 0)
        return -1;
    return add_type(module, &RtpCore_FrameCursorType, "FrameCursor");
}
