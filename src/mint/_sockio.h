/* Socket reads shared by mint's C I/O paths (mint._iospeedups: the blocking flavour and
 * the mailbox; mint._aiospeedups: asyncio). Static functions: each module gets its own
 * copy, as with _slots.h.
 */
#ifndef MINT_SOCKIO_H
#define MINT_SOCKIO_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>

/* The pending exception as an object (3.11 has no PyErr_GetRaisedException). */
static PyObject *
take_exception(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

/* The first read of a wait goes to the stack: most reads of a request/response
 * exchange are small, and copying them out of a stack buffer into a bytes object of
 * their size costs less than a READ_SIZE object from malloc cut down to size (a
 * realloc) on every read. A read that fills it goes on with read_on. */
#define FIRST_READ 4096

/* After a first read that filled its buffer (first, n bytes): those bytes and what the
 * socket holds now, up to cap bytes in all, read straight into one new bytes object
 * (FIONREAD says how much is there), so a large message is not read in parts and then
 * joined. *drained: the socket was found empty after it. A failure or the end of stream
 * met after the first read is left for the next read, as BaseTransport._read_on does. */
static PyObject *
read_on(int fd, const char *first, Py_ssize_t n, Py_ssize_t cap, int *drained)
{
    int avail = 0;
    if (ioctl(fd, FIONREAD, &avail) < 0) {
        avail = -1;  /* unknown: not drained, and the next read finds out */
    }
    if (avail <= 0 || n >= cap) {
        *drained = avail == 0;
        return PyBytes_FromStringAndSize(first, n);
    }
    Py_ssize_t total = (Py_ssize_t)avail > cap - n ? cap : n + avail;
    PyObject *buf = PyBytes_FromStringAndSize(NULL, total);
    if (buf == NULL) {
        return NULL;
    }
    char *p = PyBytes_AS_STRING(buf);
    memcpy(p, first, (size_t)n);
    Py_ssize_t got = n;
    int left = 1, failed = 0;
    Py_BEGIN_ALLOW_THREADS  /* (the copy of a large burst; nobody else sees buf yet) */
    while (got < total) {
        ssize_t k = recv(fd, p + got, (size_t)(total - got), MSG_DONTWAIT);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            failed = k < 0 && errno != EAGAIN && errno != EWOULDBLOCK;
            break;
        }
        got += k;
    }
    if (!failed && ioctl(fd, FIONREAD, &left) < 0) {
        left = 1;
    }
    Py_END_ALLOW_THREADS
    if (got < total && _PyBytes_Resize(&buf, got) < 0) {
        return NULL;
    }
    *drained = !failed && left == 0;
    return buf;
}

/* One recv into buf (GIL released, as socket.recv does), made again after EINTR once
 * the signal handlers have run: n >= 0, or -1 with the failure's errno in *err, or -2
 * when a signal handler raised (its exception set: the read ends with it). */
static ssize_t
recv_retrying(int fd, char *buf, size_t size, int flags, int *err)
{
    for (;;) {
        ssize_t n;
        Py_BEGIN_ALLOW_THREADS
        n = recv(fd, buf, size, flags);
        *err = errno;
        Py_END_ALLOW_THREADS
        if (n >= 0 || *err != EINTR) {
            return n;
        }
        if (PyErr_CheckSignals() < 0) {
            return -2;
        }
    }
}

/* One poll (GIL released): 0 with *ready set; 1 when a signal interrupted it and its
 * handlers ran (the caller polls again, with the time then left); -1 when a handler
 * raised (its exception set: the wait ends with it); -2 for another failure (errno
 * in *err). */
static int
poll_once(struct pollfd *fds, nfds_t n, int ms, int *ready, int *err)
{
    Py_BEGIN_ALLOW_THREADS
    *ready = poll(fds, n, ms);
    *err = errno;
    Py_END_ALLOW_THREADS
    if (*ready >= 0) {
        return 0;
    }
    if (*err != EINTR) {
        return -2;
    }
    return PyErr_CheckSignals() < 0 ? -1 : 1;
}

