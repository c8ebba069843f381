/* Optional C speedups for the asyncio edge of an upgraded HTTP/1.1 WebSocket.
 *
 * mint.aio.websocket.recv(conn, byte_count, timeout) and stream_request_body(conn, ref,
 * data) are coroutine functions. Here they are C callables that return a C coroutine
 * (an "operation") doing the steady state of a passive upgraded HTTP/1.1 connection on
 * a plain socket: for recv, wait for the socket on the loop (through the connection's
 * AsyncWaiter, whose reader stays registered) and read what is there into one
 * Data(ref, bytes); for stream_request_body, one send that takes all of the frame.
 *
 * Why: in a 16-byte asyncio ping-pong the Python path is a chain of coroutines (recv,
 * Transport.recv_parts, AsyncWaiter.wait_and_recv; stream_request_body twice) that is
 * created, and resumed through, on every message, plus a StopIteration per level. An
 * operation is one object: the caller's "await" sends into it through am_send, which
 * returns its value without raising StopIteration, and it yields a Wakeup to the task
 * (a future-like object its loop reader resolves by resuming the task at once; see
 * below), as "await future" yields a future.
 *
 * The operation behaves as the coroutine it stands for:
 * - nothing happens until it is first sent into: the checks and the I/O are made
 *   then, not at the call;
 * - on TLS it takes the drained read (the same wait, then one read of the SSLSocket,
 *   and, when OpenSSL or the socket holds more, the burst after it: tls_burst, one Data)
 *   and the send, through the SSLSocket's own methods (read_now_tls); SSLWantReadError
 *   waits again, SSLWantWriteError hands the read to the Python coroutine;
 * - every case it does not take (another state of the connection, an exact
 *   byte_count, a zero timeout, HTTP/2, keywords) is the Python coroutine function's:
 *   the operation creates that coroutine and delegates send, throw and close to it,
 *   as "yield from" would;
 * - outcomes that are not bytes (end of stream, timeout, a failure, a send the socket
 *   took in part) are ended by the Python functions given to setup();
 * - thrown into (a cancellation) or closed while it waits, it clears the waiter's
 *   future as wait_and_recv's "finally" does, and raises what was thrown;
 * - it has send, throw, close and __await__, so collections.abc.Coroutine (and so
 *   asyncio.iscoroutine, create_task, run) take it as a coroutine.
 * The callables carry the Python functions' __code__, names and documentation
 * (setup's caller copies them), so inspect finds coroutine functions with the same
 * signatures.
 *
 * The state is the connection's, the transport's and the waiter's, read through their
 * slots on every call, as mint._iospeedups does for the blocking flavour.
 */
#include "_slots.h"
#include "_sockio.h"
#include <limits.h>
#include <math.h>
#include <time.h>

enum {
    CONN_HELD, CONN_MODE, CONN_PRIVATE, CONN_SESSION, CONN_TRANSPORT,
    TR_CLOSED, TR_DRAINED, TR_UNREAD, TR_UNSENT, TR_WAITER, TR_TLS, TR_SOCK, TR_EAGER,
    W_FD, W_FUTURE, W_READER_LOOP, W_TIMER, W_TIMER_AT, W_TIMER_LOOP, W_WRITER,
    DATA_REF, DATA_DATA,
    N_SLOTS
};
static const char *slot_names[N_SLOTS] = {
    "_held", "_mode", "_private", "_session", "_transport",
    "closed", "_drained", "_unread", "_unsent", "_waiter", "tls", "sock", "_eager",
    "_fd", "_future", "_reader_loop", "_timer", "_timer_at", "_timer_loop", "_writer",
    "ref", "data",
};
/* Which type each slot belongs to: 0 Conn, 1 AsyncTransport, 2 AsyncWaiter, 3 Data. */
static const int slot_owner[N_SLOTS] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                        2, 2, 2, 2, 2, 2, 2, 3, 3};

#define N_TYPES 4
enum { PY_RECV, PY_SRB, PY_RECV_TAIL, PY_SEND_REST, PY_RUNNING_LOOP, PY_SEND_FAILED, N_CALLS };

static struct {
    int ready;
    Py_ssize_t read_burst;
    double eager_seconds; /* mint._backend.EAGER_SECONDS (see recv_start) */
    PyTypeObject *types[N_TYPES]; /* Conn, AsyncTransport, AsyncWaiter, Data */
    PyObject *slots[N_SLOTS];
    PyObject *calls[N_CALLS];
    PyObject *s_passive, *s_early, *s_direct_ref, *s_arm, *s_own_reader, *s_read_under_way;
    struct tls_io tls; /* what the TLS paths call and catch (see _sockio.h) */
} st;

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

static double
monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* time.monotonic()'s clock */
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------------------------
 * The wake-up: what a waiting operation yields to its task instead of a loop future.
 *
 * Why: with a loop future, the loop reader's set_result schedules the task's wake-up
 * with call_soon, and the task resumes one loop iteration later, through a second
 * Handle (and, on asyncio's own loop, a second pass of its Python _run_once). A
 * wake-up is future-like, as a task accepts one (_asyncio_future_blocking, get_loop,
 * add_done_callback, result, cancel), and the reader resolves it *eagerly*: it calls
 * the task's wake-up callback at once, in the task's context, so the task resumes
 * inside the reader's own callback (16 B ping-pong: bench/_ab.py figures in the
 * commit). The loop runs no task at that point (a loop calls readers between task
 * steps); were one running, the resolution falls back to call_soon, as does every
 * other resolution (the timer, close(), a cancellation): those may come from inside
 * another task, which a task step must never run within.
 *
 * One wake-up serves one wait; the operation makes a new one per wait, as it made a
 * future, so a late resolution of an old wait cannot reach a new one. */

enum { WK_PENDING, WK_DONE, WK_CANCELLED };

typedef struct {
    PyObject_HEAD
    PyObject *loop;
    PyObject *callback, *context; /* the first callback (a task's wake-up), or NULL */
    PyObject *callbacks;          /* any more: a list of (callback, context) pairs */
    PyObject *value;     /* WK_DONE: the result (True: readable; False: the timer) */
    PyObject *cancel_msg;
    int state;
    int blocking; /* _asyncio_future_blocking */
} WakeupObject;

static PyTypeObject Wakeup_Type;
static PyObject *s_call_soon, *s_context, *w_cancelled_error, *w_invalid_state,
    *w_current_task;
static PyObject *w_context_kw; /* ("context",): call_soon's keyword */
/* asyncio's dict of the task running on each loop, where it is one (3.11 to 3.13):
 * asyncio.current_task is a Python function on 3.11, twice the cost of the lookup. */
static PyObject *w_current_tasks;

/* Whether a task runs on loop now: 1, 0, or -1 with an exception. */
static int
task_runs_on(PyObject *loop)
{
    if (w_current_tasks != NULL) {
        PyObject *task = PyDict_GetItemWithError(w_current_tasks, loop);
        return task != NULL ? 1 : PyErr_Occurred() ? -1 : 0;
    }
    PyObject *task = PyObject_CallOneArg(w_current_task, loop);
    if (task == NULL) {
        return -1;
    }
    int running = task != Py_None;
    Py_DECREF(task);
    return running;
}

static int
wakeup_traverse(WakeupObject *w, visitproc visit, void *arg)
{
    Py_VISIT(w->loop);
    Py_VISIT(w->callback);
    Py_VISIT(w->context);
    Py_VISIT(w->callbacks);
    Py_VISIT(w->value);
    Py_VISIT(w->cancel_msg);
    return 0;
}

static int
wakeup_clear(WakeupObject *w)
{
    Py_CLEAR(w->loop);
    Py_CLEAR(w->callback);
    Py_CLEAR(w->context);
    Py_CLEAR(w->callbacks);
    Py_CLEAR(w->value);
    Py_CLEAR(w->cancel_msg);
    return 0;
}

