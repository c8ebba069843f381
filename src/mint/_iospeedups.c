/* Optional C speedups for the blocking I/O edge of an upgraded HTTP/1.1 WebSocket.
 *
 * recv(conn, byte_count, timeout), stream_request_body(conn, ref, data) and
 * stream(conn, message) are mint.websocket's functions of the same names with their
 * hot path in C, for the one case that dominates a request/response exchange: a
 * connection on a plain (blocking, see mint._backend) socket, upgraded over HTTP/1.1,
 * in a steady state (nothing held back, nothing owed); and, on a TLS socket, a passive
 * connection's drained read, the burst after it, and its send, through the ssl module's
 * objects (recv_tls and _sockio.h's TLS part; OpenSSL stays Python's ssl module's).
 * mailbox_receive is the same for mint.mailbox.Mailbox.receive, the wait and read of
 * active mode, plain or TLS (see below).
 *
 * Why C for what the Python path already does in a few lines: in a 16-byte
 * request/response round trip a bare blocking socket costs about 60 us of client CPU
 * on loopback, and every layer between the caller and the socket (websocket -> http
 * -> transport -> backend, a dozen checks of the connection's state, the Data built)
 * is paid again on every wake-up, with cold caches. Measured in paired slices against
 * a C echo server (150 rounds of 1,000 round trips): the four calls of a round trip
 * (encode, stream_request_body, recv, decode) cost 1.24x the bare socket's CPU as
 * Python functions and 1.10x as C entry points (this module and mint._speedups').
 * Here the same checks read the same slots through their descriptors, and the system
 * call is made directly. A read that fills its first buffer reads on, straight into
 * one bytes object sized by FIONREAD (read_on); one that stops at READ_BURST leaves
 * the transport not drained, and the next recv takes what is there without waiting
 * before it waits (the Python path's order, so a stream of large messages or of
 * pipelined ones stays on this path). Every other case, and every outcome
 * that is not bytes, is handed to the Python functions (set by setup()), which stay
 * the reference and are
 * tested on their own (MINT_NO_SPEEDUPS=1): this module holds no state of its own
 * besides those references, so the two paths can never disagree about a connection.
 */
#include "_slots.h"
#include "_sockio.h"
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/types.h>

/* Slot descriptors (set once by setup()), read and written as Python does. */
enum {
    CONN_HELD, CONN_MODE, CONN_PRIVATE, CONN_SESSION, CONN_TRANSPORT,
    TR_CLOSED, TR_DRAINED, TR_UNREAD, TR_UNSENT, TR_WAITER, TR_SOCK, TR_TLS, TR_UNSTREAMED,
    W_BLOCKING, W_TIMEOUT, W_FD,
    DATA_REF, DATA_DATA,
    SD_SOCKET, SD_DATA,
    N_SLOTS
};
static const char *slot_names[N_SLOTS] = {
    "_held", "_mode", "_private", "_session", "_transport",
    "closed", "_drained", "_unread", "_unsent", "_waiter", "sock", "tls", "unstreamed",
    "_blocking", "_timeout", "_fd",
    "ref", "data",
    "socket", "data",
};
/* Which type each slot belongs to: 0 Conn, 1 Transport, 2 Waiter, 3 Data, 4 SocketData. */
static const int slot_owner[N_SLOTS] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                        2, 2, 2, 3, 3, 4, 4};

#define N_TYPES 5
enum { PY_RECV, PY_SRB, PY_STREAM, PY_RECV_TAIL, PY_SEND_REST, PY_SEND_FAILED, N_CALLS };

static struct {
    int ready;
    Py_ssize_t read_burst;  /* the most one read returns (READ_BURST) */
    PyTypeObject *types[N_TYPES];   /* Conn, Transport, Waiter, Data, SocketData */
    PyObject *slots[N_SLOTS];
    PyObject *calls[N_CALLS];
    PyObject *s_passive, *s_early, *s_direct_ref, *s_set_timeout;
    struct tls_io tls; /* what the TLS paths call and catch (see _sockio.h) */
} st;

/* obj's slot value (a new reference), or NULL with no exception set when unset. */
static PyObject *
get(int slot, PyObject *obj)
{
    return slot_value(st.slots[slot], obj);
}

static int
set(int slot, PyObject *obj, PyObject *value)
{
    return slot_store(st.slots[slot], obj, value);
}

