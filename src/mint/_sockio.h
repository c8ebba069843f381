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
#ifdef __linux__
#include <sys/epoll.h>
#endif
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

/* The outcome of one wait (poll_once, epoll_once) that returned ready with errno err:
 * 0 with *ready set; 1 when a signal interrupted it and its handlers ran (the caller
 * waits again, with the time then left); -1 when a handler raised (its exception set:
 * the wait ends with it); -2 for another failure (errno in *err). */
static inline int
waited(int ready_now, int err_now, int *ready, int *err)
{
    *ready = ready_now;
    *err = err_now;
    if (ready_now >= 0) {
        return 0;
    }
    if (err_now != EINTR) {
        return -2;
    }
    return PyErr_CheckSignals() < 0 ? -1 : 1;
}

/* One poll, GIL released (see waited). */
static inline int
poll_once(struct pollfd *fds, nfds_t n, int ms, int *ready, int *err)
{
    int r, e;
    Py_BEGIN_ALLOW_THREADS
    r = poll(fds, n, ms);
    e = errno;
    Py_END_ALLOW_THREADS
    return waited(r, e, ready, err);
}

#ifdef __linux__
/* One epoll_wait on the mailbox's epoll descriptor, GIL released (see waited). */
static inline int
epoll_once(int epfd, struct epoll_event *evs, int max, int ms, int *ready, int *err)
{
    int r, e;
    Py_BEGIN_ALLOW_THREADS
    r = epoll_wait(epfd, evs, max, ms);
    e = errno;
    Py_END_ALLOW_THREADS
    return waited(r, e, ready, err);
}
#endif

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

/* ---- TLS ------------------------------------------------------------------------
 *
 * The C paths read and write a TLS connection through the ssl module's objects, so
 * OpenSSL stays the ssl module's: when the connection's socket is exactly an
 * ssl.SSLSocket, through the _ssl._SSLSocket it holds (its _sslobj), whose read, write
 * and pending are what SSLSocket.recv, recv_into, send and pending call once ssl.py's
 * Python wrappers have checked the socket is open (about 1.5 µs of a 16 B wss round
 * trip, 8%); else through the socket's own methods. A closed or unwrapped SSLSocket
 * has no _sslobj (None), and so takes its own methods, which raise as they do. The
 * one thing the wrappers add, SSLSocket.read's ragged EOF (SSLEOFError read as the end
 * of the stream when suppress_ragged_eofs), is done here (tls_ragged_eof). */

/* What the TLS paths call and catch; filled by tls_setup. */
struct tls_io {
    Py_ssize_t read_size, read_burst; /* mint._backend's READ_SIZE, READ_BURST */
    PyObject *read_size_obj;
    PyObject *s_recv, *s_recv_into, *s_send, *s_pending; /* the SSLSocket's methods */
    PyObject *s_read, *s_write, *s_sslobj, *s_suppress;  /* its _sslobj's, and attributes */
    PyObject *want_read, *want_write, *zero_return, *eof_error;
    PyObject *sslsocket_type, *sslobj_type;
};

/* io's names and types (READ_SIZE from mint._backend, the exceptions and types from
 * ssl and _ssl): 0, or -1 with an exception and nothing kept. */