/* What a read that found no bytes gave (n: 0, or -1 with errno err), for the Python
 * path to end: b"" for the end of stream, else the OSError. NULL on failure. */
static PyObject *
no_bytes(ssize_t n, int err)
{
    if (n == 0) {
        return PyBytes_FromStringAndSize(NULL, 0);
    }
    errno = err;
    PyErr_SetFromErrno(PyExc_OSError);
    return take_exception();
}

/* After a TLS read that gave bytes: 1 when OpenSSL holds nothing decrypted (the
 * SSLSocket's pending(), which poll cannot see) and the socket nothing more (FIONREAD),
 * so the read took all there was; 0 when there is more, or the socket cannot say (the
 * transport's burst finds out); -1 with an exception set. */
static int
tls_drained(PyObject *sock, int fd, PyObject *s_pending)
{
    PyObject *v = PyObject_CallMethodNoArgs(sock, s_pending);
    if (v == NULL) {
        return -1;
    }
    long pending = PyLong_AsLong(v);
    Py_DECREF(v);
    if (pending == -1 && PyErr_Occurred()) {
        return -1;
    }
    int avail = 0;
    return pending == 0 && ioctl(fd, FIONREAD, &avail) == 0 && avail == 0;
}

/* The SSLSocket's pending() (decrypted bytes OpenSSL holds), or -1 with an exception. */
static Py_ssize_t
tls_pending(PyObject *sock, PyObject *s_pending)
{
    PyObject *v = PyObject_CallMethodNoArgs(sock, s_pending);
    if (v == NULL) {
        return -1;
    }
    Py_ssize_t pending = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    return pending;
}

/* The TLS burst (BaseTransport._read_on_tls's rule) into one bytes object: first, a
 * read after which OpenSSL or the socket held more, then the records that follow,
 * each decrypted by the SSLSocket's recv_into straight into the buffer that is
 * returned, until OpenSSL and the socket are empty, READ_BURST is passed at the end
 * of a record, or a read cannot go on (*drained as _read_on_tls returns it).
 *
 * Why not the transport's _read_on_tls: it gives one bytes object per record (16 KiB
 * at most), so a 64 KiB message came as five Data, each a call into the decoder's
 * Python path for a frame in progress, and each record went through ssl.py's recv and
 * a 64 KiB allocation cut down to size; here a burst is one Data, and the bytes are
 * copied once, when the decoder takes the payload out, as for a plain socket's bulk.
 *
 * The buffer is sized from what OpenSSL holds and what the socket holds (FIONREAD:
 * ciphertext, more than the plaintext it carries), and grown if more comes. Only this
 * function sees the bytes object until it returns it, so writing into it is sound.
 * A failure or the end of stream after first is left for the next read; NULL with an
 * exception only for what the Python burst would raise too (not an OSError). */
struct tls_burst_names {
    Py_ssize_t read_size, read_burst;
    PyObject *s_pending, *s_recv_into, *want_read, *want_write;
};