static PyObject *setup(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
static PyObject *recv_(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames);
static PyObject *stream_request_body(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames);
static PyObject *stream_(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames);
static PyObject *setup_mailbox(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
static PyObject *mailbox_receive(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
static PyObject *setup_receive(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
static PyObject *receive_(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames);
static PyObject *recv_ready_(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

static PyMethodDef methods[] = {
    {"setup", (PyCFunction)(void (*)(void))setup, METH_FASTCALL,
     "setup(Conn, Transport, Waiter, Data, SocketData, read_burst, recv, "
     "stream_request_body, stream, recv_tail, send_rest, send_failed) -> (recv, "
     "stream_request_body, "
     "stream): the types whose slots the fast paths read, and the Python functions they "
     "hand everything else to; returns the three functions with the Python ones' "
     "documentation."},
    {"recv", (PyCFunction)(void (*)(void))recv_, METH_FASTCALL | METH_KEYWORDS,
     "recv(conn, byte_count, timeout)\n--\n\n"
     "mint.websocket.recv, with the hot path of a passive upgraded HTTP/1.1 connection "
     "on a plain socket in C (see mint.websocket._fastio)."},
    {"stream_request_body", (PyCFunction)(void (*)(void))stream_request_body,
     METH_FASTCALL | METH_KEYWORDS,
     "stream_request_body(conn, ref, data)\n--\n\n"
     "mint.websocket.stream_request_body, with the hot path of an upgraded HTTP/1.1 "
     "connection on a plain socket in C (see mint.websocket._fastio)."},
    {"stream", (PyCFunction)(void (*)(void))stream_, METH_FASTCALL | METH_KEYWORDS,
     "stream(conn, message)\n--\n\n"
     "mint.websocket.stream, with the hot path of an active upgraded HTTP/1.1 connection "
     "(its socket's bytes, as they came) in C (see mint.websocket._fastio)."},
    {"setup_mailbox", (PyCFunction)(void (*)(void))setup_mailbox, METH_FASTCALL,
     "setup_mailbox(Transport, SocketData, Mailbox, read_burst, passed, timed_out) -> receive: "
     "the types and markers of mint.mailbox's fast path (see mailbox_receive)."},
    {"mailbox_receive", (PyCFunction)(void (*)(void))mailbox_receive, METH_FASTCALL,
     "mailbox_receive(mailbox, timeout) -> message | passed | timed_out: Mailbox.receive's "
     "common case (one plain socket, nothing queued) in C; 'passed' when the Python loop "
     "must take over (nothing was read), 'timed_out' when the timeout ran out."},
    {"setup_receive", (PyCFunction)(void (*)(void))setup_receive, METH_FASTCALL,
     "setup_receive(local, Mailbox, receive) -> receive: mint.receive with the calling "
     "thread's default mailbox (local.mailbox, a Mailbox) read by mailbox_receive in C; "
     "returns it with the Python function's documentation."},
    {"receive", (PyCFunction)(void (*)(void))receive_, METH_FASTCALL | METH_KEYWORDS,
     "receive(timeout=None)\n--\n\n"
     "mint.receive, its common case in C (see mint.mailbox)."},
    {"recv_ready", (PyCFunction)(void (*)(void))recv_ready_, METH_FASTCALL,
     "recv_ready(fd, read_burst) -> bytes | None: what a plain socket holds, without "
     "waiting, up to read_burst bytes in one bytes object; b'' at the end of stream, "
     "None when there is nothing yet; a failure raises OSError (see "
     "BaseTransport.recv_ready)."},
    {NULL, NULL, 0, NULL},
};

/* setup(Conn, Transport, Waiter, Data, SocketData, read_burst, recv,
 *       stream_request_body, stream, recv_tail, send_rest, send_failed)
 *   -> (recv, stream_request_body, stream), documented */
static PyObject *
setup(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (setup_state("setup(Conn, Transport, Waiter, Data, SocketData, read_burst, recv, "
                    "stream_request_body, stream, recv_tail, send_rest, send_failed)",
                    args, nargs, N_TYPES, N_CALLS, slot_names, slot_owner, N_SLOTS, &st.ready,
                    st.types, st.slots, st.calls, &st.read_burst) < 0) {
        return NULL;
    }
    PyObject **const strings[] = {&st.s_passive, &st.s_early, &st.s_direct_ref,
                                  &st.s_set_timeout};
    const char *const names[] = {"passive", "early", "direct_ref", "_set_timeout"};
    if (INTERN_ONCE(strings, names) < 0) {
        return NULL;
    }
    if (tls_setup(&st.tls, st.read_burst) < 0) {
        return NULL;
    }
    st.ready = 1;
    /* The public functions: copies of recv, stream_request_body and stream with the
     * Python functions' documentation. */
    PyObject *recv_doc =
        documented(method_named(methods, "recv"), st.calls[PY_RECV], "mint.websocket");
    PyObject *srb_doc = documented(method_named(methods, "stream_request_body"),
                                   st.calls[PY_SRB], "mint.websocket");
    PyObject *stream_doc =
        documented(method_named(methods, "stream"), st.calls[PY_STREAM], "mint.websocket");
    PyObject *result = NULL;
    if (recv_doc != NULL && srb_doc != NULL && stream_doc != NULL) {
        result = PyTuple_Pack(3, recv_doc, srb_doc, stream_doc);
    }
    Py_XDECREF(recv_doc);
    Py_XDECREF(srb_doc);
    Py_XDECREF(stream_doc);
    return result;
}

/* conn's direct ref (a new reference) when it is an upgraded HTTP/1.1 connection,
 * whose bytes are its WebSocket's as they come; else NULL, no exception set. */
static PyObject *
direct_ref(PyObject *conn)
{
    return direct_ref_of(get(CONN_SESSION, conn), st.s_direct_ref);
}

/* True when conn keeps nothing back for later: its _private dict has no "early". */
static int
nothing_early(PyObject *conn)
{
    PyObject *private = get(CONN_PRIVATE, conn);
    int ok = private != NULL && PyDict_CheckExact(private);
    if (ok && PyDict_GET_SIZE(private) != 0) {
        int has = PyDict_Contains(private, st.s_early);
        if (has < 0) {
            PyErr_Clear();
        }
        ok = has == 0;
    }
    Py_XDECREF(private);
    return ok;
}

/* The transport, waiter and ref of conn when it is an upgraded HTTP/1.1 connection on
 * a plain or TLS socket that is open with nothing owed (new references, 0; *tls says
 * which), else -1. The caller checks what is specific to reading or writing. */
static int
direct(PyObject *conn, PyObject **transport, PyObject **waiter, PyObject **ref, int *tls)
{
    PyObject *tr = NULL, *w = NULL, *r = NULL;
    *transport = *waiter = *ref = NULL;
    *tls = 0;
    if (Py_TYPE(conn) != st.types[0]) {
        return -1;
    }
    tr = get(CONN_TRANSPORT, conn);
    if (tr == NULL || Py_TYPE(tr) != st.types[1] || !slot_is(st.slots[TR_CLOSED], tr, Py_False)) {
        goto no;
    }
    w = get(TR_WAITER, tr);
    /* _blocking: True only for a plain socket; TLS stays non-blocking */
    if (w == NULL || Py_TYPE(w) != st.types[2]) {
        goto no;
    }
    if (!slot_is(st.slots[W_BLOCKING], w, Py_True)) {
        if (!slot_is(st.slots[W_BLOCKING], w, Py_False) || !slot_is(st.slots[TR_TLS], tr, Py_True)) {
            goto no;
        }
        *tls = 1;
    }
    r = direct_ref(conn);
    if (r == NULL) {
        goto no;
    }
    *transport = tr;
    *waiter = w;
    *ref = r;
    return 0;
no:
    Py_XDECREF(w);
    Py_XDECREF(tr);
    return -1;
}

/* The socket's descriptor from the waiter, or -1. */
static int
waiter_fd(PyObject *w)
{
    PyObject *v = get(W_FD, w);
    if (v == NULL) {
        return -1;
    }
    long fd = PyLong_AsLong(v);
    Py_DECREF(v);
    if (fd == -1 && PyErr_Occurred()) {
        PyErr_Clear();
    }
    return fd < 0 || fd > INT_MAX ? -1 : (int)fd;
}

/* True when conn is passive with no input held back or kept for later. */
static int
passive_and_steady(PyObject *conn)
{
    int ok = 0;
    PyObject *mode = get(CONN_MODE, conn);
    PyObject *held = get(CONN_HELD, conn);
    if (mode == NULL || held == NULL) {
        goto done;
    }
    if (mode != st.s_passive
        && !(PyUnicode_CheckExact(mode) && PyUnicode_Compare(mode, st.s_passive) == 0)) {
        goto done;
    }
    if (!PyList_CheckExact(held) || PyList_GET_SIZE(held) != 0) {
        goto done;
    }
    ok = nothing_early(conn);
done:
    if (PyErr_Occurred()) {
        PyErr_Clear();
        ok = 0;
    }
    Py_XDECREF(mode);
    Py_XDECREF(held);
    return ok;
}

/* True when the socket's SO_RCVTIMEO is already timeout's (see Waiter.wait_and_recv). */
static int
same_timeout(PyObject *w, PyObject *timeout)
{
    if (timeout != Py_None && !PyFloat_CheckExact(timeout) && !PyLong_CheckExact(timeout)) {
        /* (True, Fraction(1), Decimal(1) equal 1 but are no timeout: the Python path
         * refuses them, as it would have here had the last timeout been another.) */
        return 0;
    }
    PyObject *current = get(W_TIMEOUT, w);
    if (current == NULL) {
        return 0;
    }
    int same;
    if (current == timeout) {
        same = 1;
    }
    else if (current == Py_None || timeout == Py_None) {
        same = 0;
    }
    else {
        same = PyObject_RichCompareBool(current, timeout, Py_EQ);
        if (same < 0) {
            PyErr_Clear();
            same = 0;
        }
    }
    Py_DECREF(current);
    return same;
}

static int64_t
monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Data(ref, data), a new reference. */
static PyObject *
new_data(PyObject *ref, PyObject *data)
{
    PyTypeObject *dt = st.types[3];
    PyObject *item = dt->tp_alloc(dt, 0);
    if (item == NULL) {
        return NULL;
    }
    if (set(DATA_REF, item, ref) < 0 || set(DATA_DATA, item, data) < 0) {
        Py_DECREF(item);
        return NULL;
    }
    return item;
}

/* (conn, [Data(ref, data)]): what recv and stream return for a WebSocket's bytes. */
static PyObject *
one_data(PyObject *conn, PyObject *ref, PyObject *data)
{
    PyObject *item = new_data(ref, data);
    if (item == NULL) {
        return NULL;
    }
    PyObject *list = PyList_New(1);
    if (list == NULL) {
        Py_DECREF(item);
        return NULL;
    }
    PyList_SET_ITEM(list, 0, item);
    PyObject *result = PyTuple_Pack(2, conn, list);
    Py_DECREF(list);
    return result;
}

/* A timeout as the C waits take it: 0 for None, 1 with *secs for an exact float or
 * int, -1 (no exception set) for anything else, which the Python path checks. */
static int
timeout_seconds(PyObject *timeout, double *secs)
{
    if (timeout == Py_None) {
        return 0;
    }
    if (PyFloat_CheckExact(timeout)) {
        *secs = PyFloat_AS_DOUBLE(timeout);
        return 1;
    }
    if (PyLong_CheckExact(timeout)) {
        *secs = PyLong_AsDouble(timeout);
        if (*secs == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return -1;
        }
        return 1;
    }
    return -1;
}

/* recv_tail(conn, outcome): a read that gave no bytes, ended by the Python path. */
static PyObject *
recv_tail(PyObject *conn, PyObject *outcome)
{
    return PyObject_CallFunctionObjArgs(st.calls[PY_RECV_TAIL], conn, outcome, NULL);
}

/* The drained read of a passive TLS connection, the Python hot path's steps (see
 * Transport.recv_parts and Waiter.wait_and_recv): a wait in poll until the timeout's
 * deadline, then one read through the SSLSocket, which gives one record. A read that
 * finds only part of a record waits again; one that leaves decrypted bytes in OpenSSL,
 * or more bytes in the socket, reads on in one burst (tls_burst), one Data. NULL with
 * no exception set: the Python path takes the case (a timeout
 * it does not wait with, or TLS wanting to write before it reads). */
static PyObject *
recv_tls(PyObject *conn, PyObject *tr, PyObject *ref, int fd, PyObject *timeout)
{
    int64_t deadline = -1;  /* none */
    double secs;
    int has = timeout_seconds(timeout, &secs);
    if (has < 0) {
        return NULL;
    }
    if (has) {
        if (!(secs > 0 && secs < 1e9)) {  /* no wait, NaN, or beyond a poll's reach */
            return NULL;
        }
        deadline = monotonic_ns() + (int64_t)(secs * 1e9);
    }
    PyObject *sock = get(TR_SOCK, tr);
    if (sock == NULL) {
        return NULL;
    }
    int direct;
    PyObject *target = tls_target(sock, &st.tls, &direct);
    PyObject *first = NULL, *result = NULL;
    for (;;) {
        int ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - monotonic_ns();
            if (left <= 0) {
                /* The deadline passed: recv_tail maps EAGAIN to the timeout. */
                PyObject *exc = PyObject_CallNoArgs(PyExc_BlockingIOError);
                if (exc != NULL) {
                    result = recv_tail(conn, exc);
                    Py_DECREF(exc);
                }
                goto done;
            }
            /* as the Python waiter: milliseconds rounded up */
            ms = left >= (int64_t)INT_MAX * 1000000 ? INT_MAX : (int)((left + 999999) / 1000000);
        }
        struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
        int ready, err;
        int how = poll_once(&p, 1, ms, &ready, &err);
        if (how == 1) {
            continue;  /* interrupted, its handlers ran: poll again */
        }
        if (how < 0) {
            /* -1: a signal handler raised, and the wait ends with it; -2: the Python
             * path meets the same failure, and maps it */
            goto done;
        }
        if (ready == 0) {
            continue;  /* the deadline, checked above */
        }
        first = tls_recv(sock, target, direct, &st.tls);
        if (first != NULL) {
            break;
        }
        if (PyErr_ExceptionMatches(st.tls.want_read)) {
            PyErr_Clear();  /* part of a record: wait for the rest */
            continue;
        }
        if (PyErr_ExceptionMatches(st.tls.want_write)) {
            /* TLS must write before it reads on: not a wait for reading, so the
             * connection is no longer "drained", and the Python path waits to write. */
            PyErr_Clear();
            (void)set(TR_DRAINED, tr, Py_False);
            PyErr_Clear();
            goto done;
        }
        if (PyErr_ExceptionMatches(PyExc_OSError)) {
            PyObject *exc = take_exception();
            if (exc != NULL) {
                result = recv_tail(conn, exc);
                Py_DECREF(exc);
            }
        }
        goto done;  /* anything else goes up as it is */
    }
    if (!PyBytes_CheckExact(first)) {
        PyErr_SetString(PyExc_TypeError, "recv: the TLS socket's read gave no bytes object");
        goto done;
    }
    if (PyBytes_GET_SIZE(first) == 0) {
        result = recv_tail(conn, first);
        goto done;
    }
    int drained;
    PyObject *end;
    PyObject *burst = tls_burst(sock, target, direct, fd, first, &st.tls, &drained, &end);
    if (burst != NULL) {
        if (keep_end(tr, end) == 0 && set(TR_DRAINED, tr, drained ? Py_True : Py_False) == 0) {
            result = one_data(conn, ref, burst);
        }
        Py_DECREF(burst);
    }
done:
    Py_XDECREF(first);
    Py_DECREF(target);
    Py_DECREF(sock);
    return result;
}

static PyObject *
recv_(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *tr = NULL, *w = NULL, *ref = NULL, *v = NULL, *buf = NULL, *result = NULL;
    if (!st.ready) {
        PyErr_SetString(PyExc_RuntimeError, "recv: setup() was not called");
        return NULL;
    }
    if (kwnames != NULL || nargs != 3 || !PyLong_CheckExact(args[1])) {
        goto python;
    }
    PyObject *conn = args[0], *timeout = args[2];
    {
        int overflow;
        if (PyLong_AsLongAndOverflow(args[1], &overflow) != 0 || overflow) {
            goto python;  /* byte_count: an exact count is the Python path's */
        }
    }
    int tls;
    if (direct(conn, &tr, &w, &ref, &tls) < 0) {
        goto python;
    }
    /* The transport's steady state: nothing unread, and _drained saying whether the last
     * read emptied the socket (True) or left bytes in it (False). */
    int was_drained = slot_is(st.slots[TR_DRAINED], tr, Py_True);
    if ((!was_drained && !slot_is(st.slots[TR_DRAINED], tr, Py_False))
        || !slot_is(st.slots[TR_UNREAD], tr, Py_None) || !passive_and_steady(conn)) {
        goto python;
    }
    /* Bytes an interrupted send still owes: the Python wait writes them as the socket
     * drains (Waiter.wait), where a blocking read would sit on them. */
    v = get(TR_UNSENT, tr);
    if (v == NULL || !PyBytes_CheckExact(v) || PyBytes_GET_SIZE(v) != 0) {
        PyErr_Clear();
        goto python;
    }
    Py_CLEAR(v);
    int fd = waiter_fd(w);
    if (fd < 0) {
        goto python;
    }
    if (tls) {
        /* TLS: only the drained read (the last read emptied the socket and OpenSSL) */
        if (!was_drained) {
            goto python;
        }
        result = recv_tls(conn, tr, ref, fd, timeout);
        if (result == NULL && !PyErr_Occurred()) {
            goto python;
        }
        goto done;
    }
    char first[FIRST_READ];
    ssize_t n;
    int err;
    if (!was_drained) {
        /* The last read left bytes behind (a burst larger than READ_BURST, or messages
         * that keep coming): take what is there without waiting, as the Python path's
         * first read does. Only a socket found empty goes on to wait. */
        n = recv_retrying(fd, first, sizeof first, MSG_DONTWAIT, &err);
        if (n == -2) {
            goto done;
        }
        if (n >= 0 || (err != EAGAIN && err != EWOULDBLOCK)) {
            goto got;
        }
    }
    if (!same_timeout(w, timeout)) {
        /* A new timeout: the waiter sets SO_RCVTIMEO (and remembers it), as before its
         * own blocking read. Only a wait may take this path (None, or above zero). */
        if (!(timeout == Py_None || (PyFloat_CheckExact(timeout) && PyFloat_AS_DOUBLE(timeout) > 0)
              || (PyLong_CheckExact(timeout) && _PyLong_Sign(timeout) > 0))) {
            goto python;
        }
        v = PyObject_CallMethodOneArg(w, st.s_set_timeout, timeout);
        if (v == NULL) {
            PyErr_Clear();  /* the Python path meets the same failure, and maps it */
            goto python;
        }
        Py_CLEAR(v);
    }
    /* One blocking read: the wait and the read in one system call, the timeout in
     * SO_RCVTIMEO (as Waiter.wait_and_recv). */
    n = recv_retrying(fd, first, sizeof first, 0, &err);
    if (n == -2) {
        goto done;  /* a signal handler raised: the wait ends with it */
    }
got:
    if (n > 0) {
        /* What came, as Data(ref, bytes), in one list. A read short of the buffer
         * emptied the socket; one that filled it reads on. */
        int drained = 1;
        buf = n < (ssize_t)sizeof first ? PyBytes_FromStringAndSize(first, n)
                                        : read_on(fd, first, n, st.read_burst, &drained);
        if (buf == NULL) {
            goto done;
        }
        if (drained != was_drained && set(TR_DRAINED, tr, drained ? Py_True : Py_False) < 0) {
            goto done;
        }
        result = one_data(conn, ref, buf);
        goto done;
    }
    /* Every other outcome (the end of stream, a timeout, a failure) is finished by
     * the Python path: recv_tail(conn, b"" | the OSError). */
    PyObject *outcome = no_bytes(n, err);
    if (outcome == NULL) {
        goto done;
    }
    result = PyObject_CallFunctionObjArgs(st.calls[PY_RECV_TAIL], conn, outcome, NULL);
    Py_DECREF(outcome);
    goto done;
python:
    result = PyObject_Vectorcall(st.calls[PY_RECV], args, nargs, kwnames);
done:
    Py_XDECREF(buf);
    Py_XDECREF(v);
    Py_XDECREF(ref);
    Py_XDECREF(w);
    Py_XDECREF(tr);
    return result;
}

static PyObject *
stream_request_body(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames)
{
    PyObject *tr = NULL, *w = NULL, *ref = NULL, *v = NULL, *result = NULL;
    if (!st.ready) {
        PyErr_SetString(PyExc_RuntimeError, "stream_request_body: setup() was not called");
        return NULL;
    }
    if (kwnames != NULL || nargs != 3 || !PyBytes_CheckExact(args[2])
        || PyBytes_GET_SIZE(args[2]) == 0) {
        goto python;
    }
    PyObject *conn = args[0], *chunk = args[2];
    int tls;
    if (direct(conn, &tr, &w, &ref, &tls) < 0 || ref != args[1]) {
        goto python;
    }
    v = get(TR_UNSENT, tr);  /* bytes a cancelled send still owes go first */
    if (v == NULL || !PyBytes_CheckExact(v) || PyBytes_GET_SIZE(v) != 0) {
        goto python;
    }
    Py_CLEAR(v);
    int fd = waiter_fd(w);
    if (fd < 0) {
        goto python;
    }
    const char *p = PyBytes_AS_STRING(chunk);
    Py_ssize_t len = PyBytes_GET_SIZE(chunk);
    ssize_t sent;
    if (tls) {
        /* One write through the SSLSocket (non-blocking, as the Python path's
         * send_now): what it took, or what it needs (the Python path waits). */
        PyObject *sock = get(TR_SOCK, tr);
        if (sock == NULL) {
            goto python;
        }
        int direct;
        PyObject *target = tls_target(sock, &st.tls, &direct);
        v = tls_send(sock, target, direct, chunk, &st.tls);
        Py_DECREF(target);
        Py_DECREF(sock);
        if (v == NULL) {
            if (PyErr_ExceptionMatches(st.tls.want_write)
                || PyErr_ExceptionMatches(st.tls.want_read)) {
                PyErr_Clear();
                goto python;  /* nothing went */
            }
            if (PyErr_ExceptionMatches(PyExc_OSError)) {
                PyObject *exc = take_exception();
                if (exc != NULL) {
                    result = PyObject_CallFunctionObjArgs(st.calls[PY_SEND_FAILED], conn, exc,
                                                          NULL);
                    Py_DECREF(exc);
                }
            }
            goto done;
        }
        sent = PyLong_AsSsize_t(v);
        Py_CLEAR(v);
        if (sent == -1 && PyErr_Occurred()) {
            goto done;
        }
    }
    else {
        /* Never waits (MSG_DONTWAIT, as every call but the read wait); the GIL is let go
         * all the same, as socket.send does: a loopback send runs the receiver's side. */
        Py_BEGIN_ALLOW_THREADS
        sent = send(fd, p, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
        Py_END_ALLOW_THREADS
    }
    if (sent == len) {
        Py_INCREF(conn);
        result = conn;
        goto done;
    }
    if (sent <= 0) {
        goto python;  /* nothing went: the Python path waits, or maps the failure */
    }
    /* Part went: the rest, from the caller's bytes, through the Python path. */
    PyObject *view = PyMemoryView_FromObject(chunk);
    if (view == NULL) {
        goto done;
    }
    PyObject *rest = PySequence_GetSlice(view, sent, len);
    Py_DECREF(view);
    if (rest == NULL) {
        goto done;
    }
    result = PyObject_CallFunctionObjArgs(st.calls[PY_SEND_REST], conn, rest, NULL);
    Py_DECREF(rest);
    goto done;
python:
    result = PyObject_Vectorcall(st.calls[PY_SRB], args, nargs, kwnames);
done:
    Py_XDECREF(v);
    Py_XDECREF(ref);
    Py_XDECREF(w);
    Py_XDECREF(tr);
    return result;
}

/* stream(conn, message): mint.websocket.stream's common case, the one mint.http.stream
 * checks first: the mailbox's SocketData of conn's own socket, on an upgraded HTTP/1.1
 * connection with nothing kept back ("early"), whose bytes are the WebSocket's as they
 * came. Everything else is the Python function's. */
static PyObject *
stream_(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *tr = NULL, *sock = NULL, *msock = NULL, *data = NULL, *ref = NULL;
    PyObject *result = NULL;
    if (!st.ready) {
        PyErr_SetString(PyExc_RuntimeError, "stream: setup() was not called");
        return NULL;
    }
    if (kwnames != NULL || nargs != 2) {
        goto python;
    }
    PyObject *conn = args[0], *message = args[1];
    if (Py_TYPE(message) != st.types[4] || Py_TYPE(conn) != st.types[0]) {
        goto python;
    }
    tr = get(CONN_TRANSPORT, conn);
    sock = tr == NULL ? NULL : get(TR_SOCK, tr);
    msock = get(SD_SOCKET, message);
    if (sock == NULL || msock != sock || !slot_is(st.slots[TR_CLOSED], tr, Py_False)) {
        goto python; /* (a closed connection's message is stale: Python says so) */
    }
    data = get(SD_DATA, message);
    if (data == NULL || !PyBytes_CheckExact(data) || PyBytes_GET_SIZE(data) == 0) {
        goto python;
    }
    ref = direct_ref(conn);
    if (ref == NULL || !nothing_early(conn)) {
        goto python;
    }
    if (slot_count(st.slots[TR_UNSTREAMED], tr, -1) < 0) {
        goto done; /* (taken: see Mailbox.handed_out) */
    }
    result = one_data(conn, ref, data);
    goto done;
python:
    result = PyObject_Vectorcall(st.calls[PY_STREAM], args, nargs, kwnames);
done:
    Py_XDECREF(ref);
    Py_XDECREF(data);
    Py_XDECREF(msock);
    Py_XDECREF(sock);
    Py_XDECREF(tr);
    return result;
}

/* ---------------------------------------------------------------------------------
 * The mailbox (mint.mailbox.Mailbox.receive): its common case in C.
 *
 * An active connection's round trip goes through the mailbox: a wait over its sockets
 * and its wake-up socket (its epoll, registered once by the Python side; a poll where
 * there is none), one read of the socket that is ready, a SocketData. As Python
 * that is a dozen calls between two system calls, paid on every wake-up; here it is
 * the two system calls. The case taken: nothing is queued, and the wait ends with the
 * input of one of the mailbox's sockets alone, one of a sync transport with nothing
 * kept unread. Anything else (a post, several sockets ready, more sockets than
 * MB_MAX_FDS) is "passed" back to the Python loop before a byte is read, so the loop
 * finds it as it would have. A TLS socket is read as Transport.recv_ready reads it: a
 * record, and when OpenSSL or the socket holds more, the burst after it (tls_burst,
 * which never ends inside a record: poll cannot see what OpenSSL holds); a partial
 * record waits again, and TLS that must write first is passed back. A read that finds
 * no bytes (the end of stream, a failure) is ended by the mailbox's own Python method
 * (_after_read). The state is the mailbox's and the transport's, read through their
 * slots again on every wait: nothing is kept here between calls. */
enum {
    MB_CLOSED, MB_UNREAD, MB_SOCK, MB_TLS, MB_UNSTREAMED, MB_SD_SOCKET, MB_SD_DATA,
    MB_QUEUE, MB_TRANSPORTS, MB_WAKE_FD, MB_EPFD, MB_FLUSHES, MB_N
};
static const char *mb_names[MB_N] = {"closed", "_unread", "sock", "tls", "unstreamed",
                                     "socket", "data", "_queue", "_transports", "_wake_fd",
                                     "_epfd", "_flushes"};
/* 0 Transport, 1 SocketData, 2 Mailbox */
static const int mb_owner[MB_N] = {0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 2};

static struct {
    int ready;
    Py_ssize_t read_burst;
    PyTypeObject *transport, *socket_data;
    PyObject *slots[MB_N];
    PyObject *passed, *timed_out;
    PyObject *s_after_read;
    struct tls_io tls;
} mb;

/* setup_mailbox(Transport, SocketData, Mailbox, read_burst, passed, timed_out)
 * -> mailbox_receive */
static PyObject *
setup_mailbox(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyType_Check(args[0]) || !PyType_Check(args[1])
        || !PyType_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "setup_mailbox(Transport, SocketData, Mailbox, "
                                         "read_burst, passed, timed_out)");
        return NULL;
    }
    Py_ssize_t read_burst = read_burst_of("setup_mailbox", args[3]);
    if (read_burst < 0) {
        return NULL;
    }
    PyObject *slots[MB_N] = {NULL};
    if (lookup_slots("setup_mailbox", args, mb_names, mb_owner, MB_N, slots) < 0) {
        return NULL;
    }
    mb.ready = 0;
    for (int i = 0; i < MB_N; i++) {
        Py_XSETREF(mb.slots[i], slots[i]);
    }
    Py_INCREF(args[0]);
    Py_XSETREF(mb.transport, (PyTypeObject *)args[0]);
    Py_INCREF(args[1]);
    Py_XSETREF(mb.socket_data, (PyTypeObject *)args[1]);
    Py_INCREF(args[4]);
    Py_XSETREF(mb.passed, args[4]);
    Py_INCREF(args[5]);
    Py_XSETREF(mb.timed_out, args[5]);
    mb.read_burst = read_burst;
    PyObject **const strings[] = {&mb.s_after_read};
    const char *const names[] = {"_after_read"};
    if (INTERN_ONCE(strings, names) < 0 || tls_setup(&mb.tls, read_burst) < 0) {
        return NULL;
    }
    mb.ready = 1;
    return PyObject_GetAttrString(self, "mailbox_receive");
}

static PyObject *
mb_get(int slot, PyObject *obj)
{
    return slot_value(mb.slots[slot], obj);
}

/* 1 when the mailbox's queue is empty, 0 when not (or when that cannot be told). */
static int
queue_empty(PyObject *box)
{
    PyObject *queue = mb_get(MB_QUEUE, box);
    if (queue == NULL) {
        return 0;
    }
    Py_ssize_t n = PyObject_Size(queue);
    Py_DECREF(queue);
    if (n < 0) {
        PyErr_Clear();
        return 0;
    }
    return n == 0;
}

/* A descriptor from an int object, or -1. */
static int
fd_of(PyObject *v)
{
    if (v == NULL || !PyLong_CheckExact(v)) {
        return -1;
    }
    long fd = PyLong_AsLong(v);
    if (fd == -1 && PyErr_Occurred()) {
        PyErr_Clear();
    }
    return fd < 0 || fd > INT_MAX ? -1 : (int)fd;
}

/* Whether transport tr's socket still has descriptor fd (sock.fileno(): -1 once
 * closed). Only the poll wait asks (see mailbox_receive): epoll forgets a closed one. */
static int
still_its_fd(PyObject *tr, int fd)
{
    PyObject *sock = mb_get(MB_SOCK, tr);
    if (sock == NULL) {
        PyErr_Clear();
        return 0;
    }
    PyObject *got = PyObject_CallMethod(sock, "fileno", NULL);
    Py_DECREF(sock);
    int same = got != NULL && fd_of(got) == fd;
    Py_XDECREF(got);
    PyErr_Clear();
    return same;
}

/* The transport the mailbox reads for descriptor fd (a new reference), when it is a
 * sync transport, open, with nothing kept unread (*tls: whether it is TLS); else NULL. */
static PyObject *
owned_transport(PyObject *box, int fd, int *tls)
{
    PyObject *transports = mb_get(MB_TRANSPORTS, box), *key = NULL;
    PyObject *tr = NULL;
    if (transports == NULL || !PyDict_CheckExact(transports)) {
        goto no;
    }
    key = PyLong_FromLong(fd);
    if (key == NULL) {
        goto no;
    }
    tr = PyDict_GetItemWithError(transports, key);  /* borrowed */
    if (tr == NULL || Py_TYPE(tr) != mb.transport) {
        tr = NULL;
        goto no;
    }
    Py_INCREF(tr);
    *tls = slot_is(mb.slots[MB_TLS], tr, Py_True);
    if (!slot_is(mb.slots[MB_CLOSED], tr, Py_False)
        || (!*tls && !slot_is(mb.slots[MB_TLS], tr, Py_False))
        || !slot_is(mb.slots[MB_UNREAD], tr, Py_None)) {
        goto no;
    }
    Py_DECREF(key);
    Py_DECREF(transports);
    return tr;
no:
    PyErr_Clear();
    Py_XDECREF(tr);
    Py_XDECREF(key);
    Py_XDECREF(transports);
    return NULL;
}

/* The descriptors to poll: the wake-up socket's, then each owned socket's (n in all),
 * or -1 when there are more than fit, or one is not an int. */
#define MB_MAX_FDS 64
static int
poll_set(PyObject *box, struct pollfd *fds, int *n)
{
    PyObject *w = mb_get(MB_WAKE_FD, box);
    if (w == NULL) {
        return -1;
    }
    int wake_fd = fd_of(w);
    Py_DECREF(w);
    PyObject *transports = mb_get(MB_TRANSPORTS, box);
    if (wake_fd < 0 || transports == NULL || !PyDict_CheckExact(transports)
        || PyDict_GET_SIZE(transports) >= MB_MAX_FDS) {
        PyErr_Clear();
        Py_XDECREF(transports);
        return -1;
    }
    fds[0].fd = wake_fd;
    fds[0].events = POLLIN;
    fds[0].revents = 0;
    int k = 1;
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(transports, &pos, &key, &value)) {
        int fd = fd_of(key);
        if (fd < 0) {
            Py_DECREF(transports);
            return -1;
        }
        fds[k].fd = fd;
        fds[k].events = POLLIN;
        fds[k].revents = 0;
        k++;
    }
    Py_DECREF(transports);
    *n = k;
    return 0;
}

/* SocketData(sock, data) of transport tr (a new reference), built through its slots
 * and counted as the Python loop's (Mailbox._said) are: see Mailbox.handed_out. */
static PyObject *
socket_data(PyObject *tr, PyObject *sock, PyObject *data)
{
    PyObject *message = mb.socket_data->tp_alloc(mb.socket_data, 0);
    if (message != NULL
        && (slot_store(mb.slots[MB_SD_SOCKET], message, sock) < 0
            || slot_store(mb.slots[MB_SD_DATA], message, data) < 0
            || slot_count(mb.slots[MB_UNSTREAMED], tr, 1) < 0)) {
        Py_CLEAR(message);
    }
    return message;
}

/* The end of a read that found no bytes (outcome: b"" or the OSError, stolen), as the
 * mailbox's Python ends it: the message, or None (wait again), or NULL. */
static PyObject *
after_read(PyObject *box, PyObject *tr, PyObject *outcome)
{
    if (outcome == NULL) {
        return NULL;
    }
    PyObject *result = PyObject_CallMethodObjArgs(box, mb.s_after_read, tr, outcome, NULL);
    Py_DECREF(outcome);
    return result;
}

/* A ready TLS socket's read (see above): 0 with *result the message (or NULL with an
 * exception), 1 to wait again, 2 to pass the wait back to the Python loop. */
static int
read_tls(PyObject *box, PyObject *tr, PyObject *sock, int fd, PyObject **result)
{
    int direct, how = 0;
    PyObject *target = tls_target(sock, &mb.tls, &direct);
    PyObject *first = tls_recv(sock, target, direct, &mb.tls);
    *result = NULL;
    if (first == NULL) {
        if (PyErr_ExceptionMatches(mb.tls.want_read)) {
            PyErr_Clear(); /* part of a record: wait for the rest */
            how = 1;
        }
        else if (PyErr_ExceptionMatches(mb.tls.want_write)) {
            PyErr_Clear(); /* TLS must write first: the Python loop's case */
            how = 2;
        }
        else if (PyErr_ExceptionMatches(PyExc_OSError)) {
            *result = after_read(box, tr, take_exception());
        }
        goto done;
    }
    if (!PyBytes_CheckExact(first)) {
        PyErr_SetString(PyExc_TypeError, "receive: the TLS socket's read gave no bytes object");
        goto done;
    }
    if (PyBytes_GET_SIZE(first) == 0) {
        *result = after_read(box, tr, first); /* the end of the stream */
        first = NULL;
        goto done;
    }
    int drained;
    PyObject *end;
    Py_SETREF(first, tls_burst(sock, target, direct, fd, first, &mb.tls, &drained, &end));
    if (first == NULL) {
        goto done;
    }
    int ended = end != NULL;
    if (keep_end(tr, end) < 0) {
        goto done;
    }
    *result = socket_data(tr, sock, first);
    if (*result != NULL && ended) {
        /* The end the burst met goes into the queue behind these bytes, as the Python
         * loop's read does (Mailbox._follow): no wait would see it. */
        PyObject *r = PyObject_CallMethod(box, "_follow", "O", tr);
        if (r == NULL) {
            Py_CLEAR(*result);
        }
        Py_XDECREF(r);
    }
done:
    if (*result == Py_None) {
        Py_CLEAR(*result); /* nothing to say after all: wait again */
        how = 1;
    }
    Py_XDECREF(first);
    Py_DECREF(target);
    return how;
}

/* mailbox_receive(mailbox, timeout) -> message | passed | timed_out (see above) */
static PyObject *
mailbox_receive(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!mb.ready) {
        PyErr_SetString(PyExc_RuntimeError, "mailbox_receive: setup_mailbox() was not called");
        return NULL;
    }
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "mailbox_receive(mailbox, timeout)");
        return NULL;
    }
    PyObject *box = args[0], *timeout = args[1];
    /* A socket whose blocking send left bytes (Mailbox._flushes): the Python loop's
     * wait also writes them as it drains, where this one (a poll for input alone)
     * would sit on them. Called as mint.receive too, past Mailbox.receive. */
    PyObject *flushes = mb_get(MB_FLUSHES, box);
    int flushing = flushes == NULL || !PySet_CheckExact(flushes) || PySet_GET_SIZE(flushes) != 0;
    Py_XDECREF(flushes);
    if (flushing) {
        PyErr_Clear();
        return Py_NewRef(mb.passed);
    }
    int64_t deadline = -1, start = 0;  /* -1: none */
    int first_wait = 1;
    double secs;
    int has = timeout_seconds(timeout, &secs);
    if (has < 0) {
        return Py_NewRef(mb.passed);
    }
    if (has) {
        if (!(secs >= 0 && secs < 1e9)) {  /* negative, NaN, or beyond a poll's reach */
            return Py_NewRef(mb.passed);
        }
        start = monotonic_ns();
        deadline = start + (int64_t)(secs * 1e9);
    }
    struct pollfd fds[MB_MAX_FDS];
    int nfds = 0;
    /* The mailbox's epoll (its sockets registered once, by the Python side), or -1:
     * then a poll over its sockets, taken again on every wait. */
    int epfd = -1, wake_fd = -1;