static void
wakeup_dealloc(WakeupObject *w)
{
    PyObject_GC_UnTrack(w);
    wakeup_clear(w);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyObject *
wakeup_new(PyObject *loop)
{
    WakeupObject *w = PyObject_GC_New(WakeupObject, &Wakeup_Type);
    if (w == NULL) {
        return NULL;
    }
    w->loop = Py_NewRef(loop);
    w->callback = w->context = w->callbacks = w->value = w->cancel_msg = NULL;
    w->state = WK_PENDING;
    w->blocking = 0;
    PyObject_GC_Track(w);
    return (PyObject *)w;
}

/* loop.call_soon(callback, w, context=context), as a future schedules its callbacks. */
static int
wakeup_schedule(WakeupObject *w, PyObject *callback, PyObject *context)
{
    PyObject *call_soon = PyObject_GetAttr(w->loop, s_call_soon);
    if (call_soon == NULL) {
        return -1;
    }
    PyObject *args[3] = {callback, (PyObject *)w, context};
    PyObject *v = PyObject_Vectorcall(call_soon, args, 2, w_context_kw);
    Py_DECREF(call_soon);
    if (v == NULL) {
        return -1;
    }
    Py_DECREF(v);
    return 0;
}

/* Run one callback: at once, in its context, or (not eager) scheduled. */
static int
wakeup_run(WakeupObject *w, PyObject *callback, PyObject *context, int eager)
{
    if (!eager) {
        return wakeup_schedule(w, callback, context);
    }
    if (context != Py_None && PyContext_Enter(context) < 0) {
        /* (entered already: not a step to take here; the loop takes it, as always) */
        PyErr_Clear();
        return wakeup_schedule(w, callback, context);
    }
    PyObject *v = PyObject_CallOneArg(callback, (PyObject *)w);
    if (context != Py_None && PyContext_Exit(context) < 0) {
        Py_XDECREF(v);
        return -1;
    }
    if (v == NULL) {
        return -1;
    }
    Py_DECREF(v);
    return 0;
}

/* Resolve: state and value set, then every callback run at once (eager, and no task
 * running) or scheduled. An error of an eager callback is the caller's (the loop
 * reports a reader's); the task's own errors stay in the task, as always. */
static int
wakeup_resolve(WakeupObject *w, int state, PyObject *value, int eager)
{
    w->state = state;
    Py_XSETREF(w->value, Py_XNewRef(value));
    PyObject *callback = w->callback, *context = w->context, *callbacks = w->callbacks;
    w->callback = w->context = w->callbacks = NULL;
    if (callback == NULL && callbacks == NULL) {
        return 0;
    }
    if (eager) {
        /* (no callback runs at once while a task runs; not known: scheduled, always safe) */
        int running = task_runs_on(w->loop);
        if (running < 0) {
            PyErr_Clear();
        }
        eager = running == 0;
    }
    int rc = callback == NULL ? 0 : wakeup_run(w, callback, context, eager);
    Py_ssize_t n = callbacks == NULL ? 0 : PyList_GET_SIZE(callbacks);
    for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
        PyObject *pair = PyList_GET_ITEM(callbacks, i);
        rc = wakeup_run(w, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1), eager);
    }
    Py_XDECREF(callback);
    Py_XDECREF(context);
    Py_XDECREF(callbacks);
    return rc;
}

static PyObject *
wakeup_get_loop(WakeupObject *w, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(w->loop);
}