static PyObject *
tls_burst(PyObject *sock, int fd, PyObject *first, const struct tls_burst_names *c,
          int *drained)
{
    Py_ssize_t got = PyBytes_GET_SIZE(first), cap = got;
    Py_ssize_t room = c->read_burst - got;
    Py_ssize_t held = 0; /* the socket's bytes at the last look, less the plaintext since */
    PyObject *buf = NULL;
    for (;;) {
        Py_ssize_t pending = tls_pending(sock, c->s_pending);
        if (pending < 0) {
            goto failed;
        }
        if (!pending) {
            if (room <= 0) {
                *drained = 0; /* a full burst: what the socket holds is for the next */
                break;
            }
            if (held <= 0) {
                int avail = 0;
                if (ioctl(fd, FIONREAD, &avail) < 0) {
                    *drained = 0; /* unknown: the next read finds out */
                    break;
                }
                if (avail == 0) {
                    *drained = 1;
                    break;
                }
                held = avail;
            }
        }
        Py_ssize_t want = room < c->read_size ? room : c->read_size;
        if (want < pending) {
            want = pending;
        }
        if (cap - got < want) {
            Py_ssize_t more = pending + (held > 0 ? held : 0);
            Py_ssize_t newcap = got + (want > more ? want : more);
            if (buf == NULL) {
                buf = PyBytes_FromStringAndSize(NULL, newcap);
                if (buf == NULL) {
                    goto failed;
                }
                memcpy(PyBytes_AS_STRING(buf), PyBytes_AS_STRING(first), (size_t)got);
            }
            else if (_PyBytes_Resize(&buf, newcap) < 0) {
                goto failed;
            }
            cap = newcap;
        }
        PyObject *view =
            PyMemoryView_FromMemory(PyBytes_AS_STRING(buf) + got, want, PyBUF_WRITE);
        if (view == NULL) {
            goto failed;
        }
        PyObject *n_obj = PyObject_CallMethodOneArg(sock, c->s_recv_into, view);
        /* (recv_into keeps no reference to the view; release it before buf may move) */
        Py_DECREF(view);
        if (n_obj == NULL) {
            if (PyErr_ExceptionMatches(c->want_write)) {
                PyErr_Clear();
                *drained = 0; /* TLS must write first: the next read finds out */
                break;
            }
            if (PyErr_ExceptionMatches(c->want_read)
                || PyErr_ExceptionMatches(PyExc_BlockingIOError)
                || PyErr_ExceptionMatches(PyExc_InterruptedError)) {
                PyErr_Clear();
                *drained = 1; /* the rest of a record is still to come */
                break;
            }
            if (PyErr_ExceptionMatches(PyExc_OSError)) {
                PyErr_Clear();
                *drained = 0;
                break;
            }
            goto failed;
        }
        Py_ssize_t n = PyLong_AsSsize_t(n_obj);
        Py_DECREF(n_obj);
        if (n < 0 || n > want) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_ValueError, "recv_into gave an impossible count");
            }
            goto failed;
        }
        if (n == 0) {
            *drained = 0; /* the end of the stream: the next read finds out */
            break;
        }
        got += n;
        room -= n;
        held -= n;
    }
    if (buf == NULL) {
        Py_INCREF(first);
        return first;
    }
    if (got < cap && _PyBytes_Resize(&buf, got) < 0) {
        return NULL;
    }
    return buf;
failed:
    Py_XDECREF(buf);
    return NULL;
}

/* What the TLS paths need besides the SSLSocket's methods: READ_SIZE (mint._backend's,
 * an int) and ssl's SSLWantReadError, SSLWantWriteError and SSLZeroReturnError (new
 * references into the four). 0, or -1 with an exception and nothing kept. */
static int
tls_names(PyObject **read_size, PyObject **want_read, PyObject **want_write,
          PyObject **zero_return)
{
    PyObject *ssl = PyImport_ImportModule("ssl");
    PyObject *backend = ssl == NULL ? NULL : PyImport_ImportModule("mint._backend");
    if (backend != NULL) {
        *read_size = PyObject_GetAttrString(backend, "READ_SIZE");
        *want_read = PyObject_GetAttrString(ssl, "SSLWantReadError");
        *want_write = PyObject_GetAttrString(ssl, "SSLWantWriteError");
        *zero_return = PyObject_GetAttrString(ssl, "SSLZeroReturnError");
    }
    Py_XDECREF(ssl);
    Py_XDECREF(backend);
    if (*read_size == NULL || !PyLong_CheckExact(*read_size) || *want_read == NULL
        || *want_write == NULL || *zero_return == NULL) {
        Py_CLEAR(*read_size);
        Py_CLEAR(*want_read);
        Py_CLEAR(*want_write);
        Py_CLEAR(*zero_return);
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "setup: mint._backend.READ_SIZE is not an int");
        }
        return -1;
    }
    return 0;
}

#endif