#ifdef __linux__
    PyObject *v = mb_get(MB_EPFD, box);
    epfd = fd_of(v);
    Py_XDECREF(v);
    if (epfd >= 0) {
        v = mb_get(MB_WAKE_FD, box);
        wake_fd = fd_of(v);
        Py_XDECREF(v);
        if (wake_fd < 0) {
            PyErr_Clear();
            return Py_NewRef(mb.passed);
        }
    }
#endif
    PyErr_Clear();
    PyObject *tr = NULL;
    PyObject *result = NULL, *buf = NULL;
    for (;;) {
        if (!queue_empty(box) || (epfd < 0 && (poll_set(box, fds, &nfds) < 0 || nfds < 2))) {
            goto passed;
        }
        int ms = -1;
        if (deadline >= 0) {
            /* (The first wait's is the whole timeout: the clock was read for the
             * deadline a moment ago, and reading it again costs more than the
             * difference.) */
            int64_t left = first_wait ? deadline - start : deadline - monotonic_ns();
            first_wait = 0;
            /* as the Python loop: milliseconds rounded up, never below zero */
            ms = left <= 0 ? 0 : left >= (int64_t)INT_MAX * 1000000 ? INT_MAX
                                                                 : (int)((left + 999999) / 1000000);
        }
        int ready, err, how, fd = -1;
#ifdef __linux__
        struct epoll_event evs[2];
        if (epfd >= 0) {
            how = epoll_once(epfd, evs, 2, ms, &ready, &err);
        }
        else
#endif
        {
            how = poll_once(fds, (nfds_t)nfds, ms, &ready, &err);
        }
        if (how == 1) {
            continue;  /* interrupted, its handlers ran: poll again with the time left */
        }
        if (how == -1) {
            goto done;  /* a signal handler raised: the wait ends with it */
        }
        if (how == -2) {
            goto passed;  /* the Python loop's poll meets (and raises) the same */
        }
        if (ready == 0) {
            if (deadline >= 0 && monotonic_ns() >= deadline) {
                result = Py_NewRef(mb.timed_out);
                goto done;
            }
            continue;
        }
        /* Only one socket's input (a post wakes the wake-up socket; several sockets
         * ready are the Python loop's), and the mailbox as it was: another thread may
         * have posted, or given the socket away, while this one waited. */
        if (ready != 1) {
            goto passed;
        }
#ifdef __linux__
        if (epfd >= 0) {
            if (evs[0].data.fd != wake_fd && evs[0].events == EPOLLIN) {
                fd = evs[0].data.fd;
            }
        }
        else
#endif
        if (fds[0].revents == 0) {
            for (int i = 1; i < nfds; i++) {
                if (fds[i].revents != 0) {
                    fd = fds[i].revents == POLLIN ? fds[i].fd : -1;
                    break;
                }
            }
        }
        if (fd < 0 || !queue_empty(box)) {
            goto passed;
        }
        int tls = 0;
        Py_XSETREF(tr, owned_transport(box, fd, &tls));
        if (tr == NULL) {
            goto passed;
        }
        if (epfd < 0 && !still_its_fd(tr, fd)) {
            /* poll waits on the number: the owner's socket was closed behind the
             * mailbox's back and the number is another socket's now, maybe another
             * mailbox's. Its bytes are not the owner's: the Python loop reads
             * through the owner's socket, and says its end. */
            goto passed;
        }
        if (tls) {
            PyObject *sock = mb_get(MB_SOCK, tr);
            if (sock == NULL) {
                goto passed;
            }
            int how = read_tls(box, tr, sock, fd, &result);
            Py_DECREF(sock);
            if (how == 1) {
                continue;
            }
            if (how == 2) {
                goto passed;
            }
            goto done;
        }
        char first[FIRST_READ];
        ssize_t n = recv_retrying(fd, first, sizeof first, MSG_DONTWAIT, &err);
        if (n == -2) {
            goto done;
        }
        if (n > 0) {
            int drained;
            buf = n < (ssize_t)sizeof first ? PyBytes_FromStringAndSize(first, n)
                                            : read_on(fd, first, n, mb.read_burst, &drained);
            if (buf == NULL) {
                goto done;
            }
            PyObject *sock = mb_get(MB_SOCK, tr);
            if (sock == NULL) {
                PyErr_SetString(PyExc_RuntimeError, "mailbox_receive: a transport without a socket");
                goto done;
            }
            result = socket_data(tr, sock, buf);
            Py_DECREF(sock);
            goto done;
        }
        /* The end of stream or a failure: the mailbox's Python ends it (None when
         * there was nothing to read after all: wait again). */
        Py_CLEAR(buf);
        result = after_read(box, tr, no_bytes(n, err));
        if (result != Py_None) {
            goto done;
        }
        Py_CLEAR(result);
    }
