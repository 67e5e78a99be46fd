/* The media engine's C accelerator, portaum_tx.rtp._rtpcore (built by setup.py): what its parts share.
 *
 * jitter.c   JitterBuffer, the inbound reorder buffer (same behaviour as jitter.py)
 * stats.c    ReceiverStatistics core: RFC 3550 A.1/A.3/A.8 (same as stats.py)
 * rtpio.c    per-tick packet I/O: reading every session's RTP socket, sending every
 *            session's frame, with the common packet handled without Python
 * pacer.c    Pacer, the thread that sends each tick's packets at the tick's instant
 * stream.c   StreamState, RtpSession's per-packet fields as a C struct, and
 *            FrameCursor, where a Player stands in a stretch of fixed audio
 * module.c   the module
 */
#ifndef PORTAUM_RTPCORE_H
#define PORTAUM_RTPCORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <sys/socket.h>

/* the largest RTP packet sent or read */
#define RTPCORE_MAX_PACKET 2048

/* jitter.c */
extern PyTypeObject RtpCore_JitterBufferType;
int rtpcore_add_jitter(PyObject *module);
/* 0, or -1 with an exception set; ``payload`` is a bytes object (a reference is kept) */
int rtpcore_jitter_push(PyObject *jitter, uint32_t timestamp, PyObject *payload);
/* a new reference to the frame (bytes of frame_samples) and its FRAME_* status in
 * *status, or NULL with an exception set */
PyObject *rtpcore_jitter_pop(PyObject *jitter, int *status);

/* stats.c */
extern PyTypeObject RtpCore_ReceiverStatisticsType;
int rtpcore_add_stats(PyObject *module);
/* ReceiverStatistics.update: 1 accepted, 0 not (probation, wild jump) */
int rtpcore_stats_update(PyObject *stats, uint32_t sequence, uint32_t timestamp, double arrival);

/* rtpio.c */
int rtpcore_add_io(PyObject *module);
/* a numeric (host, port) tuple as a socket address: 0, or -1 when it is not one
 * (no exception set) */
int rtpcore_tuple_sockaddr(PyObject *tuple, struct sockaddr_storage *out, socklen_t *length);

/* pacer.c */
extern PyTypeObject RtpCore_PacerType;
int rtpcore_add_pacer(PyObject *module);
/* 1 queued in the pacer's open batch, 0 no batch is open (send it yourself), -1 error */
int rtpcore_pacer_queue(PyObject *pacer, int fd, const struct sockaddr_storage *address,
                        socklen_t address_length, const unsigned char *data, Py_ssize_t size);

/* stream.c */
typedef struct {
    PyObject_HEAD
    char closed, latched, sending, marker_pending, sent_since_report, dead_reported;
    int rtp_fd, dtmf_gap, packet_samples;
    long long sequence, timestamp, ssrc, packets_sent, octets_sent, send_errors, packets_received;
    double housekeeping_due, last_heard;
    /* NULL reads as None */
    PyObject *params, *remote_address, *remote_ssrc, *stats, *jitter, *dtmf_packets, *dtmf_queue,
        *outbound, *codec, *source, *inband_tone, *consumers;
    /* conversions, each valid while its object is the field's */
    PyObject *cached_remote;
    struct sockaddr_storage remote_sockaddr;
    socklen_t remote_length;
    PyObject *cached_params;
    int cached_payload_type;
} RtpCoreStreamState;
extern PyTypeObject RtpCore_StreamStateType;
int rtpcore_add_stream(PyObject *module);
#define RtpCore_StreamState_Check(op) PyObject_TypeCheck(op, &RtpCore_StreamStateType)
/* the far end's address as a sockaddr: 0, or -1 when there is none or it is not
 * numeric (no exception set) */
int rtpcore_stream_remote(RtpCoreStreamState *self, struct sockaddr_storage *address, socklen_t *length);
/* the negotiated payload type; -3 none or not a number, -2 exception set */
int rtpcore_stream_payload_type(RtpCoreStreamState *self);
/* A source whose next frames are a run of fixed bytes (a Player inside a prompt):
 * ``frames[offset:offset + 160]`` while ``offset + 160 < end`` and the session's codec
 * is ``codec``; ``frames`` NULL when the source must be asked in Python. */
typedef struct {
    PyObject_HEAD
    PyObject *frames, *codec;
    long long offset, end, played;
} RtpCoreFrameCursor;
extern PyTypeObject RtpCore_FrameCursorType;
#define RtpCore_FrameCursor_Check(op) PyObject_TypeCheck(op, &RtpCore_FrameCursorType)
/* the truth of an attribute's value (NULL false): 1, 0, -1 exception set */
int rtpcore_truth(PyObject *value);

#endif