static int
tls_setup(struct tls_io *io, Py_ssize_t read_burst)
{
    if (io->read_size_obj != NULL) {
        io->read_burst = read_burst;
        return 0;
    }
    PyObject **const strings[] = {&io->s_recv,  &io->s_recv_into, &io->s_send,   &io->s_pending,
                                  &io->s_read,  &io->s_write,     &io->s_sslobj, &io->s_suppress};
    const char *const names[] = {"recv", "recv_into", "send", "pending",
                                 "read", "write",     "_sslobj", "suppress_ragged_eofs"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (*strings[i] == NULL && (*strings[i] = PyUnicode_InternFromString(names[i])) == NULL) {
            return -1;
        }
    }
    PyObject *ssl = PyImport_ImportModule("ssl");
    PyObject *_ssl = ssl == NULL ? NULL : PyImport_ImportModule("_ssl");
    PyObject *backend = _ssl == NULL ? NULL : PyImport_ImportModule("mint._backend");
    PyObject *got[7] = {NULL};
    if (backend != NULL) {
        got[0] = PyObject_GetAttrString(backend, "READ_SIZE");
        got[1] = PyObject_GetAttrString(ssl, "SSLWantReadError");
        got[2] = PyObject_GetAttrString(ssl, "SSLWantWriteError");
        got[3] = PyObject_GetAttrString(ssl, "SSLZeroReturnError");
        got[4] = PyObject_GetAttrString(ssl, "SSLEOFError");
        got[5] = PyObject_GetAttrString(ssl, "SSLSocket");
        got[6] = PyObject_GetAttrString(_ssl, "_SSLSocket");
    }
    Py_XDECREF(ssl);
    Py_XDECREF(_ssl);
    Py_XDECREF(backend);
    int ok = 1;
    for (int i = 0; i < 7; i++) {
        ok &= got[i] != NULL;
    }
    Py_ssize_t read_size = ok && PyLong_CheckExact(got[0]) ? PyLong_AsSsize_t(got[0]) : -1;
    if (!ok || read_size <= 0 || !PyType_Check(got[5]) || !PyType_Check(got[6])) {
        for (int i = 0; i < 7; i++) {
            Py_XDECREF(got[i]);
        }
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "setup: mint._backend.READ_SIZE or ssl's types");
        }
        return -1;
    }
    io->read_size = read_size;
    io->read_burst = read_burst;
    io->read_size_obj = got[0];
    io->want_read = got[1];
    io->want_write = got[2];
    io->zero_return = got[3];
    io->eof_error = got[4];
    io->sslsocket_type = got[5];
    io->sslobj_type = got[6];
    return 0;
}

/* Where sock's TLS calls go (a new reference): its _ssl._SSLSocket (*direct 1) when
 * sock is exactly an ssl.SSLSocket that holds one, else sock itself (*direct 0). */
static PyObject *
tls_target(PyObject *sock, const struct tls_io *io, int *direct)
{
    *direct = 0;
    if ((PyObject *)Py_TYPE(sock) == io->sslsocket_type) {
        PyObject *obj = PyObject_GetAttr(sock, io->s_sslobj);
        if (obj != NULL && (PyObject *)Py_TYPE(obj) == io->sslobj_type) {
            *direct = 1;
            return obj;
        }
        Py_XDECREF(obj);
        PyErr_Clear();
    }
    return Py_NewRef(sock);
}

/* After a direct read failed: 1 when its exception is the ragged EOF SSLSocket.read
 * turns into the end of the stream (then cleared), else 0 (left as it is). */
static int
tls_ragged_eof(PyObject *sock, const struct tls_io *io)
{
    if (!PyErr_ExceptionMatches(io->eof_error)) {
        return 0;
    }
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *flag = PyObject_GetAttr(sock, io->s_suppress);
    int suppress = flag != NULL && PyObject_IsTrue(flag) == 1;
    Py_XDECREF(flag);
    PyErr_Clear();
    if (suppress) {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return 1;
    }
    PyErr_Restore(type, value, tb);
    return 0;
}

/* sock.recv(READ_SIZE): one record's plaintext; b"" for the end of the stream, which
 * is close_notify (SSLZeroReturnError) or a ragged EOF, so every reader ends it as it
 * ends a plain socket's. */
static PyObject *
tls_recv(PyObject *sock, PyObject *target, int direct, const struct tls_io *io)
{
    PyObject *data = direct ? PyObject_CallMethodOneArg(target, io->s_read, io->read_size_obj)
                            : PyObject_CallMethodOneArg(sock, io->s_recv, io->read_size_obj);
    if (data == NULL
        && ((direct && tls_ragged_eof(sock, io)) || PyErr_ExceptionMatches(io->zero_return))) {
        PyErr_Clear();
        data = PyBytes_FromStringAndSize(NULL, 0);
    }
    return data;
}

/* sock.recv_into(view, n): how many bytes it put there (an int), 0 for a ragged EOF. */
static PyObject *
tls_recv_into(PyObject *sock, PyObject *target, int direct, PyObject *view, Py_ssize_t n,
              const struct tls_io *io)
{
    PyObject *size = PyLong_FromSsize_t(n);
    if (size == NULL) {
        return NULL;
    }
    PyObject *got;
    if (!direct) {
        got = PyObject_CallMethodObjArgs(sock, io->s_recv_into, view, size, NULL);
    }
    else {
        got = PyObject_CallMethodObjArgs(target, io->s_read, size, view, NULL);
        if (got == NULL && tls_ragged_eof(sock, io)) {
            got = PyLong_FromLong(0);
        }
    }
    Py_DECREF(size);
    return got;
}

/* sock.send(data): how many bytes went (an int). */
static PyObject *
tls_send(PyObject *sock, PyObject *target, int direct, PyObject *data, const struct tls_io *io)
{
    return PyObject_CallMethodOneArg(direct ? target : sock, direct ? io->s_write : io->s_send,
                                     data);
}