passed:
    result = Py_NewRef(mb.passed);
done:
    Py_XDECREF(buf);
    Py_XDECREF(tr);
    return result;
}

/* ---------------------------------------------------------------------------------
 * mint.receive itself: the calling thread's default mailbox, then mailbox_receive,
 * with no Python frame in between (the module function and Mailbox.receive are two
 * frames per message of an active connection). Only an existing default mailbox of
 * exactly the Mailbox class is taken here; no mailbox yet (the Python function makes
 * one), a subclass (whose receive may differ), keywords or a wrong count go to the
 * Python function. What mailbox_receive passes on, the mailbox's own Python ends:
 * _receive_loop (the loop of Mailbox.receive after its fast path) or _timed_out. */
static struct {
    PyObject *local, *mailbox_type, *python;
    PyObject *s_mailbox, *s_receive_loop, *s_timed_out;
} rx;

static PyObject *
setup_receive(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyType_Check(args[1]) || !PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "setup_receive(local, Mailbox, receive)");
        return NULL;
    }
    if (!mb.ready) {
        PyErr_SetString(PyExc_RuntimeError, "setup_receive: setup_mailbox() was not called");
        return NULL;
    }
    PyObject **const strings[] = {&rx.s_mailbox, &rx.s_receive_loop, &rx.s_timed_out};
    const char *const names[] = {"mailbox", "_receive_loop", "_timed_out"};
    if (INTERN_ONCE(strings, names) < 0) {
        return NULL;
    }
    Py_INCREF(args[0]);
    Py_XSETREF(rx.local, args[0]);
    Py_INCREF(args[1]);
    Py_XSETREF(rx.mailbox_type, args[1]);
    Py_INCREF(args[2]);
    Py_XSETREF(rx.python, args[2]);
    return documented(method_named(methods, "receive"), rx.python, "mint.mailbox");
}