static PyObject *
wakeup_add_done_callback(WakeupObject *w, PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames)
{
    PyObject *context = Py_None;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nargs != 1 || nkw > 1
        || (nkw == 1
            && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "context") != 0)) {
        PyErr_SetString(PyExc_TypeError, "add_done_callback(fn, *, context=None)");
        return NULL;
    }
    if (nkw == 1) {
        context = args[1];
    }
    if (w->state != WK_PENDING) {
        if (wakeup_schedule(w, args[0], context) < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    if (w->callback == NULL && w->callbacks == NULL) { /* (in order: first, then the list) */
        w->callback = Py_NewRef(args[0]);
        w->context = Py_NewRef(context);
        Py_RETURN_NONE;
    }
    if (w->callbacks == NULL && (w->callbacks = PyList_New(0)) == NULL) {
        return NULL;
    }
    PyObject *pair = PyTuple_Pack(2, args[0], context);
    if (pair == NULL || PyList_Append(w->callbacks, pair) < 0) {
        Py_XDECREF(pair);
        return NULL;
    }
    Py_DECREF(pair);
    Py_RETURN_NONE;
}

static PyObject *
wakeup_remove_done_callback(WakeupObject *w, PyObject *fn)
{
    Py_ssize_t removed = 0;
    if (w->callback != NULL) {
        int eq = PyObject_RichCompareBool(w->callback, fn, Py_EQ);
        if (eq < 0) {
            return NULL;
        }
        if (eq) {
            Py_CLEAR(w->callback);
            Py_CLEAR(w->context);
            removed++;
        }
    }
    if (w->callbacks != NULL) {
        for (Py_ssize_t i = PyList_GET_SIZE(w->callbacks) - 1; i >= 0; i--) {
            PyObject *cb = PyTuple_GET_ITEM(PyList_GET_ITEM(w->callbacks, i), 0);
            int eq = PyObject_RichCompareBool(cb, fn, Py_EQ);
            if (eq < 0) {
                return NULL;
            }
            if (eq) {
                if (PySequence_DelItem(w->callbacks, i) < 0) {
                    return NULL;
                }
                removed++;
            }
        }
    }
    return PyLong_FromSsize_t(removed);
}

static PyObject *
wakeup_cancelled_error(WakeupObject *w)
{
    if (w->cancel_msg == NULL || w->cancel_msg == Py_None) {
        PyErr_SetNone(w_cancelled_error);
    }
    else {
        PyErr_SetObject(w_cancelled_error, w->cancel_msg);
    }
    return NULL;
}

static PyObject *
wakeup_result(WakeupObject *w, PyObject *Py_UNUSED(ignored))
{
    if (w->state == WK_CANCELLED) {
        return wakeup_cancelled_error(w);
    }
    if (w->state == WK_PENDING) {
        PyErr_SetString(w_invalid_state, "Result is not set.");
        return NULL;
    }
    return Py_NewRef(w->value);
}

static PyObject *
wakeup_exception(WakeupObject *w, PyObject *Py_UNUSED(ignored))
{
    if (w->state == WK_CANCELLED) {
        return wakeup_cancelled_error(w);
    }
    if (w->state == WK_PENDING) {
        PyErr_SetString(w_invalid_state, "Exception is not set.");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
wakeup_done(WakeupObject *w, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(w->state != WK_PENDING);
}

static PyObject *
wakeup_cancelled(WakeupObject *w, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(w->state == WK_CANCELLED);
}

/* cancel(msg=None): as Future.cancel (a task cancelled while it waits calls it). */
static PyObject *
wakeup_cancel(WakeupObject *w, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    PyObject *msg = Py_None;
    if (nargs + nkw > 1
        || (nkw == 1
            && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "msg") != 0)) {
        PyErr_SetString(PyExc_TypeError, "cancel(msg=None)");
        return NULL;
    }
    if (nargs + nkw == 1) {
        msg = args[0];
    }
    if (w->state != WK_PENDING) {
        Py_RETURN_FALSE;
    }
    Py_XSETREF(w->cancel_msg, Py_NewRef(msg));
    if (wakeup_resolve(w, WK_CANCELLED, NULL, 0) < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

/* set_result(value): a resolution by Python code (the timer, close()), never eager. */
static PyObject *
wakeup_set_result(WakeupObject *w, PyObject *value)
{
    if (w->state != WK_PENDING) {
        PyErr_SetString(w_invalid_state, "invalid state");
        return NULL;
    }
    if (wakeup_resolve(w, WK_DONE, value, 0) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
wakeup_get_blocking(WakeupObject *w, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(w->blocking);
}

static int
wakeup_set_blocking(WakeupObject *w, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete _asyncio_future_blocking");
        return -1;
    }
    int b = PyObject_IsTrue(value);
    if (b < 0) {
        return -1;
    }
    w->blocking = b;
    return 0;
}

static PyGetSetDef wakeup_getset[] = {
    {"_asyncio_future_blocking", (getter)wakeup_get_blocking, (setter)wakeup_set_blocking,
     "Set while the wake-up is yielded to a task (asyncio's future protocol).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef wakeup_methods[] = {
    {"get_loop", (PyCFunction)wakeup_get_loop, METH_NOARGS, NULL},
    {"add_done_callback", (PyCFunction)(void (*)(void))wakeup_add_done_callback,
     METH_FASTCALL | METH_KEYWORDS, NULL},
    {"remove_done_callback", (PyCFunction)wakeup_remove_done_callback, METH_O, NULL},
    {"result", (PyCFunction)wakeup_result, METH_NOARGS, NULL},
    {"exception", (PyCFunction)wakeup_exception, METH_NOARGS, NULL},
    {"done", (PyCFunction)wakeup_done, METH_NOARGS, NULL},
    {"cancelled", (PyCFunction)wakeup_cancelled, METH_NOARGS, NULL},
    {"cancel", (PyCFunction)(void (*)(void))wakeup_cancel, METH_FASTCALL | METH_KEYWORDS, NULL},
    {"set_result", (PyCFunction)wakeup_set_result, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

/* "await w" from Python code (the mailbox's areceive), as "await future": the wake-up
 * is its own iterator, which yields itself to the task while pending, then returns its
 * value (or raises the cancellation). A task throws a cancellation into the awaiting
 * coroutine itself (no throw() here: it is raised at the await). */
static PyObject *
wakeup_await(WakeupObject *w)
{
    return Py_NewRef(w);
}

static PyObject *
wakeup_iternext(WakeupObject *w)
{
    if (w->state == WK_PENDING) {
        w->blocking = 1;
        return Py_NewRef(w);
    }
    if (w->state == WK_CANCELLED) {
        return wakeup_cancelled_error(w);
    }
    if (w->value == NULL || w->value == Py_None) {
        return NULL; /* StopIteration: None */
    }
    PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, w->value);
    if (stop != NULL) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
    return NULL;
}

static PyAsyncMethods wakeup_as_async = {
    .am_await = (unaryfunc)wakeup_await,
};

static PyTypeObject Wakeup_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mint._aiospeedups.Wakeup",
    .tp_doc = "What a wait yields to its task: a future its loop reader resolves "
              "by resuming the task at once.",
    .tp_basicsize = sizeof(WakeupObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)wakeup_dealloc,
    .tp_traverse = (traverseproc)wakeup_traverse,
    .tp_clear = (inquiry)wakeup_clear,
    .tp_methods = wakeup_methods,
    .tp_getset = wakeup_getset,
    .tp_as_async = &wakeup_as_async,
    .tp_iter = (getiterfunc)wakeup_await,
    .tp_iternext = (iternextfunc)wakeup_iternext,
};

/* wakeup(loop) -> a pending wake-up on loop, for Python code to await. */
static PyObject *
wakeup(PyObject *self, PyObject *loop)
{
    (void)self;
    return wakeup_new(loop);
}

/* wake(w): resolve w (if still pending) with None, resuming its task at once when no
 * task runs on its loop (a loop callback: the mailbox's reader), else scheduled. */
static PyObject *
wake(PyObject *self, PyObject *arg)
{
    (void)self;
    if (!Py_IS_TYPE(arg, &Wakeup_Type)) {
        PyErr_SetString(PyExc_TypeError, "wake(wakeup)");
        return NULL;
    }
    WakeupObject *w = (WakeupObject *)arg;
    if (w->state == WK_PENDING && wakeup_resolve(w, WK_DONE, Py_None, 1) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------------------
 * The operation: a C coroutine. */

enum { OP_RECV, OP_SRB };
enum { S_NEW, S_WAITING, S_DELEGATING, S_DONE };

typedef struct {
    PyObject_HEAD
    int kind;
    int state;
    PyObject *args[3];   /* the call's: conn, then byte_count and timeout, or ref and data */
    PyObject *inner;     /* S_DELEGATING: the Python coroutine */
    PyObject *future;    /* S_WAITING: the wake-up yielded to the task */
    PyObject *transport, *waiter, *ref, *loop;
    PyObject *sock;      /* TLS: the transport's SSLSocket */
    double deadline;
    int has_deadline;
    int fd;
    int tls;
} OpObject;

static PyTypeObject Op_Type;

static int
op_traverse(OpObject *op, visitproc visit, void *arg)
{
    for (int i = 0; i < 3; i++) {
        Py_VISIT(op->args[i]);
    }
    Py_VISIT(op->inner);
    Py_VISIT(op->future);
    Py_VISIT(op->transport);
    Py_VISIT(op->waiter);
    Py_VISIT(op->ref);
    Py_VISIT(op->loop);
    Py_VISIT(op->sock);
    return 0;
}

static int
op_clear(OpObject *op)
{
    for (int i = 0; i < 3; i++) {
        Py_CLEAR(op->args[i]);
    }
    Py_CLEAR(op->inner);
    Py_CLEAR(op->future);
    Py_CLEAR(op->transport);
    Py_CLEAR(op->waiter);
    Py_CLEAR(op->ref);
    Py_CLEAR(op->loop);
    Py_CLEAR(op->sock);
    return 0;
}

/* The operation is over (returned, raised, or was closed): as wait_and_recv's
 * "finally", the waiter no longer has a read waiting on our future. */
static void
op_finish(OpObject *op)
{
    if (op->state == S_WAITING && op->waiter != NULL) {
        PyObject *exc_type, *exc_value, *exc_tb;
        PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
        if (set(W_FUTURE, op->waiter, Py_None) < 0) {
            PyErr_WriteUnraisable((PyObject *)op);
        }
        PyErr_Restore(exc_type, exc_value, exc_tb);
    }
    op->state = S_DONE;
    op_clear(op);
}

/* A coroutine dropped before it was ever sent into says so, as a Python coroutine's
 * finalizer does: a forgotten "await" would otherwise lose a send or a read silently. */
static void
warn_never_awaited(OpObject *op)
{
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    if (PyErr_WarnFormat(PyExc_RuntimeWarning, 1, "coroutine '%s' was never awaited",
                         op->kind == OP_RECV ? "recv" : "stream_request_body") < 0) {
        PyErr_WriteUnraisable(NULL); /* (not op: it is being deallocated) */
    }
    PyErr_Restore(exc_type, exc_value, exc_tb);
}

static void
op_dealloc(OpObject *op)
{
    PyObject_GC_UnTrack(op);
    if (op->state == S_NEW) {
        warn_never_awaited(op);
    }
    if (op->state == S_WAITING) {
        op_finish(op); /* a coroutine dropped while it waits is closed */
    }
    op_clear(op); /* (a Python coroutine delegated to is closed by its own deallocation) */
    Py_TYPE(op)->tp_free((PyObject *)op);
}

static PyObject *
op_new(int kind, PyObject *const *args)
{
    OpObject *op = PyObject_GC_New(OpObject, &Op_Type);
    if (op == NULL) {
        return NULL;
    }
    op->kind = kind;
    op->state = S_NEW;
    for (int i = 0; i < 3; i++) {
        Py_INCREF(args[i]);
        op->args[i] = args[i];
    }
    op->inner = op->future = NULL;
    op->transport = op->waiter = op->ref = op->loop = op->sock = NULL;
    op->deadline = 0.0;
    op->has_deadline = 0;
    op->fd = -1;
    op->tls = 0;
    PyObject_GC_Track(op);
    return (PyObject *)op;
}

/* Hand the operation to the Python coroutine of func(*args) and send value into it. */
static PySendResult
delegate_send(OpObject *op, PyObject *value, PyObject **result)
{
    PySendResult r = PyIter_Send(op->inner, value, result);
    if (r != PYGEN_NEXT) {
        op_finish(op);
    }
    return r;
}

static PySendResult
delegate(OpObject *op, PyObject *func, PyObject *const *args, PyObject **result)
{
    op->inner = PyObject_Vectorcall(func, args, 3, NULL);
    if (op->inner == NULL) {
        op_finish(op);
        *result = NULL;
        return PYGEN_ERROR;
    }
    op->state = S_DELEGATING;
    return delegate_send(op, Py_None, result);
}

/* Return what a Python function (one of the tails) made of the outcome. */
static PySendResult
returned(OpObject *op, PyObject *value, PyObject **result)
{
    op_finish(op);
    *result = value;
    return value == NULL ? PYGEN_ERROR : PYGEN_RETURN;
}

/* --- recv ---------------------------------------------------------------------- */

/* conn's direct ref (a new reference) when it is an upgraded HTTP/1.1 connection; else
 * NULL, no exception set. */
static PyObject *
direct_ref(PyObject *conn)
{
    return direct_ref_of(get(CONN_SESSION, conn), st.s_direct_ref);
}

/* Whether conn is an upgraded HTTP/1.1 connection on an open socket (plain, or TLS:
 * op->tls, op->sock) of the asyncio flavour; then op holds its transport, waiter, ref
 * and descriptor. */
static int
take_direct(OpObject *op, PyObject *conn)
{
    if (Py_TYPE(conn) != st.types[0]) {
        return 0;
    }
    PyObject *tr = get(CONN_TRANSPORT, conn);
    if (tr == NULL) {
        return 0;
    }
    op->transport = tr;
    if (Py_TYPE(tr) != st.types[1] || !slot_is(st.slots[TR_CLOSED], tr, Py_False)) {
        return 0;
    }
    op->tls = slot_is(st.slots[TR_TLS], tr, Py_True);
    if (!op->tls && !slot_is(st.slots[TR_TLS], tr, Py_False)) {
        return 0;
    }
    if (op->tls) {
        op->sock = get(TR_SOCK, tr);
        if (op->sock == NULL) {
            return 0;
        }
    }
    PyObject *w = get(TR_WAITER, tr);
    if (w == NULL) {
        return 0;
    }
    op->waiter = w;
    if (Py_TYPE(w) != st.types[2]) {
        return 0;
    }
    PyObject *fd = get(W_FD, w);
    if (fd == NULL) {
        return 0;
    }
    long v = PyLong_AsLong(fd);
    Py_DECREF(fd);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (v < 0 || v > INT_MAX) {
        return 0;
    }
    op->fd = (int)v;
    op->ref = direct_ref(conn);
    return op->ref != NULL;
}

/* Whether conn is passive with nothing held back from a mailbox or kept for later. */
static int
passive_and_steady(PyObject *conn)
{
    int ok = 0;
    PyObject *mode = get(CONN_MODE, conn);
    PyObject *held = get(CONN_HELD, conn);
    PyObject *private = get(CONN_PRIVATE, conn);
    if (mode == NULL || held == NULL || private == NULL) {
        goto done;
    }
    if (mode != st.s_passive
        && !(PyUnicode_CheckExact(mode) && PyUnicode_Compare(mode, st.s_passive) == 0)) {
        goto done;
    }
    if (!PyList_CheckExact(held) || PyList_GET_SIZE(held) != 0 || !PyDict_CheckExact(private)) {
        goto done;
    }
    ok = PyDict_GET_SIZE(private) == 0 || PyDict_Contains(private, st.s_early) == 0;
done:
    if (PyErr_Occurred()) {
        PyErr_Clear();
        ok = 0;
    }
    Py_XDECREF(mode);
    Py_XDECREF(held);
    Py_XDECREF(private);
    return ok;
}

/* A wait's timeout this path takes: None, or a number above zero (exact int or float,
 * so no bool and no NaN). *seconds is set for a number. */
static int
waiting_timeout(PyObject *timeout, int *has, double *seconds)
{
    *has = 0;
    if (timeout == Py_None) {
        return 1;
    }
    if (PyFloat_CheckExact(timeout)) {
        *seconds = PyFloat_AS_DOUBLE(timeout);
    }
    else if (PyLong_CheckExact(timeout)) {
        *seconds = PyLong_AsDouble(timeout);
        if (*seconds == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
    }
    else {
        return 0;
    }
    *has = 1;
    return *seconds > 0 && isfinite(*seconds);
}

/* The bytes read (n of them, from first, reading on when the buffer was filled) as
 * (conn, [Data(ref, bytes)]), with the transport's _drained updated. */
static PySendResult
got_bytes(OpObject *op, const char *first, ssize_t n, PyObject **result)
{
    int drained = 1;
    PyObject *buf = n < FIRST_READ ? PyBytes_FromStringAndSize(first, n)
                                   : read_on(op->fd, first, n, st.read_burst, &drained);
    if (buf == NULL) {
        return returned(op, NULL, result);
    }
    PyObject *value = NULL;
    if (set(TR_DRAINED, op->transport, drained ? Py_True : Py_False) < 0) {
        goto done;
    }
    PyTypeObject *dt = st.types[3];
    PyObject *item = dt->tp_alloc(dt, 0);
    if (item == NULL) {
        goto done;
    }
    if (set(DATA_REF, item, op->ref) < 0 || set(DATA_DATA, item, buf) < 0) {
        Py_DECREF(item);
        goto done;
    }
    PyObject *list = PyList_New(1);
    if (list == NULL) {
        Py_DECREF(item);
        goto done;
    }
    PyList_SET_ITEM(list, 0, item);
    value = PyTuple_Pack(2, op->args[0], list);
    Py_DECREF(list);
done:
    Py_DECREF(buf);
    return returned(op, value, result);
}

/* A read that found no bytes, the timeout (outcome None), or an exception of the wait
 * (woken or refused: a mailbox took the socket): the Python tail ends it
 * (recv_tail(conn, b"" | OSError | None | exception)), as the Python path would. */
static PySendResult
recv_tail(OpObject *op, PyObject *outcome, PyObject **result)
{
    if (outcome == NULL) {
        return returned(op, NULL, result);
    }
    PyObject *value =
        PyObject_CallFunctionObjArgs(st.calls[PY_RECV_TAIL], op->args[0], outcome, NULL);
    Py_DECREF(outcome);
    return returned(op, value, result);
}

/* Read what the socket holds, without waiting: 1 when it had nothing (go and wait),
 * else the operation's end. */
static int
read_now(OpObject *op, PyObject **result, PySendResult *r)
{
    char first[FIRST_READ];
    int err;
    if (!slot_is(st.slots[TR_CLOSED], op->transport, Py_False)) {
        /* closed while we waited: the descriptor is no longer ours to read */
        *r = recv_tail(op, no_bytes(-1, EBADF), result);
        return 0;
    }
    ssize_t n = recv_retrying(op->fd, first, sizeof first, MSG_DONTWAIT, &err);
    if (n == -2) {
        *r = returned(op, NULL, result);
        return 0;
    }
    if (n > 0) {
        *r = got_bytes(op, first, n, result);
        return 0;
    }
    if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK)) {
        return 1;
    }
    *r = recv_tail(op, no_bytes(n, err), result);
    return 0;
}

/* (conn, [Data(ref, part) for part in parts]) (parts: a list of bytes), ended. */
static PySendResult
returned_parts(OpObject *op, PyObject *parts, PyObject **result)
{
    PyObject *value = NULL;
    Py_ssize_t n = PyList_GET_SIZE(parts);
    PyObject *list = PyList_New(n);
    if (list == NULL) {
        return returned(op, NULL, result);
    }
    PyTypeObject *dt = st.types[3];
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = dt->tp_alloc(dt, 0);
        if (item == NULL) {
            goto done;
        }
        PyList_SET_ITEM(list, i, item);
        if (set(DATA_REF, item, op->ref) < 0 || set(DATA_DATA, item, PyList_GET_ITEM(parts, i)) < 0) {
            goto done;
        }
    }
    value = PyTuple_Pack(2, op->args[0], list);
done:
    Py_DECREF(list);
    return returned(op, value, result);
}

/* The Python coroutine takes over from a wait that is over (TLS wants to write before
 * it reads): the waiter's future cleared as wait_and_recv's "finally" would. */
static PySendResult
to_python_recv(OpObject *op, PyObject **result)
{
    if (set(W_FUTURE, op->waiter, Py_None) < 0) {
        return returned(op, NULL, result);
    }
    op->state = S_NEW;
    Py_CLEAR(op->transport);
    Py_CLEAR(op->waiter);
    Py_CLEAR(op->ref);
    Py_CLEAR(op->sock);
    return delegate(op, st.calls[PY_RECV], op->args, result);
}

/* read_now for TLS, after a wake-up: one read of the SSLSocket (one record). 1 when it
 * found no whole record (go and wait again), else the operation's end: the record as
 * one Data when OpenSSL holds nothing decrypted and the socket nothing more, else the
 * burst that follows it (tls_burst), also one Data. */
static int
read_now_tls(OpObject *op, PyObject **result, PySendResult *r)
{
    if (!slot_is(st.slots[TR_CLOSED], op->transport, Py_False)) {
        *r = recv_tail(op, no_bytes(-1, EBADF), result);
        return 0;
    }
    int direct;
    PyObject *target = tls_target(op->sock, &st.tls, &direct);
    PyObject *first = tls_recv(op->sock, target, direct, &st.tls);
    if (first == NULL) {
        Py_DECREF(target);
        if (PyErr_ExceptionMatches(st.tls.want_read)) {
            PyErr_Clear();
            return 1;
        }
        if (PyErr_ExceptionMatches(st.tls.want_write)) {
            /* not a wait for reading: no longer "drained", and the Python path waits */
            PyErr_Clear();
            if (set(TR_DRAINED, op->transport, Py_False) < 0) {
                *r = returned(op, NULL, result);
                return 0;
            }
            *r = to_python_recv(op, result);
            return 0;
        }
        if (PyErr_ExceptionMatches(PyExc_OSError)) {
            *r = recv_tail(op, take_exception(), result);
            return 0;
        }
        *r = returned(op, NULL, result);
        return 0;
    }
    if (!PyBytes_CheckExact(first) || PyBytes_GET_SIZE(first) == 0) {
        Py_DECREF(target);
        if (PyBytes_CheckExact(first)) {
            *r = recv_tail(op, first, result); /* (takes the reference) */
            return 0;
        }
        Py_DECREF(first);
        PyErr_SetString(PyExc_TypeError, "recv: the TLS socket's read gave no bytes object");
        *r = returned(op, NULL, result);
        return 0;
    }
    PyObject *parts = NULL;
    int drained;
    PyObject *end;
    PyObject *burst =
        tls_burst(op->sock, target, direct, op->fd, first, &st.tls, &drained, &end);
    Py_CLEAR(first);
    if (burst == NULL) {
        goto failed;
    }
    if (keep_end(op->transport, end) < 0
        || set(TR_DRAINED, op->transport, drained ? Py_True : Py_False) < 0
        || (parts = PyList_New(1)) == NULL) {
        Py_DECREF(burst);
        goto failed;
    }
    PyList_SET_ITEM(parts, 0, burst); /* (takes the reference) */
    Py_DECREF(target);
    *r = returned_parts(op, parts, result);
    Py_DECREF(parts);
    return 0;
failed:
    Py_XDECREF(first);
    Py_DECREF(target);
    *r = returned(op, NULL, result);
    return 0;
}

/* The running loop (a new reference), or NULL with an exception. A task of ours runs
 * on the loop our reader is registered on, in the steady state: then that is the
 * running loop, found by one dict lookup (asyncio.current_task(loop)), where
 * asyncio.get_running_loop() makes a getpid() system call on every call (its fork
 * check; one per message, on a host where a system call costs about a microsecond).
 * (A task of that loop running in another thread while we run in this one would make
 * this the wrong loop: the task then refuses our wake-up, "attached to a different
 * loop", a RuntimeError rather than a hang; one connection used from two threads at
 * once is outside the contract anyway.) */
static PyObject *
running_loop(PyObject *reader_loop)
{
    if (reader_loop != NULL && reader_loop != Py_None) {
        int ours = task_runs_on(reader_loop);
        if (ours < 0) {
            return NULL;
        }
        if (ours) {
            return Py_NewRef(reader_loop);
        }
    }
    return PyObject_CallNoArgs(st.calls[PY_RUNNING_LOOP]);
}

/* Wait for the socket: our reader registered on the loop (again, when a reader that
 * fired on a wake-up already resolved, by the timer, took itself off), a new wake-up,
 * the waiter's future (its reader resolves it, and resumes our task at once), our
 * timer armed when it would fire after the deadline; yield the wake-up to the task, as
 * "await future" yields a future. */
static PySendResult
recv_wait(OpObject *op, PyObject **result)
{
    /* Another task's read waits (AsyncWaiter.wait_and_recv refuses it the same way):
     * its future replaced, that wait was never woken. Asked at our first wait only
     * (S_NEW): a wait that goes on finds its own future there. */
    PyObject *current = op->state == S_NEW ? get(W_FUTURE, op->waiter) : NULL;
    Py_XDECREF(current); /* compared by identity only */
    if (current != NULL && current != Py_None) {
        PyObject *v = PyObject_CallMethodNoArgs(op->waiter, st.s_read_under_way);
        Py_XDECREF(v);
        PyObject *exc = take_exception();
        return exc == NULL ? returned(op, NULL, result) : recv_tail(op, exc, result);
    }
    PyObject *rl = get(W_READER_LOOP, op->waiter);
    Py_XDECREF(rl); /* compared by identity only */
    if (rl != op->loop) {
        PyObject *v = PyObject_CallMethodOneArg(op->waiter, st.s_own_reader, op->loop);
        if (v == NULL) {
            /* Refused (a mailbox took the socket after our wake-up: HTTPError), or a
             * failure: the Python tail raises it, the connection attached. */
            PyObject *exc = take_exception();
            return exc == NULL ? returned(op, NULL, result) : recv_tail(op, exc, result);
        }
        Py_DECREF(v);
    }
    PyObject *fut = wakeup_new(op->loop);
    if (fut == NULL) {
        return returned(op, NULL, result);
    }
    op->future = fut;
    op->state = S_WAITING; /* from here on, finishing clears the waiter's future */
    if (set(W_FUTURE, op->waiter, fut) < 0) {
        return returned(op, NULL, result);
    }
    if (op->has_deadline) {
        PyObject *timer = get(W_TIMER, op->waiter);
        PyObject *at = get(W_TIMER_AT, op->waiter);
        PyObject *tloop = get(W_TIMER_LOOP, op->waiter);
        int arm = timer == NULL || timer == Py_None || at == NULL || !PyFloat_Check(at)
                  || PyFloat_AS_DOUBLE(at) > op->deadline || tloop != op->loop;
        Py_XDECREF(timer);
        Py_XDECREF(at);
        Py_XDECREF(tloop);
        if (arm) {
            PyObject *deadline = PyFloat_FromDouble(op->deadline);
            PyObject *v = deadline == NULL ? NULL
                                           : PyObject_CallMethodObjArgs(op->waiter, st.s_arm,
                                                                        op->loop, deadline, NULL);
            Py_XDECREF(deadline);
            if (v == NULL) {
                return returned(op, NULL, result);
            }
            Py_DECREF(v);
        }
    }
    ((WakeupObject *)fut)->blocking = 1;
    *result = Py_NewRef(fut);
    return PYGEN_NEXT;
}

static PySendResult
recv_start(OpObject *op, PyObject **result)
{
    PyObject *conn = op->args[0], *byte_count = op->args[1];
    double seconds = 0.0;
    int overflow;
    if (!PyLong_CheckExact(byte_count) || PyLong_AsLongAndOverflow(byte_count, &overflow) != 0
        || overflow || !waiting_timeout(op->args[2], &op->has_deadline, &seconds)
        || !take_direct(op, conn) || !passive_and_steady(conn)
        || !slot_is(st.slots[TR_UNREAD], op->transport, Py_None)) {
        goto python;
    }
    int was_drained = slot_is(st.slots[TR_DRAINED], op->transport, Py_True);
    if (!was_drained && !slot_is(st.slots[TR_DRAINED], op->transport, Py_False)) {
        goto python;
    }
    if (op->tls && !was_drained) {
        goto python; /* TLS: only the drained read (the socket and OpenSSL emptied) */
    }
    if (op->has_deadline) {
        op->deadline = monotonic() + seconds;
    }
    PySendResult r;
    if (!was_drained) {
        /* The last read left bytes behind: they come without a wait, and so without a
         * turn for the loop. Once EAGER_SECONDS have passed since the connection last
         * gave one, the read goes to the Python path, which gives the turn first
         * (mint._backend.EAGER_SECONDS: a consumer slower than its peer held the loop
         * for as long as the flood lasted). */
        PyObject *last = get(TR_EAGER, op->transport);
        int due = last == NULL || !PyFloat_CheckExact(last)
                  || monotonic() - PyFloat_AS_DOUBLE(last) >= st.eager_seconds;
        Py_XDECREF(last);
        /* (another task's read taking its turn, or waiting: the Python path refuses
         * this one with read_under_way, as a wait does) */
        PyObject *future = get(W_FUTURE, op->waiter);
        int reading = future != NULL && future != Py_None;
        Py_XDECREF(future);
        if (due || reading) {
            goto python;
        }
        if (!read_now(op, result, &r)) {
            return r;
        }
    }
    PyObject *rl = get(W_READER_LOOP, op->waiter);
    Py_XDECREF(rl); /* compared by identity only */
    op->loop = running_loop(rl);
    if (op->loop == NULL) {
        return returned(op, NULL, result);
    }
    return recv_wait(op, result);
python:
    if (PyErr_Occurred()) {
        PyErr_Clear();
    }
    Py_CLEAR(op->transport);
    Py_CLEAR(op->waiter);
    Py_CLEAR(op->ref);
    Py_CLEAR(op->sock);
    return delegate(op, st.calls[PY_RECV], op->args, result);
}

/* Sent into while waiting: the task resumes us once the wake-up is resolved (True:
 * the reader fired; False: our timer did, or close() woke us; an error: a mailbox took
 * the socket). A cancellation is
 * thrown in instead (op_throw); a send before the resolution yields the wake-up again,
 * as a pending future's iterator does. */
static PySendResult
recv_resume(OpObject *op, PyObject *value, PyObject **result)
{
    WakeupObject *w = (WakeupObject *)op->future;
    (void)value; /* (ignored, as a future's iterator ignores it) */
    if (w->state == WK_PENDING) {
        w->blocking = 1;
        *result = Py_NewRef(op->future);
        return PYGEN_NEXT;
    }
    if (w->state == WK_CANCELLED) {
        wakeup_cancelled_error(w);
        return returned(op, NULL, result);
    }
    PyObject *ready = Py_NewRef(w->value);
    Py_CLEAR(op->future);
    PySendResult r;
    if (ready != Py_True && ready != Py_False) {
        /* the error the waiter woke us with (the socket went to a mailbox: taken) */
        return recv_tail(op, ready, result);
    }
    int woken = ready == Py_True;
    Py_DECREF(ready);
    if (woken) {
        if (!(op->tls ? read_now_tls(op, result, &r) : read_now(op, result, &r))) {
            return r;
        }
        return recv_wait(op, result); /* woken for nothing: wait again */
    }
    /* Our timer fired: at the deadline, or at an earlier one it was armed for (an
     * earlier wait's, left armed: with no deadline of ours, that is no timeout). */
    if (op->has_deadline && op->deadline <= monotonic()) {
        Py_INCREF(Py_None);
        return recv_tail(op, Py_None, result);
    }
    return recv_wait(op, result);
}

/* --- stream_request_body ---------------------------------------------------------- */

static PySendResult
srb_start(OpObject *op, PyObject **result)
{
    PyObject *conn = op->args[0], *data = op->args[2];
    if (!PyBytes_CheckExact(data) || PyBytes_GET_SIZE(data) == 0 || !take_direct(op, conn)
        || op->ref != op->args[1]) {
        goto python;
    }
    PyObject *unsent = get(TR_UNSENT, op->transport); /* a cancelled send's bytes go first */
    int owed = unsent == NULL || !PyBytes_CheckExact(unsent) || PyBytes_GET_SIZE(unsent) != 0;
    Py_XDECREF(unsent);
    /* another task's send under way (AsyncWaiter.write_turn): wait for it in Python */
    PyObject *writer = get(W_WRITER, op->waiter);
    int busy = writer != Py_None;
    Py_XDECREF(writer);
    if (owed || busy) {
        PyErr_Clear();
        goto python;
    }
    const char *p = PyBytes_AS_STRING(data);
    Py_ssize_t len = PyBytes_GET_SIZE(data);
    ssize_t sent;
    int fd = op->fd;
    if (op->tls) {
        /* One write through the SSLSocket (non-blocking): what it took, or what it
         * needs (the Python path waits), or its failure, ended as the Python path's. */
        int direct;
        PyObject *target = tls_target(op->sock, &st.tls, &direct);
        PyObject *v = tls_send(op->sock, target, direct, data, &st.tls);
        Py_DECREF(target);
        if (v == NULL) {
            if (PyErr_ExceptionMatches(st.tls.want_write)
                || PyErr_ExceptionMatches(st.tls.want_read)) {
                goto python; /* nothing went */
            }
            if (PyErr_ExceptionMatches(PyExc_OSError)) {
                PyObject *exc = take_exception();
                PyObject *value =
                    exc == NULL ? NULL
                                : PyObject_CallFunctionObjArgs(st.calls[PY_SEND_FAILED], conn,
                                                               exc, NULL);
                Py_XDECREF(exc);
                return returned(op, value, result);
            }
            return returned(op, NULL, result);
        }
        sent = PyLong_AsSsize_t(v);
        Py_DECREF(v);
        if (sent == -1 && PyErr_Occurred()) {
            return returned(op, NULL, result);
        }
    }
    else {
        /* GIL let go as socket.send does: a loopback send runs the receiver's side. */
        Py_BEGIN_ALLOW_THREADS
        sent = send(fd, p, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
        Py_END_ALLOW_THREADS
    }
    if (sent == len) {
        Py_INCREF(conn);
        return returned(op, conn, result);
    }
    if (sent <= 0) {
        goto python; /* nothing went: the Python path waits, or maps the failure */
    }
    /* Part went: the rest, from the caller's bytes, through send_rest(conn, rest). */
    PyObject *view = PyMemoryView_FromObject(data);
    if (view == NULL) {
        return returned(op, NULL, result);
    }
    PyObject *rest = PySequence_GetSlice(view, sent, len);
    Py_DECREF(view);
    if (rest == NULL) {
        return returned(op, NULL, result);
    }
    Py_CLEAR(op->transport);
    Py_CLEAR(op->waiter);
    Py_CLEAR(op->ref);
    Py_CLEAR(op->sock);
    PyObject *rest_args[3] = {conn, rest, Py_None};
    op->inner = PyObject_Vectorcall(st.calls[PY_SEND_REST], rest_args, 2, NULL);
    Py_DECREF(rest);
    if (op->inner == NULL) {
        return returned(op, NULL, result);
    }
    op->state = S_DELEGATING;
    return delegate_send(op, Py_None, result);
python:
    if (PyErr_Occurred()) {
        PyErr_Clear();
    }
    Py_CLEAR(op->transport);
    Py_CLEAR(op->waiter);
    Py_CLEAR(op->ref);
    Py_CLEAR(op->sock);
    return delegate(op, st.calls[PY_SRB], op->args, result);
}

/* --- the coroutine protocol ------------------------------------------------------ */

static PySendResult
op_am_send(OpObject *op, PyObject *value, PyObject **result)
{
    switch (op->state) {
    case S_NEW:
        if (value != Py_None) {
            PyErr_SetString(PyExc_TypeError,
                            "can't send non-None value to a just-started coroutine");
            *result = NULL;
            return PYGEN_ERROR;
        }
        return op->kind == OP_RECV ? recv_start(op, result) : srb_start(op, result);
    case S_WAITING:
        return recv_resume(op, value, result);
    case S_DELEGATING:
        return delegate_send(op, value, result);
    default:
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
        *result = NULL;
        return PYGEN_ERROR;
    }
}

/* send's and __next__'s answer: the value yielded, or StopIteration(value). */
static PyObject *
op_send_value(OpObject *op, PyObject *value)
{
    PyObject *result;
    PySendResult r = op_am_send(op, value, &result);
    if (r == PYGEN_RETURN) {
        if (result == Py_None) {
            PyErr_SetNone(PyExc_StopIteration);
        }
        else {
            PyObject *e = PyObject_CallOneArg(PyExc_StopIteration, result);
            if (e != NULL) {
                PyErr_SetObject(PyExc_StopIteration, e);
                Py_DECREF(e);
            }
        }
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

static PyObject *
op_iternext(OpObject *op)
{
    return op_send_value(op, Py_None);
}

static PyObject *
op_send(OpObject *op, PyObject *value)
{
    return op_send_value(op, value);
}

/* Raise what throw(typ[, val[, tb]]) was given, as a generator does at its yield. */
static PyObject *
raise_thrown(PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *typ = args[0];
    PyObject *val = nargs > 1 ? args[1] : Py_None;
    PyObject *tb = nargs > 2 ? args[2] : Py_None;
    if (tb != Py_None && !PyTraceBack_Check(tb)) {
        PyErr_SetString(PyExc_TypeError, "throw() third argument must be a traceback object");
        return NULL;
    }
    if (PyExceptionInstance_Check(typ)) {
        if (val != Py_None) {
            PyErr_SetString(PyExc_TypeError, "instance exception may not have a separate value");
            return NULL;
        }
        if (tb != Py_None) {
            PyException_SetTraceback(typ, tb);
        }
        PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
        return NULL;
    }
    if (!PyExceptionClass_Check(typ)) {
        PyErr_Format(PyExc_TypeError,
                     "exceptions must be classes or instances deriving from BaseException, "
                     "not %s",
                     Py_TYPE(typ)->tp_name);
        return NULL;
    }
    PyErr_SetObject(typ, val);
    if (tb != Py_None) {
        PyObject *t, *v, *b;
        PyErr_Fetch(&t, &v, &b);
        PyErr_NormalizeException(&t, &v, &b);
        Py_XDECREF(b);
        Py_INCREF(tb);
        PyErr_Restore(t, v, tb);
    }
    return NULL;
}

static PyObject *
op_throw(OpObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw expected 1 to 3 arguments");
        return NULL;
    }
    if (op->state == S_DELEGATING) {
        PyObject *throw = PyObject_GetAttrString(op->inner, "throw");
        PyObject *v = throw == NULL ? NULL : PyObject_Vectorcall(throw, args, nargs, NULL);
        Py_XDECREF(throw);
        if (v == NULL) {
            op_finish(op); /* it returned (StopIteration) or raised: so do we */
        }
        return v;
    }
    /* Not started, waiting or done: raised where we stand, and the operation is over
     * (waiting, the waiter's future is cleared first, as wait_and_recv's finally). */
    op_finish(op);
    return raise_thrown(args, nargs);
}

static PyObject *
op_close(OpObject *op, PyObject *Py_UNUSED(ignored))
{
    if (op->state == S_DELEGATING) {
        PyObject *v = PyObject_CallMethod(op->inner, "close", NULL);
        op_finish(op);
        return v;
    }
    op_finish(op);
    Py_RETURN_NONE;
}

static PyObject *
op_await(OpObject *op)
{
    Py_INCREF(op);
    return (PyObject *)op;
}

static PyMethodDef op_methods[] = {
    {"send", (PyCFunction)op_send, METH_O, "send(value): resume, as a coroutine's send."},
    {"throw", (PyCFunction)(void (*)(void))op_throw, METH_FASTCALL,
     "throw(typ[, val[, tb]]): raise at the wait, as a coroutine's throw."},
    {"close", (PyCFunction)op_close, METH_NOARGS, "close(): end the operation."},
    {NULL, NULL, 0, NULL},
};

/* __name__ and __qualname__: the function's, as a Python coroutine's are; a task's repr
 * then names the call ("recv()"), not "<Operation without __name__>()". */
static PyObject *
op_get_name(OpObject *op, void *Py_UNUSED(closure))
{
    return PyUnicode_FromString(op->kind == OP_RECV ? "recv" : "stream_request_body");
}

static PyGetSetDef op_getset[] = {
    {"__name__", (getter)op_get_name, NULL, "The coroutine function's name.", NULL},
    {"__qualname__", (getter)op_get_name, NULL, "The coroutine function's name.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyAsyncMethods op_async = {
    .am_await = (unaryfunc)op_await,
    .am_send = (sendfunc)op_am_send,
};

static PyTypeObject Op_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mint._aiospeedups.Operation",
    .tp_doc = "A C coroutine: one call of mint.aio.websocket.recv or stream_request_body.",
    .tp_basicsize = sizeof(OpObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)op_dealloc,
    .tp_traverse = (traverseproc)op_traverse,
    .tp_clear = (inquiry)op_clear,
    .tp_as_async = &op_async,
    .tp_iternext = (iternextfunc)op_iternext,
    .tp_methods = op_methods,
    .tp_getset = op_getset,
};

/* ---------------------------------------------------------------------------------
 * The callables: recv and stream_request_body. A positional call of three arguments
 * makes an operation; any other call is the Python function's (so a wrong call raises
 * its TypeError at once, as calling a coroutine function does). */

typedef struct {
    PyObject_HEAD
    int kind;
    PyObject *dict;
    vectorcallfunc vectorcall;
} EntryObject;

static PyObject *
entry_call(EntryObject *e, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames == NULL && nargs == 3 && st.ready) {
        return op_new(e->kind, args);
    }
    PyObject *func = st.calls[e->kind == OP_RECV ? PY_RECV : PY_SRB];
    if (func == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "setup() was not called");
        return NULL;
    }
    return PyObject_Vectorcall(func, args, nargsf, kwnames);
}

static int
entry_traverse(EntryObject *e, visitproc visit, void *arg)
{
    Py_VISIT(e->dict);
    return 0;
}

static int
entry_clear(EntryObject *e)
{
    Py_CLEAR(e->dict);
    return 0;
}

static void
entry_dealloc(EntryObject *e)
{
    PyObject_GC_UnTrack(e);
    entry_clear(e);
    Py_TYPE(e)->tp_free((PyObject *)e);
}

/* As a function's: the qualified name the Python function's attributes gave it. */
static PyObject *
entry_repr(EntryObject *e)
{
    PyObject *name = e->dict == NULL ? NULL : PyDict_GetItemString(e->dict, "__qualname__");
    PyObject *module = e->dict == NULL ? NULL : PyDict_GetItemString(e->dict, "__module__");
    if (name == NULL || module == NULL) {
        return PyUnicode_FromFormat("<C coroutine function at %p>", e);
    }
    return PyUnicode_FromFormat("<C coroutine function %S.%S>", module, name);
}

static PyTypeObject Entry_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mint._aiospeedups.CoroutineFunction",
    .tp_doc = "mint.aio.websocket.recv or stream_request_body with their hot path in C: "
              "calling it returns an Operation, a C coroutine.",
    .tp_basicsize = sizeof(EntryObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_dealloc = (destructor)entry_dealloc,
    .tp_repr = (reprfunc)entry_repr,
    .tp_traverse = (traverseproc)entry_traverse,
    .tp_clear = (inquiry)entry_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(EntryObject, vectorcall),
    .tp_dictoffset = offsetof(EntryObject, dict),
};

static PyObject *
entry_new(int kind)
{
    EntryObject *e = PyObject_GC_New(EntryObject, &Entry_Type);
    if (e == NULL) {
        return NULL;
    }
    e->kind = kind;
    e->dict = NULL;
    e->vectorcall = (vectorcallfunc)entry_call;
    PyObject_GC_Track(e);
    return (PyObject *)e;
}

/* setup(Conn, AsyncTransport, AsyncWaiter, Data, read_burst, recv, stream_request_body,
 *       recv_tail, send_rest, get_running_loop) -> (recv, stream_request_body) */
static PyObject *
setup(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (setup_state("setup(Conn, AsyncTransport, AsyncWaiter, Data, read_burst, recv, "
                    "stream_request_body, recv_tail, send_rest, get_running_loop, send_failed)",
                    args, nargs, N_TYPES, N_CALLS, slot_names, slot_owner, N_SLOTS, &st.ready,
                    st.types, st.slots, st.calls, &st.read_burst) < 0) {
        return NULL;
    }
    PyObject **const strings[] = {&st.s_passive,  &st.s_early,      &st.s_direct_ref,
                                  &st.s_arm,      &st.s_own_reader, &st.s_read_under_way};
    const char *const names[] = {"passive",    "early",      "direct_ref",
                                 "_arm",       "own_reader", "read_under_way"};
    if (INTERN_ONCE(strings, names) < 0) {
        return NULL;
    }
    if (tls_setup(&st.tls, st.read_burst) < 0) {
        return NULL;
    }
    /* (read from the module rather than passed: the Python reads use the same) */
    PyObject *backend = PyImport_ImportModule("mint._backend");
    PyObject *eager = backend == NULL ? NULL : PyObject_GetAttrString(backend, "EAGER_SECONDS");
    Py_XDECREF(backend);
    st.eager_seconds = eager == NULL ? -1.0 : PyFloat_AsDouble(eager);
    Py_XDECREF(eager);
    if (!(st.eager_seconds >= 0.0)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "setup: mint._backend.EAGER_SECONDS must be >= 0");
        }
        return NULL;
    }
    st.ready = 1;
    PyObject *recv = entry_new(OP_RECV);
    PyObject *srb = entry_new(OP_SRB);
    PyObject *result = NULL;
    if (recv != NULL && srb != NULL) {
        result = PyTuple_Pack(2, recv, srb);
    }
    Py_XDECREF(recv);
    Py_XDECREF(srb);
    return result;
}

/* ---------------------------------------------------------------------------------
 * The loop reader of a passive connection's AsyncWaiter: AsyncWaiter._on_readable in
 * C, made by reader(waiter, fd, fragile). It is the one Python frame a steady passive
 * round trip still entered, on every message: wake the read wait (the waiter's
 * future), or, with nobody waiting, take the reader off (release_reader). On a loop
 * whose reader dies at a socket error (uvloop: mint._backend.reader_dies_on_error)
 * it first asks poll whether the socket has one pending, and then takes the reader
 * off too, so that the next wait registers a new one: in C that look is the system
 * call alone, where the Python reader's select.poll cost about 0.5 us a message. */
typedef struct {
    PyObject_HEAD
    PyObject *waiter;
    int fd;
    int fragile;
    vectorcallfunc vectorcall;
} ReaderObject;

static PyObject *s_future_attr, *s_done, *s_set_result, *s_release_reader;

static int
reader_traverse(ReaderObject *r, visitproc visit, void *arg)
{
    Py_VISIT(r->waiter);
    return 0;
}

static int
reader_clear(ReaderObject *r)
{
    Py_CLEAR(r->waiter);
    return 0;
}

static void
reader_dealloc(ReaderObject *r)
{
    PyObject_GC_UnTrack(r);
    reader_clear(r);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyObject *
reader_vectorcall(ReaderObject *r, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    (void)args;
    if (PyVectorcall_NARGS(nargsf) != 0 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "the reader takes no arguments");
        return NULL;
    }
    if (r->waiter == NULL) {
        Py_RETURN_NONE;
    }
    PyObject *waiter = Py_NewRef(r->waiter); /* (a call below may clear ours) */
    PyObject *result = NULL;
    if (r->fragile) {
        struct pollfd p = {.fd = r->fd, .events = 0, .revents = 0};
        if (poll(&p, 1, 0) > 0 && p.revents != 0) {
            /* uvloop has closed its poll of the socket after this call */
            PyObject *v = PyObject_CallMethodNoArgs(waiter, s_release_reader);
            if (v == NULL) {
                goto done;
            }
            Py_DECREF(v);
        }
    }
    PyObject *future = PyObject_GetAttr(waiter, s_future_attr);
    if (future == NULL) {
        goto done;
    }
    if (Py_IS_TYPE(future, &Wakeup_Type)) {
        /* our recv's wait: resume its task now, inside this callback (see Wakeup) */
        WakeupObject *w = (WakeupObject *)future;
        if (w->state == WK_PENDING) {
            result = wakeup_resolve(w, WK_DONE, Py_True, 1) < 0 ? NULL : Py_NewRef(Py_None);
        }
        else {
            result = PyObject_CallMethodNoArgs(waiter, s_release_reader);
        }
        Py_DECREF(future);
        goto done;
    }
    int waiting = 0;
    if (future != Py_None) {
        PyObject *is_done = PyObject_CallMethodNoArgs(future, s_done);
        if (is_done == NULL) {
            Py_DECREF(future);
            goto done;
        }
        waiting = is_done == Py_False;
        Py_DECREF(is_done);
    }
    if (waiting) {
        result = PyObject_CallMethodOneArg(future, s_set_result, Py_True);
    }
    else {
        /* nobody waits: stop, or the loop calls us again and again */
        result = PyObject_CallMethodNoArgs(waiter, s_release_reader);
    }
    Py_DECREF(future);
done:
    Py_DECREF(waiter);
    return result;
}

static PyTypeObject Reader_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mint._aiospeedups.Reader",
    .tp_doc = "An AsyncWaiter's loop reader (AsyncWaiter._on_readable in C).",
    .tp_basicsize = sizeof(ReaderObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_dealloc = (destructor)reader_dealloc,
    .tp_traverse = (traverseproc)reader_traverse,
    .tp_clear = (inquiry)reader_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(ReaderObject, vectorcall),
};

/* reader(waiter, fd, fragile) -> the waiter's loop reader */
static PyObject *
reader(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 3 || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "reader(waiter, fd, fragile)");
        return NULL;
    }
    long fd = PyLong_AsLong(args[1]);
    if (fd == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (fd < 0 || fd > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "reader: fd out of range");
        return NULL;
    }
    int fragile = PyObject_IsTrue(args[2]);
    if (fragile < 0) {
        return NULL;
    }
    ReaderObject *r = PyObject_GC_New(ReaderObject, &Reader_Type);
    if (r == NULL) {
        return NULL;
    }
    r->waiter = Py_NewRef(args[0]);
    r->fd = (int)fd;
    r->fragile = fragile;
    r->vectorcall = (vectorcallfunc)reader_vectorcall;
    PyObject_GC_Track(r);
    return (PyObject *)r;
}

static PyMethodDef methods[] = {
    {"reader", (PyCFunction)(void (*)(void))reader, METH_FASTCALL,
     "reader(waiter, fd, fragile) -> an AsyncWaiter's loop reader (its _on_readable in "
     "C); fragile: the loop's readers stop at a socket error (uvloop)."},
    {"wakeup", (PyCFunction)wakeup, METH_O,
     "wakeup(loop) -> a pending wake-up (a future-like object) on loop, to await."},
    {"wake", (PyCFunction)wake, METH_O,
     "wake(wakeup): resolve it with None, resuming its task at once where no task runs "
     "on its loop (from a loop callback), else scheduled as a future's callbacks are."},
    {"setup", (PyCFunction)(void (*)(void))setup, METH_FASTCALL,
     "setup(Conn, AsyncTransport, AsyncWaiter, Data, read_burst, recv, stream_request_body, "
     "recv_tail, send_rest, get_running_loop, send_failed) -> (recv, stream_request_body): "
     "the types "
     "whose slots the operations read, and the Python functions they hand everything "
     "else to; returns the two coroutine functions (their attributes are the caller's "
     "to copy from the Python ones)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "mint._aiospeedups",
    "Optional C speedups for mint.aio.websocket's recv and stream_request_body.", -1, methods,
};

PyMODINIT_FUNC
PyInit__aiospeedups(void)
{
    if (PyType_Ready(&Op_Type) < 0 || PyType_Ready(&Entry_Type) < 0
        || PyType_Ready(&Reader_Type) < 0 || PyType_Ready(&Wakeup_Type) < 0) {
        return NULL;
    }
    PyObject **const strings[] = {&s_future_attr, &s_done,      &s_set_result,
                                  &s_release_reader, &s_call_soon, &s_context};
    const char *const names[] = {"_future", "done", "set_result", "release_reader", "call_soon",
                                 "context"};
    if (INTERN_ONCE(strings, names) < 0) {
        return NULL;
    }
    if (w_cancelled_error == NULL) {
        PyObject *asyncio = PyImport_ImportModule("asyncio");
        if (asyncio == NULL) {
            return NULL;
        }
        w_cancelled_error = PyObject_GetAttrString(asyncio, "CancelledError");
        w_current_task = PyObject_GetAttrString(asyncio, "current_task");
        w_invalid_state = PyObject_GetAttrString(asyncio, "InvalidStateError");
        w_context_kw = PyTuple_Pack(1, s_context);
        if (w_cancelled_error == NULL || w_current_task == NULL || w_invalid_state == NULL
            || w_context_kw == NULL) {
            Py_DECREF(asyncio);
            Py_CLEAR(w_cancelled_error);
            Py_CLEAR(w_current_task);
            Py_CLEAR(w_invalid_state);
            Py_CLEAR(w_context_kw);
            return NULL;
        }
        PyObject *tasks = PyObject_GetAttrString(asyncio, "tasks");
        PyObject *current = tasks == NULL ? NULL : PyObject_GetAttrString(tasks, "_current_tasks");
        Py_XDECREF(tasks);
        Py_DECREF(asyncio);
        PyErr_Clear(); /* (no such dict: current_task is called) */
        if (current != NULL && PyDict_CheckExact(current)) {
            w_current_tasks = current;
        }
        else {
            Py_XDECREF(current);
        }
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&Op_Type);
    if (PyModule_AddObject(m, "Operation", (PyObject *)&Op_Type) < 0) {
        Py_DECREF(&Op_Type);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&Entry_Type);
    if (PyModule_AddObject(m, "CoroutineFunction", (PyObject *)&Entry_Type) < 0) {
        Py_DECREF(&Entry_Type);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