/* pending(): the decrypted bytes OpenSSL holds (poll cannot see them), or -1 with an
 * exception (the SSLSocket's and its _sslobj's method have the same name). */
static Py_ssize_t
tls_pending(PyObject *target, const struct tls_io *io)
{
    PyObject *v = PyObject_CallMethodNoArgs(target, io->s_pending);
    if (v == NULL) {
        return -1;
    }
    Py_ssize_t pending = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    return pending;
}

/* After a TLS read that gave bytes (first): first and the records that follow (the
 * TLS burst, BaseTransport._read_on_tls's rule) in one bytes object, each decrypted by
 * recv_into straight into the buffer that is returned, until OpenSSL (pending(),
 * which poll cannot see) and the socket (FIONREAD) are empty, READ_BURST is passed at
 * the end of a record, or a read cannot go on (*drained as _read_on_tls returns it:
 * whether the socket was found empty). When first took all there was, it is returned
 * itself, drained, at the cost of one pending() and one FIONREAD. A read that meets the
 * end of stream or a failure after first sets *end (a new reference: b"" or the
 * exception) for the caller to keep for the next read (keep_end), as _read_on_tls
 * keeps it: OpenSSL has taken it off the socket, so no wait would see it again.
 *
 * Why not the transport's _read_on_tls: it gives one bytes object per record (16 KiB
 * at most), so a 64 KiB message came as five Data, each a call into the decoder for a
 * frame in progress, and each record went through ssl.py's recv and a 64 KiB
 * allocation cut down to size; here a burst is one Data, and the bytes are copied once,
 * when the decoder takes the payload out, as for a plain socket's bulk.
 *
 * The buffer is sized from what OpenSSL holds and what the socket holds (FIONREAD:
 * ciphertext, more than the plaintext it carries), and grown if more comes. Only this
 * function sees the bytes object until it returns it, so writing into it is sound.
 * NULL with an exception only for what the Python burst would raise too (not an
 * OSError). */
static PyObject *
tls_burst(PyObject *sock, PyObject *target, int direct, int fd, PyObject *first,
          const struct tls_io *io, int *drained, PyObject **end)
{
    *end = NULL;
    Py_ssize_t got = PyBytes_GET_SIZE(first), cap = got;
    Py_ssize_t room = io->read_burst - got;
    Py_ssize_t held = 0; /* the socket's bytes at the last look, less the plaintext since */
    PyObject *buf = NULL;
    for (;;) {
        Py_ssize_t pending = tls_pending(target, io);
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
        Py_ssize_t want = room < io->read_size ? room : io->read_size;
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
        PyObject *n_obj = tls_recv_into(sock, target, direct, view, want, io);
        /* (the read keeps no reference to the view; release it before buf may move) */
        Py_DECREF(view);
        if (n_obj == NULL) {
            if (PyErr_ExceptionMatches(io->want_write)) {
                PyErr_Clear();
                *drained = 0; /* TLS must write first: the next read finds out */
                break;
            }
            if (PyErr_ExceptionMatches(io->want_read)
                || PyErr_ExceptionMatches(PyExc_BlockingIOError)
                || PyErr_ExceptionMatches(PyExc_InterruptedError)) {
                PyErr_Clear();
                *drained = 1; /* the rest of a record is still to come */
                break;
            }
            if (PyErr_ExceptionMatches(PyExc_OSError)) {
                *end = take_exception();
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
            *end = PyBytes_FromStringAndSize(NULL, 0); /* the end of the stream */
            *drained = 0;
            if (*end == NULL) {
                goto failed;
            }
            break;
        }
        got += n;
        room -= n;
        held -= n;
    }
    if (buf == NULL) {
        return Py_NewRef(first);
    }
    if (got < cap && _PyBytes_Resize(&buf, got) < 0) {
        Py_CLEAR(*end);
        return NULL;
    }
    return buf;
failed:
    Py_CLEAR(*end);
    Py_XDECREF(buf);
    return NULL;
}

/* Keep the end a burst met (end, stolen; NULL: none) on the transport for its next read
 * (BaseTransport.keep_end): 0, or -1 with an exception. */
static int
keep_end(PyObject *transport, PyObject *end)
{
    if (end == NULL) {
        return 0;
    }
    PyObject *r = PyObject_CallMethod(transport, "keep_end", "O", end);
    Py_DECREF(end);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

#endif