static PyObject *
receive_(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (rx.python == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "receive: setup_receive() was not called");
        return NULL;
    }
    if (kwnames != NULL || nargs > 1) {
        return PyObject_Vectorcall(rx.python, args, (size_t)nargs, kwnames);
    }
    PyObject *box = PyObject_GetAttr(rx.local, rx.s_mailbox);
    if (box == NULL || (PyObject *)Py_TYPE(box) != rx.mailbox_type) {
        PyErr_Clear();
        Py_XDECREF(box);
        return PyObject_Vectorcall(rx.python, args, (size_t)nargs, NULL);
    }
    /* A default closed before the call (its wake-up descriptor is -1 from the close
     * on) is replaced: the Python function's work. One closed during the wait is
     * not: that wait is refused, by the loop below. */
    PyObject *w = mb_get(MB_WAKE_FD, box);
    int closed = fd_of(w) < 0;
    Py_XDECREF(w);
    PyErr_Clear();
    if (closed) {
        Py_DECREF(box);
        return PyObject_Vectorcall(rx.python, args, (size_t)nargs, NULL);
    }
    PyObject *call[2] = {box, nargs ? args[0] : Py_None};
    PyObject *result = mailbox_receive(self, call, 2);
    if (result == mb.passed) {
        Py_DECREF(result);
        result = PyObject_VectorcallMethod(rx.s_receive_loop, call, 2, NULL);
    }
    else if (result == mb.timed_out) {
        Py_DECREF(result);
        result = PyObject_VectorcallMethod(rx.s_timed_out, call, 1, NULL);
    }
    Py_DECREF(box);
    return result;
}

/* ---------------------------------------------------------------------------------
 * BaseTransport.recv_ready on a plain socket: the read behind a mailbox's SocketData
 * when the mailbox_receive above does not make it (asyncio's mailbox, whose loop
 * reader calls it; several sockets ready; a wake-up). socket.recv(READ_SIZE) then the
 * burst after it made one bytes per read and then a join of them: a large message
 * came as ~1 MiB copied twice, into fresh pages each time (the join was a third of an
 * asyncio active client's time at 64 KiB pipelined). Here, as in mailbox_receive, the
 * first read goes to the stack and a full one reads on into one object (read_on). */
static PyObject *
recv_ready_(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyLong_Check(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "recv_ready(fd, read_burst)");
        return NULL;
    }
    int fd = _PyLong_AsInt(args[0]);
    Py_ssize_t cap = PyLong_AsSsize_t(args[1]);
    if ((fd == -1 || cap == -1) && PyErr_Occurred()) {
        return NULL;
    }
    char first[FIRST_READ];
    int err;
    ssize_t n = recv_retrying(fd, first, sizeof first, MSG_DONTWAIT, &err);
    if (n == -2) {
        return NULL;  /* a signal handler raised */
    }
    if (n > 0) {
        int drained;
        return n < (ssize_t)sizeof first || cap <= n ? PyBytes_FromStringAndSize(first, n)
                                                     : read_on(fd, first, n, cap, &drained);
    }
    if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK)) {
        Py_RETURN_NONE;
    }
    if (n == 0) {
        return PyBytes_FromStringAndSize(NULL, 0);
    }
    errno = err;
    return PyErr_SetFromErrno(PyExc_OSError);
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "mint._iospeedups", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit__iospeedups(void)
{
    return PyModule_Create(&module);
}
